"""Raw attention: the last layer's attention from the CLS token, averaged over heads (e.g. Jain & Wallace, 2019,
"Attention is not Explanation", and Abnar & Zuidema, 2020, as the baseline of rollout)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xaibench.explainers.attention._maps import HeadFusion, attention_model, forward_with_attention, fuse_heads, relevance_to_input
from xaibench.explainers.base import Explainer
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation, Modality


@EXPLAINERS.register("raw_attention")
@dataclass(frozen=True)
class RawAttentionExplainer(Explainer):
    """Last-layer attention of the CLS token (``cls_index=None``: mean over queries), heads fused by ``head_fusion``.

    Class-agnostic (``target`` is not used). Output via ``tokens_to_input``: images ``(N, C, H, W)`` with each
    patch's value upsampled over its pixels, text ``(N, L)``. Deterministic; batch tolerance 1e-5.
    """

    modalities = frozenset({Modality.IMAGE, Modality.TEXT})
    requires = frozenset({Capability.ATTENTION})
    head_fusion: HeadFusion = "mean"

    @torch.no_grad()
    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        _, maps = forward_with_attention(model, x)
        return Explanation(relevance_to_input(attention_model(model, x), fuse_heads(maps[-1].detach(), self.head_fusion)))
