"""Progress inside a long cell (explaining batches, scoring metrics) on stderr, only once it takes a while.

A stage that finishes within ``DELAY_S`` prints nothing (the per-cell line on stdout stays the only output). A
longer one gets a status line from a background thread, even while a single long batch runs (a forest under
KernelSHAP can spend a minute in one call): on a terminal a line redrawn every second, elsewhere (logs, Slurm)
one line every ``LOG_EVERY_S`` seconds. Progress never changes what is computed (the batch size is untouched).

    >>> with Progress("explain kernel_shap", total=32, unit="sample") as progress:
    ...     progress.update(8)
"""
from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

DELAY_S = 3.0
LOG_EVERY_S = 30.0
_enabled = True


def set_enabled(enabled: bool) -> None:
    """Turn progress lines on or off for this process (``progress=false`` in the config turns them off)."""
    global _enabled
    _enabled = bool(enabled)


class Progress:
    """A context manager counting ``done`` of ``total`` units; reports on ``stream`` after ``delay`` seconds."""

    def __init__(self, description: str, total: int, unit: str = "item", *, delay: float | None = None,
                 stream: TextIO | None = None) -> None:
        self.description, self.total, self.unit = description, total, unit
        self.delay = DELAY_S if delay is None else delay
        self.stream = stream or sys.stderr
        self.done = 0
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False

    def __enter__(self) -> "Progress":
        if _enabled:
            self._thread = threading.Thread(target=self._report, name="xaibench-progress", daemon=True)
            self._thread.start()
        return self

    def update(self, n: int = 1) -> None:
        self.done += n

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._shown and self._tty:
            self.stream.write("\r\033[K")  # the per-cell line replaces the status line
            self.stream.flush()

    @property
    def _tty(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self) -> str:
        elapsed = time.perf_counter() - self._started
        return f"  {self.description}: {self.done}/{self.total} {self.unit}s, {elapsed:.0f} s"

    def _report(self) -> None:
        if self._stop.wait(self.delay):
            return
        interval = 1.0 if self._tty else LOG_EVERY_S
        while True:
            self.stream.write(f"\r\033[K{self.line()}" if self._tty else f"{self.line()}\n")
            self.stream.flush()
            self._shown = True
            if self._stop.wait(interval):
                return
