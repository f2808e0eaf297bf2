"""``xaibench report`` and ``xaibench summary -o`` from the command line, on a quickstart-like table."""
import re
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
            "appendix_pairwise.md", "appendix_pairwise.tex", "versus_best.csv",
            "average_ranks.csv", "friedman.csv", "nemenyi.csv", "metric_agreement.csv"} <= names
    warning = "scores as well as the best method or better on mprt"  # each table's Warning (c) line
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
        assert capsys.readouterr().err.strip().splitlines()[-1] == f"xaibench: wrote {target}"
        assert "UNDERFIT" in target.read_text() and "as well as the best method or better" in target.read_text()
        assert "Tests against the best, " in target.read_text(), suffix  # what a paper cites for a †
    # ... the report's own tables against the best, p and r as versus_best.csv has them
    from xaibench.report.build import analyse
    from xaibench.report.tables import to_markdown

    best = analyse(quickstart_like_table(), layouts=("metrics",)).best_tables
    written = (tmp_path / "s.md").read_text()
    assert len(best) == 2 and all(to_markdown(t).split("\n- ")[0] in written for t in best)
    assert "xaibench report writes these tests (versus_best.csv)" in written  # no CSV lies beside a summary
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
    with pytest.raises(SystemExit) as exit_:
        main(["summary", str(table_path), "-o", str(tmp_path / "bad.md"), "--alpha", "5"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--alpha must lie between 0 and 1" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.md").exists()


def test_report_on_a_parquet_table_with_float_noise_ties_and_a_single_sample(tmp_path, capsys):
    # "lin": ig and ixg equal up to float32 rounding (as on a linear model); "one": one scored sample per method.
    import numpy as np

    from tests.unit.report_fixtures import _defaults
    from xaibench.cli import main
    from xaibench.results.schema import conform

    rng = np.random.default_rng(0)
    base = rng.uniform(0.4, 0.9, 20)
    values = {("lin", "ig"): base, ("lin", "ixg"): base + rng.normal(0, 1e-7, 20), ("lin", "sal"): base - 0.2,
              ("one", "ig"): np.array([0.8]), ("one", "sal"): np.array([0.3])}
    frames = [pd.DataFrame({**_defaults(), "schema_version": 2, "model": model, "dataset": "d", "method": method,
                            "metric": "faith", "family": "faithfulness", "higher_is_better": True,
                            "sample_id": [f"s{i}" for i in range(len(v))], "seed": 0, "value": v, "status": "ok",
                            "params": "{}", "method_params": "{}", "model_params": "{}", "dataset_params": "{}",
                            "n_samples": len(v), "cell_key": f"{model}-{method}"})
              for (model, method), v in values.items()]
    path = tmp_path / "table.parquet"
    conform(pd.concat(frames, ignore_index=True)).to_parquet(path)
    out = tmp_path / "paper"
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(path), "--out", str(out), "--no-figures", "--format", "md,csv"])
    assert exit_.value.code == 0, capsys.readouterr().err
    summary = pd.read_csv(out / "summary.csv").set_index(["model", "method"])
    assert summary.loc[("lin", "ig"), "rank"] == summary.loc[("lin", "ixg"), "rank"] == 1
    assert summary.loc[["one"], "ci_low"].isna().all() and summary.loc[("one", "ig"), "mean"] == 0.8
    pairs = pd.read_csv(out / "pairwise_tests.csv", keep_default_na=False).set_index(["model", "method_a", "method_b"])
    assert pairs.loc[("lin", "ig", "ixg"), "p_value"] == 1.0 and pairs.loc[("lin", "ig", "ixg"), "winner"] == ""
    assert pairs.loc[("lin", "ig", "sal"), "winner"] == "ig" and pairs.loc[("one", "ig", "sal"), "winner"] == ""
    report = (out / "report.md").read_text()
    lin = next(line for line in report.splitlines() if line.startswith("| ixg |"))
    assert lin.startswith(f"| ixg | **{summary.loc[('lin', 'ixg'), 'mean']:.3f} [")  # bold like ig: a tie
    assert "| ig | **0.800**<sup>n</sup> |" in report and "no confidence interval can be computed" in report


def test_summary_tables_carry_the_same_significance_marks_as_the_report(table_path, tmp_path, capsys):
    # saliency on tiny/digits: CI overlapping ig's, yet separated by the paired test. A summary -o table used to
    # fall back to CI overlap there (†) while report.md said "different" (no †): one reader, two verdicts.
    from xaibench.cli import main

    quickstart_like_table().to_csv(tmp_path / "table.csv", index=False)
    out = tmp_path / "paper"
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(table_path), "--out", str(out), "--format", "md,latex", "--layout", "metrics",
              "--no-figures"])
    assert exit_.value.code == 0
    report = {"md": (out / "report.md").read_text(), "tex": (out / "tables.tex").read_text()}
    # a Parquet table (streamed summary, the tests' columns read alone) and a CSV table (loaded whole)
    for source, suffix in (("table.parquet", "md"), ("table.parquet", "tex"), ("table.csv", "md")):
        with pytest.raises(SystemExit) as exit_:
            main(["summary", str(tmp_path / source), "-o", str(tmp_path / f"s.{suffix}")])
        assert exit_.value.code == 0
        text = (tmp_path / f"s.{suffix}").read_text()
        assert "CI overlaps" not in text and "Holm-corrected over the column's comparisons with its best" in text
        assert "as few as 6 of 8 (sens for diabetes / mlp)" in text  # ranked on the shared samples, as report's
        results = text.split("## Tests against the best")[0]  # the results tables, then the tests against the best
        tables = [t for t in re.split(r"\n(?=\*\*|\\providecommand\{\\xbtable\})", results)  # each float opens so
                  if "\\toprule" in t or "| --- |" in t]
        tables = [t for t in tables if "caption{Tests against the best" not in t]
        assert len(tables) == 2 and all(t.strip() in report[suffix] for t in tables), (source, suffix)
        digits = next(t for t in tables if "digits" in t)
        saliency = next(line for line in digits.splitlines() if line.startswith(("saliency &", "| saliency |")))
        assert "0.5" in saliency and "†" not in saliency and "dagger" not in saliency  # the test separates them
    # --alpha as report's: at 0.01 the test (Holm p 0.016 against ig) no longer separates them
    with pytest.raises(SystemExit) as exit_:
        main(["summary", str(table_path), "-o", str(tmp_path / "strict.md"), "--alpha", "0.01"])
    strict = (tmp_path / "strict.md").read_text().split("tiny on digits")[1]
    assert exit_.value.code == 0 and "alpha = 0.01" in strict
    assert next(line for line in strict.splitlines() if line.startswith("| saliency |")).split(" | ")[1].endswith("†")
    capsys.readouterr()


def test_a_csv_table_reads_back_its_nan_status_and_na_messages(tmp_path):
    # pandas reads the strings "nan" and "N/A" as missing: a CSV table lost its status=nan rows (NaN scores), so
    # summaries and reports of it showed no NaN rate.
    from xaibench.results.collect import load_table

    table = quickstart_like_table()
    table.loc[table["status"] == "nan", "message"] = "N/A"
    table.to_csv(tmp_path / "t.csv", index=False)
    loaded = load_table(tmp_path / "t.csv")
    assert loaded["status"].tolist() == table["status"].tolist() and (loaded["message"] == "N/A").sum() == 2
    assert loaded["value"].isna().sum() == 2 and loaded["model_accuracy"].notna().all()


def test_summary_console_and_tables_rank_and_place_n_a_as_the_report_does(tmp_path, capsys):
    """ranks12: the console #rank, ``xaibench.summarize`` and ``summary -o`` ranked the means while the report ranks
    on the samples every method scored, and ``summary -o`` listed a method n/a in a scored setting under "Settings
    without any score" where the report shows n/a in that setting's table."""
    import numpy as np

    import xaibench
    from xaibench.cli import main
    from xaibench.report.build import analyse
    from xaibench.report.tables import render_all
    from xaibench.results.collect import summarize_file, write_table
    from xaibench.results.schema import sort_rows

    table = quickstart_like_table().assign(dataset_revision="r1", params='{"subset_size": 2}')
    # faith on diabetes: ig scores NaN on the two hard samples s6, s7 (mean 0.90 over s0-s5); saliency scores 0.95
    # on s0-s5 and 0.1 on s6, s7 (mean 0.74): ranked on the means ig is first, on the 6 shared samples saliency is.
    faith = ((table["model"] == "mlp") & (table["metric"] == "faith")).to_numpy()
    hard = table["sample_id"].isin(["s6", "s7"]).to_numpy()
    ig, saliency = (table["method"] == "ig").to_numpy(), (table["method"] == "saliency").to_numpy()
    table.loc[faith & ig & hard, ["value", "status"]] = [np.nan, "nan"]
    table.loc[faith & saliency, "value"] = np.where(hard, 0.1, 0.95)[faith & saliency]
    sobel = table[(table["model"] == "mlp").to_numpy() & ig].assign(
        method="sobel", dataset_revision="", params='{"subset_size": 0.25}', model_accuracy=np.nan, value=np.nan,
        status="not_applicable", message="method sobel does not handle tabular inputs")
    table = sort_rows(pd.concat([table, sobel], ignore_index=True))
    path = tmp_path / "t.parquet"
    write_table(table, path)
    assert summarize_file(path) is not None  # the streamed summary, as for a finished sweep

    report = analyse(table, layouts=("metrics",))
    expected = report.summary.set_index(["model", "metric", "method"])["rank"].sort_index()
    assert expected[("mlp", "faith", "saliency")] == 1 and expected[("mlp", "faith", "ig")] == 2
    ranks = xaibench.summarize(table).set_index(["model", "metric", "method"])["rank"].sort_index()
    pd.testing.assert_series_equal(ranks, expected)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["summary", str(path), "-o", str(tmp_path / "s.md")])
    assert exit_.value.code == 0
    console = capsys.readouterr().out
    assert re.search(r"diabetes .* ig +0\.902 \[[^]]+\] #2 nan=25%", console)  # the report's ranks ...
    assert re.search(r"\n +saliency +0\.737 \[[^]]+\] #1 ", console)
    assert "#rank compares a column's methods on the samples all of them scored" in console  # ... and why
    written = (tmp_path / "s.md").read_text()
    assert render_all(list(report.tables), "md") in written  # bold best and sobel's n/a as the report's
    assert "| sobel | n/a |" in written and "Settings without any score" not in written
