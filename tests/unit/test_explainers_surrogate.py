"""The vectorised Kernel SHAP / LIME are captum's estimator: exact on linear models, captum's answer otherwise.

On a model with M = 5 interpretable features the exact Shapley values are computed by enumerating all 2^M
coalitions; our Kernel SHAP and captum's ``KernelShap`` (same ``n_samples``) must both land within sampling
tolerance of them and of each other. LIME (Lasso and plain least squares) is compared with captum's ``Lime`` built
with the same kernel, surrogate and baseline: both estimate the same population fit.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from captum._utils.models.linear_model import SkLearnLasso, SkLearnLinearRegression
from captum.attr import KernelShap, Lime
from torch import nn

from xaibench.explainers.perturbation import _surrogate
from xaibench.explainers.perturbation.lime import binary_cosine_kernel
from xaibench.registry import EXPLAINERS

M = 5


def _model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(M, 16), nn.Tanh(), nn.Linear(16, 2)).eval()


def _exact_shapley(model: nn.Module, x: torch.Tensor, baseline: torch.Tensor, target: int) -> np.ndarray:
    """Shapley values of f_target over the M features, absent = baseline, by enumeration."""
    def value(subset: tuple[int, ...]) -> float:
        z = torch.zeros(M)
        z[list(subset)] = 1.0
        with torch.no_grad():
            return float(model((x * z + baseline * (1 - z))[None])[0, target])

    phi = np.zeros(M)
    for i in range(M):
        others = [j for j in range(M) if j != i]
        for size in range(M):
            for subset in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(M - size - 1) / math.factorial(M)
                phi[i] += weight * (value(tuple(sorted(subset + (i,)))) - value(subset))
    return phi


def _explain(name: str, model: nn.Module, x: torch.Tensor, target: torch.Tensor, **params) -> np.ndarray:
    torch.manual_seed(0)
    explainer = EXPLAINERS.create(name, {"perturbations_per_eval": 256, **params})
    return explainer.explain(model, x, target).attributions.numpy()


def test_kernel_shap_agrees_with_the_exact_shapley_values_and_captum() -> None:
    model = _model()
    x = torch.randn(3, M)
    target = torch.tensor([0, 1, 0])
    ours = _explain("kernel_shap", model, x, target, n_samples=600)
    torch.manual_seed(0)
    theirs = torch.cat([KernelShap(model).attribute(x[i:i + 1], baselines=torch.zeros(1, M), target=int(target[i]),
                                                    n_samples=600, perturbations_per_eval=256) for i in range(3)])
    for i in range(3):
        exact = _exact_shapley(model, x[i], torch.zeros(M), int(target[i]))
        scale = np.abs(exact).max()
        np.testing.assert_allclose(ours[i], exact, atol=0.05 * scale)
        np.testing.assert_allclose(theirs[i].numpy(), exact, atol=0.05 * scale)
        np.testing.assert_allclose(ours[i], theirs[i].numpy(), atol=0.1 * scale)
        assert ours[i].sum() == pytest.approx(exact.sum(), rel=1e-4)  # efficiency: the 1e6-weighted end points


@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_lime_agrees_with_captum(alpha: float) -> None:
    model = _model()
    x = torch.randn(2, M)
    target = torch.tensor([1, 0])
    ours = _explain("lime", model, x, target, n_samples=1500, alpha=alpha, kernel_width=0.25)
    surrogate = SkLearnLasso(alpha=alpha) if alpha > 0 else SkLearnLinearRegression()
    lime = Lime(model, interpretable_model=surrogate, similarity_func=binary_cosine_kernel(0.25))
    torch.manual_seed(0)
    theirs = torch.cat([lime.attribute(x[i:i + 1], baselines=torch.zeros(1, M), target=int(target[i]),
                                       n_samples=1500, perturbations_per_eval=256) for i in range(2)]).numpy()
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours, theirs, atol=0.1 * scale)


def test_kernel_shap_sampling_follows_captums_distribution() -> None:
    """Full and empty coalition first; the number kept k follows p(k) = (M-1) / (k (M-k)), normalised."""
    coalitions = _surrogate.kernel_shap_coalitions(M, 20_002, torch.Generator().manual_seed(0))
    assert coalitions[0].sum() == M and coalitions[1].sum() == 0
    kept = coalitions[2:].sum(dim=1).long()
    k = np.arange(1, M)
    expected = (M - 1) / (k * (M - k))
    expected /= expected.sum()
    observed = np.bincount(kept.numpy(), minlength=M)[1:M] / len(kept)
    np.testing.assert_allclose(observed, expected, atol=0.015)
    assert set(kept.tolist()) <= set(range(1, M))


def test_weighted_least_squares_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, (2, 30, 4)).astype(float)
    y = rng.normal(size=(2, 30))
    w = rng.uniform(0.5, 2.0, (2, 30))
    ours = _surrogate.weighted_least_squares(torch.as_tensor(z), torch.as_tensor(y), torch.as_tensor(w)).numpy()
    for i in range(2):
        design = np.hstack([z[i], np.ones((30, 1))]) * np.sqrt(w[i])[:, None]
        expected = np.linalg.lstsq(design, y[i] * np.sqrt(w[i]), rcond=None)[0][:4]
        np.testing.assert_allclose(ours[i], expected, rtol=1e-10, atol=1e-10)
