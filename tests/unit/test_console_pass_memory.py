"""What the streamed print (``console._piece_blocks``) keeps of the whole summary between its first pass and the
end: the rows ``control_warnings`` reads with only the columns it reads, and per note reason a few cells, not every
noted cell (at 10,000 cells those were 8.5 + 12.1 MB of the print's peak; docs/speed.md, mem23)."""
from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pandas as pd

from tests.unit.test_aggregate import rows
from tests.unit.test_summary_memory import _streamed
from xaibench.results.aggregate import summarize

# What statistics/controls.py's ``control_warnings`` reads (nothing_to_rank, control_first, ranks.ranked_mean).
READ_BY_WARNINGS = {"comparison", "dataset_label", "model_label", "metric", "family", "competitor", "method", "role",
                    "mean", "shared_mean", "higher_is_better", "rank"}


def _table(noted: bool) -> pd.DataFrame:
    """Five datasets x five methods (``random`` a control) x twelve metrics, four samples; ``noted``: every cell
    NaN on its first sample (``nan=25%``, one reason: 300 noted cells), else none."""
    rng = np.random.default_rng(1)
    frames = []
    for dataset in ("a", "b", "c", "d", "e"):
        for method in ("saliency", "ig", "gradshap", "lime", "random"):
            for k in range(12):
                values = rng.normal(size=4)
                status = ["ok"] * 4
                if noted:
                    values[0], status[0] = np.nan, "nan"
                frame = rows(method, f"metric{k:02d}", values, status=status).assign(
                    dataset=dataset, dataset_label=dataset.upper())
                frame.loc[frame["status"] == "nan", "message"] = "the map is constant"
                frames.append(frame)
    return pd.concat(frames, ignore_index=True).sort_values(["model", "dataset", "method"], kind="stable",
                                                            ignore_index=True)


class _TracedPieces:
    """``SummaryPieces`` that records the traced bytes each time a pass over the pieces starts."""

    def __init__(self, pieces) -> None:
        self.inner, self.starts = pieces, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def pieces(self):
        gc.collect()  # what the pass holds, not garbage waiting for the collector
        self.starts.append(tracemalloc.get_traced_memory()[0])
        yield from self.inner.pieces()


def _printed(table: pd.DataFrame, monkeypatch) -> tuple[str, int, _TracedPieces]:
    """The streamed print's text and the bytes its first pass still held when the second began."""
    from xaibench.report import console
    from xaibench.results import aggregate

    monkeypatch.setattr(aggregate.summarizer, "MERGE", 2)
    monkeypatch.setattr(console, "TALL_ROWS", 10)  # the streamed layout
    pieces = _TracedPieces(_streamed(table))
    tracemalloc.start()
    try:
        text = "\n".join(console._piece_blocks(pieces))
    finally:
        tracemalloc.stop()
    pieces.close()
    return text, pieces.starts[1] - pieces.starts[0], pieces


def test_the_streamed_print_keeps_a_few_cells_per_note_not_every_noted_cell(monkeypatch):
    """300 noted cells (one reason) cost the first pass less than 100 bytes each over none (the pieces kept at the
    end of the pass differ): it keeps each reason's first cells per method, not every noted cell's printed levels
    and values (about 500 bytes a cell before)."""
    from xaibench.report.console import summary_blocks

    clean, noted = _table(noted=False), _table(noted=True)
    _printed(noted, monkeypatch)  # once first: the modules and caches a note loads are not the pass's
    clean_text, clean_held, _ = _printed(clean, monkeypatch)
    noted_text, noted_held, _ = _printed(noted, monkeypatch)
    assert noted_text == "\n".join(summary_blocks(summarize(noted)))  # the whole summary's text
    assert clean_text == "\n".join(summary_blocks(summarize(clean)))
    assert noted_text.count("nan=25% (1)") == 300 and "  (1) the map is constant" in noted_text
    assert noted_held - clean_held < 100 * 300, (noted_held, clean_held)  # 46 B a cell here; 496 before


def test_the_streamed_print_keeps_only_the_columns_the_control_warnings_read(monkeypatch):
    """The rank-1 and control rows kept for the warning lines carry only what ``control_warnings`` reads."""
    from xaibench.results import statistics

    seen = []
    warnings = statistics.control_warnings
    monkeypatch.setattr(statistics, "control_warnings", lambda frame: seen.append(set(frame)) or warnings(frame))
    table = _table(noted=False)
    table.loc[table["method"] == "random", "value"] += 10.0  # the control first everywhere: warning lines
    text, _, _ = _printed(table, monkeypatch)
    assert "WARNING: a control matches or beats the best method" in text
    assert len(seen) == 1 and seen[0] <= READ_BY_WARNINGS, seen[0] - READ_BY_WARNINGS
