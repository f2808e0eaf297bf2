"""A folder the user names where a file stands (the path itself, or a folder above it), said as such: "does not
exist" or "not found" sent the user looking for a folder that was a file all along (``collect --store table.parquet``
said the store "does not exist"; ``compare afile/t.parquet ...`` offered to make the baseline there)."""
from __future__ import annotations

import os
from pathlib import Path


def nearest_existing(path: str | os.PathLike[str]) -> Path:
    """``path`` if it exists, else the nearest folder (or file) above it that does (``.`` or ``/`` at the last)."""
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


def file_in_the_way(path: str | os.PathLike[str]) -> Path | None:
    """The file standing where ``path`` or a folder above it should be a folder (``afile`` for ``afile`` and for
    ``afile/sub/t.parquet``), None when there is none (the path is a folder, or the nearest existing one above it)."""
    try:
        existing = nearest_existing(path)
        return existing if existing.exists() and not existing.is_dir() else None
    except OSError:  # a folder that cannot be searched: nothing to say about it here
        return None


def missing_folder(path: str | os.PathLike[str], what: str, kind: str = "folder") -> str:
    """The line for a folder that is not there (``what``: its role, e.g. ``store directory``): ``{what} afile is a
    file, not a {kind}``; ``{what} afile/sub does not exist: afile is a file, not a folder``; or ``{what} PATH does
    not exist``."""
    blocker = file_in_the_way(path)
    if blocker is None:
        return f"{what} {path} does not exist"
    if blocker == Path(path):
        return f"{what} {path} is a file, not a {kind}"
    return f"{what} {path} does not exist: {blocker} is a file, not a folder"


def under_a_file(path: str | os.PathLike[str]) -> str:
    """``": afile is a file, not a folder"`` when a file stands where a folder above ``path`` should be, else ""
    (to end a "not found" line)."""
    blocker = file_in_the_way(path)
    return f": {blocker} is a file, not a folder" if blocker is not None and blocker != Path(path) else ""
