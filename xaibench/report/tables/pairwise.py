"""Pairwise tests as paper tables: every two methods of a comparison group, one table per group.

A row per (method a, method b) of one comparison group (a metric on a model and dataset): ``n`` paired samples,
the Wilcoxon signed-rank statistic ``W`` (scipy's: the smaller signed-rank sum) and its two-sided ``p``, ``p``
Holm-corrected over the group's ``k (k - 1) / 2`` pairs (bold below alpha), ``p`` Holm-corrected over the group's
comparisons with its best (the family behind a results table's ``†``; only pairs with a best method have one),
the matched-pairs rank-biserial ``r`` and the common-language effect size ``CLES`` (both: positive / above 0.5
favours ``a``), and the better method where the all-pairs test separates them. Numbers are those of ``pairwise_tests.csv`` and
``versus_best.csv``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from xaibench.report.tables.layouts import _key, _with_labels
from xaibench.report.tables.model import Cell, Column, Table, number, p_text

COLUMNS = (Column("n"), Column("W"), Column("p"), Column("p Holm (all)"), Column("p Holm (best)"), Column("r"),
           Column("CLES"), Column("better"))
NOTES = ("Holm (all): over the group's k(k-1)/2 pairs, for claims about any two methods (better: the method it "
         "favours). Holm (best): over the comparisons with the group's best method, the family of the results "
         "tables' †; - where neither method is the best.",
         "r: matched-pairs rank-biserial correlation (Kerby 2014); CLES: chance that a scores better than b on a "
         "random sample; r > 0 and CLES > 0.5 favour a (in the metric's direction). W: the smaller signed-rank sum, "
         "zero differences dropped.")


def pairwise_tables(pairs: pd.DataFrame, versus: pd.DataFrame, summary: pd.DataFrame, *,
                    alpha: float) -> list[Table]:
    """One table of every pairwise test per comparison group (a metric on a setting), by setting then metric.

    Args:
        pairs: ``statistics.pairwise_tests``; versus: ``statistics.versus_best`` of the same pairs.
        summary: the summary the tests belong to (its labels name settings and metrics).
    """
    if pairs.empty:
        return []
    labels = _with_labels(summary).drop_duplicates("comparison").set_index("comparison")
    frame = pairs.join(labels[["setting_label", "metric_label"]], on="comparison")
    holm_best = _versus_best_p(versus)
    ordered = frame.sort_values(["setting_label", "family", "metric_label", "method_a", "method_b"], kind="stable")
    return [_table(rows, holm_best, alpha) for _, rows in ordered.groupby(["setting_label", "family", "metric_label"],
                                                                         sort=False)]


def _versus_best_p(versus: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    """(comparison, method a, method b) sorted as in ``pairs`` -> p Holm-corrected over the comparisons with the
    best."""
    return {(c, *sorted((best, method))): p for c, best, method, p in
            zip(versus["comparison"], versus["best"], versus["method"], versus["p_holm"])}


def _table(rows: pd.DataFrame, holm_best: dict, alpha: float) -> Table:
    body = []
    for r in rows.itertuples(index=False):
        best_p = holm_best.get((r.comparison, r.method_a, r.method_b), np.nan)
        cells = (Cell(str(int(r.n))), Cell(_w(r.statistic)), Cell(p_text(r.p_value)),
                 Cell(p_text(r.p_holm), best=bool(r.p_holm < alpha)),
                 Cell(p_text(best_p) if np.isfinite(best_p) else "-", best=bool(best_p < alpha)),
                 Cell(number(r.rank_biserial)), Cell(number(r.cles)), Cell(r.winner or "-"))
        body.append((f"{r.method_a} vs {r.method_b}", cells))
    first = rows.iloc[0]
    arrow = "↑" if first["higher_is_better"] else "↓"
    caption = (f"Pairwise tests, {first['metric_label']} {arrow} on {first['setting_label']}: two-sided paired "
               "Wilcoxon signed-rank test over the n samples both methods scored (a sample scored in several seeds "
               f"counts once). Bold: Holm-corrected p < alpha = {alpha:g}.")
    return Table(key=_key("pairwise", f"{first['setting_label']} {first['metric_label']}"), caption=caption,
                 corner="a vs b", columns=COLUMNS, rows=tuple(body), notes=NOTES)


def _w(statistic: float) -> str:
    """The signed-rank statistic: a whole or half number of ranks."""
    return "-" if not np.isfinite(statistic) else f"{statistic:.1f}".removesuffix(".0")
