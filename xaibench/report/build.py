"""Assemble a report from a results table: summary, statistics, tables; write Markdown, LaTeX, HTML and CSV.

A report reads the table only; it never recomputes a score. ``analyse`` derives everything, ``write_report``
typesets and writes it (atomically, file by file). Figures are passed in ready-made (PNG bytes and captions) and
embedded in the HTML report.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xaibench.engine.store import atomic_write_bytes
from xaibench.report.html_document import Figure, Section, html_document
from xaibench.report.provenance import provenance_table
from xaibench.report.tables import LAYOUTS, Cell, Column, Table, build_tables, render_all, to_html, to_markdown
from xaibench.report.tables.model import number, p_text
from xaibench.report.tables.pairwise import pairwise_tables, versus_best_tables
from xaibench.report.tables.render import latex_escape, latex_tables, render_grouped
from xaibench.results import statistics as st
from xaibench.results.aggregate import summarize
from xaibench.results.groups import attach_not_applicable

FORMATS = ("md", "latex", "html", "csv")
FIGURES_DIR = "figures"  # the figures' folder under the report's (figure_set.FIGURES_DIR)
FIGURES_TEX = "figures.tex"  # a LaTeX float per figure, with its caption
APPENDIX = "appendix_pairwise"  # every pairwise test: appendix_pairwise.md / .tex (the report shows the best's)


@dataclass(frozen=True)
class Analysis:
    """Everything a report shows, derived from one table."""

    summary: pd.DataFrame
    pairs: pd.DataFrame  # statistics.pairwise_tests
    controls: pd.DataFrame  # statistics.control_checks
    ranks: pd.DataFrame  # statistics.average_ranks for every scope kind, with a "by" column
    friedman: dict[str, st.FriedmanResult]  # scope ("all", "family: F", "metric: M") -> result
    agreement: pd.DataFrame  # statistics.metric_agreement
    warnings: tuple[str, ...]
    tables: tuple[Table, ...]  # result tables of the chosen layouts
    stat_tables: tuple[Table, ...]  # Friedman/Nemenyi, metric agreement, controls
    versus_best: pd.DataFrame | None = None  # statistics.versus_best: the tests behind the tables' †
    pair_tables: tuple[Table, ...] = ()  # every pairwise test, one table per comparison group (the appendix)
    best_tables: tuple[Table, ...] = ()  # each method against its column's best, one table per setting
    provenance: Table | None = None  # report/provenance.py: sweep, commit, versions, grid, command


def analyse(table: pd.DataFrame, *, layouts: Sequence[str] = LAYOUTS, alpha: float = st.ALPHA,
            source: str | os.PathLike[str] | None = None) -> Analysis:
    """Summary, tests and tables of ``table`` (rows of the results schema); ``source``: the table file or sweep
    folder it was read from (the provenance table then gives the sweep's command line, or says why it cannot)."""
    provenance = provenance_table(table, Path(source) if source is not None else None)
    table = attach_not_applicable(table)  # an n/a cell joins the group it was planned for (no phantom group)
    summary = st.shared_sample_ranks(table, summarize(table))  # ranks compare methods on the same samples
    pairs = st.pairwise_tests(table, alpha=alpha)
    controls = st.control_checks(table, summary, pairs=pairs, alpha=alpha)
    ranks, friedman, agreement = rank_statistics(summary, alpha=alpha)
    stat_tables = ((friedman_table(friedman), agreement_table(agreement),
                    controls_table(controls, alpha, st.metric_order(summary)))
                   if friedman else ())
    versus = st.versus_best(pairs, summary, alpha=alpha)
    return Analysis(summary, pairs, controls, ranks, friedman, agreement, tuple(st.control_warnings(summary)),
                    tuple(build_tables(summary, tuple(layouts), pairs=pairs, alpha=alpha)),
                    tuple(t for t in stat_tables if t.rows), versus,
                    tuple(pairwise_tables(pairs, versus, summary, alpha=alpha)),
                    tuple(versus_best_tables(pairs, versus, summary, alpha=alpha)), provenance)


def rank_statistics(summary: pd.DataFrame, *, alpha: float = st.ALPHA
                    ) -> tuple[pd.DataFrame, dict[str, st.FriedmanResult], pd.DataFrame]:
    """What ``analyse`` derives from the summary alone: average ranks (every scope kind, ``by`` column),
    Friedman/Nemenyi per scope (empty when no setting has a mean) and metric agreement."""
    scored = summary[summary.groupby("setting")["mean"].transform(lambda m: m.notna().any())]
    if not len(scored):
        return pd.DataFrame(), {}, pd.DataFrame()
    ranks = pd.concat([st.average_ranks(scored, by=by).assign(by=by) for by in ("all", "family", "metric")],
                      ignore_index=True)
    return ranks, friedman_scopes(scored, alpha), st.metric_agreement(scored)


def friedman_scopes(summary: pd.DataFrame, alpha: float) -> dict[str, st.FriedmanResult]:
    """Friedman/Nemenyi over all groups, per family and per metric (a metric alone in its family is its family).
    Metrics scored nowhere (``continuity`` on tabular data: an n/a column) have no scope: a row of k = 0, N = 0."""
    results = {"all": st.friedman_nemenyi(summary, alpha=alpha)}
    metrics_of = summary[summary["mean"].notna()].groupby("family")["metric"].unique()
    for family in sorted(metrics_of.index):
        results[f"family: {family}"] = st.friedman_nemenyi(summary, family=family, alpha=alpha)
        if len(metrics_of[family]) > 1:
            for metric in sorted(metrics_of[family]):
                results[f"metric: {metric}"] = st.friedman_nemenyi(summary, metric=metric, alpha=alpha)
    return results


def friedman_table(results: dict[str, st.FriedmanResult]) -> Table:
    """One row per scope: competitors k, groups N, Friedman chi2 and p, Nemenyi CD and the best competitor. CD is
    ``-`` where no post-hoc comparison follows (``post_hoc_reason``: Friedman does not reject; Demšar 2006)."""
    columns = tuple(Column(c) for c in ("k", "N", "chi2", "p", "p from", "CD", "best (avg rank)"))
    if all(len(r.avg_ranks) < 2 for r in results.values()):  # one method (no control is ranked): nothing to test
        return Table(key="friedman", caption="", corner="scope", columns=columns, rows=())
    rows = []
    for scope, r in results.items():
        k = len(r.avg_ranks)
        best = _best_ranked(r.avg_ranks) if k >= 2 else "-"  # alone: best of nothing
        cd = "-" if r.post_hoc_reason() else number(r.cd)  # a CD after a non-rejection invites rank comparisons
        source = _P_SOURCE.get(r.p_method.split(" (")[0], r.p_method) if np.isfinite(r.p_value) else "-"
        rows.append((scope, (Cell(str(k)), Cell(str(r.n_blocks)), Cell(number(r.statistic) if np.isfinite(r.statistic) else "-"),
                             Cell(p_text(r.p_value)),
                             Cell(source), Cell(cd), Cell(best))))
    notes = ("Friedman test over comparison groups (blocks); CD: Nemenyi critical difference at alpha="
             f"{next(iter(results.values())).alpha if results else st.ALPHA} (Demšar 2006): two average ranks "
             "further apart than CD differ significantly; - where the Friedman test does not reject (no post-hoc "
             "test follows).",
             "Competitors missing from more than half of a scope's groups are left out of it, then groups missing a "
             "competitor: the average ranks here and in the CD diagrams are over the N complete groups "
             "(friedman_ranks.csv), those of the families table over every group a method was ranked in "
             "(average_ranks.csv).",
             "k counts methods only: controls are reference rows, never ranked (control_checks.csv tests them).",
             "N counts comparison groups (one model, dataset and metric each), not samples. The all scope, and a "
             "family scope of several metrics, pool the groups of those metrics, which share models and samples and "
             "are not independent blocks: read their p as a summary, not a test.")
    notes += _small_cd_note(results)
    methods = sorted({r.p_method for r in results.values() if np.isfinite(r.p_value)})
    if methods:
        notes += (f"p: {', '.join(methods)}. With fewer than {st.PERMUTATION_P_BELOW} groups p comes from the "
                  "permutation null (each group's ranks equally likely in any order; exact where enumerable, else "
                  f"{st.PERMUTATIONS:,} seeded draws), because the chi-square approximation is off by up to 2x there "
                  "(3 methods on 3 groups: chi2 = 4.67 gives 0.097, the exact p is 0.194).",)
    skipped = [f"{scope} ({reason})" for scope, r in results.items() if (reason := r.post_hoc_reason())]
    if skipped:
        notes += ("CD diagrams are drawn only where the Friedman test rejects (Demšar 2006) and its CD is below k - 1 "
                  "(else no two methods can be separated); none for: "
                  + "; ".join(skipped) + ".",)
    return Table(key="friedman", caption="Friedman test and Nemenyi critical difference per scope.", corner="scope",
                 columns=columns, rows=tuple(rows), notes=notes)


def _small_cd_note(results: dict[str, st.FriedmanResult]) -> tuple[str, ...]:
    """Where a CD is shown on fewer than 10 groups: its real familywise error and the exact CD (friedman.csv's
    ``cd_familywise_error`` and ``cd_exact``), as Demšar's CD is a large-sample approximation."""
    shown = {scope: r for scope, r in results.items()
             if not r.post_hoc_reason() and np.isfinite(r.cd_familywise_error)}
    if not shown:
        return ()
    parts = []
    for scope, r in shown.items():
        exact = number(r.cd_exact) if np.isfinite(r.cd_exact) else "none: no two methods can be separated"
        parts.append(f"{scope} {r.cd_familywise_error:.3f} (exact CD {exact})")
    return (f"CD with fewer than {st.PERMUTATION_P_BELOW} groups: Demšar's CD is a large-sample approximation "
            "(studentized range); under the permutation null (each group's ranks equally likely in any order) the "
            "chance that some two average ranks lie further apart than it, nominally alpha, is, per scope: "
            f"{'; '.join(parts)}. "
            "Exact CD: two average ranks further apart than it differ at alpha (its familywise error is at most "
            "alpha: the range of rank sums under that null, Hollander & Wolfe 1999, ch. 7); the CD diagrams and "
            "nemenyi.csv use Demšar's.",)


# The "p from" column of the Friedman table: how each scope's p was computed (FriedmanResult.p_method).
_P_SOURCE = {"chi-square": "chi-square", "exact permutation": "exact perm.", "Monte Carlo permutation": "MC perm."}


def _best_ranked(avg_ranks: pd.Series) -> str:
    """``ig (1.50)``, or every competitor tied at the best average rank: ``ig, saliency (1.50)``."""
    top = avg_ranks[np.isclose(avg_ranks.to_numpy(dtype=float), avg_ranks.min())]
    return f"{', '.join(sorted(map(str, top.index)))} ({top.iloc[0]:.2f})"


def agreement_table(matrix: pd.DataFrame) -> Table:
    """Kendall's tau between metric rankings (averaged over settings)."""
    if matrix.empty or not st.has_metric_pairs(matrix):  # only the diagonal's 1s: a table saying nothing
        return Table(key="agreement", caption="", corner="metric", columns=(), rows=())
    families = matrix.attrs.get("family", {})
    left_out = [m for m in matrix.index if m not in st.compared_metrics(matrix).index]
    by_family = st.agreement_by_family(matrix)
    matrix = st.compared_metrics(matrix)
    columns = tuple(Column(m) for m in matrix.columns)
    rows = tuple((f"{m} ({families.get(m, '')})", tuple(Cell(number(v) if np.isfinite(v) else "-")
                                                        for v in matrix.loc[m])) for m in matrix.index)
    caption = ("Metric agreement: Kendall's tau between the method rankings two metrics induce on the same model "
               "and dataset, averaged over settings (1: same order, -1: reversed).")
    notes = tuple(f"mean tau {'over all metric pairs' if r.scope == 'all' else f'within {r.scope}'}: "
                  f"{number(r.mean_tau)} ({r.n_pairs} pair{'' if r.n_pairs == 1 else 's'})"
                  for r in by_family.itertuples() if r.n_pairs)
    if left_out:
        notes += (f"Not shown: {', '.join(left_out)} (no setting where another metric ranks the same three or more "
                  "methods).",)
    return Table(key="agreement", caption=caption, corner="metric (family)", columns=columns, rows=rows,
                 notes=notes)


def controls_table(controls: pd.DataFrame, alpha: float = st.ALPHA, order: list[str] | None = None) -> Table:
    """Per method x metric: in how many (group, control) pairs the method significantly beats the control.
    ``order``: the metrics' column order (``statistics.metric_order``: by family, as the results tables)."""
    if controls.empty:
        return Table(key="controls", caption="", corner="method", columns=(), rows=())
    counts = controls.groupby(["method", "metric"])["beats"].agg(["sum", "size"])
    present = set(controls["metric"])
    metrics = [m for m in order or () if m in present] + sorted(present - set(order or ()))
    rows = []
    for method in sorted(controls["method"].unique()):
        cells = []
        for metric in metrics:
            if (method, metric) in counts.index:
                won, total = counts.loc[(method, metric)]
                cells.append(Cell(f"{int(won)}/{int(total)}", best=bool(won == total)))
            else:
                cells.append(Cell("-"))
        rows.append((method, tuple(cells)))
    names = ", ".join(sorted(controls["control"].astype(str).unique()))
    caption = ("Controls: in how many (comparison group, control) pairs each method significantly beats the "
               f"control ({names}; paired Wilcoxon, Holm-corrected over the group's k(k-1)/2 pairs, "
               f"alpha={alpha:g}). Bold: beats every "
               "control.")
    return Table(key="controls", caption=caption, corner="method", columns=tuple(Column(m) for m in metrics),
                 rows=tuple(rows))


def write_report(analysis: Analysis, out_dir: str | os.PathLike[str], *, formats: Sequence[str] = FORMATS,
                 figures: Sequence[Figure] = (), title: str = "xaibench report") -> list[Path]:
    """Write the chosen formats under ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    files: dict[str, bytes] = {}
    if "md" in formats:
        files["report.md"] = markdown_report(analysis, title, figures).encode()
        if analysis.pair_tables:
            files[f"{APPENDIX}.md"] = markdown_appendix(analysis, title).encode()
    if "latex" in formats:
        files["tables.tex"] = latex_tables([*analysis.tables, *analysis.stat_tables, *analysis.best_tables]).encode()
        if analysis.pair_tables:
            files[f"{APPENDIX}.tex"] = latex_tables(list(analysis.pair_tables)).encode()
        if figures:
            files[FIGURES_TEX] = latex_figures(figures).encode()
    if "html" in formats:
        files["report.html"] = html_report(analysis, figures, title).encode()
    if "csv" in formats:
        files.update({f"{name}.csv": frame.to_csv(index=False).encode() for name, frame in csv_frames(analysis).items()})
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
    return [out / name for name in files]


def markdown_report(analysis: Analysis, title: str, figures: Sequence[Figure] = ()) -> str:
    """The report as Markdown: warnings, results, statistics, tests against the best, the figures (each file with
    its caption: report.md listed none, so the captions were only in report.html) and provenance."""
    parts = [f"# {title}", ""]
    parts += [f"> **{w}**\n" for w in analysis.warnings]
    parts += ["## Results", "", render_all(list(analysis.tables), "md")]
    if analysis.stat_tables:
        parts += ["## Statistics", "", "\n".join(to_markdown(t) for t in analysis.stat_tables)]
    if analysis.best_tables:
        parts += ["## Tests against the best", "", render_grouped(list(analysis.best_tables), "md")]
    if analysis.pair_tables:
        parts += [f"Every pairwise test, one table per comparison group: [{APPENDIX}.md]({APPENDIX}.md) "
                  f"({_tables(len(analysis.pair_tables))}; LaTeX: {APPENDIX}.tex; CSV: pairwise_tests.csv).", ""]
    if figures:
        parts += ["## Figures", "", "PNG (300 dpi) and PDF of each in figures/; LaTeX floats with these captions: "
                  f"{FIGURES_TEX}.", ""]
        for number_, figure in enumerate(figures, 1):
            parts += [f"![{figure.key}]({FIGURES_DIR}/{figure.key}.png)", "",
                      f"**Figure {number_} ({figure.key}).** {figure.caption}", ""]
    if analysis.provenance is not None:
        parts += ["## Provenance", "", to_markdown(analysis.provenance)]
    return "\n".join(parts)


def latex_figures(figures: Sequence[Figure]) -> str:
    """One figure float per figure, ``\\includegraphics`` of its PDF under figures/ (graphicx; the path relative to
    the report folder: ``\\graphicspath`` or an edit where the paper keeps them), its caption and a label
    ``fig:<name>``, for a paper to ``\\input``: the captions were written nowhere but report.html."""
    lines = [r"% xaibench figures: \usepackage{graphicx} in the preamble; \input{} this file from the report folder "
             r"(or set \graphicspath). Each figure's PNG is beside its PDF."]
    for figure in figures:
        caption = latex_escape(figure.caption).replace("|a|", "$|a|$")
        label = "fig:" + figure.key.replace("_", "-")
        size = r"width=\linewidth,height=0.6\textheight,keepaspectratio"  # 0.8 left no room for a long caption
        lines += [r"\begin{figure}[ht]", r"\centering", rf"\includegraphics[{size}]{{{FIGURES_DIR}/{figure.key}.pdf}}",
                  rf"\caption{{{caption}}}", rf"\label{{{label}}}", r"\end{figure}"]
    return "\n".join(lines) + "\n"


def _tables(count: int) -> str:
    return f"{count} table" if count == 1 else f"{count} tables"


def markdown_appendix(analysis: Analysis, title: str) -> str:
    """Every pairwise test (all k(k-1)/2 pairs of each comparison group), the report's appendix."""
    return "\n".join([f"# {title}: every pairwise test", "", "\n".join(to_markdown(t) for t in analysis.pair_tables)])


def html_report(analysis: Analysis, figures: Sequence[Figure], title: str) -> str:
    sections = [Section("Results", "\n".join(to_html(t) for t in analysis.tables))]
    if analysis.stat_tables:
        sections.append(Section("Statistics", "\n".join(to_html(t) for t in analysis.stat_tables)))
    if analysis.best_tables:
        sections.append(Section("Tests against the best", render_grouped(list(analysis.best_tables), "html")))
    if analysis.pair_tables:
        sections.append(Section(f"Every pairwise test ({_tables(len(analysis.pair_tables))})",
                                "\n".join(to_html(t) for t in analysis.pair_tables), collapsed=True))
    if analysis.provenance is not None:
        sections.append(Section("Provenance", to_html(analysis.provenance)))
    intro = ("Derived from the results table only. Mean [95% CI]: per-sample bootstrap (one seed) or two-way "
             "bootstrap of seeds and sample ids (several seeds: a sample scored in several seeds counts once, in n, "
             "the CIs and the pairwise tests). Bold: the best method per column; controls are reference rows, never "
             "ranked or bold. † in the result tables: not significantly different from the best method "
             "(paired Wilcoxon, Holm over the column's comparisons with its best: the tests against the best below). "
             "Every pairwise test is in the collapsed appendix below and, with the control checks, in the CSV files "
             "beside this page.")
    return html_document(title, sections, figures, warnings=analysis.warnings, intro=intro)


# Why a metric of metric_agreement.csv has no tau (its ``no_tau``), as friedman.csv's ``no_post_hoc`` says why a scope
# has no CD diagram: its row was all NaN but the diagonal's 1, and without any pair the file was an identity matrix
NO_TAU = ("no Kendall tau with any other metric: no setting where another metric ranks the same three or more "
          "methods, not all tied (controls are not ranked)")


def agreement_csv(matrix: pd.DataFrame) -> pd.DataFrame:
    """``statistics.metric_agreement`` as metric_agreement.csv: one row per metric, its tau with every metric and
    ``no_tau`` (empty, or :data:`NO_TAU` for a metric without a tau with any other one, whose diagonal is then NaN:
    a 1 there measured nothing)."""
    values = matrix.to_numpy(dtype=float)
    alone = ~(np.isfinite(values) & ~np.eye(len(values), dtype=bool)).any(axis=1)
    frame = matrix.copy()
    for metric in matrix.index[alone]:
        frame.loc[metric, metric] = np.nan
    return frame.assign(no_tau=np.where(alone, NO_TAU, "")).reset_index()


def csv_frames(analysis: Analysis) -> dict[str, pd.DataFrame]:
    """The machine-readable side of a report: summary and every statistic, one CSV each."""
    friedman = pd.DataFrame.from_records([
        {"scope": s, "k": len(r.avg_ranks), "n_blocks": r.n_blocks, "statistic": r.statistic, "p_value": r.p_value,
         "p_method": r.p_method, "cd": r.cd, "cd_familywise_error": r.cd_familywise_error,
         "cd_exact": r.cd_exact,
         "alpha": r.alpha, "dropped": ";".join(r.dropped), "note": r.note,
         "no_post_hoc": r.post_hoc_reason()}
        for s, r in analysis.friedman.items()])
    nemenyi = [r.pairwise_p.stack().rename("p_value").rename_axis(["method_a", "method_b"]).reset_index()
               .assign(scope=s) for s, r in analysis.friedman.items() if not r.pairwise_p.empty]
    # The average ranks the Friedman test, its table and the CD diagrams use: over each scope's complete groups, so
    # not always those of average_ranks.csv (every group a method was ranked in)
    friedman_ranks = pd.DataFrame.from_records([
        {"scope": s, "method": method, "avg_rank": rank, "n_blocks": r.n_blocks}
        for s, r in analysis.friedman.items() for method, rank in r.avg_ranks.items()],
        columns=["scope", "method", "avg_rank", "n_blocks"])
    agreement = agreement_csv(analysis.agreement) if not analysis.agreement.empty else pd.DataFrame()
    return {"summary": analysis.summary, "pairwise_tests": analysis.pairs, "versus_best": analysis.versus_best,
            "control_checks": analysis.controls,
            "average_ranks": analysis.ranks, "friedman": friedman, "friedman_ranks": friedman_ranks,
            "nemenyi": pd.concat(nemenyi, ignore_index=True) if nemenyi else pd.DataFrame(),
            "metric_agreement": agreement,
            "metric_agreement_by_family": st.agreement_by_family(analysis.agreement) if len(agreement) else agreement}
