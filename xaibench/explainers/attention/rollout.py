"""Attention rollout (Abnar & Zuidema, 2020, "Quantifying Attention Flow in Transformers")."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xaibench.explainers.attention._maps import HeadFusion, attention_model, forward_with_attention, fuse_heads, relevance_to_input
from xaibench.explainers.base import Explainer
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation, Modality


def rollout(maps: list[torch.Tensor], residual_weight: float = 0.5, head_fusion: HeadFusion = "mean") -> torch.Tensor:
    """``prod_l normalise((1 - r) A_l + r I)``, last layer leftmost: ``(N, T, T)`` from per-layer ``(N, heads, T, T)``.

    With ``r = 0.5`` (the paper's residual weighting) and uniform attention ``A = J / T`` over ``L`` layers the
    closed form is ``2^-L I + (1 - 2^-L) J / T``; identity attention gives ``I`` (tested).
    """
    n, _, tokens, _ = maps[0].shape
    identity = torch.eye(tokens, device=maps[0].device, dtype=maps[0].dtype).expand(n, tokens, tokens)
    result = identity
    for attention in maps:
        mixed = (1 - residual_weight) * fuse_heads(attention, head_fusion) + residual_weight * identity
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        result = mixed @ result
    return result


@EXPLAINERS.register("rollout")
@dataclass(frozen=True)
class AttentionRolloutExplainer(Explainer):
    """Attention rollout: attention propagated through the layers with the residual stream as identity.

    Relevance is the CLS row of the rollout (``cls_index=None``: mean over queries), mapped onto the input by
    ``tokens_to_input`` (images: patch upsampling; text: per token). Class-agnostic. Deterministic; batch
    tolerance 1e-5.
    """

    modalities = frozenset({Modality.IMAGE, Modality.TEXT})
    requires = frozenset({Capability.ATTENTION})
    fraction_params = ("residual_weight",)  # mixes attention and identity: (1 - w) A + w I
    residual_weight: float = 0.5
    head_fusion: HeadFusion = "mean"

    @torch.no_grad()
    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        _, maps = forward_with_attention(model, x)
        matrix = rollout([m.detach() for m in maps], self.residual_weight, self.head_fusion)
        return Explanation(relevance_to_input(attention_model(model, x), matrix))
