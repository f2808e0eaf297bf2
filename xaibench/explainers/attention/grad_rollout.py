"""Gradient-weighted attention rollout (Chefer, Gur & Wolf, 2021, "Generic Attention-model Explainability for
Interpreting Bi-Modal and Encoder-Decoder Transformers", ICCV)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xaibench.explainers.attention._maps import attention_model, forward_with_attention, relevance_to_input
from xaibench.explainers.base import Explainer, select_target
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation, Modality


def gradient_rollout(maps: list[torch.Tensor], grads: list[torch.Tensor]) -> torch.Tensor:
    """``R = I; R <- R + mean_h[(grad A * A)^+] R`` layer by layer (first layer first): ``(N, T, T)``."""
    n, _, tokens, _ = maps[0].shape
    relevance = torch.eye(tokens, device=maps[0].device, dtype=maps[0].dtype).expand(n, tokens, tokens)
    for attention, grad in zip(maps, grads):
        weighted = (grad * attention).clamp(min=0).mean(dim=1)
        relevance = relevance + weighted @ relevance
    return relevance


@EXPLAINERS.register("grad_rollout")
@dataclass(frozen=True)
class GradRolloutExplainer(Explainer):
    """Chefer et al.'s relevance for self-attention: attention weighted by the target logit's gradient w.r.t. it,
    positive part, head-averaged, accumulated over layers with the identity (residual) term.

    Class-specific. Relevance is the CLS row without the CLS column (``cls_index=None``: mean over queries),
    mapped onto the input by ``tokens_to_input``. The attention probabilities must be in the autograd graph
    (ATTENTION protocol); a layer whose attention is constant gets zero weight. Deterministic; each sample's
    gradient only depends on its own logit, so a batch equals each sample alone (tolerance 1e-5).
    """

    modalities = frozenset({Modality.IMAGE, Modality.TEXT})
    requires = frozenset({Capability.ATTENTION})

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        with torch.enable_grad():
            logits, maps = forward_with_attention(model, x)
            differentiable = [m for m in maps if m.requires_grad]
            if not differentiable:
                raise ValueError("grad_rollout needs attention probabilities inside the autograd graph (ATTENTION protocol)")
            found = iter(torch.autograd.grad(select_target(logits, target).sum(), differentiable, allow_unused=True))
            grads = [_or_zeros(next(found), m) if m.requires_grad else torch.zeros_like(m) for m in maps]
        matrix = gradient_rollout([m.detach() for m in maps], [g.detach() for g in grads])
        return Explanation(relevance_to_input(attention_model(model, x), matrix))


def _or_zeros(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad
