"""Checks of the user's files that need no torch: run by the pre-flight before anything heavy is imported.

A missing file, a column that is not in the table or more ``n_samples`` than the test split holds used to surface
only once the registries (and torch) were imported and the dataset built, seconds later. These checks read only
what they need (a table with pandas, an ``.npz`` index, a folder listing) and raise the same one-line
``UserError``; the full validation that follows still checks everything else. Datasets and models are matched by
the parameters they take (``path``, ``target``...), so a plugin with the same parameters is checked alike.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xaibench.config.close_paths import did_you_mean
from xaibench.errors import UserError

# Config sections that read a folder rather than a file.
_FOLDER_DATASETS = frozenset({"image_folder"})
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
# Model parameters that name a local file or folder (checked to exist).
_MODEL_PATHS = {"path": "model.path", "state_dict": "model.state_dict"}


def check_user_files(dataset: Mapping[str, Any], model: Mapping[str, Any], n_samples: int) -> None:
    """Raise ``UserError`` for a missing file/folder, an absent column, or ``n_samples`` beyond the test split."""
    _check_model_paths(model)
    name, path = str(dataset.get("name")), dataset.get("path")
    if path is None or not isinstance(path, str):
        return
    what = f"dataset {name}"
    resolved = Path(path).expanduser()
    folder = name in _FOLDER_DATASETS
    if not (resolved.is_dir() if folder else resolved.is_file()):
        kind = "folder" if folder else "file"
        hint = did_you_mean(path, "dataset.path", kind="folder" if folder else "file")
        raise UserError(f"{what}: {kind} not found: {resolved} (relative paths start at {Path.cwd()}){hint}")
    n_test = _test_count(dataset, resolved, what)
    if n_test == 0:  # "use n_samples<=0" named no fix
        raise UserError(f"{what}: {resolved} gives no test samples (no data rows, or too few for dataset.test_size "
                        f"to take one); add rows or name the test rows with dataset.split_column")
    if n_test is not None and n_samples > n_test:
        raise UserError(f"n_samples={n_samples} exceeds the {n_test} test samples of dataset {name}; "
                        f"use n_samples<={n_test}")


def _check_model_paths(model: Mapping[str, Any]) -> None:
    for key, option in _MODEL_PATHS.items():
        value = model.get(key)
        if isinstance(value, str) and not Path(value).expanduser().exists():
            hint = did_you_mean(value, option, kind="any")
            raise UserError(f"model {model.get('name')}: not found: {Path(value).expanduser()} ({option}; relative "
                            f"paths start at {Path.cwd()}){hint}")


def _test_count(dataset: Mapping[str, Any], path: Path, what: str) -> int | None:
    """The test split's size as the dataset will build it, or None when it cannot be told cheaply."""
    test_size = dataset.get("test_size", 0.3)
    if not isinstance(test_size, (int, float)) or not 0 < test_size < 1:
        return None
    if "target" in dataset and path.suffix.lower() in (".csv", ".tsv", ".txt", ".parquet", ".pq"):
        return _table_test_count(dataset, path, float(test_size), what)
    if path.suffix.lower() == ".npz":
        return _npz_test_count(dataset, path, float(test_size), what)
    if path.is_dir():  # images inside class folders; an empty class folder is the dataset's to report
        class_dirs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
        counts = [sum(1 for p in d.rglob("*") if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES
                      and not any(part.startswith(".") for part in p.relative_to(d).parts))  # as image_folder
                  for d in class_dirs]
        return math.ceil(test_size * sum(counts)) if len(counts) >= 2 and all(counts) else None
    return None


def _numbers_read(dataset: Mapping[str, Any]) -> tuple[tuple[str, ...], str | None, tuple[str, ...] | None]:
    """``(text_columns, thousands, only)`` for ``read_delimited``, as the dataset's own ``build`` reads the file
    (``data/user/table.py``, ``text.py``): its ``thousands`` separator, and the decimal/thousands check on the columns
    it reads as numbers only (``features`` when given; never the target, id or split column; none for a text
    dataset), so the fix a refusal names is one the pre-flight then accepts."""
    thousands = dataset.get("thousands")
    if dataset.get("text_column") is not None:  # text_csv: no column is read as numbers
        return (str(dataset.get("text_column")),), thousands, ()
    not_numbers = (*(dataset.get("categorical_columns") or ()),
                   *(str(c) for c in (dataset.get(k) for k in ("target", "id_column", "split_column")) if c))
    return not_numbers, thousands, tuple(str(c) for c in dataset.get("features") or ()) or None


def _table_test_count(dataset: Mapping[str, Any], path: Path, test_size: float, what: str) -> int | None:
    import pandas as pd

    from xaibench.data.user.delimited import read_delimited

    try:
        frame = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else read_delimited(
            path, what, dataset.get("sep"), dataset.get("decimal") or ".", *_numbers_read(dataset))
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - the dataset's own reader reports unreadable files in full
        return None
    columns = [str(c) for c in frame.columns]
    named = {"target": dataset.get("target"), "text_column": dataset.get("text_column"),
             "id_column": dataset.get("id_column"), "split_column": dataset.get("split_column")}
    for option, column in named.items():
        if option == "target" and not column:
            raise UserError(f"{what}: no target given; set dataset.target=<label column>; columns: "
                            f"{', '.join(columns)}")
        if (column is not None or option == "target") and column not in columns:
            label = "target column" if option == "target" else option
            raise UserError(f"{what}: {label} {column!r} not in the file; columns: {', '.join(columns)}")
    unknown = [c for c in dataset.get("features") or () if c not in columns]
    if unknown:
        raise UserError(f"{what}: feature column(s) {', '.join(unknown)} not in the file; columns: {', '.join(columns)}")
    split = named["split_column"]
    if split is not None:  # values other than train/test, or an empty side, are named (not "0 test samples")
        from xaibench.data.user.encoding import split_by_column

        return len(split_by_column(frame[split], split, what)[1])
    return math.ceil(test_size * len(frame))


def _npz_test_count(dataset: Mapping[str, Any], path: Path, test_size: float, what: str) -> int | None:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            key = dataset.get("y_key", "y")
            if key not in names:
                raise UserError(f"{what}: no array {key!r} in the file (y_key); arrays: {', '.join(sorted(names))}")
            return math.ceil(test_size * int(np.prod(npz[key].shape)))
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - the dataset's own reader reports unreadable files in full
        return None
