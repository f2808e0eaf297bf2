"""Decide whether one unit's scores changed: paired per-sample values, a tolerance, a direction.

A *unit* is one method (with its parameters) on one metric in one experiment (``tables.unit_columns``); its
pairs are the (seed, sample) values present and ``ok`` in both tables. ``assess`` returns the verdict
``same``, ``better`` or ``worse`` -- better/worse follow the metric's declared direction -- with the numbers a
report needs: means, the mean paired difference, the tolerance that applied and the test's p-value or CI.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from xaibench.results.aggregate import bootstrap_ci
from xaibench.results.compare.policy import Tolerance

SAME, BETTER, WORSE = "same", "better", "worse"


@dataclass(frozen=True)
class ValueChange:
    """The comparison of one unit's paired values.

    Attributes:
        verdict: ``same``, ``better`` or ``worse`` (beyond tolerance, in the metric's direction).
        n: number of pairs.
        baseline_mean, current_mean: means over the pairs.
        delta: mean paired difference ``current - baseline`` (raw units; its sign is not the direction).
        relative: ``delta / mean|baseline|`` (NaN when the baseline is all zeros).
        tolerance: the bound that applied (elementwise: at the mean |baseline|, each sample gets its own).
        n_differing: pairs that differ at all; ``n_beyond``: pairs beyond the per-sample bound (elementwise).
        max_abs_diff: largest ``|current - baseline|`` over the pairs.
        p_value / ci: the wilcoxon p-value or bootstrap CI of ``delta`` (None when the mode has none).
        note: why a fallback applied (too few pairs for the test), else "".
    """

    verdict: str
    n: int
    baseline_mean: float
    current_mean: float
    delta: float
    relative: float
    tolerance: float
    n_differing: int
    n_beyond: int
    max_abs_diff: float
    p_value: float | None = None
    ci: tuple[float, float] | None = None
    note: str = ""


def assess(baseline: np.ndarray, current: np.ndarray, higher_is_better: bool, tol: Tolerance) -> ValueChange:
    """Compare paired values ``(n,)`` of one unit under ``tol``; see the module docstring."""
    baseline = np.asarray(baseline, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    diff = current - baseline
    scale = float(np.mean(np.abs(baseline))) if baseline.size else 0.0
    delta = float(diff.mean()) if diff.size else 0.0
    common = dict(
        n=int(diff.size),
        baseline_mean=float(baseline.mean()) if baseline.size else math.nan,
        current_mean=float(current.mean()) if current.size else math.nan,
        delta=delta,
        relative=delta / scale if scale > 0 else math.nan,
        tolerance=tol.atol + tol.rtol * scale,
        n_differing=int(np.count_nonzero(diff)),
        max_abs_diff=float(np.abs(diff).max()) if diff.size else 0.0,
    )
    sign = 1.0 if higher_is_better else -1.0
    if tol.mode == "elementwise":
        beyond = np.abs(diff) > tol.atol + tol.rtol * np.abs(baseline)
        worse, better = beyond & (sign * diff < 0), beyond & (sign * diff > 0)
        verdict = WORSE if worse.any() else BETTER if better.any() else SAME
        return ValueChange(verdict, n_beyond=int(beyond.sum()), **common)
    large = abs(delta) > common["tolerance"]
    direction = BETTER if sign * delta > 0 else WORSE
    if tol.mode == "mean" or not large:
        return ValueChange(direction if large else SAME, n_beyond=0, **common)
    if tol.mode == "wilcoxon":
        return _wilcoxon(diff, direction, tol, common)
    return _bootstrap(diff, direction, tol, common)


def wilcoxon_min_pairs(alpha: float) -> int:
    """Fewest pairs for which the exact two-sided signed-rank test can reach ``p < alpha`` (p >= 2 / 2**n)."""
    return max(1, math.ceil(math.log2(2 / alpha) + 1e-12))


def _wilcoxon(diff: np.ndarray, direction: str, tol: Tolerance, common: dict) -> ValueChange:
    if diff.size < wilcoxon_min_pairs(tol.alpha):
        note = f"{diff.size} pairs are too few for the wilcoxon test at alpha={tol.alpha:g}: size rule applied"
        return ValueChange(direction, n_beyond=0, note=note, **common)
    if not np.count_nonzero(diff):
        return ValueChange(SAME, n_beyond=0, p_value=1.0, **common)
    p_value = float(stats.wilcoxon(diff, zero_method="wilcox", alternative="two-sided").pvalue)
    return ValueChange(direction if p_value < tol.alpha else SAME, n_beyond=0, p_value=p_value, **common)


def _bootstrap(diff: np.ndarray, direction: str, tol: Tolerance, common: dict) -> ValueChange:
    if diff.size < 2:
        note = "one pair cannot be bootstrapped: size rule applied"
        return ValueChange(direction, n_beyond=0, note=note, **common)
    low, high = bootstrap_ci(diff, n_boot=tol.n_boot, level=1 - tol.alpha, seed=0)
    significant = low > 0 or high < 0
    return ValueChange(direction if significant else SAME, n_beyond=0, ci=(low, high), **common)
