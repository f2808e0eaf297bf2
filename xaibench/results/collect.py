"""Gather cell rows into one table: from a sweep directory or the whole store."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from xaibench.engine.store import Store, atomic_write_bytes, frame_to_parquet_bytes
from xaibench.errors import UserError
from xaibench.results.schema import COLUMNS, ROW_KEY, conform, empty_table, sort_rows

SWEEP_CELLS = "cells"  # <sweep_dir>/cells/<cell_key>.parquet: written by each job of a sweep
TABLE_NAME = "table.parquet"
SAMPLE_IDENTITY = ["model", "dataset", "method", "metric", "model_params", "dataset_params", "method_params", "params",
                   "seed", "n_samples", "target", "sample_id", "dataset_revision", "model_revision"]
SUMMARY_NAME = "summary.parquet"


def collect_sweep(sweep_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """All rows of one sweep, sorted; one copy per (cell, metric, sample)."""
    folder = Path(sweep_dir) / SWEEP_CELLS
    if not folder.is_dir():
        raise UserError(f"no sweep results under {sweep_dir} (expected {folder}/); run a sweep first")
    frames = [pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))]
    return _combine(frames)


def collect_store(store_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Every finished cell in the store (successful cells only: errors are not cached)."""
    if not Path(store_dir).is_dir():
        raise UserError(f"store directory {store_dir} does not exist")
    return _combine(list(Store(store_dir).iter_frames("cells")))


def _combine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return empty_table()
    table = pd.concat([conform(f) for f in frames], ignore_index=True)
    table = table.drop_duplicates(subset=ROW_KEY, keep="last")
    # Cells that differ only in their metric suite share score stages: keep each scored sample once.
    table = table.drop_duplicates(subset=SAMPLE_IDENTITY, keep="first")
    return sort_rows(table)


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Atomically write a table as Parquet (or CSV when the path ends in .csv)."""
    target = Path(path)
    if target.suffix == ".csv":
        atomic_write_bytes(target, frame.to_csv(index=False).encode())
    else:
        atomic_write_bytes(target, frame_to_parquet_bytes(frame))
    return target


def load_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Load a results table (Parquet or CSV file, or a sweep directory)."""
    target = Path(path)
    if target.is_dir():
        if (target / TABLE_NAME).is_file():
            return pd.read_parquet(target / TABLE_NAME)
        return collect_sweep(target)
    if not target.is_file():
        raise UserError(f"results table {path} not found")
    if target.suffix == ".csv":
        frame = pd.read_csv(target)
        text = [c for c, dtype in COLUMNS.items() if dtype == "string" and c in frame]
        frame[text] = frame[text].fillna("")  # CSV cannot tell "" from missing: the schema's strings are never NA
        return conform(frame)
    return pd.read_parquet(target)
