"""Turning a user's table columns into model features, by declared policies, with scikit-learn's transformers.

Numeric columns: imputed (``missing`` policy, or refused with the columns named) and optionally standardised.
Categorical or text-valued columns: one-hot (``OneHotEncoder``, one feature per category, named ``column=value``)
or ordinal (``OrdinalEncoder``, one feature per column, categories in sorted order). Everything is fitted on the
training split only. One-hot features are grouped by original column (``groups``), so attributions can be summed
back to the columns the user knows (``column_attributions``).

Many distinct values: a text column with more than ``max_categories`` distinct training values (an id, a name, free
text) would add that many one-hot features, so it is refused with the column named, unless the user declares it in
``categorical_columns`` (then it is encoded as asked). A column whose values are mostly distinct (more than half of
the training rows, at least ``ID_LIKE_MIN`` values) is encoded but warned about, in one ``xaibench: warning:`` line
on stderr, once per process: one feature per row says nothing about other rows, whatever the encoding.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sys

import numpy as np
import pandas as pd

from xaibench.errors import UserError

MISSING_CATEGORY = "<missing>"
SPLIT_VALUES = ("train", "test")
ID_LIKE_MIN = 20  # distinct values from which a mostly-distinct column reads as an id or free text
_WARNED: set[str] = set()  # warnings already printed by this process (a dataset is built more than once per run)


def warn_once(message: str) -> None:
    """Print ``xaibench: warning: <message>`` on stderr, the first time this process sees the message."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"xaibench: warning: {message}", file=sys.stderr, flush=True)


def split_by_column(values: pd.Series, column: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the ``train`` and ``test`` rows named by a split column (case-insensitive)."""
    labels = values.astype("string").str.strip().str.lower()
    bad = sorted(set(labels.fillna("<missing>")) - set(SPLIT_VALUES))
    if bad:
        raise UserError(f"{what}: split_column {column!r} must hold only {'/'.join(SPLIT_VALUES)}, found "
                        f"{', '.join(map(repr, bad[:5]))}")
    train, test = np.flatnonzero(labels == "train"), np.flatnonzero(labels == "test")
    if len(train) == 0 or len(test) == 0:
        raise UserError(f"{what}: split_column {column!r} leaves an empty train or test split")
    return train, test


def column_attributions(attributions: np.ndarray, groups: tuple[tuple[str, tuple[int, ...]], ...]) -> np.ndarray:
    """Per-feature attributions ``(N, F_encoded)`` -> per original column ``(N, F_columns)`` (groups summed).

    ``groups`` is ``Dataset.feature_groups``: ``(column, encoded feature indices)`` in column order.
    """
    attributions = np.asarray(attributions)
    return np.stack([attributions[:, list(index)].sum(axis=1) for _, index in groups], axis=1)


@dataclass
class ColumnEncoder:
    """Fits the declared policies on the training rows and encodes both splits (see the module docstring)."""

    categorical: str = "onehot"
    missing: str = "refuse"
    standardize: bool = True
    categorical_columns: tuple[str, ...] = ()
    max_categories: int = 100
    feature_names: tuple[str, ...] = field(default=(), init=False)
    groups: tuple[tuple[str, tuple[int, ...]], ...] = field(default=(), init=False)
    scaling: tuple[tuple[float, float], ...] = field(default=(), init=False)  # Dataset.feature_scaling

    def fit_transform(self, frame: pd.DataFrame, train_idx: np.ndarray, test_idx: np.ndarray, what: str
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Encode ``frame`` (features only); returns ``(x_train, x_test)`` as float64 arrays."""
        categorical = [c for c in frame.columns if self._is_categorical(frame[c])]
        self._refuse_times(frame, what)
        self._check_missing(frame, what)
        if categorical and self.categorical == "refuse":
            raise UserError(f"{what}: non-numeric feature column(s) {', '.join(categorical)}; encode them with "
                            "dataset.categorical=onehot|ordinal or leave them out with dataset.features=[...]")
        self._check_cardinality(frame.iloc[train_idx], categorical, what)
        numeric = [c for c in frame.columns if c not in categorical]
        numeric_frame = frame[numeric].apply(pd.to_numeric, errors="coerce").astype("float64")
        infinite = [c for c in numeric if np.isinf(numeric_frame[c].to_numpy()).any()]
        if infinite:
            raise UserError(f"{what}: infinite values in column(s) {', '.join(infinite)}; replace or drop them")
        _warn_uninformative(frame.iloc[train_idx], numeric_frame.iloc[train_idx], what)
        transformer = self._transformer(numeric, categorical)
        data = pd.concat([numeric_frame, frame[categorical].astype("object")], axis=1)[list(frame.columns)]
        if categorical:
            data[categorical] = data[categorical].where(data[categorical].notna(), MISSING_CATEGORY).astype(str)
        x_train = transformer.fit_transform(data.iloc[train_idx])
        x_test = transformer.transform(data.iloc[test_idx])
        self._describe(transformer, list(frame.columns), numeric, categorical)
        return np.asarray(x_train, dtype=np.float64), np.asarray(x_test, dtype=np.float64)

    def _is_categorical(self, column: pd.Series) -> bool:
        if column.name in self.categorical_columns:
            return True
        return not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column))

    def _refuse_times(self, frame: pd.DataFrame, what: str) -> None:
        """Dates and durations (a Parquet file's ``datetime64``/``timedelta64`` columns) are neither numbers nor
        categories: one-hot encoded, each date would be a feature of its own. Refused unless declared categorical."""
        times = [c for c in frame.columns if c not in self.categorical_columns and (
            pd.api.types.is_datetime64_any_dtype(frame[c]) or pd.api.types.is_timedelta64_dtype(frame[c]))]
        if times:
            raise UserError(f"{what}: column(s) {', '.join(times)} hold dates or times, which would be encoded as one "
                            "category per value; convert them to numbers first (e.g. days since a date: "
                            f"(df[{times[0]!r}] - df[{times[0]!r}].min()).dt.days) or leave them out with "
                            "dataset.features=[...]")

    def _check_cardinality(self, train: pd.DataFrame, categorical: list[str], what: str) -> None:
        """Refuse undeclared one-hot columns above ``max_categories``; warn about mostly-distinct columns."""
        undeclared = [c for c in categorical if c not in self.categorical_columns]
        counts = {c: int(train[c].nunique(dropna=False)) for c in undeclared}
        too_many = [c for c in undeclared if counts[c] > self.max_categories] if self.categorical == "onehot" else []
        if too_many:
            named = ", ".join(f"{c} ({counts[c]} distinct values)" for c in too_many[:5])
            raise UserError(f"{what}: one-hot encoding {named} would add more than dataset.max_categories="
                            f"{self.max_categories} features per column; leave an id or free-text column out with "
                            "dataset.features=[...], encode with dataset.categorical=ordinal, or declare it with "
                            f"dataset.categorical_columns=[{too_many[0]}] (or raise dataset.max_categories)")
        id_like = [c for c in undeclared if counts[c] >= max(ID_LIKE_MIN, len(train) / 2 + 1)]
        if id_like:
            named = ", ".join(f"{c} ({counts[c]} distinct values in {len(train)} training rows)" for c in id_like[:5])
            warn_once(f"{what}: column(s) {named} look like ids or free text: each value says little about other "
                      "rows; leave them out with dataset.features=[...] (declare them in dataset.categorical_columns "
                      "to silence this)")

    def _check_missing(self, frame: pd.DataFrame, what: str) -> None:
        missing = [c for c in frame.columns if frame[c].isna().any()]
        if missing and self.missing == "refuse":
            raise UserError(f"{what}: missing values in column(s) {', '.join(missing)}; impute them with "
                            "dataset.missing=mean|median|most_frequent or drop those rows first")

    def _transformer(self, numeric: list[str], categorical: list[str]):
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

        numeric_steps = [SimpleImputer(strategy=self.missing)] if self.missing != "refuse" else []
        numeric_steps.append(StandardScaler() if self.standardize else FunctionTransformer())
        if self.categorical == "ordinal":
            encoder = [OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float64)]
            encoder += [StandardScaler()] if self.standardize else []
        else:
            encoder = [OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)]
        parts = [("numeric", make_pipeline(*numeric_steps), numeric), ("categorical", make_pipeline(*encoder),
                                                                         categorical)]
        return ColumnTransformer([p for p in parts if p[2]], remainder="drop", verbose_feature_names_out=False)

    def _describe(self, transformer, columns: list[str], numeric: list[str], categorical: list[str]) -> None:
        """Feature names (``column`` or ``column=value``) and, per original column, its encoded feature indices."""
        names: list[str] = []
        owner: list[str] = []
        moments: list[tuple[float, float]] = []
        for name, pipeline, cols in transformer.transformers_:
            if name == "numeric" or (name == "categorical" and self.categorical != "onehot"):
                names += cols
                owner += cols
                moments += _moments(pipeline[-1], len(cols))
            elif name == "categorical":
                categories = pipeline[-1].categories_
                for column, values in zip(cols, categories):
                    names += [f"{column}={value}" for value in values]
                    owner += [column] * len(values)
                    moments += [(0.0, 1.0)] * len(values)
        self.feature_names = tuple(names)
        self.scaling = tuple(moments) if self.standardize else ()
        self.groups = tuple((c, tuple(i for i, o in enumerate(owner) if o == c)) for c in columns)


def _warn_uninformative(train: pd.DataFrame, numeric: pd.DataFrame, what: str) -> None:
    """Warn (one line each) about columns that say nothing about the class: a column constant on the training rows
    ``train`` (its attributions, and the metrics that perturb it, measure nothing) and, among the ``numeric`` ones,
    a row counter or numeric id (whole numbers, one per training row, in a run such as 1000..1079)."""
    constants = [c for c in train.columns if train[c].nunique(dropna=False) == 1]
    counters = []
    for column in numeric.columns.difference(constants, sort=False):
        values = numeric[column].dropna().to_numpy()
        if (len(values) >= ID_LIKE_MIN and np.array_equal(values, np.round(values))
                and np.unique(values).size == len(values) and values.max() - values.min() < 2 * len(values)):
            counters.append(column)
    if counters:
        warn_once(f"{what}: column(s) {', '.join(counters)} hold a distinct whole number per row (a row number or "
                  f"an id?): as a feature it says nothing about other rows; name it with dataset.id_column="
                  f"{counters[0]} or leave it out with dataset.features=[...]")
    if constants:
        warn_once(f"{what}: column(s) {', '.join(constants)} hold one value on every training row: they cannot "
                  "inform the model, and metrics that perturb them measure nothing; leave them out with "
                  "dataset.features=[...]")


def _moments(step, n: int) -> list[tuple[float, float]]:
    """``(mean, std)`` per column of a fitted ``StandardScaler`` (``raw = x * std + mean``); identity otherwise."""
    if not hasattr(step, "mean_"):
        return [(0.0, 1.0)] * n
    return [(float(m), float(s)) for m, s in zip(step.mean_, step.scale_)]
