"""Readable plain-text tables for the terminal."""
from __future__ import annotations

import math
from collections import namedtuple
from itertools import repeat

import pandas as pd


MAX_WIDE = 6  # more metrics than this print one line per metric instead of one column each
_Cell = namedtuple("_Cell", ["status", "n", "mean", "ci_low", "ci_high", "rank", "nan_rate", "n_seeds"])


def format_summary(summary: pd.DataFrame) -> str:
    """One line per (dataset, model, method); one column per metric with ``mean [ci_low, ci_high]`` and rank.

    Datasets and models show their display names; each model shows its test accuracy and ``UNDERFIT`` when
    flagged; metrics on which a control method ranks first get a warning line below the table.
    """
    if summary.empty:
        return "(no results)"
    from xaibench.results.statistics import control_warnings

    table = _format_table(summary)
    warnings = control_warnings(summary) if "competitor" in summary else []
    return "\n".join([table, *warnings])


def model_text(label: str, accuracy: float, flag: str) -> str:
    """``mlp (acc 0.97)``, ``cnn (acc 0.10, UNDERFIT)``; the bare label when the accuracy is unknown."""
    if accuracy is None or (isinstance(accuracy, float) and math.isnan(accuracy)):
        return f"{label} (UNDERFIT)" if flag == "underfit" else label
    return f"{label} (acc {accuracy:.2f}{', UNDERFIT' if flag == 'underfit' else ''})"


def _format_table(summary: pd.DataFrame) -> str:
    frame = summary.copy()
    columns = [frame[c] if c in frame or c != "n_seeds" else repeat(1) for c in _Cell._fields]
    frame["cell"] = [_cell_text(_Cell(*values)) for values in zip(*columns)]  # not itertuples: every column
    arrows = {m: ("↑" if hib else "↓") for m, hib in zip(frame["metric"], frame["higher_is_better"])}
    frame["dataset"] = frame.get("dataset_label", frame["dataset"])
    if "model_accuracy" in frame:
        labels = frame.get("model_label", frame["model"])
        frame["model"] = [model_text(*v) for v in zip(labels, frame["model_accuracy"], frame["model_flag"])]
    index = ["dataset", "model", "method"]
    if "variant" in frame and (frame["variant"] != "").any():
        index.append("variant")
    if frame["metric"].nunique() > MAX_WIDE:  # e.g. metrics=full: one line per metric stays readable
        frame["metric"] = [f"{m} {arrows[m]}" for m in frame["metric"]]
        tall = frame.sort_values(index + ["family", "metric"]).set_index(index + ["family", "metric"])["cell"]
        return tall.rename("mean [95% CI] #rank").to_frame().to_string()
    wide = frame.pivot_table(index=index, columns="metric", values="cell", aggfunc="first")
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
    mean, low, high = number_texts(row.mean, row.ci_low, row.ci_high)
    interval = f"[no CI: n={row.n}]" if math.isnan(row.ci_low) else f"[{low}, {high}]"
    text = f"{mean} {interval} #{row.rank}"
    if row.nan_rate > 0:
        text += f" nan={row.nan_rate:.0%}"
    if row.n_seeds > 1:
        text += f" seeds={row.n_seeds}"
    return text


def number_texts(*values: float) -> list[str]:
    """Three decimals (``0.412``), or three significant digits for all ``values`` when every finite one is below
    0.01 in magnitude and one is nonzero (``0.000123``, ``2.5e-06``): small scores such as a squared error stay
    readable instead of printing as ``0.000``."""
    finite = [abs(v) for v in values if not math.isnan(v) and not math.isinf(v)]
    small = bool(finite) and max(finite) < 0.01 and max(finite) > 0
    return [f"{v:.3g}" if small else f"{v:.3f}" for v in values]
