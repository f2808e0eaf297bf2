"""LIME (Ribeiro et al., 2016, "Why Should I Trust You?"), captum's estimator vectorised over samples
(``_surrogate.py``)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xaibench.explainers.base import CallRows, Explainer, forward_rows_override
from xaibench.explainers.inputs import Baseline, PerturbationView, feature_grouping
from xaibench.explainers.perturbation import _surrogate
from xaibench.explainers.perturbation._batching import check_perturbations_per_eval, feature_count, surrogate_rows
from xaibench.explainers.seeding import generator
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation, Modality


def binary_cosine_kernel(kernel_width: float):
    """LIME's similarity for images and text: ``exp(-d^2 / (2 w^2))`` with ``d`` the cosine distance between the
    interpretable sample ``z`` (1 = feature kept) and the all-ones vector: ``d = 1 - sqrt(|z| / M)``."""

    def similarity(_original: Any, _perturbed: Any, interpretable: torch.Tensor, **_: Any) -> float:
        kept = float(interpretable.sum())
        distance = 1.0 - math.sqrt(kept / interpretable.numel())
        return math.exp(-(distance**2) / (2 * kernel_width**2))

    return similarity


@EXPLAINERS.register("lime")
@dataclass(frozen=True)
class LimeExplainer(Explainer):
    """LIME as captum's ``Lime`` computes it: a sparse linear surrogate over binary interpretable features.

    Features as in Kernel SHAP (columns, ``patch_size`` squares, series windows, tokens); an absent feature takes
    its ``baseline`` (text: ``pad_id``). ``n_samples`` perturbations (Bernoulli(0.5) per feature), evaluated
    ``perturbations_per_eval`` per forward (>= 2), weighted by ``binary_cosine_kernel(kernel_width)`` (the lime
    library's choice for images and text, used for every modality so weights do not depend on the baseline
    values), and a Lasso with penalty ``alpha`` (sklearn's, per sample, as captum's ``SkLearnLasso``; 0: one batched
    weighted least squares). Perturbations are drawn at once from each sample's own generator and forwarded
    across the batch: a batch equals each sample alone (tolerance 1e-5); agreement with captum is within sampling
    tolerance. Output: the surrogate's coefficients shaped like ``x``.

    Feature grouping: each image patch's coefficient is copied to all ``patch_size**2`` of its pixels (series: to
    its ``patch_size`` steps), so a map sums to 4x the sum of the surrogate's coefficients with the default 2x2
    patches. Recorded in each row's ``method_params`` (``feature_grouping``, ``elements_per_group``).
    """

    positive_params = ("n_samples", "perturbations_per_eval", "patch_size", "kernel_width")
    non_negative_params = ("alpha",)  # the Lasso penalty (0: least squares); below 0 it ran as 0
    unused_params = {Modality.TABULAR: ("patch_size",), Modality.TEXT: ("patch_size",)}  # one column / token each
    n_samples: int = 200
    perturbations_per_eval: int = 64
    baseline: Baseline = 0.0
    patch_size: int = 2
    kernel_width: float = 0.25
    alpha: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        check_perturbations_per_eval("lime", self.perturbations_per_eval)

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
        coalitions = torch.stack([_surrogate.lime_coalitions(m, self.n_samples, generator(seed))
                                  for seed in view.seeds("lime")])  # (N, n, M)
        outputs = _surrogate.target_outputs(view.forward, view.inputs, view.baselines, mask, coalitions, target,
                                            forward_rows_override() or self.perturbations_per_eval)
        weights = torch.stack([_surrogate.binary_cosine_weights(c, self.kernel_width) for c in coalitions])
        if self.alpha > 0:
            coefficients = _surrogate.lasso(coalitions, outputs, weights, self.alpha)
        else:
            coefficients = _surrogate.weighted_least_squares(coalitions, outputs, weights)
        attributions = _surrogate.spread(coefficients, mask).to(device=x.device, dtype=view.inputs.dtype)
        return Explanation(view.to_output(attributions))
