"""Bounds on the CLI's own caches (``$XAIBENCH_CACHE``): sweep plans, compositions and remembered checks.

Every config edit, new command line or code edit leaves a new plan (``plans/<digest>.pickle``, about 10 kB per
job: a 10,000-job sweep's plan is ~100 MB) and every code edit a new file of remembered checks
(``verdicts/<code>.txt``); none of the old ones is ever read again once its configs or code changed. So each
folder keeps its most recently used files only: at most ``max_files`` of them and ``max_bytes`` in all, the
newest first (a file's mtime is its last use: loading a cached file touches it). The file just written is always
kept. Temp files of writers that were killed (``.name.<random>.tmp``) go once they are an hour old.

Pruning runs when a file is written (a cold or new plan, new checks), never on a warm rerun. Concurrent
processes may prune the same folder: a file already gone is skipped, and a plan pruned under a reader is only
recomputed (``plan._load`` treats a missing file as not cached).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

PLAN_FILES = 256  # plans and compositions, each (a sweep has one of each per command line and config state)
PLAN_BYTES = 512 * 2**20  # in all: a few 10,000-job plans
VERDICT_FILES = 16  # code versions whose checks are remembered
VERDICT_BYTES = 64 * 2**20
STALE_TEMP_S = 3600.0


def touch(path: Path) -> None:
    """Mark ``path`` as just used (its mtime), so that pruning keeps it; a read-only cache is left as it is."""
    try:
        os.utime(path)
    except OSError:
        pass


def prune(folder: Path, suffix: str, *, max_files: int, max_bytes: int, keep: Path | None = None) -> list[Path]:
    """Delete the least recently used ``*<suffix>`` files of ``folder`` beyond ``max_files`` / ``max_bytes``.

    Args:
        folder: the cache folder (a missing one is fine).
        suffix: the cached files' suffix (``.pickle``, ``.txt``); other files are left alone, except stale temp
            files of this module's writers.
        keep: a file that stays whatever its size or age (the one just written).

    Returns:
        The files deleted.
    """
    from xaibench.engine.store import TEMP_SUFFIX

    entries, removed, now = [], [], time.time()
    try:
        scan = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in scan:
        try:
            stat = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # deleted meanwhile
        if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX):
            if now - stat.st_mtime > STALE_TEMP_S and _unlink(Path(entry.path)):
                removed.append(Path(entry.path))
        elif entry.name.endswith(suffix) and entry.is_file(follow_symlinks=False):
            entries.append((stat.st_mtime_ns, entry.name, stat.st_size, Path(entry.path)))
    files = total = 0
    for _, _, size, path in sorted(entries, reverse=True):  # newest first
        kept = keep is not None and path == keep
        if kept or (files < max_files and total + size <= max_bytes):
            files, total = files + 1, total + size
        elif _unlink(path):
            removed.append(path)
    return removed


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except OSError:  # gone already (another process pruned it), or a read-only cache
        return False
