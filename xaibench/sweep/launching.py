"""Running a sweep's jobs: the in-process launcher (``run_configs``), and the stored cells' jobs done before Hydra
launches the rest (``launch_pending`` / ``pending_jobs``)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from xaibench.engine.cell import CellSpec
from xaibench.engine.cell_result import CellResult
from xaibench.engine.store import Store
from xaibench.results.collect import load_table
from xaibench.sweep.claims import claim_sweeps
from xaibench.sweep.finishing import finish_sweep
from xaibench.sweep.jobs import _write_job_config, run_job, stored_cells
from xaibench.sweep.layout import sweep_dir

IN_MEMORY_ROWS = 40_000  # rows of a sweep kept in memory for its end; beyond, its cell files are streamed
# (holding 40k rows peaks at ~320 MB, below the streamed end's plateau; 97k rows: 574 MB)
STORED_BATCH = 64  # jobs whose stored cells are read and stamped in one pass (~40k rows of 640-row cells)


def run_configs(configs: Sequence[DictConfig], *, multirun: bool, echo: bool = True,
                table: bool = True) -> pd.DataFrame | None:
    """The in-process launcher: run the pre-flight's job configs here, one after the other, as Hydra's basic
    launcher would (same sweep folder, rows, table and summary; ``jobs/<n>/.hydra/config.yaml`` as Hydra writes).

    Used for the basic launcher (one machine, one process); the joblib, submitit and Ray launchers still go
    through Hydra. Skips Hydra's second and third composition of every job.

    Memory: stored cells are read ``STORED_BATCH`` jobs at a time, and a sweep's rows are kept for its end only
    up to ``IN_MEMORY_ROWS`` (``_Written``); a larger sweep is finished from its cell files, streamed. With
    ``table=False`` (the CLI) nothing is returned; else the table (read back from ``table.parquet`` when the
    sweep was streamed: the caller asked for the whole table).
    """
    import logging

    logging.getLogger().setLevel(logging.WARNING)  # as conf/config.yaml's hydra.job_logging (Quantus logs INFO)
    folders = {sweep_dir(cfg): cfg for cfg in configs}
    resolved = [OmegaConf.to_container(cfg, resolve=True) for cfg in configs]  # interpolations parsed once (~1 ms)
    cells = [CellSpec.from_config(data) for data in resolved]
    store_dirs = [str(data["store_dir"]) for data in resolved]
    written = _Written()  # each folder's cells/, while small
    with claim_sweeps(configs, cells, store_dirs):  # lock the sweep folder(s), record the expected cells: first
        for index, cfg, cell, hit in _with_stored(configs, cells, store_dirs):
            if not echo:
                cfg.progress = False
            folder = sweep_dir(cfg)
            _write_job_config(folder / "jobs" / str(index) if multirun else folder, cfg)
            result = run_job(cfg, label=f"job {index}" if multirun else "", cell=cell, stored=hit)
            written.add(folder, result)
        tables = [finish_sweep(folder, echo=echo, cfg=folders[folder], cells=written.cells(folder))
                  for folder in sorted(folders)]
    if not table:
        return None
    tables = [frame if frame is not None else load_table(folder) for folder, frame in zip(sorted(folders), tables)]
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]


def _with_stored(configs: Sequence[DictConfig], cells: Sequence[CellSpec], store_dirs: Sequence[str]):
    """``(index, config, cell, stored result or None)`` for every job, the stored cells read ``STORED_BATCH``
    jobs at a time (``stored_cells``: one pass per batch, so memory does not grow with the sweep)."""
    for start in range(0, len(configs), STORED_BATCH):
        stop = min(start + STORED_BATCH, len(configs))
        stored = stored_cells(configs[start:stop], cells[start:stop], store_dirs[start:stop])
        for index in range(start, stop):
            yield index, configs[index], cells[index], stored.pop(index - start, None)


class _Written:
    """The cells this process wrote to each sweep folder (cell key -> rows), for ``finish_sweep`` to combine from
    memory (no file read back: the fast end of a small or warm sweep). A folder's rows are dropped once they pass
    ``IN_MEMORY_ROWS``: its end then streams the cell files, so memory does not grow with the sweep."""

    def __init__(self) -> None:
        self.held: dict[Path, dict[str, pd.DataFrame] | None] = {}
        self.rows: dict[Path, int] = {}

    def add(self, folder: Path, result: CellResult) -> None:
        cells = self.held.setdefault(folder, {})
        if cells is None:
            return
        cells[result.key] = result.rows
        self.rows[folder] = self.rows.get(folder, 0) + len(result.rows)
        if self.rows[folder] > IN_MEMORY_ROWS:
            self.held[folder] = None

    def cells(self, folder: Path) -> dict[str, pd.DataFrame] | None:
        """The folder's cells, or None when they were too many to keep (``{}`` if this process wrote none)."""
        return self.held.get(folder, {})


_pending: tuple[int, list[int]] | None = None  # (jobs in the sweep, job numbers Hydra is to launch)


def launch_pending(configs: Sequence[DictConfig]) -> list[int]:
    """Before Hydra launches a sweep (folders held by ``hold_sweeps``): the stored cells' jobs, done here.

    Every job whose cell the store holds is written from the store alone, as ``run_configs`` writes it (cell
    file, ``jobs/<n>/.hydra/config.yaml``, progress line, W&B marker): no launcher job, no worker, no torch.
    Returns the job numbers left for Hydra's launcher (``pending_jobs`` hands them to
    ``hydra_plugins.xaibench_launchers.skip_stored.SkipStoredSweeper``); with none left, the sweep is finished
    here (table, summary, exit code) and Hydra is not needed.
    """
    global _pending
    resolved = [OmegaConf.to_container(cfg, resolve=True) for cfg in configs]
    cells = [CellSpec.from_config(data) for data in resolved]
    written, pending = _Written(), []
    for index, cfg, cell, hit in _with_stored(configs, cells, [str(data["store_dir"]) for data in resolved]):
        if hit is None:
            pending.append(index)
            continue
        _write_job_config(sweep_dir(cfg) / "jobs" / str(index), cfg)
        written.add(sweep_dir(cfg), run_job(cfg, label=f"job {index}", cell=cell, stored=hit))
    _pending = (len(configs), pending)
    if not pending:
        folders = {sweep_dir(cfg): cfg for cfg in configs}
        for folder in sorted(folders):
            finish_sweep(folder, cfg=folders[folder], cells=written.cells(folder))
    return pending


def uncomputed_cells(configs: Sequence[DictConfig]) -> int:
    """How many jobs' cells the store lacks (no artefact file), read before anything is written: what
    ``launch_pending`` will launch (or a few more, should an artefact prove damaged)."""
    n_cells = 0
    for cfg in configs:
        data = OmegaConf.to_container(cfg, resolve=True)
        cell = CellSpec.from_config(data)
        n_cells += cell.reads_user_files() or not Store(str(data["store_dir"])).path("cells", cell.key,
                                                                                    "parquet").exists()
    return n_cells


def pending_jobs(n_jobs: int) -> list[int]:
    """The job numbers to launch of a sweep of ``n_jobs`` (all of them unless ``launch_pending`` ran for it)."""
    if _pending is None or _pending[0] != n_jobs:
        return list(range(n_jobs))
    return list(_pending[1])
