"""Tensor layouts at the Quantus boundary (design.md: Modalities).

Quantus wants numpy, channel-first, with a channel axis: tabular ``(N, F)`` travels as ``(N, 1, F)``; images
``(N, C, H, W)`` and series ``(N, C, T)`` as they are; text as embeddings ``(N, D, L)`` with per-token
attributions ``(N, 1, L)`` so perturbations act on whole tokens.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from xaibench.types import Modality


class QuantusModel(nn.Module):
    """Wraps a suite model so it accepts Quantus-layout float inputs and returns logits."""

    def __init__(self, model: nn.Module, modality: Modality, native_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.model = model
        self.modality = modality
        self.native_shape = native_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.modality is Modality.TEXT:
            return self.model.forward_embedded(x.transpose(1, 2))  # (N, D, L) -> (N, L, D)
        return self.model(x.reshape(x.shape[0], *self.native_shape))


def to_quantus_inputs(model: nn.Module, x: torch.Tensor, modality: Modality) -> np.ndarray:
    """Native inputs -> Quantus-layout numpy (text: token ids -> embeddings ``(N, D, L)``)."""
    if modality is Modality.TEXT:
        with torch.no_grad():
            x = model.embed(x).transpose(1, 2)
    elif modality is Modality.TABULAR:
        x = x.unsqueeze(1)
    return x.detach().cpu().numpy().astype(np.float32)


def to_quantus_attributions(a: torch.Tensor | np.ndarray, modality: Modality) -> np.ndarray:
    """Native attributions -> Quantus layout: tabular/text gain the channel axis ``(N, 1, F|L)``."""
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if modality in (Modality.TABULAR, Modality.TEXT):
        a = a[:, None, ...]
    return np.ascontiguousarray(a, dtype=np.float32)


def from_quantus_inputs(x: np.ndarray, modality: Modality, native_shape: tuple[int, ...]) -> torch.Tensor:
    """Quantus-layout numpy -> float tensor the suite model's explainers take (text stays embedded)."""
    tensor = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if modality is Modality.TEXT:
        return tensor.transpose(1, 2)  # (N, L, D) embeddings
    return tensor.reshape(tensor.shape[0], *native_shape)
