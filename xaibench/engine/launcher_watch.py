"""Launcher workers stop when the process that launched them dies.

A joblib sweep's workers (loky processes) are children of the ``xaibench -m ...`` process that holds the sweep. When
that process is killed (``kill -9``, the OOM killer, a closed terminal), loky's workers do not notice: each finished
the cell it was computing (for hours on a large model, holding its GPU memory) and then idled for loky's 300 s
timeout, while the user, who had stopped the sweep, started a rerun that computed the same cell beside it. Now a
worker that sees its launcher gone says so in one line and exits; what it had stored stays, and the rerun computes
the rest.

The launching process records its pid in ``$XAIBENCH_LAUNCHER_PID`` (``sweep.hold_sweeps``); a joblib worker (a loky
process, its child) watches it, and stops before a job when it is already gone (loky queues jobs ahead, so a worker
can start one after the launcher died). A task of submitit's local executor (``hydra/launcher=submitit_local``,
``submitit_local_chunked``; ``$SUBMITIT_EXECUTOR`` is ``local``) watches it too: its controller process is started
"to survive the end of the python session", so a killed launcher's tasks went on computing and writing cells into
the sweep folder (and holding a GPU) beside the rerun, unseen. It is the launcher's grandchild (through submitit's
controller, and a shell where ``setup`` lines are run), so it watches whether the launcher is still among its
ancestors (``/proc``; elsewhere it does not watch). Slurm tasks and Ray workers do not watch: their schedulers own
them, and a dead launcher's array is collected by the next run instead.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Callable

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
    if not launcher.isdigit():
        return False
    if multiprocessing.current_process().name.startswith(LOKY_WORKER):
        alive = _is_parent
    elif os.environ.get(SUBMITIT_EXECUTOR) == "local" and os.path.isdir("/proc"):
        alive = _is_ancestor
    else:
        return False  # the launcher itself, a Slurm task, a Ray worker
    if not alive(int(launcher)):
        _stop(int(launcher))  # a job queued to this worker (or a task started) after the launcher died
    _watching = True
    threading.Thread(target=_exit_when_orphaned, args=(int(launcher), alive, poll_s), name="xaibench-launcher-watch",
                     daemon=True).start()
    return True


SUBMITIT_EXECUTOR = "SUBMITIT_EXECUTOR"  # "local" in a task of submitit's local executor (its controller sets it)


def _exit_when_orphaned(launcher: int, alive: Callable[[int], bool], poll_s: float) -> None:
    """Poll ``alive(launcher)``: a dead process's children are re-parented (to init or a subreaper), never back."""
    stopped = threading.Event()
    while not stopped.wait(poll_s):
        if not alive(launcher):
            _stop(launcher)


def _is_parent(launcher: int) -> bool:
    return os.getppid() == launcher


def _is_ancestor(launcher: int) -> bool:
    """Whether ``launcher`` is this process's parent, grandparent, ... (``/proc/<pid>/stat``). A pid reused by a
    new process after the launcher died is not an ancestor, nor is a dead launcher left unreaped (its children were
    re-parented when it died)."""
    pid = os.getppid()
    for _ in range(64):
        if pid == launcher:
            return True
        if pid <= 1:
            return False
        try:
            with open(f"/proc/{pid}/stat") as stat:
                pid = int(stat.read().rsplit(")", 1)[1].split()[1])  # field 4, after the name in parentheses
        except (OSError, ValueError, IndexError):
            return False
    return False


def _stop(launcher: int) -> None:
    print(f"xaibench: error: the launching process (pid {launcher}) is gone; worker {os.getpid()} stops (what it "
          f"stored is kept: rerun the sweep to finish it)", file=sys.stderr, flush=True)
    os._exit(1)
