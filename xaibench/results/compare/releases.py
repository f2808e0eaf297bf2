"""Tables written by two xaibench releases: why nothing matched, said in one line.

A release may record a method's, metric's, model's or dataset's parameters with other keys (a parameter added,
renamed or dropped). The match includes the parameters, so a baseline of 0.3.0 against a table of 0.4.0 can pair
no value at all: every unit reads as ``missing`` plus ``new``, a hundred lines that do not say why. This names the
two releases and the parameter keys only one of them records, for the ``nothing compared`` finding.
"""
from __future__ import annotations

import json

import pandas as pd

PARAM_COLUMNS = ("method_params", "params", "model_params", "dataset_params")
SHOWN = 4  # keys named per column


def release_note(baseline: pd.DataFrame, current: pd.DataFrame) -> tuple[str, dict] | None:
    """``(clause, details)`` when the tables' rows were written by different xaibench releases, else None.

    The clause reads ``the baseline's rows were written by xaibench 0.3.0 and the current table's by 0.4.0
    (method_params: legacy_flag only in the baseline)``.
    """
    before, after = _versions(baseline), _versions(current)
    if not before or not after or before == after:
        return None
    keys = _key_changes(baseline, current)
    clause = (f"the baseline's rows were written by xaibench {', '.join(before)} and the current table's by "
              f"{', '.join(after)}" + (f" ({'; '.join(keys)})" if keys else ""))
    return clause, {"xaibench_versions": {"baseline": before, "current": after}, "parameter_keys": keys}


def _versions(frame: pd.DataFrame) -> list[str]:
    if "xaibench_version" not in frame.columns:
        return []
    return sorted({str(v) for v in frame["xaibench_version"].dropna().unique()} - {""})


def _key_changes(baseline: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """``method_params: legacy_flag only in the baseline, n_steps only in the current table`` per column."""
    changes = []
    for column in PARAM_COLUMNS:
        if column not in baseline.columns or column not in current.columns:
            continue
        before, after = _keys(baseline[column]), _keys(current[column])
        parts = [f"{', '.join(sorted(only)[:SHOWN])}{', ...' if len(only) > SHOWN else ''} only in the {side}"
                 for only, side in ((before - after, "baseline"), (after - before, "current table")) if only]
        if parts:
            changes.append(f"{column}: {', '.join(parts)}")
    return changes


def _keys(values: pd.Series) -> set[str]:
    found: set[str] = set()
    for text in values.astype(str).unique():
        try:
            data = json.loads(text or "{}")
        except ValueError:
            continue
        if isinstance(data, dict):
            found |= set(map(str, data))
    return found
