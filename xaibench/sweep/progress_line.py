"""The line a job prints for its cell: what ran, how long, cached or computed, and why a cell was skipped."""
from __future__ import annotations

import json

import pandas as pd

from xaibench.engine.cell import CellSpec
from xaibench.engine.cell_result import CellResult


def _progress_line(cell: CellSpec, result: CellResult, label: str) -> str:
    rows = result.rows
    scored = rows[rows["sample_id"] != ""]
    detail = f"{rows['metric'].nunique()} metrics x {scored['sample_id'].nunique()} samples"
    if result.status != "ok":
        messages = rows.loc[rows["status"] == result.status, "message"]
        detail = _brief(next((m for m in messages if m), ""))
    accuracy, flag = rows["model_accuracy"].iloc[0], rows["model_flag"].iloc[0]
    if flag == "underfit":
        detail += f"  [model underfit: {_underfit_reason(rows, accuracy)}]"
    prefix = f"[{label}] " if label else ""
    return (f"{prefix}{cell.model_label} x {cell.dataset_label} x {_method_label(cell, rows)} (seed {cell.seed}): "
            f"{result.status:<14} {result.seconds:6.2f}s {_source(result)}; {detail}")  # "; ": "2 cached; 3 metrics"


LINE_REASON_CHARS = 400  # a not_applicable reason is one sentence, up to ~350 characters with its fix


def _brief(message: str) -> str:
    """A row's message for the per-cell line: its first line, whole up to ``LINE_REASON_CHARS``, else cut at a word
    with `` ...`` (the rows keep all of it). A cut at 120 characters hid why a method was not applicable and its fix
    (``... but this``), and the console's summary shows only ``n/a``."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    if len(first) <= LINE_REASON_CHARS:
        return first
    return first[:LINE_REASON_CHARS].rsplit(" ", 1)[0] + " ... (the rows' message holds all of it)"


def _method_label(cell: CellSpec, rows: pd.DataFrame) -> str:
    """The method as the report and summary label it (``results/groups.competitor_labels``): with the parameters
    that differ from its shipped config, so ``method=variant/gradient`` is ``saliency (abs=False)``, not a second
    ``saliency`` line beside the shipped one."""
    from xaibench.results.groups import competitor_labels

    if rows.empty or "method_params" not in rows.columns:
        return cell.method_name
    return str(competitor_labels(rows.iloc[:1]).iloc[0])


def _underfit_reason(rows: pd.DataFrame, accuracy: float) -> str:
    """Which bound an underfit model missed (``TrainedModel.underfit_reason``): its ``min_accuracy`` (read from the
    rows' model parameters; shipped configs all set it) or else the test split's majority-class rate."""
    minimum = json.loads(rows["model_params"].iloc[0] or "{}").get("min_accuracy")
    if minimum is not None and accuracy < float(minimum):
        return f"test accuracy {accuracy:.2f} below its min_accuracy {float(minimum):.2f}"
    return f"test accuracy {accuracy:.2f} not above the majority-class rate (a constant prediction scores as much)"


def _source(result: CellResult) -> str:
    """What the cell computed: ``computed 1 new metric, 2 cached``, ``cached`` (whole cell) or ``skipped``."""
    if result.status == "not_applicable":
        return "skipped"
    if result.cached:
        return "cached"
    new, reused = result.metrics_computed, result.metrics_cached
    if new == 0 and reused == 0:
        return "computed"  # nothing scored (an error before scoring)
    text = f"computed {new} new metric{'s' if new != 1 else ''}"
    return text + (f", {reused} cached" if reused else "")
