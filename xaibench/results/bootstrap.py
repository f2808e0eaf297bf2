"""Percentile bootstrap CIs of a mean, vectorised over many groups at once.

Two designs:

- **One seed** (samples are the only source of variation): the per-sample percentile bootstrap of the mean
  (Efron & Tibshirani 1993, ch. 13).
- **Several seeds** (each seed retrains the model, re-splits the data and re-explains): seeds and samples are
  *crossed* -- one dataset row (``sample_id``) is scored in every seed whose test split holds it -- so neither is
  a set of independent values. The two-way ("pigeonhole") bootstrap of Owen (2007, Ann. Appl. Stat. 1(2)) resamples
  both at once: sample ids with replacement (a drawn sample brings its values in *every* seed) and, independently,
  seeds with replacement; the statistic is the mean over drawn seeds of each seed's mean over its drawn samples.
  The CI so reflects both sources of variation and never counts one sample scored in three seeds as three
  samples: three identical seeds give the CI of one seed. (Resampling samples independently within each seed,
  as a nested design would, makes the CI of three identical seeds sqrt(3) times too narrow.)

A bootstrap mean is a weighted sum: resampling ``n`` values with replacement gives each value a count, so the
``B`` resampled means of ``G`` groups of equal size are one matrix product ``values (G, n) @ counts (n, B) / n``.
Every group of one shape (values per seed and, with several seeds, which sample each value is) uses the same
draws (``default_rng(seed)``), so a group's CI does not depend on which other groups a table holds, and the same table gives the same CIs on every run.
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
    return values @ counts.T / n


def crossed_means(values: np.ndarray, sizes: tuple[int, ...], positions: tuple[int, ...], *, n_boot: int = 1000,
                  seed: int = 0) -> np.ndarray:
    """Two-way (seeds x samples) bootstrap distribution of the mean over seeds of per-seed means (Owen 2007).

    Each resample draws the ``N`` sample ids with replacement (counts ``w``, drawn first, with the same draws as
    :func:`bootstrap_means`) and the ``S`` seeds with replacement (counts ``v``). Seed ``s``'s mean is
    ``sum_i w_i x_si / sum_i w_i`` over the samples it scored; the resampled mean is the ``v``-weighted mean of the
    seeds' means (a drawn seed none of whose samples was drawn is left out of that resample; a resample left with
    none is NaN). With every seed scoring every sample and equal values in all seeds, this is
    :func:`bootstrap_means` of one seed.

    Args:
        values: ``(G, sum(sizes))`` finite values; each row holds its group's seeds one after the other.
        sizes: how many values each of the ``S`` seeds has (the same for every group of the call).
        positions: ``(sum(sizes),)`` the sample (``0..N-1``, ``N`` distinct sample ids) of each value.

    Returns:
        ``(G, n_boot)`` resampled means (NaN in a resample that drew no scored (seed, sample)).
    """
    values = np.asarray(values, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.int64)
    rng = np.random.default_rng(seed)
    sample_counts = resample_counts(rng, n_boot, int(positions.max()) + 1)  # (B, N)
    seed_counts = resample_counts(rng, n_boot, len(sizes))  # (B, S)
    total, weight = np.zeros((len(values), n_boot)), np.zeros(n_boot)
    start = 0
    for s, size in enumerate(sizes):
        counts = sample_counts[:, positions[start : start + size]]  # (B, size): each of seed s's values
        drawn = counts.sum(axis=1)
        coefficient = np.divide(seed_counts[:, s], drawn, out=np.zeros(n_boot), where=drawn > 0)
        total += (values[:, start : start + size] @ counts.T) * coefficient
        weight += np.where(drawn > 0, seed_counts[:, s], 0.0)
        start += size
    return np.divide(total, weight, out=np.full(total.shape, np.nan), where=weight > 0)


def percentile_interval(means: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper percentile bounds of bootstrap means ``(..., n_boot)`` along the last axis; NaN resamples
    (a two-way resample that drew nothing scored) are left out."""
    alpha = (1 - level) / 2
    quantile = np.nanquantile if np.isnan(means).any() else np.quantile
    low, high = quantile(means, [alpha, 1 - alpha], axis=-1)
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


def crossed_ci(per_seed: list[tuple[np.ndarray, np.ndarray]], *, n_boot: int = 1000, level: float = 0.95,
               seed: int = 0) -> tuple[float, float]:
    """Two-way bootstrap CI (:func:`crossed_means`) of one configuration given as ``[(sample ids, values)]`` per
    seed; one seed falls back to :func:`bootstrap_ci` (values in the order given)."""
    per_seed = [(np.asarray(ids).ravel(), np.asarray(v, dtype=np.float64).ravel()) for ids, v in per_seed]
    per_seed = [(ids, v) for ids, v in per_seed if v.size]
    if len(per_seed) <= 1:
        return bootstrap_ci(per_seed[0][1] if per_seed else np.empty(0), n_boot=n_boot, level=level, seed=seed)
    sizes = tuple(v.size for _, v in per_seed)
    positions = np.unique(np.concatenate([ids for ids, _ in per_seed]), return_inverse=True)[1]
    means = crossed_means(np.concatenate([v for _, v in per_seed])[None], sizes, tuple(positions), n_boot=n_boot,
                          seed=seed)[0]
    low, high = percentile_interval(means, level)
    return float(low), float(high)
