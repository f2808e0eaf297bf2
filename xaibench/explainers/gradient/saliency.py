"""Saliency: the input gradient of the target logit (Simonyan et al., 2014, "Deep Inside Convolutional Networks")."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import Saliency
from torch import nn

from xaibench.explainers.base import Explainer, summed_gradients_enabled
from xaibench.explainers.inputs import GradientView, SummedTargetForward
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation


@EXPLAINERS.register("saliency")
@dataclass(frozen=True)
class SaliencyExplainer(Explainer):
    """captum ``Saliency``: ``|d logit_target / d x|`` shaped like ``x`` (text: per token, summed over ``D``).

    ``abs=False`` keeps the signed gradient. Deterministic; a batch equals each sample alone up to float
    reassociation (tolerance 1e-5). Under :func:`~xaibench.explainers.base.summed_gradients` (the fast engine
    re-explaining), the gradient of the summed target logits (bit for bit the same, one backward seed per call).
    """

    requires = frozenset({Capability.GRADIENTS})
    target_gradient_only = True
    abs: bool = True

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view = GradientView.of(model, x)
        if summed_gradients_enabled():  # the fast engine re-explaining: one backward seed per call
            saliency = Saliency(SummedTargetForward(view.forward))
            attributions = saliency.attribute(view.inputs, additional_forward_args=(target,), abs=self.abs)
        else:
            attributions = Saliency(view.forward).attribute(view.inputs, target=target, abs=self.abs)
        return Explanation(view.to_output(attributions))
