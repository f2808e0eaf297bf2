"""What a sweep asks Slurm before it launches: the cluster's ``MaxArraySize``, whether ``sbatch --test-only``
accepts the array job (its partition, account, time and memory), and whether an array job this sweep submitted
earlier is still queued or running.

A Slurm array keeps running, and storing cells into its sweep folder, after the process that submitted it is
killed or interrupted. The launcher records each array it submits in ``<sweep_dir>/slurm_arrays.json``
(``record_array``); a later run of the same ``sweep_id`` is refused while one of them is still in ``squeue``
(``check_no_array_running``): its cells would otherwise land among the new run's (a changed sweep collected the
old array's cells as its own). Slurm's commands are run with a time limit; where they are missing (not a Slurm
machine) or fail, nothing is refused.
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from xaibench.engine.store import atomic_write_bytes
from xaibench.errors import UserError

ARRAYS_NAME = "slurm_arrays.json"  # <sweep_dir>/slurm_arrays.json: the array jobs this sweep folder submitted
_TIMEOUT_S = 30
_ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
          "PREEMPTED"}  # squeue lists a finished job for a while (MinJobAge) in these states


@lru_cache(maxsize=1)
def max_array_size() -> int | None:
    """``MaxArraySize`` of the cluster (``scontrol show config``): an array holds at most that many tasks (indices
    0 .. MaxArraySize - 1). None where ``scontrol`` is missing or does not say (sbatch then has the last word)."""
    if shutil.which("scontrol") is None:
        return None
    try:
        shown = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"^MaxArraySize\s*=\s*(\d+)", shown.stdout, re.M)
    return int(found.group(1)) if shown.returncode == 0 and found else None


def check_array_fits(n_cells: int, cells_per_task: int, timeout_min: object = None) -> None:
    """Refuse an array that Slurm would refuse for its size, with the ``cells_per_task`` that fits.

    Raises:
        UserError: ``ceil(n_cells / cells_per_task)`` tasks are more than the cluster's ``MaxArraySize``.
    """
    limit = max_array_size()
    n_tasks = -(-n_cells // cells_per_task)
    if limit is None or n_tasks <= limit:
        return
    needed = -(-n_cells // limit)
    timing = (f", and raise hydra.launcher.timeout_min for {needed} cells a task (now {timeout_min} minutes for "
              f"{cells_per_task})") if timeout_min is not None else ""
    raise UserError(f"{n_cells} cells to compute at cells_per_task={cells_per_task} are {n_tasks} Slurm array tasks, "
                    f"more than this cluster's MaxArraySize={limit} (scontrol show config); set "
                    f"hydra.launcher.cells_per_task={needed} or more{timing}")


def check_sbatch_accepts(script: str, n_tasks: int) -> None:
    """Ask ``sbatch --test-only`` (which validates a job and submits nothing) about the array job the launcher
    would submit, before any file is touched: a partition or account that does not exist, no default partition,
    a time or memory above the partition's limits. (They were refused by the real ``sbatch`` only after the stored
    cells were written and the sweep folder claimed.) The script is written to a temporary folder and removed.

    Args:
        script: the job's sbatch file, as the launcher writes it (``#SBATCH`` lines, command).
        n_tasks: its array tasks (for the message).

    Raises:
        UserError: ``sbatch --test-only`` refused it: its reason in one line. An ``sbatch`` that does not answer in
            time is not a refusal (one warning line; the submission itself then says what is wrong).
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="xaibench-sbatch-") as folder:
        path = Path(folder) / "array.sh"
        path.write_text(script)
        try:
            done = subprocess.run(["sbatch", "--test-only", str(path)], capture_output=True, text=True,
                                  timeout=_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"xaibench: warning: sbatch --test-only did not answer within {_TIMEOUT_S} s; the array's settings "
                  f"were not checked before the sweep started", file=sys.stderr, flush=True)
            return
        except OSError:
            return  # no sbatch: refused earlier (check_launch)
    if done.returncode != 0:
        reason = " ".join((done.stderr or done.stdout).split()) or f"exit code {done.returncode}"
        tasks = f"{n_tasks} task{'s' * (n_tasks != 1)}"
        raise UserError(f"slurm refuses the sweep's array job ({tasks}; sbatch --test-only): {reason}; fix the "
                        f"hydra.launcher.* settings (partition, account, timeout_min, mem_gb, cells_per_task) and "
                        f"rerun")


def record_array(folder: Path, job_id: str, n_tasks: int, n_cells: int) -> None:
    """Add a submitted array job to the sweep folder's record (read by ``check_no_array_running``; ``mark_collected``
    once the launching process has seen all its tasks end)."""
    arrays = [entry for entry in _recorded(folder) if entry.get("job") != job_id]
    arrays.append({"job": job_id, "tasks": n_tasks, "cells": n_cells, "host": socket.gethostname(),
                   "submitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    atomic_write_bytes(folder / ARRAYS_NAME, json.dumps(arrays, indent=1).encode())


def mark_collected(folder: Path, job_id: str) -> None:
    """The launching process saw every task of the array end: a later run need not ask ``squeue`` about it."""
    arrays = _recorded(folder)
    for entry in arrays:
        if entry.get("job") == job_id:
            entry["collected"] = True
    atomic_write_bytes(folder / ARRAYS_NAME, json.dumps(arrays, indent=1).encode())


def uncollected_arrays(folder: Path) -> list[str]:
    """The recorded array jobs whose end the launching process did not see (it was killed or interrupted): they may
    still be running."""
    return [str(entry["job"]) for entry in _recorded(folder) if not entry.get("collected")]


def check_no_array_running(folder: Path) -> None:
    """Refuse to start a run of this sweep folder while an array job it submitted is still queued or running.

    Touches nothing when it refuses. Once ``squeue`` shows that every recorded array has ended, the record is
    removed; one that cannot be checked here (no ``squeue``: another machine) is kept and said in a warning line.

    Raises:
        UserError: ``squeue`` lists tasks of a recorded array (pending, running, requeued, suspended, ...).
    """
    arrays = [entry for entry in _recorded(folder) if not entry.get("collected")]
    if not arrays:
        (folder / ARRAYS_NAME).unlink(missing_ok=True)
        return
    if shutil.which("squeue") is None:
        print(f"xaibench: warning: {folder} has Slurm array job(s) {', '.join(a['job'] for a in arrays)}, but squeue "
              f"is not on PATH here to check that they have ended; if one still runs, its cells mix with this run's",
              file=sys.stderr, flush=True)
        return
    checked = True
    for entry in arrays:
        states = _queued_states(str(entry["job"]))
        checked = checked and states is not None
        if states:
            counts = ", ".join(f"{n} {state}" for state, n in sorted(_tally(states).items()))
            raise UserError(f"Slurm job {entry['job']} of sweep folder {folder} is still queued or running "
                            f"({counts}) and writes its cells there; rerun once it has ended (squeue -j "
                            f"{entry['job']}) to collect them, or stop it first (scancel {entry['job']}); or choose "
                            f"another sweep_id=")
    if checked:
        (folder / ARRAYS_NAME).unlink(missing_ok=True)


def _queued_states(job_id: str) -> list[str] | None:
    """The states ``squeue`` gives the job's tasks that have not ended ([] for a job Slurm no longer knows; None,
    with a warning line, where squeue fails)."""
    try:
        listed = subprocess.run(["squeue", "-h", "-r", "-j", job_id, "-o", "%i %T"], capture_output=True, text=True,
                                timeout=_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as error:
        print(f"xaibench: warning: could not ask squeue whether Slurm job {job_id} of this sweep still runs "
              f"({type(error).__name__}); if it does, scancel it first", file=sys.stderr, flush=True)
        return None
    if listed.returncode != 0:
        if "invalid job id" not in listed.stderr.lower():  # purged from the controller: it ended long ago
            print(f"xaibench: warning: could not ask squeue whether Slurm job {job_id} of this sweep still runs "
                  f"({listed.stderr.strip()[:200]}); if it does, scancel it first", file=sys.stderr, flush=True)
            return None
        return []
    states = [line.split()[-1].upper() for line in listed.stdout.splitlines() if line.strip()]
    return [state for state in states if state not in _ENDED]


def _tally(states: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    return counts


def _recorded(folder: Path) -> list[dict]:
    try:
        data = json.loads((folder / ARRAYS_NAME).read_text())
    except (OSError, ValueError):
        return []
    return [entry for entry in data if isinstance(entry, dict) and entry.get("job")] if isinstance(data, list) else []

