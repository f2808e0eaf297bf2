"""A tabular dataset from the user's CSV/TSV or Parquet file, the target column chosen by name."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from xaibench.data.base import DatasetSpec, make_dataset, unsplit_revision
from xaibench.data.user._common import checked_split, encode_labels, require_path
from xaibench.data.user.delimited import read_delimited
from xaibench.data.user.encoding import ColumnEncoder, split_by_column, warn_once
from xaibench.errors import UserError
from xaibench.registry import DATASETS
from xaibench.types import Dataset, Modality

_UNNAMED = re.compile(r"Unnamed: \d+")  # pandas' name for a column without a header
_READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: Path, what: str, sep: str | None = None, decimal: str = ".",
               text_columns: tuple[str, ...] = (), thousands: str | None = None,
               only: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet file by its suffix (text: with ``sep``, default by suffix, ``decimal`` and
    ``thousands``; ``text_columns`` and ``only`` as ``read_delimited`` takes them);
    unreadable or empty files, and a one-column read of a file with another separator, are ``UserError``."""
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise UserError(f"{what}: unsupported file type {path.suffix!r}; use one of {', '.join(sorted(_READERS))}")
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = read_delimited(path, what, sep, decimal, text_columns, thousands, only)
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - any parser failure is the user's file
        raise UserError(f"{what}: cannot read {path}: {type(error).__name__}: {error}") from None
    if frame.empty:
        raise UserError(f"{what}: {path} has no rows")
    return frame


@DATASETS.register("csv_table")
@dataclass(frozen=True)
class CsvTable(DatasetSpec):
    """Rows of a table as samples ``(N, F)``; labels are the sorted distinct values of ``target`` as ``0..K-1``.

    Non-numeric (categorical or text-valued) columns are encoded by the declared ``categorical`` policy with
    scikit-learn's transformers, fitted on the training split only (``data.user.encoding``). One-hot columns
    are named ``column=value`` and grouped by their original column in ``Dataset.feature_groups``, so
    attributions can be reported per original column (the group's attributions summed).

    Attributes:
        path: ``.csv``, ``.tsv`` or ``.parquet`` file.
        target: name of the label column.
        features: feature columns to use (default: every column except ``target``, ``id_column``, ``split_column``).
        id_column: column with unique sample ids (default: the row number, ``row-00000``...).
        standardize: z-score numeric (and ordinal-coded) features with training-split statistics.
        categorical: ``onehot``, ``ordinal`` or ``refuse`` for non-numeric columns.
        categorical_columns: numeric columns to encode as categories too (e.g. integer codes), and text columns
            declared categorical on purpose: they are encoded even above ``max_categories``, without a warning.
        max_categories: a non-numeric column with more distinct training values is refused under ``onehot`` (it
            would add one feature per value: an id or free text?), unless declared in ``categorical_columns``.
        missing: ``refuse`` (the columns are named), or impute numeric columns by ``mean``/``median``/
            ``most_frequent``; categorical gaps then become their own category ``<missing>``.
        split_column: column whose values ``train``/``test`` fix the split (``test_size`` is then unused).
        sep, decimal: a text file's field separator (default: ``,``; ``.tsv``: tab) and decimal mark, e.g.
            ``;`` and ``,`` for a European spreadsheet's CSV; Parquet files ignore them.
        thousands: a text file's thousands separator (``,`` for ``1,234.5``; ``.`` with ``decimal=','`` for
            ``1.234,5``); None: numbers have none. Numbers written otherwise are refused, naming the option.
        task: what ``target`` holds (``_common.TASKS``): ``auto`` refuses more than 10 distinct whole numbers (counts?),
            ``classification`` takes each value as a class, ``regression`` is refused (bin the target).
    """

    modality: ClassVar[Modality] = Modality.TABULAR
    path: str | None = None
    target: str | None = None
    features: tuple[str, ...] = ()
    id_column: str | None = None
    standardize: bool = True
    categorical: Literal["onehot", "ordinal", "refuse"] = "onehot"
    categorical_columns: tuple[str, ...] = ()
    max_categories: int = 100
    missing: Literal["refuse", "mean", "median", "most_frequent"] = "refuse"
    split_column: str | None = None
    sep: str | None = None
    decimal: str = "."
    thousands: str | None = None
    task: Literal["auto", "classification", "regression"] = "auto"

    def build(self, seed: int) -> Dataset:
        what = f"dataset {self.name}"
        not_numbers = (*self.categorical_columns, *(c for c in (self.target, self.id_column, self.split_column) if c))
        frame = read_table(require_path(self.path, what), what, self.sep, self.decimal, not_numbers, self.thousands,
                           tuple(self.features) or None)
        frame.columns = [str(c) for c in frame.columns]
        frame = self._without_index_columns(frame, what)
        columns = list(frame.columns)
        if not self.target:
            raise UserError(f"{what}: no target given; set dataset.target=<label column>; columns: "
                            f"{', '.join(columns)}")
        if self.target not in columns:
            raise UserError(f"{what}: target column {self.target!r} not in the file; columns: {', '.join(columns)}")
        features = self._feature_columns(columns, what)
        y, class_names = encode_labels(frame[self.target].to_numpy(), what, self.task,
                                       f"the target column {self.target!r}")
        ids = self._ids(frame, what)
        index = np.arange(len(frame))
        if self.split_column is not None:
            train_idx, test_idx = split_by_column(frame[self.split_column], self.split_column, what)
        else:
            train, test = checked_split(index[:, None], y, ids, test_size=self.test_size, seed=seed, what=what)
            train_idx, test_idx = train["x"][:, 0], test["x"][:, 0]
        if self.max_categories < 1:
            raise UserError(f"{what}: max_categories must be at least 1, got {self.max_categories}")
        encoder = ColumnEncoder(self.categorical, self.missing, self.standardize, tuple(self.categorical_columns),
                                self.max_categories)
        x_train, x_test = encoder.fit_transform(frame[features], train_idx, test_idx, what)
        train = {"x": x_train, "y": y[train_idx], "ids": ids[train_idx]}
        test = {"x": x_test, "y": y[test_idx], "ids": ids[test_idx]}
        return make_dataset(self.name, self.modality, train, test, n_classes=int(y.max()) + 1,
                            feature_names=encoder.feature_names, feature_groups=encoder.groups,
                            feature_scaling=encoder.scaling, class_names=class_names,
                            revision=unsplit_revision(frame, y, ids, test_size=None if self.split_column else
                                                     self.test_size))

    def _without_index_columns(self, frame: pd.DataFrame, what: str) -> pd.DataFrame:
        """``frame`` without header-less columns (``Unnamed: 0``: the row index ``df.to_csv(path)`` writes unless
        ``index=False``), which would otherwise be features holding row numbers; kept when named in an option."""
        named = {self.target, self.id_column, self.split_column, *self.features}
        unnamed = [c for c in frame.columns if _UNNAMED.fullmatch(c) and c not in named]
        if not unnamed:
            return frame
        if not self.features:
            warn_once(f"{what}: column(s) {', '.join(unnamed)} have no header (the row index df.to_csv writes "
                      "unless index=False) and are left out; name them in dataset.features to use them")
        return frame.drop(columns=unnamed)

    def _feature_columns(self, columns: list[str], what: str) -> list[str]:
        for option in ("id_column", "split_column"):
            value = getattr(self, option)
            if value is not None and value not in columns:
                raise UserError(f"{what}: {option} {value!r} not in the file; columns: {', '.join(columns)}")
        if self.features:
            unknown = [c for c in self.features if c not in columns]
            if unknown:
                raise UserError(f"{what}: feature column(s) {', '.join(unknown)} not in the file; "
                                f"columns: {', '.join(columns)}")
            features = list(self.features)
        else:
            features = [c for c in columns if c not in (self.target, self.id_column, self.split_column)]
        if self.target in features:
            raise UserError(f"{what}: the target column {self.target!r} cannot also be a feature")
        if not features:
            raise UserError(f"{what}: no feature columns left besides the target")
        unknown = [c for c in self.categorical_columns if c not in features]
        if unknown:
            raise UserError(f"{what}: categorical_columns {', '.join(unknown)} are not feature columns")
        return features

    def _ids(self, frame: pd.DataFrame, what: str) -> np.ndarray:
        if self.id_column is None:
            return np.array([f"row-{i:05d}" for i in range(len(frame))])
        ids = frame[self.id_column].astype(str).to_numpy()
        if len(set(ids)) != len(ids):
            raise UserError(f"{what}: id_column {self.id_column!r} has duplicate values")
        return ids
