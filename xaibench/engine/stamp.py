"""Writer-specific row values: kept out of the shared ``cells`` artefact, filled in by each run that reads it.

A cell artefact in the store is shared by every sweep that runs the cell, so it must hold the same bytes whoever
wrote it. The values below describe the run that wrote the rows, not the result; each run stamps its own.
``device`` is not among them: scored rows record where their score stage was computed (a reused stage keeps its
own device). Importable without torch: a fully cached sweep stamps stored rows without loading it.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from xaibench.results.roles import record_builtin_roles
from xaibench.results.schema import conform

Text = str | Sequence[str]  # one value for every row, or one per row
WRITER_COLUMNS = ("sweep_id", "peak_mem_mb", "created_at", "model_label", "dataset_label")


def shared_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without writer-specific values, as stored in the ``cells`` artefact."""
    shared = frame.copy()
    for column in ("sweep_id", "model_label", "dataset_label"):  # display names are not in the key: each run stamps
        shared[column] = pd.array([""] * len(shared), dtype="string")  # its own (typed: conform has no cast to do)
    shared["peak_mem_mb"] = np.nan
    unscored = shared["sample_id"] == ""
    shared.loc[unscored, "created_at"] = ""  # scored rows keep their score stage's time
    shared.loc[unscored, "device"] = ""  # nothing was computed for these rows on a particular device
    return conform(shared)


def stamp_rows(frame: pd.DataFrame, *, sweep_id: Text, device: Text, model_label: Text, dataset_label: Text,
               ran: bool = True) -> pd.DataFrame:
    """Fill ``WRITER_COLUMNS`` for this run (and ``device`` where no stage recorded one; ``""`` on
    ``not_applicable`` rows, for which nothing was computed).

    Each text value is one string for every row, or one per row (``(len(frame),)``: several stored cells stamped
    in one call, as a warm sweep does; ``ran`` must then be False).
    """
    out = frame.copy()
    record_builtin_roles(out)  # a cell stored before rows recorded roles: its controls' role
    for column, value in (("sweep_id", sweep_id), ("model_label", model_label), ("dataset_label", dataset_label)):
        out[column] = pd.array(_per_row(value, len(out)), dtype="string")  # the schema's dtype: no cast left to do
    applicable = ran and not (out["status"] == "not_applicable").all()
    out["peak_mem_mb"] = peak_memory_mb(str(device)) if applicable else np.nan
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out.loc[out["created_at"].isna() | (out["created_at"] == ""), "created_at"] = now
    idle = (out["status"] == "not_applicable").to_numpy()
    out.loc[idle, "device"] = ""  # nothing ran for them, on any device (the same cold, warm, with device=auto)
    blank = ((out["device"].isna() | (out["device"] == "")).to_numpy()) & ~idle
    if blank.any():
        out.loc[blank, "device"] = device if isinstance(device, str) else np.asarray(device, dtype=object)[blank]
    return conform(out)


def _per_row(value: Text, n: int) -> list[str]:
    return [value] * n if isinstance(value, str) else list(value)


def peak_memory_mb(device: str) -> float:
    """Peak memory of this process: the CUDA allocator's peak on the cell's GPU (``cuda:1`` is asked about GPU 1,
    not the current device, which a device-slot job never changes), the max RSS on CPU (no torch import)."""
    if device.startswith("cuda") and "torch" in sys.modules:
        import torch

        return torch.cuda.max_memory_allocated(torch.device(device)) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
