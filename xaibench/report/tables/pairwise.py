"""Pairwise tests as paper tables: the comparisons with the best per setting (the report's body), and every two
methods of a comparison group, one table per group (the appendix).

``versus_best_tables``: one table per setting (a model on a dataset), shaped like its results table (methods x
metrics): each cell holds the Holm-corrected p of the method against its column's best (Holm over the column's
comparisons with its best: the tests behind the results tables' ``†``) and the rank-biserial ``r`` of the two
(positive: the best scores better). A sweep of many methods then shows k - 1 tests per column, not k (k - 1) / 2.

A row per (method a, method b) of one comparison group (a metric on a model and dataset): ``n`` paired samples,
the Wilcoxon signed-rank statistic ``W`` (scipy's: the smaller signed-rank sum) and its two-sided ``p``, ``p``
Holm-corrected over the group's ``k (k - 1) / 2`` pairs (bold below alpha), ``p`` Holm-corrected over the group's
comparisons with its best (the family behind a results table's ``†``; only pairs with a best method have one),
the matched-pairs rank-biserial ``r`` and the common-language effect size ``CLES`` (both: positive / above 0.5
favours ``a``), and the better method where the all-pairs test separates them. Numbers are those of ``pairwise_tests.csv`` and
``versus_best.csv``.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from xaibench.metrics.spec import Family
from xaibench.report.tables.layouts import NOTE_REVERSED, _key, _ordered, _with_labels
from xaibench.report.tables.model import TIE_MARK, Cell, Column, Table, number, p_text
from xaibench.results.roles import controls_last, is_control, summary_controls

# A control (a reference row, never ranked) the paired test finds significantly better than the best method: the
# "s" note ("although ranked below it") does not apply to it.
NOTE_CONTROL_BETTER = ("c a control, a reference row that is never ranked, significantly better than the column's best "
                       "method (rank-biserial r < 0): on a stability metric because its map does not depend on the "
                       "model (constant: not on the input either; sobel: an edge map of the input alone), elsewhere "
                       "because the metric does not tell the methods apart from a reference that explains nothing on "
                       "this data.")
# The c note of a table whose c cells lie on stability metrics only, or on other metrics only: the one reason that
# applies (NOTE_CONTROL_BETTER gave both under every table, as the results tables did before their warning lines).
# It said "a map that ignores the input is perfectly stable", untrue of sobel (an edge map of the input).
_CONTROL_BETTER_WHY = {True: "on a stability metric, because its map does not depend on the model and so changes "
                             "little when the input is perturbed (constant: not at all; sobel: an edge map of the "
                             "input alone)",
                       False: "the metric does not tell the methods apart from a reference that explains nothing on "
                              "this data"}

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


def versus_best_tables(pairs: pd.DataFrame, versus: pd.DataFrame, summary: pd.DataFrame, *,
                       alpha: float, beside: bool = True) -> list[Table]:
    """One table per setting (a model on a dataset): methods x metrics, each method against its column's best.

    Args:
        pairs: ``statistics.pairwise_tests``; versus: ``statistics.versus_best`` of them (p Holm, r).
        summary: the summary the tests belong to (labels, ranks, which methods have a score).
        beside: the report's CSVs and appendix lie beside the tables (``xaibench report``); False (``summary -o``):
            the note names the command that writes them.
    """
    if versus is None or versus.empty:
        return []
    rows = _with_labels(summary[summary["mean"].notna()])
    tests = {comparison: group for comparison, group in versus.groupby("comparison", sort=False)}
    return [_versus_table(group, tests, alpha, beside) for _, group in rows.groupby("setting_label", sort=True)
            if group["comparison"].isin(list(tests)).any()]


def _versus_table(rows: pd.DataFrame, tests: dict, alpha: float, beside: bool = True) -> Table:
    columns = _ordered(rows, "metric_label", by=["family", "metric_label"])
    methods = controls_last(rows["competitor"].astype(str).unique(), summary_controls(rows))
    controls = summary_controls(rows)
    headers, body, marked, reversed_, control_better = [], {m: [] for m in methods}, False, False, set()
    for column in columns:
        group = rows[rows["metric_label"] == column].set_index("competitor")
        first = group.iloc[0]
        headers.append(Column(column, "↑" if first["higher_is_better"] else "↓"))
        versus = tests.get(first["comparison"], pd.DataFrame(columns=["method"]))
        for method in methods:
            cell = _versus_cell(method, group, versus, alpha)
            if "s" in cell.marks and is_control(method, controls):  # a reference row: never ranked below the best
                cell = replace(cell, marks=("c",))
            marked |= cell.tie
            reversed_ |= "s" in cell.marks
            if "c" in cell.marks:
                control_better.add(first["family"] == Family.STABILITY)
            body[method].append(cell)
    first = rows.iloc[0]
    caption = (f"Tests against the best, {first['setting_label']}: per metric, each method against the column's best "
               "(bold): Holm-corrected p (two-sided paired Wilcoxon signed-rank test over the samples both scored, "
               "Holm over the column's comparisons with its best) and, in parentheses, the matched-pairs "
               "rank-biserial r (Kerby 2014; r > 0: the best scores better; 1: better on every sample where the two "
               "differ).")
    notes = (f"{TIE_MARK} p Holm >= alpha = {alpha:g} (or too few shared samples to test): not significantly "
             "different from the best; these are the tests behind the results tables' †." if marked else
             f"Every method differs significantly from its column's best (p Holm < alpha = {alpha:g}).",
             "These tests are in versus_best.csv; every pair of methods (k(k-1)/2 per column, Holm over "
             "them) in the appendix (appendix_pairwise.md/.tex) and pairwise_tests.csv." if beside else
             "xaibench report writes these tests (versus_best.csv) and every pair of methods (k(k-1)/2 per column, "
             "Holm over them: appendix_pairwise.md/.tex, pairwise_tests.csv).")
    notes += (NOTE_REVERSED + ".",) if reversed_ else ()
    notes += (_control_better_note(control_better),) if control_better else ()
    return Table(key=_key("versus-best", first["setting_label"]), caption=caption, corner="method",
                 columns=tuple(headers), rows=tuple((m, tuple(body[m])) for m in methods), notes=notes)


def _control_better_note(stability: set[bool]) -> str:
    """The ``c`` note with the reason(s) that apply: ``stability`` holds whether each flagged column is a stability
    metric's."""
    if len(stability) > 1:
        return NOTE_CONTROL_BETTER
    return ("c a control, a reference row that is never ranked, significantly better than the column's best method "
            f"(rank-biserial r < 0): {_CONTROL_BETTER_WHY[next(iter(stability))]}.")


def _versus_cell(method: str, group: pd.DataFrame, versus: pd.DataFrame, alpha: float) -> Cell:
    """``best`` (bold) for a best method; else the comparison with a best that decides ``†`` (untested first, then
    the largest p Holm), as ``p (r)``; ``-`` where the method has no score in this column."""
    if method not in group.index:
        return Cell("-")
    if pd.notna(group.loc[method, "rank"]) and group.loc[method, "rank"] == 1:  # a control has no rank
        return Cell("best", best=True)
    mine = versus[versus["method"] == method]
    if mine.empty:
        return Cell("-")
    row = mine.assign(untested=mine["p_holm"].isna()).sort_values(["untested", "p_holm"], ascending=False).iloc[0]
    if not np.isfinite(row["p_holm"]):
        return Cell("untested", tie=True)
    # r < 0 and separated: the method is significantly better than the best on their shared samples (NOTE_REVERSED)
    better = bool(row["p_holm"] < alpha and row["rank_biserial"] < 0)
    return Cell(f"{p_text(row['p_holm'])} ({number(row['rank_biserial'])})", tie=bool(row["p_holm"] >= alpha),
                marks=("s",) if better else ())
