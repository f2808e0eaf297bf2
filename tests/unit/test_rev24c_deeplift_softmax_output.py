"""DeepLIFT through a softmax at the model's output (review of byo24): what the map sums to, against the model's
own outputs, for every ``explain_output``, and which softmaxes count as the output.

The centred output rule is exact only where the forward returns ``log p`` (a ``log_softmax`` head, or a softmax the
suite takes the log of: ``outputs=probabilities``): the gradient ``I - 1 p^T`` of that normalisation leaves centred
multipliers as they are. A softmax returned as it is (``z = p`` read as logits) or kept aside (not returned) was
taken for such an output: ``explain_output=logit`` then explained ``log p_t`` instead of the returned ``z_t``.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from captum.attr import DeepLift
from torch import nn

import xaibench
import xaibench.explainers.gradient.deeplift as deeplift_module
from xaibench.explainers.output_rules import explained_value
from xaibench.registry import EXPLAINERS

X = torch.tensor([[0.9, -1.3, 0.4, 2.0], [-0.7, 0.2, 1.5, -2.2], [1.6, 0.3, -0.8, 0.1]])
TARGETS = torch.tensor([0, 1, 2])


class Net(nn.Module):
    """``Linear(4, 6) -> nn.ReLU -> Linear(6, 3)`` logits ``h``, then ``end``: ``logits``, ``log_softmax``,
    ``softmax``, ``nn.Softmax``, ``aside`` (a softmax kept as an attribute, logits returned) or ``sliced`` (the
    first 3 of a 4-class softmax: rows that do not sum to 1, so they pass as logits)."""

    def __init__(self, end: str) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.body = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 4 if end == "sliced" else 3))
        self.softmax = nn.Softmax(dim=1)
        self.end = end

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        if self.end == "aside":
            self.confidence = torch.softmax(h, dim=1).detach()  # for monitoring; not the output
            return h
        ends = {"logits": lambda: h, "log_softmax": lambda: F.log_softmax(h, dim=1), "nn.Softmax": lambda: self.softmax(h),
                "softmax": lambda: torch.softmax(h, dim=1), "sliced": lambda: torch.softmax(h, dim=1)[:, :3]}
        return ends[self.end]()


def change(net: Net, kind: str, baselines: torch.Tensor) -> torch.Tensor:
    """``T(X) - T(baselines)`` ``(N,)`` float64 of the explained output, from the model's own forward: ``logit`` is
    the returned score ``z_t``; the others are functions of the logits ``h`` before any normalisation (the same for
    ``log p``: they do not change when a constant is added to all logits)."""
    with torch.no_grad():
        if kind == "logit":
            return (net(X) - net(baselines)).double()[range(len(X)), TARGETS]
        return explained_value(kind, net.body(X), TARGETS) - explained_value(kind, net.body(baselines), TARGETS)


ENDS = [("logits", "logits"), ("log_softmax", "logits"), ("softmax", "probabilities"),
        ("nn.Softmax", "probabilities")]
KINDS = ["logit", "log_odds", "log_softmax", "probability"]  # a probability model has no logit (refused)


@pytest.mark.parametrize("end, outputs, kind", [(end, outputs, kind) for end, outputs in ENDS for kind in KINDS
                                                if not (outputs == "probabilities" and kind == "logit")])
@pytest.mark.parametrize("baseline", [0.0, 0.7])
def test_deeplift_sums_to_the_change_of_the_explained_output(end, outputs, kind, baseline):
    """Summation-to-delta against the model's own outputs, from a zero and a constant baseline."""
    net = Net(end).eval()
    attributions = torch.as_tensor(xaibench.explain(net, X, method="deeplift", targets=TARGETS, explain_output=kind,
                                                    outputs=outputs, baseline=baseline))
    expected = change(net, kind, torch.full_like(X, baseline))
    torch.testing.assert_close(attributions.sum(1).double(), expected, rtol=0, atol=3e-7)


@pytest.mark.parametrize("end, outputs", ENDS)
@pytest.mark.parametrize("kind", ["log_odds", "log_softmax", "probability"])
def test_deeplift_shap_sums_to_the_mean_change_over_its_drawn_baselines(end, outputs, kind, monkeypatch):
    """DeepLIFT-SHAP over 8 baselines drawn around 0.3 (std 1): the map sums to ``T(x) - mean_b T(b)``."""
    drawn = []
    draw = deeplift_module.baseline_distribution
    monkeypatch.setattr(deeplift_module, "baseline_distribution",
                        lambda *a, **k: drawn.append(draw(*a, **k).detach().clone()) or drawn[-1])
    net = Net(end).eval()
    attributions = torch.as_tensor(xaibench.explain(net, X, method="deeplift_shap", targets=TARGETS, outputs=outputs,
                                                    explain_output=kind, n_baselines=8, baseline_std=1.0, baseline=0.3))
    assert len(drawn) == len(X) and {len(b) for b in drawn} == {8}
    with torch.no_grad():
        expected = torch.stack([explained_value(kind, net.body(X[i : i + 1]), TARGETS[i : i + 1])[0]
                                - explained_value(kind, net.body(b), TARGETS[i].expand(8)).mean()
                                for i, b in enumerate(drawn)])
    torch.testing.assert_close(attributions.sum(1).double(), expected, rtol=0, atol=3e-7)


def test_on_a_model_without_softmax_logit_is_captums_deeplift():
    """No normalisation anywhere: ``explain_output=logit`` is captum's ``DeepLift`` map itself."""
    net = Net("logits").eval()
    ours = torch.as_tensor(xaibench.explain(net, X, method="deeplift", targets=TARGETS, explain_output="logit"))
    captums = DeepLift(net).attribute(X.clone().requires_grad_(True), baselines=torch.zeros_like(X), target=TARGETS)
    torch.testing.assert_close(ours, captums.detach(), rtol=0, atol=1e-7)


@pytest.mark.parametrize("method", ["deeplift", "deeplift_shap"])
def test_a_softmax_kept_aside_is_not_taken_for_the_output(method):
    """The forward returns its logits and keeps a softmax of them aside: the merged code took that softmax for the
    output and explained ``log p_t`` under ``explain_output=logit`` (sums -0.10, 0.10 where ``z_t`` changed by
    -0.19, 0.41). No output depends on it: the map is DeepLIFT's of ``z_t``, captum's own."""
    params = {"n_baselines": 2, "baseline_std": 0.0} if method == "deeplift_shap" else {}
    net = Net("aside").eval()
    attributions = torch.as_tensor(xaibench.explain(net, X, method=method, targets=TARGETS, explain_output="logit",
                                                    **params))
    captums = DeepLift(net).attribute(X.clone().requires_grad_(True), baselines=torch.zeros_like(X), target=TARGETS)
    torch.testing.assert_close(attributions, captums.detach(), rtol=0, atol=1e-7)
    torch.testing.assert_close(attributions.sum(1).double(), change(net, "logit", torch.zeros_like(X)),
                               rtol=0, atol=3e-7)


@pytest.mark.parametrize("method", ["deeplift", "deeplift_shap"])
def test_a_softmax_returned_as_logits_is_not_applicable(method):
    """Probabilities read as logits (an explainer called on the model itself, or rows that pass as logits: a slice
    of a softmax): the merged code explained ``log_softmax(p)_t``, neither ``p_t`` nor ``log p_t``, and captum's
    gradient through the softmax does not leave centred multipliers as they are (sums -0.100 where ``p_t`` changed
    by -0.076)."""
    params = {"n_baselines": 2, "baseline_std": 0.0} if method == "deeplift_shap" else {}
    explainer = EXPLAINERS.create(method, params)
    with pytest.raises(xaibench.NotApplicable, match="forward returns a softmax .*model.outputs=probabilities"):
        explainer.explain(Net("softmax").eval(), X, TARGETS)
    with pytest.raises(xaibench.NotApplicable, match="forward returns a softmax"):
        xaibench.explain(Net("sliced").eval(), X, method=method, targets=TARGETS, explain_output="log_odds", **params)
