"""Per-metric bar plots of mean scores with their confidence intervals, one panel per metric.

Within a panel, bars are grouped by experiment (dataset / model) and coloured by method; whiskers are the
summary's CI (``ci_low``..``ci_high``, e.g. the bootstrap 95% CI). Control methods (the summary's ``role``:
random, constant, sobel, a user's own control) are hatched so a reader sees at once whether a method beats them.
The title carries the metric's direction. A mean at (or within a pixel of) zero, e.g. the constant control's, is a
zero-height bar, invisible: it gets a thick line at its value in its method's colour (:func:`_zero_marks`), so a
reader tells "0" from "n/a" (a method without a mean there has no bar and no line).
A control far off the methods' scale (random's max_sensitivity ~2 beside the methods' ~0.1, which made the methods a
flat strip) does not set the panel's y axis: the axis spans the methods, and the control's bar runs to the panel's
edge, where a triangle marks it with its mean written beside (:func:`_off_scale_controls`).
A summary of more experiments than a figure can show legibly is drawn a page at a time (:func:`metric_score_pages`).
"""
from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from xaibench.report.figures._style import (TWO_COLUMN_IN, direction_arrow, group_labels, label_columns, method_colours,
                                            method_looks, method_order, paper_figure, paper_style)
from xaibench.results.groups import variant_text
from xaibench.results.roles import summary_controls
from xaibench.results.statistics import metric_order

PANELS_PER_ROW = 3
# Experiments (tick groups) one figure shows at most: above, one figure per dataset, in pages of this many. At 24
# experiments of 20 methods a panel is ~480 bars (a 10,000-cell sweep's single figure had 100 per panel, ~2,000 bars
# per panel, unreadable and ~430 MB to draw and render); the small sweeps' single figure is unchanged.
MAX_EXPERIMENTS = 24
Y_LABEL = "mean score [95% CI]"  # the bars' height and whiskers (the summary's mean, ci_low..ci_high)


def metric_scores(summary: pd.DataFrame, metrics: list[str] | None = None, *, width: float = TWO_COLUMN_IN,
                  colours: dict | None = None) -> Figure:
    """Bars of ``mean`` with ``ci_low``/``ci_high`` whiskers per (experiment, method), one panel per metric.

    Each experiment's bars are the methods scored there, side by side and centred on its tick (a method missing
    from an experiment leaves no gap); method variants (``competitor``, e.g. ``ig (n_steps=64)``) are bars of
    their own. Tick labels are horizontal when they fit and vertical when they would overlap.

    Args:
        summary: one row per (model, dataset, method, metric) with ``mean``, ``ci_low``, ``ci_high``,
            ``higher_is_better`` (``xaibench.summarize``); rows without a mean are left out.
        metrics: panels to draw, in order (default: every metric with a score).
        colours: method -> colour (``method_colours``; default: made from the methods drawn here).
    """
    scored = summary[summary["mean"].notna()].copy()
    scored["group"] = _experiment_labels(scored)
    scored["bar"] = scored["competitor"].astype(str) if "competitor" in scored else scored["method"].astype(str)
    metrics = metrics or metric_order(scored)  # by family, as the report's tables
    controls = summary_controls(scored)  # the rows' role: a user's own control is hatched, a "random" method not
    methods = method_order(scored["bar"].unique(), controls)
    columns = min(PANELS_PER_ROW, len(metrics))
    rows = int(np.ceil(len(metrics) / columns))
    with paper_style():
        figure, axes = paper_figure(rows, columns, squeeze=False, figsize=(width, 0.4 + 1.75 * rows))
        colours = colours if colours is not None else method_colours(methods, controls)
        for index, (ax, metric) in enumerate(zip(axes.ravel(), metrics)):
            _panel(ax, scored[scored["metric"] == metric], methods, colours, controls)
            if index % columns == 0:  # what the bars and whiskers are, once per row (a paper's PDF has no caption)
                ax.set_ylabel(Y_LABEL)
        for ax in axes.ravel()[len(metrics):]:
            ax.axis("off")
        looks = method_looks(colours, controls)
        handles = [Rectangle((0, 0), 1, 1, facecolor=colours[m], hatch=looks[m].hatch,
                             edgecolor="white" if looks[m].hatch else colours[m]) for m in methods]
        figure.legend(handles, methods, loc="upper center", ncol=min(len(methods), 5), frameon=False,
                      bbox_to_anchor=(0.5, 1.0), handlelength=1.2, columnspacing=1.0)
        label_height = np.zeros(rows)  # inches below each row's panels taken by its tick labels
        for index, ax in enumerate(axes.ravel()[: len(metrics)]):
            label_height[index // columns] = max(label_height[index // columns], _fit_tick_labels(ax))
        legend_in = 0.1 + 0.15 * np.ceil(len(methods) / 5)  # the legend's rows above the panels
        figure.set_size_inches(width, legend_in + rows * 1.45 + label_height.sum())
        figure.tight_layout(rect=(0, 0, 1, 1 - legend_in / figure.get_figheight()), h_pad=0.6, w_pad=0.8)
    return figure


def metric_score_pages(summary: pd.DataFrame, max_experiments: int | None = None
                       ) -> Iterator[tuple[str, pd.DataFrame]]:
    """The summary's scored rows cut into figures of at most ``max_experiments`` (default ``MAX_EXPERIMENTS``)
    experiments each: ``[("", rows)]`` (one figure of everything) when it has no more; else one page per dataset (``"<dataset>"``, by dataset id,
    sorted), a dataset of more experiments cut into the fewest pages of near-equal size, in label order
    (``"<dataset>_1"``, ``"<dataset>_2"``, ...). Dataset ids in page names keep only letters, digits and ``_``.

    Each page's figure holds a bounded number of bars, so memory per figure does not grow with the sweep; the
    pages are cut when asked for (one page's rows at a time).
    """
    max_experiments = MAX_EXPERIMENTS if max_experiments is None else max_experiments
    scored = summary if summary["mean"].notna().all() else summary[summary["mean"].notna()]  # no copy: memory
    labels = _row_labels(scored)
    if len(set(labels)) <= max_experiments:
        yield "", scored
        return
    codes, datasets = pd.factorize(scored["dataset"].astype(str))  # a code per row, not a string object (memory)
    for code, dataset in sorted(enumerate(datasets), key=lambda item: item[1]):
        of_dataset = codes == code
        names = sorted(set(labels[of_dataset]))
        chunks = np.array_split(np.array(names, dtype=object), -(-len(names) // max_experiments))  # near-equal
        stem = re.sub(r"[^A-Za-z0-9]+", "_", dataset).strip("_") or "dataset"
        for number, chunk in enumerate(chunks, start=1):
            chosen = of_dataset & np.isin(labels, list(chunk))
            yield (stem if len(chunks) == 1 else f"{stem}_{number}"), scored[chosen]


def _panel(ax, rows: pd.DataFrame, methods: list[str], colours: dict, controls: frozenset[str]) -> None:
    """One metric's bars: one ``ax.bar`` call per method (with and without a CI), positions computed for all bars
    at once, so a summary of thousands of experiments draws in seconds (a call per bar took minutes)."""
    groups = sorted(rows["group"].unique())
    bars = rows.drop_duplicates(["group", "bar"])  # a bar's first summary row
    bars = bars.assign(order=bars["bar"].map({m: i for i, m in enumerate(methods)}))
    bars = bars.sort_values(["group", "order"], kind="stable")  # each group's methods in legend order
    present = bars.groupby("group", sort=False)["bar"].transform("size").to_numpy()
    slot = bars.groupby("group", sort=False).cumcount().to_numpy()
    width = 0.8 / max(int(present.max(initial=0)), 1)
    x = bars["group"].map({g: i for i, g in enumerate(groups)}).to_numpy() - width * present / 2 + width * (slot + 0.5)
    mean, low, high = (bars[c].to_numpy(dtype=float) for c in ("mean", "ci_low", "ci_high"))
    whiskers = np.stack([np.maximum(mean - low, 0), np.maximum(high - mean, 0)])
    looks = method_looks(colours, controls)
    for method in methods:
        of_method = (bars["bar"] == method).to_numpy()
        hatch = looks[method].hatch  # controls "////"; a method beyond the 12th colour its round's pattern
        for with_ci in (True, False):
            chosen = of_method & (np.isnan(low) != with_ci)
            if chosen.any():
                _bars(ax, x[chosen], mean[chosen], width * 0.92, facecolor=colours[method],
                      hatch=hatch, edgecolor="white" if hatch else colours[method],
                      yerr=whiskers[:, chosen] if with_ci else None)
    is_control = bars["bar"].isin(controls).to_numpy()
    shown = _off_scale_controls(ax, x, mean, low, high, is_control, width * 0.92)
    _zero_marks(ax, x[shown], mean[shown], low[shown], high[shown], width * 0.92,
                [colours[m] for m, keep in zip(bars["bar"], shown) if keep])
    first = rows.iloc[0]
    ax.set_title(f"{first['metric']} {direction_arrow(bool(first['higher_is_better']))}")
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.axhline(0, color="0.3", linewidth=0.5)
    ax.tick_params(axis="x", length=0)


def _bars(ax, x: np.ndarray, heights: np.ndarray, width: float, *, facecolor, edgecolor, hatch: str | None,
          yerr: np.ndarray | None) -> None:
    """``ax.bar(x, heights, width, color=facecolor, edgecolor=edgecolor, hatch=hatch, linewidth=0, yerr=yerr,
    error_kw={"elinewidth": 0.7, "capsize": 1.5})`` drawn as one collection: the same pixels (tested against
    ``ax.bar``), a tenth of the memory. ``ax.bar`` keeps a Rectangle artist per bar (~13 KB each): the summary of
    10,000 cells has ~100,000 bars, which held ~1.3 GB while the figure existed. The bars' corners and the
    whiskers' positions are computed as ``ax.bar`` computes them (left = x - width / 2, centre = left + width / 2).

    Args:
        x: ``(n,)`` bar centres; heights: ``(n,)`` means; yerr: ``(2, n)`` whisker lengths below/above, or None.
    """
    from matplotlib.collections import PatchCollection

    left = x - width / 2
    bars = PatchCollection([Rectangle((corner, 0), width, height) for corner, height in zip(left, heights)],
                           facecolor=facecolor, edgecolor=edgecolor, linewidth=0, hatch=hatch)
    bars.sticky_edges.y.append(0)  # as each bar's: the axis starts at 0 when every bar is on one side
    ax.add_collection(bars, autolim=True)
    if yerr is not None:
        ax.errorbar(left + 0.5 * width, heights, yerr=yerr, fmt="none", ecolor="k", capsize=1.5, elinewidth=0.7,
                    label="_nolegend_")


OFF_SCALE_RATIO = 3.0  # controls cut off where the panel's span with them is over this many times the methods' span
OFF_SCALE_MARGIN = 0.12  # the methods' axis: their span (means, CIs and 0) plus this share of it on each side
OFF_SCALE_GID = "off_scale_control"  # the gid of an off-scale control's triangle and value text


def _off_scale_controls(ax, x: np.ndarray, mean: np.ndarray, low: np.ndarray, high: np.ndarray,
                        is_control: np.ndarray, width: float) -> np.ndarray:
    """Scale the panel to the non-control bars when a control would squash them, and mark the controls cut off.

    When the span of every bar (means, CIs and 0) is over ``OFF_SCALE_RATIO`` times the span of the non-control
    bars, the y axis spans the non-control bars plus ``OFF_SCALE_MARGIN`` of their span on each side (0 stays the
    axis' end where no bar crosses it). A control whose mean lies outside is drawn as before, cut at the panel's
    edge, with a triangle on the edge (pointing out of the panel) and its mean written inside the panel beside it
    (``gid`` ``OFF_SCALE_GID``): the control stays visible and its value readable. A panel of controls within
    range, or of controls only, is left as before.

    Args:
        x, mean, low, high: ``(n,)`` bar centres, means and CIs (NaN: no CI); is_control: ``(n,)`` bool.
    Returns:
        ``(n,)`` bool: the bars within the panel's y range (every bar where nothing is cut off).
    """
    every = np.ones(len(mean), dtype=bool)
    if not is_control.any() or is_control.all():
        return every
    methods = np.concatenate([mean[~is_control], low[~is_control], high[~is_control], [0.0]])
    methods = methods[np.isfinite(methods)]
    values = np.concatenate([mean, low, high, [0.0]])
    values = values[np.isfinite(values)]
    bottom, top = float(methods.min()), float(methods.max())
    span = top - bottom
    if span <= 0 or float(values.max() - values.min()) <= OFF_SCALE_RATIO * span:
        return every
    lower = bottom if bottom == 0 else bottom - OFF_SCALE_MARGIN * span
    upper = top if top == 0 else top + OFF_SCALE_MARGIN * span
    ax.set_ylim(lower, upper)
    above, below = mean > upper, mean < lower
    for cut, edge, marker, align, offset in ((above, upper, "^", "top", -3), (below, lower, "v", "bottom", 3)):
        for centre, value in zip(x[cut], mean[cut]):
            ax.plot([centre], [edge], marker=marker, color="k", markersize=4, clip_on=False, zorder=4,
                    gid=OFF_SCALE_GID, label="_nolegend_")
            ax.annotate(f"{value:.3g}", (centre + width / 2, edge), xytext=(1, offset), textcoords="offset points",
                        ha="left", va=align, fontsize=6, gid=OFF_SCALE_GID, zorder=4,
                        bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    return ~(above | below)


ZERO_MARK_SHARE = 0.01  # a bar shorter than this share of its panel's data span (~2 px at 1.45 in) gets a mark
ZERO_MARK_PT = 2.2  # the mark's line width: four times the zero axis line's, so it stands out on it


def _zero_marks(ax, x: np.ndarray, mean: np.ndarray, low: np.ndarray, high: np.ndarray, width: float,
                colours: list) -> None:
    """A horizontal line across each bar whose height is below ``ZERO_MARK_SHARE`` of the panel's span (means,
    CIs and zero), at its mean, in its method's colour: a zero-height bar (the constant control on a stability or
    sparseness metric) drew nothing, so a scored 0 looked like a method missing from the experiment.

    Args:
        x: ``(n,)`` bar centres; mean, low, high: ``(n,)`` the bars' means and CIs (NaN: no CI); colours: ``n``.
    """
    values = np.concatenate([mean, low, high, [0.0]])
    values = values[np.isfinite(values)]
    span = float(values.max() - values.min())
    flat = np.flatnonzero(np.abs(mean) <= ZERO_MARK_SHARE * span) if span > 0 else np.arange(len(mean))
    if flat.size:
        ax.hlines(mean[flat], x[flat] - width / 2, x[flat] + width / 2, colors=[colours[i] for i in flat],
                  linewidth=ZERO_MARK_PT, capstyle="butt", zorder=3, clip_on=False, label="_nolegend_")  # over the spine


def _fit_tick_labels(ax) -> float:
    """Slanted tick labels (45 degrees, anchored at their tick) where horizontal ones would touch, measured on
    the canvas; returns the labels' height in inches (the figure grows by it, so no label runs into the panel
    below)."""
    renderer = ax.figure.canvas.get_renderer()
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    boxes = [t.get_window_extent(renderer) for t in labels]
    if any(a.x1 + 2 > b.x0 for a, b in zip(boxes, boxes[1:])):
        for label in labels:
            label.set(rotation=45, ha="right", rotation_mode="anchor")
        boxes = [t.get_window_extent(renderer) for t in labels]
    return max((b.height for b in boxes), default=0.0) / ax.figure.dpi


def _row_labels(rows: pd.DataFrame) -> np.ndarray:
    """``_experiment_labels(rows)`` as an array, made once per distinct (dataset, model, variant) and shared by its
    rows: a 10,000-cell summary's 120,000 rows made 120,000 label strings (and a regex split each) for ~300."""
    dataset, model = label_columns(rows.drop(columns=["variant"], errors="ignore"))
    keys = [dataset, model] + (["variant"] if "variant" in rows else [])
    codes = rows.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    if not len(codes):
        return _experiment_labels(rows).to_numpy()
    firsts = np.unique(codes, return_index=True)[1]  # one row of each code, in code order
    return _experiment_labels(rows.iloc[firsts]).to_numpy()[codes]


def _experiment_labels(rows: pd.DataFrame) -> pd.Series:
    """``dataset / model`` (display names), plus what else differs between experiments; a method's own
    parameters are left out (they make competitors, i.e. bars, not experiments)."""
    labels = group_labels(rows.drop(columns=["variant"], errors="ignore"))
    if "variant" not in rows:
        return labels
    other = rows["variant"].fillna("").astype(str).map(  # the run's settings in brackets: ... [n_samples=8]
        lambda text: variant_text(" ".join(p for p in re.split(r" (?=[\w.]+=)", text)
                                           if p and not p.startswith("method."))))
    return labels.where(other == "", labels + "\n" + other)

