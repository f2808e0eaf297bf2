"""Reference checks of the methods added for LATEC's set: closed forms or direct re-implementations.

- Guided Backprop: equals the plain gradient on a model without ReLU; on ``w2 . relu(W1 x + b1)`` it is
  ``W1^T (1[W1 x + b1 > 0] * relu(w2))``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xaibench.registry import EXPLAINERS


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: intra-op threads only add contention on a busy runner."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(name: str, **params):
    return EXPLAINERS.create(name, params)


def run(explainer, model: nn.Module, x: torch.Tensor, target: torch.Tensor, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    np.random.seed(seed)
    return explainer.explain(model.eval(), x, target).attributions


# Guided Backprop ---------------------------------------------------------------------------------------------
def test_guided_backprop_is_the_gradient_without_relu() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    x, target = torch.randn(4, 5), torch.tensor([0, 1, 2, 1])
    guided = run(make("guided_backprop"), model, x, target)
    gradient = run(make("saliency", abs=False), model, x, target)
    torch.testing.assert_close(guided, gradient, rtol=0, atol=1e-7)


def test_guided_backprop_matches_its_closed_form_on_one_relu_layer() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 9), nn.ReLU(), nn.Linear(9, 3))
    x, target = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    w1, b1, w2 = model[0].weight.detach(), model[0].bias.detach(), model[2].weight.detach()
    active = (x @ w1.T + b1 > 0).float()  # (N, H)
    expected = (active * w2[target].clamp(min=0)) @ w1  # (N, F)
    guided = run(make("guided_backprop"), model, x, target)
    torch.testing.assert_close(guided, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(guided, run(make("saliency", abs=False), model, x, target))
