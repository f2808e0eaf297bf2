"""The decision-tree surrogate's rules as text, with its fidelity to the model (Craven & Shavlik, 1996).

Fidelity is the share of the surrogate's reference sample on which the tree predicts the model's class; the
held-out fidelity is the same on a second sample drawn alike. A tree with low fidelity explains little of the
model: the figure says so in its title.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from matplotlib.figure import Figure

from xaibench.report.figures._style import ONE_COLUMN_IN, paper_canvas, paper_style

_FEATURE = re.compile(r"\bx(\d+)\b")
_THRESHOLD = re.compile(r"\bx(\d+) (<=|> ) +(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)")
LOW_FIDELITY = 0.9


def name_features(rules: str, feature_names: Sequence[str]) -> str:
    """Replace the ``x<i>`` feature names of stored rules with ``feature_names[i]``."""
    if not feature_names:
        return rules
    return _FEATURE.sub(lambda m: feature_names[int(m.group(1))] if int(m.group(1)) < len(feature_names) else m.group(0),
                        rules)


def in_data_units(rules: str, feature_scaling: Sequence[tuple[float, float]]) -> str:
    """Thresholds of stored rules (on the model's standardised inputs) in the data's own units.

    The tree splits the inputs the model saw; where those are z-scores, ``x3 <= -0.438`` would read as
    "petal length (cm) <= -0.438". With ``feature_scaling`` (``(mean, std)`` per feature) the threshold becomes
    ``-0.438 * std + mean``, printed with 4 significant digits. Rules keep their ``x<i>`` names.
    """
    if not feature_scaling:
        return rules

    def raw(match: re.Match) -> str:
        index = int(match.group(1))
        if index >= len(feature_scaling):
            return match.group(0)
        mean, std = feature_scaling[index]
        return f"x{index} {match.group(2)} {float(match.group(3)) * std + mean:.4g}"

    return _THRESHOLD.sub(raw, rules)


def surrogate_rules(rules: str, fidelity: float, holdout_fidelity: float | None = None, *,
                    feature_names: Sequence[str] = (), class_names: Sequence[str] = (), title: str = "",
                    width: float = ONE_COLUMN_IN, feature_scaling: Sequence[tuple[float, float]] = ()) -> Figure:
    """A text figure of the rules (``sklearn.tree.export_text`` format) under a title with the fidelity.

    ``feature_scaling``: the dataset's ``(mean, std)`` per feature when the model saw standardised inputs; the
    thresholds are then shown in the data's units (:func:`in_data_units`), and the heading says which units.
    """
    text = name_features(in_data_units(rules.rstrip(), feature_scaling), feature_names)
    if class_names:
        text = re.sub(r"class: (\d+)", lambda m: f"class: {class_names[int(m.group(1))]}", text)
    lines = text.splitlines()
    longest = max((len(line) for line in lines), default=10)
    size = min(6.5, 72 * (width - 0.1) / (0.6 * longest))  # monospace: a glyph is ~0.6 em wide
    heading = f"fidelity {fidelity:.1%}"
    if holdout_fidelity is not None:
        heading += f", held out {holdout_fidelity:.1%}"
    if feature_scaling:
        heading += "; thresholds in the data's units"
    if min(fidelity, holdout_fidelity if holdout_fidelity is not None else fidelity) < LOW_FIDELITY:
        heading += "\n(low fidelity: the rules describe the model only roughly)"
    header = f"{title}\n{heading}" if title else heading
    header_in = 0.08 + 0.13 * (header.count("\n") + 1)
    with paper_style():
        figure = paper_canvas((width, header_in + 0.1 + len(lines) * size * 1.25 / 72))
        figure.text(0.01, 1 - 0.04 / figure.get_figheight(), header, ha="left", va="top", fontsize=7.5,
                    fontweight="bold")
        figure.text(0.01, 1 - header_in / figure.get_figheight(), text, ha="left", va="top", family="monospace",
                    fontsize=size, linespacing=1.2)
    return figure
