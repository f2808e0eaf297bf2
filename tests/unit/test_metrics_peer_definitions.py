"""Metrics defined as peers define them (captum, Kindermans et al., ERASER/ferret, OpenXAI, exact Shapley values),
each checked against a closed form or a direct re-computation on the same inputs.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xaibench.explainers.seeding import generator, sample_seeds
from xaibench.metrics import testing
from xaibench.metrics.quantus_adapter import score
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.types import Modality, Status


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def linear(n_features: int = 5, n_classes: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_features, n_classes)).eval()


def values(name: str, ctx, seed: int = 7, **params) -> np.ndarray:
    result = score(METRICS.get(name), params, ctx, seed=seed)
    assert all(s == Status.OK.value for s in result.status), result.message
    return result.values


# captum infidelity ------------------------------------------------------------------------------------------
def test_captum_infidelity_is_zero_for_the_gradient_of_a_linear_model() -> None:
    model = linear()
    x = torch.randn(4, 5)
    ctx = testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("saliency", {"abs": False}))
    for normalize in (True, False):
        np.testing.assert_allclose(values("captum_infidelity", ctx, normalize=normalize), 0.0, atol=1e-9)


def test_captum_infidelity_equals_its_definition_on_the_same_perturbations() -> None:
    """``mean_s (I_s . a - (f(x) - f(x - I_s)))^2`` recomputed from the per-sample draws the metric uses."""
    torch.manual_seed(0)
    model = testing.tiny_mlp(5, 3)
    x, a = torch.randn(3, 5), torch.randn(3, 5)
    ctx = testing.context(model, Modality.TABULAR, x, None, attributions=a)
    got = values("captum_infidelity", ctx, seed=11, normalize=False, n_perturb_samples=50, noise_std=0.3)
    torch.manual_seed(11)  # what the adapter's seed_everything does before a native metric
    expected = []
    for i, seed in enumerate(sample_seeds(x, "captum_infidelity")):
        noise = torch.randn((50, 5), generator=generator(seed)) * 0.3
        with torch.no_grad():
            drop = model(x[i : i + 1])[0, ctx.targets[i]] - model(x[i : i + 1] - noise)[:, ctx.targets[i]]
        expected.append(float((((noise * a[i]).sum(dim=1) - drop) ** 2).mean()))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_captum_infidelity_of_a_wrong_linear_attribution_approaches_sigma_squared_distance() -> None:
    """Linear f: E[(I.(a - w))^2] = sigma^2 ||a - w||^2 (Monte Carlo with 4000 draws: within 10%)."""
    model = linear()
    x, a = torch.randn(2, 5), torch.randn(2, 5)
    ctx = testing.context(model, Modality.TABULAR, x, None, attributions=a)
    got = values("captum_infidelity", ctx, normalize=False, n_perturb_samples=4000, noise_std=0.5)
    w = model[1].weight.detach()[ctx.targets]
    np.testing.assert_allclose(got, 0.25 * ((a - w) ** 2).sum(dim=1).numpy(), rtol=0.1)


# input invariance --------------------------------------------------------------------------------------------
def test_input_invariance_closed_forms_on_a_linear_model() -> None:
    """Gradient: invariant (0). x * gradient and zero-baseline IG give ``sum|c w| / sum|x w|`` exactly."""
    model = linear()
    x = torch.randn(4, 5)
    gradient = testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("saliency", {"abs": False}))
    np.testing.assert_allclose(values("input_invariance", gradient, shift=1.5), 0.0, atol=1e-6)
    for name, params in (("input_x_gradient", {}), ("integrated_gradients", {"n_steps": 4, "baseline": 0.0})):
        ctx = testing.context(model, Modality.TABULAR, x, EXPLAINERS.create(name, params))
        w = model[1].weight.detach()[ctx.targets]
        expected = (1.5 * w).abs().sum(dim=1) / (x * w).abs().sum(dim=1)
        np.testing.assert_allclose(values("input_invariance", ctx, shift=1.5), expected.numpy(), rtol=1e-4)


def test_input_invariance_absorbs_the_shift_into_a_padded_convolution() -> None:
    """A zero-padded first conv gets an explicit pad of value c: gradients stay invariant on the whole image."""
    torch.manual_seed(0)
    model = testing.tiny_cnn(2)
    x, _, _ = testing.bar_images(3)
    ctx = testing.context(model, Modality.IMAGE, x, EXPLAINERS.create("saliency", {"abs": False}))
    np.testing.assert_allclose(values("input_invariance", ctx, shift=-1.0), 0.0, atol=1e-5)
    ixg = testing.context(model, Modality.IMAGE, x, EXPLAINERS.create("input_x_gradient", {}))
    assert (values("input_invariance", ixg, shift=-1.0) > 0.1).all()
