"""Attention x Gradient: attention probabilities weighted by the target's gradient with respect to them.

``(A * dA)^+`` is the per-layer term of Chefer et al.'s relevance (2021, "Generic Attention-model Explainability
for Interpreting Bi-Modal and Encoder-Decoder Transformers") without the rollout across layers; since ``A >= 0``
it equals ``A * ReLU(dA)``, so the mean over heads and layers is Grad-SAM (Barkan et al., 2021, "Grad-SAM:
Explaining Transformers via Gradient Self-Attention Maps")."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from xaibench.explainers.attention._maps import attention_model, forward_with_attention, relevance_to_input
from xaibench.explainers.base import Explainer, select_target
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation, Modality


def attention_times_gradient(maps: list[torch.Tensor], grads: list[torch.Tensor]) -> torch.Tensor:
    """``mean_layers mean_h (A * dA)^+`` over the given layers: ``(N, T, T)``."""
    return torch.stack([(grad * attention).clamp(min=0).mean(dim=1) for attention, grad in zip(maps, grads)]).mean(dim=0)


@EXPLAINERS.register("attention_x_gradient")
@dataclass(frozen=True)
class AttentionXGradientExplainer(Explainer):
    """``mean_h (A_h * d logit_target / d A_h)^+``, the CLS token's row without the CLS column.

    ``layers``: ``last`` (the last layer's attention, the default) or ``all`` (mean over layers: Grad-SAM).
    ``cls_index=None``: mean over query rows. Mapped onto the input by ``tokens_to_input`` (ViT: each patch's
    value on its pixels; text: per token). Class-specific, needs attention probabilities inside the autograd
    graph (ATTENTION protocol). Deterministic; batch tolerance 1e-5.
    """

    modalities = frozenset({Modality.IMAGE, Modality.TEXT})
    requires = frozenset({Capability.ATTENTION})
    layers: Literal["last", "all"] = "last"

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        with torch.enable_grad():
            logits, maps = forward_with_attention(model, x)
            used = maps[-1:] if self.layers == "last" else maps
            if not all(m.requires_grad for m in used):
                raise ValueError("attention_x_gradient needs attention probabilities inside the autograd graph "
                                 "(ATTENTION protocol)")
            grads = torch.autograd.grad(select_target(logits, target).sum(), used, allow_unused=True)
        grads = [torch.zeros_like(m) if g is None else g.detach() for m, g in zip(used, grads)]
        matrix = attention_times_gradient([m.detach() for m in used], grads)
        return Explanation(relevance_to_input(attention_model(model, x), matrix))
