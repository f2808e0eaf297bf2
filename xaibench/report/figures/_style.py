"""Shared figure conventions: paper sizes, fonts, the signed colour map centred at zero, display names.

Figures are made outside pyplot (:func:`paper_figure`), so they work headless and never change a notebook's
backend.

Sizes follow two-column papers: one column is about 3.3 in wide, the full text width about 7 in. Fonts are
set for print at that size (7-8 pt), not for a screen.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from xaibench.results import roles

ONE_COLUMN_IN = 3.3
TWO_COLUMN_IN = 7.0
SIGNED_CMAP = "RdBu_r"  # red = positive evidence for the target class, blue = negative, white = 0
SEQUENTIAL_CMAP = "viridis"

_RC = {
    "font.size": 7.5,
    "axes.titlesize": 8,
    "axes.labelsize": 7.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.dpi": 100,
    "savefig.dpi": 300,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "pdf.fonttype": 42,  # embed TrueType: text stays selectable and editable in the PDF
    "ps.fonttype": 42,
}


@contextmanager
def paper_style() -> Iterator[None]:
    """Matplotlib settings for print at paper size (used by every figure function)."""
    with matplotlib.rc_context(_RC):
        yield


def paper_canvas(figsize: tuple[float, float]) -> Figure:
    """A Figure on its own Agg canvas, outside pyplot: headless, no global state, nothing to close, and the
    user's backend (e.g. a notebook's) untouched."""
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure


def paper_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kwargs):
    """``(figure, axes)`` like ``pyplot.subplots``, on a :func:`paper_canvas`."""
    figure = paper_canvas(figsize)
    return figure, figure.subplots(nrows, ncols, **kwargs)


def method_order(names, controls: Iterable[str] | None = None) -> list[str]:
    """The distinct methods alphabetically, controls last (``roles.controls_last``: ``controls`` the competitor
    labels whose rows record the control role, ``roles.summary_controls(summary)``; the built-in controls' names
    where None): the order of every legend."""
    return roles.controls_last({str(n) for n in names}, controls)


# Twelve method colours, pairwise at least as far apart (CIELAB distance 28) as the closest pair of matplotlib's
# tab10 (purple and pink): tab10 without its grey (greys are the controls'), then navy, maroon and dark teal. tab20,
# used beyond 10 methods before, pairs each hue with its light tint (blue and light blue), and tab10's olive and
# cyan went to two controls next to methods of near colour. The order is for colour-blind readers: each colour is
# the one furthest (in CIELAB, under simulated deuteranopia and protanopia, Machado et al. 2009) from those before
# it, so a report's first six methods stay at least 25 apart for them. In tab10's order the third method's green
# was 4.6 from the second's orange under protanopia (7 from red under deuteranopia): the cost scatter, where colour
# alone names the method, could not tell kernel_shap from saliency (paper25).
METHOD_PALETTE = ("#1f77b4", "#ff7f0e", "#800000", "#17becf", "#08306b", "#8c564b", "#d62728", "#004d40",
                  "#e377c2", "#bcbd22", "#9467bd", "#2ca02c")
# Controls: greys (never a method colour), drawn hatched (bars) or hollow (points) besides.
CONTROL_PALETTE = ("#7f7f7f", "#b3b3b3", "#4d4d4d", "#d0d0d0")


def method_colours(names, controls: Iterable[str] | None = None) -> dict[str, tuple]:
    """One colour per method, the same in every figure drawn from the same names: the methods (non-controls) take
    :data:`METHOD_PALETTE` in :func:`method_order` (beyond 12 methods the colours repeat and :func:`method_looks`
    adds a hatch or a marker fill per round of 12), the controls greys (:data:`CONTROL_PALETTE`). A report passes
    one mapping to all its figures, so a method keeps its colour where a figure shows only some of the methods."""
    order = method_order(names, controls)
    flagged = [m for m in order if roles.is_control(m, controls)]
    methods = [m for m in order if m not in set(flagged)]
    colours = {m: matplotlib.colors.to_rgba(METHOD_PALETTE[i % len(METHOD_PALETTE)]) for i, m in enumerate(methods)}
    colours.update({m: matplotlib.colors.to_rgba(CONTROL_PALETTE[i % len(CONTROL_PALETTE)])
                    for i, m in enumerate(flagged)})
    return colours


# Beyond 12 methods the colours repeat: each further round of 12 is told apart by a pattern as well, the same in
# every figure (a method's round comes from its place in the shared colour mapping): a hatch on bars, a half-filled
# marker on points. Controls keep their grey, "////" hatch and hollow points.
METHOD_HATCHES = (None, "....", "xxxx", "\\\\\\\\", "++++", "oo")
METHOD_FILLS = ("full", "top", "right", "bottom", "left", "full")
CONTROL_HATCH = "////"


@dataclass(frozen=True)
class MethodLook:
    """How a method is drawn: ``colour``; ``hatch`` on bars (None: plain); ``fill``, the markers' fillstyle."""

    colour: tuple
    hatch: str | None
    fill: str


def method_looks(colours: dict[str, tuple], controls: Iterable[str] | None = None) -> dict[str, MethodLook]:
    """The look of each method of ``colours`` (:func:`method_colours`, whose order is :func:`method_order`): the
    ``i``-th method (non-control) takes round ``i // 12``'s hatch and fill, so 13 methods or more stay apart
    where their colours repeat; controls their grey, hatched and hollow."""
    looks, index = {}, 0
    for method, colour in colours.items():
        if roles.is_control(method, controls):
            looks[method] = MethodLook(colour, CONTROL_HATCH, "none")
            continue
        turn = (index // len(METHOD_PALETTE)) % len(METHOD_HATCHES)
        looks[method] = MethodLook(colour, METHOD_HATCHES[turn], METHOD_FILLS[turn])
        index += 1
    return looks


def centred_norm(values: np.ndarray) -> Normalize:
    """A colour norm symmetric about zero: ``vmin = -max|v|``, ``vmax = +max|v|`` (white means exactly 0)."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    bound = float(np.abs(finite).max()) if finite.size else 1.0
    bound = bound if bound > 0 else 1.0
    return Normalize(vmin=-bound, vmax=bound)


def label_columns(frame: pd.DataFrame) -> tuple[str, str]:
    """The (dataset, model) columns to show: the display-name columns when the table has them."""
    dataset = "dataset_label" if "dataset_label" in frame.columns else "dataset"
    model = "model_label" if "model_label" in frame.columns else "model"
    return dataset, model


def group_labels(frame: pd.DataFrame) -> pd.Series:
    """``"dataset / model"`` per row (display names where present), plus the variant when rows have one."""
    dataset, model = label_columns(frame)
    labels = frame[dataset].astype(str) + " / " + frame[model].astype(str)
    if "variant" in frame.columns:
        variant = frame["variant"].fillna("").astype(str)
        labels = labels.where(variant == "", labels + "\n" + variant)
    return labels


def direction_arrow(higher_is_better: bool) -> str:
    return "\u2191" if higher_is_better else "\u2193"
