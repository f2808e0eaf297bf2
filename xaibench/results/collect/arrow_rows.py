"""Conform and combine cells' rows on Arrow: the schema's columns and types, one copy per (cell, metric, sample)
and per scored sample, sorted as ``schema.sort_rows``; pandas only for the frame a caller asks for."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from xaibench.results.schema import COLUMNS, ROW_KEY, SORT_COLUMNS, conform, empty_table

ARROW_SCHEMA = pa.Schema.from_pandas(empty_table(), preserve_index=False)  # the schema on Arrow (pandas metadata)
SAMPLE_IDENTITY = ["model", "dataset", "method", "metric", "model_params", "dataset_params", "method_params", "params",
                   "seed", "n_samples", "target", "sample_id", "dataset_revision", "model_revision", "explain_output"]


def combine_cells(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The table ``collect_sweep`` gives for cell files holding ``frames`` (in file-name order): for the sweep
    that has just written them and still has them in memory."""
    return to_frame(combine([frame_table(frame) for frame in frames]))


def frame_table(frame: pd.DataFrame) -> pa.Table:
    """A cell's rows on Arrow, as its cell file would read back (conformed frames convert directly)."""
    try:
        return conform_arrow(pa.Table.from_pandas(frame[list(COLUMNS)], schema=ARROW_SCHEMA, preserve_index=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError):
        return conform_arrow(pa.Table.from_pandas(conform(frame), schema=ARROW_SCHEMA, preserve_index=False))


def conform_arrow(table: pa.Table) -> pa.Table:
    """``schema.conform`` on Arrow: the schema's columns, in order, with its types (cells this version wrote
    already have them: nothing is converted); anything else goes through pandas' ``conform``."""
    table = table.select(list(COLUMNS))
    exact = table.schema.equals(ARROW_SCHEMA, check_metadata=False) and not any(
        table.column(c).null_count for c, dtype in COLUMNS.items() if dtype in ("int64", "bool"))  # NaN: null
    if exact:
        return table.replace_schema_metadata(ARROW_SCHEMA.metadata)
    return pa.Table.from_pandas(conform(table.to_pandas()), schema=ARROW_SCHEMA, preserve_index=False)


def combine(tables: list[pa.Table]) -> pa.Table:
    """Concatenate, keep one row per (cell, metric, sample) and per scored sample, sort (as ``sort_rows``)."""
    if not tables:
        return ARROW_SCHEMA.empty_table()
    table = pa.concat_tables(tables).combine_chunks() if len(tables) > 1 else tables[0]
    table = unique_rows(table, ROW_KEY, last=True)
    # Cells that differ only in their metric suite share score stages: keep each scored sample once.
    table = unique_rows(table, SAMPLE_IDENTITY, last=False)
    return table.take(pc.sort_indices(table, sort_keys=[(c, "ascending") for c in SORT_COLUMNS]))  # stable


def unique_rows(table: pa.Table, keys: list[str], *, last: bool) -> pa.Table:
    """``drop_duplicates(subset=keys, keep="last" if last else "first")``, rows kept in their order."""
    duplicated = pd.Series(row_ids(table, keys)).duplicated(keep="last" if last else "first").to_numpy()
    return table.filter(pa.array(~duplicated)) if duplicated.any() else table


def row_ids(table: pa.Table, keys: list[str]) -> np.ndarray:
    """One int64 per row, equal for rows whose ``keys`` are equal (nulls equal each other), below ``num_rows``."""
    ids = np.zeros(table.num_rows, dtype=np.int64)
    for key in keys:
        column = table.column(key)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            codes = pc.dictionary_encode(column, null_encoding="encode").combine_chunks().indices
            codes = codes.to_numpy(zero_copy_only=False).astype(np.int64)
        else:
            codes = pd.factorize(column.to_numpy(), use_na_sentinel=False)[0]
        ids = pd.factorize(ids * (int(codes.max(initial=0)) + 1) + codes)[0]
    return ids


def default_labels(table: pa.Table) -> pa.Table:
    """Stored cells carry no display names (each run stamps its own): show the registry names."""
    for label, name in (("model_label", "model"), ("dataset_label", "dataset")):
        column = table.column(label)
        blank = pc.or_kleene(pc.is_null(column), pc.equal(column, ""))
        index = table.schema.get_field_index(label)
        table = table.set_column(index, table.schema.field(index), pc.if_else(blank, table.column(name), column))
    return table


def to_frame(table: pa.Table) -> pd.DataFrame:
    """The Arrow table as the frame ``schema.conform`` gives (its dtypes, a fresh RangeIndex)."""
    return table.to_pandas()
