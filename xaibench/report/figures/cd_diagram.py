"""Critical-difference diagram (Demšar, 2006, "Statistical Comparisons of Classifiers over Multiple Data Sets",
JMLR 7, Fig. 1-2).

An axis of average ranks (1 = best, on the left); the better half of the methods is labelled on the left, the
rest on the right; a scale bar shows the critical difference (CD) of the Nemenyi test; thick bars join the
methods whose average ranks differ by less than the CD (not significantly different). Each bar is a maximal run
of consecutive methods spanning less than the CD, so two methods share a bar exactly when they are within CD.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from xaibench.report.figures._style import ONE_COLUMN_IN, paper_figure, paper_style

GROUP_GID = "cd-group"  # gid of each bar joining methods within the CD (tests and readers find them by it)
_BAR_STEP = 0.16  # vertical distance between stacked group bars (data units; one label line is 0.5)


def cd_groups(avg_ranks: pd.Series, cd: float) -> list[tuple[str, ...]]:
    """Maximal runs of rank-sorted methods whose average ranks span less than ``cd`` (two or more methods each)."""
    ordered = avg_ranks.sort_values(kind="stable")
    names, ranks = list(ordered.index), ordered.to_numpy(dtype=np.float64)
    groups, reach = [], -1
    for i in range(len(ranks)):
        j = i
        while j + 1 < len(ranks) and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > i and j > reach:
            groups.append(tuple(names[i : j + 1]))
        reach = max(reach, j)
    return groups


def cd_diagram(avg_ranks: pd.Series, cd: float, *, title: str = "", width: float = ONE_COLUMN_IN) -> Figure:
    """Draw the CD diagram of ``avg_ranks`` (method -> average rank over the data sets) with critical difference ``cd``.

    Args:
        avg_ranks: average rank per method (index: method names), e.g. ``FriedmanResult.avg_ranks``.
        cd: Nemenyi critical difference for these k methods and N data sets, e.g. ``FriedmanResult.cd``.
        title: e.g. the metric or family, N and the Friedman p-value.
    """
    ordered = avg_ranks.astype(float).sort_values(kind="stable")
    k = len(ordered)
    if k < 2:
        raise ValueError("a CD diagram needs at least two methods")
    groups = cd_groups(ordered, cd)
    n_side = int(np.ceil(k / 2))
    with paper_style():
        first_label = -0.3 - _BAR_STEP * len(groups)
        bottom = first_label - 0.5 * (n_side - 1) - 0.3
        figure, ax = paper_figure(figsize=(width, 0.3 * (1.15 - bottom) + (0.15 if title else 0.02)))
        low, high = 1, max(k, int(np.ceil(ordered.max())))
        _axis(ax, low, high)
        _labels(ax, ordered, n_side, low, high, first_label)
        _groups(ax, ordered, groups)
        _cd_scale(ax, cd, low)
        ax.set_xlim(low - 0.42 * (high - low) - 0.2, high + 0.42 * (high - low) + 0.2)
        ax.set_ylim(bottom, 1.15)
        ax.axis("off")
        if title:
            figure.suptitle(title, fontsize=7.5, y=0.99, va="top")
        figure.subplots_adjust(left=0.01, right=0.99, top=1 - (0.17 if title else 0.02) / figure.get_figheight(),
                               bottom=0.01)
    return figure


def _axis(ax, low: int, high: int) -> None:
    ax.plot([low, high], [0, 0], color="black", linewidth=0.8)
    for tick in range(low, high + 1):
        ax.plot([tick, tick], [0, 0.1], color="black", linewidth=0.8)
        ax.text(tick, 0.17, str(tick), ha="center", va="bottom", fontsize=7)
    for tick in np.arange(low + 0.5, high, 1.0):
        ax.plot([tick, tick], [0, 0.05], color="black", linewidth=0.5)


def _labels(ax, ordered: pd.Series, n_side: int, low: int, high: int, first: float) -> None:
    """Elbow lines from each method's rank down to its label: best half on the left, the rest on the right."""
    for i, (name, rank) in enumerate(ordered.items()):
        left = i < n_side
        depth = first - 0.5 * (i if left else len(ordered) - 1 - i)
        end = low - 0.25 if left else high + 0.25
        ax.plot([rank, rank, end], [0, depth, depth], color="0.25", linewidth=0.6)
        ax.text(end + (-0.05 if left else 0.05), depth, f"{name} ({rank:.2f})", ha="right" if left else "left",
                va="center", fontsize=7)


def _groups(ax, ordered: pd.Series, groups: list[tuple[str, ...]]) -> None:
    """Thick bars just below the axis joining the methods of each group (staggered when they overlap)."""
    for level, members in enumerate(groups):
        start, stop = ordered[members[0]], ordered[members[-1]]
        y = -0.15 - _BAR_STEP * level
        ax.plot([start - 0.03, stop + 0.03], [y, y], color="black", linewidth=2.2, solid_capstyle="butt",
                gid=GROUP_GID, label="/".join(members))


def _cd_scale(ax, cd: float, low: int) -> None:
    y = 0.8
    ax.plot([low, low + cd], [y, y], color="black", linewidth=0.9)
    for x in (low, low + cd):
        ax.plot([x, x], [y - 0.06, y + 0.06], color="black", linewidth=0.9)
    ax.text(low + cd / 2, y + 0.08, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=7)
