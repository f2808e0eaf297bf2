"""The store's finished cells: opening a store folder, reading one verified cell artefact (a damaged one is
skipped with its reason, not trusted), and collecting them all."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xaibench.engine.store import Artefact, Store
from xaibench.errors import UserError
from xaibench.results.collect.arrow_rows import ARROW_SCHEMA, combine, conform_arrow, default_labels, to_frame
from xaibench.results.collect.threads import ordered_map
from xaibench.results.folder_paths import missing_folder
from xaibench.results.schema import COLUMNS, conform


@dataclass
class Collected:
    """Rows gathered from a sweep or a store, what could not be used (path, reason), and the streamed summary."""

    table: pd.DataFrame
    n_artefacts: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    n_rows: int = 0
    summary: pd.DataFrame | None = None
    pieces: object | None = None  # write_collected(pieces=True): the summary as aggregate.SummaryPieces


def collect_store(store_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Every finished cell in the store (successful cells only: errors are not cached)."""
    return collect_store_report(store_dir).table


def collect_store_report(store_dir: str | os.PathLike[str]) -> Collected:
    """Every finished cell in the store, plus the artefacts skipped as damaged and why."""
    store = open_store(store_dir)
    files = store.files("cells")
    tables, skipped = [], []
    for path, (table, reason) in zip(files, ordered_map(lambda p: store_cell(store, p), files)):
        if table is None:
            skipped.append((str(path), reason))
        else:
            tables.append(table)
    table = default_labels(combine(tables))
    return Collected(to_frame(table), len(files), skipped, table.num_rows)


def open_store(store_dir: str | os.PathLike[str]) -> Store:
    """The store in ``store_dir`` (UserError if it does not exist, or is a file)."""
    if not Path(store_dir).is_dir():
        raise UserError(f"{missing_folder(store_dir, 'store directory', 'store folder')}; give the store_dir your "
                        "sweeps used (default results/store)")
    store = Store(store_dir)
    if not store.base.is_dir():  # a mistyped folder (results, not results/store) printed "(no results)", exit 0
        raise UserError(f"{store_dir} holds no xaibench store (no {store.base.name}/ folder); give the store_dir "
                        "your sweeps used (default results/store)")
    return store


def store_parquet(store: Store, path: Path) -> tuple[pq.ParquetFile | None, str]:
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


def store_cell(store: Store, path: Path) -> tuple[pa.Table | None, str]:
    """One stored cell's rows on Arrow, conformed, or None and why it cannot be used."""
    file, reason = store_parquet(store, path)
    if file is None:
        return None, reason
    try:
        return _with_control_roles(conform_arrow(file.read(use_threads=False))), ""
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
