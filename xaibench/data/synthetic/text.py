"""Synthetic text: token sequences whose label is decided by planted key tokens; the mask marks those tokens.

Vocabulary layout (ids): ``0`` is the pad token (never generated; explainers use it as "absent"), then
``keys_per_class`` key tokens per class (class ``c`` owns ids ``1 + c * keys_per_class ... (c + 1) * keys_per_class``),
then neutral filler tokens. Displays (galleries) spell them ``<pad>``, ``k<class>.<j>`` (key ``j`` of a class) and
``w<id>`` (filler). Every sequence holds between ``min_keys`` and ``max_keys`` key tokens, all from its
class, at random positions; the rest is filler. Rule: the label is the class owning the key tokens present. This
mirrors the planted-keyword settings used to test text attributions against known rationales (cf. DeYoung et
al., 2020, "ERASER: A Benchmark to Evaluate Rationalized NLP Models", where the rationale plays the mask's role).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from xaibench.data.base import DatasetSpec
from xaibench.data.synthetic._common import assemble, balanced_labels, require
from xaibench.registry import DATASETS
from xaibench.types import Dataset, Modality, Vocabulary

PAD_ID = 0


def key_token_class(ids: np.ndarray, n_classes: int, keys_per_class: int) -> np.ndarray:
    """Class owning each token id, ``-1`` for pad and filler tokens (same shape as ``ids``)."""
    is_key = (ids >= 1) & (ids <= n_classes * keys_per_class)
    return np.where(is_key, (ids - 1) // keys_per_class, -1)


@dataclass(frozen=True)
class TextTask:
    """Generated arrays: token ids ``x (N, L)`` int64, ``y (N,)``, ``masks (N, L)`` (1 on key tokens)."""

    x: np.ndarray
    y: np.ndarray
    masks: np.ndarray


@DATASETS.register("synthetic_text")
@dataclass(frozen=True)
class SyntheticText(DatasetSpec):
    """Token sequences ``(N, L)``; label = class of the planted key tokens (see the module docstring).

    Attributes:
        n_samples: sequences generated (classes balanced).
        seq_len: ``L``; ``vocab_size``: ids ``0 .. vocab_size - 1`` (pad, keys, filler).
        n_classes, keys_per_class: key tokens per class.
        min_keys, max_keys: key tokens planted per sequence (inclusive range).
        data_seed: seeds the content; the cell seed only picks the split.
    """

    modality: ClassVar[Modality] = Modality.TEXT
    has_ground_truth: ClassVar[bool] = True
    n_samples: int = 800
    seq_len: int = 24
    vocab_size: int = 64
    n_classes: int = 2
    keys_per_class: int = 3
    min_keys: int = 1
    max_keys: int = 3
    data_seed: int = 0

    @property
    def filler_ids(self) -> np.ndarray:
        return np.arange(1 + self.n_classes * self.keys_per_class, self.vocab_size)

    def generate(self) -> TextTask:
        require(self.n_classes >= 2 and self.keys_per_class >= 1, f"dataset {self.name}: need n_classes >= 2 and "
                "keys_per_class >= 1")
        require(len(self.filler_ids) >= 1, f"dataset {self.name}: vocab_size {self.vocab_size} leaves no filler "
                f"tokens; it must exceed 1 + n_classes * keys_per_class = {1 + self.n_classes * self.keys_per_class}")
        require(1 <= self.min_keys <= self.max_keys <= self.seq_len,
                f"dataset {self.name}: need 1 <= min_keys <= max_keys <= seq_len")
        rng = np.random.default_rng(self.data_seed)
        y = balanced_labels(rng, self.n_samples, self.n_classes)
        x = rng.choice(self.filler_ids, size=(self.n_samples, self.seq_len))
        masks = np.zeros((self.n_samples, self.seq_len))
        for i, label in enumerate(y):
            count = int(rng.integers(self.min_keys, self.max_keys + 1))
            positions = rng.choice(self.seq_len, size=count, replace=False)
            first_key = 1 + label * self.keys_per_class
            x[i, positions] = rng.integers(first_key, first_key + self.keys_per_class, size=count)
            masks[i, positions] = 1.0
        return TextTask(x.astype(np.int64), y, masks)

    def build(self, seed: int) -> Dataset:
        task = self.generate()
        return assemble(self.name, self.modality, task.x, task.y, task.masks, n_classes=self.n_classes,
                        test_size=self.test_size, seed=seed, vocab_size=self.vocab_size, x_dtype=torch.int64,
                        vocabulary=self.vocabulary())

    def vocabulary(self) -> Vocabulary:
        """Display strings of the ids: ``<pad>``, keys ``k<class>.<j>``, fillers ``w<id>`` (module docstring)."""
        keys = [f"k{c}.{j}" for c in range(self.n_classes) for j in range(self.keys_per_class)]
        return Vocabulary(("<pad>", *keys, *(f"w{i}" for i in self.filler_ids)), pad_id=PAD_ID)
