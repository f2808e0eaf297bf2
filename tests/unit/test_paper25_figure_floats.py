"""A tall figure (a tabular gallery: 5 methods x 3 samples) with its long caption fits the page in figures.tex: its
height was capped at 0.8 of the text height, which left no room for the 8-line caption, and pdflatex warned "Float
too large for page by 46pt" in a one-column article (the caption ran into the bottom margin)."""
import subprocess

import pytest
from matplotlib.figure import Figure as MplFigure

from tests.unit.test_report_latex import _ensure_tools
from xaibench.report.build import latex_figures
from xaibench.report.figure_set import caption
from xaibench.report.html_document import Figure


@pytest.mark.parametrize("size", ["10pt", "11pt", "12pt"])
def test_a_tall_gallery_and_its_caption_fit_a_one_column_page(tmp_path, size):
    _ensure_tools()
    (tmp_path / "figures").mkdir()
    tall = MplFigure(figsize=(6.8, 9.2))  # the breast_cancer gallery's 2042 x 2759 px at 300 dpi
    tall.add_subplot().plot([0, 1], [0, 1])
    tall.savefig(tmp_path / "figures" / "gallery_breast_cancer_mlp.pdf")
    figure = Figure(png=b"", caption=caption("gallery_breast_cancer_mlp"), key="gallery_breast_cancer_mlp")
    (tmp_path / "figures.tex").write_text(latex_figures([figure]))
    (tmp_path / "doc.tex").write_text(f"\\documentclass[{size}]{{article}}\n\\usepackage{{graphicx}}\n"
                                      "\\begin{document}\n\\input{figures.tex}\n\\end{document}\n")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    log = (tmp_path / "doc.log").read_text()
    assert "Float too large" not in log


def test_the_gallery_caption_says_what_the_input_row_shows():
    # the breast_cancer gallery's input row read "worst area 1.8" with no unit: the model's z-scored input, not
    # the raw 1,000-odd square units a reader expects
    assert "the input row: what the model sees (z-scores on standardised tabular data)" in caption("gallery_iris_mlp")
