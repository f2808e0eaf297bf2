"""Float columns of a streamed summary's rows (CI bounds, ranks) kept in an anonymous temporary file, not in memory.

``aggregate.Summarizer.finish`` computes every row's ``ci_low``/``ci_high`` (bootstrap blocks of one shape, rows
scattered over the summary) and ``rank`` (one batch of complete settings at a time) and writes them here;
``SummaryPieces`` reads each piece's slice back. Held in memory they were 24 bytes per summary row plus the arrays
they were gathered from (120,000 rows at 10,000 cells): state that grew with the cells.
"""
from __future__ import annotations

import tempfile

import numpy as np

__all__ = ["RowColumns"]

WINDOW = 8192  # rows read, updated and written back at a time by ``scatter`` (64 KB)


class RowColumns:
    """``len(names)`` float64 columns of ``n_rows`` rows each, NaN until written, in a temporary file: column
    ``c`` occupies bytes ``[c * n_rows * 8, (c + 1) * n_rows * 8)``. ``close()`` deletes the file."""

    def __init__(self, names: list[str], n_rows: int) -> None:
        self.n_rows = n_rows
        self.index = {name: position for position, name in enumerate(names)}
        self.file = tempfile.TemporaryFile(prefix="xaibench-summary-columns-")
        total = n_rows * len(names)
        blank = np.full(min(total, WINDOW), np.nan).tobytes()
        for start in range(0, total, WINDOW):
            self.file.write(blank[:8 * min(WINDOW, total - start)])

    def write(self, name: str, start: int, values: np.ndarray) -> None:
        """Rows ``start .. start + len(values) - 1`` of column ``name``."""
        self.file.seek(self._offset(name, start))
        self.file.write(np.ascontiguousarray(values, dtype=np.float64).tobytes())

    def scatter(self, name: str, rows: np.ndarray, values: np.ndarray) -> None:
        """``column[rows] = values`` (distinct rows in any order), ``WINDOW`` rows of the file at a time."""
        order = np.argsort(rows, kind="stable")
        rows, values = rows[order], np.asarray(values, dtype=np.float64)[order]
        windows = rows // WINDOW
        for cut in np.split(np.arange(rows.size), np.flatnonzero(np.diff(windows)) + 1):
            if not cut.size:
                continue
            start = int(windows[cut[0]]) * WINDOW
            window = self.read(name, start, min(start + WINDOW, self.n_rows))
            window[rows[cut] - start] = values[cut]
            self.write(name, start, window)

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start .. stop - 1`` of column ``name`` (a new writable array)."""
        self.file.seek(self._offset(name, start))
        out = np.empty(max(stop - start, 0), dtype=np.float64)
        self.file.readinto(memoryview(out).cast("B"))
        return out

    def close(self) -> None:
        self.file.close()

    def _offset(self, name: str, row: int) -> int:
        return (self.index[name] * self.n_rows + row) * 8
