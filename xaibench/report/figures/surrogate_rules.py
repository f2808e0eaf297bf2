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
LOW_FIDELITY = 0.9


def name_features(rules: str, feature_names: Sequence[str]) -> str:
    """Replace the ``x<i>`` feature names of stored rules with ``feature_names[i]``."""
    if not feature_names:
        return rules
    return _FEATURE.sub(lambda m: feature_names[int(m.group(1))] if int(m.group(1)) < len(feature_names) else m.group(0),
                        rules)


def surrogate_rules(rules: str, fidelity: float, holdout_fidelity: float | None = None, *,
                    feature_names: Sequence[str] = (), class_names: Sequence[str] = (), title: str = "",
                    width: float = ONE_COLUMN_IN) -> Figure:
    """A text figure of the rules (``sklearn.tree.export_text`` format) under a title with the fidelity."""
    text = name_features(rules.rstrip(), feature_names)
    if class_names:
        text = re.sub(r"class: (\d+)", lambda m: f"class: {class_names[int(m.group(1))]}", text)
    lines = text.splitlines()
    longest = max((len(line) for line in lines), default=10)
    size = min(6.5, 72 * (width - 0.1) / (0.6 * longest))  # monospace: a glyph is ~0.6 em wide
    heading = f"fidelity {fidelity:.1%}"
    if holdout_fidelity is not None:
        heading += f", held out {holdout_fidelity:.1%}"
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
