"""A tiny Vision Transformer (Dosovitskiy et al., 2021) exposing its attention maps for attention explainers."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xaibench.errors import UserError
from xaibench.models.base import ModelSpec
from xaibench.models.zoo._attention import Encoder
from xaibench.registry import MODELS
from xaibench.types import Capability, Dataset, Modality


class TinyViT(nn.Module):
    """Patch embedding + CLS token + learned positions + pre-norm encoder; the head reads the CLS token.

    Tokens: ``T = 1 + P`` with the CLS token at index 0 and ``P = (H / p) * (W / p)`` patches in row-major order.
    Implements the ``GRADIENTS`` and ``ATTENTION`` protocols of ``xaibench.models.base``.
    """

    cls_index = 0

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, *, patch_size: int, dim: int, depth: int,
                 heads: int, mlp_ratio: int) -> None:
        super().__init__()
        channels, height, width = input_shape
        if height % patch_size or width % patch_size:
            raise UserError(f"vit: image {height}x{width} is not divisible by patch_size {patch_size}")
        self.input_shape = input_shape
        self.patch_size = patch_size
        self.grid = (height // patch_size, width // patch_size)
        self.patch_embed = nn.Conv2d(channels, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, 1 + self.grid[0] * self.grid[1], dim))
        self.encoder = Encoder(dim, depth, heads, mlp_ratio)
        self.head = nn.Linear(dim, n_classes)

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``x (N, C, H, W) -> (logits (N, K), [attn (N, heads, 1 + P, 1 + P)] per layer)``."""
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)  # (N, P, D)
        tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), patches], dim=1) + self.pos_embed
        hidden, maps = self.encoder(tokens)
        return self.head(hidden[:, self.cls_index]), maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x)[0]

    def tokens_to_input(self, relevance: torch.Tensor) -> torch.Tensor:
        """Patch relevance ``(N, P)`` -> ``(N, C, H, W)``: each patch's value on all its pixels and channels."""
        n = relevance.shape[0]
        grid = relevance.reshape(n, 1, *self.grid)
        pixels = grid.repeat_interleave(self.patch_size, dim=2).repeat_interleave(self.patch_size, dim=3)
        return pixels.expand(n, *self.input_shape).contiguous()


@MODELS.register("vit")
@dataclass(frozen=True)
class ViT(ModelSpec):
    """Tiny ViT for small images (``patch_size`` must divide the image side)."""

    modalities = frozenset({Modality.IMAGE})
    capabilities = frozenset({Capability.GRADIENTS, Capability.ATTENTION, Capability.PROBA})
    patch_size: int = 4
    dim: int = 32
    depth: int = 2
    heads: int = 2
    mlp_ratio: int = 2
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 32

    def build(self, dataset: Dataset) -> nn.Module:
        shape = dataset.input_shape
        if len(shape) != 3:
            raise UserError(f"vit needs images (N, C, H, W); dataset {dataset.name} has inputs {shape}")
        return TinyViT(shape, dataset.n_classes, patch_size=self.patch_size, dim=self.dim,  # type: ignore[arg-type]
                       depth=self.depth, heads=self.heads, mlp_ratio=self.mlp_ratio)
