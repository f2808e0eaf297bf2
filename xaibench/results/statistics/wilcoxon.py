"""The two-sided Wilcoxon signed-rank test (Wilcoxon 1945) of paired differences, many pairs per scipy call."""
from __future__ import annotations

import numpy as np


def wilcoxon_pair(differences: np.ndarray) -> tuple[np.ndarray, np.ndarray] | tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test (scipy; zero differences dropped): (statistic, p-value).

    Args:
        differences: ``(n,)`` paired differences (floats returned) or ``(P, n)``, one test per row (arrays;
            scipy tests all rows in one vectorised call).
    """
    from scipy import stats

    d = np.asarray(differences, dtype=np.float64)
    if d.ndim == 1:
        statistic, p = wilcoxon_pair(d[None])
        return float(statistic[0]), float(p[0])
    statistic, p = np.full(len(d), np.nan), np.full(len(d), np.nan)
    if d.shape[1] == 0:
        return statistic, p
    identical = ~np.any(d != 0, axis=1)
    statistic[identical], p[identical] = 0.0, 1.0  # the same score on every sample: no evidence of a difference
    # scipy picks the exact, permutation or normal-approximation p-value once per call, from whether *any* row
    # has zeros or tied |d|; one call per kind of row gives every pair the p-value scipy gives it alone.
    untied = _untied_rows(d)
    for rows in (~identical & untied, ~identical & ~untied):
        if rows.any():
            result = stats.wilcoxon(d[rows], zero_method="wilcox", alternative="two-sided", axis=1)
            statistic[rows], p[rows] = result.statistic, result.pvalue
    return statistic, p


def _untied_rows(d: np.ndarray) -> np.ndarray:
    """Rows of ``d`` (P, n) without zeros and without tied absolute values (scipy's exact-test condition)."""
    magnitudes = np.sort(np.abs(d), axis=1)
    tied = np.any(magnitudes[:, 1:] == magnitudes[:, :-1], axis=1) if d.shape[1] > 1 else np.zeros(len(d), bool)
    return ~(np.any(d == 0, axis=1) | tied)
