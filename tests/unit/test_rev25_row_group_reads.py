"""rev25: the row-group-at-a-time read (``collect.row_group_footers``, mem24) of files written as users' tables may
have been, and of a file replaced while it is read."""
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.unit.test_summary_memory import _pieces_table
from xaibench.results.aggregate import summarize
from xaibench.results.collect import load_table
from xaibench.results.collect.row_group_footers import footer_layout, row_group_files
from xaibench.results.collect.summarize_stream import summarize_file


def _fixed_width(values: np.ndarray) -> pa.Table:
    """Numbers only, written below without dictionaries, statistics or compression: two such tables of as many
    rows lie at the same offsets, byte for byte but the values."""
    return pa.table({"row": np.arange(len(values)), "value": values})


def test_a_file_replaced_between_row_groups_is_read_whole_from_the_file_walked(tmp_path):
    """A collect writing the table again (atomically, ``os.replace``) while the summary streams it: each row group
    was opened by its path, with the offsets of the footer walked before, so the rows after the replacement came
    from the new file (of the same layout: silently; else a garbled read). One handle serves the walk and every
    read: all rows are the old file's."""
    path, new = tmp_path / "t.parquet", tmp_path / "new.parquet"
    old_table, new_table = _fixed_width(np.arange(40.0)), _fixed_width(np.arange(40.0) + 1000)
    options = dict(row_group_size=10, compression="none", use_dictionary=False, write_statistics=False)
    pq.write_table(old_table, path, **options)
    pq.write_table(new_table, new, **options)
    assert footer_layout(path) == footer_layout(new)  # the same layout: only the values differ
    read = []
    for number, (file, group) in enumerate(row_group_files(path)):
        read.append(file.read_row_group(group))
        if number == 0:
            os.replace(new, path)
    assert pa.concat_tables(read).equals(old_table)


def _results_table() -> pa.Table:
    """A results table (several blocks, NaN rows, variants) with the columns a user's may add: a timestamp, a
    column of nulls only, nested lists and structs."""
    frame = _pieces_table()
    frame["cell_key"] = frame["dataset"] + frame["method"] + frame["n_samples"].astype(str) + frame["method_params"]
    frame["when"] = pd.Timestamp("2024-01-01 00:00:00.123456")
    frame["nothing"] = None
    frame["sizes"] = [[1, 2][: i % 3] for i in range(len(frame))]
    frame["nested"] = [{"a": [i], "b": "x"} for i in range(len(frame))]
    return pa.Table.from_pandas(frame, preserve_index=False)


WRITES = {"plain": {}, "no statistics": dict(write_statistics=False), "page index": dict(write_page_index=True),
          "no dictionary": dict(use_dictionary=False), "uncompressed": dict(compression="none"),
          "zstd": dict(compression="zstd"), "snappy": dict(compression="snappy"),
          "data page v2": dict(data_page_version="2.0"), "page checksums": dict(write_page_checksum=True),
          "millisecond timestamps": dict(coerce_timestamps="ms", allow_truncated_timestamps=True),
          "no arrow schema": dict(store_schema=False), "bloom filter": dict(bloom_filter_options={"model": True}),
          "sorting columns": dict(sorting_columns=[pq.SortingColumn(0)]), "one row group": dict(row_group_size=10**6),
          "row groups of 7 rows": dict(row_group_size=7)}


@pytest.mark.parametrize("name", WRITES)
def test_a_table_written_any_way_is_summarised_streamed_as_read_whole(tmp_path, name):
    """Each row group read with a footer of its own gives the summary of the table read at once, whatever options
    wrote it (the footer's optional fields present or absent, page and column indexes, bloom filters)."""
    path = tmp_path / "t.parquet"
    pq.write_table(_results_table(), path, **{"row_group_size": 50, **WRITES[name]})
    assert footer_layout(path) is not None
    pd.testing.assert_frame_equal(summarize_file(path, chunk_rows=40), summarize(load_table(path)), check_exact=True)


@pytest.mark.parametrize("writer", ["pandas", "ParquetWriter"])
def test_a_table_written_by_pandas_or_a_parquet_writer_is_summarised_streamed_as_read_whole(tmp_path, writer):
    """pandas' ``to_parquet`` (its schema in the key-value metadata) and a ``ParquetWriter`` of many small row
    groups."""
    path, table = tmp_path / "t.parquet", _results_table()
    if writer == "pandas":
        table.to_pandas().to_parquet(path, engine="pyarrow", row_group_size=30)
    else:
        with pq.ParquetWriter(path, table.schema) as out:
            for start in range(0, len(table), 13):
                out.write_table(table.slice(start, 13))
    assert footer_layout(path) is not None
    pd.testing.assert_frame_equal(summarize_file(path, chunk_rows=40), summarize(load_table(path)), check_exact=True)


def test_a_table_of_no_row_groups_streams_no_rows(tmp_path):
    path = tmp_path / "t.parquet"
    with pq.ParquetWriter(path, _results_table().schema):
        pass
    assert footer_layout(path).spans == () and list(row_group_files(path)) == []
