"""A sweep = the cells of one Hydra run or multirun, gathered under ``<results_dir>/<sweep_id>/``.

Each job computes (or loads) its cell and atomically writes the rows to ``cells/<cell_key>.parquet``; when the
sweep ends, the rows are collected into ``table.parquet`` and ``summary.parquet`` and the summary is printed.
The same functions serve the CLI (through Hydra's callbacks, for every launcher) and the Python API.
"""
from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from xaibench.engine.cell import CellSpec
from xaibench.engine.cell_result import CellResult
from xaibench.engine.store import Store
from xaibench.errors import UserError
from xaibench.report.console import format_summary
from xaibench.results.aggregate import summarize
from xaibench.results.collect import SUMMARY_NAME, SWEEP_CELLS, TABLE_NAME, collect_sweep, write_table

_last_exit_code = 0


def sweep_dir(cfg: DictConfig) -> Path:
    return Path(cfg.results_dir) / str(cfg.sweep_id)


def run_job(cfg: DictConfig, label: str = "") -> CellResult:
    """Run one cell from a composed config, record its rows in the sweep folder, log it, print one line."""
    cell = CellSpec.from_config(cfg)
    result = stored_cell(cell, cfg) or _compute_cell(cell, cfg, job=_job_number(label))
    write_table(result.rows, sweep_dir(cfg) / SWEEP_CELLS / f"{result.key}.parquet")
    _log(cfg, result)
    if cfg.get("progress", True):
        print(_progress_line(cell, result, label), flush=True)
    return result


def _job_number(label: str) -> int:
    return int(label.rsplit(" ", 1)[-1]) if label.rsplit(" ", 1)[-1].isdigit() else 0


def stored_cell(cell: CellSpec, cfg: DictConfig) -> CellResult | None:
    """The cell's stored rows, read from the store alone (no torch, no model, no data), or None.

    Only for cells fully described by their key; cells that read user files go through ``run_cell``, which checks
    the data revision and weights hash first.
    """
    if cell.reads_user_files():
        return None
    started = time.perf_counter()
    frame = Store(cfg.store_dir).get_frame("cells", cell.key)
    if frame is None:
        return None
    frame["sweep_id"] = str(cfg.sweep_id)  # stored conformed; collect conforms the sweep's table again
    return CellResult(cell.key, frame, True, time.perf_counter() - started)


def _compute_cell(cell: CellSpec, cfg: DictConfig, job: int = 0) -> CellResult:
    import torch

    from xaibench.engine.runner import run_cell

    torch.set_num_threads(int(cfg.get("threads", 1)))
    if cfg.get("devices") is None:
        return run_cell(cell, Store(cfg.store_dir), sweep_id=str(cfg.sweep_id))
    from dataclasses import replace

    from xaibench.engine.device_slots import device_slot, expand_devices

    devices = expand_devices(OmegaConf.to_container(cfg.devices) if isinstance(cfg.devices, DictConfig | ListConfig)
                             else cfg.devices)
    with device_slot(devices, sweep_dir(cfg) / ".devices", start=job) as (_, device):
        return run_cell(replace(cell, device=device), Store(cfg.store_dir), sweep_id=str(cfg.sweep_id))


def run_configs(configs: Sequence[DictConfig], *, multirun: bool, echo: bool = True) -> pd.DataFrame:
    """The in-process launcher: run the pre-flight's job configs here, one after the other, as Hydra's basic
    launcher would (same sweep folder, rows, table and summary; ``jobs/<n>/.hydra/config.yaml`` as Hydra writes).

    Used for the basic launcher (one machine, one process); the joblib, submitit and Ray launchers still go
    through Hydra. Skips Hydra's second and third composition of every job.
    """
    import logging

    logging.getLogger().setLevel(logging.WARNING)  # as conf/config.yaml's hydra.job_logging (Quantus logs INFO)
    folders = sorted({sweep_dir(cfg) for cfg in configs})
    for folder in folders:
        start_sweep(folder)
    for index, cfg in enumerate(configs):
        if not echo:
            cfg.progress = False
        job_dir = sweep_dir(cfg) / "jobs" / str(index) if multirun else sweep_dir(cfg)
        _write_job_config(job_dir, cfg)
        run_job(cfg, label=f"job {index}" if multirun else "")
    tables = [finish_sweep(folder, echo=echo) for folder in folders]
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]


def _write_job_config(job_dir: Path, cfg: DictConfig) -> None:
    """A record for the user, as Hydra leaves it (results never read it back: no fsync needed)."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: OmegaConf.to_yaml costs 5x more per job
    (job_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    text = yaml.dump(OmegaConf.to_container(cfg, resolve=False), Dumper=dumper, sort_keys=False)
    (job_dir / ".hydra" / "config.yaml").write_text(text)


def _log(cfg: DictConfig, result: CellResult) -> None:
    logger = cfg.get("logger") or {}
    if logger.get("name", "none") == "none":
        return
    if result.cached and not logger.get("log_cached", False):
        return  # already mirrored when it was computed; rerunning a sweep does not duplicate W&B runs
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
    for name in (TABLE_NAME, SUMMARY_NAME):  # an interrupted sweep must not leave the previous table looking current
        (folder / name).unlink(missing_ok=True)


def finish_sweep(folder: Path, *, echo: bool = True) -> pd.DataFrame:
    """Collect the sweep's table, write table + summary, print the summary, set the process exit code."""
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
    return table


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
            finish_sweep(sweep_dir(config))
        except UserError as error:
            print(f"xaibench: error: {error}", file=sys.stderr)
            global _last_exit_code
            _last_exit_code = 1

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        start_sweep(sweep_dir(config))
