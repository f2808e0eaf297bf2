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

_CHUNK = 1 << 22  # elements of one (groups x seeds x n_boot) block: bounds memory at ~32 MiB per block


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
    return values @ counts.T / n


def hierarchical_means(values: np.ndarray, *, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Two-stage bootstrap distribution of the mean over seeds of per-seed means.

    Stage 1 draws ``S`` seeds with replacement; stage 2 draws ``n`` samples with replacement within each drawn
    seed (independently for each draw, also when a seed is drawn twice).

    Args:
        values: ``(G, S, n)`` finite values: groups x seeds x samples.

    Returns:
        ``(G, n_boot)`` resampled means over seeds of per-seed means.
    """
    values = np.asarray(values, dtype=np.float64)
    groups, n_seeds, n = values.shape
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, n_seeds, size=(n_boot, n_seeds))  # stage 1: (B, slots)
    counts = [resample_counts(rng, n_boot, n) for _ in range(n_seeds)]  # stage 2: one (B, n) per slot
    out = np.empty((groups, n_boot))
    step = max(1, _CHUNK // (n_seeds * n_boot))
    columns = np.arange(n_boot)
    for start in range(0, groups, step):
        block = values[start : start + step]
        total = np.zeros((block.shape[0], n_boot))
        for slot, slot_counts in enumerate(counts):
            seed_means = block @ slot_counts.T / n  # (g, S, B): every seed resampled with this slot's draws
            total += seed_means[:, picked[:, slot], columns]
        out[start : start + step] = total / n_seeds
    return out


def ragged_hierarchical_means(per_seed: list[np.ndarray], *, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """:func:`hierarchical_means` for one group whose seeds kept different numbers of values.

    Args:
        per_seed: one 1-D array of finite values per seed (each non-empty).

    Returns:
        ``(n_boot,)`` resampled means over seeds of per-seed means.
    """
    rng = np.random.default_rng(seed)
    n_seeds = len(per_seed)
    picked = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    total = np.zeros(n_boot)
    for slot in range(n_seeds):
        seed_means = np.stack([resample_counts(rng, n_boot, v.size) @ v / v.size for v in per_seed])  # (S, B)
        total += seed_means[picked[:, slot], np.arange(n_boot)]
    return total / n_seeds


def percentile_interval(means: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper percentile bounds of bootstrap means ``(..., n_boot)`` along the last axis."""
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha], axis=-1)
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
    sizes = {v.size for v in per_seed}
    if len(sizes) == 1:
        means = hierarchical_means(np.stack(per_seed)[None], n_boot=n_boot, seed=seed)[0]
    else:
        means = ragged_hierarchical_means(per_seed, n_boot=n_boot, seed=seed)
    low, high = percentile_interval(means, level)
    return float(low), float(high)
