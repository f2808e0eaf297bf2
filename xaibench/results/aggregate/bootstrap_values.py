"""A chunk's ok values laid out for the bootstrap: the groups bucketed by shape (one seed: its samples; several:
a seeds x sample ids grid), each bucket's values as one array (``bootstrap_shapes``)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def bootstrap_shapes(values: np.ndarray, samples: np.ndarray,
            per_seed: pd.DataFrame) -> list[tuple[tuple, np.ndarray, np.ndarray]]:
    """Groups bucketed by shape, each bucket's values as one array.

    One seed: shape ``("samples", (n,))``, values ``(groups, n)``. Several: shape ``("grid", (S, N))`` for ``S``
    seeds and ``N`` distinct sample ids (``samples``: each value's), values ``(groups, S * N)`` with seed ``s``'s
    score of sample ``i`` at ``s * N + i`` and NaN where that seed did not score that sample: the two-way bootstrap
    resamples a sample id in every seed at once.
    """
    sizes = per_seed["size"].to_numpy()
    starts = np.cumsum(sizes) - sizes  # also right when no value is ok (no groups)
    groups = per_seed.index.get_level_values("g").to_numpy()
    if not groups.size:
        return []
    first = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])  # each group's first (group, seed) row
    n_seeds = np.diff(np.r_[first, groups.size])
    seed_of = np.repeat(np.arange(groups.size) - np.repeat(first, n_seeds), sizes)  # 0..S-1 per value
    counts = np.add.reduceat(sizes, first)  # values per group
    n_samples = np.maximum.reduceat(samples, starts[first]) + 1
    buckets: dict[tuple, list[int]] = {}  # shape -> positions in ``first``
    for position in range(first.size):
        shape = (("samples", (int(counts[position]),)) if n_seeds[position] == 1
                 else ("grid", (int(n_seeds[position]), int(n_samples[position]))))
        buckets.setdefault(shape, []).append(position)
    out = []
    for shape, members in sorted(buckets.items()):
        members = np.array(members)
        begin, count = starts[first[members]], counts[members]
        index = np.repeat(begin - np.cumsum(count) + count, count) + np.arange(count.sum())  # their values
        if shape[0] == "samples":
            block = values[index].reshape(len(members), shape[1][0])
        else:
            n = shape[1][1]
            block = np.full((len(members), shape[1][0] * n), np.nan)
            block[np.repeat(np.arange(len(members)), count), seed_of[index] * n + samples[index]] = values[index]
        out.append((shape, groups[first[members]], block))
    return out
