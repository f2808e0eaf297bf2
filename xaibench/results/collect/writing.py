"""Write tables atomically, as Parquet (or CSV when the path ends in .csv): a whole frame, a summary a piece at a
time, or a stream of Arrow chunks. Parquet is cut into ``store.ROW_GROUP_ROWS``-row row groups whichever way it is
written (as ``pq.write_table`` cuts the whole table, as every writer of the suite), so a table has one set of bytes
and a streamed writer holds one row group (memory: 65,536 rows), with a footer that grows with the rows, not with
the chunks (every reader parses and keeps the whole footer)."""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xaibench.engine import store as store_module
from xaibench.engine.store import atomic_write_bytes, atomic_writer, frame_to_parquet_bytes
from xaibench.results.collect.arrow_rows import ARROW_SCHEMA, to_frame
from xaibench.results.schema import empty_table


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Atomically write a table as Parquet (or CSV when the path ends in .csv); StorageError if it cannot."""
    target = Path(path)
    if target.suffix == ".csv":
        atomic_write_bytes(target, frame.to_csv(index=False).encode())
    else:
        atomic_write_bytes(target, frame_to_parquet_bytes(frame))
    return target


def write_pieces(summary, path: str | os.PathLike[str]) -> Path:  # summary: aggregate.SummaryPieces
    """``write_table(summary.frame(), path)`` a piece at a time: the same bytes (Parquet in the row groups
    ``write_table`` cuts, the pieces converted with the whole frame's Arrow schema; CSV with one header), without
    the whole frame. A piece whose inferred Arrow schema differs from the first's (a column of another inferred
    type) would make other bytes: then the whole frame is written as before."""
    target = Path(path)
    if not summary.n_rows:
        return write_table(summary.frame(), target)
    if target.suffix == ".csv":
        with atomic_writer(target) as handle:
            for first, piece in enumerate(summary.pieces()):
                handle.write(piece.to_csv(index=False, header=first == 0).encode())
        return target
    try:
        with atomic_writer(target) as handle:
            pieces = summary.pieces()
            first = next(pieces)
            schema = pa.Schema.from_pandas(first, preserve_index=False)
            rows = store_module.ROW_GROUP_ROWS  # what write_table's frame_to_parquet_bytes cuts
            write_parquet(handle, _arrow_pieces(first, pieces, schema), rows, schema)
    except _OtherSchema:  # nothing was written (the temporary file is discarded)
        return write_table(summary.frame(), target)
    return target


class _OtherSchema(Exception):
    """A piece of a frame written in pieces infers another Arrow schema than the first piece."""


def _arrow_pieces(first: pd.DataFrame, rest: Iterator[pd.DataFrame], schema: pa.Schema) -> Iterator[pa.Table]:
    yield pa.Table.from_pandas(first, schema=schema, preserve_index=False)
    for piece in rest:
        if not pa.Schema.from_pandas(piece, preserve_index=False).equals(schema, check_metadata=True):
            raise _OtherSchema
        yield pa.Table.from_pandas(piece, schema=schema, preserve_index=False)


def stream(output: str | os.PathLike[str] | BinaryIO, chunks: Iterable[pa.Table], row_group_rows: int | None) -> None:
    """Results chunks (in the schema on Arrow) into ``output``: an open binary file (Parquet) or a path, written
    atomically as Parquet or, for a .csv path, CSV with one header (the header alone for no chunks)."""
    if not isinstance(output, (str, os.PathLike)):
        write_parquet(output, chunks, row_group_rows)
        return
    target = Path(output)
    with atomic_writer(target) as handle:
        if target.suffix == ".csv":
            header = True
            for chunk in chunks:
                handle.write(to_frame(chunk).to_csv(index=False, header=header).encode())
                header = False
            if header:
                handle.write(empty_table().to_csv(index=False).encode())
            return
        write_parquet(handle, chunks, row_group_rows)


def write_parquet(handle: BinaryIO, chunks: Iterable[pa.Table], row_group_rows: int | None,
                  schema: pa.Schema = ARROW_SCHEMA) -> None:
    """Chunks as Parquet: a row group per chunk, or (``row_group_rows``) row groups of that many rows, the last
    one shorter, as ``pq.write_table`` cuts a whole table (the same bytes: tested)."""
    with pq.ParquetWriter(handle, schema) as writer:
        if row_group_rows is None:
            for chunk in chunks:
                writer.write_table(chunk)
            return
        pending, rows, written = [], 0, False
        for chunk in chunks:
            pending.append(chunk)
            rows += chunk.num_rows
            del chunk
            while rows >= row_group_rows:
                group, rest = _cut(pending, row_group_rows)
                pending = None  # the row group's chunks go with the write: never two row groups at once
                writer.write_table(group, row_group_size=row_group_rows)
                del group
                pending, rows, written = [rest], rows - row_group_rows, True
        if rows or not written:  # an empty table still gets its one empty row group
            writer.write_table(pa.concat_tables(pending) if pending else schema.empty_table(),
                               row_group_size=row_group_rows)


def _cut(tables: list[pa.Table], rows: int) -> tuple[pa.Table, pa.Table]:
    """The first ``rows`` rows of ``tables`` and the rest (zero-copy slices: the rest keeps only the chunks it
    reaches into, so the caller's list, once dropped, frees the row group after its write)."""
    table = pa.concat_tables(tables)
    return table.slice(0, rows), table.slice(rows)
