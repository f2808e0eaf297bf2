"""Write a figure as PNG and PDF atomically (temp file + rename), so a crash never leaves half a file."""
from __future__ import annotations

import io
import os
from pathlib import Path

from matplotlib.figure import Figure

from xaibench.engine.store import atomic_write_bytes

FORMATS = ("png", "pdf")
DPI = 300


def save_figure(figure: Figure, stem: str | os.PathLike[str], formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Save ``figure`` as ``<stem>.<format>`` for each format (300 dpi PNG, vector PDF); returns the paths."""
    paths = []
    for fmt in formats:
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt, dpi=DPI, bbox_inches="tight", pad_inches=0.02)
        path = Path(f"{stem}.{fmt}")
        atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    return paths
