"""The dataset contract: a frozen spec whose fields are the config parameters and whose ``build`` is pure."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from xaibench.types import Dataset, Modality, Split, Vocabulary


@dataclass(frozen=True)
class DatasetSpec:
    """Base of every registered dataset. Subclasses set ``modality`` and implement ``build``.

    ``build(seed)`` must be deterministic: same seed => same split, same ids, same tensors.
    """

    name: ClassVar[str]
    modality: ClassVar[Modality]
    has_ground_truth: ClassVar[bool] = False
    test_size: float = 0.3

    @property
    def has_coefficients(self) -> bool:
        """Whether the built dataset carries its generator's true coefficients (``Dataset.coefficients``)."""
        return False

    def build(self, seed: int) -> Dataset:  # pragma: no cover - interface
        raise NotImplementedError


def content_revision(*arrays: np.ndarray | torch.Tensor | tuple[str, ...] | None) -> str:
    """sha256 over the bytes (and shapes/dtypes) of the given arrays: the dataset's content revision."""
    digest = hashlib.sha256()
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        if isinstance(array, tuple):
            digest.update("\x1f".join(array).encode())
            continue
        arr = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
        arr = np.ascontiguousarray(arr)
        digest.update(f"{arr.dtype}{arr.shape}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()[:16]


def unsplit_revision(x: np.ndarray | pd.DataFrame, y: np.ndarray, ids: np.ndarray,
                     masks: np.ndarray | None = None, *, test_size: float | None = None) -> str:
    """The revision of a dataset's content *before* its seeded split: the same for every split seed.

    Seeds are replicates of one experiment (the summary pools them and bootstraps over them), so the revision the
    rows record must not change with the seed; the split itself is a pure function of the content, ``test_size``
    and the seed. A table (``DataFrame``) is hashed by its column names and pandas' row hashes.
    """
    if isinstance(x, pd.DataFrame):
        x = np.concatenate([np.frombuffer("\x1f".join(map(str, x.columns)).encode(), dtype=np.uint8).astype(np.uint64),
                            pd.util.hash_pandas_object(x, index=False).to_numpy()])
    return content_revision(x, y, tuple(str(i) for i in ids), masks, (f"test_size={test_size}",))


def split_arrays(
    x: np.ndarray,
    y: np.ndarray,
    ids: np.ndarray,
    *,
    test_size: float,
    seed: int,
    masks: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray | None], dict[str, np.ndarray | None]]:
    """Stratified, seeded train/test split. Returns two dicts with keys x, y, ids, masks."""
    index = np.arange(len(y))
    counts = np.bincount(y)
    stratify = y if counts.min() >= 2 else None
    train_idx, test_idx = train_test_split(index, test_size=test_size, random_state=seed, stratify=stratify)
    # Sorting keeps the order independent of sklearn's shuffling details: sample i of the test split is stable.
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)

    def take(idx: np.ndarray) -> dict[str, np.ndarray | None]:
        return {"x": x[idx], "y": y[idx], "ids": ids[idx], "masks": None if masks is None else masks[idx]}

    return take(train_idx), take(test_idx)


def make_dataset(
    name: str,
    modality: Modality,
    train: dict,
    test: dict,
    *,
    n_classes: int,
    feature_names: tuple[str, ...] = (),
    vocab_size: int = 0,
    x_dtype: torch.dtype = torch.float32,
    feature_groups: tuple[tuple[str, tuple[int, ...]], ...] = (),
    revision: str | None = None,
    feature_scaling: tuple[tuple[float, float], ...] = (),
    class_names: tuple[str, ...] = (),
    vocabulary: Vocabulary | None = None,
    pixel_normalisation: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> Dataset:
    """Assemble tensors into a ``Dataset`` and stamp its content revision.

    ``revision``: the content's revision before a seeded split (:func:`unsplit_revision`); without it, the
    revision of the two splits as given (a fixed split).
    """

    def to_split(part: dict) -> Split:
        masks = part.get("masks")
        return Split(
            x=torch.as_tensor(np.ascontiguousarray(part["x"])).to(x_dtype),
            y=torch.as_tensor(np.asarray(part["y"], dtype=np.int64)),
            ids=tuple(str(i) for i in part["ids"]),
            masks=None if masks is None else torch.as_tensor(np.ascontiguousarray(masks)).float(),
        )

    train_split, test_split = to_split(train), to_split(test)
    revision = revision or content_revision(
        train_split.x, train_split.y, train_split.ids, train_split.masks,
        test_split.x, test_split.y, test_split.ids, test_split.masks,
    )
    return Dataset(
        name=name, modality=modality, n_classes=n_classes, train=train_split, test=test_split,
        revision=revision, feature_names=feature_names, vocab_size=vocab_size, feature_groups=feature_groups,
        feature_scaling=feature_scaling, class_names=tuple(class_names), vocabulary=vocabulary,
        pixel_normalisation=pixel_normalisation,
    )


def standardize(train_x: np.ndarray, test_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-score features with statistics of the training split only (no test leakage)."""
    mean, std = _moments(train_x)
    return (train_x - mean) / std, (test_x - mean) / std


def scaling(train_x: np.ndarray) -> tuple[tuple[float, float], ...]:
    """``Dataset.feature_scaling`` of :func:`standardize`: per feature ``(mean, std)`` of the raw training split."""
    return tuple((float(m), float(s)) for m, s in zip(*_moments(train_x)))


def _moments(train_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = train_x.mean(axis=0)
    std = train_x.std(axis=0)
    std[std == 0] = 1.0
    return mean, std
