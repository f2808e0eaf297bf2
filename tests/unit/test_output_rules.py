"""DeepLIFT and LRP through a non-logit ``explain_output``: the declared output rules keep summation-to-delta and
conservation for the explained output (``xaibench/explainers/output_rules.py``)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from xaibench.explainers.output import EXPLAIN_OUTPUTS, explained_output
from xaibench.explainers.output_rules import deeplift_multipliers, explained_value, lrp_logit_relevance
from xaibench.metrics import testing
from xaibench.registry import EXPLAINERS


def mlp(bias: bool = True) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Linear(5, 8, bias=bias), nn.ReLU(), nn.Linear(8, 6, bias=bias), nn.ReLU(), nn.Linear(6, 3, bias=bias)]
    return nn.Sequential(*layers).eval()


X = 2.0 * torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
TARGET = torch.tensor([0, 1, 2, 0, 1, 2])


def output_of(model: nn.Module, kind: str, x: torch.Tensor) -> torch.Tensor:
    """The explained output ``(N,)`` float64, computed by the wrapper the explainers see."""
    with torch.no_grad():
        return explained_output(model, kind)(x).gather(1, TARGET[:, None]).squeeze(1).double()


@pytest.mark.parametrize("kind", EXPLAIN_OUTPUTS)
def test_deeplift_sums_to_the_change_of_the_explained_output(kind):
    model = mlp()
    attributions = EXPLAINERS.create("deeplift").explain(explained_output(model, kind), X, TARGET).attributions
    change = output_of(model, kind, X) - output_of(model, kind, torch.zeros_like(X))
    torch.testing.assert_close(attributions.double().sum(1), change, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["log_odds", "probability"])
def test_deeplift_shap_sums_to_the_mean_change_over_its_baselines(kind):
    model = mlp()
    explainer = EXPLAINERS.create("deeplift_shap", {"n_baselines": 4})
    result = explainer.explain(explained_output(model, kind), X[:2], TARGET[:2])
    assert result.extras["convergence_delta"].max() < 1e-5  # per baseline: sum = T(x) - T(b)
    logit = explainer.explain(model, X[:2], TARGET[:2]).attributions  # the logit path: captum's DeepLiftShap
    assert not torch.allclose(result.attributions, logit)


def test_deeplift_multipliers_are_exact_secants_even_for_confident_logits():
    z = torch.tensor([[90.0, 0.0, 1.0], [0.5, 1.0, 2.0], [3.0, -2.0, 0.0]], dtype=torch.float64)
    z_ref = torch.tensor([[0.0, 0.0, 0.0], [0.5, 1.0, 2.0], [-1.0, 4.0, 0.5]], dtype=torch.float64)
    target = torch.tensor([0, 2, 1])
    for kind in ("log_odds", "log_softmax", "probability"):
        m = deeplift_multipliers(kind, z, z_ref, target)
        change = explained_value(kind, z, target) - explained_value(kind, z_ref, target)
        torch.testing.assert_close((m * (z - z_ref)).sum(1), change, rtol=1e-12, atol=1e-12)
    # two classes: the log-odds is z_t - z_other, so the multipliers are exactly (1, -1)
    two = deeplift_multipliers("log_odds", z[:, :2], z_ref[:, :2], torch.tensor([0, 1, 0]))
    torch.testing.assert_close(two, torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, -1.0]], dtype=torch.float64))


def test_deeplift_multipliers_stay_finite_when_the_competitors_fall_far_below_the_reference():
    """A confident prediction pushes the competitors' logits down: at 60 nats below the reference their share
    e^-60 vanishes against the reference's in float64, and the log step's secant was computed as log1p(-1) = -inf,
    so DeepLIFT's map of every such sample was NaN (and its re-explanations in the stability metrics inf/NaN)."""
    z = torch.tensor([[60.0, -60.0], [50.0, -45.0], [800.0, -800.0]], dtype=torch.float64)
    z_ref = torch.zeros_like(z)
    two = deeplift_multipliers("log_odds", z, z_ref, torch.tensor([0, 0, 0]))
    torch.testing.assert_close(two, torch.tensor([[1.0, -1.0]] * 3, dtype=torch.float64))
    three = torch.tensor([[50.0, -45.0, -40.0]], dtype=torch.float64)
    three_ref = torch.tensor([[0.0, 0.5, 0.0]], dtype=torch.float64)
    for kind in ("log_odds", "log_softmax", "probability"):
        m = deeplift_multipliers(kind, three, three_ref, torch.tensor([0]))
        change = explained_value(kind, three, torch.tensor([0])) - explained_value(kind, three_ref, torch.tensor([0]))
        assert torch.isfinite(m).all(), kind
        torch.testing.assert_close((m * (three - three_ref)).sum(1), change, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", EXPLAIN_OUTPUTS)
def test_lrp_conserves_the_explained_output_on_a_bias_free_relu_network(kind):
    # before the output rule, captum backpropagated the transform's gradient, whose logit entries sum to 0:
    # the relevance of every non-logit output summed to 0
    model = mlp(bias=False)
    result = EXPLAINERS.create("lrp").explain(explained_output(model, kind), X, TARGET)
    torch.testing.assert_close(result.attributions.double().sum(1), output_of(model, kind, X), rtol=1e-5, atol=1e-6)
    assert result.extras["convergence_delta"].max() < 1e-5


def test_lrp_of_binary_log_odds_is_lrp_of_the_logit_difference():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8, bias=False), nn.ReLU(), nn.Linear(8, 2, bias=False)).eval()
    target = torch.tensor([0, 1, 0, 1, 0, 1])
    lrp = EXPLAINERS.create("lrp")
    odds = lrp.explain(explained_output(model, "log_odds"), X, target).attributions
    own = lrp.explain(model, X, target).attributions
    other = lrp.explain(model, X, 1 - target).attributions
    torch.testing.assert_close(odds, own - other, rtol=1e-4, atol=1e-5)


def test_lrp_logit_relevance_shares_the_output_over_the_class_contrasts():
    z = torch.tensor([[2.0, 0.5, -1.0]], dtype=torch.float64)
    relevance = lrp_logit_relevance("log_odds", z, torch.tensor([0]), epsilon=0.0)
    value = 2.0 - torch.logsumexp(torch.tensor([0.5, -1.0], dtype=torch.float64), 0)
    shares = torch.softmax(torch.tensor([0.5, -1.0], dtype=torch.float64), 0) * value  # R_c of contrasts 1, 2
    contrasts = torch.tensor([1.5, 3.0], dtype=torch.float64)  # z_t - z_c
    expected = torch.stack([(shares * 2.0 / contrasts).sum(), -shares[0] * 0.5 / 1.5, -shares[1] * -1.0 / 3.0])
    torch.testing.assert_close(relevance[0], expected)
    torch.testing.assert_close(relevance.sum(), value)


def test_deeplift_on_text_sums_to_the_change_from_the_pad_sequence():
    torch.manual_seed(0)
    model = testing.TinyTextModel(n_classes=3).eval()
    ids = torch.randint(1, 20, (3, 8), generator=torch.Generator().manual_seed(2))
    target = torch.tensor([0, 1, 2])
    attributions = EXPLAINERS.create("deeplift").explain(explained_output(model, "log_odds"), ids, target).attributions
    with torch.no_grad():
        change = explained_value("log_odds", model(ids), target) - explained_value(
            "log_odds", model(torch.zeros_like(ids)), target)
    torch.testing.assert_close(attributions.double().sum(1), change, rtol=1e-5, atol=1e-6)
