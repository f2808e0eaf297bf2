"""Gather cell rows into one table: from a sweep directory or the whole store; read and write result tables.

Frames are concatenated first and conformed to the schema once (not once per cell: about 5x faster on 1,000
cells, same table). ``write_collected`` streams: it orders the cells by (model, dataset, method, seed), loads one
such group at a time, and appends it to the output file, so its memory does not grow with the number of cells
(``benchmarks/bench_collect.py``). The result is the same table ``collect_*`` returns, because every duplicate
and every sort key of a row lies within its group.

Anything unreadable that the user pointed at (a damaged cell file, a truncated table, a text file, a table that
is not a results table) is a ``UserError`` naming the file; damaged store artefacts are skipped and counted.
"""
from __future__ import annotations

import os
from itertools import groupby
from operator import itemgetter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xaibench.engine.store import Store, atomic_write_bytes, atomic_writer, frame_to_parquet_bytes
from xaibench.errors import UserError
from xaibench.results import manifest
from xaibench.results.schema import COLUMNS, ROW_KEY, conform, empty_table, sort_rows

SWEEP_CELLS = "cells"  # <sweep_dir>/cells/<cell_key>.parquet: written by each job of a sweep
TABLE_NAME = "table.parquet"
SAMPLE_IDENTITY = ["model", "dataset", "method", "metric", "model_params", "dataset_params", "method_params", "params",
                   "seed", "n_samples", "target", "sample_id", "dataset_revision", "model_revision"]
SUMMARY_NAME = "summary.parquet"
GROUP = ["model", "dataset", "method", "seed"]  # the leading sort columns: one cell lies in exactly one group
REQUIRED = ("model", "dataset", "method", "metric", "sample_id", "value", "status")  # what readers need
CHUNK_ROWS = 50_000  # write_collected: rows combined per chunk (bounds its memory)
PARTIAL = "xaibench_partial"  # DataFrame.attrs key (kept in Parquet metadata): why a table is incomplete


@dataclass
class Collected:
    """Rows gathered from a store, and what could not be used (path, reason)."""

    table: pd.DataFrame
    n_artefacts: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


# Sweep folders --------------------------------------------------------------------------------------------
def sweep_cell_files(sweep_dir: str | os.PathLike[str]) -> list[Path]:
    """The sweep's cell files, sorted (raises UserError if the folder holds no sweep)."""
    folder = Path(sweep_dir) / SWEEP_CELLS
    if not folder.is_dir():
        if manifest.read_state(Path(sweep_dir)) is not None:
            return []  # a sweep that started but wrote no cell yet
        raise UserError(f"no sweep results under {sweep_dir} (expected {folder}/); run a sweep first")
    return sorted(folder.glob("*.parquet"))


def collect_sweep(sweep_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """All rows of one sweep, sorted; one copy per (cell, metric, sample)."""
    return _combine([read_cell_file(p) for p in sweep_cell_files(sweep_dir)])


def combine_cells(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The table ``collect_sweep`` gives for cell files holding ``frames`` (in file-name order): for the sweep
    that has just written them and still has them in memory."""
    return _combine(frames)


def read_cell_file(path: Path) -> pd.DataFrame:
    """One cell's rows from the sweep folder (UserError naming the file if it is damaged)."""
    return _checked(_read_parquet(path, "cell file"), path, "cell file")


def partial_note(sweep_dir: str | os.PathLike[str], n_cells: int) -> str:
    """``"17 of 24 cells; the sweep did not finish"`` for a sweep that did not complete, else ``""``."""
    state = manifest.read_state(Path(sweep_dir))
    return "" if state is None or state.finished else state.note(n_cells)


# The store ------------------------------------------------------------------------------------------------
def collect_store(store_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Every finished cell in the store (successful cells only: errors are not cached)."""
    return collect_store_report(store_dir).table


def collect_store_report(store_dir: str | os.PathLike[str]) -> Collected:
    """Every finished cell in the store, plus the artefacts skipped as damaged and why."""
    store = _open_store(store_dir)
    frames, skipped, n = [], [], 0
    for path, frame, reason in _store_cells(store):
        n += 1
        if frame is None:
            skipped.append((str(path), reason))
        else:
            frames.append(frame)
    return Collected(_default_labels(_combine(frames)), n, skipped)


def _default_labels(table: pd.DataFrame) -> pd.DataFrame:
    """Stored cells carry no display names (each run stamps its own): show the registry names."""
    for label, name in (("model_label", "model"), ("dataset_label", "dataset")):
        blank = table[label].isna() | (table[label] == "")
        table.loc[blank, label] = table.loc[blank, name]
    return table


def _open_store(store_dir: str | os.PathLike[str]) -> Store:
    if not Path(store_dir).is_dir():
        raise UserError(f"store directory {store_dir} does not exist")
    return Store(store_dir)


def _store_cells(store: Store) -> Iterable[tuple[Path, pd.DataFrame | None, str]]:
    for path, frame, reason, _ in store.scan_frames("cells"):
        if frame is not None:
            missing = [c for c in COLUMNS if c not in frame.columns]
            if missing:
                frame, reason = None, f"not a results table of this version (lacks {', '.join(missing[:3])})"
        yield path, frame, reason


# Combining and streaming ----------------------------------------------------------------------------------
def _combine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return empty_table()
    table = conform(pd.concat(frames, ignore_index=True))  # conform once, after the concatenation
    table = table.drop_duplicates(subset=ROW_KEY, keep="last")
    # Cells that differ only in their metric suite share score stages: keep each scored sample once.
    table = table.drop_duplicates(subset=SAMPLE_IDENTITY, keep="first")
    return sort_rows(table)


def write_collected(source: str | os.PathLike[str], output: str | os.PathLike[str], *,
                    store: bool = False, chunk_rows: int = CHUNK_ROWS) -> Collected:
    """Collect a sweep folder (or, with ``store=True``, a store) straight into ``output`` (.parquet or .csv).

    Memory stays flat in the number of cells: whole (model, dataset, method, seed) groups are loaded until about
    ``chunk_rows`` rows, combined and appended. The written table equals ``collect_sweep``/``collect_store``'s.
    The returned ``Collected.table`` is empty.
    """
    skipped: list[tuple[str, str]] = []
    items: list[tuple[tuple, Path, int]] = []  # (group, path, rows)
    if store:
        opened = _open_store(source)
        for path, frame, reason in _store_cells(opened):  # pass 1: verify every artefact, note its group
            if frame is None:
                skipped.append((str(path), reason))
            else:
                items.append((_group_key(frame), path, len(frame)))

        def load(path: Path) -> pd.DataFrame | None:
            return opened.get_frame("cells", path.name.partition(".")[0])
    else:
        items = [(*_group_and_rows(path), ) for path in sweep_cell_files(source)]
        load = read_cell_file
    items.sort(key=itemgetter(0, 1))  # by group, then path: within a group the order of the in-memory concat
    finish = _default_labels if store else (lambda table: table)
    _stream(output, (finish(_combine([f for f in map(load, paths) if f is not None]))
                     for paths in _chunks(items, chunk_rows)))
    return Collected(empty_table(), len(items) + len(skipped), skipped)


def _chunks(items: list[tuple[tuple, Path, int]], chunk_rows: int) -> Iterable[list[Path]]:
    """Paths in order, cut only between groups, each chunk about ``chunk_rows`` rows (at least one group)."""
    chunk, rows = [], 0
    for _, members in groupby(items, key=itemgetter(0)):
        members = list(members)
        if chunk and rows + sum(m[2] for m in members) > chunk_rows:
            yield chunk
            chunk, rows = [], 0
        chunk.extend(m[1] for m in members)
        rows += sum(m[2] for m in members)
    if chunk:
        yield chunk


def _group_and_rows(path: Path) -> tuple[tuple, Path, int]:
    try:
        first = pq.ParquetFile(path)
        head = first.read_row_group(0, columns=GROUP).slice(0, 1).to_pandas()
        return _group_key(head), path, first.metadata.num_rows
    except Exception:  # noqa: BLE001 - reported with the file's name by the full read
        frame = read_cell_file(path)
        return _group_key(frame), path, len(frame)


def _group_key(frame: pd.DataFrame) -> tuple:
    row = frame.iloc[0] if len(frame) else {}
    return tuple(str(row.get(c, "")) if c != "seed" else int(row.get(c, -1)) for c in GROUP)


def _stream(output: str | os.PathLike[str], chunks: Iterable[pd.DataFrame]) -> None:
    target = Path(output)
    with atomic_writer(target) as handle:
        if target.suffix == ".csv":
            header = True
            for chunk in chunks:
                handle.write(chunk.to_csv(index=False, header=header).encode())
                header = False
            if header:
                handle.write(empty_table().to_csv(index=False).encode())
            return
        schema = pa.Schema.from_pandas(empty_table(), preserve_index=False)
        with pq.ParquetWriter(handle, schema) as writer:
            for chunk in chunks:
                writer.write_table(pa.Table.from_pandas(chunk, schema=schema, preserve_index=False))


# Reading and writing tables -------------------------------------------------------------------------------
def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Atomically write a table as Parquet (or CSV when the path ends in .csv); StorageError if it cannot."""
    target = Path(path)
    if target.suffix == ".csv":
        atomic_write_bytes(target, frame.to_csv(index=False).encode())
    else:
        atomic_write_bytes(target, frame_to_parquet_bytes(frame))
    return target


def load_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Load a results table (Parquet or CSV file, or a sweep folder).

    A sweep folder whose last run did not finish gives the rows of its cells so far, with
    ``table.attrs["xaibench_partial"] = "17 of 24 cells; the sweep did not finish"``.

    Raises:
        UserError: the path does not exist, is not a readable table, or is not a results table.
    """
    target = Path(path)
    if target.is_dir():
        return _load_sweep(target)
    if not target.is_file():
        raise UserError(f"results table {path} not found")
    if target.suffix == ".csv":
        return _read_csv(target)
    if target.suffix == ".parquet":
        return _checked(_read_parquet(target, "table"), target, "table")
    raise UserError(f"{path} is not a results table: expected a .parquet or .csv file or a sweep folder")


def _load_sweep(folder: Path) -> pd.DataFrame:
    if manifest.read_state(folder) is None and not (folder / SWEEP_CELLS).is_dir() and (folder / TABLE_NAME).is_file():
        # a folder holding a table only (e.g. a committed baseline), not a sweep
        return _checked(_read_parquet(folder / TABLE_NAME, "table"), folder / TABLE_NAME, "table")
    files = sweep_cell_files(folder)
    note = partial_note(folder, len(files))
    if not note and (folder / TABLE_NAME).is_file():
        return _checked(_read_parquet(folder / TABLE_NAME, "table"), folder / TABLE_NAME, "table")
    table = _combine([read_cell_file(p) for p in files])
    if note:
        table.attrs[PARTIAL] = note
    return table


def _read_parquet(path: Path, what: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as error:  # noqa: BLE001 - truncated, not Parquet, unreadable: the user's file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{what} {path} is not a readable Parquet file ({reason[:160]})") from None


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype={c: str for c, dtype in COLUMNS.items() if dtype == "string"})
    except Exception as error:  # noqa: BLE001
        raise UserError(f"table {path} is not a readable CSV file ({type(error).__name__})") from None
    frame = _checked(frame, path, "table")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"table {path} is not an xaibench results table (lacks columns: {', '.join(missing[:5])})")
    text = [c for c, dtype in COLUMNS.items() if dtype == "string" and c in frame]
    frame[text] = frame[text].fillna("")  # CSV cannot tell "" from missing: the schema's strings are never NA
    try:
        return conform(frame)
    except (ValueError, TypeError) as error:
        raise UserError(f"table {path} has values of the wrong type ({str(error)[:160]})") from None


def _checked(frame: pd.DataFrame, path: Path, what: str) -> pd.DataFrame:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise UserError(f"{what} {path} is not an xaibench results table (lacks columns: {', '.join(missing)})")
    return frame
