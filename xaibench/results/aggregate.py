"""Derived tables: per (model, dataset, method, metric) mean, std, n, bootstrap 95% CI, NaN rate and rank."""
from __future__ import annotations

import numpy as np
import pandas as pd

GROUP = ["model", "dataset", "method", "metric"]


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
    records = []
    for key, group in table.groupby(GROUP, sort=True, dropna=False):
        ok = group.loc[group["status"] == "ok", "value"].to_numpy(dtype=np.float64)
        statuses = group["status"].value_counts()
        low, high = bootstrap_ci(ok, n_boot=n_boot, seed=seed)
        has_samples = group["sample_id"] != ""
        records.append({
            **dict(zip(GROUP, key)),
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
    summary["rank"] = _ranks(summary)
    return summary


def _cell_status(statuses: pd.Series) -> str:
    for status in ("error", "not_applicable"):
        if statuses.get(status, 0):
            return status
    return "ok"


def _ranks(summary: pd.DataFrame) -> pd.Series:
    """Dense rank of the mean within (model, dataset, metric), respecting each metric's declared direction."""
    signed = summary["mean"].where(~summary["higher_is_better"], -summary["mean"])
    return signed.groupby([summary["model"], summary["dataset"], summary["metric"]]).rank(method="min").astype("Int64")
