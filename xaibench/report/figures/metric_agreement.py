"""Metric agreement: Kendall's tau between the method rankings that two metrics induce (a square heatmap).

tau = 1: the metrics order the methods identically; 0: unrelated; -1: reversed. Metrics are grouped by family
(separated by white lines, each family under its metric's name), so disagreement within a family stands out. The colour map
is diverging and centred at zero (vmin = -1, vmax = 1).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from xaibench.report.figures._style import ONE_COLUMN_IN, SIGNED_CMAP, TWO_COLUMN_IN, paper_figure, paper_style
from xaibench.results.statistics import compared_metrics


def metric_agreement(tau: pd.DataFrame, families: pd.Series | dict | None = None, *, title: str = "",
                     width: float | None = None) -> Figure:
    """Heatmap of a square Kendall-tau matrix (index = columns = metric names).

    Args:
        tau: e.g. ``metric_agreement(summary)`` from the statistics module; NaN cells (too few shared
            comparisons) are left blank.
        families: metric -> family, to order and separate the metrics (optional).
    """
    families = pd.Series(families if families is not None else {}, dtype="object")
    tau = compared_metrics(tau)
    order = sorted(tau.index, key=lambda m: (str(families.get(m, "")), str(m)))
    grid = tau.loc[order, order].to_numpy(dtype=float)
    n = len(order)
    width = width or (ONE_COLUMN_IN if n <= 6 else TWO_COLUMN_IN)
    label_in = 0.065 * max(len(str(m)) for m in order)
    with paper_style():
        side = min(width - label_in - 0.5, 0.32 * n + 0.3)
        figure, ax = paper_figure(figsize=(width, side + label_in + 0.3))
        image = ax.imshow(grid, cmap=SIGNED_CMAP, norm=Normalize(vmin=-1, vmax=1))
        for (i, j), value in np.ndenumerate(grid):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if abs(value) > 0.6 else "black")
        ax.set_xticks(np.arange(n), order, rotation=40, ha="right")
        ax.set_yticks(np.arange(n), [f"{m}\n({families[m]})" if m in families.index else m for m in order])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        _family_separators(ax, [str(families.get(m, "")) for m in order])
        bar = figure.colorbar(image, ax=ax, fraction=0.045, pad=0.03, ticks=[-1, -0.5, 0, 0.5, 1])
        # the longer "Kendall's τ between method rankings" ran past the top of a 3-metric figure: the caption says it
        bar.set_label("Kendall's \u03c4", fontsize=6.5)
        bar.ax.tick_params(labelsize=6, length=2)
        if title:
            ax.set_title(title)
        figure.tight_layout(pad=0.2)
    return figure


def _family_separators(ax, labels: list[str]) -> None:
    """White lines between families (each row's family is printed under its name)."""
    for start in range(1, len(labels)):
        if labels[start] != labels[start - 1]:
            ax.axhline(start - 0.5, color="white", linewidth=2)
            ax.axvline(start - 0.5, color="white", linewidth=2)
