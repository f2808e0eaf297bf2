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


class TokenPresenceModel(nn.Module):
    """A text model seen as a function of per-token presence ``(N, 1, L)`` in [0, 1] (the "tokens" text view).

    Presence 1 keeps the token's embedding, 0 replaces it by the pad token's embedding, values in between mix the
    two: ``m * embed(ids) + (1 - m) * embed(pad)``. Quantus' index perturbations (replace feature i by 0) then
    remove whole tokens, and its features are exactly the tokens the per-token attributions ``(N, 1, L)`` score.
    Row i of every input is sample i of ``ids`` (Quantus' faithfulness metrics predict on the whole batch); the
    fast engine forwards several perturbation steps at once: ``k * N`` rows, step after step.
    """

    def __init__(self, model: nn.Module, ids: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("ids", ids.detach().clone(), persistent=False)
        pad_id = getattr(model, "pad_id", None)
        if pad_id is None:
            raise TypeError("text models must define pad_id (the token used as 'absent'); see models/base.py")
        self.pad_id = int(pad_id)

    def forward(self, presence: torch.Tensor) -> torch.Tensor:
        n = self.ids.shape[0]
        if presence.shape[0] % max(n, 1) or presence.shape[-1] != self.ids.shape[1]:
            raise ValueError(f"token presence {tuple(presence.shape)} does not match the ids {tuple(self.ids.shape)}")
        ids = self.ids.repeat(presence.shape[0] // n, 1) if presence.shape[0] != n else self.ids
        embedded = self.model.embed(ids)
        pad = self.model.embed(torch.full_like(ids, self.pad_id))
        mask = presence.reshape(presence.shape[0], -1, 1).to(embedded.dtype)
        return self.model.forward_embedded(mask * embedded + (1 - mask) * pad)

    def take(self, index: np.ndarray) -> "TokenPresenceModel":
        return TokenPresenceModel(self.model, self.ids[torch.as_tensor(index, device=self.ids.device)]).eval()


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


def to_quantus_masks(masks: torch.Tensor | np.ndarray, modality: Modality) -> np.ndarray:
    """Native ground-truth masks -> Quantus ``s_batch`` ``(N, 1, ...)`` (binary; channels OR-ed together).

    image ``(N, C, H, W)`` -> ``(N, 1, H, W)``; series ``(N, C, T)`` -> ``(N, 1, T)``; tabular ``(N, F)`` and text
    ``(N, L)`` -> ``(N, 1, F|L)``.
    """
    m = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    m = m != 0
    if modality in (Modality.TABULAR, Modality.TEXT):
        m = m[:, None, ...]
    else:
        m = m.any(axis=1, keepdims=True)
    return np.ascontiguousarray(m, dtype=np.float32)


def sum_channels(a: np.ndarray) -> np.ndarray:
    """Quantus-layout attributions ``(N, C, ...) -> (N, 1, ...)`` by summing over channels (a copy)."""
    return np.ascontiguousarray(a.sum(axis=1, keepdims=True), dtype=np.float32)


def n_positions(x: torch.Tensor, modality: Modality) -> int:
    """Feature positions per sample as Quantus counts them (``x.shape[2:]`` of the Quantus layout).

    tabular ``F``; image ``H * W``; series ``T``; text ``L`` (tokens).
    """
    if modality in (Modality.TABULAR, Modality.TEXT):
        return int(x.shape[1])
    return int(np.prod(x.shape[2:]))


def from_quantus_inputs(x: np.ndarray, modality: Modality, native_shape: tuple[int, ...]) -> torch.Tensor:
    """Quantus-layout numpy -> float tensor the suite model's explainers take (text stays embedded)."""
    tensor = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if modality is Modality.TEXT:
        return tensor.transpose(1, 2)  # (N, L, D) embeddings
    return tensor.reshape(tensor.shape[0], *native_shape)
