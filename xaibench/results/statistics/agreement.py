"""Agreement of metrics: Kendall's tau between the competitor rankings two metrics induce in the same setting,
averaged over settings (metrics disagreeing is a known open problem: Tomsett et al. 2020)."""
from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pandas as pd

from xaibench.results.groups import setting_id
from xaibench.results.statistics.ranks import goodness, tied_goodness


def metric_agreement(summary: pd.DataFrame, *, min_competitors: int = 3) -> pd.DataFrame:
    """Kendall's tau-b between the competitor rankings of every two metrics, averaged over settings.

    A setting is one model and dataset with its parameters (:func:`setting_id`): the same competitors scored by
    several metrics. Settings where two metrics share fewer than ``min_competitors`` scored competitors or a
    metric ties every competitor are skipped for that pair.

    Returns:
        Square DataFrame (index/columns = metrics, ordered by family then name; NaN where no setting allows a
        comparison). ``.attrs["family"]`` maps metric -> family, ``.attrs["n_settings"]`` is a matching DataFrame
        of how many settings each tau averages.
    """
    rows = summary[goodness(summary).notna()]
    families = rows.drop_duplicates("metric").set_index("metric")["family"].astype(str)
    metrics = sorted(families.index, key=lambda m: (families[m], m))
    taus = {(a, b): [] for a in metrics for b in metrics}
    # the summary's own ``setting`` (made from the rows' every comparison column); recomputing it from the summary's
    # columns merged settings that differ only in parameters or revisions, and the first of them stood for all
    setting = rows["setting"] if "setting" in rows.columns else setting_id(rows)
    frame = pd.DataFrame({"setting": setting, "metric": rows["metric"], "method": rows["competitor"],
                          "g": tied_goodness(rows)})
    for a, b, tau in _setting_taus(frame, min_competitors):
        taus[(a, b)].append(tau)
        taus[(b, a)].append(tau)
    matrix = pd.DataFrame({b: [np.mean(taus[(a, b)]) if taus[(a, b)] else np.nan for a in metrics] for b in metrics},
                          index=metrics)
    counts = pd.DataFrame({b: [len(taus[(a, b)]) for a in metrics] for b in metrics}, index=metrics)
    for m in metrics:
        matrix.loc[m, m], counts.loc[m, m] = 1.0, 0
    matrix.index.name = matrix.columns.name = "metric"
    matrix.attrs["family"] = families.to_dict()
    matrix.attrs["n_settings"] = counts
    return matrix


def _setting_taus(frame: pd.DataFrame, min_competitors: int) -> Iterator[tuple[str, str, np.float64]]:
    """``(a, b, tau)`` for each setting (sorted) and metric pair ``a < b`` of it whose competitors' goodness ``g``
    (the first row of each competitor and metric, as ``pivot_table(aggfunc="first")`` takes it) both metrics give
    at least ``min_competitors`` competitors: scipy's Kendall tau-b of those, bit for bit, where it is finite.

    scipy's ``kendalltau`` per pair (about 19,000 calls at 10,000 cells, 28 CPU-s with the pandas around them) is
    replaced by exact integer counts for all pairs of a setting at once: ``con - dis`` is the sum over competitor
    pairs of the product of the two metrics' comparison signs, the ties are the pairs a metric gives equal
    values; tau-b is then scipy's ``(con - dis) / sqrt(tot - xtie) / sqrt(tot - ytie)`` in the same float
    operations, clipped to [-1, 1], and NaN (skipped) where a metric ties every pair.
    """
    frame = frame.dropna(subset=["setting", "metric", "method", "g"])  # what groupby and pivot_table leave out
    frame = frame.drop_duplicates(["setting", "metric", "method"], keep="first")
    settings, setting_names = pd.factorize(frame["setting"], sort=True)
    metric_codes, metric_index = pd.factorize(frame["metric"], sort=True)
    metric_names = [str(name) for name in metric_index]
    method_codes = pd.factorize(frame["method"], sort=True)[0]
    values = frame["g"].to_numpy(dtype=np.float64)
    order = np.argsort(settings, kind="stable")
    bounds = np.searchsorted(settings[order], np.arange(len(setting_names) + 1))
    first, second = np.triu_indices(len(metric_names), 1)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        rows = order[start:stop]
        methods, local = np.unique(method_codes[rows], return_inverse=True)
        wide = np.full((len(metric_names), len(methods)), np.nan)
        wide[metric_codes[rows], local] = values[rows]
        present = ~np.isnan(wide)  # (metrics, competitors)
        upper = np.triu(np.ones((len(methods), len(methods)), dtype=bool), 1)
        signs = ((wide[:, :, None] > wide[:, None, :]).astype(np.int64)
                 - (wide[:, :, None] < wide[:, None, :]).astype(np.int64))  # (metrics, i, j)
        both = (present[:, :, None] & present[:, None, :] & upper).reshape(len(metric_names), -1).astype(np.int64)
        flat_signs = signs.reshape(len(metric_names), -1) * both
        tied = (signs.reshape(len(metric_names), -1) == 0) * both
        shared = present.astype(np.int64) @ present.T.astype(np.int64)  # competitors both metrics score
        total, concordance, ties = both @ both.T, flat_signs @ flat_signs.T, tied @ both.T  # ties[a, b]: a's
        for a, b in zip(first, second):
            if shared[a, b] < min_competitors or ties[a, b] == total[a, b] or ties[b, a] == total[a, b]:
                continue
            tau = concordance[a, b] / np.sqrt(total[a, b] - ties[a, b]) / np.sqrt(total[a, b] - ties[b, a])
            tau = np.minimum(1., max(-1., tau))
            if np.isfinite(tau):
                yield metric_names[a], metric_names[b], tau


def has_metric_pairs(tau: pd.DataFrame | None) -> bool:
    """Whether two different metrics of ``tau`` (:func:`metric_agreement`) have a finite Kendall tau: without one
    (e.g. two methods and a control: controls are not ranked, and a tau needs three ranked methods) the matrix
    holds only its diagonal's 1s."""
    if tau is None or len(tau) < 2:
        return False
    values = tau.to_numpy(dtype=float)
    return bool(np.isfinite(values[~np.eye(len(values), dtype=bool)]).any())


def compared_metrics(tau: pd.DataFrame) -> pd.DataFrame:
    """``tau`` without the metrics that have no tau with any other metric (e.g. a counterfactual metric only one
    method is scored on): their row and column would hold nothing but the diagonal's 1."""
    values = tau.to_numpy(dtype=float)
    off_diagonal = np.isfinite(values) & ~np.eye(len(values), dtype=bool)
    keep = off_diagonal.any(axis=1)
    return tau.loc[keep, keep] if keep.sum() >= 2 else tau


def agreement_by_family(matrix: pd.DataFrame) -> pd.DataFrame:
    """Mean Kendall tau over distinct metric pairs within each family and over all pairs.

    Returns:
        Columns ``scope`` (a family or ``"all"``), ``mean_tau``, ``n_pairs`` (pairs with a tau).
    """
    family = matrix.attrs.get("family", {})
    records = []
    scopes = sorted(set(family.values())) + ["all"]
    for scope in scopes:
        members = [m for m in matrix.index if scope == "all" or family.get(m) == scope]
        values = [matrix.loc[a, b] for a, b in itertools.combinations(members, 2) if np.isfinite(matrix.loc[a, b])]
        records.append({"scope": scope, "mean_tau": float(np.mean(values)) if values else float("nan"),
                        "n_pairs": len(values)})
    return pd.DataFrame.from_records(records, columns=["scope", "mean_tau", "n_pairs"])
