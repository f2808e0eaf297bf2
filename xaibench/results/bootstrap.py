"""Percentile bootstrap CIs of a mean, vectorised over many groups at once.

Two designs:

- **One seed** (samples are the only source of variation): the per-sample percentile bootstrap of the mean
  (Efron & Tibshirani 1993, ch. 13).
- **Several seeds** (each seed retrains the model and re-explains; samples within a seed are correlated): the
  two-stage hierarchical (cluster) bootstrap -- resample seeds with replacement, then samples with replacement
  within each drawn seed, and take the mean over seeds of the per-seed means (Davison & Hinkley 1997, sec. 3.8;
  Saravanan et al. 2020, "Application of the hierarchical bootstrap to multi-level data in neuroscience").
  Pooling seeds as if they were independent samples makes the CI far too narrow when seeds differ.

A bootstrap mean is a weighted sum: resampling ``n`` values with replacement gives each value a count, so the
``B`` resampled means of ``G`` groups of equal size are one matrix product ``values (G, n) @ counts (n, B) / n``.
Every group of one size uses the same draws (``default_rng(seed)``), so a group's CI does not depend on which
other groups a table holds, and the same table gives the same CIs on every run.
"""
from __future__ import annotations

import numpy as np

def resample_counts(rng: np.random.Generator, n_boot: int, n: int) -> np.ndarray:
    """How often each of ``n`` values is drawn in each of ``n_boot`` resamples with replacement.

    Returns:
        ``(n_boot, n)`` float64 counts, each row summing to ``n``.
    """
    draws = rng.integers(0, n, size=(n_boot, n))
    flat = draws + np.arange(n_boot)[:, None] * n
    return np.bincount(flat.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def bootstrap_means(values: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Bootstrap distribution of the mean of each group (one seed: samples resampled).

    Args:
        values: ``(G, n)`` finite values, one row per group.

    Returns:
        ``(G, n_boot)`` resampled means.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[1]
    counts = resample_counts(np.random.default_rng(seed), n_boot, n)
    means = values @ counts.T
    means /= n  # in place: the same division, without a second (G, n_boot) array
    return means


def hierarchical_means(values: np.ndarray, sizes: tuple[int, ...], *, n_boot: int = 1000,
                       seed: int = 0) -> np.ndarray:
    """Two-stage bootstrap distribution of the mean over seeds of per-seed means.

    Stage 1 draws ``S`` seeds with replacement; stage 2 draws samples with replacement within each drawn seed
    (independently for each draw, also when a seed is drawn twice).

    Args:
        values: ``(G, sum(sizes))`` finite values; each row holds its group's seeds one after the other.
        sizes: how many values each of the ``S`` seeds has (the same for every group of the call).

    Returns:
        ``(G, n_boot)`` resampled means over seeds of per-seed means.
    """
    values = np.asarray(values, dtype=np.float64)
    n_seeds = len(sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, n_seeds, size=(n_boot, n_seeds))  # stage 1: (B, slots)
    counts = [[resample_counts(rng, n_boot, n).T / n for n in sizes] for _ in range(n_seeds)]  # stage 2
    total = np.zeros((len(values), n_boot))
    for slot in range(n_seeds):
        for s, (start, n) in enumerate(zip(starts, sizes)):
            boots = np.flatnonzero(picked[:, slot] == s)  # resamples whose draw for this slot is seed s
            if boots.size:
                total[:, boots] += values[:, start : start + n] @ counts[slot][s][:, boots]
    total /= n_seeds  # in place: the same division, without a second (G, n_boot) array
    return total


QUANTILE_ROWS = 256  # percentile_interval: rows per np.quantile call (each call copies its rows to partition them)


def percentile_interval(means: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper percentile bounds of bootstrap means ``(..., n_boot)`` along the last axis.

    ``np.quantile`` partitions a copy of its input; a 2-D ``means`` is taken ``QUANTILE_ROWS`` rows at a time, so
    the copy is a few MB instead of the whole ``(G, n_boot)`` array (each row's bounds depend on that row only:
    the same values).
    """
    alpha = (1 - level) / 2
    if means.ndim != 2 or len(means) <= QUANTILE_ROWS:
        low, high = np.quantile(means, [alpha, 1 - alpha], axis=-1)
        return low, high
    low, high = np.empty(len(means)), np.empty(len(means))
    for first in range(0, len(means), QUANTILE_ROWS):
        rows = slice(first, first + QUANTILE_ROWS)
        low[rows], high[rows] = np.quantile(means[rows], [alpha, 1 - alpha], axis=-1)
    return low, high


def bootstrap_ci(values: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of one set of values (Efron & Tibshirani 1993); deterministic."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        return (float("nan"), float("nan"))
    if values.size == 1:
        return (float(values[0]), float(values[0]))
    low, high = percentile_interval(bootstrap_means(values[None], n_boot=n_boot, seed=seed), level)
    return float(low[0]), float(high[0])


def hierarchical_ci(per_seed: list[np.ndarray], *, n_boot: int = 1000, level: float = 0.95,
                    seed: int = 0) -> tuple[float, float]:
    """Hierarchical bootstrap CI of the mean over seeds of per-seed means; one seed falls back to samples."""
    per_seed = [np.asarray(v, dtype=np.float64).ravel() for v in per_seed]
    per_seed = [v for v in per_seed if v.size]
    if len(per_seed) <= 1:
        return bootstrap_ci(per_seed[0] if per_seed else np.empty(0), n_boot=n_boot, level=level, seed=seed)
    sizes = tuple(v.size for v in per_seed)
    means = hierarchical_means(np.concatenate(per_seed)[None], sizes, n_boot=n_boot, seed=seed)[0]
    low, high = percentile_interval(means, level)
    return float(low), float(high)
