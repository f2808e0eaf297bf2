"""The console summary says why a cell has no score (``nan (1)``, ``n/a (2)``, ``ERROR (3)`` and a note under the
table), with the reason the report's table notes give: a bare ``nan`` left a paper author guessing."""
import numpy as np
import pandas as pd

from tests.unit.test_aggregate import rows
from tests.unit.test_summary_memory import _pieces_table, _streamed
from xaibench.metrics.quantus_adapter import CONSTANT_MAP
from xaibench.results.aggregate import summarize


def _unscored_table() -> pd.DataFrame:
    """Two methods scored, the ``constant`` control NaN on every sample (no ranking of the features), a method not
    applicable (a two-line message), another errored on every sample."""
    constant = rows("constant", "faith", [np.nan] * 3, status=["nan"] * 3).assign(message=CONSTANT_MAP)
    sobel = rows("sobel", "faith", [np.nan], status=["not_applicable"]).assign(
        message="sobel needs image data\nsecond line", sample_id="")
    broken = rows("lime", "faith", [np.nan] * 3, status=["error"] * 3).assign(message="RuntimeError: boom")
    return pd.concat([rows("a", "faith", [0.9, 0.8, 0.7]), rows("b", "faith", [0.1, 0.3, 0.2]), constant, sobel,
                      broken, rows("a", "sens", [0.9, 0.8, 0.7], higher=False)], ignore_index=True)


def test_a_cell_without_a_score_prints_its_reason_in_a_note_under_the_table():
    from xaibench.report.console import format_summary

    lines = format_summary(summarize(_unscored_table())).splitlines()
    cell = {line.split()[0 if line.startswith(" ") else 2]: line for line in lines[2:7]}
    assert cell["lime"].split()[1:] == ["ERROR", "(1)", "-"]  # numbered in the reasons' sorted order
    assert cell["constant"].split()[1:] == ["nan", "(2)", "-"]
    assert cell["sobel"].split()[1:] == ["n/a", "(3)", "-"]
    assert lines[7:11] == ["why a cell has no score:",
                           "  (1) RuntimeError: boom", f"  (2) {CONSTANT_MAP}", "  (3) sobel needs image data"]
    assert max(map(len, lines[:7])) == len(lines[0])  # the table is no wider than its header


def test_the_report_tables_give_the_same_reason_as_the_console():
    from xaibench.report.tables import metrics_table, to_markdown

    summary = summarize(_unscored_table()).assign(model_accuracy=np.nan, model_flag="", setting="s")
    markdown = to_markdown(metrics_table(summary))
    assert f"constant on faith: {CONSTANT_MAP}" in markdown and "sobel needs image data" in markdown


def test_a_summary_without_messages_or_unscored_cells_prints_no_note():
    from xaibench.report.console import NO_REASON, format_summary

    table = _unscored_table()
    assert "why a cell" not in format_summary(summarize(table[table["method"].isin(["a", "b"])]))
    old = summarize(table[table["method"].isin(["a", "constant"])]).drop(columns="message")  # an older summary
    assert "nan (1)" in format_summary(old) and format_summary(old).endswith(
        f"  (1) {NO_REASON}\nmean [95% bootstrap CI] #rank (1 = best method); n = 3 samples per cell")


def test_a_summary_printed_in_pieces_numbers_the_notes_as_the_whole_one(monkeypatch):
    from xaibench.report import console
    from xaibench.results import aggregate

    table = _pieces_table()
    unscored = (table["method"] == "random") & (table["metric"] == "metric3")
    table.loc[unscored, ["value", "status", "message"]] = [np.nan, "nan", CONSTANT_MAP]
    skipped = (table["method"] == "ig") & (table["dataset"] == "b") & (table["metric"] == "metric5")
    table.loc[skipped, ["value", "status", "message"]] = [np.nan, "not_applicable", "ig: not for this model"]
    whole = summarize(table)
    monkeypatch.setattr(aggregate, "_MERGE", 2)
    monkeypatch.setattr(console, "TALL_ROWS", 10)  # the streamed layout, not the whole frame's
    pieces = _streamed(table)
    text = "\n".join(console.summary_blocks(whole))
    assert text.count("nan (1)") == 3 and text.count("n/a (2)") == 1 and f"  (1) {CONSTANT_MAP}\n" in text
    assert "\n".join(console._piece_blocks(pieces)) == text
    pieces.close()
