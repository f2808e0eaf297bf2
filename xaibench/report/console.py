"""Readable plain-text tables for the terminal."""
from __future__ import annotations

import math

import pandas as pd


def format_summary(summary: pd.DataFrame) -> str:
    """One line per (dataset, model, method); one column per metric with ``mean [ci_low, ci_high]`` and rank."""
    if summary.empty:
        return "(no results)"
    frame = summary.copy()
    frame["cell"] = [_cell_text(row) for row in frame.itertuples()]
    arrows = {m: ("↑" if hib else "↓") for m, hib in zip(frame["metric"], frame["higher_is_better"])}
    wide = frame.pivot_table(index=["dataset", "model", "method"], columns="metric", values="cell", aggfunc="first")
    wide.columns = [f"{m} {arrows[m]}" for m in wide.columns]
    wide = wide.fillna("-")
    return wide.to_string()


def _cell_text(row) -> str:
    if row.status == "not_applicable":
        return "n/a"
    if row.status == "error" and row.n == 0:
        return "ERROR"
    if math.isnan(row.mean):
        return "nan"
    text = f"{row.mean:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}] #{row.rank}"
    if row.nan_rate > 0:
        text += f" nan={row.nan_rate:.0%}"
    return text
