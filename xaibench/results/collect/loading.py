"""Load a results table the user names: a Parquet or CSV file, or a sweep folder (its table, or its cells so far
when the sweep did not finish, noted in ``table.attrs[PARTIAL]``). Anything unreadable the user pointed at (a
damaged cell file, a truncated table, a text file, a table that is not a results table) is a ``UserError`` naming
the file."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from xaibench.errors import UserError
from xaibench.results import manifest
from xaibench.results.collect.file_checks import checked
from xaibench.results.collect.sweep_cells import (SWEEP_CELLS, TABLE_NAME, collect_files, partial_note,
                                                      sweep_cell_files)
from xaibench.results.collect.table_files import read_csv, read_parquet
from xaibench.results.folder_paths import under_a_file
from xaibench.results.table_checks import check_rows

PARTIAL = "xaibench_partial"  # DataFrame.attrs key (kept in Parquet metadata): why a table is incomplete


def load_table(path: str | os.PathLike[str], *, skip: Iterable[str] = (), text_dtype=None) -> pd.DataFrame:
    """Load a results table (Parquet or CSV file, or a sweep folder).

    A sweep folder whose last run did not finish gives the rows of its cells so far, with
    ``table.attrs["xaibench_partial"] = "17 of 24 cells; the sweep did not finish"``.

    Args:
        path: the table.
        skip: columns to leave out; a Parquet table's are not read at all (``compare`` reads 33 of the 43: a
            640k-row table's other columns are ~85 MB it never looks at).
        text_dtype: with ``StringDtype("python")``, a Parquet table's text columns are read one at a time and each
            held as one Python string per distinct text (``shared_texts``) before the next is read: the values
            and dtype names of a whole read, without its ~650 MB of Arrow text buffers at 640k rows (``compare``).

    Raises:
        UserError: the path does not exist, is not a readable table, or is not a results table.
    """
    target, skip = Path(path), frozenset(skip)
    if target.is_dir():
        return _without(_load_sweep(target, skip, text_dtype), skip)
    if not target.is_file():
        raise UserError(f"results table {path} not found{under_a_file(path)}")
    if target.suffix == ".csv":
        # a table file may have been edited by hand: table_checks.py
        return check_rows(_without(read_csv(target), skip), target)
    if target.suffix == ".parquet":
        return check_rows(checked(read_parquet(target, "table", skip, text_dtype), target, "table"), target)
    raise UserError(f"{path} is not a results table: expected a .parquet or .csv file or a sweep folder")


def _without(frame: pd.DataFrame, skip: frozenset[str]) -> pd.DataFrame:
    """``frame`` without the columns ``skip`` names (its attrs kept)."""
    dropped = [c for c in frame.columns if c in skip]
    return frame.drop(columns=dropped) if dropped else frame


def _load_sweep(folder: Path, skip: frozenset[str] = frozenset(), text_dtype=None) -> pd.DataFrame:
    if manifest.read_state(folder) is None and not (folder / SWEEP_CELLS).is_dir() and (folder / TABLE_NAME).is_file():
        # a folder holding a table only (e.g. a committed baseline), not a sweep
        return checked(read_parquet(folder / TABLE_NAME, "table", skip, text_dtype), folder / TABLE_NAME, "table")
    files = sweep_cell_files(folder)
    note = partial_note(folder, len(files))
    if not note and (folder / TABLE_NAME).is_file():
        return checked(read_parquet(folder / TABLE_NAME, "table", skip, text_dtype), folder / TABLE_NAME, "table")
    table = collect_files(files)
    if note:
        table.attrs[PARTIAL] = note
    return table
