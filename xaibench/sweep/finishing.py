"""The end of a sweep: its cells collected into ``table.parquet`` and ``summary.parquet`` (from memory, or
streamed from the cell files), the summary printed, the process exit code set; an incomplete sweep keeps its
previous table."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
from omegaconf import DictConfig

from xaibench.engine.store import atomic_writer
from xaibench.report.console import summary_blocks
from xaibench.results import manifest
from xaibench.results.aggregate import summarize
from xaibench.results.collect import (SUMMARY_NAME, SWEEP_CELLS, TABLE_NAME, combine_cells, sweep_cell_files,
                                     write_collected, write_pieces, write_table)
from xaibench.sweep.layout import STRAY_CELLS
from xaibench.sweep.wandb_run import _log_sweep

_last_exit_code = 0


def _set_aside_strays(folder: Path) -> None:
    """Move the cell files that are not of this sweep out of ``cells/`` (into ``cells.stray/``), saying so.

    Jobs of an earlier run that outlived it (a Slurm array whose launching process was killed, where ``squeue``
    could not be asked; submitit's local processes) write into ``cells/`` after this run set the old files aside:
    collected, a changed sweep took their cells for its own (more cells than it has, or a missing one hidden).
    """
    planned = manifest.planned_cells(folder)
    if planned is None:
        return  # started without its keys (an older xaibench, a single run's folder): nothing to compare
    strays = [path for path in (folder / SWEEP_CELLS).glob("*.parquet") if path.stem not in planned]
    if not strays:
        return
    (folder / STRAY_CELLS).mkdir(exist_ok=True)
    for path in strays:
        os.replace(path, folder / STRAY_CELLS / path.name)
    print(f"xaibench: warning: {len(strays)} cell file{'s' if len(strays) > 1 else ''} in {folder / SWEEP_CELLS} "
          f"{'are' if len(strays) > 1 else 'is'} not of this sweep (written by jobs of an earlier run that were still "
          f"running, e.g. a Slurm array: scancel it); set aside in {folder / STRAY_CELLS}", file=sys.stderr,
          flush=True)


def finish_sweep(folder: Path, *, echo: bool = True, cfg: DictConfig | None = None,
                 cells: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame | None:
    """Collect the sweep's table, write table + summary, print the summary, set the process exit code;
    with ``cfg`` and ``logger=wandb``, also log the sweep's summary run.

    ``cells`` (cell key -> rows): what this process wrote to ``cells/``, when it wrote all of it (the in-process
    launcher, for a small sweep); the table is then combined from memory instead of reading the files back, and
    returned. Without ``cells`` the cell files are streamed into ``table.parquet`` and the summary one (model,
    dataset, method) block at a time (``collect.write_collected``), so memory does not grow with the sweep, and
    None is returned; the files are the same, bit for bit. The W&B sweep run's statistics and figures need the
    whole table: it is read back from ``table.parquet`` after the files are written.

    With ``logger=wandb`` it returns once W&B has written every run of the sweep (``wandb_sink.wait_for_runs``):
    a Python user reading or syncing the offline runs after ``xaibench.run`` finds them complete.
    """
    _set_aside_strays(folder)
    try:
        if cells is None:
            return _finish_streamed(folder, echo=echo, cfg=cfg)
        return _finish_in_memory(folder, echo=echo, cfg=cfg, cells=cells)
    finally:
        if cfg is not None and (cfg.get("logger") or {}).get("name", "none") == "wandb":
            from xaibench.report.wandb_sink import wait_for_runs

            wait_for_runs()


def _finish_in_memory(folder: Path, *, echo: bool, cfg: DictConfig | None,
                      cells: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """``finish_sweep`` of the cells this process wrote, combined from memory."""
    table = combine_cells([cells[key] for key in sorted(cells)])
    statuses = _cell_statuses(table)
    if len(statuses) < _expected_cells(folder):  # cells whose every row is another cell's: count them
        statuses = _with_shared(statuses, list(cells.values()))
    if len(statuses) < _expected_cells(folder):
        _incomplete(folder, len(statuses))  # a job could not write its cell and said why: keep the previous table
        return table
    summary = summarize(table)
    write_table(table, folder / TABLE_NAME)
    write_table(summary, folder / SUMMARY_NAME)
    errors = table.loc[table["status"] == "error", "message"].drop_duplicates().head(5).tolist()
    _finished(folder, summary, statuses, len(table), errors, echo=echo)
    if cfg is not None:
        _log_sweep(cfg, folder, summary, statuses, table)
    return table


class _Incomplete(Exception):
    """Fewer cells than the sweep expects: the previous table stays."""


def _finish_streamed(folder: Path, *, echo: bool, cfg: DictConfig | None) -> None:
    """``finish_sweep`` streamed: the table goes straight from the cell files into ``table.parquet``."""
    written = sum(1 for _ in (folder / SWEEP_CELLS).glob("*.parquet"))  # the sweep's own: strays are set aside
    if written < _expected_cells(folder):  # a job could not write its cell (full disk): nor could the table be
        _incomplete(folder, written)
        return None
    tally = _Tally()
    try:
        with atomic_writer(folder / TABLE_NAME) as handle:
            collected = write_collected(folder, handle, summarize=True, same_bytes=True, observe=tally.add,
                                        pieces=True)
            if tally.n_cells() < _expected_cells(folder):  # cells whose every row is another cell's: count them
                tally.parts = [_with_shared(tally.statuses(), _cell_rows(folder))]
            if tally.n_cells() < _expected_cells(folder):
                raise _Incomplete  # discards the new file
    except _Incomplete:
        _incomplete(folder, tally.n_cells())
        return None
    summary = collected.pieces  # written and printed a piece at a time (aggregate.SummaryPieces: memory)
    write_pieces(summary, folder / SUMMARY_NAME)  # write_table's bytes
    _finished(folder, summary, tally.statuses(), collected.n_rows, tally.errors, echo=echo)
    if cfg is not None and (cfg.get("logger") or {}).get("name", "none") == "wandb":  # W&B needs every row
        _log_sweep(cfg, folder, summary, tally.statuses(), n_rows=collected.n_rows)
    summary.close()
    return None


class _Tally:
    """Per-cell statuses and the first five distinct error messages of a table seen chunk by chunk (a cell's
    rows lie in one chunk)."""

    def __init__(self) -> None:
        self.parts: list[pd.Series] = []
        self.errors: list[str] = []

    def add(self, chunk: pa.Table) -> None:
        frame = chunk.select(["cell_key", "metric", "status", "message"]).to_pandas()
        self.parts.append(_cell_statuses(frame))
        for message in frame.loc[frame["status"] == "error", "message"].drop_duplicates():
            if len(self.errors) < 5 and message not in self.errors:
                self.errors.append(message)

    def statuses(self) -> pd.Series:
        return pd.concat(self.parts) if self.parts else pd.Series([], dtype=object)

    def n_cells(self) -> int:
        return sum(len(part) for part in self.parts)


def _incomplete(folder: Path, n_cells: int) -> None:
    """Fewer cells than expected (a job failed to write its cell): exit code 1, the previous table kept."""
    global _last_exit_code
    _last_exit_code = 1
    missing = manifest.missing_text(manifest.missing_cells(folder, SWEEP_CELLS))
    print(f"xaibench: error: sweep {folder} is incomplete ({n_cells} of {_expected_cells(folder)} cells written"
          f"{'; ' + missing if missing else ''}); its previous table is kept: rerun the sweep to finish it",
          file=sys.stderr, flush=True)


def _with_shared(statuses: pd.Series, cells: list[pd.DataFrame]) -> pd.Series:
    """``statuses`` plus the cells of ``cells`` (each cell's rows) that have no row in the table.

    Cells that differ only in their metric suite share score stages, and the table keeps each scored sample once
    (``collect.arrow_rows.combine``): a cell whose suite is a subset of another's keeps no row of its own, yet it ran and
    its rows are in the table under the other cell's key. Its status is that of its own rows.
    """
    frames = [frame[["cell_key", "metric", "status"]] for frame in cells if len(frame)]
    if not frames:
        return statuses
    shared = _cell_statuses(pd.concat(frames, ignore_index=True))
    shared = shared[~shared.index.isin(statuses.index)]
    return pd.concat([statuses, shared]).sort_index() if len(shared) else statuses


def _cell_rows(folder: Path) -> list[pd.DataFrame]:
    """The key, metric and status columns of every cell file of the sweep (read only when cells seem missing)."""
    import pyarrow.parquet as pq

    return [pq.read_table(path, columns=["cell_key", "metric", "status"]).to_pandas()
            for path in sweep_cell_files(folder)]


def _expected_cells(folder: Path) -> int:
    state = manifest.read_state(folder)
    return (state.expected_cells or 0) if state is not None else 0


def _cell_statuses(table: pd.DataFrame) -> pd.Series:
    """Each cell's status (cell key -> ok / error / not_applicable), from the first row of each of its metrics."""
    return table.drop_duplicates(["cell_key", "metric"]).groupby("cell_key")["status"].agg(_cell_status)


def _finished(folder: Path, summary: pd.DataFrame, counts: pd.Series, n_rows: int, errors: list[str], *,
              echo: bool) -> None:
    """Mark the sweep complete, set the exit code and print the summary, the cell tally and the first errors."""
    global _last_exit_code
    manifest.complete(folder, len(counts), counts.value_counts().to_dict())
    n_error = int((counts == "error").sum())
    _last_exit_code = 1 if n_error else 0
    if echo:
        print()
        for block in summary_blocks(summary):  # the text of format_summary, a block at a time (memory)
            print(block)
        tally = ", ".join(f"{n} {s}" for s, n in counts.value_counts().sort_index().items())
        cells = "1 cell" if len(counts) == 1 else f"{len(counts)} cells"
        print(f"\n{cells} ({tally}); {n_rows} rows -> {folder / TABLE_NAME}", flush=True)
        if n_error:
            for message in errors:
                print(f"  error: {message}", file=sys.stderr)


def _cell_status(statuses: pd.Series) -> str:
    values = set(statuses)
    if "error" in values:
        return "error"
    if values == {"not_applicable"}:
        return "not_applicable"
    return "ok"


def exit_code() -> int:
    return _last_exit_code


def set_exit_code(code: int) -> None:
    """The code ``exit_code`` returns from now on (the end-of-sweep callback's failure: 1)."""
    global _last_exit_code
    _last_exit_code = code
