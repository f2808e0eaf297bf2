"""Fault-injection helpers: a small tmpfs (full or read-only) where the test can mount one, filling a disk."""
from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd

from xaibench.results.schema import RESULT_COLUMNS, ROW_KEY


@contextmanager
def tmpfs(path: Path, size: str = "1m", read_only: bool = False) -> Iterator[bool]:
    """Mount a tmpfs of ``size`` at ``path``; yields False (mounting nothing) where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], capture_output=True)
            if os.path.ismount(path):
                subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(folder: Path, leave_bytes: int = 0) -> Path:
    """Fill the filesystem of ``folder`` with one file until ENOSPC, then give back ``leave_bytes``."""
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    if leave_bytes:
        os.truncate(filler, max(0, filler.stat().st_size - leave_bytes))
    return filler


def results(table: pd.DataFrame) -> pd.DataFrame:
    """The result columns in row-key order (what must be identical across runs and launchers)."""
    return table[list(RESULT_COLUMNS)].sort_values(ROW_KEY).reset_index(drop=True)
