"""Checks of a results table given as a file (a CSV or Parquet a user may have edited, merged or exported).

A table the suite writes holds each row once, a status among ``types.Status``, a finite value where the status is
``ok`` (a NaN there is left to the readers: ``compare`` reports it as ``ok -> nan``) and one direction
(``higher_is_better``) per metric. A hand-edited table that breaks one of these was summarised, ranked and reported
without a word: an unknown status dropped its rows, ``higher_is_better = yes`` became True (flipping the ranks of a
lower-is-better metric), a metric with both directions took the first row's, ``inf`` with status ``ok`` ranked
first, and a table appended to itself counted every sample twice. Each is now one
``UserError`` line naming the file, the first offending row and the fix (exit 2 in the CLI).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xaibench.errors import UserError
from xaibench.types import Status

SAMPLE_KEY = ["cell_key", "metric", "sample_id"]  # exact copies share these (and every other column)
BOOLEAN_TEXT = {"true": True, "false": False, "1": True, "0": False}  # what a CSV writer writes for a bool


def csv_booleans(frame: pd.DataFrame, path: Path, columns: list[str]) -> pd.DataFrame:
    """``frame`` (a CSV read as text) with ``columns`` parsed as booleans; UserError for any other text (``astype
    (bool)`` makes every non-empty string True)."""
    for column in columns:
        if column not in frame or frame[column].dtype == bool:
            continue
        text = frame[column].astype(str).str.strip().str.lower()
        bad = ~text.isin(list(BOOLEAN_TEXT))
        if bad.any():
            raise UserError(f"table {path}: {column} is {frame[column][bad].iloc[0]!r} on {_where(path, frame, bad)}; "
                            f"write True or False")
        frame = frame.assign(**{column: text.map(BOOLEAN_TEXT).astype(bool)})
    return frame


def check_rows(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``frame`` (a conformed results table read from ``path``) if its rows can be summarised; else UserError."""
    missing = [c for c in ("status", "value", "higher_is_better", *SAMPLE_KEY) if c not in frame]
    if missing:  # a Parquet file with only the columns every reader needs: these checks ended in a KeyError
        raise UserError(f"table {path} is not an xaibench results table (lacks columns: {', '.join(missing)})")
    valid = [status.value for status in Status]
    unknown = ~frame["status"].isin(valid)
    if unknown.any():
        raise UserError(f"table {path}: status {frame['status'][unknown].iloc[0]!r} on {_where(path, frame, unknown)} "
                        f"is not one of {', '.join(valid)}")
    values = frame["value"].to_numpy(dtype=np.float64)
    # ok with NaN is left to the readers: compare reports it as ``ok -> nan`` (a score that could not be computed)
    broken = (frame["status"] == Status.OK.value).to_numpy() & np.isinf(values)
    if broken.any():
        raise UserError(f"table {path}: status ok with value {values[broken][0]} on {_where(path, frame, broken)}; "
                        f"a score that is not a finite number has status nan (and a message saying why)")
    directions = frame.groupby("metric", sort=True)["higher_is_better"].nunique()
    if (directions > 1).any():
        metric = directions.index[directions > 1][0]
        counts = frame.loc[frame["metric"] == metric, "higher_is_better"].value_counts()
        raise UserError(f"table {path}: metric {metric} has higher_is_better True in {counts.get(True, 0)} rows and "
                        f"False in {counts.get(False, 0)}; one metric has one direction: correct the edited rows")
    same_sample = frame.duplicated(subset=SAMPLE_KEY, keep=False).to_numpy()  # 10x cheaper than every column
    copies = np.zeros(len(frame), dtype=bool)
    if same_sample.any():
        copies[np.flatnonzero(same_sample)] = frame[same_sample].duplicated().to_numpy()
    if copies.any():
        raise UserError(f"table {path}: {int(copies.sum())} rows are exact copies of others (the first on "
                        f"{_where(path, frame, copies)}); a table joined to itself counts those samples twice: drop "
                        f"the copies")
    return frame


def _where(path: Path, frame: pd.DataFrame, flags) -> str:
    """Where the first flagged row is: ``line 7`` of a CSV (the header is line 1), else ``row 5`` (from 1)."""
    position = int(np.flatnonzero(np.asarray(flags))[0])
    return f"line {position + 2}" if path.suffix == ".csv" else f"row {position + 1}"
