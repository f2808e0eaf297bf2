"""Feature ablation (leave-one-feature-out; e.g. Zeiler & Fergus, 2014) through captum."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import FeatureAblation
from torch import nn

from xaibench.explainers.base import CallRows, Explainer
from xaibench.explainers.perturbation._batching import feature_count, perturbation_rows
from xaibench.explainers.inputs import Baseline, PerturbationView
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation, Modality


@EXPLAINERS.register("feature_ablation")
@dataclass(frozen=True)
class FeatureAblationExplainer(Explainer):
    """captum ``FeatureAblation``: ``f(x) - f(x with one feature set to baseline)`` for the target logit.

    Features: tabular columns, image ``patch_size`` squares (channels together), series windows, text tokens
    (replaced by ``pad_id``). ``perturbations_per_eval`` ablations per forward. On a linear model this is exactly
    ``w * (x - baseline)`` per feature. Deterministic; batch tolerance 1e-5.
    """

    positive_params = ("patch_size", "perturbations_per_eval")
    unused_params = {Modality.TABULAR: ("patch_size",), Modality.TEXT: ("patch_size",)}  # one column / token each
    patch_size: int = 1
    baseline: Baseline = 0.0
    perturbations_per_eval: int = 64

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """``perturbations_per_eval`` ablated features (at most all of them) of every input per forward."""
        return perturbation_rows(self.perturbations_per_eval, feature_count(modality, input_shape, self.patch_size))

    @torch.no_grad()
    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view = PerturbationView.of(model, x, self.baseline)
        attributions = FeatureAblation(view.forward).attribute(
            view.inputs, baselines=view.baselines, target=target, feature_mask=view.feature_mask(self.patch_size),
            perturbations_per_eval=self.perturbations_per_eval,
        )
        return Explanation(view.to_output(attributions))
