"""The state of a sweep folder: who writes it, how many cells it expects, whether it finished.

``<sweep_dir>/sweep.json`` is written when a sweep starts (state ``running``, the expected cell count) and
rewritten when its table is complete (state ``finished``). A sweep that was killed, or whose jobs could not all
write, stays ``running`` with its lock free: readers then say "17 of 24 cells; the sweep did not finish". One whose
jobs could not be submitted (``sbatch`` refused the array) is ``failed``, with the reason in ``error``.

Only one xaibench run writes a sweep folder at a time: it holds ``<sweep_dir>/.sweep.lock`` (an ``flock``, so a
killed run never leaves it held) from before the first job until the table is written, and a second run with the
same ``sweep_id`` is refused with one line. The previous run's ``table.parquet`` and ``summary.parquet`` stay
in place until the new ones are complete; its cell files are moved to ``cells.previous/`` meanwhile.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from xaibench.engine.locks import LockHeld, file_lock
from xaibench.engine.store import atomic_write_bytes
from xaibench.errors import StorageError, UserError
from xaibench.results.folder_paths import file_in_the_way, nearest_existing

MANIFEST_NAME = "sweep.json"
PLANNED_NAME = "cells.planned"  # the running sweep's cells, one a line: "<cell key>\t<label>" (xaibench.sweep)
LOCK_NAME = ".sweep.lock"
PREVIOUS_CELLS = "cells.previous"
# OS errors that mean "this folder cannot be written at all" (a configuration problem, found before any compute)
_UNWRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST}


@dataclass(frozen=True)
class SweepState:
    expected_cells: int | None
    finished: bool
    running: bool  # another process holds the folder's lock right now
    arrays: tuple[str, ...] = ()  # Slurm array jobs whose end its launching process did not see (killed)
    failed: str = ""  # why its jobs could not be submitted (state "failed": sbatch refused the array), else ""
    errors: int = 0  # cells of the finished sweep that ended in error (recorded by ``complete``; not stored)

    def note(self, n_cells: int) -> str:
        """``"17 of 24 cells; the sweep did not finish"`` (or ``is still running``; or, where its launching
        process was killed, that its Slurm array may still be running)."""
        of = f"{n_cells} of {self.expected_cells}" if self.expected_cells is not None else f"{n_cells}"
        if self.running:
            return f"{of} cells; the sweep is still running"
        if self.failed:
            return f"{of} cells; the sweep did not finish: {self.failed}"
        if self.arrays:
            return (f"{of} cells; the sweep did not finish: its launching process stopped, and its Slurm job "
                    f"{', '.join(self.arrays)} may still be running and storing cells (squeue -j {self.arrays[-1]}); "
                    f"rerun the sweep once it has ended to collect them")
        return f"{of} cells; the sweep did not finish"


def planned_cells(folder: Path) -> dict[str, str] | None:
    """The sweep's planned cells, ``{cell key: label}`` in job order (label "" where not recorded), or None where
    the sweep was started without them (an older xaibench, a single run's folder)."""
    try:
        text = (folder / PLANNED_NAME).read_text()
    except OSError:
        return None
    lines = (line.partition("\t") for line in text.splitlines())
    return {key.strip(): label.strip() for key, _, label in lines if key.strip()}


def missing_cells(folder: Path, cells_folder: str = "cells") -> list[str]:
    """Labels (``mlp x iris x saliency (seed 3)``; "" where none was recorded) of the planned cells that have no
    cell file in ``<folder>/cells/``, in job order: what a rerun of the sweep computes."""
    planned = planned_cells(folder) or {}
    present = {path.stem for path in (folder / cells_folder).glob("*.parquet")}
    return [label for key, label in planned.items() if key not in present]


def missing_text(missing: list[str], shown: int = 5) -> str:
    """``"missing: a, b, c, d, e and 5 more"`` (``""`` for none, or where a cell's label was not recorded)."""
    if not missing or not all(missing):
        return ""
    more = f" and {len(missing) - shown} more" if len(missing) > shown else ""
    return f"missing: {', '.join(missing[:shown])}{more}"


@contextmanager
def claim(folder: Path) -> Iterator[None]:
    """Hold the sweep folder's lock (creating the folder).

    Raises:
        UserError: another run holds it, or the folder cannot be created/written (names the path and OS error).
    """
    try:
        check_writable(folder, "results_dir")
        folder.mkdir(parents=True, exist_ok=True)
        with file_lock(folder / LOCK_NAME, blocking=False):
            yield
    except LockHeld:
        raise UserError(f"sweep folder {folder} is in use by another xaibench run{_holder(folder)}; wait for it to "
                        f"finish or choose another sweep_id=") from None
    except OSError as error:
        raise unwritable(error, folder, "results_dir") from None


def check_writable(folder: Path, what: str) -> None:
    """Raise the one-line error ``unwritable`` gives if ``folder`` cannot be created or written; create nothing."""
    existing = nearest_existing(folder)
    if not existing.is_dir():
        error = OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    elif _read_only(existing):
        error = OSError(errno.EROFS, os.strerror(errno.EROFS), str(existing))
    elif not os.access(existing, os.W_OK | os.X_OK):
        error = OSError(errno.EACCES, os.strerror(errno.EACCES), str(existing))
    else:
        return
    raise unwritable(error, folder, what)


def unwritable(error: OSError, path: Path, what: str) -> Exception:
    """The one-line error for a folder that cannot be written: UserError if it never can, else StorageError."""
    if error.errno in _UNWRITABLE:
        folder = error.filename or path
        blocker = file_in_the_way(folder) if error.errno == errno.ENOTDIR else None  # which file "Not a directory"
        why = f"{blocker} is a file, not a folder" if blocker else f"[Errno {error.errno}] {error.strerror}"
        return UserError(f"{what} {folder} is not a writable folder: {why}; choose another "
                         f"{what}{'' if what.startswith('-') else '='}")
    return StorageError.from_os_error(error, path)


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


_command: dict | None = None  # the CLI's command line, recorded by ``begin`` (``record_command``)
_command_folders: set[Path] = set()  # the sweep folders it writes (not those of a later Python-API sweep)


def record_command(overrides: list[str], *, multirun: bool, config_name: str = "config",
                   folders: list[Path] = (), api: bool = False) -> None:
    """Remember this process's sweep command line (the CLI calls it once; ``xaibench.run``, ``api``, per call) and
    the sweep ``folders`` it writes, for ``begin`` to record in their ``sweep.json``: ``compare`` composes it again
    to tell a table made by a config edited since (``results/compare/config_check.py``)."""
    global _command
    _command = {"overrides": list(overrides), "multirun": bool(multirun), "config_name": config_name,
                "cwd": os.getcwd(), "plugins": os.environ.get("XAIBENCH_PLUGINS", ""), **({"api": True} if api else {})}
    _command_folders.clear()
    _command_folders.update(Path(f).resolve() for f in folders)


def recorded_command(folder: Path) -> dict | None:
    """The command line the folder's sweep ran (``record_command``'s record), or None (a sweep of the Python API,
    or of an xaibench that did not record it)."""
    command = _read(folder, optional="compare does not check the configs the table was made from").get("command")
    return command if isinstance(command, dict) and isinstance(command.get("overrides"), list) else None


def begin(folder: Path, expected_cells: int) -> None:
    """Mark the sweep running (expected cell count) and set the previous run's cell files aside. The record names
    the sha256 of each ``$XAIBENCH_PLUGINS`` module file (``plugins``), so ``compare --update-baseline`` can tell a
    table computed by a plugin that was edited since (``results/compare/freshness.py``), and the CLI's command line
    (``command``: ``record_command``), so ``compare`` can tell one computed from other configs."""
    from xaibench.engine.plugin_code import plugin_file_digests

    plugins = plugin_file_digests()
    _write(folder, {"state": "running", "expected_cells": expected_cells, "started_at": _now(),
                    "host": socket.gethostname(), "pid": os.getpid(), **({"plugins": plugins} if plugins else {}),
                    **({"command": _command} if _command and folder.resolve() in _command_folders else {})})
    cells, previous = folder / "cells", folder / PREVIOUS_CELLS
    if cells.is_dir():
        shutil.rmtree(previous, ignore_errors=True)
        try:
            os.replace(cells, previous)
        except OSError as error:
            raise StorageError.from_os_error(error, cells) from None


def complete(folder: Path, n_cells: int, statuses: dict[str, int] | None = None) -> None:
    """Mark the sweep finished (its table and summary are written) and drop the previous run's cell files.
    ``statuses``: how many cells ended ``ok``, ``error``, ``not_applicable`` (``cell_statuses``: a later
    ``xaibench summary`` says how many failed and how to retry them)."""
    state = _read(folder)
    tally = {"cell_statuses": {str(k): int(v) for k, v in sorted(statuses.items())}} if statuses else {}
    _write(folder, {**state, "state": "finished", "cells": n_cells, "finished_at": _now(), **tally})
    shutil.rmtree(folder / PREVIOUS_CELLS, ignore_errors=True)


def fail(folder: Path, reason: str) -> None:
    """Mark the sweep failed before its jobs ran (``sbatch`` refused the array at submission): no job is out there,
    and readers say why (``reason``, one line) instead of "did not finish"."""
    state = _read(folder)
    _write(folder, {**state, "state": "failed", "error": " ".join(reason.split()), "failed_at": _now()})


def read_state(folder: Path, *, damaged_ok: bool = False) -> SweepState | None:
    """The folder's state, or None for a folder without a manifest (written by an older xaibench).

    Raises:
        UserError: ``sweep.json`` is unreadable (truncated, edited, wrong types), unless ``damaged_ok`` (a sweep
            about to rewrite it): without it a partial or stale table would pass for the sweep's current one.
    """
    data = _read(folder, strict=not damaged_ok)
    if not data:
        return None
    expected = data.get("expected_cells")
    from xaibench.config.slurm import uncollected_arrays

    finished = data.get("state") == "finished"
    failed = str(data.get("error") or "failed") if data.get("state") == "failed" else ""
    statuses = data.get("cell_statuses") if finished and isinstance(data.get("cell_statuses"), dict) else {}
    errors = statuses.get("error", 0)
    return SweepState(expected if isinstance(expected, int) else None, finished, _is_locked(folder),
                      () if finished or failed else tuple(uncollected_arrays(folder)), failed,
                      errors if isinstance(errors, int) else 0)


def _is_locked(folder: Path) -> bool:
    if not (folder / LOCK_NAME).exists():
        return False
    try:
        with file_lock(folder / LOCK_NAME, blocking=False):
            return False
    except LockHeld:
        return True
    except OSError:
        return False


def _holder(folder: Path) -> str:
    """`` (pid 2018 on node12, started 2026-12-01T07:12:12+00:00)``: where the run holding the folder is, so a user
    with several terminals or login nodes finds it (its ``sweep.json``; empty before it wrote one)."""
    data = _read(folder)
    if data.get("state") != "running" or not data.get("pid"):
        return ""
    return f" (pid {data['pid']} on {data.get('host', '?')}, started {data.get('started_at', '?')})"


def started_text(folder: Path) -> str:
    """``", started 2026-12-01T07:12:12+00:00 by pid 2018 on node12"`` from ``sweep.json`` ("" where not recorded)."""
    data = _read(folder)
    if not data.get("started_at"):
        return ""
    return f", started {data['started_at']} by pid {data.get('pid', '?')} on {data.get('host', '?')}"


def recorded_plugins(folder: Path) -> dict[str, str]:
    """``{module: sha256 of its file}`` of the ``$XAIBENCH_PLUGINS`` the folder's sweep ran with ({}: none, or a
    sweep recorded before plugins were)."""
    plugins = _read(folder, optional="compare does not check the plugin files the table was made with").get("plugins")
    return {str(k): str(v) for k, v in plugins.items()} if isinstance(plugins, dict) else {}


def _read(folder: Path, *, strict: bool = False, optional: str = "") -> dict:
    """The folder's ``sweep.json`` ({} when it has none). A damaged one (not JSON, not an object, a ``state`` or
    ``expected_cells`` of the wrong type) raises ``UserError`` when ``strict``; else it reads as {}, after one
    warning line when ``optional`` says what is skipped without it."""
    path = folder / MANIFEST_NAME
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as error:
        problem = f"unreadable: {error.strerror}"
    else:
        try:
            data = json.loads(text)
        except ValueError as error:  # truncated, not UTF-8, edited by hand
            problem = f"not valid JSON: {error}"
        else:
            problem = _problem(data)
            if not problem:
                return data
    if strict:
        raise UserError(f"{path} is damaged ({problem}); it says whether the sweep finished, so its table cannot be "
                        f"told complete: rerun the sweep's command to rewrite it (stored cells are not recomputed), "
                        f"or delete it to read the folder's cells as they are")
    if optional and str(path) not in _warned:
        _warned.add(str(path))
        print(f"xaibench: warning: {path} is damaged ({problem}); {optional}", file=sys.stderr)
    return {}


STATES = ("running", "finished", "failed")  # "failed": sbatch refused the array at submission (``fail``)
_warned: set[str] = set()  # the damaged sweep.json files a warning was printed for (once per process)


def _problem(data) -> str:
    """Why a parsed ``sweep.json`` cannot be used ("" if it can)."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    if data.get("state") not in STATES:
        return f"state is {data.get('state')!r}, not one of {', '.join(map(repr, STATES))}"
    expected = data.get("expected_cells")
    if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool) or expected < 0):
        return f"expected_cells is {expected!r}, not a count"
    return ""


def _write(folder: Path, data: dict) -> None:
    atomic_write_bytes(folder / MANIFEST_NAME, json.dumps(data, indent=1, sort_keys=True).encode())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
