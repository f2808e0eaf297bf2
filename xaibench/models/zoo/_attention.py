"""Transformer encoder blocks written out so the attention probabilities are returned and stay differentiable.

``nn.MultiheadAttention``'s fused path neither returns per-head probabilities inside the autograd graph nor lets
hooks see the softmax; attention explainers (rollout, Abnar & Zuidema, 2020; gradient-weighted rollout, Chefer et
al., 2021) need both. Pre-norm blocks as in ViT (Dosovitskiy et al., 2021); activations are modules (``nn.GELU``,
``nn.Softmax``) so hook-based methods such as DeepLIFT can see them.
"""
from __future__ import annotations

import torch
from torch import nn

from xaibench.errors import UserError


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention (Vaswani et al., 2017).

    ``forward(x (N, T, D)) -> (out (N, T, D), attn (N, heads, T, T))``, ``attn`` the softmax probabilities.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise UserError(f"transformer dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.softmax = nn.Softmax(dim=-1)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = self.softmax((q @ k.transpose(-2, -1)) * self.scale)
        out = (attn @ v).transpose(1, 2).reshape(n, t, d)
        return self.proj(out), attn


class EncoderBlock(nn.Module):
    """``x + Attn(LN(x))`` then ``x + MLP(LN(x))``; returns the block output and its attention ``(N, h, T, T)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        update, attn = self.attn(self.norm1(x))
        x = x + update
        return x + self.mlp(self.norm2(x)), attn


class Encoder(nn.Module):
    """``depth`` blocks and a final LayerNorm: ``(N, T, D) -> ((N, T, D), [attn (N, heads, T, T)] * depth)``."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        maps = []
        for block in self.blocks:
            x, attn = block(x)
            maps.append(attn)
        return self.norm(x), maps
