"""Launcher workers stop when the process that launched them dies.

A joblib sweep's workers (loky processes) are children of the ``xaibench -m ...`` process that holds the sweep. When
that process is killed (``kill -9``, the OOM killer, a closed terminal), loky's workers do not notice: each finished
the cell it was computing (for hours on a large model, holding its GPU memory) and then idled for loky's 300 s
timeout, while the user, who had stopped the sweep, started a rerun that computed the same cell beside it. Now a
worker that sees its launcher gone says so in one line and exits; what it had stored stays, and the rerun computes
the rest.

The launching process records its pid in ``$XAIBENCH_LAUNCHER_PID`` (``sweep.hold_sweeps``); a joblib worker (a loky
process, its child) watches it, and stops before a job when it is already gone (loky queues jobs ahead, so a worker
can start one after the launcher died). Slurm and submitit tasks and Ray workers do not watch: their schedulers own
them, and a dead launcher's array is collected by the next run instead.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import threading

LAUNCHER_PID = "XAIBENCH_LAUNCHER_PID"
POLL_S = 1.0
LOKY_WORKER = "LokyProcess"  # multiprocessing.current_process().name of a joblib (loky) worker

_watching = False


def mark_launcher() -> None:
    """Record this process as the sweep's launcher, for the workers it starts from now on."""
    os.environ[LAUNCHER_PID] = str(os.getpid())


def watch_launcher(poll_s: float = POLL_S) -> bool:
    """In a worker of the launcher, stop now if it is gone, else start (once) a thread that stops when it dies.

    Returns:
        True if this process watches its launcher (now or from an earlier call).
    """
    global _watching
    launcher = os.environ.get(LAUNCHER_PID, "")
    if _watching:
        return True
    if not launcher.isdigit() or not multiprocessing.current_process().name.startswith(LOKY_WORKER):
        return False  # not a joblib worker (the launcher itself, a Slurm or local submitit task, a Ray worker)
    if os.getppid() != int(launcher):
        _stop(int(launcher))  # a joblib job queued to this worker before the launcher died
    _watching = True
    threading.Thread(target=_exit_when_orphaned, args=(int(launcher), poll_s), name="xaibench-launcher-watch",
                     daemon=True).start()
    return True


def _exit_when_orphaned(launcher: int, poll_s: float) -> None:
    """Poll the parent pid: a dead parent's children are re-parented (to init or a subreaper), never back."""
    stopped = threading.Event()
    while not stopped.wait(poll_s):
        if os.getppid() != launcher:
            _stop(launcher)


def _stop(launcher: int) -> None:
    print(f"xaibench: error: the launching process (pid {launcher}) is gone; worker {os.getpid()} stops (what it "
          f"stored is kept: rerun the sweep to finish it)", file=sys.stderr, flush=True)
    os._exit(1)
