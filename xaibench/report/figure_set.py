"""The set of figures a report (and the W&B sweep run) shows for one results table, built from the table, its
summary and the store only (nothing is recomputed). Each entry: a file stem -> a matplotlib Figure."""
from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from xaibench.report import explanation_figures
from xaibench.report.figures import (cd_diagram, cost_score_points, cost_vs_score, metric_agreement, metric_scores,
                                     rank_heatmap)
from xaibench.report.figures._style import method_colours
from xaibench.report.figures.gallery import TABULAR_FEATURE_RULE, TABULAR_FEATURES
from xaibench.report.figures.metric_scores import metric_score_pages
from xaibench.results.roles import CONTROL, ROLE_COLUMN, summary_controls
from xaibench.results.statistics import has_metric_pairs, metric_order

FAITHFULNESS = "faithfulness"
FIGURES_DIR = "figures"
# Caption per figure-name prefix (the first that matches); each figure's own title names its experiment or scope.
CAPTIONS = (
    ("metric_scores_", "Mean score per method and dataset / model of one dataset with its 95% confidence "
                       "interval (controls hatched; a control far off the methods' scale is cut at the panel's edge, "
                       "marked by a triangle with its mean written; a sweep of many experiments is drawn one "
                       "dataset per figure)."),
    ("metric_scores", "Mean score per method and dataset / model with its 95% confidence interval (controls "
                      "hatched; a control far off the methods' scale is cut at the panel's edge, marked by a "
                      "triangle with its mean written)."),
    ("rank_heatmap", "Average rank of each method per metric (1 = best) over the metric's N comparison groups "
                     "(each one model and dataset setting with at least two methods scored; groups, not samples: "
                     "each column's label gives its N). Controls are reference rows, not ranked."),
    ("cd_", "Critical-difference diagram (Demšar 2006): average ranks over N comparison groups (the blocks; not "
            "samples); methods joined by a bar are not significantly different (Nemenyi test at the alpha in the "
            "title; below 10 groups Demšar's CD is a large-sample approximation: the Friedman table's note gives its "
            "real familywise error and the exact CD). Controls are reference rows, not ranked: the methods only."),
    ("metric_agreement", "Metric agreement: Kendall's tau between the method rankings two metrics induce on the same "
                         "model and dataset, averaged over settings (1: same order, -1: reversed; controls are not "
                         "ranked)."),
    ("cost_vs_faithfulness", "Explanation cost per sample (the rows' explain_s: wall-clock time on the machine "
                             "that ran the cell, so it depends on its hardware and load; the median over a "
                             "setting's cells, i.e. seeds, so one cell's start-up cost does not move it) against "
                             "the first faithfulness metric (mean, 95% CI)."),
    ("gallery_", "Attribution gallery: the same test samples for every method; red supports the explained class, "
                 "blue opposes it, except in maps of magnitudes (saliency with its default abs=True, SmoothGrad², "
                 "VarGrad, Grad-CAM after its ReLU), which are never negative: red there marks an important "
                 "feature, whichever class it supports. Each map is scaled to its own largest magnitude, so "
                 "colours compare features within a map, not across maps or methods; on tabular data at most the "
                 f"{TABULAR_FEATURES} features with {TABULAR_FEATURE_RULE} (the others are left out), a bar's "
                 "length on the same scale as its colour (a / max |a|, each panel giving its max |a|); the input "
                 "row: what the model sees (z-scores on standardised tabular data). With "
                 "several seeds, the maps of each dataset / model's lowest seed (its split and model)."),
    ("counterfactuals_", "Counterfactual examples: input and counterfactual, changed features marked (tabular: "
                         "at most 8 features per sample, the most changed first; each heading counts them all)."),
    ("rules_", "Decision-tree surrogate rules and their fidelity to the model."),
)


def report_figures(table: pd.DataFrame, summary: pd.DataFrame, store: str | os.PathLike[str],
                   notes: list[str] | None = None, *, ranks: pd.DataFrame | None = None,
                   friedman: Mapping[str, Any] | None = None, agreement: pd.DataFrame | None = None) -> dict[str, Figure]:
    """Metric scores, ranks, CD diagrams, metric agreement, cost vs faithfulness, galleries, counterfactuals and
    surrogate rules.

    Args:
        table: the results table; summary: ``xaibench.summarize(table)``.
        store: the sweep's store, for the explanations (figures of cells missing there are skipped with a note).
        notes: collects one line per figure that could not be drawn, and why.
        ranks: ``method, scope, avg_rank`` per metric (default: the summary's within-group ranks averaged).
        friedman: scope -> Friedman/Nemenyi result (``avg_ranks``, ``cd``, ``p_value``, ``n_blocks``): one CD
            diagram each.
        agreement: square Kendall-tau matrix of the metrics (``attrs["family"]``: metric -> family).
    """
    figures = summary_figures(summary, notes, ranks=ranks, friedman=friedman, agreement=agreement)
    figures.update(_cost(table, scored_rows(summary), notes))
    figures.update(explanation_figures.galleries(table, store, notes))
    figures.update(explanation_figures.counterfactual_figures(table, store, notes))
    figures.update(explanation_figures.surrogate_figures(table, store, notes))
    return figures


def summary_figures(summary: pd.DataFrame, notes: list[str] | None = None, *, ranks: pd.DataFrame | None = None,
                    friedman: Mapping[str, Any] | None = None,
                    agreement: pd.DataFrame | None = None) -> dict[str, Figure]:
    """The figures of :func:`report_figures` drawn from the summary alone (metric scores, ranks, CD diagrams,
    metric agreement), in its order."""
    return dict(summary_figure_items(summary, notes, ranks=ranks, friedman=friedman, agreement=agreement))


def summary_figure_items(summary: pd.DataFrame, notes: list[str] | None = None, *, ranks: pd.DataFrame | None = None,
                         friedman: Mapping[str, Any] | None = None,
                         agreement: pd.DataFrame | None = None) -> Iterator[tuple[str, Figure]]:
    """:func:`summary_figures` as (name, figure) pairs, each drawn when asked for (the W&B sweep run logs and
    frees one before drawing the next: the metric-scores figure of 1,000 cells holds ~160 MB)."""
    scored = scored_rows(summary)
    if len(scored):
        colours = report_colours(scored)
        for page, rows in metric_score_pages(scored):  # one page: the whole summary; else a figure per dataset
            yield ("metric_scores_" + page if page else "metric_scores"), metric_scores(rows, colours=colours)
    ranks = summary_ranks(scored) if ranks is None else ranks
    if len(ranks):
        yield "rank_heatmap", rank_heatmap(ranks, title="average rank per metric over its N comparison groups",
                                           columns=metric_order(scored))
    yield from _cd_diagrams(friedman or {}, notes).items()
    if has_metric_pairs(agreement):
        yield "metric_agreement", metric_agreement(agreement, agreement.attrs.get("family"))
    elif notes is not None:
        notes.append("metric agreement: needs two metrics ranking the same (at least three) methods")


def report_colours(scored: pd.DataFrame) -> dict:
    """One colour per method for every figure of a report (bars by competitor, cost points by method), so that
    a method has the same colour in each."""
    names = set(scored["method"].astype(str))
    controls = set(summary_controls(scored))  # by the rows' role (results/roles.py): controls are coloured last
    if "competitor" in scored:
        names |= set(scored["competitor"].astype(str))
        if ROLE_COLUMN in scored:
            controls |= set(scored.loc[scored[ROLE_COLUMN].astype(str) == CONTROL, "method"].astype(str))
    return method_colours(names, controls)


def scored_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """Summary rows with a mean (a summary whose every row has one itself, not a copy: memory)."""
    if "mean" not in summary:
        return summary.iloc[0:0]
    scored = summary["mean"].notna()
    return summary if scored.all() else summary[scored]


def analysed_figures(table: pd.DataFrame, analysis: Any, store: str | os.PathLike[str],
                     notes: list[str] | None = None) -> dict[str, Figure]:
    """:func:`report_figures` with the statistics of ``analysis`` (``xaibench.report.build.analyse(table)``)."""
    ranks = analysis.ranks
    by_metric = ranks[ranks["by"] == "metric"] if "by" in ranks else None
    return report_figures(table, analysis.summary, store, notes, ranks=by_metric, friedman=analysis.friedman,
                          agreement=analysis.agreement)


def summary_ranks(summary: pd.DataFrame) -> pd.DataFrame:
    """Average over comparison groups of each method's within-group rank, per metric (``method, scope,
    avg_rank, n_groups``)."""
    ranked = summary[summary["rank"].notna()] if "rank" in summary else summary.iloc[0:0]
    if ranked.empty:
        return pd.DataFrame(columns=["method", "scope", "avg_rank", "n_groups"])
    grouped = ranked.assign(rank=ranked["rank"].astype(float)).groupby(["method", "metric"])["rank"]
    out = grouped.agg(avg_rank="mean", n_groups="size").reset_index()
    return out.rename(columns={"metric": "scope"})


def _cd_diagrams(friedman: Mapping[str, Any], notes: list[str] | None) -> dict[str, Figure]:
    """``cd_<scope>`` for each scope whose Friedman test rejects at its alpha (``FriedmanResult.post_hoc_reason``);
    a note says why each other scope has none (one note per reason, naming its scopes: a sweep with many metrics
    scored nowhere had a line for each)."""
    figures, skipped = {}, {}
    for scope, result in friedman.items():
        reason = result.post_hoc_reason()
        if reason:
            skipped.setdefault(reason, []).append(scope)
            continue
        name = "cd_" + re.sub(r"[^A-Za-z0-9]+", "_", scope.split(":")[-1].strip()).strip("_")
        p = "p < 1e-4" if result.p_value < 1e-4 else f"p = {result.p_value:.3g}"
        title = f"{scope}: N = {result.n_blocks} groups, Friedman {p}, \u03b1 = {result.alpha:g}"
        figures[name] = cd_diagram(result.avg_ranks.dropna(), float(result.cd), title=title)
    if notes is not None:
        notes += [f"CD diagram{'s' if len(scopes) > 1 else ''} ({'; '.join(scopes)}): not drawn, {reason}"
                  for reason, scopes in skipped.items()]
    return figures


def cost_metric(summary: pd.DataFrame) -> str | None:
    """The metric the cost-vs-faithfulness figure plots (the first faithfulness metric by name), or None."""
    faithful = summary[summary["family"] == FAITHFULNESS]["metric"] if "family" in summary else pd.Series([], dtype=str)
    return None if faithful.empty else sorted(faithful.unique())[0]


def _cost(table: pd.DataFrame, summary: pd.DataFrame, notes: list[str] | None) -> dict[str, Figure]:
    return dict(cost_items(table, summary, notes))


def cost_items(table: pd.DataFrame, summary: pd.DataFrame, notes: list[str] | None) -> Iterator[tuple[str, Figure]]:
    """``cost_vs_faithfulness``, drawn when asked for; a summary of more experiments than ``metric_scores``
    draws in one figure gets one per dataset (``cost_vs_faithfulness_<dataset>``, the pages of
    ``metric_score_pages``): one point and one legend entry per experiment and method made the figure of a
    10,000-cell sweep ~40 inches tall and ~330 MB to draw and render."""
    metric = cost_metric(summary)
    if metric is None:
        if notes is not None:
            notes.append("cost vs faithfulness: the table has no faithfulness metric")
        return
    colours = report_colours(summary)
    for page, rows in metric_score_pages(summary[summary["metric"] == metric]):
        points = cost_score_points(table, rows, metric)
        if len(points):
            name = "cost_vs_faithfulness_" + page if page else "cost_vs_faithfulness"
            yield name, cost_vs_score(points, metric=metric, colours=colours)


def caption(name: str, summary: pd.DataFrame | None = None) -> str:
    """The caption of a figure by its name (each figure's own title says which experiment or scope). With the
    report's ``summary``, a figure of means and CIs (metric scores, cost) says over how many samples and seeds and
    how its CI was made, as the tables' captions do (with 2 seeds its 95% holds the true mean about 66% of the time
    where seeds differ more than samples: the bare "95% confidence interval" overstated the error bars)."""
    text = next((text for prefix, text in CAPTIONS if name.startswith(prefix)), name.replace("_", " "))
    if summary is not None and name == "rank_heatmap":
        return f"{text} {_group_counts(summary)}".rstrip()
    if summary is None or not name.startswith(("metric_scores", "cost_vs_faithfulness")):
        return text
    from xaibench.report.tables.layouts import interval_text

    rows = summary
    if name.startswith("cost_vs_faithfulness") and cost_metric(summary) is not None:
        rows = summary[summary["metric"] == cost_metric(summary)]
    over = interval_text(rows)
    return f"{text} Scores: {over}." if over else text


def _group_counts(summary: pd.DataFrame) -> str:
    """``Here N = 3 for every metric.`` (or ``N = 2 to 5 per metric.``): the rank heatmap's caption said "over
    comparison groups" without how many, so a reader could not tell an average over 2 groups from one over 200."""
    ranks = summary_ranks(scored_rows(summary))
    if ranks.empty:
        return ""
    most = ranks.groupby("scope")["n_groups"].max()
    low, high = int(most.min()), int(most.max())
    return f"Here N = {low} for every metric." if low == high else f"Here N = {low} to {high} per metric."


def write_figures(figures: Mapping[str, Figure], out_dir: str | os.PathLike[str],
                  summary: pd.DataFrame | None = None) -> list:
    """Save each figure as ``<out_dir>/figures/<name>.png`` (300 dpi) and ``.pdf``; returns the HTML report's
    figures (PNG bytes with captions: :func:`caption`, with ``summary`` the report's) in the same order,
    downsampled to 150 dpi so that a browser shows one- and two-column figures at the same scale as each other
    (and the page stays small)."""
    from pathlib import Path

    from xaibench.report.figures import save_figure
    from xaibench.report.html_document import Figure as HtmlFigure

    embedded = []
    for name, figure in figures.items():
        png, _pdf = save_figure(figure, Path(out_dir) / FIGURES_DIR / name)
        embedded.append(HtmlFigure(_half_size(png.read_bytes()), caption(name, summary), key=name))
    return embedded


def _half_size(png: bytes) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        small = image.resize((max(1, image.width // 2), max(1, image.height // 2)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="PNG")
    return buffer.getvalue()
