"""The results table: one long-format schema with a version number (design.md: The results table).

One row per model x dataset x method x metric x sample x seed. A cell that errors, or a combination that does
not apply, still produces one row per metric (``sample_id=""``, ``value=NaN``) with its status and message.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

SCHEMA_VERSION = 4

# name -> pandas dtype. Order is the column order on disk.
COLUMNS: dict[str, str] = {
    "schema_version": "int64",
    "sweep_id": "string",
    "cell_key": "string",
    "model": "string",
    "dataset": "string",
    "method": "string",
    "metric": "string",
    "family": "string",
    "higher_is_better": "bool",
    "sample_id": "string",
    "target": "int64",
    "seed": "int64",
    "value": "float64",
    "status": "string",
    "message": "string",
    "explain_s": "float64",
    "score_s": "float64",
    "n_forward": "float64",
    "peak_mem_mb": "float64",
    "device": "string",
    "params": "string",
    "method_params": "string",
    "model_params": "string",
    "dataset_params": "string",
    "n_samples": "int64",
    "dataset_revision": "string",
    "model_revision": "string",
    "model_accuracy": "float64",
    "model_flag": "string",
    "xaibench_version": "string",
    "torch_version": "string",
    "captum_version": "string",
    "quantus_version": "string",
    "git_sha": "string",
    "created_at": "string",
    "target_mode": "string",  # config `target`: predicted | label (which class `target` holds)
    "explain_output": "string",  # config `explain_output`: log_softmax | logit | probability (explainers/output.py)
    # v2 (byo): display names from ``model.label`` / ``dataset.label`` (default: the registry name); not in keys
    "model_label": "string",
    "dataset_label": "string",
    # Store key of the cell's explanation stage ("" when nothing was explained): xaibench.explanations() reads it.
    "explanation_key": "string",
    # v3: where the explanation stage was computed ("" when nothing was explained, or for attributions the caller
    # passed in); ``device`` is where the score stage was. A reused stage keeps its own device.
    "explain_device": "string",
    # v4: where the model stage's weights were made (``cpu``: the suite trains on the CPU, see docs/speed.md: GPU);
    # "" when the suite did not train the model (pre-fitted weights or estimator, ``xaibench.evaluate``), for rows
    # of a cell that ran nothing, and for checkpoints cached before v4. A reused checkpoint keeps its own device.
    "model_device": "string",
    # v4: batches and chunks halved after CUDA out-of-memory while computing the row (its explanation stage's
    # batches plus its score stage's forward chunks and re-explanations; ``engine/oom.py``). 0 on a CPU. A note on
    # the run, not a parameter: v3 wrote it into ``params`` as ``chunk_backoffs``, splitting comparison groups.
    "oom_backoffs": "int64",
}

# Columns that measure the run rather than the result: excluded when comparing tables for determinism.
MEASUREMENT_COLUMNS = ("explain_s", "score_s", "peak_mem_mb", "created_at", "device", "explain_device",
                       "model_device", "oom_backoffs")
PROVENANCE_COLUMNS = ("xaibench_version", "torch_version", "captum_version", "quantus_version", "git_sha", "sweep_id")
# Display names chosen by the run (``model.label``/``dataset.label``): never part of a result or a key.
DISPLAY_COLUMNS = ("model_label", "dataset_label")
RESULT_COLUMNS = tuple(c for c in COLUMNS if c not in MEASUREMENT_COLUMNS + PROVENANCE_COLUMNS + DISPLAY_COLUMNS)
SORT_COLUMNS = ["model", "dataset", "method", "seed", "metric", "sample_id"]
# Measurement columns (MEASUREMENT_COLUMNS) each version added, and nothing else: a table of the version before
# holds the same results, so ``compare`` reads it as this version's (``upgrade``). Versions before the first
# listed step changed more than measurements and must be regenerated.
MEASUREMENTS_ADDED: dict[int, tuple[str, ...]] = {4: ("model_device", "oom_backoffs")}
ROW_KEY = ["cell_key", "metric", "sample_id"]


def oldest_comparable_version() -> int:
    """The oldest schema version whose tables differ from this version's by added measurement columns alone."""
    version = SCHEMA_VERSION
    while version in MEASUREMENTS_ADDED:
        version -= 1
    return version


def upgrade(frame: pd.DataFrame, version: int) -> pd.DataFrame:
    """A table of schema ``version`` (at least ``oldest_comparable_version()``) with the measurement columns added
    since filled as unknown (``""``, NaN; counts 0: ``oom_backoffs`` of v3 lived in ``params``, which ``compare``
    strips), ready for ``conform``; its ``schema_version`` stays as written."""
    added = [c for v in range(version + 1, SCHEMA_VERSION + 1) for c in MEASUREMENTS_ADDED.get(v, ())
             if c not in frame.columns]
    if not added:
        return frame
    unknown = {"string": "", "int64": 0}
    return frame.assign(**{c: unknown.get(COLUMNS[c], np.nan) for c in added})


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with exactly the schema's columns, in order, with the schema's dtypes."""
    if is_conformed(frame):  # e.g. a stored cell being stamped: skip 40 no-op casts (~5 ms a frame)
        return frame.copy()
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"results frame lacks columns: {', '.join(missing)}")
    out = frame[list(COLUMNS)].copy()
    for column, dtype in COLUMNS.items():
        out[column] = out[column].astype(dtype)
    return out


def frame_of(columns: Mapping[str, Any], n: int) -> pd.DataFrame:
    """A conformed frame of ``n`` rows made directly in the schema's dtypes: what ``conform`` gives for the object
    frame of the same values, about 7x faster. Each value is one per row (a list or array of ``n``) or one for
    every row (a scalar)."""
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"results frame lacks columns: {', '.join(missing)}")
    data = {}
    for column, dtype in COLUMNS.items():
        value = columns[column]
        values = list(value) if isinstance(value, (list, tuple, np.ndarray, pd.Series)) else [value] * n
        data[column] = pd.array(values, dtype=dtype) if dtype == "string" else np.asarray(values, dtype=dtype)
    return pd.DataFrame(data, index=pd.RangeIndex(n))


def is_conformed(frame: pd.DataFrame) -> bool:
    """True if ``frame`` has exactly the schema's columns, in order, with the schema's dtypes (``"string"`` must be
    the very StringDtype ``conform`` makes: same storage and NA value, not merely equal to the name)."""
    return list(frame.columns) == list(COLUMNS) and all(a == b for a, b in zip(frame.dtypes, _dtypes()))


@lru_cache(maxsize=1)
def _dtypes() -> tuple:
    return tuple(pd.Series(dtype=dtype).dtype for dtype in COLUMNS.values())


def sort_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(SORT_COLUMNS, kind="mergesort").reset_index(drop=True)


def empty_table() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in COLUMNS.items()})
