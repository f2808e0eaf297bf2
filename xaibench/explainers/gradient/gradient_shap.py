"""GradientSHAP (Lundberg & Lee, 2017, "A Unified Approach to Interpreting Model Predictions"), captum's version:
expected gradients (Erion et al., 2021) over random baselines and random points on the path to a noisy input."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import GradientShap
from torch import nn

from xaibench.explainers.base import CallRows, Explainer
from xaibench.explainers.inputs import Baseline, GradientView, baseline_distribution
from xaibench.explainers.seeding import seeded
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation, Modality


@EXPLAINERS.register("gradient_shap")
@dataclass(frozen=True)
class GradientShapExplainer(Explainer):
    """captum ``GradientShap`` with a per-sample baseline distribution.

    Baselines: ``n_baselines`` draws of ``baseline + baseline_std * N(0, I)`` (standardised data: ``0.0`` and
    ``1.0`` give the features' marginal moments; text: around the pad-token embeddings). ``n_samples`` gradient
    evaluations at random points between a baseline and ``x + N(0, stdevs^2)``. Output shaped like ``x`` (text:
    per token). Each sample is explained alone under its own seed (captum draws from the global RNG,
    captum#742): a batch equals each sample alone (tolerance 1e-5).
    """

    requires = frozenset({Capability.GRADIENTS})
    positive_params = ("n_samples", "n_baselines")
    non_negative_params = ("baseline_std", "stdevs")  # standard deviations
    n_samples: int = 25
    n_baselines: int = 16
    baseline: Baseline = 0.0
    baseline_std: float = 1.0
    stdevs: float = 0.0

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """One sample at a time: its ``n_samples`` points between baselines and the input in one forward."""
        return CallRows(per_input=0, per_call=self.n_samples)

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view = GradientView.of(model, x)
        method = GradientShap(view.forward)
        centres = view.baselines(self.baseline)
        maps, deltas = [], []
        for i, seed in enumerate(view.seeds("gradient_shap")):
            sample = view.inputs[i : i + 1]
            baselines = baseline_distribution(centres[i : i + 1], self.baseline_std, self.n_baselines, seed)
            with seeded(seed, sample.device):
                attributions, delta = method.attribute(
                    sample, baselines=baselines, n_samples=self.n_samples, stdevs=self.stdevs,
                    target=target[i : i + 1], return_convergence_delta=True,
                )
            maps.append(attributions)
            deltas.append(delta.detach().abs().mean())
        extras = {"convergence_delta": torch.stack(deltas).cpu().numpy()}
        return Explanation(view.to_output(torch.cat(maps)), extras=extras)
