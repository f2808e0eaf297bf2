"""Saliency: absolute input gradient of the target logit (Simonyan et al., 2014)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import Saliency
from torch import nn

from xaibench.explainers.base import Explainer, embedding_view, per_token
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation


@EXPLAINERS.register("saliency")
@dataclass(frozen=True)
class SaliencyExplainer(Explainer):
    """captum ``Saliency``; ``abs=False`` keeps the signed gradient."""

    requires = frozenset({Capability.GRADIENTS})
    abs: bool = True

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        forward, inputs, is_text = embedding_view(model, x)
        attributions = Saliency(forward).attribute(inputs, target=target, abs=self.abs).detach()
        return Explanation(per_token(attributions) if is_text else attributions)
