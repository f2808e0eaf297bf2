"""LIME (Ribeiro et al., 2016, "Why Should I Trust You?") through captum."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from captum._utils.models.linear_model import SkLearnLasso, SkLearnLinearRegression
from captum.attr import Lime
from torch import nn

from xaibench.explainers.base import Explainer
from xaibench.explainers.inputs import Baseline, PerturbationView, feature_grouping
from xaibench.explainers.perturbation._batching import check_perturbations_per_eval
from xaibench.explainers.seeding import sample_seeds, seeded
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
    """captum ``Lime``: a sparse linear surrogate over binary interpretable features, fitted per sample.

    Features as in Kernel SHAP (columns, ``patch_size`` squares, series windows, tokens); an absent feature takes
    its ``baseline`` (text: ``pad_id``). ``n_samples`` perturbations (Bernoulli(0.5) per feature), evaluated
    ``perturbations_per_eval`` per forward (>= 2), weighted by ``binary_cosine_kernel(kernel_width)`` (the lime
    library's choice for images and text, used for every modality so weights do not depend on the baseline
    values), and a Lasso with penalty ``alpha`` (0: least squares). Each sample is explained alone under its own
    seed: a batch equals each sample alone (tolerance 1e-5). Output: the surrogate's coefficients shaped like ``x``.

    Feature grouping: each image patch's coefficient is copied to all ``patch_size**2`` of its pixels (series: to
    its ``patch_size`` steps), so a map sums to 4x the sum of the surrogate's coefficients with the default 2x2
    patches. Recorded in each row's ``method_params`` (``feature_grouping``, ``elements_per_group``).
    """

    positive_params = ("n_samples", "perturbations_per_eval", "patch_size", "kernel_width")
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

    @torch.no_grad()
    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view = PerturbationView.of(model, x, self.baseline)
        mask = view.feature_mask(self.patch_size)
        surrogate = SkLearnLasso(alpha=self.alpha) if self.alpha > 0 else SkLearnLinearRegression()
        method = Lime(view.forward, interpretable_model=surrogate, similarity_func=binary_cosine_kernel(self.kernel_width))
        maps = []
        for i, seed in enumerate(sample_seeds(view.inputs, "lime")):
            with seeded(seed, x.device):
                maps.append(method.attribute(
                    view.inputs[i : i + 1], baselines=view.baselines[i : i + 1], target=target[i : i + 1],
                    feature_mask=mask, n_samples=self.n_samples, perturbations_per_eval=self.perturbations_per_eval,
                ))
        return Explanation(view.to_output(torch.cat(maps)))
