"""Rank heatmap: methods x scopes (metrics, families or experiments), each cell the method's average rank.

Rank 1 is best whatever the metric's direction (ranks follow each metric's declared direction). Brighter is
better; numbers are printed in every cell so the figure reads without the colour bar. With ``n_groups`` in the
input, each column's label says over how many comparison groups its ranks are averaged (``sparseness (N=3)``, the
most any method of the column was ranked in, as the families table's headers), and a method ranked in fewer of a
column's comparison groups than the most-ranked method gets a ``*`` (an average over other groups: not comparable).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from xaibench.report.figures._style import ONE_COLUMN_IN, TWO_COLUMN_IN, paper_figure, paper_style

RANK_CMAP = "viridis_r"  # low rank (best) bright yellow, worst dark


def rank_heatmap(ranks: pd.DataFrame, *, value: str = "avg_rank", title: str = "",
                 width: float | None = None, columns: list[str] | None = None) -> Figure:
    """Heatmap of ``ranks`` (long: ``method``, ``scope``, ``avg_rank``), methods sorted by their mean rank.

    Args:
        ranks: e.g. ``average_ranks(summary, by="metric")``; ``scope`` becomes the columns.
        value: the column to show.
        columns: the scopes in the order to show them (``statistics.metric_order``: by family, as the report's
            tables; default: alphabetical); scopes without a rank are left out.
    """
    grid = ranks.pivot_table(index="method", columns="scope", values=value, aggfunc="mean")
    if columns is not None:
        grid = grid[[c for c in columns if c in grid.columns] + [c for c in grid.columns if c not in columns]]
    grid = grid.loc[grid.mean(axis=1).sort_values(kind="stable").index]
    partial = _partial_coverage(ranks, grid)
    n_rows, n_cols = grid.shape
    width = width or (ONE_COLUMN_IN if n_cols <= 5 else TWO_COLUMN_IN)
    label_in = 0.065 * max(len(str(c)) for c in grid.columns)
    with paper_style():
        figure, ax = paper_figure(figsize=(width, 0.45 + 0.22 * n_rows + label_in))
        image = ax.imshow(grid.to_numpy(dtype=float), cmap=RANK_CMAP, aspect="auto",
                          vmin=1, vmax=max(float(np.nanmax(grid.to_numpy())), 2.0))
        for (i, j), rank in np.ndenumerate(grid.to_numpy(dtype=float)):
            if np.isfinite(rank):
                shade = image.cmap(image.norm(rank))
                ink = "white" if 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.5 else "black"
                ax.text(j, i, f"{rank:.1f}" + ("*" if partial[i, j] else ""), ha="center", va="center",
                        fontsize=6.5, color=ink)
        ax.set_xticks(np.arange(n_cols), column_labels(ranks, grid.columns), rotation=35, ha="right")
        ax.set_yticks(np.arange(n_rows), [str(r) for r in grid.index])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        bar = figure.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
        bar.set_label("average rank (1 = best)", fontsize=6.5)
        bar.ax.tick_params(labelsize=6, length=2)
        if title:
            ax.set_title(title)
        if partial.any():
            ax.set_xlabel("* ranked in fewer of the column's groups than the most-ranked method", fontsize=6)
        figure.tight_layout(pad=0.2)
    return figure


def column_labels(ranks: pd.DataFrame, scopes) -> list[str]:
    """``scope (N=n)`` per scope, ``n`` the most comparison groups any method of the scope was ranked in (the bare
    scope without ``n_groups``): the figure said "average rank" without saying over what, nor how many."""
    if "n_groups" not in ranks:
        return [str(scope) for scope in scopes]
    most = ranks.groupby("scope")["n_groups"].max()
    return [f"{scope} (N={int(most[scope])})" if scope in most.index else str(scope) for scope in scopes]


def _partial_coverage(ranks: pd.DataFrame, grid: pd.DataFrame) -> np.ndarray:
    """``grid``-shaped: True where a method's ``n_groups`` is below its column's largest."""
    if "n_groups" not in ranks:
        return np.zeros(grid.shape, dtype=bool)
    counts = ranks.pivot_table(index="method", columns="scope", values="n_groups", aggfunc="sum")
    counts = counts.reindex(index=grid.index, columns=grid.columns)
    return (counts < counts.max()).to_numpy() & grid.notna().to_numpy()
