"""DeepLIFT on operations it has no rule for: ``nn.LayerNorm``, ``nn.GLU``, attention products (``q @ k^T``,
``softmax(.) @ v``) and ``x * y`` of two input-dependent tensors. captum crosses them with their gradient at the
input, unflagged: each tiny network below checks that this is what captum computes there (gradient x input, which
breaks DeepLIFT's summation to ``f(x) - f(baseline)``), and that the suite now says so (``not_applicable``).
"""
from __future__ import annotations

import pytest
import torch
from captum.attr import DeepLift
from torch import nn

import xaibench
from xaibench.explainers.gradient._hooks import refuse_functional_deeplift

X = torch.tensor([[0.9, -1.3, 0.4, 2.0]])


class Norm(nn.Module):
    """``Linear(4, 3) -> LayerNorm(3) -> Linear(3, 2)``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inner, self.norm, self.out = nn.Linear(4, 3), nn.LayerNorm(3), nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(self.inner(x)))


class Gated(nn.Module):
    """``Linear(4, 6) -> GLU -> Linear(3, 2)``: ``a * sigmoid(b)`` of two halves."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.inner, self.glu, self.out = nn.Linear(4, 6), nn.GLU(), nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.glu(self.inner(x)))


class Product(nn.Module):
    """``Linear(4, 3)`` twice, their product ``a * b`` (a bilinear unit), then ``Linear(3, 2)``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.a, self.b, self.out = nn.Linear(4, 3), nn.Linear(4, 3), nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.a(x) * self.b(x))


class Attention(nn.Module):
    """Self-attention over 2 tokens of 2 features (``x (N, 4)``): ``nn.Softmax(q @ k^T) @ v``, then a read-out."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.qkv, self.softmax, self.out = nn.Linear(2, 6), nn.Softmax(dim=-1), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x.reshape(len(x), 2, 2)).chunk(3, dim=-1)
        return self.out((self.softmax(q @ k.transpose(1, 2)) @ v).reshape(len(x), 4))


CASES = {"layer_norm": (Norm, "layer_norm"), "glu": (Gated, "glu"), "product": (Product, r"mul\(x, y\)"),
         "attention": (Attention, r"matmul\(x, y\) \(2x\)")}


def captum_deeplift(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """captum's DeepLIFT of logit 0 at ``X`` from the zero baseline, and its summation-to-delta error."""
    return DeepLift(model).attribute(X.clone().requires_grad_(True), baselines=torch.zeros_like(X), target=0,
                                     return_convergence_delta=True)


@pytest.mark.parametrize("case", ["layer_norm", "glu", "product"])
def test_captum_crosses_these_with_the_gradient(case):
    """What captum computes there: exactly gradient x input (no hooked nonlinearity in these nets), off the output
    change by far more than rounding. What the sweep stored under ``deeplift``."""
    model = CASES[case][0]().eval()
    attributions, delta = captum_deeplift(model)
    x = X.clone().requires_grad_(True)
    gradient, = torch.autograd.grad(model(x)[0, 0], x)
    torch.testing.assert_close(attributions.detach(), gradient * X, rtol=1e-5, atol=1e-6)
    assert delta.abs().item() > 1e-2


def test_captum_breaks_summation_to_delta_on_attention():
    """With ``nn.Softmax`` captum's softmax rule runs, but the two products around it are crossed with their
    gradient: the map no longer sums to ``f(x) - f(0)``; written without the products (the same net with ``q @ k^T``
    replaced by learnt scores that do not depend on the input), DeepLIFT does."""
    model = Attention().eval()
    _, delta = captum_deeplift(model)
    assert delta.abs().item() > 1e-2
    class FixedScores(Attention):  # noqa: E306 - one use
        def __init__(self) -> None:
            super().__init__()
            self.scores = nn.Parameter(torch.tensor([[[1.0, -0.5], [0.2, 0.3]]]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            v = self.qkv(x.reshape(len(x), 2, 2)).chunk(3, dim=-1)[2]
            weights = self.softmax(self.scores.expand(len(x), 2, 2))
            return self.out((weights @ v).reshape(len(x), 4))
    assert captum_deeplift(FixedScores().eval())[1].abs().item() < 1e-5


@pytest.mark.parametrize("method", ["deeplift", "deeplift_shap"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_deeplift_is_not_applicable_where_no_rule_crosses(case, method):
    """The old code returned captum's maps above under the method's name (no status, no note)."""
    model, name = CASES[case]
    params = {"n_baselines": 2} if method == "deeplift_shap" else {}
    with pytest.raises(xaibench.NotApplicable, match=rf"forward computes {name} .*which no DeepLIFT rule crosses: "
                                                     r"captum would use their gradient"):
        xaibench.explain(model().eval(), X, method=method, targets=torch.tensor([0]), explain_output="logit",
                         **params)


class Scaled(nn.Module):
    """Products with one input-dependent side only: a learnt scale, a fixed mask, ``ones_like(x)``, attention over
    fixed weights."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.inner, self.relu, self.out = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)
        self.scale = nn.Parameter(torch.tensor([0.5, 2.0, 1.0, -1.0]))
        self.register_buffer("mask", torch.tensor([1.0, 0.0, 1.0, 1.0]))
        self.mixing = nn.Parameter(torch.eye(4) + 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.inner(x)) * self.scale * self.mask * torch.ones_like(x)
        return self.out((self.mixing.softmax(-1) @ h.unsqueeze(-1)).squeeze(-1) / 2.0)


def test_products_with_one_input_dependent_side_keep_deeplift():
    """A linear map of the input stays linear when scaled by parameters, buffers or constants: DeepLIFT runs, and
    sums to the output change."""
    attributions = xaibench.explain(Scaled().eval(), X, method="deeplift", targets=torch.tensor([0]),
                                    explain_output="logit")
    model = Scaled().eval()
    with torch.no_grad():
        change = model(X)[0, 0] - model(torch.zeros_like(X))[0, 0]
    torch.testing.assert_close(torch.as_tensor(attributions).sum(), change, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model_name, data_name", [("vit", "digits"), ("text_transformer", "synthetic_text")])
def test_the_zoos_transformers_are_not_applicable_under_deeplift(model_name, data_name):
    """Their LayerNorms and attention products were crossed with gradients (captum's behaviour), unflagged."""
    from xaibench.explainers.inputs import GradientView
    from xaibench.registry import DATASETS, MODELS

    data = DATASETS.create(data_name, {}).build(0)
    torch.manual_seed(0)
    model = MODELS.create(model_name, {}).build(data).eval()
    view = GradientView.of(model, data.test.x[:2])
    with pytest.raises(xaibench.NotApplicable, match=r"forward computes layer_norm \(5x\), matmul\(x, y\) \(4x\) "):
        refuse_functional_deeplift(view.forward, view.inputs, "deeplift")


def test_a_mask_made_from_the_input_is_no_second_factor():
    """A padding mask read off the input (``x != 0``, as a float) is piecewise constant: ``h * mask`` is no product of
    two input-dependent values (DeepLIFT keeps the model), while ``h * h`` is."""
    from collections import Counter

    from xaibench.explainers.gradient._hooks import _deeplift_covers
    from xaibench.explainers.module_calls import calls_outside

    class Padded(nn.Module):
        def __init__(self, square: bool) -> None:
            super().__init__()
            self.inner, self.out, self.square = nn.Linear(4, 4), nn.Linear(4, 2), square

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.inner(x)
            return self.out(h * (h if self.square else (x != 0).float()))

    masked: Counter = calls_outside(Padded(False), X, _deeplift_covers)
    assert masked["mul"] == 1 and not any("(x, y)" in name for name in masked)
    assert calls_outside(Padded(True), X, _deeplift_covers)["mul(x, y)"] == 1
