"""Inter-process file locks (``flock``) that are re-entrant within a process and safe to garbage-collect.

The OS releases an ``flock`` when its holder dies, so a killed job never leaves a lock held. A lock file may be
deleted by ``xaibench store gc`` while nobody holds it; a waiter that then acquires the deleted file notices that
the path now names another file (or none) and retries, so two processes never both believe they hold a key.
Lock files are created with the process umask (never 0600), so every user of a shared store can take them.
"""
from __future__ import annotations

import errno
import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class LockHeld(Exception):
    """A non-blocking acquisition found the lock held by another process (or thread)."""


_MUTEX = threading.Lock()
_GUARDS: dict[str, threading.RLock] = {}  # path -> in-process lock (flock does not exclude threads of one process)
_HELD: dict[str, list[int]] = {}  # path -> [fd, depth] for the locks this process holds


def _forget_after_fork() -> None:
    # A forked child inherits the parent's descriptors; it must not believe it holds the parent's locks.
    _HELD.clear()
    _GUARDS.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def _guard(key: str) -> threading.RLock:
    with _MUTEX:
        return _GUARDS.setdefault(key, threading.RLock())


def _open_locked(path: Path, blocking: bool) -> int:
    """Open ``path`` (creating it) and ``flock`` it; retry if the file was replaced or removed meanwhile."""
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise LockHeld(str(path)) from None
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # gc removed the file we waited on: lock the current one instead


@contextmanager
def file_lock(path: str | os.PathLike[str], *, blocking: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the ``with`` block (re-entrant in the holding thread).

    Raises:
        LockHeld: ``blocking=False`` and another process or thread holds it.
    """
    key = os.path.abspath(path)
    guard = _guard(key)
    if not guard.acquire(blocking=blocking):
        raise LockHeld(key)
    try:
        entry = _HELD.get(key)
        if entry is None:
            entry = _HELD[key] = [_open_locked(Path(key), blocking), 0]
        entry[1] += 1
        try:
            yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del _HELD[key]
                os.close(entry[0])  # closing the only descriptor releases the flock
    finally:
        guard.release()


def remove_if_free(path: Path) -> bool:
    """Delete a lock file that nobody holds (``store gc``); True if it was removed."""
    try:
        with file_lock(path, blocking=False):
            path.unlink(missing_ok=True)
        return True
    except LockHeld:
        return False


def is_free(path: Path) -> bool:
    """Whether nobody holds the lock file ``path`` now (``store gc --dry-run``: what gc would remove); the file is
    neither created nor changed."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # lets the lock go


def current_umask() -> int:
    """The process umask, read without changing it (Linux ``/proc``), else by the set-and-restore dance."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
