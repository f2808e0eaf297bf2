"""The streaming collect's plan: every cell's (group, path, rows) from its footer (pass 1), ordered by
(model, dataset, method, seed) and cut into chunks of whole (model, dataset, method) blocks of about
``chunk_rows`` rows, each loaded and combined only when the writer asks for it (pass 2)."""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from itertools import groupby
from operator import itemgetter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from xaibench.engine.store import Store
from xaibench.results.collect.arrow_rows import combine, default_labels
from xaibench.results.collect.store_cells import Collected, open_store, store_cell, store_parquet
from xaibench.results.collect.sweep_cells import read_cell_table, sweep_cell_files
from xaibench.results.collect.threads import ordered_map
from xaibench.results.schema import empty_table

GROUP = ["model", "dataset", "method", "seed"]  # the leading sort columns: one cell lies in exactly one group
BLOCK = 3  # chunks are cut between (model, dataset, method) blocks: a summary row's rows lie in one

Item = tuple[tuple, Path | str, int]  # a cell's (group, path, rows)


def plan(source: str | os.PathLike[str], *, store: bool, chunk_rows: int) -> tuple[Collected, Iterator[pa.Table]]:
    """Pass 1 (every cell's group and row count, damaged artefacts set aside) and pass 2, lazily: the chunks."""
    skipped: list[tuple[str, str]] = []
    if store:
        opened = open_store(source)
        items = []
        for path, (item, reason) in zip(files := opened.files("cells"),
                                        ordered_map(lambda p: _store_head(opened, p), files)):
            if item is None:
                skipped.append((str(path), reason))
            else:
                items.append(item)

        def load(path: Path) -> pa.Table | None:
            return store_cell(opened, path)[0]
    else:
        items = sweep_items(source)
        load = read_cell_table
    items = shared_groups(items)
    items.sort(key=itemgetter(0, 1))  # by group, then path: within a group the order of the in-memory concat
    finish = default_labels if store else (lambda table: table)
    collected = Collected(empty_table(), len(items) + len(skipped), skipped)
    chunks = (finish(combine([t for t in ordered_map(load, paths) if t is not None]))
              for paths in _chunks(items, chunk_rows))
    return collected, chunks


def sweep_items(source: str | os.PathLike[str]) -> list[Item]:
    """(group, path, rows) of every cell file of a sweep, the paths as text: a Path object and its parts were
    ~0.5 KB a cell, held with the rest of the plan while the table streams."""
    return list(ordered_map(sweep_head, [str(path) for path in sweep_cell_files(source)]))


def shared_groups(items: list[Item]) -> list[Item]:
    """``items`` whose groups hold one string object per distinct text: every cell read its model, dataset and
    method names from its own footer, and the plan holds every cell's item until the table is written."""
    texts: dict[str, str] = {}
    return [(tuple(texts.setdefault(v, v) if type(v) is str else v for v in group), path, rows)
            for group, path, rows in items]


def _chunks(items: list[Item], chunk_rows: int) -> Iterable[list[Path | str]]:
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


def sweep_head(path: Path | str) -> Item:
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
        table = read_cell_table(path)
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


def _store_head(store: Store, path: Path) -> tuple[Item | None, str]:
    file, reason = store_parquet(store, path)
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
