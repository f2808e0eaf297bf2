"""The console summary says why a cell has no score (``nan (1)``, ``n/a (2)``, ``ERROR (3)`` and a note under the
table), with the reason the report's table notes give: a bare ``nan`` left a paper author guessing."""
import re

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
    assert cell["lime"].split()[1:] == ["ERROR", "(1)", "-"]  # numbered in the order the table shows them
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


def _note_references(text: str) -> list[int]:
    """The note numbers the table's cells refer to (``nan (2)``, ``nan=25% (1)``), in reading order, each once."""
    table = text.split("why a cell has no score")[0]
    return list(dict.fromkeys(int(k) for k in re.findall(r"(?:nan|n/a|ERROR|%) \((\d+)\)", table)))


def test_notes_are_numbered_in_the_order_their_cells_first_appear_in_the_table():
    """paper21: the notes were numbered in the reasons' sorted order, so ``(2)`` could stand above ``(1)``: here
    the ``lime`` error ("z: ...") is printed above the ``constant`` control's NaN ("a: ...")."""
    from xaibench.report.console import format_summary

    table = _unscored_table()
    table.loc[table["method"] == "lime", "message"] = "zero division in the lime surrogate"
    table.loc[table["method"] == "constant", "message"] = "a constant map cannot be ranked"
    lines = format_summary(summarize(table)).splitlines()
    cell = {line.split()[0 if line.startswith(" ") else 2]: line for line in lines[2:7]}
    assert [cell[m].split()[1:3] for m in ("lime", "constant", "sobel")] == [
        ["ERROR", "(1)"], ["nan", "(2)"], ["n/a", "(3)"]]
    assert lines[7:11] == ["why a cell has no score:", "  (1) zero division in the lime surrogate",
                           "  (2) a constant map cannot be ranked", "  (3) sobel needs image data"]


def test_a_cell_scored_on_some_samples_only_says_why_the_others_have_no_score():
    """paper21: ``nan=25%`` (a sample without a score) and ``errors=50%`` (a seed whose cell errored) had no note;
    they now refer to the reason the rows record, numbered with the unscored cells' reasons (one number per reason:
    the constant control's NaN cell and a method's NaN sample for the same reason share it)."""
    from xaibench.report.console import format_summary

    partial = rows("a", "faith", [0.9, np.nan, 0.7, 0.6], status=["ok", "nan", "ok", "ok"])
    partial.loc[1, "message"] = f"{CONSTANT_MAP}\nthe map of sample s1 is constant"
    seeds = pd.concat([rows("b", "faith", [0.1, 0.3, 0.2]).assign(seed=0),
                       rows("b", "faith", [np.nan] * 3, status=["error"] * 3).assign(
                           seed=1, message="RuntimeError: out of memory")])
    constant = rows("constant", "faith", [np.nan] * 4, status=["nan"] * 4).assign(message=CONSTANT_MAP)
    text = format_summary(summarize(pd.concat([partial.assign(seed=0), seeds, constant.assign(seed=0)],
                                              ignore_index=True)))
    lines = text.splitlines()
    assert lines[2].split()[-3:] == ["#1", "nan=25%", "(1)"]
    assert lines[3].split()[-4:] == ["#2", "errors=50%", "(2)", "seeds=2"]
    assert lines[4].split()[-2:] == ["nan", "(1)"]
    assert lines[5:8] == ["why a cell has no score, or none on some samples or seeds:", f"  (1) {CONSTANT_MAP}",
                          "  (2) RuntimeError: out of memory"]
    assert _note_references(text) == [1, 2]


def test_a_summary_printed_in_pieces_numbers_the_notes_as_the_whole_one(monkeypatch):
    """The streamed one-line-per-metric layout (a dataset at a time) numbers the notes before it writes a cell, in
    the order the whole table prints them: the same text as the whole summary's, ``(1)`` the highest note."""
    from xaibench.report import console
    from xaibench.results import aggregate

    table = _pieces_table()
    partial = table["status"] == "nan"  # a sample here and there: nan=25% cells, numbered first (dataset B first)
    table.loc[partial, "message"] = "the perturbed input left the model's output unchanged"
    unscored = (table["method"] == "random") & (table["metric"] == "metric3")
    table.loc[unscored, ["value", "status", "message"]] = [np.nan, "nan", CONSTANT_MAP]
    skipped = (table["method"] == "ig") & (table["dataset"] == "b") & (table["metric"] == "metric5")
    table.loc[skipped, ["value", "status", "message"]] = [np.nan, "not_applicable", "ig: not for this model"]
    whole = summarize(table)
    monkeypatch.setattr(aggregate.summarizer, "MERGE", 2)
    monkeypatch.setattr(console, "TALL_ROWS", 10)  # the streamed layout, not the whole frame's
    pieces = _streamed(table)
    text = "\n".join(console.summary_blocks(whole))
    assert text.count("nan (3)") == 3 and text.count("n/a (2)") == 1 and text.count("% (1)") > 10
    assert "  (1) the perturbed input left the model's output unchanged\n  (2) ig: not for this model\n" \
           f"  (3) {CONSTANT_MAP}\n" in text
    assert _note_references(text) == [1, 2, 3]
    assert "\n".join(console._piece_blocks(pieces)) == text
    pieces.close()
