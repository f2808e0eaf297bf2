"""Table layouts of a summary: what goes in rows and columns, which cell is best, which notes apply.

- ``metrics``: methods x metrics for one setting (one model on one dataset, with their parameters).
- ``datasets``: methods x settings for one metric.
- ``families``: methods x metric families, average rank over comparison groups (and over all).

Best per column = rank 1 in its comparison group (ties share it): the best *method*. Controls (``random``,
``constant``, ``sobel``, a user's own: ``results/roles.py``) are reference rows, listed last: never ranked, never
bold; ``†`` and ``s`` compare them with the best method like any other row, and ``c`` flags a column where one scores
as well as the best method or better. ``†`` marks a cell not significantly different
from a best cell of its column: the paired Wilcoxon test of the two (``statistics.versus_best``, Holm-corrected
over the column's comparisons with its best) has ``p_holm >= alpha`` or could not be run. Without the tests (a
summary alone) ``†`` says only that the two CIs overlap, and the note says that this is no test. Captions give the number of samples
(``n``: distinct sample ids, a sample scored in several seeds counts once) and of seeds. Footnote marks: ``a``
NaN scores, ``b`` errored cells, ``c`` a control scores as well as the column's best method or better (on a stability
metric by construction, elsewhere the metric does not discriminate on this data), ``n`` one scored sample (no CI), ``u`` an underfit model, ``s`` a cell the paired test
finds significantly *better* than its column's best (possible where the pair shares more samples than the whole
column: NaN scores, failed cells). Bold and ranks compare the methods of a column on the samples every one of them
scored (``statistics.shared_sample_ranks``); a note says where that leaves samples out.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from xaibench.metrics.spec import Family
from xaibench.report.tables.model import (NOTE_OVERLAP, Cell, Column, Table, mean_ci, number, separation_note,
                                         significance_note)
from xaibench.results.roles import controls_last, is_control, summary_controls
from xaibench.results.groups import labelled, split_settings
from xaibench.results.statistics import ALPHA, average_ranks, controls_ahead, metrics_where, versus_best
from xaibench.results.statistics.controls import WHY_CONTROL_FIRST, named_controls

LAYOUTS = ("metrics", "datasets", "families")
NOTE_NAN = "a NaN scores, excluded from the mean"
NOTE_ERROR = "b cells that errored on this metric"
# The mark's legend only: the table's "Warning (c)" line above it says which control, where and why (no quotes
# around it: LaTeX typesets straight double quotes as two closing ones).
NOTE_CONTROL = ("c a control (a reference row, not ranked) scores as well as the column's best method or better: the "
                "Warning (c) line above names the control, where, and what it means")
NOTE_SINGLE = "n one scored sample: no confidence interval can be computed"
NOTE_PARTIAL = ("r ranked in k of the column's N groups only (not scored, failed or not applicable in the others): "
                "an average over other groups, not comparable with the bold one.")
# A non-best cell whose paired test against the best goes the other way (rank-biserial r < 0, separated): the means
# ranked it below the best, but on the samples both scored it is significantly better. Without this mark the table
# read "differs significantly from the best", i.e. worse (a best whose mean skips the samples it failed on).
NOTE_REVERSED = ("s significantly better than its column's best on the samples both scored (the paired test behind "
                 "†, rank-biserial r < 0 in versus_best.csv), although ranked below it: the ranks compare the "
                 "samples every method of the column scored, the test the samples these two scored (more where "
                 "another method has NaN scores or failed cells), or the per-sample differences are skewed")
NOTE_UNDERFIT = ("u underfit model (test accuracy below its min_accuracy, or not above the majority-class rate): its "
                 "explanations are not a result")


def build_tables(summary: pd.DataFrame, layouts: tuple[str, ...] = LAYOUTS, *, pairs: pd.DataFrame | None = None,
                 alpha: float = ALPHA) -> list[Table]:
    """Every table of the chosen layouts, in a stable order. Settings where no method has a score (a model that
    cannot take the dataset, cells that all failed) have no row in them; a last table lists them with their
    status and reason, so that nothing the sweep ran drops out of a report unseen.

    ``pairs`` (``statistics.pairwise_tests`` of the summarised table) makes ``†`` a significance mark at
    ``alpha``; without them ``†`` marks overlapping CIs.
    """
    scored = summary.groupby("setting")["mean"].transform(lambda means: means.notna().any())
    rows = _with_labels(summary[scored])
    metric_scored = rows.groupby("metric_label")["mean"].transform(lambda means: means.notna().any())
    unscored = ([unscored_table(summary[~scored], rows[~metric_scored], scored=frozenset(rows["setting_label"]))]
                if (~scored).any() or (~metric_scored).any() else [])
    if rows.empty:
        return unscored
    tests = _Tests(pairs, alpha, summary)
    tables: list[Table] = []
    if "metrics" in layouts:
        tables += [metrics_table(group, tests) for _, group in rows.groupby("setting_label", sort=True)]
    if "datasets" in layouts:  # a metric scored in no setting has no datasets table (its n/a: the last table)
        per_metric = dict(tuple(rows[metric_scored].groupby("metric_label", sort=True)))
        order = _ordered(rows[metric_scored], "metric_label", by=["family", "metric_label"])  # as the columns
        tables += [datasets_table(per_metric[label], tests) for label in order]
    if "families" in layouts and rows["mean"].notna().any():
        families = families_table(rows)
        tables += [families] if families.rows else []  # one method (a first bring-your-own run): no rank at all
    return tables + unscored


def unscored_table(rows: pd.DataFrame, metrics: pd.DataFrame | None = None, *,
                   scored: frozenset[str] = frozenset()) -> Table:
    """One line per setting (model on dataset) without any score, and one per metric scored in no (other) setting
    (``metrics``: its labelled summary rows): its methods, statuses and first reason.

    ``scored``: the setting labels of the results tables. Methods skipped as not applicable (``sobel`` on a table)
    never build the data, so their rows are a setting of their own under a shown label: that line says so.
    """
    groups = list(_with_labels(rows).groupby("setting_label", sort=True)) if len(rows) else []
    beside = any(label in scored for label, _ in groups)
    groups = [(f"{label} (other methods above)" if label in scored else label, group) for label, group in groups]
    if metrics is not None and len(metrics):
        groups += [(f"metric {label}", group) for label, group in metrics.groupby("metric_label", sort=True)]
    body = []
    for label, group in groups:
        shown = group.assign(status=group["status"].replace({"ok": "nan"}))  # ok rows without a mean: all NaN
        counts = shown.drop_duplicates(["competitor", "status"])["status"].value_counts().sort_index()
        statuses = ", ".join(f"{status} ({count})" for status, count in counts.items())
        methods = ", ".join(controls_last(group["competitor"].unique(), summary_controls(group)))
        body.append((label, (Cell(methods), Cell(statuses), Cell(_reasons(group) or "-"))))
    settings = "Settings without any score" + (", and methods without any score in a setting shown above"
                                                if beside else "")
    what, corner = f"{settings}, left out of the tables above", "dataset / model"
    if metrics is not None and len(metrics):
        what, corner = ((f"{settings}, and metrics scored in no setting (n/a in the tables above)",
                         "dataset / model or metric") if len(rows)
                        else ("Metrics scored in no setting, n/a in the tables above", "metric"))
    caption = f"{what} (status per method; each distinct reason, with its methods where methods differ)."
    return Table(key="unscored", caption=caption, corner=corner,
                 columns=(Column("methods", text=True), Column("status (methods)", text=True),
                          Column("reason", text=True)), rows=tuple(body))


def _reasons(group: pd.DataFrame) -> str:
    """Each distinct reason the rows of ``group`` give; where they differ, each followed by the methods it applies
    to, in the order of the methods (controls last): ``sobel`` not applicable to a table, ``grad_cam`` to a model
    without convolutions (the first reason alone named one method's cause for all)."""
    messages = group["message"].fillna("").astype(str)
    given = pd.DataFrame({"competitor": group["competitor"].astype(str), "message": messages})[messages != ""]
    by_reason: dict[str, list[str]] = {}
    for method in controls_last(given["competitor"].unique(), summary_controls(group)):
        for reason in dict.fromkeys(given.loc[given["competitor"] == method, "message"]):
            by_reason.setdefault(reason, []).append(method)
    if len(by_reason) <= 1:
        return next(iter(by_reason), "")
    return "; ".join(f"{reason} ({', '.join(methods)})" for reason, methods in by_reason.items())


class _Tests:
    """Which cells the paired tests do not separate from their column's best (``statistics.versus_best``: Holm
    over the group's comparisons with its best), or none (no tests: CI overlap)."""

    def __init__(self, pairs: pd.DataFrame | None, alpha: float, summary: pd.DataFrame | None = None) -> None:
        self.alpha = alpha
        self.separated: dict | None = None
        self.reversed: set[tuple[str, str]] = set()  # (comparison, method) significantly better than a best
        if pairs is not None:
            tests = versus_best(pairs, summary, alpha=alpha)
            self.separated = {(c, best, m): s for c, best, m, s in zip(tests["comparison"], tests["best"],
                                                                     tests["method"], tests["separated"])}
            # the test that decides, as in the tests-against-the-best table (``pairwise._versus_cell``): with tied
            # bests, the least separated comparison (untested first, then the largest Holm p)
            deciding = (tests.assign(untested=tests["p_holm"].isna())
                        .sort_values(["untested", "p_holm"], ascending=False, kind="stable")
                        .drop_duplicates(["comparison", "method"]))
            better = deciding[deciding["separated"] & (deciding["rank_biserial"] < 0)]
            self.reversed = set(zip(better["comparison"], better["method"]))

    def tie(self, row: pd.Series, best: pd.DataFrame) -> bool:
        """Whether ``row`` (not a best cell) is not separated from some best cell of its comparison group."""
        if self.separated is None:
            return bool(((row["ci_low"] <= best["ci_high"]) & (row["ci_high"] >= best["ci_low"])).any())
        # not significant, or no test (too few shared samples): not separated
        return not all(self.separated.get((row["comparison"], str(other), str(row.name)), False)
                       for other in best.index)

    def note(self, marked: bool = True) -> str:
        """The footnote of ``†`` (``marked``: some cell carries it), else what the unmarked cells' tests found."""
        if self.separated is None:
            return NOTE_OVERLAP
        return significance_note(self.alpha) if marked else separation_note(self.alpha)


def metrics_table(rows: pd.DataFrame, tests: _Tests | None = None) -> Table:
    """Methods x metrics of one setting."""
    rows = _with_labels(rows) if "setting_variant" not in rows else rows
    tests = tests or _Tests(None, ALPHA)
    trained = rows[rows["model_accuracy"].notna()]  # a not_applicable method's rows have no model accuracy
    first = trained.iloc[0] if len(trained) else rows.iloc[0]
    columns = _ordered(rows, "metric_label", by=["family", "metric_label"])
    table = _grid(rows, columns, column_of="metric_label", title=lambda c: c, tests=tests)
    quality = _quality_text(first)
    # two variants of a model (hidden=[32], [64]) on one dataset had the same caption: the variant tells them apart
    variant = f" {first['setting_variant']}" if first["setting_variant"] else ""
    caption = (f"{first['model_label']} on {first['dataset_label']}{variant}{quality}: {_over(rows)}. "
               f"{_bold_rule(rows)}; ↑/↓: higher/lower is better.")
    warnings = (f"u {first['model_label']} is underfit (test accuracy {number(first['model_accuracy'])}): "
                "its explanations are not a result.",) if first["model_flag"] == "underfit" else ()
    return Table(key=_key("metrics", first["setting_label"]), caption=caption, corner="method",
                 columns=table[0], rows=table[1], notes=table[2], warnings=warnings + table[3])


def datasets_table(rows: pd.DataFrame, tests: _Tests | None = None) -> Table:
    """Methods x settings (dataset, model) of one metric."""
    rows = _with_labels(rows) if "setting_label" not in rows else rows
    tests = tests or _Tests(None, ALPHA)
    first = rows.iloc[0]
    columns = _ordered(rows, "setting_label", by=["dataset_label", "model_label", "setting_label"])
    table = _grid(rows, columns, column_of="setting_label", title=lambda c: c, tests=tests)
    arrow = "↑ higher" if first["higher_is_better"] else "↓ lower"
    caption = (f"{first['metric_label']} ({first['family']}; {arrow} is better) per dataset and model: "
               f"{_over(rows)}. {_bold_rule(rows)}.")
    return Table(key=_key("datasets", first["metric_label"]), caption=caption, corner="method",
                 columns=table[0], rows=table[1], notes=table[2], warnings=table[3])


def families_table(rows: pd.DataFrame) -> Table:
    """Methods x metric families: average rank over the comparison groups of each family, and over all."""
    ranked = pd.concat([average_ranks(rows, by="family"), average_ranks(rows, by="all")])
    ranks = ranked.pivot_table(index="method", columns="scope", values="avg_rank")
    groups = ranked.pivot_table(index="method", columns="scope", values="n_groups").fillna(0)
    counts = _ranked_groups(rows)
    scopes = [s for s in sorted(ranks.columns) if s != "all"] + ["all"]
    controls = summary_controls(rows)
    methods = [m for m in sorted(ranks.index) if not is_control(m, controls)]  # controls have no rank
    columns = tuple(Column(f"{scope} (N={counts[scope]})", "↓") for scope in scopes)
    body, partial = [], False
    for method in methods:
        cells = []
        for scope in scopes:
            value, covered = ranks.loc[method, scope], groups.loc[method, scope]
            full = groups[scope] == groups[scope].max()  # bold only among the methods ranked most often
            best = ranks.loc[full, scope].min()
            marks = ("r",) if np.isfinite(value) and covered < counts[scope] else ()
            partial |= bool(marks)
            text = f"{number(value)} ({int(covered)}/{counts[scope]})" if marks else number(value)
            cells.append(Cell(text if np.isfinite(value) else "-", marks=marks,
                              best=bool(np.isfinite(value) and full[method] and np.isclose(value, best))))
        body.append((method, tuple(cells)))
    caption = ("Average rank per metric family (1 = best; N = comparison groups, not samples: each one model, "
               "dataset and metric with at least two methods scored), following each metric's direction. Bold: best "
               "per column among the methods ranked in the most groups.")
    shown = sorted(set(rows["competitor"].astype(str)) & controls)
    notes = (NOTE_PARTIAL,) if partial else ()
    if shown:
        notes += (f"Controls ({', '.join(shown)}) are reference rows, not ranked: ranks compare the methods only "
                  "(control_checks.csv tests each method against each control).",)
    return Table(key="families", caption=caption, corner="method", columns=columns, rows=tuple(body),
                 notes=notes, warnings=_control_warnings(rows))


def _ranked_groups(rows: pd.DataFrame) -> dict[str, int]:
    """Comparison groups with at least two scored methods (those average ranks use), per family and ``all``."""
    scored = rows[rows["mean"].notna()]
    sizes = scored.groupby("comparison")["competitor"].nunique()
    ranked = scored[scored["comparison"].map(sizes) >= 2].drop_duplicates("comparison")
    counts = ranked.groupby("family").size().to_dict()
    return {**{str(k): int(v) for k, v in counts.items()}, "all": len(ranked)}


def _bold_rule(rows: pd.DataFrame) -> str:
    """What bold means: the best method per column; where the table has controls, that they are reference rows
    (never ranked or bold; their † compares them with the best method, as any row's)."""
    names = controls_last(set(rows["competitor"].astype(str)) & summary_controls(rows), None)
    if not names:
        return "Bold: best per column"
    scored = set(rows.loc[rows["mean"].notna(), "competitor"].astype(str))
    if scored and scored <= set(names):  # only controls have a score: nothing is ranked (statistics.nothing_to_rank)
        return (f"Only controls ({', '.join(names)}) have a score: reference rows, never ranked, so no cell is bold "
                "or tested against a best")
    return f"Bold: best method per column; controls ({', '.join(names)}; last rows) are references, never ranked or bold"


def interval_text(rows: pd.DataFrame) -> str:
    """What the tables' (and the score figures') means and CIs are over: :func:`_over` of the scored ``rows``
    ("" where none has a mean), for a figure caption to state the same samples, seeds and CI caveat."""
    scored = rows[rows["mean"].notna()] if "mean" in rows else rows.iloc[0:0]
    return _over(scored) if len(scored) and {"n", "n_seeds"} <= set(scored.columns) else ""


def _over(rows: pd.DataFrame) -> str:
    """What a grid's cells are: ``mean [95% CI] over n = 26 samples and 3 seeds (...)``; ``n`` is a range where
    cells differ (NaN scores, errors)."""
    scored = rows[rows["mean"].notna()]
    low, high = int(scored["n"].min()), int(scored["n"].max())
    seeds_low, seeds = int(scored["n_seeds"].min()), int(scored["n_seeds"].max())
    samples = f"n = {low} samples" if low == high else f"n = {low}-{high} samples per cell"
    if seeds == 1:
        return f"mean [95% CI] over {samples} (percentile bootstrap over samples)"
    seeds_text = f"{seeds} seeds" if seeds_low == seeds else f"{seeds_low}-{seeds} seeds"
    fewest = int(scored.loc[scored["n_seeds"] > 1, "n_seeds"].min())  # the cells with a bootstrap over seeds
    few = ""
    if fewest < 10:  # a percentile bootstrap over a handful of seeds is too narrow where the seeds differ
        share = _FEW_SEEDS_COVERAGE.get(fewest, 0.90)
        few = (f"; with {fewest} seeds it under-covers where seeds differ more than samples: about {share:.0%} of "
               "such intervals hold the true mean")
    return (f"mean [95% CI] over {samples} and {seeds_text} (a sample scored in several seeds counts once; "
            f"two-way bootstrap over seeds and samples{few})")


# Coverage of the nominal 95% two-way CI with few seeds where the seed effect dominates (seed means N(0, 1), 8
# samples of N(0, 0.5) each; 1,000 replicate experiments each, tests/unit/test_aggregate.py::replicate_table;
# standard error about 0.015): the percentile bootstrap over k seeds spans about the range of k seed means. 10 seeds
# give 0.91; 7-9 are taken as 0.90.
_FEW_SEEDS_COVERAGE = {2: 0.66, 3: 0.77, 4: 0.81, 5: 0.86, 6: 0.88}


def _grid(rows: pd.DataFrame, columns: list[str], *, column_of: str, title, tests: _Tests) -> tuple:
    """Columns, body rows, notes and warnings of a mean [CI] grid; one comparison group per column."""
    controls = summary_controls(rows)
    methods = controls_last(rows["competitor"].unique(), controls)
    cells = {method: [] for method in methods}
    headers, notes, flagged_controls = [], set(), []
    for column in columns:
        group = rows[rows[column_of] == column].set_index("competitor")
        first = group.iloc[0]
        marks = []
        ahead = set(group.index[controls_ahead(group.reset_index()).to_numpy(dtype=bool)].astype(str))
        if ahead:
            marks.append("c")
            flagged_controls.append((str(first["metric_label"]), str(first["setting_label"]), str(first["family"]),
                                     tuple(sorted(ahead))))
        if column_of == "setting_label" and first["model_flag"] == "underfit":
            marks.append("u")
        headers.append(Column(title(column), "↑" if first["higher_is_better"] else "↓", tuple(marks)))
        notes.update(marks)
        best = group[group["rank"].eq(1).fillna(False).astype(bool) & group["mean"].notna()]  # controls: no rank
        for method in methods:
            cell = _cell(group.loc[method], best, tests, ahead=method in ahead) if method in group.index else Cell("-")
            notes.update(cell.marks)
            notes.update(["tie"] if cell.tie else [])
            if tests.separated is not None and len(best) and method in group.index and method not in best.index \
                    and pd.notna(group.loc[method, "mean"]):
                notes.add("tested")  # a non-best cell was tested: say what an unmarked cell means
            cells[method].append(cell)
    body = tuple((method, tuple(cells[method])) for method in methods)
    return tuple(headers), body, _notes(notes, rows, tests), _control_lines(flagged_controls)


def _cell(row: pd.Series, best: pd.DataFrame, tests: _Tests, *, ahead: bool = False) -> Cell:
    """One mean [CI] cell; ``ahead``: a control scoring as well as the best method or better (mark ``c``, which
    says it, where a method significantly better than the best gets ``s``)."""
    if row["status"] == "not_applicable":
        return Cell("n/a")
    marks = tuple(m for m, on in (("a", row["nan_rate"] > 0), ("b", row["error_rate"] > 0)) if on)
    if np.isnan(row["mean"]):
        return Cell("error" if row["status"] == "error" else "nan", marks=marks)
    if np.isnan(row["ci_low"]):
        marks += ("n",)
    is_best = row.name in best.index
    if ahead:
        marks += ("c",)
    elif not is_best and (row["comparison"], str(row.name)) in tests.reversed:
        marks += ("s",)
    return Cell(mean_ci(row["mean"], row["ci_low"], row["ci_high"]), best=is_best,
                tie=bool(not is_best and len(best) and tests.tie(row, best)), marks=marks)


def _notes(marks: set[str], rows: pd.DataFrame, tests: _Tests) -> tuple[str, ...]:
    notes = []
    if "tie" in marks or "tested" in marks:
        notes.append(tests.note(marked="tie" in marks))
    if "a" in marks:
        worst = rows.loc[rows["nan_rate"].idxmax()]
        why = _first_line(worst) if not worst["error_rate"] > 0 else ""  # else the message may be the error's
        notes.append(f"{NOTE_NAN} (up to {worst['nan_rate']:.0%}: {worst['competitor']} on {worst['metric_label']}"
                     f"{why}).")
    shared = _shared_note(rows)
    if shared:
        notes.append(shared)
    if "b" in marks:
        notes.append(_error_note(rows))
    notes += _not_applicable_notes(rows)
    if "c" in marks:
        notes.append(NOTE_CONTROL + ".")
    if "n" in marks:
        notes.append(NOTE_SINGLE + ".")
    if "u" in marks:
        notes.append(NOTE_UNDERFIT + ".")
    if "s" in marks:
        notes.append(NOTE_REVERSED + ".")
    return tuple(notes)


def _not_applicable_notes(rows: pd.DataFrame) -> list[str]:
    """Why cells read n/a: one line per reason, naming its methods (DeepLIFT on a TorchScript model, ``sobel`` on a
    table). A metric scored in no column of the table (``continuity`` on tabular data) is left to the last table,
    which lists it with its reason."""
    scored_metrics = set(rows.loc[rows["mean"].notna(), "metric_label"])
    na = rows[rows["status"].eq("not_applicable") & rows["metric_label"].isin(scored_metrics)]
    by_reason = na.groupby(na["message"].fillna("").astype(str), sort=False)["competitor"]
    return [f"n/a: {', '.join(dict.fromkeys(methods.astype(str)))} not applicable: "
            f"{reason.splitlines()[0] if reason else 'no reason recorded'}." for reason, methods in by_reason]


def _shared_note(rows: pd.DataFrame) -> str:
    """Where a column's ranks (bold) leave out samples: the ranks compare methods on the samples every ranked
    method of the group scored (``statistics.shared_sample_ranks``), so a method's NaN scores or failed seeds
    remove those samples for all. Names the smallest share; "" where nothing is left out (or the summary has no
    ``shared_n``: a summary ranked on its means)."""
    if "shared_n" not in rows.columns:
        return ""
    ranked = rows[rows["mean"].notna() & (rows["group_n"] > 0)]
    short = ranked[ranked["shared_n"] < ranked["group_n"]]
    if short.empty:
        return ""
    worst = short.loc[(short["shared_n"] / short["group_n"]).idxmin()]
    return (f"Bold and ranks compare the methods of a column on the samples every one of them scored (a method's "
            f"NaN scores or failed seeds leave those samples out for all; the cells' means are over each method's "
            f"own samples): {short['comparison'].nunique()} column(s) rank on fewer than all samples, as few as "
            f"{int(worst['shared_n'])} of {int(worst['group_n'])} ({worst['metric_label']} for "
            f"{worst['setting_label']}); shared_n and group_n in summary.csv.")


def _error_note(rows: pd.DataFrame) -> str:
    """The error footnote with its worst share, where, and the error's first line, as the NaN note names its worst
    (a reader of the paper's table had only "see the summary's message column")."""
    worst = rows.loc[rows["error_rate"].idxmax()]
    return (f"{NOTE_ERROR}: up to {worst['error_rate']:.0%} of seeds ({worst['competitor']} on {worst['metric_label']}"
            f"{_first_line(worst)}); every message is in the summary's message column.")


def _first_line(row: pd.Series, limit: int = 160) -> str:
    """``": <the first line of the row's message>"`` (``limit`` characters at most, cut at a word with "..."; cut
    mid-word, the sensitivity NaN reason ended "the map at x is numerica)."), or empty without one: why a cell is
    NaN (docs/meaning.md: a score without meaning is a NaN with its reason) or errored."""
    message = str(row.get("message") or "").strip().splitlines()
    if not message:
        return ""
    line = message[0]
    if len(line) > limit:
        line = line[:limit - 3].rsplit(" ", 1)[0].rstrip(",;:(") + "..."
    return f": {line}"


def _control_lines(columns: list[tuple[str, str, str, tuple[str, ...]]]) -> tuple[str, ...]:
    """One warning line per kind of column in which a control matches or beats the best method: ``columns`` are
    (metric, setting, family, the controls ahead there); metrics that share every setting are named together (a
    metrics table's five stability columns: one phrase, not five "for breast_cancer / mlp"). The line names the
    controls and what their maps are (``statistics.controls.CONTROL_MAPS``): it read "c WARNING: a control ... (a map that ignores the
    input)", a bare letter before the word and, for sobel, a reason that was not true."""
    lines = []
    for stability in (True, False):
        picked = [c for c in columns if (c[2] == Family.STABILITY) == stability]
        if not picked:
            continue
        where = [(metric, setting) for metric, setting, _family, _controls in picked]
        controls = list(dict.fromkeys(name for *_, names in picked for name in names))
        which = named_controls(controls)
        verb = "score" if len(controls) > 1 else "scores"
        lines.append(f"Warning (c): {which} {verb} as well as the best method or better on {metrics_where(where)}. "
                     f"{WHY_CONTROL_FIRST[stability]}")
    return tuple(lines)


def _control_warnings(rows: pd.DataFrame) -> tuple[str, ...]:
    flagged = set()
    for _, group in rows.groupby("comparison", sort=True):
        ahead = controls_ahead(group).to_numpy(dtype=bool)
        if ahead.any():
            first = group.iloc[0]
            flagged.add((str(first["metric_label"]), str(first["setting_label"]), str(first["family"]),
                         tuple(sorted(group["competitor"][ahead].astype(str).unique()))))
    return _control_lines(sorted(flagged))


def _ordered(rows: pd.DataFrame, column: str, by: list[str]) -> list[str]:
    return rows.sort_values(by)[column].drop_duplicates().tolist()


def _with_labels(summary: pd.DataFrame) -> pd.DataFrame:
    """Add ``metric_label`` (metric + its differing params) and ``setting_label`` (model on dataset + params)."""
    frame = summary.copy()
    parts = frame["variant"].fillna("").map(lambda text: re.split(r" (?=[\w.]+=)", text))
    metric_parts = parts.map(lambda ps: ", ".join(p[len("metric."):] for p in ps if p.startswith("metric.")))
    other = parts.map(lambda ps: split_settings([p for p in ps if p and not p.startswith(("metric.", "method."))]))
    frame["metric_label"] = frame["metric"].where(metric_parts == "", frame["metric"] + " (" + metric_parts + ")")
    base = frame["dataset_label"] + " / " + frame["model_label"]
    # the run's settings in brackets, apart from the parts' parameters: iris / mlp (dataset.n_samples=100) [n_samples=8]
    frame["setting_variant"] = other.map(lambda split: labelled("", *split).strip())
    frame["setting_label"] = base.where(frame["setting_variant"] == "", base + " " + frame["setting_variant"])
    return frame


def _quality_text(row: pd.Series) -> str:
    if pd.isna(row["model_accuracy"]):
        return ""
    flag = ", UNDERFIT u" if row["model_flag"] == "underfit" else ""
    return f" (test accuracy {row['model_accuracy']:.2f}{flag})"


def _key(prefix: str, text: str) -> str:
    return f"{prefix}-" + re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower()
