"""Whether a file the user pointed at can be read as a results table: the columns every reader needs, a short
reason for an unreadable file, and a Git LFS pointer left where the table should be (each a one-line UserError)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from xaibench.errors import UserError

REQUIRED = ("model", "dataset", "method", "metric", "sample_id", "value", "status")  # what readers need
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"  # the first line of a file Git LFS did not fetch


def checked(frame: pd.DataFrame, path: Path, what: str) -> pd.DataFrame:
    """``frame`` once it has the columns every reader needs (UserError naming ``path``, ``what``: its role)."""
    check_names(frame.columns, path, what)
    return frame


def check_names(columns: Iterable[str], path: Path, what: str) -> None:
    """Raise a UserError naming ``path`` when ``columns`` lack one that every reader needs (``REQUIRED``)."""
    missing = [c for c in REQUIRED if c not in set(columns)]
    if missing:
        raise UserError(f"{what} {path} is not an xaibench results table (lacks columns: {', '.join(missing)})")


def reason(error: Exception) -> str:
    """The first line of an error's message (its type's name when it has none), at most 160 characters."""
    return (str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)[:160]


def is_lfs_pointer(path: Path) -> bool:
    """Whether ``path`` is a Git LFS pointer in place of its file (a checkout without LFS, e.g. CI's default)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(LFS_POINTER)) == LFS_POINTER
    except OSError:
        return False


def refuse_lfs_pointer(path: Path, what: str) -> None:
    """Raise a one-line UserError naming the fix when ``path`` is a Git LFS pointer (``what``: its role)."""
    if is_lfs_pointer(path):
        raise UserError(f"{what} {path} is a Git LFS pointer, not the table: fetch it with git lfs pull (GitHub "
                        "Actions: actions/checkout with lfs: true)")
