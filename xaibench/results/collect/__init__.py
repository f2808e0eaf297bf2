"""Gather cell rows into one table: from a sweep directory or the whole store; read and write result tables.

Cells are read with pyarrow on a few threads, conformed to the schema on Arrow (a no-op for the cells this version
writes), concatenated as Arrow tables, deduplicated and sorted there; pandas is used only for the frame a caller
asks for. ``write_collected`` streams the same table into a file, a chunk of whole (model, dataset, method) blocks
at a time, in the row groups an in-memory write cuts (the same bytes).

- ``sweep_cells``: a sweep folder's cell files, reading one, collecting them (``collect_sweep``).
- ``store_cells``: the store's verified cell artefacts, damaged ones skipped and counted (``collect_store``).
- ``arrow_rows``: conform and combine rows on Arrow (one copy per row key and scored sample, sorted).
- ``plan``, ``streaming``, ``writing``: the streaming collect (``write_collected``) and every table writer.
- ``summarize_stream``: the summary of a Parquet table, a block at a time (``summarize_file``).
- ``row_group_footers``: a Parquet file opened a row group at a time, each with a footer of its own.
- ``loading``, ``table_files``, ``file_checks``: reading a table the user names (``load_table``).
- ``threads``: reading files on a few threads, in order.
"""
from xaibench.results.collect.arrow_rows import ARROW_SCHEMA, SAMPLE_IDENTITY, combine_cells
from xaibench.results.collect.file_checks import LFS_POINTER, REQUIRED, is_lfs_pointer, refuse_lfs_pointer
from xaibench.results.collect.loading import PARTIAL, load_table
from xaibench.results.collect.plan import BLOCK, GROUP
from xaibench.results.collect.store_cells import Collected, collect_store, collect_store_report
from xaibench.results.collect.streaming import CHUNK_ROWS, write_collected
from xaibench.results.collect.summarize_stream import summarize_file
from xaibench.results.collect.sweep_cells import (SUMMARY_NAME, SWEEP_CELLS, TABLE_NAME, collect_sweep,
                                                      partial_note, read_cell_file, sweep_cell_files)
from xaibench.results.collect.table_files import shared_texts
from xaibench.results.collect.threads import READ_AHEAD, READ_THREADS
from xaibench.results.collect.writing import write_pieces, write_table

# The names of helpers that callers imported when collect was one module (benchmarks/, tests/): kept importable.
from xaibench.results.collect.arrow_rows import frame_table as _frame_table
from xaibench.results.collect.arrow_rows import row_ids as _row_ids
from xaibench.results.collect.arrow_rows import unique_rows as _unique_rows
from xaibench.results.collect.plan import shared_groups as _shared_groups
from xaibench.results.collect.plan import sweep_head as _sweep_head
from xaibench.results.collect.plan import sweep_items as _sweep_items
from xaibench.results.collect.threads import ordered_map as _ordered_map
from xaibench.results.collect.writing import write_parquet as _write_parquet

__all__ = ["ARROW_SCHEMA", "BLOCK", "CHUNK_ROWS", "Collected", "GROUP", "LFS_POINTER", "PARTIAL", "READ_AHEAD",
           "READ_THREADS", "REQUIRED", "SAMPLE_IDENTITY", "SUMMARY_NAME", "SWEEP_CELLS", "TABLE_NAME",
           "collect_store", "collect_store_report", "collect_sweep", "combine_cells", "is_lfs_pointer", "load_table",
           "partial_note", "read_cell_file", "refuse_lfs_pointer", "shared_texts", "summarize_file",
           "sweep_cell_files", "write_collected", "write_pieces", "write_table"]
