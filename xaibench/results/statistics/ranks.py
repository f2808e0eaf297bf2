"""Ranks of competitors within comparison groups (on the samples they all scored) and average ranks over groups;
the metrics' column order."""
from __future__ import annotations

import numpy as np
import pandas as pd

from xaibench.results.roles import summary_controls
from xaibench.results.statistics.levels import snap_ties
from xaibench.results.statistics.pairwise import per_sample_scores

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
