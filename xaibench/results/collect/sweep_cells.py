"""A sweep folder's cells: where they are (``<sweep_dir>/cells/<cell_key>.parquet``), reading one, collecting them
all, and whether the sweep finished."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xaibench.errors import UserError
from xaibench.results import manifest
from xaibench.results.collect.arrow_rows import combine, conform_arrow, to_frame
from xaibench.results.collect.file_checks import check_names, checked, reason
from xaibench.results.collect.table_files import read_parquet
from xaibench.results.collect.threads import ordered_map
from xaibench.results.folder_paths import file_in_the_way, missing_folder
from xaibench.results.schema import COLUMNS

SWEEP_CELLS = "cells"  # <sweep_dir>/cells/<cell_key>.parquet: written by each job of a sweep
TABLE_NAME = "table.parquet"  # <sweep_dir>/table.parquet: written at the end of the sweep
SUMMARY_NAME = "summary.parquet"  # <sweep_dir>/summary.parquet: beside it


def sweep_cell_files(sweep_dir: str | os.PathLike[str]) -> list[Path]:
    """The sweep's cell files, sorted (raises UserError if the folder holds no sweep)."""
    folder = Path(sweep_dir) / SWEEP_CELLS
    if not folder.is_dir():
        if file_in_the_way(sweep_dir) is not None:  # its sweep.json was called damaged ("Not a directory")
            raise UserError(missing_folder(sweep_dir, "sweep", "sweep folder"))
        if manifest.read_state(Path(sweep_dir)) is not None:
            return []  # a sweep that started but wrote no cell yet
        raise UserError(f"no sweep results under {sweep_dir} (expected {folder}/); run a sweep first")
    return sorted(folder.glob("*.parquet"))


def collect_sweep(sweep_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """All rows of one sweep, sorted; one copy per (cell, metric, sample)."""
    return collect_files(sweep_cell_files(sweep_dir))


def collect_files(paths: list[Path]) -> pd.DataFrame:
    """The rows of these cell files, combined (``arrow_rows.combine``)."""
    return to_frame(combine(list(ordered_map(read_cell_table, paths))))


def read_cell_file(path: Path) -> pd.DataFrame:
    """One cell's rows from the sweep folder (UserError naming the file if it is damaged)."""
    return checked(read_parquet(path, "cell file"), path, "cell file")


def read_cell_table(path: Path | str) -> pa.Table:
    """One cell file on Arrow, conformed (UserError naming the file if it is damaged or not a results table)."""
    try:
        table = pq.ParquetFile(path).read(use_threads=False)
    except Exception as error:  # noqa: BLE001 - truncated, not Parquet, unreadable: the user's file
        raise UserError(f"cell file {path} is not a readable Parquet file ({reason(error)})") from None
    names = set(table.column_names)
    check_names(names, path, "cell file")
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise UserError(f"cell file {path} is not a results table of this version (lacks columns: "
                        f"{', '.join(missing[:5])})")
    return conform_arrow(table)


def partial_note(sweep_dir: str | os.PathLike[str], n_cells: int) -> str:
    """``"17 of 24 cells; the sweep did not finish"`` for a sweep that did not complete, else ``""``."""
    state = manifest.read_state(Path(sweep_dir))
    return "" if state is None or state.finished else state.note(n_cells)
