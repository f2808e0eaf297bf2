"""Typeset a :class:`Table` as Markdown, LaTeX (booktabs) or HTML. No layout decisions are made here."""
from __future__ import annotations

import html
import re
from dataclasses import replace

from xaibench.report.tables.model import TIE_MARK, Cell, Column, Table

LATEX_PREAMBLE = ("% xaibench tables: \\usepackage{booktabs} (and graphicx, so wide tables shrink to the text width) "
                  "in the preamble; \\input{} this file. It places waiting floats (\\clearpage) every 10 tables; "
                  "\\newcommand{\\xbflush}{} before the \\input turns that off. In a two-column paper, "
                  "\\newcommand{\\xbtable}{table*} before the \\input sets each table across both columns "
                  "(shrunk into one, a table of three metrics is set in 5-6 pt type).")
# The float each table is set in: ``table`` unless the document defines \xbtable first (``table*`` in a two-column
# paper, where a column's width shrank a three-metric table's 9 pt type to about 5 pt; paper25).
_LATEX_FLOAT = r"\providecommand{\xbtable}{table}"
# Shrinks a tabular wider than the text to \linewidth (never enlarges one) where graphicx is loaded; without
# graphicx the tabular is set at its natural width, so booktabs alone still compiles.
_LATEX_FIT = (r"\providecommand{\xbfit}[1]{\ifdefined\resizebox\resizebox{\ifdim\width>\linewidth\linewidth"
              r"\else\width\fi}{!}{#1}\else#1\fi}")
_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
# LaTeX holds at most 18 unplaced floats; a file of tables only (no text between them to ship a page) stops with
# "Output loop---100 consecutive dead cycles" past about 50 of them. \xbflush (\clearpage unless the document
# defines it first, e.g. \newcommand{\xbflush}{}) after every FLUSH_EVERY tables places the floats waiting.
FLUSH_EVERY = 10
_LATEX_FLUSH = "\\providecommand{\\xbflush}{\\clearpage}\n\\xbflush\n"
# < and > are set as the inverted ! and ? of LaTeX's default (OT1) text font: math mode, as the arrows.
# A number's sign in a cell ("0.010 [-0.038, 0.064]", r = -0.652): set as a minus; an exponent's (1.2e-05) and a
# lone "-" (no score) stay as they are.
_MINUS = re.compile(r"(?<![\w.])-(?=\d)")
_LATEX_SYMBOLS = {"↑": r"$\uparrow$", "↓": r"$\downarrow$", TIE_MARK: r"$^{\dagger}$", "<": "$<$", ">": "$>$"}


# --- Markdown ------------------------------------------------------------------------------------------------------

def to_markdown(table: Table) -> str:
    """A pipe table with a bold caption line, bold best cells, ``†`` ties and ``<sup>`` footnote marks."""
    header = [_md(table.corner)] + [_md(_column_text(c, _sup_html)) for c in table.columns]
    lines = [f"**{_md(table.caption)}**", "", "| " + " | ".join(header) + " |",
             "|" + "|".join([" --- "] + [" --- " if c.text else " ---: " for c in table.columns]) + "|"]
    for label, cells in table.rows:
        lines.append("| " + " | ".join([_md(label)] + [_md_cell(c) for c in cells]) + " |")
    lines.append("")
    lines += [f"> **{_md(w)}**" for w in table.warnings] + ([""] if table.warnings else [])
    lines += [f"- {_md(n)}" for n in table.notes]
    return "\n".join(lines).rstrip() + "\n"


def _md_cell(cell: Cell) -> str:
    text = f"**{cell.text}**" if cell.best else cell.text
    return text + (TIE_MARK if cell.tie else "") + _sup_html(cell.marks)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


# --- LaTeX -----------------------------------------------------------------------------------------------------------

def to_latex(table: Table) -> str:
    """A ``table`` float with a booktabs ``tabular``; needs only ``\\usepackage{booktabs}``, and with graphicx
    loaded a tabular wider than the text is shrunk to ``\\linewidth``."""
    size = r"\small" if len(table.columns) <= 4 else r"\scriptsize"
    header = [latex_escape(table.corner)] + [_latex_column(c) for c in table.columns]
    lines = [_LATEX_FLOAT, r"\begin{\xbtable}[ht]", r"\centering", size, r"\setlength{\tabcolsep}{4pt}",
             rf"\caption{{{latex_escape(table.caption)}}}", rf"\label{{tab:{table.key}}}",
             _LATEX_FIT, rf"\xbfit{{\begin{{tabular}}{{l{_latex_spec(table.columns)}}}", r"\toprule",
             " & ".join(header) + r" \\",
             r"\midrule"]
    for label, cells in table.rows:
        lines.append(" & ".join([latex_escape(label)] + [_latex_cell(c) for c in cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}"]
    notes = [rf"\textbf{{{latex_escape(w)}}}" for w in table.warnings] + [latex_escape(n) for n in table.notes]
    if notes:
        lines += [r"\par\smallskip", r"\parbox{\linewidth}{\footnotesize " + r" \\ ".join(notes) + "}"]
    lines.append(r"\end{\xbtable}")
    return "\n".join(lines) + "\n"


def _latex_spec(columns: tuple[Column, ...]) -> str:
    """``r`` per number column; text columns share 75% of the line as wrapped paragraphs (``p``), so a long text
    neither widens the table past the line nor gets the whole table shrunk to fit."""
    texts = sum(c.text for c in columns)
    width = f"p{{{0.75 / texts:.2f}\\linewidth}}" if texts else ""
    return "".join(width if c.text else "r" for c in columns)


def latex_tables(tables: list[Table]) -> str:
    """Many tables as one LaTeX body (preamble comment first), flushing the floats every :data:`FLUSH_EVERY`."""
    parts = [LATEX_PREAMBLE + "\n\n"]
    for i, table in enumerate(tables):
        if i and i % FLUSH_EVERY == 0:
            parts.append(_LATEX_FLUSH)
        parts.append(to_latex(table))
    return "".join(parts)


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters; arrows and the tie dagger become math symbols."""
    out = "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))
    for symbol, latex in _LATEX_SYMBOLS.items():
        out = out.replace(symbol, latex)
    return out


def _latex_cell(cell: Cell) -> str:
    text = _MINUS.sub(r"$-$", latex_escape(cell.text))  # -0.038 with a minus sign, not a hyphen
    text = rf"\textbf{{{text}}}" if cell.best else text
    return text + (r"$^{\dagger}$" if cell.tie else "") + _sup_latex(cell.marks)


def _latex_column(column: Column) -> str:
    arrow = f" {_LATEX_SYMBOLS[column.arrow]}" if column.arrow else ""
    return latex_escape(column.name) + arrow + _sup_latex(column.marks)


def _sup_latex(marks: tuple[str, ...]) -> str:
    return rf"\textsuperscript{{{','.join(marks)}}}" if marks else ""


# --- HTML ------------------------------------------------------------------------------------------------------------

def to_html(table: Table) -> str:
    """A ``<table class="xb-table">`` with caption, bold best cells and notes below (no scripts, no styles)."""
    head = "".join(f"<th>{_column_text(c, _sup_html, escape=html.escape)}</th>" for c in table.columns)
    body = []
    for label, cells in table.rows:
        tds = "".join(_html_cell(c, column.text) for c, column in zip(cells, table.columns))
        body.append(f'<tr><th scope="row">{html.escape(label)}</th>{tds}</tr>')
    parts = [f'<table class="xb-table" id="{html.escape(table.key)}">',
             f"<caption>{html.escape(table.caption)}</caption>",
             f"<thead><tr><th>{html.escape(table.corner)}</th>{head}</tr></thead>",
             "<tbody>" + "".join(body) + "</tbody>", "</table>"]
    parts += [f'<p class="xb-warning">{html.escape(w)}</p>' for w in table.warnings]
    if table.notes:
        parts.append('<ul class="xb-notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in table.notes) + "</ul>")
    return "\n".join(parts) + "\n"


def _html_cell(cell: Cell, words: bool = False) -> str:
    text = html.escape(cell.text)
    text = f"<b>{text}</b>" if cell.best else text
    css = ' class="best"' if cell.best else (' class="tie"' if cell.tie else (' class="text"' if words else ""))
    return f"<td{css}>{text}{TIE_MARK if cell.tie else ''}{_sup_html(cell.marks)}</td>"


def _sup_html(marks: tuple[str, ...]) -> str:
    return f"<sup>{','.join(marks)}</sup>" if marks else ""


def _column_text(column: Column, sup, escape=lambda s: s) -> str:
    return escape(column.name) + (f" {column.arrow}" if column.arrow else "") + sup(column.marks)


# --- many tables ---------------------------------------------------------------------------------------------------

def shared_notes(tables: list[Table]) -> tuple[tuple[str, ...], list[Table]]:
    """The notes every one of two or more ``tables`` carries, and the tables without them: a document section of
    such tables (the tests against the best, one per setting) states them once instead of under every table.
    A single table keeps its notes (nothing is shared)."""
    if len(tables) < 2:
        return (), list(tables)
    common = [n for n in tables[0].notes if all(n in t.notes for t in tables[1:])]
    return tuple(common), [replace(t, notes=tuple(n for n in t.notes if n not in common)) for t in tables]


def render_grouped(tables: list[Table], fmt: str) -> str:
    """``render_all`` of ``tables`` (``md`` or ``html``) with the notes they all carry said once, before them
    (:func:`shared_notes`); LaTeX keeps each float's own notes, since a float is taken into a paper alone."""
    common, tables = shared_notes(tables)
    if not common:
        return render_all(tables, fmt)
    if fmt == "md":
        lead = "Notes for every table of this section:\n\n" + "\n".join(f"- {_md(n)}" for n in common) + "\n"
    elif fmt == "html":
        lead = ('<p>Notes for every table of this section:</p><ul class="xb-notes">'
                + "".join(f"<li>{html.escape(n)}</li>" for n in common) + "</ul>\n")
    else:
        raise ValueError(f"notes are grouped in md and html only, not {fmt!r}")
    return lead + "\n" + render_all(tables, fmt)


def render_all(tables: list[Table], fmt: str) -> str:
    """All tables in one document body of format ``md``, ``latex`` or ``html``."""
    if fmt == "md":
        return "\n".join(to_markdown(t) for t in tables)
    if fmt == "latex":
        return latex_tables(tables)
    if fmt == "html":
        return "\n".join(to_html(t) for t in tables)
    raise ValueError(f"unknown table format {fmt!r}")
