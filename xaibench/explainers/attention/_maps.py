"""Attention maps through the ATTENTION protocol (models/base.py) and token relevance mapped back to the input.

Protocol: ``forward_with_attention(x) -> (logits (N, K), [attention (N, heads, T, T) per layer])`` with the
probabilities inside the autograd graph; ``cls_index`` (int or None); ``tokens_to_input(relevance (N, T'))``.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from xaibench.explainers.inputs import embedded_text_model, input_kind

HeadFusion = Literal["mean", "max", "min"]


def attention_model(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """The module offering the ATTENTION protocol for ``x``.

    Usually ``model`` itself. When a metric re-explains text as embeddings ``(N, L, D)`` through a wrapper, the
    wrapped text model is used if its ``forward_with_attention`` also takes embeddings (the zoo's text
    transformer does; the protocol only promises native inputs, so other models raise there).
    """
    if hasattr(model, "forward_with_attention"):
        return model
    inner = embedded_text_model(model) if input_kind(model, x) == "embedded" else None
    if inner is not None and hasattr(inner, "forward_with_attention"):
        return inner
    raise TypeError(f"attention methods need a model with forward_with_attention() (ATTENTION protocol); got {type(model).__name__}")


def forward_with_attention(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits ``(N, K)`` and per-layer attention ``(N, heads, T, T)`` (first layer first) of ``attention_model``."""
    logits, maps = attention_model(model, x).forward_with_attention(x)
    maps = list(maps)
    if not maps:
        raise ValueError("forward_with_attention returned no attention maps")
    return logits, maps


def fuse_heads(attention: torch.Tensor, how: HeadFusion = "mean") -> torch.Tensor:
    """``(N, heads, T, T) -> (N, T, T)``."""
    if how == "mean":
        return attention.mean(dim=1)
    if how == "max":
        return attention.amax(dim=1)
    if how == "min":
        return attention.amin(dim=1)
    raise ValueError(f"unknown head fusion {how!r}; use mean, max or min")


def relevance_to_input(model: nn.Module, matrix: torch.Tensor) -> torch.Tensor:
    """Token-to-token relevance ``(N, T, T)`` -> attributions shaped like the model's input.

    The relevance of each token is the CLS token's row without the CLS column (``(N, T-1)``) or, with
    ``cls_index=None``, the mean over query rows ``(N, T)``; ``model.tokens_to_input`` maps it onto the input
    (ViT: upsampled patches; text: per token).
    """
    cls_index = getattr(model, "cls_index", None)
    if cls_index is None:
        relevance = matrix.mean(dim=1)
    else:
        cls_index = int(cls_index) % matrix.shape[-1]
        row = matrix[:, cls_index, :]
        relevance = torch.cat([row[:, :cls_index], row[:, cls_index + 1 :]], dim=1)
    return model.tokens_to_input(relevance).detach()
