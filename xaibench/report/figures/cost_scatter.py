"""Cost vs faithfulness: each method's explanation cost per sample against its score on a faithfulness metric.

One point per (competitor, experiment), vertical whiskers for the score's CI, cost on a log axis (seconds per sample
or model forwards per sample span orders of magnitude). The best trade-offs sit up and to the left for a
higher-is-better metric.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from xaibench.report.figures._style import (ONE_COLUMN_IN, direction_arrow, group_labels, method_colours, method_looks,
                                            method_order, paper_figure, paper_style)
from xaibench.results.groups import competitor_labels, setting_id
from xaibench.results.roles import ROLE_COLUMN, summary_controls

COST_LABELS = {"explain_s": "explanation time per sample (s)", "n_forward": "model forwards per sample"}
MARKERS = "osD^v<>pXh"


# A cost point is one competitor (a method with its parameters) on one model and dataset: the mean over the
# table's ok rows of the plotted metric. Keyed by the method's name alone, the costs of two variants (``saliency``
# with abs true and false) were averaged into one and both points drawn at it, in one colour.
# A setting is the model and dataset with their parameters and revisions (``groups.setting_id``): keyed by the names
# only, two variants of a model (``hidden=[32]`` and ``[64]``) had their costs pooled into one.
COST_KEYS = ["setting", "method", "method_params"]


def cost_score_points(table: pd.DataFrame, summary: pd.DataFrame, metric: str, cost: str = "explain_s") -> pd.DataFrame:
    """Points for :func:`cost_vs_score`: per (experiment, competitor) the mean ``cost`` from the table's scored rows
    and the summary's ``mean``/``ci_low``/``ci_high`` on ``metric``. Columns: method (the competitor label, e.g.
    ``saliency (abs=False)``), group (the experiment: dataset / model and their differing parameters), cost, score,
    score_low, score_high, higher_is_better, and role (the summary's: ``control`` for a control) where it has one."""
    ok = table[(table["status"] == "ok") & (table["metric"] == metric)]
    scores = summary[summary["metric"] == metric].copy()
    if "setting" in scores:  # one cost per competitor in a setting (COST_KEYS), as streamed_figures groups it
        ok = ok if "setting" in ok.columns else ok.assign(setting=setting_id(ok))
        costs = cell_median_costs(ok, [c for c in COST_KEYS if c in ok.columns], cost)
        costs = costs.assign(competitor=competitor_labels(costs).astype(str))
        keys = ["setting", "competitor"]
    else:  # a summary made without settings (by hand): per model and dataset
        ok = ok.assign(competitor=competitor_labels(ok).astype(str)) if "method_params" in ok else \
            ok.assign(competitor=ok["method"].astype(str))
        keys = ["model", "dataset", "competitor"]
        costs = cell_median_costs(ok, keys, cost)
    costs = costs[keys + [cost]].rename(columns={cost: "cost"})
    scores["group"] = group_labels(scores.assign(variant=_experiment_variant(scores)))
    if "competitor" not in scores:
        scores["competitor"] = scores["method"]
    scores["competitor"] = scores["competitor"].astype(str)
    points = scores.drop(columns=["method"]).merge(costs, on=keys, how="inner")
    points = points.rename(columns={"competitor": "method", "mean": "score", "ci_low": "score_low",
                                    "ci_high": "score_high"})
    kept = ["method", "group", "cost", "score", "score_low", "score_high", "higher_is_better"]
    return points[kept + [ROLE_COLUMN] if ROLE_COLUMN in points else kept]


# A point's cost is the median over its cells (seeds) of each cell's cost, not the mean over its rows: a sweep's
# first cells pay one-off start-up costs (imports, first autograd / captum calls), so one cell of integrated
# gradients timed 21 ms a sample and its other seeds 0.8 ms, and the mean drew it as the slowest method, 3x
# Kernel SHAP, which the median keeps below it (breast_cancer / mlp, 3 seeds, paper25).
def cell_median_costs(ok: pd.DataFrame, keys: list[str], cost: str) -> pd.DataFrame:
    """Per ``keys`` (a cost point) the median over its cells of each cell's mean ``cost`` (one value per cell: a
    cell times its explanations once). Cells are told apart by ``cell_key``, else by ``seed``; rows with neither
    (one row per point, as ``streamed_figures`` hands them over) are each a cell. Columns: ``keys`` + ``cost``."""
    cell = "cell_key" if "cell_key" in ok.columns else "seed" if "seed" in ok.columns else None
    if cell is not None:
        ok = ok.groupby([*keys, cell], as_index=False, dropna=False)[cost].agg(exact_mean)
    return ok.groupby(keys, as_index=False)[cost].median()


def exact_mean(values: pd.Series) -> float:
    """The mean of the finite-or-inf values (NaN skipped) from their exact sum (``math.fsum``), rounded once: the
    same bits however the rows are grouped (pandas' group mean differs in the last bit between a 3-group frame
    and the whole table's groups, so a cost streamed a range at a time would not equal the whole table's)."""
    kept = values.dropna().to_numpy(dtype=np.float64)
    return math.fsum(kept) / len(kept) if len(kept) else float("nan")


def _experiment_variant(scores: pd.DataFrame) -> pd.Series:
    """The ``variant`` text without the method's parameters (the competitor label names those): what tells two
    experiments on the same dataset and model apart (``model.hidden=64``)."""
    if "variant" not in scores:
        return pd.Series("", index=scores.index)
    parts = scores["variant"].fillna("").astype(str).map(lambda text: re.split(r" (?=[\w.]+=)", text))
    return parts.map(lambda ps: " ".join(p for p in ps if p and not p.startswith("method.")))


LEGEND_LINE_IN = 0.125  # height of one 7 pt legend line with its spacing


def cost_vs_score(points: pd.DataFrame, *, metric: str, cost: str = "explain_s", width: float = ONE_COLUMN_IN,
                  colours: dict | None = None) -> Figure:
    """Scatter of ``points`` (see :func:`cost_score_points`): colour = method (``colours``, by default
    ``method_colours`` of the methods drawn: the colours of ``metric_scores``; controls grey and hollow), marker =
    experiment.

    The legends sit below the axes in a band of the figure sized to their lines, so the axes keep their height
    however many methods and experiments there are (legends anchored to the axes squashed them to a strip and
    ran into the axis label)."""
    points = points[np.isfinite(points["cost"]) & np.isfinite(points["score"]) & (points["cost"] > 0)]
    controls = summary_controls(points)  # legend order: controls last (by role; by name where points have none)
    methods = method_order(points["method"].unique(), controls)
    groups = sorted(points["group"].unique())
    lines = max(len(methods), sum(str(g).count("\n") + 1 for g in groups) if len(groups) > 1 else 0) + 1
    legend_in, axes_in = LEGEND_LINE_IN * lines + 0.1, 0.62 * width
    height = axes_in + 0.55 + legend_in
    with paper_style():
        figure, ax = paper_figure(figsize=(width, height))
        colours = colours if colours is not None else method_colours(methods, controls)
        looks = method_looks(colours, controls)  # controls hollow; beyond 12 methods a half-filled marker
        for _, point in points.iterrows():
            marker = MARKERS[groups.index(point["group"]) % len(MARKERS)]
            error = [[max(point["score"] - point["score_low"], 0)], [max(point["score_high"] - point["score"], 0)]]
            ax.errorbar(point["cost"], point["score"], yerr=error, fmt=marker, color=colours[point["method"]],
                        markersize=4, elinewidth=0.7, capsize=1.5, fillstyle=looks[point["method"]].fill)
        ax.set_xscale("log")
        _decade_ticks(ax, points["cost"].to_numpy())
        higher = bool(points["higher_is_better"].iloc[0]) if len(points) else True
        ax.set_xlabel(COST_LABELS.get(cost, cost))
        ax.set_ylabel(f"{metric} {direction_arrow(higher)}")
        ax.grid(True, which="major", linewidth=0.3, color="0.85")
        ax.spines["bottom"].set_capstyle("butt")  # its projecting end lay outside the saved tight box's padding
        method_handles = [Line2D([], [], linestyle="", marker="s", color=colours[m], markersize=4,
                                 fillstyle=looks[m].fill) for m in methods]
        figure.legend(method_handles, methods, loc="upper left", bbox_to_anchor=(0.0, legend_in / height),
                      frameon=False, title="method", title_fontsize=7, alignment="left")
        if len(groups) > 1:
            group_handles = [Line2D([], [], linestyle="", marker=MARKERS[i % len(MARKERS)], color="0.3",
                                    markersize=4) for i in range(len(groups))]
            figure.legend(group_handles, groups, loc="upper left", bbox_to_anchor=(0.5, legend_in / height),
                          frameon=False, title="dataset / model", title_fontsize=7, alignment="left")
        figure.tight_layout(pad=0.2, rect=(0.0, legend_in / height, 0.98, 1.0))  # the axes above the legends
    return figure


def _decade_ticks(ax, costs: np.ndarray) -> None:
    """Label only powers of ten, with at least two of them in view: matplotlib labels the 2..9 minor ticks of an
    axis spanning about one decade, and at one column width those labels overlap (``2x10^-4 3x10^-4 ...``)."""
    ax.xaxis.set_minor_formatter(NullFormatter())
    if not costs.size:
        return
    low, high = ax.get_xlim()
    decades = np.arange(np.ceil(np.log10(low)), np.floor(np.log10(high)) + 1)
    if decades.size < 2:  # widen to the decades around the data, so the axis keeps two labelled ticks
        ax.set_xlim(10 ** np.floor(np.log10(costs.min())), 10 ** np.ceil(np.log10(costs.max()) + 1e-9))
