"""``xaibench report`` and ``xaibench summary -o`` from the command line, on a quickstart-like table."""
import shutil
import subprocess

import pandas as pd
import pytest

from tests.conftest import run_cli
from tests.unit.report_fixtures import quickstart_like_table
from xaibench.results.aggregate import summarize


@pytest.fixture
def table_path(tmp_path):
    path = tmp_path / "table.parquet"
    quickstart_like_table().to_parquet(path)
    return path


def test_report_writes_markdown_latex_html_and_statistics_csvs(table_path, tmp_path):
    out = tmp_path / "paper"
    run = run_cli(["report", str(table_path), "--out", str(out)], cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "tables.tex", "report.html", "summary.csv", "pairwise_tests.csv", "control_checks.csv",
            "average_ranks.csv", "friedman.csv", "nemenyi.csv", "metric_agreement.csv"} <= names
    warning = "a control ranks first on mprt"
    for name in ("report.md", "tables.tex", "report.html"):
        text = (out / name).read_text()
        assert warning in text, name
        assert "diabetes" in text and "UNDERFIT" in text
    assert "**Friedman test" in (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<b>" in html and 'class="xb-warning"' in html

    # the report reads the table only: its summary is the table's summary
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False, na_values=[""])
    expected = summarize(quickstart_like_table())
    assert summary["mean"].to_numpy() == pytest.approx(expected["mean"].to_numpy())
    pairs = pd.read_csv(out / "pairwise_tests.csv")
    assert len(pairs) == 6 * 3  # 6 comparison groups x 3 method pairs
    controls = pd.read_csv(out / "control_checks.csv")
    assert not controls.loc[(controls["metric"] == "mprt") & (controls["model"] == "mlp"), "beats"].any()

    if shutil.which("pdflatex"):  # the whole tables.tex, statistics included, compiles as well
        (out / "doc.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                                     "\\input{tables.tex}\n\\end{document}\n")
        latex = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=out,
                               capture_output=True, text=True, timeout=300)
        assert latex.returncode == 0, latex.stdout[-3000:]


@pytest.mark.parametrize("args, message", [
    (["missing.parquet"], "not found"),
    (["TABLE", "--format", "md,docx"], "--format: unknown docx"),
    (["TABLE", "--layout", "grid"], "--layout: unknown grid"),
    (["NOT_A_TABLE"], "not an xaibench results table"),
])
def test_report_bad_input_is_one_line_exit_2_nothing_written(table_path, tmp_path, args, message, capsys,
                                                             monkeypatch):
    from xaibench.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    args = [str(table_path) if a == "TABLE" else str(tmp_path / "other.csv") if a == "NOT_A_TABLE" else a
            for a in args]
    with pytest.raises(SystemExit) as exit_:
        main(["report", *args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_summary_output_follows_the_extension(table_path, tmp_path, capsys):
    from xaibench.cli import main

    for suffix, check in {
        ".md": lambda text: "| method | faith ↑ |" in text and "**" in text,
        ".tex": lambda text: "\\toprule" in text and "\\textbf{" in text,
        ".html": lambda text: text.startswith("<!DOCTYPE html>") and "<table" in text,
    }.items():
        target = tmp_path / f"s{suffix}"
        with pytest.raises(SystemExit) as exit_:
            main(["summary", str(table_path), "-o", str(target)])
        assert exit_.value.code == 0 and check(target.read_text()), suffix
        assert "UNDERFIT" in target.read_text() and "a control ranks first" in target.read_text()
    for suffix, read in {".csv": pd.read_csv, ".parquet": pd.read_parquet}.items():
        with pytest.raises(SystemExit):
            main(["summary", str(table_path), "-o", str(tmp_path / f"s{suffix}")])
        frame = read(tmp_path / f"s{suffix}")
        assert {"mean", "ci_low", "rank", "model_accuracy", "model_flag", "n_seeds"} <= set(frame.columns)
    capsys.readouterr()

    with pytest.raises(SystemExit) as exit_:
        main(["summary", str(table_path), "-o", str(tmp_path / "s.xlsx")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "unknown extension '.xlsx'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.xlsx").exists()
