"""Variant labels: what differs between summary rows sharing (model, dataset, method, metric), e.g.
``method.n_steps=64``, from their parameter columns."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from xaibench.results.aggregate.columns import GROUP


def variant_labels(summary: pd.DataFrame, config: list[str]) -> list[str]:
    """Name what differs between rows sharing (model, dataset, method, metric), e.g. ``method.n_steps=64``.

    Empty when a combination was run with one configuration only (the usual case).
    """
    labels = [""] * len(summary)
    shared = np.flatnonzero(summary.duplicated(GROUP, keep=False).to_numpy())
    if not shared.size:
        return labels
    rows = summary.iloc[shared]
    groups = rows.groupby(GROUP, sort=False).ngroup().to_numpy()
    columns = [rows[c].to_numpy(dtype=object) for c in config]
    parsed: dict[str, dict] = {}  # the same parameter JSON recurs on many rows: parse it once
    order = np.argsort(groups, kind="stable")
    for members in np.split(order, np.flatnonzero(np.diff(groups[order])) + 1):  # one group's rows at a time
        values = [_flatten(tuple(column[i] for column in columns), config, parsed) for i in members]
        keys = sorted({k for row in values for k in row})
        differing = [k for k in keys if len({repr(row.get(k)) for row in values}) > 1]
        for i, row in zip(members, values):
            labels[shared[i]] = " ".join(f"{k}={row.get(k)}" for k in differing)
    return labels


def _flatten(values: tuple, config: list[str], parsed: dict[str, dict]) -> dict:
    prefixes = {"model_params": "model.", "dataset_params": "dataset.", "method_params": "method.", "params": "metric."}
    out = {}
    for column, value in zip(config, values):
        if column in prefixes:
            text = value or "{}"
            if text not in parsed:
                parsed[text] = json.loads(text)
            for k, v in parsed[text].items():
                out[prefixes[column] + k] = v
        else:
            out[column] = value
    return out
