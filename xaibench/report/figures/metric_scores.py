"""Per-metric bar plots of mean scores with their confidence intervals, one panel per metric.

Within a panel, bars are grouped by experiment (dataset / model) and coloured by method; whiskers are the
summary's CI (``ci_low``..``ci_high``, e.g. the bootstrap 95% CI). Control methods (random, constant, sobel)
are hatched so a reader sees at once whether a method beats them. The title carries the metric's direction.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib import colormaps
from matplotlib.patches import Rectangle

from xaibench.report.figures._style import TWO_COLUMN_IN, direction_arrow, group_labels, paper_figure, paper_style

CONTROLS = ("random", "constant", "sobel")
PANELS_PER_ROW = 3


def metric_scores(summary: pd.DataFrame, metrics: list[str] | None = None, *, width: float = TWO_COLUMN_IN) -> Figure:
    """Bars of ``mean`` with ``ci_low``/``ci_high`` whiskers per (experiment, method), one panel per metric.

    Args:
        summary: one row per (model, dataset, method, metric) with ``mean``, ``ci_low``, ``ci_high``,
            ``higher_is_better`` (``xaibench.summarize``); rows without a mean are left out.
        metrics: panels to draw, in order (default: every metric with a score).
    """
    scored = summary[summary["mean"].notna()].copy()
    scored["group"] = group_labels(scored)
    metrics = metrics or sorted(scored["metric"].unique())
    methods = sorted(scored["method"].unique())
    columns = min(PANELS_PER_ROW, len(metrics))
    rows = int(np.ceil(len(metrics) / columns))
    with paper_style():
        figure, axes = paper_figure(rows, columns, squeeze=False, figsize=(width, 0.4 + 1.75 * rows))
        colours = {m: colormaps["tab10"](i % 10) for i, m in enumerate(methods)}
        for ax, metric in zip(axes.ravel(), metrics):
            _panel(ax, scored[scored["metric"] == metric], methods, colours)
        for ax in axes.ravel()[len(metrics):]:
            ax.axis("off")
        handles = [Rectangle((0, 0), 1, 1, facecolor=colours[m], hatch="////" if m in CONTROLS else None,
                                 edgecolor="white" if m in CONTROLS else colours[m]) for m in methods]
        figure.legend(handles, methods, loc="upper center", ncol=min(len(methods), 5), frameon=False,
                      bbox_to_anchor=(0.5, 1.0), handlelength=1.2, columnspacing=1.0)
        figure.tight_layout(rect=(0, 0, 1, 1 - 0.3 / figure.get_figheight()), h_pad=0.6, w_pad=0.8)
    return figure


def _panel(ax, rows: pd.DataFrame, methods: list[str], colours: dict) -> None:
    groups = list(dict.fromkeys(rows.sort_values(["group"])["group"]))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        mine = rows[rows["method"] == method].set_index("group").reindex(groups)
        x = np.arange(len(groups)) - 0.4 + width * (i + 0.5)
        low = (mine["mean"] - mine["ci_low"]).clip(lower=0)
        high = (mine["ci_high"] - mine["mean"]).clip(lower=0)
        ax.bar(x, mine["mean"], width=width * 0.92, color=colours[method], hatch="////" if method in CONTROLS else None,
               edgecolor="white" if method in CONTROLS else colours[method], linewidth=0, label=method,
               yerr=np.vstack([low.fillna(0), high.fillna(0)]), error_kw={"elinewidth": 0.7, "capsize": 1.5})
    first = rows.iloc[0]
    ax.set_title(f"{first['metric']} {direction_arrow(bool(first['higher_is_better']))}")
    ax.set_xticks(np.arange(len(groups)), groups, rotation=25 if len(groups) > 2 else 0,
                  ha="right" if len(groups) > 2 else "center")
    ax.axhline(0, color="0.3", linewidth=0.5)
    ax.tick_params(axis="x", length=0)
