"""Read one table file the user pointed at, Parquet or CSV, as the results schema's frame (a CSV of an older
comparable schema upgraded); an unreadable file is an ``UnreadableTable`` naming it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from xaibench.errors import UnreadableTable, UserError
from xaibench.results.collect.file_checks import checked, reason, refuse_lfs_pointer
from xaibench.results.schema import COLUMNS, SCHEMA_VERSION, conform, oldest_comparable_version, upgrade
from xaibench.results.table_checks import csv_booleans

_NUMBER_NA = ["", "nan", "NaN", "-nan", "NA", "N/A", "<NA>", "null", "NULL", "None"]  # pandas' usual NA tokens


def read_parquet(path: Path, what: str, skip: frozenset[str] = frozenset(), text_dtype=None) -> pd.DataFrame:
    """A Parquet table without the columns ``skip`` names (``text_dtype``: see ``loading.load_table``)."""
    try:
        if text_dtype is not None:  # a column at a time, its texts shared before the next is read
            columns, attrs = {}, {}
            for name in _data_columns(path, skip):
                read = pd.read_parquet(path, columns=[name])
                columns[name], attrs = shared_texts(read[name], text_dtype), read.attrs  # attrs: the file's
                del read
            frame = pd.DataFrame(columns)
            frame.attrs = attrs
            return frame
        if skip:  # only the other columns are read (those the file has: a v3 table lacks v4's)
            return pd.read_parquet(path, columns=_data_columns(path, skip))
        return pd.read_parquet(path)
    except Exception as error:  # noqa: BLE001 - truncated, not Parquet, unreadable: the user's file
        refuse_lfs_pointer(path, what)
        raise UnreadableTable(f"{what} {path} is not a readable Parquet file ({reason(error)})", str(path),
                              "Parquet", reason(error)) from None


def _data_columns(path: Path, skip: frozenset[str]) -> list[str]:
    """The Parquet file's columns less ``skip`` and the index pandas stored beside them (``__index_level_0__``: a
    filtered table written with ``to_parquet``), which pandas refuses to read as a column: compare called such a
    copy "not a valid Parquet file"."""
    schema = pq.read_schema(path)
    stored_index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
    return [name for name in schema.names if name not in skip and name not in stored_index]


def shared_texts(column: pd.Series, text_dtype) -> pd.Series:
    """``column`` in ``text_dtype`` (``StringDtype("python")``) holding one Python string per distinct text when it
    is Arrow-backed text (its rows point at them: 8 bytes a row instead of each row's bytes); else as it is."""
    if not (isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow"):
        return column
    codes, uniques = pd.factorize(column.array)
    texts = np.empty(len(uniques) + 1, dtype=object)
    texts[:-1], texts[-1] = uniques.to_numpy(dtype=object), text_dtype.na_value  # code -1 (missing): the last
    return pd.Series(pd.arrays.StringArray(texts[codes], dtype=text_dtype), index=column.index, name=column.name)


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV results table, conformed (UserError naming the file if it is not one, or has values of wrong types)."""
    refuse_lfs_pointer(path, "table")  # a pointer reads as a 3-line CSV
    try:
        # The schema's strings are read as written: pandas' default NA tokens would turn status "nan" (a NaN
        # score) or a message "N/A" into missing values. Numbers keep the default tokens ("" is NaN).
        frame = pd.read_csv(path, dtype={c: str for c, dtype in COLUMNS.items() if dtype == "string"},
                            keep_default_na=False,
                            na_values={c: _NUMBER_NA for c, d in COLUMNS.items() if d != "string"})
    except Exception as error:  # noqa: BLE001
        raise UnreadableTable(f"table {path} is not a readable CSV file ({type(error).__name__})", str(path), "CSV",
                              type(error).__name__) from None
    frame = _upgraded(checked(frame, path, "table"))
    frame = csv_booleans(frame, path, [c for c, dtype in COLUMNS.items() if dtype == "bool"])
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"table {path} is not an xaibench results table (lacks columns: {', '.join(missing[:5])})")
    text = [c for c, dtype in COLUMNS.items() if dtype == "string" and c in frame]
    frame[text] = frame[text].fillna("")  # CSV cannot tell "" from missing: the schema's strings are never NA
    try:
        return conform(frame)
    except (ValueError, TypeError) as error:
        raise UserError(f"table {path} has values of the wrong type ({str(error)[:160]})") from None


def _upgraded(frame: pd.DataFrame) -> pd.DataFrame:
    """A CSV table of an older comparable schema (``schema.MEASUREMENTS_ADDED``: a v3 table lacks only measurement
    columns) with those columns added as unknown, as a Parquet one is read; other tables unchanged."""
    versions = pd.to_numeric(frame["schema_version"], errors="coerce").dropna()
    oldest = int(versions.min()) if len(versions) else SCHEMA_VERSION
    return upgrade(frame, oldest) if oldest_comparable_version() <= oldest < SCHEMA_VERSION else frame
