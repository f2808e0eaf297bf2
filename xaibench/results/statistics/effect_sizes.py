"""Effect sizes of paired differences: matched-pairs rank-biserial correlation (Kerby 2014) and the paired
common-language effect size (McGraw & Wong 1992)."""
from __future__ import annotations

import numpy as np


def paired_effects(differences: np.ndarray) -> tuple[np.ndarray, np.ndarray] | tuple[float, float]:
    """Matched-pairs rank-biserial correlation and paired CLES of differences ``d = better-oriented a - b``.

    Rank-biserial (Kerby 2014): ``(R+ - R-) / (R+ + R-)`` over the ranks of ``|d|`` of non-zero differences, in
    [-1, 1]; positive means ``a`` is better. CLES: ``P(d > 0) + P(d = 0) / 2``, in [0, 1].

    Args:
        differences: ``(n,)`` paired differences (floats returned) or ``(P, n)``, one row per pair (arrays).
    """
    from scipy import stats

    d = np.asarray(differences, dtype=np.float64)
    if d.ndim == 1:
        r, cles = paired_effects(d[None])
        return float(r[0]), float(cles[0])
    if d.shape[1] == 0:
        return np.full(len(d), np.nan), np.full(len(d), np.nan)
    cles = np.mean(d > 0, axis=1) + 0.5 * np.mean(d == 0, axis=1)
    # Ranks of |d| among the non-zero differences: zeros rank lowest, so shift every rank down by the zero count.
    ranks = stats.rankdata(np.abs(d), axis=1) - np.sum(d == 0, axis=1, keepdims=True)
    plus = np.where(d > 0, ranks, 0.0).sum(axis=1)
    minus = np.where(d < 0, ranks, 0.0).sum(axis=1)
    total = plus + minus
    r = np.divide(plus - minus, total, out=np.zeros(len(d)), where=total > 0)
    return r, cles
