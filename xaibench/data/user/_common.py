"""Checks shared by the user-data loaders. Every problem a user can fix is a one-line ``UserError``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xaibench.config.close_paths import did_you_mean
from xaibench.data.base import split_arrays
from xaibench.data.classes import class_name
from xaibench.errors import UserError


def require_path(path: str | None, what: str, *, directory: bool = False) -> Path:
    """The configured path, checked to exist (as a file, or a directory when ``directory``)."""
    if not path:
        raise UserError(f"{what}: no path given; set dataset.path=<{'folder' if directory else 'file'}>")
    resolved = Path(path).expanduser()
    exists = resolved.is_dir() if directory else resolved.is_file()
    if not exists:
        kind = "folder" if directory else "file"
        hint = did_you_mean(path, "dataset.path", kind="folder" if directory else "file")
        raise UserError(f"{what}: {kind} not found: {resolved} (relative paths start at {Path.cwd()}){hint}")
    return resolved


# What the target column holds: ``auto`` takes it as class labels unless it looks like a count or a measurement
# (then the user says which), ``classification`` takes every distinct value as a class, ``regression`` is refused.
TASKS = ("auto", "classification", "regression")
# More distinct whole numbers than this in a numeric target (10: digits 0..9 pass) may be counts (visits, ages,
# scores): ``task: auto`` asks instead of training a many-class model on them.
MAX_UNDECLARED_INTEGER_CLASSES = 10


def encode_labels(values: np.ndarray, what: str, task: str = "auto",
                  source: str = "the target") -> tuple[np.ndarray, tuple[str, ...]]:
    """Map arbitrary label values to ``0..K-1`` in sorted order; returns ``(labels (N,), class names)``.

    The order is numpy's sort of the values, the order scikit-learn gives a model's ``classes_``; the names
    are spelled by :func:`xaibench.data.classes.class_name` (``1.0`` -> ``1``), as model adapters spell theirs.
    ``task`` (``TASKS``) says what the values are; ``source`` names them in messages (``the target column 'y'``).

    Raises:
        UserError: missing labels, fewer than two classes, a continuous target, ``task=regression``, or (under
            ``task=auto``) more than ``MAX_UNDECLARED_INTEGER_CLASSES`` distinct whole numbers.
    """
    if task not in TASKS:
        raise UserError(f"{what}: task must be one of {', '.join(TASKS)}, got {task!r}")
    if task == "regression":
        raise UserError(f"{what}: task=regression: xaibench benchmarks classifiers; bin {source} into classes "
                        "first (e.g. pandas.cut) and set dataset.task=auto")
    values = np.asarray(values)
    if values.dtype.kind in "fO" and pd.isna(values).any():  # NaN, None, pd.NA (a Parquet string/Int64 column)
        raise UserError(f"{what}: {source} has {int(pd.isna(values).sum())} missing value(s); drop or fill those "
                        "rows first")
    classes, labels = np.unique(values, return_inverse=True)
    _refuse_continuous(values, classes, what, source)
    if task == "auto":
        _refuse_undeclared_counts(values, classes, what, source)
    if len(classes) < 2:
        raise UserError(f"{what}: {source} has {len(classes)} distinct value(s); a classifier needs at least two")
    return labels.astype(np.int64), tuple(class_name(c) for c in classes)


def _refuse_continuous(values: np.ndarray, classes: np.ndarray, what: str, source: str) -> None:
    """A regression target would silently become a many-class problem: refuse it (classification only)."""
    fractional = values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0)
    example = ", ".join(str(c) for c in classes[:3])
    if fractional and len(classes) <= 20:  # few distinct values: labels, not a measurement
        raise UserError(f"{what}: {source} has fractional values ({example}); class labels must be integers or "
                        "names: map them to classes first")
    if fractional or (len(classes) > 20 and len(classes) > len(values) / 2):
        raise UserError(f"{what}: {source} looks continuous ({len(classes)} distinct values in {len(values)} rows, "
                        f"e.g. {example}); xaibench benchmarks classifiers: bin the target into classes first")


def _refuse_undeclared_counts(values: np.ndarray, classes: np.ndarray, what: str, source: str) -> None:
    """Many distinct whole numbers (a count, an age, a score) would silently become as many classes, each learnt
    from a few rows and ranked by a classifier's loss that ignores their order: ask what they are."""
    if values.dtype.kind not in "iuf" or len(classes) <= MAX_UNDECLARED_INTEGER_CLASSES:
        return
    per_class = len(values) / len(classes)
    raise UserError(f"{what}: {source} holds {len(classes)} distinct whole numbers ({class_name(classes[0])} to "
                    f"{class_name(classes[-1])}, {per_class:.0f} rows per value on average): counts or "
                    "measurements would become as many unordered classes; if they are class codes set "
                    "dataset.task=classification, otherwise bin them into classes first (e.g. pandas.cut)")


def checked_split(
    x: np.ndarray, y: np.ndarray, ids: np.ndarray, *, test_size: float, seed: int, what: str,
    masks: np.ndarray | None = None,
) -> tuple[dict, dict]:
    """``split_arrays`` with the failures a user can cause (bad ``test_size``, too few rows) as ``UserError``."""
    if not 0.0 < test_size < 1.0:
        raise UserError(f"{what}: test_size must be in (0, 1), got {test_size}")
    if len(set(ids.tolist())) != len(ids):
        raise UserError(f"{what}: sample ids are not unique")
    n_test = int(np.ceil(test_size * len(y)))
    if n_test < 1 or len(y) - n_test < 1:
        raise UserError(f"{what}: {len(y)} sample(s) with test_size={test_size} leave an empty train or test split")
    try:
        return split_arrays(x, y, ids, test_size=test_size, seed=seed, masks=masks)
    except ValueError as error:  # e.g. fewer test samples than classes under stratification
        raise UserError(f"{what}: cannot split {len(y)} samples with test_size={test_size}: {error}") from None


def check_binary_masks(masks: Any, what: str) -> None:
    """Ground-truth masks must be 0/1 (or boolean): Quantus' localisation metrics read every nonzero value as inside
    (``s.astype(bool)``), so a soft mask (0.01 around the object) would put the whole input inside, silently."""
    values = np.asarray(masks)
    other = values[(values != 0) & (values != 1)]
    if other.size:
        raise UserError(f"{what} hold values other than 0 and 1 (e.g. {float(other.flat[0]):.3g}); localisation "
                        "metrics read every nonzero value as inside the ground truth: threshold soft masks first "
                        "(masks > 0.5)")
