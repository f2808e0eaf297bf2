"""What running (or loading) one cell gives back; importable without torch (a fully cached sweep never loads it)."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class CellResult:
    """The cell's rows, whether they came from the store, and the seconds it took."""

    key: str
    rows: pd.DataFrame
    cached: bool
    seconds: float
    metrics_computed: int = 0  # score stages computed now (the rest of an uncached cell came from the store)
    metrics_cached: int = 0
    parquet: bytes | None = field(default=None, repr=False)  # ``rows`` as the cell file's bytes, when already made

    @property
    def status(self) -> str:
        statuses = set(self.rows["status"])
        if "error" in statuses:
            return "error"
        if statuses == {"not_applicable"}:
            return "not_applicable"
        return "ok"
