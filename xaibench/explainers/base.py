"""The explainer contract (design.md: Explainer).

``explain(model, x, target) -> Explanation`` with attributions shaped like ``x`` (text: per token ``(N, L)``),
finite, deterministic once the runner has seeded torch/numpy/random. Explainers declare the modalities they
handle and the model capabilities they need; the runner turns a mismatch into ``not_applicable`` rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from xaibench.types import Capability, Explanation, Modality

ALL_MODALITIES = frozenset(Modality)


@dataclass(frozen=True)
class Explainer:
    """Base of every registered method; fields are the config parameters.

    Class attributes:
        modalities: input kinds the method handles.
        requires: model capabilities the method needs (gradients, attention, ...).
        batch_tolerance: max abs difference between explaining a batch and each sample alone (contract test).
    """

    name: ClassVar[str]
    modalities: ClassVar[frozenset[Modality]] = ALL_MODALITIES
    requires: ClassVar[frozenset[Capability]] = frozenset()
    batch_tolerance: ClassVar[float] = 1e-5

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:  # pragma: no cover
        raise NotImplementedError


def embedding_view(model: nn.Module, x: torch.Tensor) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, bool]:
    """Return ``(forward, inputs, is_text)`` for gradient methods.

    Float inputs are explained directly. Integer token ids ``(N, L)`` are explained at the embedding layer: the
    forward takes embeddings ``(N, L, D)`` (the model must offer ``embed`` and ``forward_embedded``), and the
    caller reduces attributions to per-token with :func:`per_token`.
    """
    if x.dtype in (torch.int32, torch.int64):
        if not (hasattr(model, "embed") and hasattr(model, "forward_embedded")):
            raise TypeError("integer (token) inputs need a model with embed() and forward_embedded()")
        return model.forward_embedded, model.embed(x).detach(), True
    return model, x, False


def per_token(attributions: torch.Tensor) -> torch.Tensor:
    """Sum embedding-dimension attributions ``(N, L, D)`` into per-token attributions ``(N, L)``."""
    return attributions.sum(dim=-1)
