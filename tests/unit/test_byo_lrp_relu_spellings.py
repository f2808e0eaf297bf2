"""LRP on own networks whose ReLU is written without ``relu`` (``x.clamp(min=0)``, ``torch.maximum(x, zeros)`` ...):
each such spelling computes ReLU exactly and passes relevance as captum's ``nn.ReLU`` does (a zero activation has
no relevance to pass), so LRP runs on them and gives the relevances of the same network built with ``nn.ReLU``.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import xaibench

SPELLINGS = {  # how the forward writes max(z, 0)
    "relu": lambda z: F.relu(z),
    "clamp": lambda z: z.clamp(min=0),
    "torch.clamp": lambda z: torch.clamp(z, 0),
    "clamp_min": lambda z: z.clamp_min(0),
    "maximum": lambda z: torch.maximum(z, torch.zeros_like(z)),
    "where": lambda z: torch.where(z > 0, z, 0.0),
    "threshold": lambda z: F.threshold(z, 0.0, 0.0),
    "mask": lambda z: z * (z > 0),
}


class TwoHidden(nn.Module):
    """``Linear(6, 8) -> a -> Linear(8, 5) -> a -> Linear(5, 3)`` for an activation ``a`` (a function or ``nn.ReLU``
    modules), with biases: a layer sees negative, zero and positive pre-activations."""

    def __init__(self, activation=None) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.first, self.second, self.head = nn.Linear(6, 8), nn.Linear(8, 5), nn.Linear(5, 3)
        self.activation = activation
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act1, act2 = (self.activation, self.activation) if self.activation else (self.relu1, self.relu2)
        return self.head(act2(self.second(act1(self.first(x)))))


@pytest.mark.parametrize("rule", ["epsilon", "gamma", "alpha1_beta0"])
@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_lrp_runs_on_relu_spellings_with_the_relevances_of_nn_relu(spelling, rule):
    """The old code refused every spelling but ``F.relu`` ("computes clamp(min=0) outside them"), though each is
    ReLU itself. Relevances equal those of ``nn.ReLU`` modules to 1e-6, for each rule."""
    x = torch.randn(7, 6, generator=torch.Generator().manual_seed(0))
    x[0, :] = 0.0  # a sample whose first layer's activations are its biases: zeros and ties
    spelt, modules = TwoHidden(SPELLINGS[spelling]).eval(), TwoHidden().eval()
    with torch.no_grad():
        spelt.first.bias[:2] = 0.0  # pre-activations exactly 0 on the zero sample (the spellings' ties)
        modules.load_state_dict(spelt.state_dict())
        assert (spelt.first(x) == 0).any() and (spelt.first(x) < 0).any()
    target = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    expected = xaibench.explain(modules, x, method="lrp", targets=target, explain_output="logit", rule=rule)
    got = xaibench.explain(spelt, x, method="lrp", targets=target, explain_output="logit", rule=rule)
    assert torch.as_tensor(expected).abs().max() > 0.1
    torch.testing.assert_close(torch.as_tensor(got), torch.as_tensor(expected), rtol=0, atol=1e-6)


@pytest.mark.parametrize("not_relu, name", [
    (lambda z: z.clamp(min=-1.0), "clamp"), (lambda z: torch.where(z > 1, z, 0.0), "where"),
    (lambda z: z * (z > 1), "mul"), (lambda z: torch.maximum(z, torch.ones_like(z)), "maximum"),
])
def test_lrp_still_refuses_a_clamp_or_mask_that_is_no_relu(not_relu, name):
    """Only the exact ReLU spellings pass: another threshold is crossed by no LRP rule."""
    with pytest.raises(xaibench.NotApplicable, match=rf"this model's forward computes .*\b{name}\b.* outside them"):
        xaibench.explain(TwoHidden(not_relu).eval(), torch.randn(2, 6), method="lrp", targets=torch.tensor([0, 1]),
                         explain_output="logit")


@pytest.mark.parametrize("rule", ["epsilon", "gamma", "alpha1_beta0"])
def test_nn_relu_networks_keep_captums_relevances(rule):
    """The ReLU functions' new backward leaves ``nn.ReLU`` modules (in place or not) to captum's own hook: the suite's
    relevances are captum's ``LRP`` run directly."""
    from captum.attr import LRP
    from captum.attr._utils.lrp_rules import Alpha1_Beta0_Rule, EpsilonRule, GammaRule

    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 1, 2, 0])
    for inplace in (False, True):
        net = TwoHidden().eval()
        net.relu1.inplace = net.relu2.inplace = inplace
        got = xaibench.explain(net, x, method="lrp", targets=target, explain_output="logit", rule=rule)
        make = {"epsilon": lambda: EpsilonRule(1e-9), "gamma": lambda: GammaRule(0.25),
                "alpha1_beta0": Alpha1_Beta0_Rule}[rule]
        for layer in (net.first, net.second, net.head):
            layer.rule = make()
        expected = LRP(net).attribute(x.clone().requires_grad_(True), target=target).detach()
        torch.testing.assert_close(torch.as_tensor(got), expected, rtol=1e-5, atol=1e-7)


def test_a_functional_relu_in_place_is_refused_where_its_mask_would_be_wrong():
    """In place, the ReLU keeps no input to pass relevance through: fine under epsilon (its mask is exact there), not
    under gamma, where the old code returned the masked (wrong) relevances."""
    net = TwoHidden(lambda z: F.relu(z, inplace=True)).eval()
    x, target = torch.randn(3, 6, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 1, 2])
    expected = xaibench.explain(TwoHidden().eval(), x, method="lrp", targets=target, explain_output="logit")
    got = xaibench.explain(net, x, method="lrp", targets=target, explain_output="logit")
    torch.testing.assert_close(torch.as_tensor(got), torch.as_tensor(expected), rtol=0, atol=1e-6)
    with pytest.raises(xaibench.NotApplicable, match=r"gamma and alpha1_beta0 rules .* applies one in place"):
        xaibench.explain(net, x, method="lrp", targets=target, explain_output="logit", rule="gamma")
