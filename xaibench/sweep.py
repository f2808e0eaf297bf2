"""A sweep = the cells of one Hydra run or multirun, gathered under ``<results_dir>/<sweep_id>/``.

Each job computes (or loads) its cell and atomically writes the rows to ``cells/<cell_key>.parquet``; when the
sweep ends, the rows are collected into ``table.parquet`` and ``summary.parquet`` and the summary is printed.
The same functions serve the CLI (through Hydra's callbacks, for every launcher) and the Python API.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import torch
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from xaibench.engine.cell import CellSpec
from xaibench.engine.runner import CellResult, run_cell
from xaibench.engine.store import Store
from xaibench.errors import UserError
from xaibench.report.console import format_summary
from xaibench.results.aggregate import summarize
from xaibench.results.collect import SUMMARY_NAME, SWEEP_CELLS, TABLE_NAME, collect_sweep, write_table

_last_exit_code = 0
WANDB_CACHED = "wandb_cached"  # <sweep_dir>/wandb_cached/<cell_key>: cells not re-logged to W&B


def sweep_dir(cfg: DictConfig) -> Path:
    return Path(cfg.results_dir) / str(cfg.sweep_id)


def run_job(cfg: DictConfig, label: str = "") -> CellResult:
    """Run one cell from a composed config, record its rows in the sweep folder, log it, print one line."""
    cell = CellSpec.from_config(cfg)
    torch.set_num_threads(int(cfg.get("threads", 1)))
    result = run_cell(cell, Store(cfg.store_dir), sweep_id=str(cfg.sweep_id))
    write_table(result.rows, sweep_dir(cfg) / SWEEP_CELLS / f"{result.key}.parquet")
    _log(cfg, result)
    if cfg.get("progress", True):
        print(_progress_line(cell, result, label), flush=True)
    return result


def _log(cfg: DictConfig, result: CellResult) -> None:
    logger = cfg.get("logger") or {}
    if logger.get("name", "none") == "none":
        return
    if result.cached and not logger.get("log_cached", False):
        # Already mirrored when it was computed; rerunning a sweep does not duplicate W&B runs. A marker file
        # (not a counter: jobs may run in other processes) lets the end of the sweep say how many were skipped.
        marker = sweep_dir(cfg) / WANDB_CACHED / result.key
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        return
    from xaibench.report.wandb_sink import log_cell

    try:
        log_cell(result, cfg)
    except Exception as error:  # noqa: BLE001 - W&B mirrors the table; its failure never loses a result
        print(f"xaibench: warning: W&B logging failed ({type(error).__name__}: {error}); "
              f"rows are safe in {sweep_dir(cfg)}", file=sys.stderr, flush=True)


def _progress_line(cell: CellSpec, result: CellResult, label: str) -> str:
    rows = result.rows
    scored = rows[rows["sample_id"] != ""]
    detail = f"{rows['metric'].nunique()} metrics x {scored['sample_id'].nunique()} samples"
    if result.status != "ok":
        messages = rows.loc[rows["status"] == result.status, "message"]
        detail = next((m for m in messages if m), "")[:120]
    accuracy, flag = rows["model_accuracy"].iloc[0], rows["model_flag"].iloc[0]
    if flag == "underfit":
        detail += f"  [model underfit: test accuracy {accuracy:.2f} below its min_accuracy]"
    source = "skipped" if result.status == "not_applicable" else ("cached" if result.cached else "computed")
    prefix = f"[{label}] " if label else ""
    return (f"{prefix}{cell.model_name} x {cell.dataset_name} x {cell.method_name} (seed {cell.seed}): "
            f"{result.status:<14} {result.seconds:6.2f}s {source:<8} {detail}")


def start_sweep(folder: Path) -> None:
    """Forget the previous cell list of this sweep (the store keeps every result, so nothing is recomputed)."""
    shutil.rmtree(folder / SWEEP_CELLS, ignore_errors=True)
    shutil.rmtree(folder / WANDB_CACHED, ignore_errors=True)
    for name in (TABLE_NAME, SUMMARY_NAME):  # an interrupted sweep must not leave the previous table looking current
        (folder / name).unlink(missing_ok=True)


def finish_sweep(folder: Path, *, echo: bool = True, cfg: DictConfig | None = None) -> pd.DataFrame:
    """Collect the sweep's table, write table + summary, print the summary, set the process exit code;
    with ``cfg`` and ``logger=wandb``, also log the sweep's summary run."""
    global _last_exit_code
    table = collect_sweep(folder)
    summary = summarize(table)
    write_table(table, folder / TABLE_NAME)
    write_table(summary, folder / SUMMARY_NAME)
    counts = table.drop_duplicates(["cell_key", "metric"]).groupby("cell_key")["status"].agg(_cell_status)
    n_error = int((counts == "error").sum())
    _last_exit_code = 1 if n_error else 0
    if echo:
        print("\n" + format_summary(summary))
        tally = ", ".join(f"{n} {s}" for s, n in counts.value_counts().sort_index().items())
        print(f"\n{len(counts)} cells ({tally}); {len(table)} rows -> {folder / TABLE_NAME}", flush=True)
        if n_error:
            for message in table.loc[table["status"] == "error", "message"].drop_duplicates().head(5):
                print(f"  error: {message}", file=sys.stderr)
    if cfg is not None:
        _log_sweep(cfg, folder, table, summary)
    return table


def _log_sweep(cfg: DictConfig, folder: Path, table: pd.DataFrame, summary: pd.DataFrame) -> None:
    """W&B sweep run (summary, ranks, figures); a W&B failure is reported, never fails the sweep."""
    logger = cfg.get("logger") or {}
    if logger.get("name", "none") != "wandb":
        return
    skipped = len(list((folder / WANDB_CACHED).glob("*")))
    if skipped:
        print(f"{skipped} cells were cached and not re-logged; add logger.log_cached=true to log them", flush=True)
    if skipped and skipped >= table["cell_key"].nunique():
        return  # nothing new: the sweep's summary run was logged when its cells were
    try:
        from xaibench.report.build import analyse
        from xaibench.report.figure_set import analysed_figures
        from xaibench.report.wandb_sink import log_sweep

        analysis = analyse(table)
        log_sweep(folder, table, summary, cfg, analysed_figures(table, analysis, str(cfg.store_dir)), analysis.ranks)
    except Exception as error:  # noqa: BLE001 - W&B mirrors the table; its failure never loses a result
        print(f"xaibench: warning: W&B sweep logging failed ({type(error).__name__}: {error}); "
              f"the table is safe in {folder}", file=sys.stderr, flush=True)


def _cell_status(statuses: pd.Series) -> str:
    values = set(statuses)
    if "error" in values:
        return "error"
    if values == {"not_applicable"}:
        return "not_applicable"
    return "ok"


def exit_code() -> int:
    return _last_exit_code


class SweepCallback(Callback):
    """Hydra callback: reset the sweep's cell list at the start, collect and summarise at the end."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        start_sweep(sweep_dir(config))

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        try:
            finish_sweep(sweep_dir(config), cfg=config)
        except UserError as error:
            print(f"xaibench: error: {error}", file=sys.stderr)
            global _last_exit_code
            _last_exit_code = 1

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        start_sweep(sweep_dir(config))
