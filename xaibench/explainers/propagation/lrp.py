"""Layer-wise Relevance Propagation (Bach et al., 2015, "On Pixel-Wise Explanations for Non-Linear Classifier
Decisions by Layer-Wise Relevance Propagation"; rules as in Montavon et al., 2019, "Layer-Wise Relevance
Propagation: An Overview"), through captum's ``LRP``."""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from captum.attr import LRP
from captum.attr._core.lrp import SUPPORTED_LAYERS_WITH_RULES, SUPPORTED_NON_LINEAR_LAYERS
from captum.attr._utils.lrp_rules import Alpha1_Beta0_Rule, EpsilonRule, GammaRule, PropagationRule
from torch import nn
from torch.overrides import TorchFunctionMode

from xaibench.errors import NotApplicable
from xaibench.explainers.base import DENSE_MODALITIES, Explainer
from xaibench.explainers.module_calls import (
    LAYOUT_OPS, RELU_SPELLINGS, SPELLED_OPS, described, op_name, relu_input, relu_spelling, remember_sign_test,
    remembered_look, reused,
)
from xaibench.explainers.output_rules import Readout, explained_value, lrp_logit_relevance, split_output
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation

# Layers captum has no default rule for, but for which the epsilon rule is the standard choice (linear maps and
# poolings); ``nn.Flatten`` only reshapes, and the epsilon rule passes its relevance through unchanged.
EXTRA_EPSILON_LAYERS = (nn.Conv1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d, nn.BatchNorm1d, nn.Flatten)
WEIGHTED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
SUPPORTED_LAYERS = (*SUPPORTED_LAYERS_WITH_RULES, *SUPPORTED_NON_LINEAR_LAYERS, *EXTRA_EPSILON_LAYERS)
RULE_LAYERS = (*SUPPORTED_LAYERS_WITH_RULES, *EXTRA_EPSILON_LAYERS)  # each keeps its input: one call per forward
# What a forward may compute outside those layers: moving values (``LAYOUT_OPS``), dropout (eval: identity) and
# ReLU, as ``F.relu`` or spelt exactly as ReLU (``x.clamp(min=0)``, ``torch.maximum(x, zeros)``, ``torch.where(x > 0,
# x, 0)``, ``F.threshold(x, 0, 0)``, ``x * (x > 0)``: ``module_calls.RELU_SPELLINGS``, with the sign test ``x > 0`` and
# the zeros they are made of), which :class:`ReluPassesRelevance` makes pass relevance as captum's ``nn.ReLU`` does.
PASSING_OPS = LAYOUT_OPS | RELU_SPELLINGS | {"relu", "gt", "ge", "zeros_like", "dropout", "dropout1d", "dropout2d",
                                             "dropout3d", "alpha_dropout", "feature_alpha_dropout"}

FUNCTIONAL_RELUS = RELU_SPELLINGS | {"relu"}


class ReluPassesRelevance(TorchFunctionMode):
    """Within the block, a ReLU called as a function (``F.relu``, or a spelling of ``module_calls.relu_spelling``)
    computes its value but passes its backward on unchanged, as captum's LRP hook on ``nn.ReLU`` does.

    Its own gradient (1 where ``x > 0``) would not do: the gamma and alpha-beta rules run the forward with changed
    weights, so ``x``'s sign there is not the activation's, and the mask drops relevance ``nn.ReLU`` passes on
    (relevances moved by up to 0.04 of 0.3 on a two-layer net; the epsilon rule keeps the weights, and the mask is 1
    wherever the relevance is not 0 already). A ReLU in place (``x.relu_()``) leaves nothing to pass it through:
    kept as it is where ``in_place_exact`` (the epsilon rule), else ``NotApplicable``. Calls inside ``model``'s
    ``nn.ReLU`` modules are left to captum's hook.
    """

    def __init__(self, model: nn.Module, in_place_exact: bool) -> None:
        super().__init__()
        self.in_place_exact = in_place_exact
        self.sign_tests: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.inside_relu = 0
        self.relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        self.handles: list = []

    def __enter__(self) -> ReluPassesRelevance:
        def enter(_module: nn.Module, _args: tuple) -> None:
            self.inside_relu += 1

        def leave(_module: nn.Module, _args: tuple, _output: object) -> None:
            self.inside_relu -= 1

        for relu in self.relus:
            self.handles += [relu.register_forward_pre_hook(enter), relu.register_forward_hook(leave)]
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        super().__exit__(*exc)

    def __torch_function__(self, func: Callable, types, args=(), kwargs=None):  # noqa: ANN001 - torch's protocol
        name, kwargs = op_name(func), kwargs or {}
        relu = not self.inside_relu and (name == "relu" or (name in SPELLED_OPS and bool(
            relu_spelling(name, args, kwargs, self.sign_tests))))
        result = func(*args, **kwargs)
        remember_sign_test(name, args, result, self.sign_tests)
        if not relu or not isinstance(result, torch.Tensor) or not torch.is_grad_enabled():
            return result
        x = relu_input(name, args, kwargs)
        if result is x and self.in_place_exact:
            return result
        if result is x:
            raise NotApplicable("lrp's gamma and alpha1_beta0 rules pass relevance through ReLUs unchanged, but this "
                                "model's forward applies one in place (x.relu_(), F.relu(x, inplace=True), "
                                "x.clamp_(min=0)) outside an nn.ReLU module, which keeps no input to pass it through; "
                                "write it out of place (F.relu(x)) or as nn.ReLU()")
        return x + (result - x).detach()  # the value of the ReLU, the backward of the identity


Rule = Literal["epsilon", "gamma", "alpha1_beta0"]


def leaf_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if not list(m.children())]


def unsupported_layers(model: nn.Module) -> list[str]:
    """Names of leaf layer types the LRP explainer has no rule for (empty: the model is supported)."""
    return sorted({type(m).__name__ for m in leaf_layers(model) if not isinstance(m, SUPPORTED_LAYERS)})


def refuse_unsupported(model: nn.Module, inputs: torch.Tensor) -> bool:
    """Raise ``NotApplicable`` unless ``model`` is built from layers with a rule, and its forward computes nothing
    outside them but ``PASSING_OPS`` (a residual ``x + h``, ``x.mean()``, ``torch.sigmoid`` would be crossed by
    plain gradients, not by an LRP rule); ``inputs``: a batch ``(N, ...)`` (its first sample runs). Returns whether
    the forward calls a ReLU as a function (:class:`ReluPassesRelevance` is then needed)."""
    missing = unsupported_layers(model)
    if missing:
        raise NotApplicable(f"lrp has no rule for layer type(s) {', '.join(missing)}; supported: "
                            f"{', '.join(sorted({t.__name__ for t in SUPPORTED_LAYERS}))}")
    calls, uses = remembered_look(model, inputs, lambda m: isinstance(m, SUPPORTED_LAYERS), "lrp")
    reused(model, uses, lambda m: isinstance(m, RULE_LAYERS), "lrp")  # captum raises on these (ReLU & co pass)
    found = described(calls, set(calls) - PASSING_OPS)
    if found:
        raise NotApplicable(f"lrp propagates relevance through layers (modules) only, but this model's forward "
                            f"computes {found} outside them, which no LRP rule would cross; build the model from "
                            f"supported layers (nn.Linear, nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, ...)")
    return bool(FUNCTIONAL_RELUS & set(calls))


@EXPLAINERS.register("lrp")
@dataclass(frozen=True)
class LRPExplainer(Explainer):
    """captum ``LRP`` with one rule on the weighted layers (Linear, Conv1d, Conv2d):

    - ``epsilon``: LRP-epsilon (``epsilon`` stabiliser; 1e-9 is LRP-0, which equals input x gradient on a
      bias-free ReLU network);
    - ``gamma``: LRP-gamma, favouring positive contributions by ``gamma``;
    - ``alpha1_beta0``: LRP-alpha1-beta0 (positive contributions only).

    Pooling, batch-norm and ``Flatten`` use the epsilon rule, ReLU/Tanh/Dropout pass relevance through. Supported
    leaf layers: captum's (Linear, Conv2d, MaxPool1-3d, AvgPool2d, AdaptiveAvgPool2d, BatchNorm2d, ReLU, Tanh,
    Dropout) plus Conv1d, AvgPool1d, AdaptiveAvgPool1d, BatchNorm1d and Flatten; each module used once per forward.
    Models declare it with the LRP capability (zoo: logreg, mlp, cnn, cnn1d; your own ``torch_module``); another
    layer, or a forward that computes outside the layers (``x + h``, ``torch.sigmoid``), is ``not_applicable``.
    Records the per-sample conservation error ``|sum(R) - f(x)|`` in ``extras["convergence_delta"]``.
    Deterministic; batch tolerance 1e-5.

    A non-logit ``explain_output`` (log_odds, log_softmax, probability) is not backpropagated as a plain gradient:
    its value is shared among the logits by the declared output rule (``explainers/output_rules.py``: soft-min
    over the class contrasts) and the layer rule runs from the logits down, so the relevance is conserved for the
    explained output (``f(x)`` above is that output).
    """

    modalities = DENSE_MODALITIES
    requires = frozenset({Capability.GRADIENTS, Capability.LRP})
    positive_params = ("epsilon", "gamma")
    rule: Rule = "epsilon"
    epsilon: float = 1e-9
    gamma: float = 0.25

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        logits, kind = split_output(model)
        functional_relus = refuse_unsupported(logits, x)
        inputs = x.detach().clone().requires_grad_(True)
        self._attach_rules(logits)  # captum removes every layer.rule after the call
        try:
            # the mode costs ~15% of an LRP call: only where a ReLU is a function (none in the zoo)
            with ReluPassesRelevance(logits, in_place_exact=self.rule == "epsilon") if functional_relus \
                    else contextlib.nullcontext():
                if kind == "logit":
                    attributions, delta = LRP(logits).attribute(inputs, target=target, return_convergence_delta=True)
                else:
                    attributions, delta = self._explain_output(logits, kind, inputs, target)
        finally:
            for layer in leaf_layers(logits):
                if hasattr(layer, "rule"):
                    del layer.rule
        return Explanation(attributions.detach(), extras={"convergence_delta": delta.detach().abs().cpu().numpy()})

    def _explain_output(self, logits: nn.Module, kind: str, inputs: torch.Tensor, target: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """LRP of ``kind`` (not the logit): the output rule's logit relevances ``(N, K)``, then the layer rules."""
        with torch.no_grad():
            z = logits(inputs)
        relevance = lrp_logit_relevance(kind, z, target, self.epsilon)
        attributions = LRP(Readout(logits, unit_value=True)).attribute(
            inputs, target=0, additional_forward_args=(relevance.to(z.dtype),))
        delta = explained_value(kind, z, target) - attributions.double().reshape(len(inputs), -1).sum(dim=1)
        return attributions, delta

    def _attach_rules(self, model: nn.Module) -> None:
        for layer in leaf_layers(model):
            if isinstance(layer, WEIGHTED_LAYERS):
                layer.rule = self._rule()
            elif isinstance(layer, EXTRA_EPSILON_LAYERS):
                layer.rule = EpsilonRule(epsilon=self.epsilon)

    def _rule(self) -> PropagationRule:
        if self.rule == "gamma":
            return GammaRule(gamma=self.gamma)
        if self.rule == "alpha1_beta0":
            return Alpha1_Beta0_Rule()
        return EpsilonRule(epsilon=self.epsilon)
