"""Kernel SHAP (Lundberg & Lee, 2017, "A Unified Approach to Interpreting Model Predictions"), captum's estimator
vectorised over coalitions and samples (``_surrogate.py``)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xaibench.explainers.base import CallRows, Explainer, forward_rows_override
from xaibench.explainers.inputs import Baseline, PerturbationView, feature_grouping
from xaibench.explainers.perturbation import _surrogate
from xaibench.explainers.perturbation._batching import check_perturbations_per_eval, feature_count, surrogate_rows
from xaibench.explainers.seeding import generator
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation, Modality


@EXPLAINERS.register("kernel_shap")
@dataclass(frozen=True)
class KernelShapExplainer(Explainer):
    """Kernel SHAP as captum's ``KernelShap`` computes it, vectorised: Shapley values of interpretable features.

    Features: tabular columns; image ``patch_size`` squares; series windows; text tokens (absent = ``pad_id``).
    An absent feature takes its ``baseline`` value, so on a linear model with ``baseline = E[x]`` the attributions
    are ``w * (x - E[x])`` (tested). ``n_samples`` coalitions per sample (the full and the empty one first, weight
    1e6; then ``k ~ (M-1)/(k(M-k))`` features kept at random, weight 1), all drawn at once from the sample's own
    generator, forwarded ``perturbations_per_eval`` rows per call (>= 2) across the batch, and fitted by one
    batched weighted least squares with intercept. A batch equals each sample alone (tolerance 1e-5); agreement
    with captum is within sampling tolerance. Output shaped like ``x`` (every element of a feature carries the
    feature's value; text ``(N, L)``).

    Feature grouping: each image patch's Shapley value is copied to all ``patch_size**2`` of its pixels (each
    series window's to its ``patch_size`` steps), so an image map sums to 4x the output change ``f(x) - f(baseline)``
    with the default 2x2 patches, not 1x (efficiency holds per patch, not per pixel). Divide by
    ``elements_per_group`` for per-pixel shares. Recorded in each row's ``method_params`` (``feature_grouping``,
    ``elements_per_group``).
    """

    positive_params = ("n_samples", "perturbations_per_eval", "patch_size")
    unused_params = {Modality.TABULAR: ("patch_size",), Modality.TEXT: ("patch_size",)}  # one column / token each
    n_samples: int = 200
    perturbations_per_eval: int = 64
    baseline: Baseline = 0.0
    patch_size: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_perturbations_per_eval("kernel_shap", self.perturbations_per_eval)

    def recorded_params(self, modality: Modality) -> dict[str, object]:
        return feature_grouping(modality, self.patch_size)

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """``perturbations_per_eval`` perturbed rows across the batch per forward; the coalitions per input."""
        return surrogate_rows(self.perturbations_per_eval, self.n_samples,
                              feature_count(modality, input_shape, self.patch_size))

    @torch.no_grad()
    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view = PerturbationView.of(model, x, self.baseline)
        mask = view.feature_mask(self.patch_size)
        m = _surrogate.n_features(mask)
        coalitions = torch.stack([_surrogate.kernel_shap_coalitions(m, self.n_samples, generator(seed))
                                  for seed in view.seeds("kernel_shap")])  # (N, n, M)
        outputs = _surrogate.target_outputs(view.forward, view.inputs, view.baselines, mask, coalitions, target,
                                            forward_rows_override() or self.perturbations_per_eval)
        weights = torch.stack([_surrogate.kernel_shap_weights(c) for c in coalitions])
        coefficients = _surrogate.weighted_least_squares(coalitions, outputs, weights)
        attributions = _surrogate.spread(coefficients, mask).to(device=x.device, dtype=view.inputs.dtype)
        return Explanation(view.to_output(attributions))
