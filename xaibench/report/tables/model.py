"""A format-neutral table: cells with emphasis flags and footnote marks, rendered by ``render.py``.

Layouts (``layouts.py``) decide what goes where and which cell is best; renderers only typeset. Keeping the two
apart makes Markdown, LaTeX and HTML agree on every bold cell and footnote.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

TIE_MARK = "†"
# Without the paired tests (a table made from a summary alone) the mark can only compare intervals, which is no
# test: paired data often separate methods whose CIs overlap.
NOTE_OVERLAP = (f"{TIE_MARK} its 95% CI overlaps the best's CI in this column (an overlap, not a significance test; "
                "xaibench report marks significance with paired tests).")


def significance_note(alpha: float) -> str:
    """The ``†`` footnote of a table whose marks come from the paired tests at ``alpha``."""
    return (f"{TIE_MARK} not significantly different from the best in this column (unmarked cells differ "
            f"significantly from it): two-sided paired Wilcoxon "
            f"signed-rank test over the samples both methods scored, Holm-corrected over the column's comparisons "
            f"with its best (k - 1 tests for k rows, controls included), alpha = {alpha:g} (or too few shared "
            f"samples to test).")


def separation_note(alpha: float) -> str:
    """The note of a table whose non-best cells were all tested and all separated from their column's best: no
    cell carries ``†``, so the ``†`` footnote would explain a mark that is not there; this says what was tested."""
    return ("No cell is marked: every non-bold cell differs significantly from the best in its column (two-sided "
            "paired Wilcoxon signed-rank test over the samples both methods scored, Holm-corrected over the "
            f"column's comparisons with its best (k - 1 tests for k rows, controls included), alpha = {alpha:g}).")


@dataclass(frozen=True)
class Cell:
    """One table cell. ``best``: bold; ``tie``: not separated from the best (``†``); ``marks``: footnote letters."""

    text: str
    best: bool = False
    tie: bool = False
    marks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Column:
    """A column header; ``arrow`` is "↑" (higher is better), "↓" or ""; ``marks``: footnote letters."""

    name: str
    arrow: str = ""
    marks: tuple[str, ...] = ()
    text: bool = False  # words, not numbers: left-aligned, and wrapped in LaTeX (a long reason shrank a whole table)


@dataclass(frozen=True)
class Table:
    """Rows of cells under columns, a caption, footnotes and warnings (shown in every format)."""

    key: str  # a file-name-safe id, e.g. "metrics-mlp-digits"
    caption: str
    corner: str  # header of the row-label column
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, tuple[Cell, ...]], ...]
    notes: tuple[str, ...] = field(default=())  # footnotes, each starting with its mark ("a ...")
    warnings: tuple[str, ...] = field(default=())  # shown above the notes, emphasised


def number(value: float, scale: float | None = None) -> str:
    """Three decimals in the usual range, scientific notation for tiny or huge values, "nan" for NaN.

    ``scale`` (default: the value itself) picks the notation, so numbers shown together share one.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    scale = abs(value) if scale is None else scale
    if scale != 0 and (scale < 1e-3 or scale >= 1e4):
        return f"{value:.2e}"
    text = f"{value:.3f}"
    return text[1:] if text == "-0.000" else text  # a negative zero, or a tiny negative rounded away: no sign


def p_text(value: float) -> str:
    """A p-value with four decimals, ``<1e-4`` below that, ``-`` where no test was run (NaN)."""
    if value is None or not math.isfinite(value):
        return "-"
    return "<1e-4" if value < 1e-4 else f"{value:.4f}"


def mean_ci(mean: float, low: float, high: float) -> str:
    """``0.970 [0.966, 0.974]`` in one notation; the mean alone when the CI is undefined."""
    if math.isnan(low) or math.isnan(high):
        return number(mean)
    scale = max(abs(mean), abs(low), abs(high))
    return f"{number(mean, scale)} [{number(low, scale)}, {number(high, scale)}]"
