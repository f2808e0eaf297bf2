"""A tabular dataset from the user's CSV/TSV or Parquet file, the target column chosen by name."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from xaibench.data.base import DatasetSpec, make_dataset, standardize as zscore
from xaibench.data.user._common import checked_split, encode_labels, require_path
from xaibench.errors import UserError
from xaibench.registry import DATASETS
from xaibench.types import Dataset, Modality

_READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: Path, what: str) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet file by its suffix; unreadable or empty files are ``UserError``."""
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise UserError(f"{what}: unsupported file type {path.suffix!r}; use one of {', '.join(sorted(_READERS))}")
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    except Exception as error:  # noqa: BLE001 - any parser failure is the user's file
        raise UserError(f"{what}: cannot read {path}: {type(error).__name__}: {error}") from None
    if frame.empty:
        raise UserError(f"{what}: {path} has no rows")
    return frame


@DATASETS.register("csv_table")
@dataclass(frozen=True)
class CsvTable(DatasetSpec):
    """Rows of a table as samples ``(N, F)``; labels are the sorted distinct values of ``target`` as ``0..K-1``.

    Attributes:
        path: ``.csv``, ``.tsv`` or ``.parquet`` file.
        target: name of the label column.
        features: feature columns to use (default: every column except ``target`` and ``id_column``).
        id_column: column with unique sample ids (default: the row number, ``row-00000``...).
        standardize: z-score features with training-split statistics.
    """

    modality: ClassVar[Modality] = Modality.TABULAR
    path: str | None = None
    target: str | None = None
    features: tuple[str, ...] = ()
    id_column: str | None = None
    standardize: bool = True

    def build(self, seed: int) -> Dataset:
        what = f"dataset {self.name}"
        frame = read_table(require_path(self.path, what), what)
        columns = [str(c) for c in frame.columns]
        frame.columns = columns
        if not self.target or self.target not in columns:
            raise UserError(f"{what}: target column {self.target!r} not in the file; columns: {', '.join(columns)}")
        features = self._feature_columns(columns, what)
        x = self._numeric_features(frame[features], what)
        y, _ = encode_labels(frame[self.target].to_numpy(), what)
        ids = self._ids(frame, what)
        train, test = checked_split(x, y, ids, test_size=self.test_size, seed=seed, what=what)
        if self.standardize:
            train["x"], test["x"] = zscore(train["x"], test["x"])
        return make_dataset(self.name, self.modality, train, test, n_classes=int(y.max()) + 1,
                            feature_names=tuple(features))

    def _feature_columns(self, columns: list[str], what: str) -> list[str]:
        if self.id_column is not None and self.id_column not in columns:
            raise UserError(f"{what}: id_column {self.id_column!r} not in the file; columns: {', '.join(columns)}")
        if self.features:
            unknown = [c for c in self.features if c not in columns]
            if unknown:
                raise UserError(f"{what}: feature column(s) {', '.join(unknown)} not in the file; "
                                f"columns: {', '.join(columns)}")
            features = list(self.features)
        else:
            features = [c for c in columns if c not in (self.target, self.id_column)]
        if self.target in features:
            raise UserError(f"{what}: the target column {self.target!r} cannot also be a feature")
        if not features:
            raise UserError(f"{what}: no feature columns left besides the target")
        return features

    @staticmethod
    def _numeric_features(frame: pd.DataFrame, what: str) -> np.ndarray:
        bad = [c for c in frame.columns if not (pd.api.types.is_numeric_dtype(frame[c]) or
                                                pd.api.types.is_bool_dtype(frame[c]))]
        if bad:
            raise UserError(f"{what}: non-numeric feature column(s) {', '.join(bad)}; encode them as numbers or "
                            "leave them out with dataset.features=[...]")
        x = frame.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = [c for c, bad_col in zip(frame.columns, ~np.isfinite(x).all(axis=0)) if bad_col]
        if missing:
            raise UserError(f"{what}: missing or infinite values in column(s) {', '.join(missing)}; "
                            "impute or drop them first")
        return x

    def _ids(self, frame: pd.DataFrame, what: str) -> np.ndarray:
        if self.id_column is None:
            return np.array([f"row-{i:05d}" for i in range(len(frame))])
        ids = frame[self.id_column].astype(str).to_numpy()
        if len(set(ids)) != len(ids):
            raise UserError(f"{what}: id_column {self.id_column!r} has duplicate values")
        return ids
