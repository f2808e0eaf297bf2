"""Small shared vocabulary: enums and frozen records passed between data, models, explainers and metrics."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import torch


class Modality(StrEnum):
    """Input kinds and the tensor layouts the suite uses for them.

    tabular ``(N, F)``; image ``(N, C, H, W)``; time_series ``(N, C, T)``; text: token ids ``(N, L)``
    explained at the embedding layer, attributions per token ``(N, L)``.
    """

    TABULAR = "tabular"
    IMAGE = "image"
    TIME_SERIES = "time_series"
    TEXT = "text"


class Capability(StrEnum):
    """What a model offers to explainers; explainers declare which they require."""

    GRADIENTS = "gradients"  # differentiable torch forward w.r.t. its (float) input
    ATTENTION = "attention"  # exposes ``attention_maps(x) -> list[(N, heads, T, T)]``
    EMBEDDING = "embedding"  # text model exposing ``embed(ids)`` and ``forward_embedded(emb)``
    PROBA = "proba"  # a forward returning class scores (every model has it)
    CONV = "conv"  # torch module with nn.Conv1d/nn.Conv2d feature maps that keep the input's layout (CAM methods)
    LRP = "lrp"  # every leaf layer is one the LRP explainer has a rule for (explainers/propagation/lrp.py)
    LINEAR = "linear"  # forward(x) = W flatten(x) + b: its gradient is the ground-truth attribution (OpenXAI)


class Status(StrEnum):
    OK = "ok"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"
    NAN = "nan"  # the metric ran but produced no number for this sample; message says why


@dataclass(frozen=True)
class Split:
    """One split of a dataset.

    Attributes:
        x: inputs, layout per ``Modality``.
        y: integer labels ``(N,)``.
        ids: stable sample ids ``(N,)`` as strings, unchanged by any split seed.
        masks: ground-truth explanation masks with the shape of ``x`` (text: ``(N, L)``), or None.
    """

    x: torch.Tensor
    y: torch.Tensor
    ids: tuple[str, ...]
    masks: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def head(self, n: int) -> "Split":
        masks = None if self.masks is None else self.masks[:n]
        return Split(self.x[:n], self.y[:n], self.ids[:n], masks)


@dataclass(frozen=True)
class Dataset:
    """A built dataset: train/test splits plus metadata the runner and metrics use."""

    name: str
    modality: Modality
    n_classes: int
    train: Split
    test: Split
    revision: str  # sha256 of the content: recorded in every row
    feature_names: tuple[str, ...] = ()
    vocab_size: int = 0  # text only
    # Tables with encoded columns: (original column, indices of its encoded features), in column order.
    feature_groups: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def has_ground_truth(self) -> bool:
        return self.test.masks is not None


@dataclass(frozen=True)
class Explanation:
    """What an explainer returns for a batch.

    Attributions have the shape of the explained input (text: per token ``(N, L)``). Counterfactual explainers
    also set ``counterfactuals`` (shape of the input) and their attributions are ``x - x_cf``.
    """

    attributions: torch.Tensor
    counterfactuals: torch.Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # per-sample arrays, e.g. IG convergence delta
