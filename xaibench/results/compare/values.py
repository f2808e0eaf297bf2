"""Decide whether one unit's scores changed: paired per-sample values, a tolerance, a direction.

A *unit* is one method (with its parameters) on one metric in one experiment (``tables.unit_columns``); its
pairs are the (seed, sample) values present and ``ok`` in both tables. ``assess`` returns the verdict
``same``, ``better`` or ``worse`` -- better/worse follow the metric's declared direction -- with the numbers a
report needs: means, the mean paired difference, the tolerance that applied and the test's p-value or CI.

The tests of the ``wilcoxon`` and ``bootstrap`` modes follow three rules:

- **The sample is the unit.** With several seeds a sample's difference is the mean of its (seed, sample)
  differences: one sample scored in three seeds is one piece of evidence, not three (as in the report's
  statistics, ``xaibench.results.statistics``).
- **Inside the tolerance is no change.** A sample whose difference is within ``atol + rtol * |baseline|`` (its
  mean |baseline| over seeds) counts as unchanged (zero): the policy says such a move is noise, and ~1e-3 drift on
  the unchanged samples of another machine must not decide the verdict on the changed ones.
- **One-sided, in the direction of the change.** The question is "did it get worse?" (and separately "better?"),
  so each is a one-sided test at ``alpha`` (Wilcoxon: ``alternative`` less/greater; bootstrap: the
  ``1 - 2 alpha`` percentile interval excludes 0). With the zeros dropped, ``k`` changed samples all in one
  direction give ``p = 2**-k``: 5 samples (``p = 0.031``) make a change at ``alpha = 0.05``; 4 (``p = 0.0625``) do
  not, because machine noise moves that many (a cold ``experiment=ci`` run with other CPU kernels moved 4 of the
  10 samples of one ViT unit beyond tolerance, 3 of them one way: docs/ci.md). Such a change is ``unconfirmed``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xaibench.results.aggregate import bootstrap_ci
from xaibench.results.compare.policy import Tolerance

SAME, BETTER, WORSE = "same", "better", "worse"


@dataclass(frozen=True)
class ValueChange:
    """The comparison of one unit's paired values.

    Attributes:
        verdict: ``same``, ``better`` or ``worse`` (beyond tolerance, in the metric's direction).
        n: number of pairs (seed, sample).
        baseline_mean, current_mean: means over the pairs.
        delta: mean paired difference ``current - baseline`` (raw units; its sign is not the direction).
        relative: ``delta / mean|baseline|`` (NaN when the baseline is all zeros).
        tolerance: the bound that applied (elementwise: at the mean |baseline|, each sample gets its own).
        n_differing: pairs that differ at all; ``n_beyond``: pairs beyond the per-sample bound (elementwise).
        max_abs_diff: largest ``|current - baseline|`` over the pairs.
        p_value / ci: the one-sided wilcoxon p-value (in the direction of ``delta``) or the bootstrap CI of the
            mean per-sample difference (None when the mode has none).
        note: why a fallback applied (too few samples for the test), else "".
        n_samples: samples (a sample's pairs in several seeds are one sample: the tests' unit).
        n_worse / n_better: samples whose (mean over seeds) difference is beyond ``atol + rtol * |baseline|`` in
            the metric's bad / good direction: the changes the tests weigh.
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
    n_samples: int = 0
    n_worse: int = 0
    n_better: int = 0


def assess(baseline: np.ndarray, current: np.ndarray, higher_is_better: bool, tol: Tolerance,
           samples: np.ndarray | None = None) -> ValueChange:
    """Compare paired values ``(n,)`` of one unit under ``tol``; see the module docstring.

    Args:
        samples: ``(n,)`` the sample id of each pair (several seeds: a sample's pairs are averaged for the tests);
            None: every pair is its own sample.
    """
    baseline = np.asarray(baseline, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    diff = current - baseline
    scale = float(np.mean(np.abs(baseline))) if baseline.size else 0.0
    delta = float(diff.mean()) if diff.size else 0.0
    sign = 1.0 if higher_is_better else -1.0
    changes = _changed_samples(diff, baseline, samples, tol)  # per sample; 0 where within tolerance
    common = dict(
        n=int(diff.size),
        baseline_mean=float(baseline.mean()) if baseline.size else math.nan,
        current_mean=float(current.mean()) if current.size else math.nan,
        delta=delta,
        relative=delta / scale if scale > 0 else math.nan,
        tolerance=tol.atol + tol.rtol * scale,
        n_differing=int(np.count_nonzero(diff)),
        max_abs_diff=float(np.abs(diff).max()) if diff.size else 0.0,
        n_samples=int(changes.size),
        n_worse=int(np.count_nonzero(sign * changes < 0)),
        n_better=int(np.count_nonzero(sign * changes > 0)),
    )
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
        return _wilcoxon(changes, delta, direction, tol, common)
    return _bootstrap(changes, delta, direction, tol, common)


def _changed_samples(diff: np.ndarray, baseline: np.ndarray, samples: np.ndarray | None,
                     tol: Tolerance) -> np.ndarray:
    """Per-sample mean differences ``(samples,)``, set to 0 where within ``atol + rtol * mean|baseline|``."""
    if samples is None or not diff.size:
        per_sample, magnitude = diff, np.abs(baseline)
    else:
        _, codes = np.unique(np.asarray(samples), return_inverse=True)  # codes of the sorted ids
        counts = np.bincount(codes)
        per_sample = np.bincount(codes, weights=diff) / counts
        magnitude = np.bincount(codes, weights=np.abs(baseline)) / counts
    return np.where(np.abs(per_sample) > tol.atol + tol.rtol * magnitude, per_sample, 0.0)


def wilcoxon_min_pairs(alpha: float) -> int:
    """Fewest samples for which the exact one-sided signed-rank test can reach ``p < alpha`` (p >= 1 / 2**n)."""
    return max(1, math.ceil(math.log2(1 / alpha) + 1e-12))


PERMUTATION_MAX = 13  # scipy's wilcoxon: tied |differences| and n <= 13 -> all 2**n sign flips (permutation test)


def signed_rank_p(changed: np.ndarray, alternative: str) -> float:
    """One-sided p-value of the Wilcoxon signed-rank test (``alternative`` ``less``/``greater``) on nonzero ``(n,)``.

    ``scipy.stats.wilcoxon``'s own p-value, except that where it runs an exhaustive permutation test (tied
    |differences|, e.g. a 0/1 metric such as the pointing game, and ``n <= 13``) the same 2**n sign flips are
    counted here at once: identical p-values, 40-900x less CPU (scipy: 0.08-0.64 CPU-s per unit at n = 10-13;
    ``benchmarks/bench_compare_ties.py``).
    """
    from scipy import stats  # here, not at the top: ~1 CPU-s that a compare whose values all agree never needs

    ranks = stats.rankdata(np.abs(changed))
    if changed.size > PERMUTATION_MAX or np.unique(ranks).size == ranks.size:
        return float(stats.wilcoxon(changed, alternative=alternative).pvalue)
    flips = (np.arange(2 ** changed.size)[:, None] >> np.arange(changed.size)) & 1  # (2**n, n) every sign pattern
    null = flips @ ranks  # the positive-rank sum of each pattern
    observed = float(ranks[changed > 0].sum())
    slack = 1e-14 * max(abs(observed), 1.0)  # scipy's permutation_test compares with this relative tolerance
    return float(np.mean(null <= observed + slack) if alternative == "less" else np.mean(null >= observed - slack))


def _wilcoxon(changes: np.ndarray, delta: float, direction: str, tol: Tolerance, common: dict) -> ValueChange:
    if changes.size < wilcoxon_min_pairs(tol.alpha):
        note = f"{changes.size} samples are too few for the wilcoxon test at alpha={tol.alpha:g}: size rule applied"
        return ValueChange(direction, n_beyond=0, note=note, **common)
    changed = changes[changes != 0]
    if not changed.size:
        return ValueChange(SAME, n_beyond=0, p_value=1.0, **common)
    alternative = "greater" if delta > 0 else "less"
    p_value = signed_rank_p(changed, alternative)
    return ValueChange(direction if p_value < tol.alpha else SAME, n_beyond=0, p_value=p_value, **common)


def _bootstrap(changes: np.ndarray, delta: float, direction: str, tol: Tolerance, common: dict) -> ValueChange:
    if changes.size < 2:
        note = "one sample cannot be bootstrapped: size rule applied"
        return ValueChange(direction, n_beyond=0, note=note, **common)
    low, high = bootstrap_ci(changes, n_boot=tol.n_boot, level=1 - 2 * tol.alpha, seed=0)
    significant = low > 0 if delta > 0 else high < 0  # one-sided at alpha, in the direction of the change
    return ValueChange(direction if significant else SAME, n_beyond=0, ci=(low, high), **common)
