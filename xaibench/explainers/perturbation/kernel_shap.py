"""Kernel SHAP (Lundberg & Lee, 2017, "A Unified Approach to Interpreting Model Predictions") through captum."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import KernelShap
from torch import nn

from xaibench.explainers.base import Explainer
from xaibench.explainers.inputs import Baseline, PerturbationView, feature_grouping
from xaibench.explainers.perturbation._batching import check_perturbations_per_eval
from xaibench.explainers.seeding import sample_seeds, seeded
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation, Modality


@EXPLAINERS.register("kernel_shap")
@dataclass(frozen=True)
class KernelShapExplainer(Explainer):
    """captum ``KernelShap``: Shapley values of interpretable features, estimated from ``n_samples`` coalitions.

    Features: tabular columns; image ``patch_size`` squares; series windows; text tokens (absent = ``pad_id``).
    An absent feature takes its ``baseline`` value, so on a linear model with ``baseline = E[x]`` the attributions
    are ``w * (x - E[x])`` (tested). Coalitions are evaluated ``perturbations_per_eval`` per forward (>= 2, never
    one forward per perturbation). captum samples coalitions from torch's global RNG, so each sample is explained
    alone under its own seed: a batch equals each sample alone (tolerance 1e-5). Output shaped like ``x`` (every
    element of a feature carries the feature's value; text ``(N, L)``).

    Feature grouping: each image patch's Shapley value is copied to all ``patch_size**2`` of its pixels (each
    series window's to its ``patch_size`` steps), so an image map sums to 4x the output change ``f(x) - f(baseline)``
    with the default 2x2 patches, not 1x (efficiency holds per patch, not per pixel). Divide by
    ``elements_per_group`` for per-pixel shares. Recorded in each row's ``method_params`` (``feature_grouping``,
    ``elements_per_group``).
    """

    positive_params = ("n_samples", "perturbations_per_eval", "patch_size")
    n_samples: int = 200
    perturbations_per_eval: int = 64
    baseline: Baseline = 0.0
    patch_size: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_perturbations_per_eval("kernel_shap", self.perturbations_per_eval)

    def recorded_params(self, modality: Modality) -> dict[str, object]:
        return feature_grouping(modality, self.patch_size)

    @torch.no_grad()
    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view = PerturbationView.of(model, x, self.baseline)
        mask = view.feature_mask(self.patch_size)
        method = KernelShap(view.forward)
        maps = []
        for i, seed in enumerate(sample_seeds(view.inputs, "kernel_shap")):
            with seeded(seed, x.device):
                maps.append(method.attribute(
                    view.inputs[i : i + 1], baselines=view.baselines[i : i + 1], target=target[i : i + 1],
                    feature_mask=mask, n_samples=self.n_samples, perturbations_per_eval=self.perturbations_per_eval,
                ))
        return Explanation(view.to_output(torch.cat(maps)))
