"""A sweep = the cells of one Hydra run or multirun, gathered under ``<results_dir>/<sweep_id>/``.

Each job computes (or loads) its cell and atomically writes the rows to ``cells/<cell_key>.parquet``; when the
sweep ends, the rows are collected into ``table.parquet`` and ``summary.parquet`` and the summary is printed.
The same functions serve the CLI (through Hydra's callbacks, for every launcher) and the Python API.

Before any job runs, the caller claims every sweep folder (``claim_sweeps``: a lock, so two runs never mix their
cells in one folder, and ``sweep.json`` with the expected cell count); the previous table stays until the new
one is complete (``xaibench.results.manifest``).

Modules: ``layout`` (the folder and its names), ``jobs`` (one job's cell), ``progress_line``, ``launching`` (the
in-process launcher; stored cells before Hydra), ``claims`` (locks, ``start_sweep``), ``finishing`` (table,
summary, exit code), ``wandb_run``. ``SweepCallback`` is defined here: it is pickled as
``xaibench.sweep.SweepCallback``.
"""
from __future__ import annotations

import sys
from functools import lru_cache

from omegaconf import DictConfig

from xaibench.errors import StorageError, UserError
from xaibench.sweep.claims import claim_sweeps, finish_held, hold_sweeps, in_launching_process, start_sweep
from xaibench.sweep.finishing import exit_code, finish_sweep, set_exit_code
from xaibench.sweep.jobs import run_job, stored_cell, stored_cells
from xaibench.sweep.launching import (IN_MEMORY_ROWS, STORED_BATCH, launch_pending, pending_jobs, run_configs,
                                      uncomputed_cells)
from xaibench.sweep.layout import PLANNED_CELLS, STRAY_CELLS, WANDB_CACHED, WANDB_SUMMARY, sweep_dir
from xaibench.sweep.progress_line import LINE_REASON_CHARS

__all__ = ["IN_MEMORY_ROWS", "LINE_REASON_CHARS", "PLANNED_CELLS", "STORED_BATCH", "STRAY_CELLS", "WANDB_CACHED",
           "WANDB_SUMMARY", "claim_sweeps", "exit_code", "finish_held", "finish_sweep", "hold_sweeps",
           "in_launching_process", "launch_pending", "pending_jobs", "run_configs", "run_job", "set_exit_code",
           "start_sweep", "stored_cell", "stored_cells", "sweep_dir", "uncomputed_cells"]


def __getattr__(name: str):
    """``SweepCallback`` (conf/config.yaml's ``hydra.callbacks``) is made on first use: its base class imports all of
    Hydra (0.1 CPU-s), which a sweep run in this process (``run_configs``) never needs."""
    if name == "SweepCallback":
        return _sweep_callback()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=1)
def _sweep_callback() -> type:
    from hydra.experimental.callback import Callback

    class SweepCallback(Callback):
        """Hydra callback: collect and summarise at the end (the CLI claimed and started the folder before Hydra)."""

        def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
            try:
                finish_sweep(sweep_dir(config), cfg=config)
            except UserError as error:
                print(f"xaibench: error: {error}", file=sys.stderr)
                set_exit_code(1)
            except StorageError as error:  # Hydra turns callback exceptions into warnings: report it here, once
                print(f"xaibench: error: {error}", file=sys.stderr)
                set_exit_code(1)

    SweepCallback.__qualname__ = "SweepCallback"  # pickled by reference as xaibench.sweep.SweepCallback
    return SweepCallback
