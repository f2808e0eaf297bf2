"""Summarise a Parquet results table without loading it: its rows re-cut into chunks of whole
(model, dataset, method) blocks, each summarised in turn (``aggregate.Summarizer``), for a table sorted by blocks
(as every table collect writes); any other table is left to the caller to load whole."""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from xaibench.results.collect.arrow_rows import row_ids
from xaibench.results.collect.file_checks import REQUIRED
from xaibench.results.collect.plan import BLOCK, GROUP
from xaibench.results.collect.row_group_footers import row_group_files
from xaibench.results.collect.streaming import CHUNK_ROWS
from xaibench.results.memory import EVERY_BATCHES, release_memory, streaming_arrow_memory

# The read's batches are chunk_rows / 8 rows (2,500): a chunk ends inside one, which stays whole until the next chunk
# is read. Batches of a quarter chunk: 1.5-2 MB higher peaks at 1,000 and 10,000 cells; of a sixteenth: no lower
# (docs/speed.md, mem24). Of a whole chunk: ~20 MB higher (mem15).
BATCHES_A_CHUNK = 8


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
        del file  # its parsed footer (37 KB a row group: 3.6 MB at 10,000 cells): each row group brings its own
        batches = _row_group_batches(path, columns, max(1, chunk_rows // BATCHES_A_CHUNK))
        # Nothing holds a chunk's Arrow rows once they are pandas (the loop's name is dropped, no enumerate tuple,
        # _block_chunks keeps no table): they held the previous chunk while the next was read and converted,
        # ~15 MB on every chunk's peak (summary 1,000 cells: 183.7 -> 167-169 MB; docs/speed.md, mem22).
        summarizer, seen, number = Summarizer(), set(), 0
        for chunk in _block_chunks(batches, chunk_rows):
            number += 1
            if number % EVERY_BATCHES == 0:  # the previous chunks are summarised: their pages go back
                release_memory()
            if not _new_blocks(chunk, seen):
                return None
            frame = chunk.to_pandas()
            del chunk
            summarizer.add(frame)
            del frame
    except (OSError, pa.ArrowException):  # unreadable: the caller's load says why
        return None
    del batches
    release_memory()  # the stream's batches are gone: hand their pages back before the summary's end
    return summarizer.finish() if pieces else summarizer.result()


def _row_group_batches(path, columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
    """The file's rows in batches of ``batch_size``, read a row group at a time, each with a footer of that row
    group alone (``row_group_files``: the whole footer stayed parsed through the read, +3.2 MB at 96 row groups
    against 10). One iterator per row group: pyarrow's batch iterator keeps ~0.2 MB of Arrow memory per batch
    until it ends (70 MB over the 320 batches of a 6.4M-row table); per row group it stays flat. ``_block_chunks``
    holds at most a chunk and a batch, and a chunk keeps all of the batch it ends in (its texts stay Arrow in
    pandas), hence small batches (``BATCHES_A_CHUNK``)."""
    for file, group in row_group_files(path):
        yield from file.iter_batches(batch_size=batch_size, row_groups=[group], columns=columns, use_threads=False)


def _block_chunks(batches: Iterable[pa.RecordBatch], chunk_rows: int) -> Iterator[pa.Table]:
    """The batches' rows re-cut into chunks of whole (model, dataset, method) blocks: each chunk ends at the last
    block boundary within its first ``chunk_rows`` rows (at the first boundary when one block is longer).

    Where the file's batches and row groups end does not matter: ``collect -o``'s 65,536-row row groups and a row
    group per ~19,000-row collect chunk give the same 332 chunks at 10,000 cells. Cut at the batches instead (the
    former reader), 65,536-row groups read in 20,000-row batches made 390 chunks, 98 of them small (each
    ``Summarizer.add`` costs ~30 ms whatever its rows): 4% more CPU than the same table in 332 row groups."""
    pending, rows = [], 0
    for batch in batches:
        if pending and _is_view(pending[0]):  # the last cut's rest: copied now that the reader has let its batch go
            pending[0] = _copied(pending[0])
        pending.append(batch)
        rows += batch.num_rows
        while rows > chunk_rows:
            table = pa.Table.from_batches(pending)
            cut = _block_cut(table, chunk_rows)
            if cut is None:  # one block so far, longer than a chunk: wait for its end
                break
            chunk = [table.slice(0, cut)]
            pending, rows = table.slice(cut).to_batches(), rows - cut
            del table  # the chunk is handed over, not kept here (the caller frees it once converted)
            yield chunk.pop()
    if rows:  # at most chunk_rows rows, or one block
        yield pa.Table.from_batches(pending)


def _is_view(batch: pa.RecordBatch) -> bool:
    """Whether ``batch`` is a slice past the start of a larger batch (and keeps all of its buffers)."""
    return bool(batch.num_columns) and batch.column(0).offset > 0


def _copied(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` in buffers of its own rows (not a view of a larger batch's)."""
    return batch.take(pa.array(np.arange(batch.num_rows)))


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
    return row_ids(table, GROUP[:BLOCK]) if table.num_rows else np.zeros(0, dtype=np.int64)


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
