"""Statistics for comparing explanation methods, derived only from a results table and its summary.

- :func:`pairwise_tests`: paired Wilcoxon signed-rank tests (Wilcoxon 1945) between every two competitors on the
  same samples of one comparison group, Holm-corrected across the pairs of that group (Holm 1979), with the
  matched-pairs rank-biserial correlation (Kerby 2014) and the paired common-language effect size (McGraw & Wong
  1992: the chance that a competitor scores better than the other on a random sample).
- :func:`average_ranks`: mean rank per competitor over comparison groups, following each metric's direction.
- :func:`friedman_nemenyi`: Friedman test over comparison groups (blocks) and Nemenyi post-hoc with the
  critical difference of Demšar (2006), "Statistical comparisons of classifiers over multiple data sets", JMLR 7.
- :func:`metric_agreement`: Kendall's tau between the competitor rankings that two metrics induce in the same
  setting, averaged over settings (metrics disagreeing is a known open problem: Tomsett et al. 2020).
- :func:`control_checks` / :func:`control_first`: whether each method significantly beats each control (a method
  whose rows record ``"role": "control"``: ``random``, ``constant``, ``sobel``, a user's own; ``results/roles.py``),
  and metrics on which a control scores as well as the best method (controls are reference rows, never ranked).

scipy does the tests, scikit-posthocs the Nemenyi p-values; Holm's correction equals statsmodels'. Competitors are
:func:`xaibench.results.groups.competitor_labels` (a method with its parameters).

The unit of replication is the sample (``sample_id``, one dataset row), also with several seeds: two competitors
are paired on each (seed, sample) both scored, and a sample's paired difference is the mean of its differences
over those seeds. So a sample scored in three seeds is one pair, not three (seeds share the sample and mostly the
model's quirks, so their differences are not independent), and three identical seeds give the tests of one.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xaibench.metrics.spec import Family
from xaibench.results.groups import comparison_id, competitor_labels, setting_id
from xaibench.results.roles import summary_controls, table_controls

# scipy.stats is imported inside the functions that test: a sweep's printed summary (control_warnings) needs none
# of it, and importing it costs about 0.7 CPU-s per process.

ALPHA = 0.05
# Scores closer than this share of their magnitude (the larger of the two, or the comparison group's median
# magnitude where that is larger: values near 0 of a metric computed on a larger scale) are equal: metrics compute in
# float32 (one unit in the last place is 1.2e-7 relative), so integrated gradients and input x gradient on a linear
# model, identical in exact arithmetic, differ by ~1e-7 and would otherwise be ranked, bolded and "significantly"
# apart. The group's *largest* magnitude was the scale before: one method at 1e6 (DeepLIFT's max_sensitivity) tied
# integrated gradients at 0.15 with the constant control at 0 and zeroed every other pair's differences.
TIE_RTOL = 1e-6

PAIR_COLUMNS = ["comparison", "model", "dataset", "metric", "family", "higher_is_better", "method_a", "method_b", "n",
                "statistic", "p_value", "p_holm", "rank_biserial", "cles", "winner"]


def snap_ties(values: pd.Series, groups: pd.Series, rtol: float = TIE_RTOL) -> pd.Series:
    """``values`` with every run of near-equal values within a group replaced by the run's smallest value.

    Two sorted neighbours are near-equal when they differ by at most ``rtol`` times the larger of their magnitudes
    and the group's median magnitude (float rounding, not a difference between methods; :data:`TIE_RTOL`); the
    scale counts finite values only, and +-inf stay themselves. NaN stays NaN. Ranking the result gives tied ranks.
    """
    frame = pd.DataFrame({"g": groups.to_numpy(), "v": values.to_numpy(dtype=np.float64)}, index=values.index)
    frame = frame[frame["v"].notna()].sort_values(["g", "v"], kind="stable")
    magnitude = frame["v"].abs().where(np.isfinite(frame["v"]))
    floor = magnitude.groupby(frame["g"]).transform("median")
    scale = np.fmax(np.fmax(magnitude, magnitude.shift()), floor).fillna(0.0)  # a group's first row starts a run
    new_group = frame["g"].ne(frame["g"].shift()).to_numpy()
    new_run = new_group | (frame["v"].diff().to_numpy() > rtol * scale.to_numpy())
    snapped = frame["v"].groupby(np.cumsum(new_run)).transform("first")
    return snapped.reindex(values.index)


# --- paired tests within one comparison group -------------------------------------------------------------------

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


def wilcoxon_pair(differences: np.ndarray) -> tuple[np.ndarray, np.ndarray] | tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test (scipy; zero differences dropped): (statistic, p-value).

    Args:
        differences: ``(n,)`` paired differences (floats returned) or ``(P, n)``, one test per row (arrays;
            scipy tests all rows in one vectorised call).
    """
    from scipy import stats

    d = np.asarray(differences, dtype=np.float64)
    if d.ndim == 1:
        statistic, p = wilcoxon_pair(d[None])
        return float(statistic[0]), float(p[0])
    statistic, p = np.full(len(d), np.nan), np.full(len(d), np.nan)
    if d.shape[1] == 0:
        return statistic, p
    identical = ~np.any(d != 0, axis=1)
    statistic[identical], p[identical] = 0.0, 1.0  # the same score on every sample: no evidence of a difference
    # scipy picks the exact, permutation or normal-approximation p-value once per call, from whether *any* row
    # has zeros or tied |d|; one call per kind of row gives every pair the p-value scipy gives it alone.
    untied = _untied_rows(d)
    for rows in (~identical & untied, ~identical & ~untied):
        if rows.any():
            result = stats.wilcoxon(d[rows], zero_method="wilcox", alternative="two-sided", axis=1)
            statistic[rows], p[rows] = result.statistic, result.pvalue
    return statistic, p


def _untied_rows(d: np.ndarray) -> np.ndarray:
    """Rows of ``d`` (P, n) without zeros and without tied absolute values (scipy's exact-test condition)."""
    magnitudes = np.sort(np.abs(d), axis=1)
    tied = np.any(magnitudes[:, 1:] == magnitudes[:, :-1], axis=1) if d.shape[1] > 1 else np.zeros(len(d), bool)
    return ~(np.any(d == 0, axis=1) | tied)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (Holm 1979); NaN stays NaN.

    ``p_(i) * (m - i + 1)`` over the ascending p-values, made monotone and capped at 1: the same numbers as
    statsmodels' ``multipletests(method="holm")`` (checked in the tests), which calls ``gc.collect()`` on every
    call: 0.2 s per comparison group in a large process, minutes for a report with many groups.
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    values = p[finite]
    order = np.argsort(values, kind="stable")
    adjusted = np.empty(values.size)
    adjusted[order] = np.minimum(np.maximum.accumulate(values[order] * np.arange(values.size, 0, -1)), 1.0)
    out[finite] = adjusted
    return out


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


# --- ranks over comparison groups ---------------------------------------------------------------------------------

# Summary column of the mean that ranks compare (:func:`shared_sample_ranks`): over the samples every ranked
# competitor of the group scored. A summary without it (``summarize`` alone) has its ``rank`` on them already
# (``results/shared.py``): :func:`goodness` orders by that rank.
RANKED_MEAN = "shared_mean"


def ranked_mean(summary: pd.DataFrame) -> pd.Series:
    """The mean ranks compare: ``shared_mean`` where :func:`shared_sample_ranks` added it, else ``mean``."""
    return summary[RANKED_MEAN] if RANKED_MEAN in summary.columns else summary["mean"]


def goodness(summary: pd.DataFrame) -> pd.Series:
    """The ranked mean (:func:`ranked_mean`) oriented so that larger is better on every metric; NaN: not ranked
    (no mean, or a control: controls are reference rows, never ranked).

    A ``summarize`` summary (no ``shared_n``: ranked by ``summarize`` itself, whose ``shared_mean`` only the control
    checks read) has goodness ``-rank``, the order and ties ``summarize`` gave, which is all that the average ranks,
    Friedman/Nemenyi and Kendall's tau read (the W&B sweep run's statistics of a streamed summary agree with the
    report's)."""
    if "shared_n" not in summary.columns and "rank" in summary.columns:
        return -summary["rank"].astype("float64")  # a control has no rank
    mean = ranked_mean(summary)
    control = summary["competitor"].astype(str).isin(summary_controls(summary)) if "competitor" in summary.columns \
        else pd.Series(False, index=summary.index)
    return mean.where(summary["higher_is_better"].astype(bool), -mean).where(~control)  # controls: not ranked


def tied_goodness(summary: pd.DataFrame) -> pd.Series:
    """:func:`goodness` with means equal up to float rounding made equal within each comparison group."""
    return snap_ties(goodness(summary), summary["comparison"])


def fractional_ranks(summary: pd.DataFrame) -> pd.Series:
    """Rank within each comparison group, 1 = best, ties get the average rank (as Friedman's test uses)."""
    ok = goodness(summary).notna()
    ranks = (-tied_goodness(summary[ok])).groupby(summary.loc[ok, "comparison"]).rank(method="average")
    return ranks.reindex(summary.index)


def shared_sample_ranks(table: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` ranked on the samples every ranked competitor of a comparison group scored.

    A competitor's ``mean`` skips the samples it scored NaN on (and the seeds whose cell failed), so ranking means
    would rank a method that failed on its hardest 38% of samples on the easy rest. Ranks compare competitors on
    the same samples instead: within each comparison group, the (seed, sample) values that every competitor with a
    mean scored; a competitor's ``shared_mean`` is the mean over seeds of its per-seed means over them (the
    summary's ``mean`` where nothing is missing). Controls (``roles.summary_controls``) are reference rows, not
    competitors for the best: they keep their ``shared_mean`` (:func:`controls_ahead` compares it with the best
    method's) but no ``rank``. ``rank`` (1 = best method, ties share the best rank, as ``summarize``),
    the bold cells, the tests against the best, average ranks, Friedman/Nemenyi and metric agreement then use it
    (:func:`goodness`). The table cells keep the ``mean`` of each competitor's own samples.

    Args:
        table: the rows ``summary`` summarises.
        summary: :func:`xaibench.results.aggregate.summarize` of ``table``.

    Returns:
        A copy of ``summary`` with ``rank`` recomputed and three columns: ``shared_mean``, ``shared_n`` (distinct
        samples every ranked competitor of the group scored; 0 where they share none: then nobody is ranked) and
        ``group_n`` (distinct samples some ranked competitor of the group scored). ``shared_n < group_n`` states
        the share of samples the ranks leave out.
    """
    out = summary.copy()
    out[RANKED_MEAN], out["shared_n"], out["group_n"] = np.nan, 0, 0
    has_mean = out["mean"].notna()
    if not has_mean.any():
        return out
    scores = per_sample_scores(table)
    ranked = out[has_mean].groupby("comparison", sort=False)["competitor"].agg(lambda c: sorted(map(str, c)))
    means, counts = {}, {}
    for comparison, block in scores.groupby(level="comparison", sort=False):
        if comparison not in ranked.index:
            continue
        names = [c for c in ranked[comparison] if c in block.columns]
        present = block[names].notna()
        common = block.loc[present.all(axis=1), names]
        if len(common):
            means.update({(comparison, name): value
                          for name, value in common.groupby(level="seed").mean().mean().items()})
        counts[comparison] = (common.index.get_level_values("sample_id").nunique(),
                              block[present.any(axis=1)].index.get_level_values("sample_id").nunique())
    keys = zip(out["comparison"].astype(str), out["competitor"].astype(str))
    out[RANKED_MEAN] = np.where(has_mean, [means.get(k, np.nan) for k in keys], np.nan)
    sizes = out["comparison"].astype(str).map(counts)
    out["shared_n"] = [c[0] if isinstance(c, tuple) else 0 for c in sizes]
    out["group_n"] = [c[1] if isinstance(c, tuple) else 0 for c in sizes]
    signed = -goodness(out)  # smaller = better; NaN for controls: no rank
    out["rank"] = snap_ties(signed, out["comparison"]).groupby(out["comparison"]).rank(method="min").astype("Int64")
    return out


def metric_order(summary: pd.DataFrame) -> list[str]:
    """The summary's metrics by family, then name: the column order of every report table, figure and the console
    (alphabetical where the summary has no ``family``)."""
    columns = [c for c in ("family", "metric") if c in summary.columns]
    pairs = summary[columns].astype(str).drop_duplicates()
    return list(dict.fromkeys(pairs.sort_values(columns)["metric"]))


def average_ranks(summary: pd.DataFrame, by: str = "metric") -> pd.DataFrame:
    """Mean rank of each competitor over comparison groups, per metric, per metric family, or over all.

    Args:
        summary: :func:`xaibench.results.aggregate.summarize` output.
        by: ``"metric"``, ``"family"`` or ``"all"``.

    Returns:
        Columns ``method`` (competitor), ``scope`` (the metric, the family or ``"all"``), ``avg_rank`` (1 = best),
        ``n_groups`` (comparison groups in which the competitor has a score), sorted by scope then rank. Groups
        where fewer than two competitors have a score rank nobody (winning alone is no result).
    """
    if by not in ("metric", "family", "all"):
        raise ValueError(f"by must be 'metric', 'family' or 'all', not {by!r}")
    ranks = fractional_ranks(summary)
    competing = ranks.notna().groupby(summary["comparison"]).transform("sum") >= 2  # a lone method wins nothing
    frame = pd.DataFrame({"method": summary["competitor"], "rank": ranks.where(competing),
                          "scope": "all" if by == "all" else summary[by]}).dropna(subset=["rank"])
    out = frame.groupby(["scope", "method"], sort=True)["rank"].agg(avg_rank="mean", n_groups="size").reset_index()
    return out[["method", "scope", "avg_rank", "n_groups"]].sort_values(["scope", "avg_rank", "method"],
                                                                          ignore_index=True)


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over blocks (comparison groups) x competitors, Nemenyi post-hoc and its critical difference."""

    statistic: float
    p_value: float
    avg_ranks: pd.Series  # competitor -> mean rank, 1 = best, ascending
    cd: float  # Nemenyi critical difference at ``alpha`` (Demšar 2006, sec. 3.2.2)
    pairwise_p: pd.DataFrame  # competitor x competitor Nemenyi p-values
    n_blocks: int
    alpha: float = ALPHA
    dropped: tuple[str, ...] = field(default=())  # competitors left out: missing from most blocks
    note: str = ""  # why a test could not be run, else ""
    p_method: str = "chi-square"  # how ``p_value`` was computed (:func:`friedman_permutation_p` below 10 blocks)
    # Below 10 blocks: the chance, under Friedman's permutation null, that some two average ranks lie further apart
    # than ``cd`` (the CD's real familywise error; Demšar's CD is a large-sample approximation), and the exact CD
    # whose familywise error is at most ``alpha`` (:func:`nemenyi_small_sample`). NaN from 10 blocks on.
    cd_familywise_error: float = float("nan")
    cd_exact: float = float("nan")

    def post_hoc_reason(self) -> str:
        """Why no post-hoc comparison (Nemenyi, a CD diagram) should be shown for this scope, or "" when the
        Friedman test rejects equal average ranks at ``alpha``: Demšar (2006, sec. 3.2.2) proceeds to the post-hoc
        test only then; drawn after a non-rejection, a CD diagram suggests differences the data do not show. Nor
        where the CD is at least ``k - 1``, the largest possible difference of two average ranks (4 methods on 2
        groups: CD 3.32): the diagram joins every method whatever the data, its CD bar past the axis."""
        if len(self.avg_ranks) < 2 or self.n_blocks < 2 or not np.isfinite(self.cd):
            return "needs two methods ranked in at least two groups"
        if not np.isfinite(self.p_value):
            return self.note or "the Friedman test could not be run"
        if self.p_value >= self.alpha:
            return (f"Friedman p = {self.p_value:.3g} >= alpha = {self.alpha:g}: no evidence that the average ranks "
                    "differ")
        k = len(self.avg_ranks)
        if self.cd >= k - 1:  # average ranks lie in [1, k]: no two can be further apart than k - 1
            return (f"CD = {self.cd:.2f} >= k - 1 = {k - 1} on {self.n_blocks} groups: no two of the {k} methods can "
                    "be separated, whatever their ranks")
        return ""


# With fewer comparison groups than this the Friedman p is a permutation p (Friedman 1937's exact null: every block's
# ranks equally likely in any order), not scipy's chi-square approximation, which is off by up to 2x there (3
# methods on 3 groups: chi2 = 4.67 gives 0.097 where the exact p is 0.194).
PERMUTATION_P_BELOW = 10
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


def nemenyi_critical_difference(k: int, n_blocks: int, alpha: float = ALPHA) -> float:
    """Demšar (2006) eq. for the Nemenyi test: ``CD = q_alpha sqrt(k (k + 1) / (6 N))``.

    ``q_alpha`` is the studentized range quantile for ``k`` groups and infinite degrees of freedom divided by
    sqrt(2) (Demšar's Table 5: 2.343 for k=3, 2.728 for k=5 at alpha=0.05).
    """
    from scipy import stats

    q_alpha = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    return float(q_alpha * np.sqrt(k * (k + 1) / (6.0 * n_blocks)))


def block_matrix(summary: pd.DataFrame, metric: str | None = None, family: str | None = None
                 ) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Complete blocks x competitors matrix of goodness (larger = better) for a metric, a family, or all.

    Competitors missing from more than half of the blocks are dropped (and named), then incomplete blocks.
    """
    rows = summary[goodness(summary).notna()]
    if metric is not None:
        rows = rows[rows["metric"] == metric]
    if family is not None:
        rows = rows[rows["family"] == family]
    matrix = pd.DataFrame({"comparison": rows["comparison"], "method": rows["competitor"], "g": tied_goodness(rows)})
    matrix = matrix.pivot_table(index="comparison", columns="method", values="g", aggfunc="first")
    keep = matrix.notna().mean() > 0.5
    dropped = tuple(sorted(matrix.columns[~keep]))
    return matrix.loc[:, keep].dropna(), dropped


def friedman_nemenyi(summary: pd.DataFrame, metric: str | None = None, family: str | None = None, *,
                     alpha: float = ALPHA) -> FriedmanResult:
    """Friedman test of equal average ranks over comparison groups, then Nemenyi's all-pairs post-hoc.

    Args:
        summary: :func:`summarize` output; blocks are its comparison groups (one metric each), restricted to
            ``metric`` or ``family`` when given.
    """
    from scipy import stats

    import scikit_posthocs as sp

    matrix, dropped = block_matrix(summary, metric, family)
    n, k = matrix.shape
    ranks = (-matrix).rank(axis=1, method="average").mean().sort_values()
    empty_p = pd.DataFrame(np.nan, index=matrix.columns, columns=matrix.columns)
    if k < 3 or n < 2:
        note = f"Friedman needs >= 3 competitors and >= 2 groups with every one scored (have {k} and {n})"
        cd = nemenyi_critical_difference(k, n, alpha) if k >= 2 and n >= 1 else float("nan")
        return FriedmanResult(float("nan"), float("nan"), ranks, cd, empty_p, n, alpha, dropped, note)
    statistic, p_value = stats.friedmanchisquare(*(matrix[c].to_numpy() for c in matrix.columns))
    p_method, cd = "chi-square", nemenyi_critical_difference(k, n, alpha)
    cd_familywise_error = cd_exact = float("nan")
    if n < PERMUTATION_P_BELOW and np.isfinite(statistic):
        p_value, p_method = friedman_permutation_p(matrix.to_numpy())
        cd_familywise_error, cd_exact = nemenyi_small_sample(matrix.to_numpy(), cd, alpha=alpha)
    pairwise = sp.posthoc_nemenyi_friedman(matrix.to_numpy())
    pairwise.index, pairwise.columns = matrix.columns, matrix.columns
    return FriedmanResult(float(statistic), float(p_value), ranks, cd, pairwise, n, alpha, dropped,
                          p_method=p_method, cd_familywise_error=cd_familywise_error, cd_exact=cd_exact)


# --- metric agreement -----------------------------------------------------------------------------------------------

def metric_agreement(summary: pd.DataFrame, *, min_competitors: int = 3) -> pd.DataFrame:
    """Kendall's tau-b between the competitor rankings of every two metrics, averaged over settings.

    A setting is one model and dataset with its parameters (:func:`setting_id`): the same competitors scored by
    several metrics. Settings where two metrics share fewer than ``min_competitors`` scored competitors or a
    metric ties every competitor are skipped for that pair.

    Returns:
        Square DataFrame (index/columns = metrics, ordered by family then name; NaN where no setting allows a
        comparison). ``.attrs["family"]`` maps metric -> family, ``.attrs["n_settings"]`` is a matching DataFrame
        of how many settings each tau averages.
    """
    rows = summary[goodness(summary).notna()]
    families = rows.drop_duplicates("metric").set_index("metric")["family"].astype(str)
    metrics = sorted(families.index, key=lambda m: (families[m], m))
    taus = {(a, b): [] for a in metrics for b in metrics}
    # the summary's own ``setting`` (made from the rows' every comparison column); recomputing it from the summary's
    # columns merged settings that differ only in parameters or revisions, and the first of them stood for all
    setting = rows["setting"] if "setting" in rows.columns else setting_id(rows)
    frame = pd.DataFrame({"setting": setting, "metric": rows["metric"], "method": rows["competitor"],
                          "g": tied_goodness(rows)})
    for a, b, tau in _setting_taus(frame, min_competitors):
        taus[(a, b)].append(tau)
        taus[(b, a)].append(tau)
    matrix = pd.DataFrame({b: [np.mean(taus[(a, b)]) if taus[(a, b)] else np.nan for a in metrics] for b in metrics},
                          index=metrics)
    counts = pd.DataFrame({b: [len(taus[(a, b)]) for a in metrics] for b in metrics}, index=metrics)
    for m in metrics:
        matrix.loc[m, m], counts.loc[m, m] = 1.0, 0
    matrix.index.name = matrix.columns.name = "metric"
    matrix.attrs["family"] = families.to_dict()
    matrix.attrs["n_settings"] = counts
    return matrix


def _setting_taus(frame: pd.DataFrame, min_competitors: int) -> Iterator[tuple[str, str, np.float64]]:
    """``(a, b, tau)`` for each setting (sorted) and metric pair ``a < b`` of it whose competitors' goodness ``g``
    (the first row of each competitor and metric, as ``pivot_table(aggfunc="first")`` takes it) both metrics give
    at least ``min_competitors`` competitors: scipy's Kendall tau-b of those, bit for bit, where it is finite.

    scipy's ``kendalltau`` per pair (about 19,000 calls at 10,000 cells, 28 CPU-s with the pandas around them) is
    replaced by exact integer counts for all pairs of a setting at once: ``con - dis`` is the sum over competitor
    pairs of the product of the two metrics' comparison signs, the ties are the pairs a metric gives equal
    values; tau-b is then scipy's ``(con - dis) / sqrt(tot - xtie) / sqrt(tot - ytie)`` in the same float
    operations, clipped to [-1, 1], and NaN (skipped) where a metric ties every pair.
    """
    frame = frame.dropna(subset=["setting", "metric", "method", "g"])  # what groupby and pivot_table leave out
    frame = frame.drop_duplicates(["setting", "metric", "method"], keep="first")
    settings, setting_names = pd.factorize(frame["setting"], sort=True)
    metric_codes, metric_index = pd.factorize(frame["metric"], sort=True)
    metric_names = [str(name) for name in metric_index]
    method_codes = pd.factorize(frame["method"], sort=True)[0]
    values = frame["g"].to_numpy(dtype=np.float64)
    order = np.argsort(settings, kind="stable")
    bounds = np.searchsorted(settings[order], np.arange(len(setting_names) + 1))
    first, second = np.triu_indices(len(metric_names), 1)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        rows = order[start:stop]
        methods, local = np.unique(method_codes[rows], return_inverse=True)
        wide = np.full((len(metric_names), len(methods)), np.nan)
        wide[metric_codes[rows], local] = values[rows]
        present = ~np.isnan(wide)  # (metrics, competitors)
        upper = np.triu(np.ones((len(methods), len(methods)), dtype=bool), 1)
        signs = ((wide[:, :, None] > wide[:, None, :]).astype(np.int64)
                 - (wide[:, :, None] < wide[:, None, :]).astype(np.int64))  # (metrics, i, j)
        both = (present[:, :, None] & present[:, None, :] & upper).reshape(len(metric_names), -1).astype(np.int64)
        flat_signs = signs.reshape(len(metric_names), -1) * both
        tied = (signs.reshape(len(metric_names), -1) == 0) * both
        shared = present.astype(np.int64) @ present.T.astype(np.int64)  # competitors both metrics score
        total, concordance, ties = both @ both.T, flat_signs @ flat_signs.T, tied @ both.T  # ties[a, b]: a's
        for a, b in zip(first, second):
            if shared[a, b] < min_competitors or ties[a, b] == total[a, b] or ties[b, a] == total[a, b]:
                continue
            tau = concordance[a, b] / np.sqrt(total[a, b] - ties[a, b]) / np.sqrt(total[a, b] - ties[b, a])
            tau = np.minimum(1., max(-1., tau))
            if np.isfinite(tau):
                yield metric_names[a], metric_names[b], tau


def has_metric_pairs(tau: pd.DataFrame | None) -> bool:
    """Whether two different metrics of ``tau`` (:func:`metric_agreement`) have a finite Kendall tau: without one
    (e.g. two methods and a control: controls are not ranked, and a tau needs three ranked methods) the matrix
    holds only its diagonal's 1s."""
    if tau is None or len(tau) < 2:
        return False
    values = tau.to_numpy(dtype=float)
    return bool(np.isfinite(values[~np.eye(len(values), dtype=bool)]).any())


def compared_metrics(tau: pd.DataFrame) -> pd.DataFrame:
    """``tau`` without the metrics that have no tau with any other metric (e.g. a counterfactual metric only one
    method is scored on): their row and column would hold nothing but the diagonal's 1."""
    values = tau.to_numpy(dtype=float)
    off_diagonal = np.isfinite(values) & ~np.eye(len(values), dtype=bool)
    keep = off_diagonal.any(axis=1)
    return tau.loc[keep, keep] if keep.sum() >= 2 else tau


def agreement_by_family(matrix: pd.DataFrame) -> pd.DataFrame:
    """Mean Kendall tau over distinct metric pairs within each family and over all pairs.

    Returns:
        Columns ``scope`` (a family or ``"all"``), ``mean_tau``, ``n_pairs`` (pairs with a tau).
    """
    family = matrix.attrs.get("family", {})
    records = []
    scopes = sorted(set(family.values())) + ["all"]
    for scope in scopes:
        members = [m for m in matrix.index if scope == "all" or family.get(m) == scope]
        values = [matrix.loc[a, b] for a, b in itertools.combinations(members, 2) if np.isfinite(matrix.loc[a, b])]
        records.append({"scope": scope, "mean_tau": float(np.mean(values)) if values else float("nan"),
                        "n_pairs": len(values)})
    return pd.DataFrame.from_records(records, columns=["scope", "mean_tau", "n_pairs"])


# --- controls ---------------------------------------------------------------------------------------------------------

CONTROL_COLUMNS = ["comparison", "model", "dataset", "metric", "method", "control", "n", "p_holm", "rank_biserial",
                   "beats"]


def control_checks(table: pd.DataFrame, summary: pd.DataFrame | None = None, *,
                   pairs: pd.DataFrame | None = None, alpha: float = ALPHA) -> pd.DataFrame:
    """Per comparison group (one metric) x non-control competitor x control: does the method beat the control?

    Controls are the competitors whose rows record the control role (``roles.table_controls``; the built-in
    names in a table written before roles were recorded). ``beats`` is True when the paired Wilcoxon test
    (Holm-corrected over the group's pairs) is significant at ``alpha`` and favours the method. ``summary`` is
    accepted for the published interface and unused; pass ``pairs`` (:func:`pairwise_tests` output) to reuse tests
    already run.
    """
    del summary
    pairs = pairwise_tests(table, alpha=alpha) if pairs is None else pairs
    controls = table_controls(table)
    records = []
    for row in pairs.itertuples(index=False):
        for method, control, sign in ((row.method_a, row.method_b, 1), (row.method_b, row.method_a, -1)):
            if control in controls and method not in controls:
                records.append({"comparison": row.comparison, "model": row.model, "dataset": row.dataset,
                                "metric": row.metric, "method": method, "control": control, "n": row.n,
                                "p_holm": row.p_holm, "rank_biserial": sign * row.rank_biserial,
                                "beats": bool(row.winner == method)})
    return pd.DataFrame.from_records(records, columns=CONTROL_COLUMNS)


def controls_ahead(summary: pd.DataFrame) -> pd.Series:
    """Whether each row is a control that scores at least as well as the best method of its comparison group.

    Controls are not ranked (:func:`shared_sample_ranks`): the best is the best non-control method (``rank`` 1).
    A control's ranked mean (:func:`ranked_mean`: over the samples every competitor of the group scored, or the
    ``mean`` of a summary without ``shared_mean``) equal to the best's up to float rounding (:data:`TIE_RTOL`) or
    better is ahead: the constant control on a stability metric, or a metric that does not discriminate.
    """
    if summary.empty:
        return pd.Series(False, index=summary.index, dtype=bool)
    control = summary["competitor"].astype(str).isin(summary_controls(summary)).to_numpy(dtype=bool)
    mean = ranked_mean(summary).astype("float64")
    oriented = mean.where(summary["higher_is_better"].astype(bool), -mean)
    snapped = snap_ties(oriented, summary["comparison"])  # a control tied with the best up to rounding is ahead
    best = snapped.where(summary["rank"].eq(1).fillna(False).to_numpy(dtype=bool)).groupby(
        summary["comparison"]).transform("max")
    return pd.Series(control & (snapped >= best).fillna(False).to_numpy(dtype=bool), index=summary.index)


def control_first(summary: pd.DataFrame) -> pd.DataFrame:
    """Comparison groups in which a control (by its rows' role: the summary's ``role`` column) scores at least as
    well as the best method (:func:`controls_ahead`; controls are not ranked): the metric does not discriminate
    there, or, on a stability metric, a map that ignores the input is stable by construction.

    Returns:
        Columns ``comparison``, ``model_label``, ``dataset_label``, ``metric``, ``control``.
    """
    columns = ["comparison", "model_label", "dataset_label", "metric", "control"]
    if summary.empty:
        return pd.DataFrame(columns=columns)
    first = summary[controls_ahead(summary)]
    out = first.assign(control=first["competitor"])
    return out[columns].sort_values(["metric", "model_label", "dataset_label"], ignore_index=True)


def control_warnings(summary: pd.DataFrame) -> list[str]:
    """One line per reason (stable by construction on a stability metric, else not discriminating) for which a
    control scores at least as well as the best method somewhere, naming the metrics and where: the constant
    control on five stability metrics gave five lines of the same words, at the top of every report. A summary
    whose scored rows are all controls gets one line instead: there is nothing to rank (:func:`nothing_to_rank`)."""
    if nothing_to_rank(summary):
        return [nothing_to_rank(summary)]
    first = control_first(summary)
    families = summary.drop_duplicates("metric").set_index("metric")["family"] if "family" in summary else {}
    stability = first["metric"].map(lambda metric: families.get(metric) == Family.STABILITY)
    lines = []
    for stable in (True, False):
        rows = first[stability == stable]
        if rows.empty:
            continue
        places = [(r.metric, f"{r.model_label}/{r.dataset_label} ({r.control})") for r in rows.itertuples()]
        single = rows["metric"].nunique() == 1
        why = ("a map that ignores the input (the constant control) is perfectly stable by construction: read "
               "stability together with faithfulness and randomisation" if stable else
               f"{'this metric does' if single else 'these metrics do'} not discriminate between methods on this "
               "data")
        lines.append(f"WARNING: a control matches or beats the best method on {metrics_where(places)}: {why}")
    return lines


def nothing_to_rank(summary: pd.DataFrame) -> str:
    """The line every output prints where each scored row of ``summary`` is a control (a sweep of
    ``method=random,constant``): controls are never ranked, so no column has a best, a ``†`` or a rank; "" where
    some method under test has a mean (or nothing has one)."""
    if summary.empty or "mean" not in summary.columns:
        return ""
    scored = summary[summary["mean"].notna()]
    names = scored["competitor"] if "competitor" in scored.columns else scored["method"]
    controls = summary_controls(summary)
    if scored.empty or not names.astype(str).isin(controls).all():
        return ""
    shown = ", ".join(sorted(set(names.astype(str))))
    return (f"NOTE: nothing to rank: every scored row is a control ({shown}), a reference row that is never ranked; "
            "no column has a best method, a † or a rank, and there are no average ranks, Friedman tests or tests "
            "against a best. Run the methods to compare beside the controls (e.g. method=saliency,random).")


def metrics_where(places: Sequence[tuple[str, str]]) -> str:
    """``(metric, where)`` pairs as one phrase, metrics that share every place named together, in the order the
    metrics first come: ``a, b for mlp/iris, cnn/digits; c for mlp/iris``."""
    where: dict[str, list[str]] = {}
    for metric, place in places:
        where.setdefault(metric, [])
        if place not in where[metric]:
            where[metric].append(place)
    together: dict[tuple[str, ...], list[str]] = {}
    for metric, metric_places in where.items():
        together.setdefault(tuple(metric_places), []).append(metric)
    return "; ".join(f"{', '.join(metrics)} for {', '.join(shared)}" for shared, metrics in together.items())
