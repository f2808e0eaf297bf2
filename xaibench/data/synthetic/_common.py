"""Helpers shared by the synthetic generators: balanced labels, stable ids, seeded split into a ``Dataset``."""
from __future__ import annotations

import numpy as np
import torch

from xaibench.data.base import make_dataset, split_arrays, unsplit_revision
from xaibench.errors import UserError
from xaibench.types import Dataset, Modality, Vocabulary


def balanced_labels(rng: np.random.Generator, n_samples: int, n_classes: int) -> np.ndarray:
    """``(N,)`` int64 labels with class counts differing by at most one, in a seeded random order."""
    return rng.permutation(np.arange(n_samples) % n_classes).astype(np.int64)


def stable_ids(prefix: str, n_samples: int) -> np.ndarray:
    """``prefix-00000 ... prefix-{N-1}``: the generation index, independent of the split seed."""
    return np.array([f"{prefix}-{i:05d}" for i in range(n_samples)])


def require(condition: bool, message: str) -> None:
    """Raise a ``UserError`` carrying ``message`` unless ``condition`` holds (parameter validation)."""
    if not condition:
        raise UserError(message)


def assemble(
    name: str,
    modality: Modality,
    x: np.ndarray,
    y: np.ndarray,
    masks: np.ndarray,
    *,
    n_classes: int,
    test_size: float,
    seed: int,
    feature_names: tuple[str, ...] = (),
    vocab_size: int = 0,
    x_dtype: torch.dtype = torch.float32,
    vocabulary: Vocabulary | None = None,
) -> Dataset:
    """Split generated arrays with ``seed`` (stratified) and build the ``Dataset`` with its content revision."""
    require(0.0 < test_size < 1.0, f"dataset {name}: test_size must be in (0, 1), got {test_size}")
    ids = stable_ids(name, len(y))
    train, test = split_arrays(x, y, ids, test_size=test_size, seed=seed, masks=masks)
    return make_dataset(name, modality, train, test, n_classes=n_classes, feature_names=feature_names,
                        vocab_size=vocab_size, x_dtype=x_dtype, vocabulary=vocabulary,
                        revision=unsplit_revision(x, y, ids, masks, test_size=test_size))
