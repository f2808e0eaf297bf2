"""Paper tables from a summary: layouts (what goes where) and renderers (Markdown, LaTeX booktabs, HTML)."""
from xaibench.report.tables.layouts import LAYOUTS, build_tables, datasets_table, families_table, metrics_table
from xaibench.report.tables.model import Cell, Column, Table
from xaibench.report.tables.render import latex_escape, render_all, to_html, to_latex, to_markdown

__all__ = ["LAYOUTS", "build_tables", "metrics_table", "datasets_table", "families_table", "Cell", "Column",
           "Table", "to_markdown", "to_latex", "to_html", "render_all", "latex_escape"]
