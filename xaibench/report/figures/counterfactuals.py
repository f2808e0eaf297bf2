"""Counterfactual examples: each input beside its counterfactual, the changed features marked.

Tabular: per sample, each shown feature's input value (grey dot) and counterfactual value (red triangle) joined
by an arrow (one per counterfactual where a method finds several, as DiCE); changed features (``|x - x_cf| > tol``)
are listed first and their names marked with ``*``.
Images: input, counterfactual and their signed difference (centred colour map). Time series: input and
counterfactual lines, changed time steps shaded.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from xaibench.report.figures import _panels
from xaibench.report.figures._style import ONE_COLUMN_IN, TWO_COLUMN_IN, paper_figure, paper_style
from xaibench.report.figures.gallery import short_ids

CF_COLOUR = "#c0392b"


def changed_features(x: np.ndarray, counterfactual: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """Boolean mask, shaped like ``x``, of the entries the counterfactual changed by more than ``tol``."""
    return np.abs(np.asarray(counterfactual, float) - np.asarray(x, float)) > tol


def counterfactual_examples(
    inputs: np.ndarray, counterfactuals: np.ndarray, *, modality: str, feature_names: Sequence[str] = (),
    sample_ids: Sequence[str] | None = None, valid: Sequence[float] | None = None, max_features: int = 8,
    tol: float = 1e-6, title: str = "",
) -> Figure:
    """One panel (tabular, time series) or one row of three panels (image) per sample.

    Args:
        inputs, counterfactuals: ``(N, ...)`` the same shape; tabular counterfactuals may be ``(N, K, F)``, K
            per sample (DiCE's diverse set), all drawn in the sample's panel.
        valid: per sample, 1.0 if the counterfactual flips the prediction (the method's ``valid`` extra).
    """
    inputs, counterfactuals = np.asarray(inputs, float), np.asarray(counterfactuals, float)
    headings = [f"sample {s}" for s in (short_ids(sample_ids) if sample_ids is not None else range(len(inputs)))]
    if valid is not None:
        headings = [h + ("" if v >= 0.5 else " (not valid)") for h, v in zip(headings, valid)]
    with paper_style():
        if modality == "image":
            figure = _images(inputs, counterfactuals, headings)
        elif modality == "tabular":
            figure = _tabular(inputs, counterfactuals, headings, feature_names, max_features, tol)
        elif modality == "time_series":
            figure = _series(inputs, counterfactuals, headings, tol)
        else:
            raise ValueError(f"no counterfactual layout for modality {modality!r}")
        top = 1.0
        if modality == "time_series":
            top -= 0.22 / figure.get_figheight()
        if modality == "tabular":
            handles = [Line2D([], [], linestyle="", marker="o", color="0.35", markersize=3.5),
                       Line2D([], [], linestyle="", marker="^", color=CF_COLOUR, markersize=4)]
            several = counterfactuals.ndim == 3 and counterfactuals.shape[1] > 1  # (N, K, F): K per sample
            label = (f"{counterfactuals.shape[1]} counterfactuals per sample (* = changed by any)" if several
                     else "counterfactual (* = changed)")
            figure.legend(handles, ["input", label], loc="upper center", ncol=2,
                          frameon=False, bbox_to_anchor=(0.5, 1.0))
            top -= 0.22 / figure.get_figheight()
        if title:
            figure.suptitle(title, fontsize=8.5, y=top, va="top")
            top -= 0.2 / figure.get_figheight()
        if modality == "image":  # a fixed grid of equal panels: margins set here, not by tight_layout
            figure.subplots_adjust(left=0.2, right=0.99, bottom=0.02, top=top - 0.28 / figure.get_figheight())
        else:
            figure.tight_layout(pad=0.3, rect=(0, 0, 1, top))
    return figure


def _tabular(inputs, counterfactuals, headings, feature_names, max_features, tol) -> Figure:
    names = list(feature_names) or [f"x{i}" for i in range(inputs.shape[1])]
    n = len(inputs)
    columns = min(n, 3)
    rows = int(np.ceil(n / columns))
    shown = min(max_features, inputs.shape[1])
    figure, axes = paper_figure(rows, columns, squeeze=False,
                                figsize=(TWO_COLUMN_IN if columns > 1 else ONE_COLUMN_IN, rows * (0.35 + 0.17 * shown) + 0.3))
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            ax.axis("off")
            continue
        found = np.atleast_2d(counterfactuals[i])  # (K, F): K > 1 for diverse counterfactuals (DiCE)
        changed = changed_features(inputs[i][None, :], found, tol).any(axis=0)  # by any of them
        size = np.abs(found - inputs[i]).max(axis=0)
        order = np.lexsort((-size, ~changed))[:shown]  # changed first, then by size of the change
        y = np.arange(len(order))
        for cf in found:
            for k, feature in enumerate(order):
                ax.annotate("", xy=(cf[feature], k), xytext=(inputs[i, feature], k),
                            arrowprops={"arrowstyle": "->", "color": "0.5", "linewidth": 0.6})
        ax.scatter(inputs[i, order], y, color="0.35", s=9, zorder=3, label="input")
        for cf in found:
            ax.scatter(cf[order], y, color=CF_COLOUR, marker="^", s=11, zorder=3, label="counterfactual")
        labels = [f"* {names[f]}" if changed[f] else names[f] for f in order]
        ax.set_yticks(y, labels)
        for tick, feature in zip(ax.get_yticklabels(), order):
            tick.set_fontweight("bold" if changed[feature] else "normal")
        ax.set_ylim(len(order) - 0.5, -0.5)
        left_out = "" if len(order) == changed.size else f"\n({len(order)} shown, most changed first)"  # review24
        ax.set_title(f"{headings[i]}: {int(changed.sum())} of {changed.size} features changed{left_out}", fontsize=7)
        ax.tick_params(axis="y", length=0)
        ax.grid(True, axis="x", linewidth=0.3, color="0.85")
    return figure


def _images(inputs, counterfactuals, headings) -> Figure:
    """Input and counterfactual on one grey scale (so only real changes show), and their signed difference."""
    n = len(inputs)
    figure, axes = paper_figure(n, 3, squeeze=False, figsize=(ONE_COLUMN_IN, 0.95 * n + 0.45),
                                gridspec_kw={"hspace": 0.12, "wspace": 0.06})
    for i in range(n):
        both = np.concatenate([inputs[i].ravel(), counterfactuals[i].ravel()])
        scale = (float(both.min()), float(both.max()))
        _panels.draw_image(axes[i, 0], inputs[i], scale)
        _panels.draw_image(axes[i, 1], counterfactuals[i], scale)
        _panels.draw_image_map(axes[i, 2], counterfactuals[i] - inputs[i])
        axes[i, 0].set_ylabel(headings[i].removeprefix("sample ").replace(" (", "\n("), fontsize=6.5,
                              rotation=0, ha="right", va="center")
    for ax, name in zip(axes[0], ("input", "counterfactual", "x_cf \u2212 x")):
        ax.set_title(name, fontsize=7)
    return figure


def _series(inputs, counterfactuals, headings, tol) -> Figure:
    n = len(inputs)
    figure, axes = paper_figure(n, 1, squeeze=False, figsize=(ONE_COLUMN_IN, 0.9 * n + 0.5))
    for i, ax in enumerate(axes[:, 0]):
        steps = np.arange(inputs.shape[-1])
        changed = changed_features(inputs[i], counterfactuals[i], tol).reshape(-1, inputs.shape[-1]).any(axis=0)
        for t in np.flatnonzero(changed):
            ax.axvspan(t - 0.5, t + 0.5, color=CF_COLOUR, alpha=0.12, linewidth=0)
        for channel in range(inputs.shape[1]):
            ax.plot(steps, inputs[i, channel], color="0.2", linewidth=0.7, label="input" if channel == 0 else None)
            ax.plot(steps, counterfactuals[i, channel], color=CF_COLOUR, linewidth=0.7, linestyle="--",
                    label="counterfactual" if channel == 0 else None)
        ax.set_title(f"{headings[i]}: {int(changed.sum())} time steps changed", fontsize=7)
    figure.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper center", ncol=2, frameon=False,
                  bbox_to_anchor=(0.5, 1.0))
    return figure
