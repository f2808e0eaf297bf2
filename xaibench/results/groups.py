"""Comparison groups: which rows are competitors and which belong to different experiments.

Methods are compared (ranked, tested) only within one **comparison group**: the same model *and* its parameters
and weights revision, the same dataset *and* its parameters and content revision, the same metric *and* its
parameters, the same sample count, target mode and explained output. Within a group, a **competitor** is a method
*with* its parameters (``integrated_gradients`` with ``n_steps=32`` and with ``n_steps=64`` are two competitors). Seeds are
replicates of one competitor, not separate competitors. Ranks, statistics, reports and ``compare`` all use these
definitions, so two CSV datasets or two variants of a model are never ranked against each other.
"""
from __future__ import annotations

import hashlib

import pandas as pd

# Row columns that together identify one experiment in which methods compete (those a table has are used).
COMPARISON_COLUMNS = ["model", "model_params", "model_revision", "dataset", "dataset_params", "dataset_revision",
                      "metric", "params", "n_samples", "target_mode", "explain_output"]
# Row columns that identify one competitor within a comparison group.
COMPETITOR_COLUMNS = ["method", "method_params"]


def comparison_columns(frame: pd.DataFrame) -> list[str]:
    """The comparison-group columns present in ``frame`` (older or hand-made tables may lack some)."""
    return [c for c in COMPARISON_COLUMNS if c in frame.columns]


def competitor_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in COMPETITOR_COLUMNS if c in frame.columns]


def comparison_id(frame: pd.DataFrame) -> pd.Series:
    """A short stable id per row naming its comparison group (the same id for the same group in any table)."""
    columns = comparison_columns(frame)
    joined = frame[columns].astype(str).agg("\x1f".join, axis=1) if columns else pd.Series("", index=frame.index)
    return joined.map(lambda text: hashlib.sha256(text.encode()).hexdigest()[:12]).astype("string")
