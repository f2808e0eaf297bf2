"""Own networks under the hooked methods (DeepLIFT, DeepLIFT-SHAP, guided backprop): a ReLU written without
``relu`` (``x.clamp(min=0)``, ``torch.maximum(x, zeros)`` ...) is not_applicable, as ``F.relu`` is, instead of a
plain gradient under the method's name; elementwise modules captum's DeepLIFT has no rule for (``nn.GELU``,
``nn.SiLU`` ...) get DeepLIFT's Rescale rule, checked against its closed form on a one-unit network.
"""
from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR
from torch import nn

import xaibench
from xaibench.explainers.module_calls import relu_spelling

SPELLINGS = {  # how the forward writes max(z, 0), and the name the refusal gives it
    "clamp": (lambda z: z.clamp(min=0), "clamp(min=0)"),
    "torch.clamp": (lambda z: torch.clamp(z, 0), "clamp(min=0)"),
    "clamp_min": (lambda z: z.clamp_min(0), "clamp_min(0)"),
    "maximum": (lambda z: torch.maximum(z, torch.zeros_like(z)), "maximum(x, 0)"),
    "where": (lambda z: torch.where(z > 0, z, 0.0), "where(x > 0, x, 0)"),
    "threshold": (lambda z: F.threshold(z, 0.0, 0.0), "threshold(x, 0, 0)"),
    "mask": (lambda z: z * (z > 0), "x * (x > 0)"),
}


class Hinge(nn.Module):
    """``h = a(x - 1)`` for an activation ``a`` (a module or a function), logits ``(h, -h)`` of one input."""

    def __init__(self, activation) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.activation = activation
        with torch.no_grad():
            self.linear.weight.fill_(1.0)
            self.linear.bias.fill_(-1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.activation(self.linear(x))
        return torch.cat([h, -h], dim=1)


def explain(model: nn.Module, method: str) -> torch.Tensor:
    """``method``'s map of logit 0 at ``x = 3`` from the baseline 0 (``z = 2`` against ``z' = -1``)."""
    params = {"n_baselines": 2, "baseline_std": 0.0} if method == "deeplift_shap" else {}
    return torch.as_tensor(xaibench.explain(model, torch.tensor([[3.0]]), method=method, targets=torch.tensor([0]),
                                            explain_output="logit", **params))


@pytest.mark.parametrize("method", ["deeplift", "deeplift_shap", "guided_backprop"])
@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_a_relu_spelt_without_relu_makes_hooked_methods_not_applicable(method, spelling):
    """The old code returned DeepLIFT 3.0 (gradient x input, not the Rescale rule's relu(2) - relu(-1) = 2) and
    guided backprop's plain gradient, under the methods' names: the look only knew ``relu`` by name."""
    activation, name = SPELLINGS[spelling]
    torch.testing.assert_close(activation(torch.tensor([-1.0, 2.0])), torch.tensor([0.0, 2.0]))  # it is a ReLU
    with pytest.raises(xaibench.NotApplicable, match=rf"forward calls {re.escape(name)} as (a function|functions) "
                                                     r"\(F\.relu, x\.relu\(\), x\.clamp\(min=0\)"):
        explain(Hinge(activation), method)


def test_other_clamps_and_masks_are_not_taken_for_a_relu():
    z = torch.tensor([[-1.0, 2.0, 0.5]])
    assert relu_spelling("clamp", (z,), {"min": 0, "max": 6}) == ""  # ReLU6: a bounded clamp
    assert relu_spelling("clamp", (z, -1.0), {}) == ""
    assert relu_spelling("clamp_min", (z, 1e-6), {}) == ""  # a floor before a log
    assert relu_spelling("maximum", (z, torch.ones_like(z)), {}) == ""
    assert relu_spelling("where", (z > 1, z, 0.0), {}) == ""  # another threshold
    assert relu_spelling("where", (z > 0, z, 1.0), {}) == ""
    assert relu_spelling("mul", (z, z < 0), {}) == ""
    assert relu_spelling("clamp", (z,), {"min": torch.zeros(())}) == "clamp(min=0)"
    assert relu_spelling("max", (torch.zeros(1), z), {}) == "maximum(x, 0)"
    # a network whose clamp is no ReLU keeps guided backprop (its plain gradient through the clamp: 1 at z = 2)
    torch.testing.assert_close(explain(Hinge(lambda h: h.clamp(min=-5.0)), "guided_backprop"), torch.tensor([[1.0]]))


def gelu(z: float) -> float:
    return z * 0.5 * (1.0 + torch.erf(torch.tensor(z) / 2**0.5).item())


def silu(z: float) -> float:
    return z / (1.0 + torch.exp(torch.tensor(-z)).item())


@pytest.mark.parametrize("method", ["deeplift", "deeplift_shap"])
@pytest.mark.parametrize("module, f", [(nn.GELU, gelu), (nn.SiLU, silu)], ids=["gelu", "silu"])
def test_deeplift_rescales_elementwise_modules_captum_has_no_rule_for(method, module, f):
    """DeepLIFT's Rescale rule on ``a = GELU`` gives ``a(2) - a(-1)`` (summation to delta: one input); captum alone
    crossed ``nn.GELU`` with its gradient, ``a'(2) * 3`` (3.26 for GELU instead of 2.11), unflagged."""
    expected = f(2.0) - f(-1.0)
    torch.testing.assert_close(explain(Hinge(module()), method), torch.tensor([[expected]]), rtol=1e-5, atol=1e-6)
    assert module not in SUPPORTED_NON_LINEAR  # the rule is the suite's, for its calls: captum is left as it ships
    with pytest.raises(xaibench.NotApplicable, match=r"forward calls (gelu|silu) as functions \(F\.relu"):
        explain(Hinge(getattr(F, module.__name__.lower())), method)  # F.gelu: no module to apply it to


def test_a_rescaled_module_used_twice_is_not_applicable_naming_it():
    """captum keeps one state per hooked module: a GELU applied twice, now hooked, would raise mid-call."""
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first, self.second, self.act = nn.Linear(2, 2), nn.Linear(2, 2), nn.GELU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.second(self.act(self.first(x))).sub(self.act(x))

    with pytest.raises(xaibench.NotApplicable, match=r"calls act \(nn\.GELU\) twice each or more"):
        xaibench.explain(Twice(), torch.randn(2, 2), method="deeplift", explain_output="logit")



class MaskedAttention(nn.Module):
    """Sigmoid weights over 3 slots, kept by a mask of the slots to keep (``torch.where(keep, weights, 0)`` or
    ``weights * keep``), then a linear read-out: no ReLU anywhere. ``masked=False``: the same network without the mask
    step (all slots kept, so both compute the same function)."""

    def __init__(self, spelling: str, masked: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.scores, self.sigmoid, self.readout = nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 2)
        self.spelling, self.masked = spelling, masked

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.sigmoid(self.scores(x))  # all > 0 (a module: a softmax inside the network is refused)
        if self.masked:
            keep = torch.ones_like(weights, dtype=torch.bool)  # no slot padded: all True, so it equals weights > 0
            weights = torch.where(keep, weights, 0.0) if self.spelling == "where" else weights * keep
        return self.readout(weights)


@pytest.mark.parametrize("spelling", ["where", "mask"])
def test_a_mask_that_only_equals_x_gt_0_on_the_values_is_no_relu(spelling):
    """The old look compared the mask's values with ``x > 0``: an all-True keep mask over softmax weights matched,
    and DeepLIFT was refused on a network with no ReLU ("calls where(x > 0, x, 0) as a function"). A mask counts only
    when the forward made it as ``x > 0`` of that very ``x``; the map is the one of the network without the mask."""
    x = torch.tensor([[0.5, -1.0]])
    expected = xaibench.explain(MaskedAttention(spelling, masked=False), x, method="deeplift",
                                targets=torch.tensor([0]), explain_output="logit")
    got = xaibench.explain(MaskedAttention(spelling), x, method="deeplift", targets=torch.tensor([0]),
                           explain_output="logit")
    torch.testing.assert_close(torch.as_tensor(got), torch.as_tensor(expected))


class LastStep(nn.Module):
    """Reads the last non-zero step of ``x (N, 4)``: its index ``count_nonzero - 1`` clamped at 0 (an integer tensor:
    no activation), then ``nn.ReLU`` and logits ``(h, -h)``. ``clamped=False``: the same index floored at 0 by
    ``masked_fill`` (the baseline, all zeros, has index -1)."""

    def __init__(self, clamped: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear, self.relu, self.clamped = nn.Linear(4, 4), nn.ReLU(), clamped

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = torch.count_nonzero(x, dim=1) - 1
        last = last.clamp(min=0) if self.clamped else last.masked_fill(last < 0, 0)
        h = self.relu(self.linear(x).gather(1, last[:, None]))
        return torch.cat([h, -h], dim=1)


@pytest.mark.parametrize("method", ["guided_backprop", "deeplift"])
def test_an_integer_clamp_at_zero_is_no_relu(method):
    """The old look took ``(lengths - 1).clamp(min=0)`` on an integer index for a ReLU and refused the hooked methods;
    integer tensors carry no gradient, so only floating-point ones count. The map is the one of the index floored
    another way."""
    assert relu_spelling("clamp", (torch.tensor([3, -1]),), {"min": 0}) == ""
    assert relu_spelling("clamp", (torch.tensor([3.0, -1.0]),), {"min": 0}) == "clamp(min=0)"
    assert relu_spelling("maximum", (torch.tensor([3, -1]), torch.zeros(2, dtype=torch.long)), {}) == ""
    assert relu_spelling("maximum", (torch.tensor([3.0, -1.0]), torch.tensor(0)), {}) == "maximum(x, 0)"
    x = torch.tensor([[1.0, 2.0, 0.5, 0.0]])
    expected = xaibench.explain(LastStep(clamped=False), x, method=method, targets=torch.tensor([0]),
                                explain_output="logit")
    got = xaibench.explain(LastStep(), x, method=method, targets=torch.tensor([0]), explain_output="logit")
    torch.testing.assert_close(torch.as_tensor(got), torch.as_tensor(expected))
