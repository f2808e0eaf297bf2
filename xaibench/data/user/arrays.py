"""A dataset of any modality from the user's ``.npz`` file (inputs, labels, optional masks and ids)."""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from xaibench.data.base import DatasetSpec, make_dataset, scaling, standardize as zscore, unsplit_revision
from xaibench.data.user._common import check_binary_masks, checked_split, encode_labels, require_path
from xaibench.data.user.encoding import warn_once
from xaibench.errors import UserError
from xaibench.registry import DATASETS
from xaibench.types import Dataset, Modality, Vocabulary

# Dimensions of x per modality; a missing channel axis (images (N, H, W), series (N, T)) is added.
_NDIM = {Modality.TABULAR: 2, Modality.IMAGE: 4, Modality.TIME_SERIES: 3, Modality.TEXT: 2}


def series_layout_hint(shape: tuple[int, ...]) -> str:
    """How a series of per-sample shape ``(C, T)`` is read, and the fix for one stored time-major ``(T, C)``:

    ``(64, 3)`` -> ``"series are read as (C, T) = (channels, time steps): (64, 3) is 64 channel(s) of 3 time step(s);
    if yours are (T, C), store x.transpose(0, 2, 1), giving (3, 64) per sample"``.
    """
    channels, steps = (int(n) for n in shape)
    return (f"series are read as (C, T) = (channels, time steps): {(channels, steps)} is {channels} channel(s) of "
            f"{steps} time step(s); if yours are (T, C), store x.transpose(0, 2, 1), giving {(steps, channels)} per "
            "sample")


def load_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` (no pickled objects), as a dict."""
    if not zipfile.is_zipfile(path):  # np.load would try to unpickle it and blame "pickled object arrays"
        raise UserError(f"{what}: {path} is not a valid npz file (not a zip archive); write it with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as error:
        raise UserError(f"{what}: {path} holds pickled object arrays, which are not loaded ({error})") from None
    except Exception as error:  # noqa: BLE001 - any reader failure is the user's file
        raise UserError(f"{what}: cannot read {path} as .npz: {type(error).__name__}: {error}") from None


@DATASETS.register("npz_arrays")
@dataclass(frozen=True)
class NpzArrays(DatasetSpec):
    """Arrays from an ``.npz``: ``x`` in the modality's layout (``types.Modality``), integer-like labels ``y``.

    Attributes:
        path: the ``.npz`` file.
        x_key, y_key: array names of inputs and labels.
        modality: how ``x`` is laid out: tabular ``(N, F)``, image ``(N, C, H, W)`` or ``(N, H, W)``,
            time_series ``(N, C, T)`` or ``(N, T)``, text integer token ids ``(N, L)``.
        masks_key: optional ground-truth masks, shaped like ``x`` (then the dataset has ground truth).
        ids_key: optional unique sample ids ``(N,)`` (default: ``npz-00000``...).
        vocab_key: text only, optional: the token strings ``(V,)`` of ids ``0..V-1`` (e.g.
            ``np.array(tokenizer.convert_ids_to_tokens(range(V)))``), shown in galleries instead of ids.
        standardize: z-score tabular features with training-split statistics.
    """

    modality: Literal["tabular", "image", "time_series", "text"] = "tabular"
    path: str | None = None
    x_key: str = "x"
    y_key: str = "y"
    masks_key: str | None = None
    ids_key: str | None = None
    vocab_key: str | None = None
    standardize: bool = False
    task: Literal["auto", "classification", "regression"] = "auto"  # what y holds (_common.TASKS)

    def __post_init__(self) -> None:
        # Per-instance facts shadow the class-level declarations (class level: tabular, no ground truth), so the
        # runner's applicability checks see this file's modality and whether it brings masks.
        object.__setattr__(self, "modality", Modality(self.modality))
        object.__setattr__(self, "has_ground_truth", self.masks_key is not None)

    def build(self, seed: int) -> Dataset:
        what = f"dataset {self.name}"
        arrays = load_npz(require_path(self.path, what), what)
        x = self._inputs(self._array(arrays, self.x_key, "x_key", what), what)
        raw_y = self._array(arrays, self.y_key, "y_key", what)
        if raw_y.ndim > 1 and np.prod(raw_y.shape[1:]) > 1:
            raise UserError(f"{what}: y has shape {raw_y.shape}; give one class label per sample (N,) (one-hot rows? "
                            "store their argmax)")
        # images, series and token arrays with whole-number labels are class codes (CIFAR-100's 100); only a table's
        # may be counts or measurements that ``task: auto`` asks about
        task = "classification" if self.task == "auto" and self.modality is not Modality.TABULAR else self.task
        y, class_names = encode_labels(raw_y.reshape(-1), what, task, f"the label array {self.y_key!r}")
        if len(y) != len(x):
            raise UserError(f"{what}: {len(x)} inputs but {len(y)} labels")
        masks = None
        if self.masks_key is not None:
            masks = self._array(arrays, self.masks_key, "masks_key", what)
            if masks.ndim == x.ndim - 1 and self.modality in (Modality.IMAGE, Modality.TIME_SERIES):
                masks = masks[:, None]  # the same missing channel axis as x
            if masks.dtype.kind not in "biuf":
                raise UserError(f"{what}: masks have non-numeric dtype {masks.dtype}")
            if masks.shape != x.shape:
                raise UserError(f"{what}: masks {masks.shape} do not have the shape of x {x.shape}")
            check_binary_masks(masks, what + ": masks")
        ids = np.array([f"npz-{i:05d}" for i in range(len(y))])
        if self.ids_key is not None:
            ids = self._array(arrays, self.ids_key, "ids_key", what).reshape(-1).astype(str)
            if len(ids) != len(y):
                raise UserError(f"{what}: {len(ids)} ids for {len(y)} samples")
        train, test = checked_split(x, y, ids, test_size=self.test_size, seed=seed, what=what, masks=masks)
        raw_scaling = ()
        if self.standardize and self.modality is Modality.TABULAR:
            raw_scaling = scaling(train["x"])
            train["x"], test["x"] = zscore(train["x"], test["x"])
        text = self.modality is Modality.TEXT
        return make_dataset(self.name, self.modality, train, test, n_classes=int(y.max()) + 1,
                            vocab_size=int(x.max()) + 1 if text else 0,
                            x_dtype=torch.int64 if text else torch.float32,
                            revision=unsplit_revision(x, y, ids, masks, test_size=self.test_size),
                            feature_scaling=raw_scaling, class_names=class_names,
                            vocabulary=self._vocabulary(arrays, what))

    def _vocabulary(self, arrays: dict[str, np.ndarray], what: str) -> Vocabulary | None:
        if self.vocab_key is None:
            return None
        if self.modality is not Modality.TEXT:
            raise UserError(f"{what}: vocab_key names token strings, for modality=text only (got {self.modality})")
        tokens = self._array(arrays, self.vocab_key, "vocab_key", what)
        if tokens.ndim != 1 or tokens.dtype.kind not in "USO":
            raise UserError(f"{what}: vocab_key {self.vocab_key!r} must be a 1-d array of token strings, got "
                            f"{tokens.dtype} {tokens.shape}")
        return Vocabulary(tuple(str(t) for t in tokens))

    @staticmethod
    def _array(arrays: dict[str, np.ndarray], key: str, option: str, what: str) -> np.ndarray:
        if key not in arrays:
            raise UserError(f"{what}: no array {key!r} in the file ({option}); arrays: {', '.join(sorted(arrays))}")
        return arrays[key]

    def _inputs(self, x: np.ndarray, what: str) -> np.ndarray:
        modality = self.modality
        if x.dtype.kind not in "biuf":
            raise UserError(f"{what}: x has non-numeric dtype {x.dtype}")
        if modality in (Modality.IMAGE, Modality.TIME_SERIES) and x.ndim == _NDIM[modality] - 1:
            x = x[:, None]
        if x.ndim != _NDIM[modality]:
            raise UserError(f"{what}: modality={modality} needs x with {_NDIM[modality]} dimensions, got shape "
                            f"{x.shape}")
        if len(x) == 0:
            raise UserError(f"{what}: x has no samples")
        if modality is Modality.IMAGE and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
            raise UserError(f"{what}: x has shape {x.shape}, channel-last (N, H, W, C) as PIL and numpy write images"
                            f"; store it channel-first (N, C, H, W): np.savez(..., x=x.transpose(0, 3, 1, 2))")
        if modality is Modality.TIME_SERIES and x.shape[1] > x.shape[2]:  # more channels than steps: (N, T, C)?
            warn_once(f"{what}: x has shape {x.shape}, more channels than time steps: "
                      f"{series_layout_hint(x.shape[1:])}")
        if modality is Modality.TEXT:
            if x.dtype.kind not in "biu" or x.min() < 0:
                raise UserError(f"{what}: modality=text needs non-negative integer token ids in x")
            return x.astype(np.int64)
        x = x.astype(np.float64)
        if not np.isfinite(x).all():
            raise UserError(f"{what}: x has NaN or infinite values")
        return x
