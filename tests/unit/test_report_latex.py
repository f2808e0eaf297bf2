"""The LaTeX tables compile with pdflatex in a plain article with booktabs, and the PDF bolds the right cells.

Needs pdflatex and poppler's pdftotext/pdftohtml (Debian: texlive-latex-base, texlive-latex-recommended,
poppler-utils; scripts/setup.sh installs them where apt-get is available). When they are missing the test
installs them itself if it can (root with apt-get), and skips with the reason only where it cannot.
"""
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from tests.unit.report_fixtures import quickstart_like_table
from xaibench.report.tables import metrics_table, to_latex
from xaibench.results.aggregate import summarize

TOOLS = ("pdflatex", "pdftotext", "pdftohtml")
PACKAGES = ["texlive-latex-base", "texlive-latex-recommended", "poppler-utils"]
DOCUMENT = "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n\\input{tables.tex}\n\\end{document}\n"


def _ensure_tools() -> None:
    if all(shutil.which(t) for t in TOOLS):
        return
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip(f"{', '.join(t for t in TOOLS if not shutil.which(t))} missing and apt-get unavailable "
                    f"(install {' '.join(PACKAGES)})")
    lock = ["flock", "/tmp/apt.lock"] if shutil.which("flock") else []
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*lock, "apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    if subprocess.run(install, capture_output=True, env=env, timeout=1200).returncode != 0:
        subprocess.run([*lock, "apt-get", "update", "-q"], capture_output=True, env=env, timeout=600)
        subprocess.run(install, capture_output=True, env=env, timeout=1200)
    if not all(shutil.which(t) for t in TOOLS):
        pytest.skip(f"could not install {' '.join(PACKAGES)} with apt-get")


def _bold_pattern(xml_text: str, methods: list[str], before: str) -> dict[str, list[tuple[str, bool]]]:
    """Per method row, its cells left to right as (text, bold) from pdftohtml's XML (bold = a CMBX font)."""
    root = ET.fromstring(xml_text)
    bold_fonts = {f.get("id") for f in root.iter("fontspec") if "CMBX" in f.get("family", "")}
    texts = [(int(t.get("top")), int(t.get("left")), "".join(t.itertext()), t.get("font") in bold_fonts)
             for t in root.iter("text")]
    limit = min(top for top, _, text, _ in texts if text.startswith(before))
    rows = {}
    for method in methods:
        top = min(top for top, _, text, _ in texts if text == method)
        cells = sorted((left, text, bold) for t, left, text, bold in texts
                       if abs(t - top) <= 3 and text != method and t < limit and "[" in text)
        rows[method] = [(text, bold) for _, text, bold in cells]
    return rows


def compiled_text(folder, tables_tex: str) -> str:
    """``tables_tex`` input into :data:`DOCUMENT`, compiled with pdflatex (it must compile), as pdftotext reads it."""
    (folder / "tables.tex").write_text(tables_tex)
    (folder / "doc.tex").write_text(DOCUMENT)
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=folder,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    return subprocess.run(["pdftotext", "-layout", "doc.pdf", "-"], cwd=folder, capture_output=True,
                          text=True, check=True).stdout


def test_latex_table_compiles_with_booktabs_and_bolds_the_right_cells(tmp_path):
    _ensure_tools()
    summary = summarize(quickstart_like_table())
    tables = [metrics_table(summary[summary["model"] == m]) for m in ("mlp", "tiny")]
    text = compiled_text(tmp_path, "".join(to_latex(t) for t in tables))
    assert "Table 1: mlp on diabetes (test accuracy 0.95)" in text
    assert "scores as well as the best method or better on mprt for diabetes / mlp" in " ".join(text.split())
    assert "tiny is underfit" in text and "†" in text

    xml_text = subprocess.run(["pdftohtml", "-xml", "-i", "-stdout", "doc.pdf"], cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout
    rows = _bold_pattern(xml_text, ["ig", "saliency", "random"], before="Table 2")
    # columns: faith (ig best), mprt (saliency the best method; the random control scores higher, but a control
    # is a reference row, never bold), sens (saliency best, lower is better)
    assert [bold for _, bold in rows["ig"]] == [True, False, False]
    assert [bold for _, bold in rows["saliency"]] == [False, True, True]
    assert [bold for _, bold in rows["random"]] == [False, False, False]
    row = summary[(summary["model"] == "mlp") & (summary["metric"] == "faith") & (summary["method"] == "ig")].iloc[0]
    assert rows["ig"][0][0] == f"{row['mean']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


def test_a_wide_table_fits_the_text_width_and_booktabs_alone_still_compiles(tmp_path):
    _ensure_tools()
    long_names = {"faith": "faithfulness_correlation", "sens": "max_sensitivity", "mprt": "model_parameter_randomisation"}
    table = quickstart_like_table()
    extra = table[table["metric"] == "faith"].assign(metric="pixel_flipping")
    table = pd.concat([table.assign(metric=table["metric"].map(long_names)), extra], ignore_index=True)
    summary = summarize(table)
    (tmp_path / "tables.tex").write_text(to_latex(metrics_table(summary[summary["model"] == "mlp"])))
    for name, packages in (("fit", "booktabs,graphicx"), ("plain", "booktabs")):
        (tmp_path / f"{name}.tex").write_text(DOCUMENT.replace("{booktabs}", f"{{{packages}}}"))
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-3000:]
    assert "Overfull \\hbox" not in (tmp_path / "fit.log").read_text()  # shrunk to \linewidth with graphicx
    assert "Overfull \\hbox" in (tmp_path / "plain.log").read_text()  # the same table is too wide unshrunk
    text = subprocess.run(["pdftotext", "-layout", "fit.pdf", "-"], cwd=tmp_path, capture_output=True, text=True,
                          check=True).stdout
    row = summary[(summary["model"] == "mlp") & (summary["metric"] == "pixel_flipping") & (summary["method"] == "ig")]
    assert f"{row['mean'].iloc[0]:.3f} [{row['ci_low'].iloc[0]:.3f}, {row['ci_high'].iloc[0]:.3f}]" in text


def test_a_long_tables_file_compiles_and_sets_less_than_as_less_than(tmp_path):
    # A report of 16 settings (with the pairwise tables, about 70 floats and no text between them) stopped
    # pdflatex with "Output loop---100 consecutive dead cycles"; and OT1 set "<1e-4" (p-values) as "¡1e-4".
    import dataclasses

    from xaibench.report.tables import Cell, Column, Table
    from xaibench.report.tables.render import FLUSH_EVERY, latex_tables

    _ensure_tools()
    summary = summarize(quickstart_like_table())
    one = metrics_table(summary[summary["model"] == "mlp"])
    p_values = Table(key="p", caption="p < alpha, r > 0", corner="scope", columns=(Column("p"),),
                     rows=(("all", (Cell("<1e-4"),)),))
    tables = [dataclasses.replace(one, key=f"t{i}") for i in range(70)] + [p_values]
    body = latex_tables(tables)
    assert body.count("\\xbflush\n") == len(tables) // FLUSH_EVERY
    text = compiled_text(tmp_path, body)
    assert "Table 71: p < alpha, r > 0" in text and "<1e-4" in text and "¡" not in text and "¿" not in text


def test_report_md_and_figures_tex_carry_every_figure_with_its_caption_and_the_tex_compiles(tmp_path):
    """paper19: the figures' captions were written only into report.html; report.md listed no figure and a paper
    had no LaTeX for them. report.md now shows each figure with its numbered caption, and figures.tex holds a float
    per figure (its PDF, caption and label) that compiles with graphicx."""
    from xaibench.report.build import analyse, write_report
    from xaibench.report.figure_set import summary_figures, write_figures

    _ensure_tools()
    analysis = analyse(quickstart_like_table())
    figures = write_figures(summary_figures(analysis.summary), tmp_path, analysis.summary)
    assert [f.key for f in figures] == ["metric_scores", "rank_heatmap"]
    write_report(analysis, tmp_path, formats=("md", "latex"), figures=figures)
    markdown = (tmp_path / "report.md").read_text()
    for number, figure in enumerate(figures, 1):
        assert f"![{figure.key}](figures/{figure.key}.png)" in markdown
        assert f"**Figure {number} ({figure.key}).** {figure.caption}" in markdown
    tex = (tmp_path / "figures.tex").read_text()
    assert tex.count("\\begin{figure}") == 2 and "\\label{fig:rank-heatmap}" in tex
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\n\\usepackage{graphicx}\n\\begin{document}\n"
                                      "\\input{figures.tex}\n\\end{document}\n")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    text = " ".join(subprocess.run(["pdftotext", "doc.pdf", "-"], cwd=tmp_path, capture_output=True,
                                   text=True).stdout.split())
    assert "Figure 2: Average rank of each method per metric (1 = best) over the metric" in text
    assert "Here N = 2 for every metric." in text
