"""Drawing one input or one attribution map into one axes, per modality (used by the gallery and counterfactuals).

Signed maps use :data:`SIGNED_CMAP` with a norm centred at zero, scaled per map to its largest magnitude (maps
of different methods have incomparable units; their sign and relative layout are what a reader compares).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import Normalize

from xaibench.report.figures._style import SIGNED_CMAP, centred_norm


def image_for_display(x: np.ndarray, value_range: tuple[float, float] | None = None) -> tuple[np.ndarray, str | None]:
    """``(C, H, W)`` -> an ``(H, W)`` grey or ``(H, W, 3)`` RGB array in [0, 1], and the colour map to use.

    ``value_range`` maps to [0, 1] (default: the image's own min and max); pass one range for images that must
    be compared (an input and its counterfactual)."""
    x = np.asarray(x, dtype=np.float64)
    picture = x[0] if x.shape[0] == 1 else np.moveaxis(x[:3], 0, -1)
    low, high = value_range if value_range is not None else (np.nanmin(picture), np.nanmax(picture))
    picture = np.clip((picture - low) / (high - low), 0, 1) if high > low else np.zeros_like(picture)
    return picture, ("gray_r" if picture.ndim == 2 else None)


def draw_image(ax: Axes, x: np.ndarray, value_range: tuple[float, float] | None = None) -> None:
    picture, cmap = image_for_display(x, value_range)
    ax.imshow(picture, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    _no_ticks(ax)


def draw_image_map(ax: Axes, attribution: np.ndarray, patch_size: int | None = None):
    """Signed map ``(C, H, W)`` summed over channels; a ViT's patch grid is drawn when ``patch_size`` is given."""
    heat = np.asarray(attribution, dtype=np.float64).sum(axis=0)
    image = ax.imshow(heat, cmap=SIGNED_CMAP, norm=centred_norm(heat), interpolation="nearest")
    if patch_size:
        height, width = heat.shape
        for edge in np.arange(patch_size, width, patch_size) - 0.5:
            ax.axvline(edge, color="0.55", linewidth=0.3)
        for edge in np.arange(patch_size, height, patch_size) - 0.5:
            ax.axhline(edge, color="0.55", linewidth=0.3)
    _no_ticks(ax)
    return image


def draw_tabular(ax: Axes, values: np.ndarray, order: np.ndarray, names: Sequence[str], *, signed: bool,
                 show_names: bool) -> Normalize | None:
    """Horizontal bars of the features in ``order`` (top first). Signed bars (an attribution) are the map divided
    by its own largest magnitude over all features, ``a / max|a|`` in [-1, 1], coloured on the same scale, so that
    a bar's length and its colour say the same thing (the bars were raw lengths on each panel's own axis while the
    colour was scaled per map, and the images beside them are scaled per map too); the panel's corner gives the
    map's ``max |a|`` so the magnitude is not lost. Unsigned bars (the input) are the raw values, grey."""
    shown = np.asarray(values, dtype=np.float64)[order]
    positions = np.arange(len(order))
    if signed:
        bound = centred_norm(values).vmax
        scaled = shown / bound
        norm = Normalize(-1.0, 1.0)
        colours = colormaps[SIGNED_CMAP](norm(scaled))
        ax.barh(positions, scaled, color=colours, edgecolor="0.3", linewidth=0.3, height=0.75)
        ax.set_xlim(-1.08, 1.08)
        ax.set_xticks([-1, 0, 1])
        finite = np.abs(np.asarray(values, dtype=np.float64))
        finite = finite[np.isfinite(finite)]
        peak = float(finite.max()) if finite.size else 0.0
        ax.text(1.0, 1.02, f"max |a| = {peak:.3g}", transform=ax.transAxes, ha="right", va="bottom",
                fontsize=6, color="0.25")
    else:
        norm = None
        ax.barh(positions, shown, color="0.65", height=0.75)
    ax.axvline(0, color="0.2", linewidth=0.5)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.set_yticks(positions, [names[i] for i in order] if show_names else [""] * len(order))
    ax.tick_params(axis="x", labelsize=6, length=2)
    ax.tick_params(axis="y", length=0)
    return norm


def draw_series(ax: Axes, x: np.ndarray, attribution: np.ndarray | None = None):
    """Channels of ``(C, T)`` as lines; the attribution summed over channels as a heat strip behind them."""
    x = np.asarray(x, dtype=np.float64)
    steps = np.arange(x.shape[-1])
    image = None
    low, high = float(np.nanmin(x)), float(np.nanmax(x))
    pad = 0.08 * (high - low or 1.0)
    if attribution is not None:
        heat = np.asarray(attribution, dtype=np.float64).reshape(-1, x.shape[-1]).sum(axis=0)[None, :]
        image = ax.imshow(heat, cmap=SIGNED_CMAP, norm=centred_norm(heat), aspect="auto", interpolation="nearest",
                          extent=(-0.5, x.shape[-1] - 0.5, low - pad, high + pad), alpha=0.9)
    for channel in x:
        ax.plot(steps, channel, color="0.1", linewidth=0.7)
    ax.set_xlim(-0.5, x.shape[-1] - 0.5)
    ax.set_ylim(low - pad, high + pad)
    _no_ticks(ax)
    return image


def draw_tokens(ax: Axes, tokens: Sequence[str], relevance: np.ndarray | None = None, *,
                per_line: int = 8, lines: int | None = None) -> Normalize | None:
    """Tokens as text boxes in reading order, ``per_line`` per line, coloured by signed relevance if given.

    ``lines``: the panel's height in lines (default: as many as the tokens fill), so that panels of sequences of
    different lengths side by side put their lines at the same heights.
    """
    norm = centred_norm(relevance) if relevance is not None else None
    cmap = colormaps[SIGNED_CMAP]
    lines = max(lines or 0, int(np.ceil(len(tokens) / per_line)))
    for i, token in enumerate(tokens):
        row, column = divmod(i, per_line)
        face = cmap(norm(relevance[i])) if norm is not None else (1, 1, 1, 1)
        ink = "white" if _luminance(face) < 0.45 else "black"
        ax.text((column + 0.5) / per_line, 1 - (row + 0.5) / max(lines, 1), token, ha="center", va="center",
                fontsize=6, family="monospace", color=ink,
                bbox={"boxstyle": "square,pad=0.15", "facecolor": face, "edgecolor": "0.7", "linewidth": 0.3})
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    return norm


def _luminance(rgba) -> float:
    red, green, blue = rgba[:3]
    return 0.299 * red + 0.587 * green + 0.114 * blue


def _no_ticks(ax: Axes) -> None:
    """No ticks, and a thin closed frame: the paper style drops the top and right spines, which left an L-shaped
    bracket on every map, and a white-background input needs its edge drawn."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_linewidth(0.4)
        spine.set_edgecolor("0.6")
