"""Derived tables: per (model, dataset, method, metric) mean, std, n, bootstrap 95% CI, NaN rate and rank."""
from __future__ import annotations

import numpy as np
import pandas as pd

from xaibench.results.groups import comparison_id

GROUP = ["model", "dataset", "method", "metric"]
# Config columns that make two rows with the same names different experiments; seeds are pooled on purpose.
CONFIG = ["model_params", "dataset_params", "method_params", "params", "n_samples", "model_revision",
          "dataset_revision", "target_mode", "explain_output"]


def bootstrap_ci(values: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (Efron & Tibshirani 1993); deterministic for a seed."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return (float("nan"), float("nan"))
    if values.size == 1:
        return (float(values[0]), float(values[0]))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_boot, values.size))].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def summarize(table: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (model, dataset, method, metric); ranks are 1 = best within (model, dataset, metric)."""
    config = [c for c in CONFIG if c in table.columns]
    records = []
    for key, group in table.groupby(GROUP + config, sort=True, dropna=False):
        ok = group.loc[group["status"] == "ok", "value"].to_numpy(dtype=np.float64)
        statuses = group["status"].value_counts()
        low, high = bootstrap_ci(ok, n_boot=n_boot, seed=seed)
        has_samples = group["sample_id"] != ""
        records.append({
            **dict(zip(GROUP + config, key)),
            "n_seeds": int(group["seed"].nunique()) if "seed" in group else 1,
            "family": group["family"].iloc[0],
            "higher_is_better": bool(group["higher_is_better"].iloc[0]),
            "mean": float(ok.mean()) if ok.size else float("nan"),
            "std": float(ok.std(ddof=1)) if ok.size > 1 else float("nan"),
            "n": int(ok.size),
            "ci_low": low,
            "ci_high": high,
            "nan_rate": float(statuses.get("nan", 0)) / max(int(has_samples.sum()), 1),
            "status": _cell_status(statuses),
            "message": next((m for m in group["message"] if m and group["status"].iloc[0] != "ok"), ""),
        })
    summary = pd.DataFrame.from_records(records)
    if summary.empty:
        return summary
    summary["variant"] = _variant_labels(summary, config)
    summary["comparison"] = comparison_id(summary)
    summary["rank"] = _ranks(summary)
    return summary.drop(columns=config)


def _variant_labels(summary: pd.DataFrame, config: list[str]) -> list[str]:
    """Name what differs between rows sharing (model, dataset, method, metric), e.g. ``method.n_steps=64``.

    Empty when a combination was run with one configuration only (the usual case).
    """
    labels = [""] * len(summary)
    for _, group in summary.groupby(GROUP, sort=False):
        if len(group) < 2:
            continue
        flat = {index: _flatten(row, config) for index, row in group.iterrows()}
        keys = sorted({k for values in flat.values() for k in values})
        differing = [k for k in keys if len({repr(values.get(k)) for values in flat.values()}) > 1]
        for index, values in flat.items():
            labels[summary.index.get_loc(index)] = " ".join(f"{k}={values.get(k)}" for k in differing)
    return labels


def _flatten(row: pd.Series, config: list[str]) -> dict:
    import json

    prefixes = {"model_params": "model.", "dataset_params": "dataset.", "method_params": "method.", "params": "metric."}
    out = {}
    for column in config:
        if column in prefixes:
            for k, v in json.loads(row[column] or "{}").items():
                out[prefixes[column] + k] = v
        else:
            out[column] = row[column]
    return out


def _cell_status(statuses: pd.Series) -> str:
    for status in ("error", "not_applicable"):
        if statuses.get(status, 0):
            return status
    return "ok"


def _ranks(summary: pd.DataFrame) -> pd.Series:
    """Rank (1 = best) of the mean within its comparison group, following the metric's declared direction."""
    signed = summary["mean"].where(~summary["higher_is_better"], -summary["mean"])
    return signed.groupby(summary["comparison"]).rank(method="min").astype("Int64")
