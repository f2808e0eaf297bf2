"""Write a figure as PNG and PDF atomically (temp file + rename), so a crash never leaves half a file.

The bytes depend on the figure only: matplotlib stamps a PDF with the time it was written (``CreationDate``), so a
report rerun on the same table changed every PDF; the stamp is left out, as the PNGs never carried one.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

from matplotlib.figure import Figure

from xaibench.engine.store import atomic_write_bytes

FORMATS = ("png", "pdf")
DPI = 300
# Per format, metadata that would make two saves of one figure differ (None: left out of the file).
_NO_CLOCK = {"pdf": {"CreationDate": None}}


def save_figure(figure: Figure, stem: str | os.PathLike[str], formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Save ``figure`` as ``<stem>.<format>`` for each format (300 dpi PNG, vector PDF, both without a time
    stamp: a rerun writes the same bytes); returns the paths."""
    paths = []
    for fmt in formats:
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt, dpi=DPI, bbox_inches="tight", pad_inches=0.02,
                       metadata=_NO_CLOCK.get(fmt))
        path = Path(f"{stem}.{fmt}")
        atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    return paths
