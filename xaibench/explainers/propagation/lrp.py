"""Layer-wise Relevance Propagation (Bach et al., 2015, "On Pixel-Wise Explanations for Non-Linear Classifier
Decisions by Layer-Wise Relevance Propagation"; rules as in Montavon et al., 2019, "Layer-Wise Relevance
Propagation: An Overview"), through captum's ``LRP``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from captum.attr import LRP
from captum.attr._core.lrp import SUPPORTED_LAYERS_WITH_RULES, SUPPORTED_NON_LINEAR_LAYERS
from captum.attr._utils.lrp_rules import Alpha1_Beta0_Rule, EpsilonRule, GammaRule, PropagationRule
from torch import nn

from xaibench.errors import NotApplicable
from xaibench.explainers.base import DENSE_MODALITIES, Explainer
from xaibench.explainers.module_calls import LAYOUT_OPS, described, remembered_look, reused
from xaibench.explainers.output_rules import Readout, explained_value, lrp_logit_relevance, split_output
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation

# Layers captum has no default rule for, but for which the epsilon rule is the standard choice (linear maps and
# poolings); ``nn.Flatten`` only reshapes, and the epsilon rule passes its relevance through unchanged.
EXTRA_EPSILON_LAYERS = (nn.Conv1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d, nn.BatchNorm1d, nn.Flatten)
WEIGHTED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
SUPPORTED_LAYERS = (*SUPPORTED_LAYERS_WITH_RULES, *SUPPORTED_NON_LINEAR_LAYERS, *EXTRA_EPSILON_LAYERS)
RULE_LAYERS = (*SUPPORTED_LAYERS_WITH_RULES, *EXTRA_EPSILON_LAYERS)  # each keeps its input: one call per forward
# What a forward may compute outside those layers: moving values (``LAYOUT_OPS``), ReLU (as a function it gates the
# relevance exactly as captum's ``nn.ReLU`` passes it on: a zero activation gets none) and dropout (eval: identity).
PASSING_OPS = LAYOUT_OPS | {"relu", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
                            "feature_alpha_dropout"}

Rule = Literal["epsilon", "gamma", "alpha1_beta0"]


def leaf_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if not list(m.children())]


def unsupported_layers(model: nn.Module) -> list[str]:
    """Names of leaf layer types the LRP explainer has no rule for (empty: the model is supported)."""
    return sorted({type(m).__name__ for m in leaf_layers(model) if not isinstance(m, SUPPORTED_LAYERS)})


def refuse_unsupported(model: nn.Module, inputs: torch.Tensor) -> None:
    """Raise ``NotApplicable`` unless ``model`` is built from layers with a rule, and its forward computes nothing
    outside them but ``PASSING_OPS`` (a residual ``x + h``, ``x.mean()``, ``torch.sigmoid`` would be crossed by
    plain gradients, not by an LRP rule); ``inputs``: a batch ``(N, ...)`` (its first sample runs)."""
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
        refuse_unsupported(logits, x)
        inputs = x.detach().clone().requires_grad_(True)
        self._attach_rules(logits)  # captum removes every layer.rule after the call
        try:
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
