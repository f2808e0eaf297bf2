"""Paired Wilcoxon tests between every two competitors of each comparison group, Holm-corrected across the
group's pairs, with their effect sizes; and each competitor against its group's best (a table's ``†``)."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from xaibench.results.groups import comparison_id, competitor_labels
from xaibench.results.statistics.effect_sizes import paired_effects
from xaibench.results.statistics.holm import holm
from xaibench.results.statistics.levels import ALPHA, TIE_RTOL
from xaibench.results.statistics.wilcoxon import wilcoxon_pair

PAIR_COLUMNS = ["comparison", "model", "dataset", "metric", "family", "higher_is_better", "method_a", "method_b", "n",
                "statistic", "p_value", "p_holm", "rank_biserial", "cles", "winner"]


def per_sample_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Ok rows as (comparison, sample_id, seed) x competitor scores, sorted; NaN where a competitor has none."""
    ok = table[table["status"].astype(str) == "ok"]
    seed = ok["seed"].to_numpy() if "seed" in ok.columns else np.zeros(len(ok), dtype=np.int64)
    frame = pd.DataFrame({"comparison": comparison_id(ok), "competitor": competitor_labels(ok),
                          "sample_id": ok["sample_id"].astype(str), "seed": seed,
                          "value": ok["value"].astype(np.float64)})
    return frame.pivot_table(index=["comparison", "sample_id", "seed"], columns="competitor", values="value",
                             aggfunc="mean", observed=True)


def pairwise_tests(table: pd.DataFrame, *, alpha: float = ALPHA) -> pd.DataFrame:
    """Wilcoxon signed-rank tests between every two competitors of each comparison group (one metric each).

    Pairs are samples: with several seeds, a sample's difference is its mean difference over the seeds in which
    both competitors scored it (see the module docstring).

    Returns:
        One row per (comparison, method_a, method_b) with ``n`` paired samples, the Wilcoxon ``statistic``
        (scipy's: the smaller signed-rank sum), ``p_value``, ``p_holm`` (Holm over the group's pairs),
        ``rank_biserial`` and ``cles`` (positive / above 0.5 = ``method_a`` better, in the metric's direction)
        and ``winner`` (the better competitor when ``p_holm < alpha``, else "").
    """
    if table.empty:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    scores = per_sample_scores(table)
    info = _comparison_info(table)
    frames = []
    for comparison, block in scores.groupby(level="comparison", sort=True):
        block = block.dropna(axis=1, how="all")
        if block.shape[1] < 2:
            continue
        meta = info.loc[comparison]
        tests = _block_tests(block, 1.0 if meta["higher_is_better"] else -1.0)
        tests["p_holm"] = holm(tests["p_value"].to_numpy())
        better = np.where(tests["rank_biserial"] > 0, tests["method_a"], tests["method_b"])
        tests["winner"] = np.where(tests["p_holm"] < alpha, better, "")
        frames.append(tests.assign(comparison=comparison, **meta.to_dict()))
    if not frames:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    out = pd.concat(frames, ignore_index=True)[PAIR_COLUMNS]
    return out.sort_values(["model", "dataset", "metric", "comparison", "method_a", "method_b"], ignore_index=True)


VERSUS_BEST_COLUMNS = ["comparison", "model", "dataset", "metric", "best", "method", "n", "statistic", "p_value",
                       "p_holm", "separated", "rank_biserial"]


def versus_best(pairs: pd.DataFrame, summary: pd.DataFrame, *, alpha: float = ALPHA) -> pd.DataFrame:
    """Each competitor against the best of its comparison group: the tests behind a table's ``†``.

    The best are the competitors ranked 1 in ``summary`` (tied bests all count). The family Holm corrects over is
    the group's comparisons of a non-best competitor with a best one: ``k - 1`` tests with one best of ``k``
    competitors (comparisons with a control, Demšar 2006 sec. 3.2.2; the best is chosen from the same data, so
    read it as a description, as every "best" in a results table is). ``pairs[p_holm]`` corrects over all
    ``k (k - 1) / 2`` pairs instead, the family for claims about any two methods.

    Args:
        pairs: :func:`pairwise_tests` of the summarised table (raw ``p_value`` per pair).
        summary: :func:`xaibench.results.aggregate.summarize` of the same table (``rank``, ``mean``).

    Returns:
        One row per (comparison, best, other competitor with a mean): the pair's ``n``, ``statistic`` and raw
        ``p_value``, ``p_holm`` over the group's comparisons with its best, and ``separated`` (``p_holm < alpha``;
        False where the two share too few samples to test, p NaN), and the pair's ``rank_biserial`` oriented to the
        best (positive: the best scores better).
    """
    scored = summary[summary["mean"].notna()]
    tested = {(c, a, b): row for c, a, b, row in zip(pairs["comparison"], pairs["method_a"], pairs["method_b"],
                                                     pairs.itertuples(index=False))}
    records = []
    for comparison, group in scored.groupby("comparison", sort=True):
        best = sorted(group.loc[group["rank"].eq(1).fillna(False).astype(bool), "competitor"].astype(str))
        others = sorted(set(group["competitor"].astype(str)) - set(best))
        first = group.iloc[0]
        for top, method in itertools.product(best, others):
            pair = tested.get((comparison, *sorted((top, method))))
            records.append({"comparison": comparison, "model": first["model"], "dataset": first["dataset"],
                            "metric": first["metric"], "best": top, "method": method,
                            "n": pair.n if pair is not None else 0,
                            "statistic": pair.statistic if pair is not None else np.nan,
                            "p_value": pair.p_value if pair is not None else np.nan,
                            "rank_biserial": (np.nan if pair is None else
                                              pair.rank_biserial if pair.method_a == top else -pair.rank_biserial)})
    out = pd.DataFrame.from_records(records, columns=[c for c in VERSUS_BEST_COLUMNS
                                                      if c not in ("p_holm", "separated")])
    out["p_holm"] = out.groupby("comparison")["p_value"].transform(lambda p: holm(p.to_numpy())) if len(out) \
        else pd.Series(dtype=np.float64)
    out["separated"] = out["p_holm"] < alpha
    return out[VERSUS_BEST_COLUMNS]


def _block_tests(block: pd.DataFrame, sign: float) -> pd.DataFrame:
    """Tests of every competitor pair of one group; (sample, seed) x competitors ``block`` sorted by sample,
    ``sign`` orients to better."""
    names = sorted(block.columns)
    pairs = list(itertools.combinations(range(len(names)), 2))
    first, second = (np.array(side) for side in zip(*pairs))
    values = block[names].to_numpy(dtype=np.float64).T  # (k, sample-seed rows)
    samples = block.index.get_level_values("sample_id")
    magnitude = np.where(np.isfinite(values), np.abs(values), np.nan)  # an infinite score makes no difference a tie
    floor = np.nanmedian(magnitude) if np.isfinite(magnitude).any() else 0.0
    scale = np.fmax(_per_sample(np.fmax(magnitude[first], magnitude[second]), samples), floor)
    differences = _per_sample(sign * (values[first] - values[second]), samples)
    differences[np.abs(differences) <= TIE_RTOL * scale] = 0.0  # float rounding is no difference (TIE_RTOL)
    valid = np.isfinite(differences)
    n = valid.sum(axis=1)
    statistic, p, r, cles = (np.full(len(pairs), np.nan) for _ in range(4))
    for size in np.unique(n):  # pairs sharing a sample count: one vectorised scipy call on their shared samples
        rows = np.flatnonzero(n == size)
        shared = differences[rows][valid[rows]].reshape(len(rows), size)
        statistic[rows], p[rows] = wilcoxon_pair(shared)
        r[rows], cles[rows] = paired_effects(shared)
    return pd.DataFrame({"method_a": [names[i] for i in first], "method_b": [names[j] for j in second], "n": n,
                         "statistic": statistic, "p_value": p, "rank_biserial": r, "cles": cles})


def _per_sample(differences: np.ndarray, samples: pd.Index) -> np.ndarray:
    """``(pairs, rows)`` paired differences of (sample, seed) rows sorted by sample -> ``(pairs, samples)`` means
    over each sample's seeds where the difference is finite (NaN where it is nowhere: the pair lacks the sample)."""
    starts = np.flatnonzero(np.r_[True, samples[1:] != samples[:-1]])
    if starts.size == differences.shape[1]:  # one seed per sample: nothing to average
        return differences
    valid = np.isfinite(differences)
    sums = np.add.reduceat(np.where(valid, differences, 0.0), starts, axis=1)
    counts = np.add.reduceat(valid.astype(np.float64), starts, axis=1)
    return np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)


def _comparison_info(table: pd.DataFrame) -> pd.DataFrame:
    frame = table[["model", "dataset", "metric", "family", "higher_is_better"]].assign(
        comparison=comparison_id(table))
    return frame.drop_duplicates("comparison").set_index("comparison")
