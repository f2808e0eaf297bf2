"""Collect a sweep folder or a store straight into a file and its summary, in chunks: memory stays flat in the
number of cells (one chunk, bounded by the largest (model, dataset, method) block, plus one row group), not the
table (``benchmarks/bench_collect.py``). The file is the table ``collect_*`` returns, byte for byte, because every
duplicate and every sort key of a row lies within its block. The end of a sweep (``sweep.finish_sweep``) writes
``table.parquet`` this way too."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

import pandas as pd
import pyarrow as pa

from xaibench.engine.store import ROW_GROUP_ROWS
from xaibench.results.collect.plan import plan
from xaibench.results.collect.store_cells import Collected
from xaibench.results.collect.writing import stream
from xaibench.results.memory import EVERY_CHUNKS, release_memory, streaming_arrow_memory

CHUNK_ROWS = 20_000  # write_collected: rows combined per chunk (bounds its memory: about 380 MB at 20,000)


@streaming_arrow_memory()
def write_collected(source: str | os.PathLike[str], output: str | os.PathLike[str] | BinaryIO | None, *,
                    store: bool = False, chunk_rows: int | None = None, summarize: bool = False,
                    same_bytes: bool = True, observe: Callable[[pa.Table], None] | None = None,
                    pieces: bool = False) -> Collected:
    """Collect a sweep folder (or, with ``store=True``, a store) straight into ``output`` (a .parquet or .csv path,
    an open binary file for Parquet, or None: write nothing), and with ``summarize=True`` into its summary
    (``Collected.summary``). ``observe`` is called with every combined chunk, in table order.

    Memory stays flat in the number of cells: whole (model, dataset, method) blocks are loaded until about
    ``chunk_rows`` (default ``CHUNK_ROWS``) rows, combined, appended and summarised. The written table equals
    ``collect_sweep``/``collect_store``'s and the summary equals ``summarize`` of it. ``Collected.table`` is empty.
    Parquet is written in the row groups ``write_table`` makes of the whole table (``ROW_GROUP_ROWS``), so the
    file has the same bytes (memory: up to one row group); ``same_bytes=False`` writes a row group per chunk
    instead (smaller chunks held, but a footer ~3.4x larger, which every reader of the file parses and keeps: at
    10,000 cells 332 row groups, ~11 MB parsed, where 65,536-row groups make 98).
    With ``pieces=True`` the summary is ``Collected.pieces`` (``aggregate.SummaryPieces``: written and printed a
    piece at a time) instead of ``Collected.summary``.
    """
    from xaibench.results.aggregate import Summarizer

    collected, chunks = plan(source, store=store, chunk_rows=chunk_rows or CHUNK_ROWS)
    summarizer = Summarizer() if summarize else None

    def counted(tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
        for number, table in enumerate(tables, 1):
            collected.n_rows += table.num_rows
            if summarizer is not None:
                summarizer.add(_summary_input(table))
            if observe is not None:
                observe(table)
            yield table
            del table
            if number % EVERY_CHUNKS == 0:  # the chunk is written: its pages go back (memory flat in the cells)
                release_memory()

    if output is None:
        for _ in counted(chunks):
            pass
    else:
        stream(output, counted(chunks), ROW_GROUP_ROWS if same_bytes else None)
    if summarizer is not None:
        release_memory()  # the stream's chunks are gone: hand their pages back before the summary's end
        if pieces:
            collected.pieces = summarizer.finish()
        else:
            collected.summary = summarizer.result()
    return collected


def _summary_input(table: pa.Table) -> pd.DataFrame:
    """The columns ``summarize`` reads, as pandas."""
    from xaibench.results.aggregate import INPUT_COLUMNS

    return table.select([c for c in INPUT_COLUMNS if c in table.column_names]).to_pandas()
