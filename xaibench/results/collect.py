"""Gather cell rows into one table: from a sweep directory or the whole store; read and write result tables.

Cells are read with pyarrow on a few threads (file reads, the store's SHA-256 check and Parquet decoding release
the GIL; results are used in file order), conformed to the schema on Arrow (a no-op for the cells this version
writes), concatenated as Arrow tables, deduplicated and sorted there; pandas is used only for the frame a caller
asks for. ``write_collected`` streams: it orders the cells by (model, dataset, method, seed), loads whole
(model, dataset, method) blocks until about ``chunk_rows`` rows, combines each chunk and appends it to the output
file and, if asked, to the streaming summary (``aggregate.Summarizer``). Its memory is one chunk (bounded by the
largest block), not the table (``benchmarks/bench_collect.py``). The result is the table ``collect_*`` returns,
because every duplicate and every sort key of a row lies within its block. The end of a sweep
(``sweep.finish_sweep``) writes ``table.parquet`` this way too. Parquet output is cut into the row groups
``pq.write_table`` makes of the whole table (``store.ROW_GROUP_ROWS`` rows each, as every writer of the suite),
so the file has the bytes an in-memory write gives (memory: one row group, 65,536 rows) and a footer that grows
with the rows, not with the chunks (every reader parses and keeps the whole footer).

Anything unreadable that the user pointed at (a damaged cell file, a truncated table, a text file, a table that
is not a results table) is a ``UserError`` naming the file; damaged store artefacts are skipped and counted.
"""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby, islice
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xaibench.engine import store as store_module
from xaibench.engine.store import (ROW_GROUP_ROWS, Artefact, Store, atomic_write_bytes, atomic_writer,
                                   frame_to_parquet_bytes)
from xaibench.errors import UnreadableTable, UserError
from xaibench.results import manifest
from xaibench.results.memory import EVERY_BATCHES, EVERY_CHUNKS, release_memory, streaming_arrow_memory
from xaibench.results.table_checks import check_rows, csv_booleans
from xaibench.results.schema import (COLUMNS, ROW_KEY, SCHEMA_VERSION, SORT_COLUMNS, conform, empty_table,
                                     oldest_comparable_version, upgrade)

SWEEP_CELLS = "cells"  # <sweep_dir>/cells/<cell_key>.parquet: written by each job of a sweep
TABLE_NAME = "table.parquet"
SAMPLE_IDENTITY = ["model", "dataset", "method", "metric", "model_params", "dataset_params", "method_params", "params",
                   "seed", "n_samples", "target", "sample_id", "dataset_revision", "model_revision", "explain_output"]
SUMMARY_NAME = "summary.parquet"
GROUP = ["model", "dataset", "method", "seed"]  # the leading sort columns: one cell lies in exactly one group
BLOCK = 3  # write_collected cuts chunks between (model, dataset, method) blocks: a summary row's rows lie in one
REQUIRED = ("model", "dataset", "method", "metric", "sample_id", "value", "status")  # what readers need
CHUNK_ROWS = 20_000  # write_collected: rows combined per chunk (bounds its memory: about 380 MB at 20,000)
PARTIAL = "xaibench_partial"  # DataFrame.attrs key (kept in Parquet metadata): why a table is incomplete
ARROW_SCHEMA = pa.Schema.from_pandas(empty_table(), preserve_index=False)  # the schema on Arrow (pandas metadata)
READ_THREADS = min(4, os.cpu_count() or 1)  # cells read, verified and decoded at once
READ_AHEAD = 16  # cells read ahead of the one being combined (bounds the memory of reading)


@dataclass
class Collected:
    """Rows gathered from a sweep or a store, what could not be used (path, reason), and the streamed summary."""

    table: pd.DataFrame
    n_artefacts: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    n_rows: int = 0
    summary: pd.DataFrame | None = None
    pieces: object | None = None  # write_collected(pieces=True): the summary as aggregate.SummaryPieces


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
    return _collect_files(sweep_cell_files(sweep_dir))


def _collect_files(paths: list[Path]) -> pd.DataFrame:
    return _to_frame(_combine(list(_ordered_map(_read_cell_table, paths))))


def combine_cells(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The table ``collect_sweep`` gives for cell files holding ``frames`` (in file-name order): for the sweep
    that has just written them and still has them in memory."""
    return _to_frame(_combine([_frame_table(frame) for frame in frames]))


def _frame_table(frame: pd.DataFrame) -> pa.Table:
    """A cell's rows on Arrow, as its cell file would read back (conformed frames convert directly)."""
    try:
        return _conform(pa.Table.from_pandas(frame[list(COLUMNS)], schema=ARROW_SCHEMA, preserve_index=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError):
        return _conform(pa.Table.from_pandas(conform(frame), schema=ARROW_SCHEMA, preserve_index=False))


def read_cell_file(path: Path) -> pd.DataFrame:
    """One cell's rows from the sweep folder (UserError naming the file if it is damaged)."""
    return _checked(_read_parquet(path, "cell file"), path, "cell file")


def _read_cell_table(path: Path | str) -> pa.Table:
    """One cell file on Arrow, conformed (UserError naming the file if it is damaged or not a results table)."""
    try:
        table = pq.ParquetFile(path).read(use_threads=False)
    except Exception as error:  # noqa: BLE001 - truncated, not Parquet, unreadable: the user's file
        raise UserError(f"cell file {path} is not a readable Parquet file ({_reason(error)})") from None
    names = set(table.column_names)
    _check_names(names, path, "cell file")
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise UserError(f"cell file {path} is not a results table of this version (lacks columns: "
                        f"{', '.join(missing[:5])})")
    return _conform(table)


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
    files = store.files("cells")
    tables, skipped = [], []
    for path, (table, reason) in zip(files, _ordered_map(lambda p: _store_cell(store, p), files)):
        if table is None:
            skipped.append((str(path), reason))
        else:
            tables.append(table)
    table = _default_labels(_combine(tables))
    return Collected(_to_frame(table), len(files), skipped, table.num_rows)


def _default_labels(table: pa.Table) -> pa.Table:
    """Stored cells carry no display names (each run stamps its own): show the registry names."""
    for label, name in (("model_label", "model"), ("dataset_label", "dataset")):
        column = table.column(label)
        blank = pc.or_kleene(pc.is_null(column), pc.equal(column, ""))
        index = table.schema.get_field_index(label)
        table = table.set_column(index, table.schema.field(index), pc.if_else(blank, table.column(name), column))
    return table


def _open_store(store_dir: str | os.PathLike[str]) -> Store:
    if not Path(store_dir).is_dir():
        raise UserError(f"store directory {store_dir} does not exist")
    return Store(store_dir)


def _store_parquet(store: Store, path: Path) -> tuple[pq.ParquetFile | None, str]:
    """The verified artefact's payload as a Parquet file, or None and why it cannot be used."""
    hit = store.read_file("cells", path)
    if not isinstance(hit, Artefact):
        return None, hit or "vanished while reading"
    try:
        file = pq.ParquetFile(pa.BufferReader(hit.payload))
    except Exception:  # noqa: BLE001 - an unreadable payload is a damaged artefact
        return None, "payload is not a readable Parquet table"
    names = set(file.schema_arrow.names)  # schema_arrow is rebuilt on every access
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        return None, f"not a results table of this version (lacks {', '.join(missing[:3])})"
    return file, ""


def _store_cell(store: Store, path: Path) -> tuple[pa.Table | None, str]:
    file, reason = _store_parquet(store, path)
    if file is None:
        return None, reason
    try:
        return _with_control_roles(_conform(file.read(use_threads=False))), ""
    except Exception:  # noqa: BLE001 - a damaged column chunk, or values conform cannot cast
        return None, "payload is not a readable Parquet table"


def _with_control_roles(table: pa.Table) -> pa.Table:
    """A stored cell's rows with ``"role": "control"`` recorded on the built-in controls' rows that lack it (cells
    stored before roles were recorded), as a sweep that reuses the cell stamps them (``engine/stamp.py``), so that
    ``collect --store`` and the sweep's table agree and such a cell and a fresh one keep one copy of each row."""
    from xaibench.results.roles import BUILTIN_CONTROLS, ROLE_KEY, record_builtin_roles

    controls = pc.is_in(table.column("method"), value_set=pa.array(BUILTIN_CONTROLS))
    roleless = pc.invert(pc.match_substring(table.column("method_params"), f'"{ROLE_KEY}"'))  # roles.mentions_role
    if not pc.any(pc.and_(controls, roleless)).as_py():
        return table  # every control's row records its role (or none is there): nothing to read into pandas
    frame = table.to_pandas()
    record_builtin_roles(frame)
    return pa.Table.from_pandas(conform(frame), schema=ARROW_SCHEMA, preserve_index=False)


# Combining on Arrow ---------------------------------------------------------------------------------------
def _conform(table: pa.Table) -> pa.Table:
    """``schema.conform`` on Arrow: the schema's columns, in order, with its types (cells this version wrote
    already have them: nothing is converted); anything else goes through pandas' ``conform``."""
    table = table.select(list(COLUMNS))
    exact = table.schema.equals(ARROW_SCHEMA, check_metadata=False) and not any(
        table.column(c).null_count for c, dtype in COLUMNS.items() if dtype in ("int64", "bool"))  # NaN: null
    if exact:
        return table.replace_schema_metadata(ARROW_SCHEMA.metadata)
    return pa.Table.from_pandas(conform(table.to_pandas()), schema=ARROW_SCHEMA, preserve_index=False)


def _combine(tables: list[pa.Table]) -> pa.Table:
    """Concatenate, keep one row per (cell, metric, sample) and per scored sample, sort (as ``sort_rows``)."""
    if not tables:
        return ARROW_SCHEMA.empty_table()
    table = pa.concat_tables(tables).combine_chunks() if len(tables) > 1 else tables[0]
    table = _unique_rows(table, ROW_KEY, last=True)
    # Cells that differ only in their metric suite share score stages: keep each scored sample once.
    table = _unique_rows(table, SAMPLE_IDENTITY, last=False)
    return table.take(pc.sort_indices(table, sort_keys=[(c, "ascending") for c in SORT_COLUMNS]))  # stable


def _unique_rows(table: pa.Table, keys: list[str], *, last: bool) -> pa.Table:
    """``drop_duplicates(subset=keys, keep="last" if last else "first")``, rows kept in their order."""
    duplicated = pd.Series(_row_ids(table, keys)).duplicated(keep="last" if last else "first").to_numpy()
    return table.filter(pa.array(~duplicated)) if duplicated.any() else table


def _row_ids(table: pa.Table, keys: list[str]) -> np.ndarray:
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


def _to_frame(table: pa.Table) -> pd.DataFrame:
    """The Arrow table as the frame ``schema.conform`` gives (its dtypes, a fresh RangeIndex)."""
    return table.to_pandas()


def _ordered_map(function: Callable, items: Iterable, threads: int = READ_THREADS) -> Iterator:
    """``map(function, items)`` on a thread pool, in order, at most READ_AHEAD results ahead of the consumer."""
    items = iter(items)
    if threads <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending = deque(pool.submit(function, item) for item in islice(items, READ_AHEAD))
        while pending:
            result = pending.popleft().result()
            pending.extend(pool.submit(function, item) for item in islice(items, 1))
            yield result


# Streaming ------------------------------------------------------------------------------------------------
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

    collected, chunks = _plan(source, store=store, chunk_rows=chunk_rows or CHUNK_ROWS)
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
        _stream(output, counted(chunks), ROW_GROUP_ROWS if same_bytes else None)
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


@streaming_arrow_memory()
def summarize_file(path: str | os.PathLike[str], chunk_rows: int = CHUNK_ROWS, *, pieces: bool = False):
    """``summarize(load_table(path))`` of a Parquet results table, streamed: None if the table is not sorted
    by (model, dataset, method) blocks (then the caller loads it whole), or is not a readable results table.
    With ``pieces=True`` it is returned as ``aggregate.SummaryPieces`` (written and printed a piece at a time)."""
    from xaibench.results.aggregate import INPUT_COLUMNS, Summarizer

    try:
        file = pq.ParquetFile(path)
        names = set(file.schema_arrow.names)
        columns = [c for c in INPUT_COLUMNS if c in names]
        if not names.issuperset(REQUIRED):
            return None
        # One iterator per row group: pyarrow's batch iterator keeps ~0.2 MB of Arrow memory per batch until it
        # ends (70 MB over the 320 batches of a 6.4M-row table); per row group it stays flat. Quarter-chunk
        # batches: _block_chunks holds at most a chunk and a batch (20,000-row batches: ~20 MB higher at 10k cells).
        batches = (batch for group in range(file.metadata.num_row_groups)
                   for batch in file.iter_batches(batch_size=max(1, chunk_rows // 4), row_groups=[group],
                                                  columns=columns, use_threads=False))
        summarizer, seen = Summarizer(), set()
        for number, chunk in enumerate(_block_chunks(batches, chunk_rows), 1):
            if number % EVERY_BATCHES == 0:  # the previous chunks are summarised: their pages go back
                release_memory()
            if not _new_blocks(chunk, seen):
                return None
            summarizer.add(chunk.to_pandas())
    except (OSError, pa.ArrowException):  # unreadable: the caller's load says why
        return None
    del file, batches  # the file's parsed footer (37 KB a row group: 3.6 MB at 10,000 cells) goes before the end
    release_memory()  # the stream's batches are gone: hand their pages back before the summary's end
    return summarizer.finish() if pieces else summarizer.result()


def _block_chunks(batches: Iterable[pa.RecordBatch], chunk_rows: int) -> Iterator[pa.Table]:
    """The batches' rows re-cut into chunks of whole (model, dataset, method) blocks: each chunk ends at the last
    block boundary within its first ``chunk_rows`` rows (at the first boundary when one block is longer).

    Where the file's batches and row groups end does not matter: ``collect -o``'s 65,536-row row groups and a row
    group per ~19,000-row collect chunk give the same 332 chunks at 10,000 cells. Cut at the batches instead (the
    former reader), 65,536-row groups read in 20,000-row batches made 390 chunks, 98 of them small (each
    ``Summarizer.add`` costs ~30 ms whatever its rows): 4% more CPU than the same table in 332 row groups."""
    pending, rows = [], 0
    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        while rows > chunk_rows:
            table = pa.Table.from_batches(pending)
            cut = _block_cut(table, chunk_rows)
            if cut is None:  # one block so far, longer than a chunk: wait for its end
                break
            yield table.slice(0, cut)
            pending, rows = table.slice(cut).to_batches(), rows - cut
    if rows:  # at most chunk_rows rows, or one block
        yield pa.Table.from_batches(pending)


def _block_cut(table: pa.Table, chunk_rows: int) -> int | None:
    """The last block start in ``table[1:chunk_rows + 1]`` (the first one after when there is none), None when the
    table is one block."""
    ids = _block_ids(table)
    starts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    if not len(starts):
        return None
    within = starts[starts <= chunk_rows]
    return int(within[-1]) if len(within) else int(starts[0])


def _block_ids(table: pa.Table) -> np.ndarray:
    """One int per row, equal for rows of one (model, dataset, method) block, increasing along the table."""
    return _row_ids(table, GROUP[:BLOCK]) if table.num_rows else np.zeros(0, dtype=np.int64)


def _new_blocks(table: pa.Table, seen: set) -> bool:
    """True if the table's blocks are contiguous, in order, and none was seen before (then they are noted)."""
    if not table.num_rows:
        return True
    ids = _block_ids(table)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    heads = table.select(GROUP[:BLOCK]).take(starts).to_pylist()
    blocks = [tuple(str(row[c]) for c in GROUP[:BLOCK]) for row in heads]
    if len(set(blocks)) < len(blocks) or seen.intersection(blocks) or blocks != sorted(blocks):
        return False
    if seen and blocks[0] < max(seen):
        return False
    seen.update(blocks)
    return True


def _plan(source: str | os.PathLike[str], *, store: bool, chunk_rows: int) -> tuple[Collected, Iterator[pa.Table]]:
    """Pass 1 (every cell's group and row count, damaged artefacts set aside) and pass 2, lazily: the chunks."""
    skipped: list[tuple[str, str]] = []
    if store:
        opened = _open_store(source)
        items = []
        for path, (item, reason) in zip(files := opened.files("cells"),
                                        _ordered_map(lambda p: _store_head(opened, p), files)):
            if item is None:
                skipped.append((str(path), reason))
            else:
                items.append(item)

        def load(path: Path) -> pa.Table | None:
            return _store_cell(opened, path)[0]
    else:
        items = _sweep_items(source)
        load = _read_cell_table
    items = _shared_groups(items)
    items.sort(key=itemgetter(0, 1))  # by group, then path: within a group the order of the in-memory concat
    finish = _default_labels if store else (lambda table: table)
    collected = Collected(empty_table(), len(items) + len(skipped), skipped)
    chunks = (finish(_combine([t for t in _ordered_map(load, paths) if t is not None]))
              for paths in _chunks(items, chunk_rows))
    return collected, chunks


def _sweep_items(source: str | os.PathLike[str]) -> list[tuple[tuple, str, int]]:
    """(group, path, rows) of every cell file of a sweep, the paths as text: a Path object and its parts were
    ~0.5 KB a cell, held with the rest of the plan while the table streams."""
    return list(_ordered_map(_sweep_head, [str(path) for path in sweep_cell_files(source)]))


def _shared_groups(items: list[tuple[tuple, Path | str, int]]) -> list[tuple[tuple, Path | str, int]]:
    """``items`` whose groups hold one string object per distinct text: every cell read its model, dataset and
    method names from its own footer, and the plan holds every cell's item until the table is written."""
    texts: dict[str, str] = {}
    return [(tuple(texts.setdefault(v, v) if type(v) is str else v for v in group), path, rows)
            for group, path, rows in items]


def _chunks(items: list[tuple[tuple, Path | str, int]], chunk_rows: int) -> Iterable[list[Path | str]]:
    """Paths in order, cut only between (model, dataset, method) blocks, about ``chunk_rows`` rows each."""
    chunk, rows = [], 0
    for _, members in groupby(items, key=lambda item: item[0][:BLOCK]):
        members = list(members)
        size = sum(m[2] for m in members)
        if chunk and rows + size > chunk_rows:
            yield chunk
            chunk, rows = [], 0
        chunk.extend(m[1] for m in members)
        rows += size
    if chunk:
        yield chunk


def _sweep_head(path: Path | str) -> tuple[tuple, Path | str, int]:
    """(group, path, rows) of a cell file from its footer (UserError if it is damaged): the group columns'
    statistics when each is one value in the first row group (as in every cell a sweep writes), else the first
    row read."""
    try:
        metadata = pq.read_metadata(path)
        group = _footer_group(metadata)
        if group is None:
            head = pq.ParquetFile(path).read_row_group(0, columns=GROUP, use_threads=False).slice(0, 1).to_pylist()
            group = _group_key(head[0] if head else {})
        return group, path, metadata.num_rows
    except Exception:  # noqa: BLE001 - reported with the file's name by the full read
        table = _read_cell_table(path)
        return _group_key(table.slice(0, 1).to_pylist()[0] if table.num_rows else {}), path, table.num_rows


def _footer_group(metadata: pq.FileMetaData) -> tuple | None:
    """The group of a file whose first row group holds one value of each group column (its min = max), from
    the footer's statistics; None when they do not say (no statistics, several values, no rows)."""
    if metadata.num_row_groups == 0 or metadata.num_rows == 0:
        return None
    names = metadata.schema.names
    row_group = metadata.row_group(0)
    values = {}
    for column in GROUP:
        if column not in names:
            return None
        statistics = row_group.column(names.index(column)).statistics
        if (statistics is None or not statistics.has_min_max or statistics.null_count != 0
                or statistics.min != statistics.max):
            return None
        values[column] = statistics.min
    return _group_key(values)


def _store_head(store: Store, path: Path) -> tuple[tuple[tuple, Path, int] | None, str]:
    file, reason = _store_parquet(store, path)
    if file is None:
        return None, reason
    try:
        if file.metadata.num_rows == 0:
            return ((), path, 0), ""
        head = file.read_row_group(0, columns=GROUP, use_threads=False).slice(0, 1).to_pylist()
        return (_group_key(head[0]), path, file.metadata.num_rows), ""
    except Exception:  # noqa: BLE001
        return None, "payload is not a readable Parquet table"


def _group_key(row: dict) -> tuple:
    return tuple(str(row.get(c, "")) if c != "seed" else int(row.get(c, -1)) for c in GROUP)


def _stream(output: str | os.PathLike[str] | BinaryIO, chunks: Iterable[pa.Table], row_group_rows: int | None) -> None:
    if not isinstance(output, (str, os.PathLike)):
        _write_parquet(output, chunks, row_group_rows)
        return
    target = Path(output)
    with atomic_writer(target) as handle:
        if target.suffix == ".csv":
            header = True
            for chunk in chunks:
                handle.write(_to_frame(chunk).to_csv(index=False, header=header).encode())
                header = False
            if header:
                handle.write(empty_table().to_csv(index=False).encode())
            return
        _write_parquet(handle, chunks, row_group_rows)


def _write_parquet(handle: BinaryIO, chunks: Iterable[pa.Table], row_group_rows: int | None,
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


# Reading and writing tables -------------------------------------------------------------------------------
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
            _write_parquet(handle, _arrow_pieces(first, pieces, schema), rows, schema)
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
        raise UserError(f"results table {path} not found")
    if target.suffix == ".csv":
        # a table file may have been edited by hand: table_checks.py
        return check_rows(_without(_read_csv(target), skip), target)
    if target.suffix == ".parquet":
        return check_rows(_checked(_read_parquet(target, "table", skip, text_dtype), target, "table"), target)
    raise UserError(f"{path} is not a results table: expected a .parquet or .csv file or a sweep folder")


def _without(frame: pd.DataFrame, skip: frozenset[str]) -> pd.DataFrame:
    """``frame`` without the columns ``skip`` names (its attrs kept)."""
    dropped = [c for c in frame.columns if c in skip]
    return frame.drop(columns=dropped) if dropped else frame


def _load_sweep(folder: Path, skip: frozenset[str] = frozenset(), text_dtype=None) -> pd.DataFrame:
    if manifest.read_state(folder) is None and not (folder / SWEEP_CELLS).is_dir() and (folder / TABLE_NAME).is_file():
        # a folder holding a table only (e.g. a committed baseline), not a sweep
        return _checked(_read_parquet(folder / TABLE_NAME, "table", skip, text_dtype), folder / TABLE_NAME, "table")
    files = sweep_cell_files(folder)
    note = partial_note(folder, len(files))
    if not note and (folder / TABLE_NAME).is_file():
        return _checked(_read_parquet(folder / TABLE_NAME, "table", skip, text_dtype), folder / TABLE_NAME, "table")
    table = _collect_files(files)
    if note:
        table.attrs[PARTIAL] = note
    return table


LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"  # the first line of a file Git LFS did not fetch


def is_lfs_pointer(path: Path) -> bool:
    """Whether ``path`` is a Git LFS pointer in place of its file (a checkout without LFS, e.g. CI's default)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(LFS_POINTER)) == LFS_POINTER
    except OSError:
        return False


def refuse_lfs_pointer(path: Path, what: str) -> None:
    """Raise a one-line UserError naming the fix when ``path`` is a Git LFS pointer (``what``: its role)."""
    if is_lfs_pointer(path):
        raise UserError(f"{what} {path} is a Git LFS pointer, not the table: fetch it with git lfs pull (GitHub "
                        "Actions: actions/checkout with lfs: true)")


def _read_parquet(path: Path, what: str, skip: frozenset[str] = frozenset(), text_dtype=None) -> pd.DataFrame:
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
        raise UnreadableTable(f"{what} {path} is not a readable Parquet file ({_reason(error)})", str(path),
                              "Parquet", _reason(error)) from None


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


def _reason(error: Exception) -> str:
    return (str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)[:160]


_NUMBER_NA = ["", "nan", "NaN", "-nan", "NA", "N/A", "<NA>", "null", "NULL", "None"]  # pandas' usual NA tokens


def _read_csv(path: Path) -> pd.DataFrame:
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
    frame = _upgraded(_checked(frame, path, "table"))
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


def _checked(frame: pd.DataFrame, path: Path, what: str) -> pd.DataFrame:
    _check_names(frame.columns, path, what)
    return frame


def _check_names(columns: Iterable[str], path: Path, what: str) -> None:
    missing = [c for c in REQUIRED if c not in set(columns)]
    if missing:
        raise UserError(f"{what} {path} is not an xaibench results table (lacks columns: {', '.join(missing)})")
