"""Friedman's permutation null on few blocks: an exact (or seeded Monte Carlo) Friedman p-value and the real
familywise error of Nemenyi's critical difference with the exact one."""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

from xaibench.results.statistics.levels import ALPHA

PERMUTATIONS = 20_000  # Monte Carlo draws where exact enumeration is too large: standard error <= 0.0036
_EXACT_STATES = 250_000  # rank-sum states x block permutations one exact step may hold


def friedman_permutation_p(matrix: np.ndarray, *, permutations: int = PERMUTATIONS, seed: int = 0
                           ) -> tuple[float, str]:
    """P-value of Friedman's test from its permutation null: each block's ranks in any order, equally likely.

    The statistic is ``S = sum_j R_j^2`` (``R_j``: competitor ``j``'s rank sum), which orders tables as Friedman's
    chi-square does, ties included (the tie correction depends only on each block's ranks, not their order). The
    distribution of ``R`` is enumerated exactly, one block at a time, when its states stay small (states are sorted
    rank-sum vectors: ``S`` does not depend on which competitor holds which sum); otherwise ``permutations`` draws
    with a fixed ``seed`` estimate it (``(1 + hits) / (1 + draws)``), so the same table gives the same p.

    Args:
        matrix: (N blocks, k competitors) goodness, larger = better, no NaN.

    Returns:
        ``(p, method)``, method ``"exact permutation"`` or ``"Monte Carlo permutation (D draws)"``.
    """
    doubled = _doubled_ranks(matrix)
    observed = int(np.sum(doubled.sum(axis=0) ** 2))
    distribution = _exact_rank_sums(doubled)
    if distribution is not None:
        states, weights = distribution
        return float(np.clip(weights[np.sum(states ** 2, axis=1) >= observed].sum(), 0.0, 1.0)), "exact permutation"
    hits = sum(int(np.sum(np.sum(sums ** 2, axis=1) >= observed))
               for sums in _drawn_rank_sums(doubled, permutations, seed))
    return (1 + hits) / (1 + permutations), f"Monte Carlo permutation ({permutations:,} draws)"


def _doubled_ranks(matrix: np.ndarray) -> np.ndarray:
    """Twice each block's ranks ``(N, k)`` as integers (1 = best; ties share the mean rank, so doubled: whole)."""
    from scipy import stats

    return np.rint(2 * stats.rankdata(-np.asarray(matrix, dtype=np.float64), axis=1)).astype(np.int64)


def _drawn_rank_sums(doubled: np.ndarray, permutations: int, seed: int) -> Iterator[np.ndarray]:
    """``permutations`` seeded draws of the doubled rank sums ``(draws, k)`` under the permutation null (each
    block's ranks in a random order), 2,000 at a time (memory); the same ``seed`` gives the same draws."""
    rng = np.random.default_rng(seed)
    for done in range(0, permutations, 2_000):
        order = np.argsort(rng.random((min(2_000, permutations - done),) + doubled.shape), axis=2)
        yield np.take_along_axis(np.broadcast_to(doubled, order.shape), order, axis=2).sum(axis=1)


def _exact_rank_sums(doubled: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The permutation distribution of the sorted rank-sum vector, by enumerating the blocks' rank orders:
    ``(states, weights)`` (each row a sorted vector of doubled rank sums, its probability), or None when the states
    grow too many."""
    states = np.sort(doubled[:1], axis=1)
    weights = np.ones(1)
    for block in doubled[1:]:
        if len(states) * math.factorial(len(block)) > _EXACT_STATES:
            return None
        orders = np.array(list(itertools.permutations(block)))
        grown = np.sort((states[:, None, :] + orders[None, :, :]).reshape(-1, doubled.shape[1]), axis=1)
        states, inverse = np.unique(grown, axis=0, return_inverse=True)
        weights = np.bincount(inverse.ravel(), weights=np.repeat(weights / len(orders), len(orders)))
    return states, weights


def nemenyi_small_sample(matrix: np.ndarray, cd: float, *, alpha: float = ALPHA, permutations: int = PERMUTATIONS,
                         seed: int = 0) -> tuple[float, float]:
    """How far Demšar's critical difference is from its nominal level on few blocks, and the exact one.

    Nemenyi's CD (:func:`nemenyi_critical_difference`) takes the studentized range of infinitely many blocks. On a
    handful the range of the average ranks under Friedman's null (each block's ranks in any order, equally likely)
    is discrete and bounded (by ``k - 1``), and "two average ranks further apart than CD" happens with a chance
    that can be far from ``alpha`` either way (4 methods on 3 groups: 0.007; 3 methods on 9 groups: 0.060). The
    exact critical value is the ``1 - alpha`` quantile of the range of the rank sums under that null (the
    Wilcoxon-Nemenyi-McDonald-Thompson procedure, Hollander & Wolfe 1999, ch. 7). The null is enumerated as
    :func:`friedman_permutation_p` does, else ``permutations`` seeded draws.

    Args:
        matrix: (N blocks, k competitors) goodness, larger = better, no NaN.
        cd: the critical difference in average ranks whose familywise error is wanted.

    Returns:
        ``(error, exact_cd)``: ``P(max - min average rank > cd)`` under the null, and the smallest difference of
        average ranks whose exceedance has a chance of at most ``alpha`` (pairs further apart than it differ);
        ``inf`` where that is the largest difference the blocks allow (no two competitors can be separated).
    """
    doubled = _doubled_ranks(matrix)
    distribution = _exact_rank_sums(doubled)
    if distribution is not None:
        states, weights = distribution
        ranges = states[:, -1] - states[:, 0]  # states are sorted: the largest minus the smallest rank sum
    else:  # the seeded draws friedman_permutation_p takes
        ranges = np.concatenate([sums.max(axis=1) - sums.min(axis=1)
                                 for sums in _drawn_rank_sums(doubled, permutations, seed)])
        weights = np.full(len(ranges), 1.0 / len(ranges))
    scale = 2.0 * len(doubled)  # doubled rank sums -> average ranks
    error = float(np.clip(weights[ranges / scale > cd + 1e-12].sum(), 0.0, 1.0))
    values, inverse = np.unique(ranges, return_inverse=True)
    above = np.r_[np.bincount(inverse, weights=weights)[::-1].cumsum()[::-1][1:], 0.0]  # P(range > value)
    first = int(np.argmax(above <= alpha + 1e-12))
    return error, float(values[first] / scale) if first < len(values) - 1 else float("inf")
