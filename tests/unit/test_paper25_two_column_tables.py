"""In a two-column paper a results table of three metrics was shrunk into one column, its 9 pt type set at about
5 pt; ``\\newcommand{\\xbtable}{table*}`` before the ``\\input`` now sets each table across both columns."""
import subprocess
import xml.etree.ElementTree as ET

from tests.unit.report_fixtures import quickstart_like_table
from tests.unit.test_report_latex import _ensure_tools
from xaibench.report.tables import metrics_table, to_latex
from xaibench.report.tables.render import LATEX_PREAMBLE
from xaibench.results.aggregate import summarize


def _cell_points(folder, float_command: str) -> float:
    """The type size (pt) of the table's first numeric cell, compiled in a two-column article."""
    summary = summarize(quickstart_like_table())
    table = metrics_table(summary[summary["model"] == "mlp"])
    assert len(table.columns) >= 3
    (folder / "tables.tex").write_text(LATEX_PREAMBLE + "\n" + to_latex(table))
    (folder / "doc.tex").write_text("\\documentclass[twocolumn]{article}\n\\usepackage{booktabs}\n"
                                    "\\usepackage{graphicx}\n" + float_command + "\\begin{document}\n"
                                    "\\input{tables.tex}\n\\end{document}\n")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=folder,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    xml = subprocess.run(["pdftohtml", "-xml", "-i", "-stdout", "-zoom", "1", "doc.pdf"], cwd=folder,
                         capture_output=True, text=True).stdout
    root = ET.fromstring(xml)
    sizes = {f.get("id"): float(f.get("size")) for f in root.iter("fontspec")}
    cells = [t for t in root.iter("text") if "[" in "".join(t.itertext()) and "CI" not in "".join(t.itertext())]
    return sizes[cells[0].get("font")]


def test_table_star_sets_a_wide_table_across_both_columns_at_its_own_size(tmp_path):
    _ensure_tools()
    (tmp_path / "one").mkdir()
    (tmp_path / "both").mkdir()
    shrunk = _cell_points(tmp_path / "one", "")
    across = _cell_points(tmp_path / "both", "\\newcommand{\\xbtable}{table*}\n")
    assert shrunk < 7  # a column's width: the \small table shrunk to fit
    assert across >= 8.5  # \small (9 pt) in a 10 pt document, not shrunk
    assert "\\newcommand{\\xbtable}{table*}" in LATEX_PREAMBLE  # the file's first line says how
