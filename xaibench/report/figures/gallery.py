"""Attribution gallery: the same samples side by side, the input on top and one row per method below.

Signed maps use a diverging colour map centred at zero (red: evidence for the explained class, blue: against),
each map scaled to its own largest magnitude. Images: the map summed over channels, with a ViT's patch grid;
tabular: bars of the most attributed features (``tabular_feature_order``: scale-free, every method weighs
the same), length and colour both ``a / max|a|`` of the sample's map (its ``max |a|`` above the panel); time
series: the series as a line over its attribution as a heat strip; text: tokens coloured by their attribution
(the dataset's token strings, trailing padding left out, long word pieces shortened with an ellipsis).
"""
from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from xaibench.report.figures import _panels
from xaibench.report.figures._style import ONE_COLUMN_IN, SIGNED_CMAP, TWO_COLUMN_IN, paper_figure, paper_style

# Tabular galleries show this many features, those ``tabular_feature_order`` ranks first (the report's gallery
# caption says so: breast_cancer's 30 features were cut to 10 without a word).
TABULAR_FEATURES = 10
# The rule in words, for the report's caption (figure_set) and docs/figures.md.
TABULAR_FEATURE_RULE = ("the largest mean |a| / max |a| (each sample's map scaled to its own largest magnitude, so "
                        "every method weighs the same) over the methods and samples shown")


def attribution_gallery(
    inputs: np.ndarray,
    attributions: Mapping[str, np.ndarray],
    *,
    modality: str,
    sample_ids: Sequence[str] | None = None,
    targets: Sequence[int] | None = None,
    feature_names: Sequence[str] = (),
    tokens: Sequence[Sequence[str]] | None = None,
    class_names: Sequence[str] = (),
    patch_size: int | None = None,
    max_features: int = TABULAR_FEATURES,
    title: str = "",
    width: float | None = None,
    labels: Sequence[int] | None = None,
    target_mode: str = "",
) -> Figure:
    """One column per sample; row 0 shows the inputs, then one row per method (in the mapping's order).

    Args:
        inputs: ``(N, ...)`` the explained inputs (image ``(N, C, H, W)``, tabular ``(N, F)``, time series
            ``(N, C, T)``, text token ids ``(N, L)``).
        attributions: method -> attributions shaped like ``inputs`` (text: ``(N, L)``).
        modality: ``image`` | ``tabular`` | ``time_series`` | ``text``.
        sample_ids, targets: ``(N,)`` column headings; ``targets`` are the explained classes.
        feature_names: tabular feature names (default ``x0, x1, ...``).
        tokens: text only: the token strings per sample (``Vocabulary.decode``; default ``#<id>``); a sequence
            shorter than ``L`` (padding left out) shows its first tokens with their attributions.
        class_names: the names of ``targets``' classes in the headings (default: the indices).
        patch_size: draw a ViT's patch grid over image maps.
        max_features: tabular: show this many features, the first of ``tabular_feature_order``.
        width: inches (default: two columns for 3+ samples, else one column).
        labels: ``(N,)`` the samples' labels, shown next to a predicted target (``pred 3 / label 5``).
        target_mode: what ``targets`` are (the sweep's ``target``): ``predicted`` (headings ``pred k``, with the
            label where given) | ``label`` (``label k``) | empty: not known (``class k``). The colour bar names the
            explained class.
    """
    inputs = np.asarray(inputs)
    n, methods = len(inputs), list(attributions)
    if modality == "text":
        tokens = [[_shortened(t) for t in sample] for sample in tokens] if tokens is not None else [
            [f"#{int(t)}" for t in sample] for sample in inputs]
    width = width or (TWO_COLUMN_IN if n >= 3 or modality == "tabular" and n >= 2 else ONE_COLUMN_IN)
    with paper_style():
        figure, axes = paper_figure(1 + len(methods), n, squeeze=False,
                                    figsize=(width, _height(modality, inputs, width, len(methods), max_features,
                                                            tokens)))
        draw = {"image": _image_row, "tabular": _tabular_rows, "time_series": _series_row, "text": _text_row}
        if modality not in draw:
            raise ValueError(f"no gallery layout for modality {modality!r}")
        if modality == "tabular":
            _tabular_rows(axes, inputs, attributions, feature_names, max_features)
        else:
            for row, method in enumerate([None, *methods]):
                values = None if method is None else np.asarray(attributions[method])
                draw[modality](axes[row], inputs, values, tokens=tokens, patch_size=patch_size)
        _label(axes, methods, sample_ids, targets, modality, class_names, labels, target_mode)
        title = wrapped_title(title, width)
        title_lines = title.count("\n")  # lines beyond the first: the figure grows by them, the panels keep their size
        figure.set_figheight(figure.get_figheight() + TITLE_LINE_IN * title_lines)
        height = figure.get_figheight()
        extra = max(ax.get_title().count("\n") for ax in axes[0]) - 1  # a pred/label pair on lines of its own
        top = 1 - ((0.5 if title else 0.32) + HEADING_LINE_IN * max(extra, 0) + TITLE_LINE_IN * title_lines) / height
        figure.subplots_adjust(left=0.2 if modality == "tabular" else 0.12, right=0.99, top=top,
                               bottom=(0.62 if modality == "tabular" else 0.42) / height, hspace=0.45 if modality == "tabular" else 0.12,
                               wspace=0.1)
        _colour_bar(figure, 0.12 / height, EXPLAINED.get(target_mode, ""), bars=modality == "tabular")
        if title:
            figure.suptitle(title, fontsize=TITLE_PT, y=1 - 0.08 / height, va="top")
    return figure


def _height(modality: str, inputs: np.ndarray, width: float, n_methods: int, max_features: int,
            tokens: Sequence[Sequence[str]] | None) -> float:
    n = len(inputs)
    if modality == "image":
        aspect = inputs.shape[-2] / inputs.shape[-1]
        row = 0.92 * (width - 0.8) / n * aspect
    elif modality == "tabular":
        row = 0.13 * min(max_features, inputs.shape[1]) + 0.35
    elif modality == "text":
        length = max(len(sample) for sample in tokens)
        row = 0.22 * int(np.ceil(max(length, 1) / _tokens_per_line(width, n, tokens))) + 0.1
    else:
        row = 0.62
    return (1 + n_methods) * row + 0.8


def _tokens_per_line(width: float, n: int, tokens: Sequence[Sequence[str]]) -> int:
    """Token boxes per line of one sample's panel: a slot per box wide enough for the longest token shown (6 pt
    monospace: ~0.05 in a character, plus the box's padding and a gap)."""
    longest = max((len(t) for sample in tokens for t in sample), default=1)
    return max(3, int((width - 0.8) / n / max(0.3, 0.055 * longest + 0.1)))


def _image_row(axes, inputs, values, *, patch_size, **_):
    for j, ax in enumerate(axes):
        if values is None:
            _panels.draw_image(ax, inputs[j])
        else:
            _panels.draw_image_map(ax, values[j], patch_size)


def _series_row(axes, inputs, values, **_):
    for j, ax in enumerate(axes):
        _panels.draw_series(ax, inputs[j], None if values is None else values[j])


def _text_row(axes, inputs, values, *, tokens, **_):
    width = axes[0].figure.get_figwidth()
    for j, ax in enumerate(axes):
        relevance = None if values is None else np.asarray(values[j]).reshape(-1)[:len(tokens[j])]
        per_line = _tokens_per_line(width, len(axes), tokens)
        lines = int(np.ceil(max(len(sample) for sample in tokens) / per_line))
        _panels.draw_tokens(ax, tokens[j], relevance, per_line=per_line, lines=lines)


def _shortened(token: str, limit: int = 7) -> str:
    """A token that fits its box: longer ones keep their first ``limit - 1`` characters and an ellipsis."""
    return token if len(token) <= limit else token[:limit - 1] + "\u2026"


def tabular_feature_order(attributions: Mapping[str, np.ndarray], max_features: int = TABULAR_FEATURES
                          ) -> np.ndarray:
    """The ``max_features`` feature indices a tabular gallery shows, most attributed first: by the mean over methods
    and samples of ``|a| / max |a|`` of each sample's map (an all-zero map counts 0; ties keep feature order).

    Scale-free: the raw mean |a| let the method with the largest values pick the features alone (integrated
    gradients' ~10-20 against the random control's ~1), so the bars of the other methods were often of features
    they hardly used. Now every method weighs the same, as the bars (each ``a / max |a|``) show them.

    Args:
        attributions: method -> ``(N, F)`` attributions.
    Returns:
        ``(min(max_features, F),)`` int indices into the features.
    """
    shares = []
    for values in attributions.values():
        magnitude = np.abs(np.asarray(values, dtype=np.float64))
        peak = magnitude.max(axis=1, keepdims=True)
        shares.append(np.divide(magnitude, peak, out=np.zeros_like(magnitude), where=peak > 0).mean(axis=0))
    return np.argsort(-np.mean(shares, axis=0), kind="stable")[:max_features]


def _tabular_rows(axes, inputs, attributions, feature_names, max_features):
    names = list(feature_names) or [f"x{i}" for i in range(inputs.shape[1])]
    order = tabular_feature_order(attributions, max_features)
    for row, method in enumerate([None, *attributions]):
        for j, ax in enumerate(axes[row]):
            values = inputs[j] if method is None else np.asarray(attributions[method])[j]
            _panels.draw_tabular(ax, values, order, names, signed=method is not None, show_names=j == 0)


def short_ids(sample_ids: Sequence[str]) -> list[str]:
    """Sample ids without the prefix they all share up to a ``-`` (``digits-00010`` -> ``00010``)."""
    ids = [str(s) for s in sample_ids]
    prefix = os.path.commonprefix(ids)
    prefix = prefix[: prefix.rfind("-") + 1] if "-" in prefix else ""
    return [s[len(prefix):] for s in ids]


TITLE_PT = 8.5  # the gallery title's font size
TITLE_LINE_IN = 1.45 * TITLE_PT / 72  # one more line of the title (matplotlib spaces lines 1.2 em, plus leading)
TITLE_CHAR_EM = 0.62  # a DejaVu Sans character's mean width, in em (wide letters and digits included)


def wrapped_title(title: str, width: float) -> str:
    """``title`` broken at spaces into lines that fit a figure ``width`` inches wide at ``TITLE_PT``: a long title
    (a model variant's parameters) widened the saved figure beyond its panels (``bbox_inches="tight"``), so in a
    paper column the gallery itself shrank (review24)."""
    chars = max(20, int(0.96 * width * 72 / (TITLE_PT * TITLE_CHAR_EM)))
    return textwrap.fill(title, chars, break_long_words=False, break_on_hyphens=False) if title else title


HEADING_LINE_IN = 0.14  # a 7 pt heading line: a three-line heading lowers the grid by it (it ran into the title)
HEADING_PREFIX = {"predicted": "pred", "label": "label"}  # what a target is, by the sweep's target mode
EXPLAINED = {"predicted": "the predicted class", "label": "the labelled class"}  # the colour bar's wording


def class_heading(target: int, class_names: Sequence[str] = (), label: int | None = None,
                  target_mode: str = "") -> str:
    """A column's class line: ``pred 3 / label 5`` (the explained class is the prediction; the label beside it),
    ``label 5`` (the label was explained), or ``class 3`` (not known which). The report's galleries said ``class
    3`` whatever ``target`` the sweep explained, so a reader could not tell a prediction from a label (nor see a
    misclassified sample). A long pair is split over two lines."""
    def name(index: int) -> str:
        return str(class_names[int(index)]) if int(index) < len(class_names) else str(int(index))

    prefix = HEADING_PREFIX.get(target_mode)
    if prefix is None:
        text = name(target)
        return text if text.lower().startswith("class") else f"class {text}"  # wine: class_0
    heading = f"{prefix} {name(target)}"
    if target_mode == "predicted" and label is not None:
        other = f"label {name(label)}"
        heading += (" / " if len(heading) + len(other) <= 22 else "\n") + other
    return heading


def _label(axes, methods, sample_ids, targets, modality, class_names: Sequence[str] = (), labels=None,
           target_mode: str = "") -> None:
    names = short_ids(sample_ids) if sample_ids is not None else [str(j) for j in range(axes.shape[1])]
    for j, ax in enumerate(axes[0]):
        heading = f"sample {names[j]}"
        if targets is not None:
            label = None if labels is None else int(labels[j])
            heading += "\n" + class_heading(int(targets[j]), class_names, label, target_mode)
        ax.set_title(heading, fontsize=7)
    for row, name in enumerate(["input", *methods]):
        method, _, params = name.partition(" (")  # the method's words spaced; parameter names as written
        pretty = method.replace("_", " ") + (f" ({params}" if params else "")
        if modality == "tabular":
            axes[row, 0].annotate(pretty, xy=(0, 1), xycoords="axes fraction", xytext=(-2, 3),
                                  textcoords="offset points", ha="right", va="bottom", fontsize=7.5, fontweight="bold")
        else:
            axes[row, 0].set_ylabel(pretty.replace(" ", "\n", 1) if len(pretty) > 12 else pretty, rotation=0,
                                    ha="right", va="center", fontsize=7.5, labelpad=3)
            if modality == "text":
                axes[row, 0].axis("on")
                axes[row, 0].set_xticks([])
                axes[row, 0].set_yticks([])
                for spine in axes[row, 0].spines.values():
                    spine.set_visible(False)


def _colour_bar(figure, bottom: float, explained: str = "", *, bars: bool = False) -> None:
    """One shared key below the grid: every map is scaled to its own largest magnitude; ``explained`` names the
    class the maps explain (``the predicted class``); ``bars``: tabular, whose bar lengths are on the same scale
    as the colour (``a / max |a|``, each panel giving its max |a|)."""
    height = 0.07 / figure.get_figheight()
    bar = figure.colorbar(ScalarMappable(Normalize(-1, 1), SIGNED_CMAP), cax=figure.add_axes((0.35, bottom, 0.3, height)),
                          orientation="horizontal")
    bar.set_ticks([-1, 0, 1], labels=["\u2212max |a|", "0", "+max |a|"])
    what = "attribution a" if bars else "attribution"
    what += f" for {explained}" if explained else ""
    scale = ("; bar length and colour: a / max |a| of its own map (given above each panel)" if bars else
             ", each map scaled to its own max |a|")
    bar.set_label(what + scale, fontsize=6.5)
    bar.ax.tick_params(labelsize=6, length=2)
