"""Percentile bootstrap CIs of a mean, vectorised over many groups at once.

Two designs:

- **One seed** (samples are the only source of variation): the per-sample percentile bootstrap of the mean
  (Efron & Tibshirani 1993, ch. 13).
- **Several seeds** (each seed re-splits the data, retrains a zoo model and re-explains): seeds and samples are
  *crossed* -- one dataset row (``sample_id``) is scored in every seed whose test split holds it -- so neither is
  a set of independent values. The two-way ("pigeonhole") bootstrap of Owen (2007, Ann. Appl. Stat. 1(2)) resamples
  both at once: sample ids with replacement (a drawn sample brings its values in *every* seed) and, independently,
  seeds with replacement; the statistic is the mean over drawn seeds of each seed's mean over its drawn samples.
  The CI so reflects both sources of variation and never counts one sample scored in three seeds as three
  samples: three identical seeds give the CI of one seed. (Resampling samples independently within each seed,
  as a nested design would, makes the CI of three identical seeds sqrt(3) times too narrow.)

A bootstrap mean is a weighted sum: resampling ``n`` values with replacement gives each value a count, so the
``B`` resampled means of ``G`` groups of equal size are one matrix product ``values (G, n) @ counts (n, B) / n``.
Every group of one shape (its sample count; with several seeds, its seed count and distinct sample ids) uses the
same draws (``default_rng(seed)``), so a group's CI does not depend on which other groups a table holds, and the
same table gives the same CIs on every run.
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
    return _sample_means(values, resample_counts(np.random.default_rng(seed), n_boot, values.shape[1]))


def _sample_means(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``values (G, n) @ counts (n_boot, n).T / n``: each group's resampled means."""
    means = values @ counts.T
    means /= values.shape[1]  # in place: the same division, without a second (G, n_boot) array
    return means


def crossed_means(values: np.ndarray, n_seeds: int, n_samples: int, *, n_boot: int = 1000,
                  seed: int = 0) -> np.ndarray:
    """Two-way (seeds x samples) bootstrap distribution of the mean over seeds of per-seed means (Owen 2007).

    Each resample draws the ``N`` sample ids with replacement (counts ``w``, drawn first, with the same draws as
    :func:`bootstrap_means`) and the ``S`` seeds with replacement (counts ``v``). Seed ``s``'s mean is
    ``sum_i w_i x_si / sum_i w_i`` over the samples it scored; the resampled mean is the ``v``-weighted mean of the
    seeds' means (a drawn seed none of whose samples was drawn is left out of that resample; a resample left with
    none is NaN). With every seed scoring every sample and equal values in all seeds, this is
    :func:`bootstrap_means` of one seed.

    Args:
        values: ``(G, S * N)``: seed ``s``'s score of sample ``i`` at ``s * N + i``, NaN where it has none.
        n_seeds, n_samples: ``S`` and ``N``.

    Returns:
        ``(G, n_boot)`` resampled means.
    """
    values = np.asarray(values, dtype=np.float64)
    sample_counts, seed_counts = _crossed_counts(n_boot, n_seeds, n_samples, seed)
    complete = np.isfinite(values).all(axis=1)
    means = np.empty((len(values), n_boot))
    if complete.any():  # the usual case: each seed scored every sample, so each drew N of them
        means[complete] = _crossed_complete(values, complete, n_seeds, n_samples, sample_counts, seed_counts)
    if not complete.all():
        means[~complete] = _crossed_with_gaps(values[~complete], n_seeds, n_samples, sample_counts, seed_counts)
    return means


def _crossed_counts(n_boot: int, n_seeds: int, n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The two-way bootstrap's draws: sample counts ``(N, B)`` (drawn first), then seed counts ``(B, S)``."""
    rng = np.random.default_rng(seed)
    sample_counts = resample_counts(rng, n_boot, n_samples).T
    return sample_counts, resample_counts(rng, n_boot, n_seeds)


def _crossed_complete(values: np.ndarray, rows: np.ndarray, n_seeds: int, n_samples: int,
                      sample_counts: np.ndarray, seed_counts: np.ndarray) -> np.ndarray:
    """:func:`crossed_means` of the groups ``values[rows]`` (a mask or indices) whose seeds scored every sample.

    ``sum_s (x_s @ w) * v_s / (S * N)``, accumulated in place in the order ``sum`` adds (``0 + t_0 + t_1 ...``): the
    same bits, two ``(G, B)`` arrays instead of four."""
    total = np.zeros((int(np.count_nonzero(rows)) if rows.dtype == bool else len(rows), sample_counts.shape[1]))
    for s in range(n_seeds):
        term = values[rows, s * n_samples : (s + 1) * n_samples] @ sample_counts
        term *= seed_counts[:, s]
        total += term
        del term
    total /= n_seeds * n_samples
    return total


def _crossed_with_gaps(values: np.ndarray, n_seeds: int, n_samples: int, sample_counts: np.ndarray,
                       seed_counts: np.ndarray) -> np.ndarray:
    """:func:`crossed_means` of groups whose seeds lack some samples (NaN): each seed's mean is over the drawn
    samples it scored, and a seed that scored none of them is left out of the resample.

    Per seed: ``total += where(drawn > 0, sums / drawn, 0) * where(drawn > 0, v_s, 0)``, ``weight +=
    where(drawn > 0, v_s, 0)``, computed in place (four ``(G, B)`` arrays instead of seven; the same bits)."""
    total, weight = np.zeros((len(values), seed_counts.shape[0])), np.zeros((len(values), seed_counts.shape[0]))
    for s in range(n_seeds):
        scores = values[:, s * n_samples : (s + 1) * n_samples]
        scored = np.isfinite(scores)
        sums, drawn = np.where(scored, scores, 0.0) @ sample_counts, scored.astype(np.float64) @ sample_counts
        missing = drawn <= 0
        np.divide(sums, drawn, out=sums, where=~missing)
        sums *= seed_counts[:, s]
        sums[missing] = 0.0  # 0 * 0, as where(...) * where(...) gives
        total += sums
        del sums
        np.add(weight, seed_counts[:, s], out=weight, where=~missing)  # + 0 elsewhere: unchanged
        del drawn, missing
    missing = weight <= 0
    np.divide(total, weight, out=total, where=~missing)
    total[missing] = np.nan
    return total


QUANTILE_ROWS = 256  # percentile_interval: rows per np.quantile call (each call copies its rows to partition them)


def percentile_interval(means: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper percentile bounds of bootstrap means ``(..., n_boot)`` along the last axis; NaN resamples
    (a two-way resample that drew nothing scored) are left out.

    ``np.quantile`` partitions a copy of its input; a 2-D ``means`` is taken ``QUANTILE_ROWS`` rows at a time, so
    the copy is a few MB instead of the whole ``(G, n_boot)`` array (each row's bounds depend on that row only:
    the same values).
    """
    alpha = (1 - level) / 2
    quantile = np.nanquantile if np.isnan(means).any() else np.quantile  # chosen once for every row
    if means.ndim != 2 or len(means) <= QUANTILE_ROWS:
        low, high = quantile(means, [alpha, 1 - alpha], axis=-1)
        return low, high
    low, high = np.empty(len(means)), np.empty(len(means))
    for first in range(0, len(means), QUANTILE_ROWS):
        rows = slice(first, first + QUANTILE_ROWS)
        low[rows], high[rows] = quantile(means[rows], [alpha, 1 - alpha], axis=-1)
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


def mean_intervals(values: np.ndarray, *, n_seeds: int = 1, n_samples: int = 0, n_boot: int = 1000,
                   level: float = 0.95, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``percentile_interval`` of :func:`bootstrap_means` (``n_seeds == 1``) or of :func:`crossed_means` of
    ``values``, without their ``(G, n_boot)`` array: the resampled means are made ``QUANTILE_ROWS`` groups at a
    time (complete groups and groups with gaps each in their own order, as ``crossed_means`` makes them) and
    reduced to their bounds at once, so memory is a few MB whatever the block (a 4,096-group two-way block with
    gaps made seven 33 MB arrays).

    The bounds are those of the whole-block functions, bit for bit: a row of a matrix product does not depend
    on the other rows when the rows are split at a multiple of the BLAS kernel's row unroll (``QUANTILE_ROWS`` =
    256 is one for every OpenBLAS kernel) and no piece is a single row of a larger product (numpy multiplies a
    single row with ``gemv``, other bits: ``_row_chunks``), the element-wise steps are per row, and
    ``np.nanquantile`` of a row without NaN is ``np.quantile``'s (tested: ``tests/unit/test_summary_memory.py``).

    Args:
        values: ``(G, n)`` (one seed) or ``(G, S * N)`` as :func:`crossed_means` takes them.

    Returns:
        Lower and upper bounds, ``(G,)`` each.
    """
    values = np.asarray(values, dtype=np.float64)
    low, high = np.empty(len(values)), np.empty(len(values))
    if not len(values):
        return low, high
    draws = interval_draws(values.shape[1], n_seeds=n_seeds, n_samples=n_samples, n_boot=n_boot, seed=seed)
    if n_seeds == 1:
        for rows in _row_chunks(len(values)):
            low[rows], high[rows] = chunk_bounds(values, rows, draws, level=level)
        return low, high
    complete = np.isfinite(values).all(axis=1)
    for members in (np.flatnonzero(complete), np.flatnonzero(~complete)):
        for chunk in _row_chunks(len(members)):
            rows = members[chunk]
            low[rows], high[rows] = chunk_bounds(values, rows, draws, level=level)
    return low, high


def interval_draws(width: int, *, n_seeds: int = 1, n_samples: int = 0, n_boot: int = 1000,
                   seed: int = 0) -> tuple:
    """The resampling counts :func:`mean_intervals` draws for values ``width`` wide (the same for every group of
    one shape): ``(1, counts (n_boot, width))`` for one seed, ``(S, N, sample counts, seed counts)`` else."""
    if n_seeds == 1:
        return 1, resample_counts(np.random.default_rng(seed), n_boot, width)
    return (n_seeds, n_samples, *_crossed_counts(n_boot, n_seeds, n_samples, seed))


def chunk_bounds(values: np.ndarray, rows, draws: tuple, *, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """``percentile_interval`` of the resampled means of the groups ``values[rows]`` (a slice or indices), one
    chunk of :func:`mean_intervals`: with several seeds the rows must be all complete or all with gaps (its
    ``np.isfinite(values).all(axis=1)``). The bits depend on the rows the chunk holds (``_row_chunks``)."""
    if draws[0] == 1:
        return percentile_interval(_sample_means(values[rows], draws[1]), level)
    n_seeds, n_samples, sample_counts, seed_counts = draws
    gaps = not np.isfinite(values[rows]).all()
    means = (_crossed_with_gaps(values[rows], n_seeds, n_samples, sample_counts, seed_counts) if gaps
             else _crossed_complete(values, rows, n_seeds, n_samples, sample_counts, seed_counts))
    return percentile_interval(means, level)


def _row_chunks(n: int) -> list[slice]:
    """``QUANTILE_ROWS``-row slices of ``range(n)``; a last single row joins the slice before it (numpy would
    multiply it alone with ``gemv``, whose sums differ from ``gemm``'s in the last bit)."""
    starts = list(range(0, n, QUANTILE_ROWS))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [slice(start, stop) for start, stop in zip(starts, starts[1:] + [n])]
