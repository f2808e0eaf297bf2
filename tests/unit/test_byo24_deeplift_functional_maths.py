"""DeepLIFT (and DeepLIFT-SHAP) on own networks that call non-linear maths as functions in ``forward``.

captum applies DeepLIFT's rules to nonlinearity *modules* only; ``torch.exp(h)``, ``h ** 2``, ``torch.sqrt``,
``torch.log``, ``torch.softmax`` inside the network, ``h.clamp(-1, 1)``, ``h.amax(dim)`` ... were crossed with their
gradient, unflagged, and the map no longer summed to ``f(x) - f(baseline)``. Such cells are now ``not_applicable``
with a reason naming the call (and the module to build instead, where torch has one); the same maths on parameters
(``torch.exp(self.log_scale)``) is a constant to DeepLIFT and keeps it. The module forms keep DeepLIFT, whose maps sum
to the output change (checked against the model's own outputs). A softmax (or log_softmax) that *is* the model's
output is crossed exactly now: centred output-rule multipliers (``output_rules.deeplift_multipliers``).
"""
from __future__ import annotations

import re
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import xaibench
from xaibench.explainers.gradient._hooks import _deeplift_covers
from xaibench.explainers.module_calls import calls_outside
from xaibench.explainers.output_rules import explained_value

X = torch.tensor([[0.9, -1.3, 0.4, 2.0], [-0.7, 0.2, 1.5, -2.2]])
TARGETS = torch.tensor([0, 1])


class Body(nn.Module):
    """``Linear(4, 3) -> activation -> Linear(3, 2)``; ``activation`` a function of ``h (N, 3)`` or a module."""

    def __init__(self, activation) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inner, self.out = nn.Linear(4, 3), nn.Linear(3, 2)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.activation(self.inner(x)))


# activation written as a function -> (the name the refusal gives it, the module it advises, or "")
FUNCTIONAL = {
    "torch.softmax": (lambda h: torch.softmax(h, dim=1), "softmax", ""),
    "F.softmax": (lambda h: F.softmax(h, dim=-1), "softmax", ""),
    "F.log_softmax": (lambda h: F.log_softmax(h, dim=1), "log_softmax", ""),
    "torch.exp": (torch.exp, "exp", ""),
    "torch.pow": (lambda h: torch.pow(h, 2), "pow", ""),
    "**": (lambda h: h ** 3, "pow", ""),
    "torch.sqrt": (lambda h: torch.sqrt(h + 5.0), "sqrt", ""),
    "torch.log": (lambda h: torch.log(h + 5.0), "log", ""),
    "abs": (lambda h: h.abs(), "abs", ""),
    "clamp": (lambda h: h.clamp(-0.5, 0.5), "clamp", "nn.Hardtanh(min, max)"),
    "amax": (lambda h: h - h.amax(dim=1, keepdim=True), "amax", ""),
    "torch.tanh": (torch.tanh, "tanh", "nn.Tanh()"),
    "F.tanh": (F.tanh, "tanh", "nn.Tanh()"),
    "torch.sigmoid": (torch.sigmoid, "sigmoid", "nn.Sigmoid()"),
    "F.sigmoid": (F.sigmoid, "sigmoid", "nn.Sigmoid()"),
    "F.gelu": (F.gelu, "gelu", "nn.GELU()"),
    "F.silu": (F.silu, "silu", "nn.SiLU()"),
    "F.elu": (F.elu, "elu", "nn.ELU()"),
    "F.leaky_relu": (lambda h: F.leaky_relu(h, 0.1), "leaky_relu", "nn.LeakyReLU()"),
}
MODULES = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "silu": nn.SiLU, "elu": nn.ELU,
           "leaky_relu": lambda: nn.LeakyReLU(0.1), "softplus": nn.Softplus}


def explain(model: nn.Module, method: str, explain_output: str = "logit", **kwargs) -> torch.Tensor:
    params = {"n_baselines": 2, "baseline_std": 0.0} if method == "deeplift_shap" else {}
    return torch.as_tensor(xaibench.explain(model.eval(), X, method=method, targets=TARGETS,
                                            explain_output=explain_output, **params, **kwargs))


@pytest.mark.parametrize("method", ["deeplift", "deeplift_shap"])
@pytest.mark.parametrize("call", sorted(FUNCTIONAL))
def test_a_functional_nonlinearity_inside_the_network_is_not_applicable_naming_it(call, method):
    """The old code returned captum's map (the call crossed with its gradient) for the maths (exp, pow, softmax...),
    and named no module for the activations (tanh, sigmoid...)."""
    activation, name, module = FUNCTIONAL[call]
    pattern = rf"forward (calls|computes) {name} (as|on activations as) functions"
    if module:
        pattern += rf".*{re.escape(module)}"
    with pytest.raises(xaibench.NotApplicable, match=pattern):
        explain(Body(activation), method)


def test_the_same_maths_on_parameters_keeps_deeplift():
    """``exp`` of a learnt log-scale and a softmax over learnt mixing weights are constants to DeepLIFT: it runs,
    and its map sums to the output change."""
    class Scaled(Body):
        def __init__(self) -> None:
            super().__init__(nn.ReLU())
            self.log_scale = nn.Parameter(torch.tensor([0.1, -0.4, 0.3]))
            self.mixing = nn.Parameter(torch.eye(3) + 0.2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.activation(self.inner(x)) * torch.exp(self.log_scale)
            return self.out(h @ torch.softmax(self.mixing, dim=0))

    model = Scaled().eval()
    attributions = explain(model, "deeplift")
    with torch.no_grad():
        change = model(X)[range(2), TARGETS] - model(torch.zeros_like(X))[range(2), TARGETS]
    torch.testing.assert_close(attributions.sum(1), change, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["deeplift", "deeplift_shap"])
@pytest.mark.parametrize("name", sorted(MODULES))
def test_the_module_forms_keep_deeplift_and_sum_to_the_output_change(name, method):
    """Each activation as a module: DeepLIFT's Rescale rule (captum's, or the suite's for nn.GELU/nn.SiLU), whose map
    sums to ``f(x)_t - f(0)_t`` per sample (the model's own outputs); the same net calling it as a function is
    not_applicable."""
    model = Body(MODULES[name]()).eval()
    with torch.no_grad():
        change = model(X)[range(2), TARGETS] - model(torch.zeros_like(X))[range(2), TARGETS]
    torch.testing.assert_close(explain(model, method).sum(1), change, rtol=1e-5, atol=1e-6)
    function = getattr(F, name)
    with pytest.raises(xaibench.NotApplicable, match=rf"forward calls {name} as functions"):
        explain(Body(lambda h: function(h)), method)


class Classifier(nn.Module):
    """``Linear(4, 6) -> nn.ReLU -> Linear(6, 3)`` with large weights (a confident classifier), ending in ``end``:
    logits, a softmax (probabilities; ``nn.Softmax``: the module) or a log_softmax (log-probabilities, declared
    logits)."""

    def __init__(self, end: str) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.inner, self.relu, self.out = nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)
        self.softmax = nn.Softmax(dim=1)
        with torch.no_grad():
            self.out.weight.mul_(4.0)
        self.end = end

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.relu(self.inner(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.logits(x)
        if self.end == "nn.Softmax":
            return self.softmax(z)
        return {"logits": z, "softmax": torch.softmax(z, dim=1), "log_softmax": F.log_softmax(z, dim=-1)}[self.end]


@pytest.mark.parametrize("method", ["deeplift", "deeplift_shap"])
@pytest.mark.parametrize("end, kind", [("softmax", "log_odds"), ("softmax", "probability"),
                                       ("softmax", "log_softmax"), ("log_softmax", "log_odds"),
                                       ("log_softmax", "logit"), ("nn.Softmax", "log_odds"),
                                       ("nn.Softmax", "probability")])
def test_a_softmax_at_the_output_keeps_deeplift_exactly(end, kind, method):
    """A final softmax (declared ``outputs=probabilities``) or log_softmax is the model's output, not a step inside
    it: DeepLIFT runs, and its map sums to the change of the explained output ``T(z(x)) - T(z(0))`` of the logits
    ``z`` before the normalisation (``logit`` of a log_softmax model: ``log p_t``). The old multipliers, crossed by
    captum's gradient through the normalisation, were off by 0.005 (probability, changes of 0.14 and 0.29) to 0.021
    (log_odds), and captum alone by 0.38 (logit of the log_softmax model, changes of 1.50 and 0.66); through an
    ``nn.Softmax`` module's captum rule by 1.7 (probability) and 7.0 (log_odds)."""
    model = Classifier(end).eval()
    outputs = "probabilities" if "oftmax" in end and end != "log_softmax" else "logits"
    attributions = explain(model, method, kind, outputs=outputs)
    with torch.no_grad():
        z, z_ref = model.logits(X), model.logits(torch.zeros_like(X))
        if kind == "logit":  # log p_t
            change = (F.log_softmax(z, 1) - F.log_softmax(z_ref, 1))[range(2), TARGETS].double()
        else:
            change = explained_value(kind, z, TARGETS) - explained_value(kind, z_ref, TARGETS)
    torch.testing.assert_close(attributions.sum(1).double(), change, rtol=1e-5, atol=1e-6)


def test_the_look_tells_a_softmax_at_the_output_from_one_inside():
    """``softmax at the output``: nothing computes on its result (a layout step, ``.squeeze``, may follow); inside:
    a layer, or the user's own ``.log()``, computes on it. On a parameter it is not counted on the input at all."""
    def computed(activation) -> Counter:
        found: Counter = Counter()
        calls_outside(Body(activation), X[:1], _deeplift_covers, on_input=found)
        return found

    class Final(Classifier):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.logits(x), dim=1).unsqueeze(1).squeeze(1)

    class LogOfSoftmax(Classifier):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.logits(x), dim=1).log()

    final: Counter = Counter()
    calls_outside(Final("logits"), X[:1], _deeplift_covers, on_input=final)
    assert final["softmax at the output"] == 1 and final["softmax"] == 0
    assert computed(lambda h: torch.softmax(h, 1))["softmax"] == 1  # a Linear computes on it
    logged: Counter = Counter()
    calls_outside(LogOfSoftmax("logits"), X[:1], _deeplift_covers, on_input=logged)
    assert logged["softmax"] == 1 and logged["log"] == 1 and not logged["softmax at the output"]
    on_a_parameter = computed(lambda h: h * torch.exp(torch.zeros(3, requires_grad=True)))
    assert on_a_parameter["exp"] == 0


@pytest.mark.parametrize("method", ["deeplift", "deeplift_shap"])
def test_an_nn_softmax_inside_the_network_is_not_applicable(method):
    """captum's ``nn.Softmax`` rule (elementwise secants less their mean) does not sum to the output change inside a
    network: the old code returned such maps (off by 0.6 where the change was 0.09 on this kind of net)."""
    with pytest.raises(xaibench.NotApplicable, match=r"applies nn\.Softmax to activations before other layers"):
        explain(Body(nn.Softmax(dim=1)), method)
