"""A sweep = the cells of one Hydra run or multirun, gathered under ``<results_dir>/<sweep_id>/``.

Each job computes (or loads) its cell and atomically writes the rows to ``cells/<cell_key>.parquet``; when the
sweep ends, the rows are collected into ``table.parquet`` and ``summary.parquet`` and the summary is printed.
The same functions serve the CLI (through Hydra's callbacks, for every launcher) and the Python API.

Before any job runs, the caller claims every sweep folder (``claim_sweeps``: a lock, so two runs never mix their
cells in one folder, and ``sweep.json`` with the expected cell count); the previous table stays until the new
one is complete (``xaibench.results.manifest``).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from omegaconf import DictConfig, ListConfig, OmegaConf

from xaibench.config.slurm import check_no_array_running
from xaibench.engine.cell import CellSpec
from xaibench.engine.cell_result import CellResult
from xaibench.engine.launcher_watch import mark_launcher
from xaibench.engine.stamp import stamp_rows
from xaibench.engine.store import (TEMP_SUFFIX, Store, atomic_write_bytes, atomic_writer, remove_if_dead,
                                   table_to_parquet_bytes)
from xaibench.errors import StorageError, UserError
from xaibench.results import manifest
from xaibench.report.console import summary_blocks
from xaibench.report.progress import set_enabled as set_progress
from xaibench.results.aggregate import SummaryPieces, summarize
from xaibench.results.groups import COMPARISON_COLUMNS
from xaibench.results.memory import releasable_arrow_memory
from xaibench.results.schema import is_conformed
from xaibench.results.collect import (SUMMARY_NAME, SWEEP_CELLS, TABLE_NAME, combine_cells, load_table,
                                     sweep_cell_files, write_collected, write_pieces, write_table)

_last_exit_code = 0
WANDB_CACHED = "wandb_cached"  # <sweep_dir>/wandb_cached/<cell_key>: cells not re-logged to W&B
WANDB_SUMMARY = "wandb_summary_logged"  # <sweep_dir>/wandb_summary_logged: its W&B summary run was logged once
IN_MEMORY_ROWS = 40_000  # rows of a sweep kept in memory for its end; beyond, its cell files are streamed
# (holding 40k rows peaks at ~320 MB, below the streamed end's plateau; 97k rows: 574 MB)
STORED_BATCH = 64  # jobs whose stored cells are read and stamped in one pass (~40k rows of 640-row cells)


def sweep_dir(cfg: DictConfig) -> Path:
    return Path(cfg.results_dir) / str(cfg.sweep_id)


def run_job(cfg: DictConfig, label: str = "", *, cell: CellSpec | None = None,
            stored: CellResult | None = None) -> CellResult:
    """Run one cell from a composed config, record its rows in the sweep folder, log it, print one line.

    ``cell`` is ``CellSpec.from_config(cfg)`` when the caller has it; ``stored`` the cell's stored rows, already
    stamped, when the caller read them (``stored_cells``).
    """
    cell = cell or CellSpec.from_config(cfg)
    set_progress(bool(cfg.get("progress", True)))  # status lines inside long cells (stderr)
    if cfg.get("verbose", False):  # libraries' loading bars and info logs (Hugging Face) only when asked
        os.environ["XAIBENCH_VERBOSE"] = "1"
    result = stored or stored_cell(cell, cfg) or _compute_cell(cell, cfg, job=_job_number(label))
    cell_file = sweep_dir(cfg) / SWEEP_CELLS / f"{result.key}.parquet"
    if result.parquet is not None:  # StorageError: full disk
        atomic_write_bytes(cell_file, result.parquet)
    else:
        write_table(result.rows, cell_file)
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
    device = "" if cell.device == "auto" else cell.device  # scored rows keep their stage's (not_applicable: "")
    frame = stamp_rows(frame, sweep_id=str(cfg.sweep_id), device=device, model_label=cell.model_label,
                       dataset_label=cell.dataset_label, ran=False)
    return CellResult(cell.key, frame, True, time.perf_counter() - started)


def stored_cells(configs: Sequence[DictConfig], cells: Sequence[CellSpec],
                 store_dirs: Sequence[str] | None = None) -> dict[int, CellResult]:
    """``stored_cell`` for every job at once (job index -> result), for the jobs whose cells the store holds.

    One pass: each artefact is verified and read as an Arrow table, the tables are converted to pandas and
    stamped together, then cut back into cells (about 1/5 of the CPU of reading and stamping them one by one).
    The rows are those ``stored_cell`` gives. Artefacts of another schema are left to ``stored_cell``.
    ``store_dirs``: the configs' resolved ``store_dir`` when the caller has them (each is an interpolation).
    """
    started = time.perf_counter()
    stores: dict[str, Store] = {}
    hits: list[tuple[int, pa.Table]] = []
    store_dirs = store_dirs or [str(cfg.store_dir) for cfg in configs]
    for index, (cell, store_dir) in enumerate(zip(cells, store_dirs)):
        if cell.reads_user_files():
            continue
        store = stores.setdefault(store_dir, Store(store_dir))
        table = store.get_table("cells", cell.key)
        if table is not None and (not hits or table.schema.equals(hits[0][1].schema, check_metadata=True)):
            hits.append((index, table))
    if not hits:
        return {}
    frame = pa.concat_tables([table for _, table in hits]).to_pandas()
    if not is_conformed(frame):
        return {}
    lengths = [table.num_rows for _, table in hits]

    def per_row(values: list[str]) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=object), lengths)

    jobs = [(configs[index], cells[index]) for index, _ in hits]
    frame = stamp_rows(frame, sweep_id=per_row([str(cfg.sweep_id) for cfg, _ in jobs]),
                       device=per_row(["" if cell.device == "auto" else cell.device for _, cell in jobs]),
                       model_label=per_row([cell.model_label for _, cell in jobs]),
                       dataset_label=per_row([cell.dataset_label for _, cell in jobs]), ran=False)
    table = pa.Table.from_pandas(frame, preserve_index=False)  # a slice encodes as the cell's own frame would
    bounds = np.cumsum([0, *lengths])
    seconds = (time.perf_counter() - started) / len(hits)
    return {index: CellResult(cells[index].key, frame.iloc[start:stop].reset_index(drop=True), True, seconds,
                              parquet=table_to_parquet_bytes(table.slice(start, stop - start)))
            for (index, _), start, stop in zip(hits, bounds[:-1], bounds[1:])}


def _compute_cell(cell: CellSpec, cfg: DictConfig, job: int = 0) -> CellResult:
    import torch

    from xaibench.engine.runner import run_cell

    torch.set_num_threads(int(cfg.get("threads", 1)))
    if cfg.get("devices") is None:
        return run_cell(cell, Store(cfg.store_dir), sweep_id=str(cfg.sweep_id))
    from dataclasses import replace

    from xaibench.engine.device_slots import device_slot, expand_devices

    asked = OmegaConf.to_container(cfg.devices) if isinstance(cfg.devices, DictConfig | ListConfig) else cfg.devices
    devices = expand_devices(asked)
    if asked == "all" and devices == ["cpu"]:  # no GPU here: the CPU is no device to hold, jobs run side by side
        return run_cell(replace(cell, device="cpu"), Store(cfg.store_dir), sweep_id=str(cfg.sweep_id))
    with device_slot(devices, start=job) as (_, device):  # the machine's slots: other sweeps' jobs hold them too
        return run_cell(replace(cell, device=device), Store(cfg.store_dir), sweep_id=str(cfg.sweep_id))


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
        detail += f"  [model underfit: {_underfit_reason(rows, accuracy)}]"
    prefix = f"[{label}] " if label else ""
    return (f"{prefix}{cell.model_label} x {cell.dataset_label} x {_method_label(cell, rows)} (seed {cell.seed}): "
            f"{result.status:<14} {result.seconds:6.2f}s {_source(result)}; {detail}")  # "; ": "2 cached; 3 metrics"


def _method_label(cell: CellSpec, rows: pd.DataFrame) -> str:
    """The method as the report and summary label it (``results/groups.competitor_labels``): with the parameters
    that differ from its shipped config, so ``method=variant/gradient`` is ``saliency (abs=False)``, not a second
    ``saliency`` line beside the shipped one."""
    from xaibench.results.groups import competitor_labels

    if rows.empty or "method_params" not in rows.columns:
        return cell.method_name
    return str(competitor_labels(rows.iloc[:1]).iloc[0])


def _underfit_reason(rows: pd.DataFrame, accuracy: float) -> str:
    """Which bound an underfit model missed (``TrainedModel.underfit_reason``): its ``min_accuracy`` (read from the
    rows' model parameters; shipped configs all set it) or else the test split's majority-class rate."""
    minimum = json.loads(rows["model_params"].iloc[0] or "{}").get("min_accuracy")
    if minimum is not None and accuracy < float(minimum):
        return f"test accuracy {accuracy:.2f} below its min_accuracy {float(minimum):.2f}"
    return f"test accuracy {accuracy:.2f} not above the majority-class rate (a constant prediction scores as much)"


def _source(result: CellResult) -> str:
    """What the cell computed: ``computed 1 new metric, 2 cached``, ``cached`` (whole cell) or ``skipped``."""
    if result.status == "not_applicable":
        return "skipped"
    if result.cached:
        return "cached"
    new, reused = result.metrics_computed, result.metrics_cached
    if new == 0 and reused == 0:
        return "computed"  # nothing scored (an error before scoring)
    text = f"computed {new} new metric{'s' if new != 1 else ''}"
    return text + (f", {reused} cached" if reused else "")


_held = ExitStack()  # the CLI's sweep-folder claims, kept until the process exits
_held_folders: list[Path] = []
_launcher_pid: int | None = None


def claim_sweeps(configs, cells: Sequence[CellSpec] | None = None, store_dirs: Sequence[str] | None = None
                 ) -> ExitStack:
    """Lock and start the sweep folder(s) of these job configs; close the returned stack to release them.

    ``cells``, ``store_dirs``: the configs' ``CellSpec``s and resolved ``store_dir``s when the caller has them.

    Raises:
        UserError: a folder is in use by another run or by a Slurm array an earlier run submitted (``squeue``),
            or ``results_dir``/``store_dir`` cannot be written.
        StorageError: the disk is full.
    """
    specs = cells if cells is not None else [CellSpec.from_config(cfg) for cfg in configs]
    keys: dict[Path, dict[str, str]] = {}  # distinct cells per folder (jobs differing only in batch_size share one)
    for cfg, cell in zip(configs, specs):
        keys.setdefault(sweep_dir(cfg), {}).setdefault(cell.key, _cell_label(cell))
    counts = {folder: len(found) for folder, found in keys.items()}
    for store_dir in sorted(set(store_dirs or [str(cfg.store_dir) for cfg in configs])):
        manifest.check_writable(Store(store_dir).base, "store_dir")
    for folder in sorted(counts):
        manifest.check_writable(folder, "results_dir")
        state = manifest.read_state(folder, damaged_ok=True)  # begin() rewrites a damaged sweep.json
        if state is None or not state.running:  # else the claim names the run that holds the folder
            check_no_array_running(folder)  # a Slurm array of an earlier run would write its cells among ours
    stack = ExitStack()
    try:
        for folder in sorted(counts):
            stack.enter_context(manifest.claim(folder))
        for folder, n_cells in counts.items():
            _say_if_interrupted(folder)
            start_sweep(folder, n_cells, keys[folder])
    except BaseException:
        stack.close()
        raise
    return stack


def _say_if_interrupted(folder: Path) -> None:
    """One line where the folder's previous run stopped before its end (killed, interrupted, its jobs unable to
    write): what it had written, and that this run computes only the rest. Read under the folder's lock, before
    ``start_sweep`` sets the previous cell files aside."""
    try:
        state = manifest.read_state(folder)
    except UserError:
        return  # a damaged sweep.json: begin() rewrites it
    if state is None or state.finished or state.running:
        return
    written = len(list((folder / SWEEP_CELLS).glob("*.parquet")))
    print(f"xaibench: note: the previous run of {folder} did not finish ({state.note(written).split('; ', 1)[0]} "
          f"written{manifest.started_text(folder)}); this run computes only the cells the store lacks",
          file=sys.stderr, flush=True)


def hold_sweeps(configs) -> None:
    """``claim_sweeps`` for the rest of this process (the CLI: Hydra runs the jobs, then the process exits)."""
    global _launcher_pid
    _held.enter_context(claim_sweeps(configs))
    _held_folders.extend(sorted({sweep_dir(cfg) for cfg in configs}))
    _launcher_pid = os.getpid()
    mark_launcher()  # its joblib workers exit when it dies (engine/launcher_watch.py)


def finish_held() -> None:
    """End the held sweeps after their launcher stopped without Hydra's end-of-sweep callback (a joblib worker
    killed mid-cell takes the whole launch down): each is finished from the cells written, or, as is likely, said
    to be incomplete (``n of m cells written``, exit code 1, the previous table kept)."""
    for folder in _held_folders:
        finish_sweep(folder)


def in_launching_process() -> bool:
    """True in the process that claimed the sweep (basic launcher), False in launcher workers (joblib, Slurm)."""
    return _launcher_pid == os.getpid()


PLANNED_CELLS = manifest.PLANNED_NAME  # <sweep_dir>/cells.planned: the running sweep's cell keys and labels
STRAY_CELLS = "cells.stray"  # cell files found in cells/ that are not of the sweep, set aside by its end


def _cell_label(cell: CellSpec) -> str:
    """``mlp x iris x saliency (seed 3)``, as the progress lines name a cell (for the list of missing cells)."""
    return f"{cell.model_label} x {cell.dataset_label} x {cell.method_name} (seed {cell.seed})"


def start_sweep(folder: Path, expected_cells: int | None = None, keys: set[str] | dict[str, str] | None = None
                ) -> None:
    """Record that this sweep runs and expects ``expected_cells`` cells (``keys``: theirs, or ``{key: label}`` in
    job order, so that an incomplete sweep can name the cells it lacks); set the previous cell files aside.

    The previous ``table.parquet`` and ``summary.parquet`` stay until the new ones are written (the folder's
    ``sweep.json`` says the sweep is running, so readers do not take the old table for the new run's).
    """
    manifest.begin(folder, expected_cells if expected_cells is not None else 0)
    for temp in folder.glob(f".*{TEMP_SUFFIX}"):  # a killed run's half-written table or summary (not the temp file
        remove_if_dead(temp)  # of a live `summary <sweep> -o <sweep>/s.csv`: its writer holds it)
    shutil.rmtree(folder / WANDB_CACHED, ignore_errors=True)  # this run's "cached, not re-logged" markers
    shutil.rmtree(folder / STRAY_CELLS, ignore_errors=True)  # the previous run's
    if keys is None:
        (folder / PLANNED_CELLS).unlink(missing_ok=True)
    else:
        labels = keys if isinstance(keys, dict) else dict.fromkeys(sorted(keys), "")
        atomic_write_bytes(folder / PLANNED_CELLS, "".join(f"{key}\t{label}\n".replace("\t\n", "\n")
                                                           for key, label in labels.items()).encode())


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
    (``collect._combine``): a cell whose suite is a subset of another's keeps no row of its own, yet it ran and
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


def _log_sweep(cfg: DictConfig, folder: Path, summary: pd.DataFrame | SummaryPieces, statuses: pd.Series,
               table: pd.DataFrame | None = None, n_rows: int | None = None) -> None:
    """W&B sweep run (summary, ranks, figures); a W&B failure is reported, never fails the sweep.

    ``statuses``: each cell's status, as the console counts the cells (some may have no row of their own in the
    table: ``_with_shared``). ``table``: the sweep's table; None for a streamed sweep (``n_rows`` rows, ``summary``
    its ``SummaryPieces``): the ranks come from the summary's columns they read, the figures from the columns they
    draw and from ``table.parquet`` read one (model, dataset) range at a time (``report/streamed_figures.py``), the
    tables from the summary's first parts: the same run without holding the table or the whole summary.
    """
    logger = cfg.get("logger") or {}
    if logger.get("name", "none") != "wandb":
        return
    skipped = len(list((folder / WANDB_CACHED).glob("*")))
    if skipped:
        print(f"{skipped} cells were cached and not re-logged; add logger.log_cached=true to log them", flush=True)
    if skipped and skipped >= len(statuses) and (folder / WANDB_SUMMARY).exists():
        return  # nothing new, and the sweep's summary run was logged when its cells were (not so if they were
        # computed without logger=wandb: the first logger=wandb rerun then logs the summary run)
    try:
        with releasable_arrow_memory():  # what each of its phases frees goes back to the system (memory.py)
            _log_summary_run(cfg, folder, summary, statuses, table, n_rows)
        (folder / WANDB_SUMMARY).touch()
        if logger.get("mode", "offline") == "offline":  # where the runs are, and how to upload them
            from xaibench.report.wandb_sink import wandb_folder

            runs = wandb_folder(cfg) / "wandb"
            print(f"W&B (offline): runs in {runs}; upload them with: wandb sync {runs}/offline-run-*", flush=True)
    except Exception as error:  # noqa: BLE001 - W&B mirrors the table; its failure never loses a result
        print(f"xaibench: warning: W&B sweep logging failed ({type(error).__name__}: {error}); "
              f"the table is safe in {folder}", file=sys.stderr, flush=True)


def _log_summary_run(cfg: DictConfig, folder: Path, summary: pd.DataFrame | SummaryPieces, statuses: pd.Series,
                     table: pd.DataFrame | None, n_rows: int | None) -> None:
    """``_log_sweep``'s run: statistics, figures and tables of the table held, or of the streamed summary."""
    from xaibench.report.build import analyse, rank_statistics
    from xaibench.report.figure_set import analysed_figures, cost_metric, scored_rows
    from xaibench.report.streamed_figures import iter_streamed_figures
    from xaibench.report.wandb_sink import log_sweep
    from xaibench.results.memory import release_memory

    release_memory()  # what the summary's end and printing freed, before the run's own phases
    if table is None:  # summary: SummaryPieces; the statistics and the figures get the columns they read
        stats = summary.frame([*COMPARISON_COLUMNS, *_STATISTICS_COLUMNS])
        ranks, friedman, agreement = rank_statistics(stats)
        metric = cost_metric(stats)  # every summary row's metric and family, as the drawn columns would give
        del stats
        release_memory()  # the statistics' intermediate frames, before the tables and figures

        def drawn() -> pd.DataFrame:  # what every figure draws; made once, after the pass over the table's ranges,
            # and let go before the explanation figures (iter_streamed_figures; the figures copy no rows of it)
            return scored_rows(summary.frame([c for c in summary.columns if c not in _NOT_DRAWN]))

        figures = iter_streamed_figures(folder / TABLE_NAME, drawn, str(cfg.store_dir), friedman=friedman,
                                        ranks=ranks[ranks["by"] == "metric"] if "by" in ranks else None,
                                        agreement=agreement, cost_metric=metric)  # drawn, logged, freed one at a time
        log_sweep(folder, None, summary, cfg, figures, ranks, cells=statuses, n_rows=n_rows)
    else:
        analysis = analyse(table)
        log_sweep(folder, table, summary, cfg, analysed_figures(table, analysis, str(cfg.store_dir)),
                  analysis.ranks, cells=statuses)


# The summary columns the W&B run's rank statistics read (with the comparison-group columns it has), and those its
# figures do not read: a streamed sweep's run holds only the others (the summary of 10,000 cells is 120,000 rows,
# 40 MB whole, and each figure pass held its own copy of the scored rows).
_STATISTICS_COLUMNS = ("setting", "comparison", "competitor", "method", "family", "higher_is_better", "mean")
_NOT_DRAWN = frozenset({"setting", "comparison", "n_seeds", "std", "n", "n_values", "nan_rate", "error_rate", "status",
                        "message", "model_accuracy", "model_flag"})


def _cell_status(statuses: pd.Series) -> str:
    values = set(statuses)
    if "error" in values:
        return "error"
    if values == {"not_applicable"}:
        return "not_applicable"
    return "ok"


def exit_code() -> int:
    return _last_exit_code


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
            global _last_exit_code
            try:
                finish_sweep(sweep_dir(config), cfg=config)
            except UserError as error:
                print(f"xaibench: error: {error}", file=sys.stderr)
                _last_exit_code = 1
            except StorageError as error:  # Hydra turns callback exceptions into warnings: report it here, once
                print(f"xaibench: error: {error}", file=sys.stderr)
                _last_exit_code = 1

    SweepCallback.__qualname__ = "SweepCallback"  # pickled by reference as xaibench.sweep.SweepCallback
    return SweepCallback
