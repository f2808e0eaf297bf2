"""Claiming a sweep's folders before any job runs: a lock, so two runs never mix their cells in one folder, and
``sweep.json`` with the expected cells (``start_sweep``); the CLI holds its claims until the process exits."""
from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from xaibench.config.slurm import check_no_array_running
from xaibench.engine.cell import CellSpec
from xaibench.engine.launcher_watch import mark_launcher
from xaibench.engine.store import TEMP_SUFFIX, Store, atomic_write_bytes, remove_if_dead
from xaibench.errors import UserError
from xaibench.results import manifest
from xaibench.results.collect import SWEEP_CELLS
from xaibench.sweep.finishing import finish_sweep
from xaibench.sweep.layout import PLANNED_CELLS, STRAY_CELLS, WANDB_CACHED, sweep_dir

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
