"""The report's figures of a sorted ``table.parquet`` read one (model, dataset) range at a time.

``figure_set.report_figures`` draws the cost-vs-faithfulness figure, the galleries, the counterfactuals and the
surrogate rules from the whole table; the W&B sweep run at the end of a streamed sweep draws the same figures
from the file without holding it (at 1,000 cells the whole table in pandas, its copies and the statistics on it
peaked at about 4 GB). Every row a figure reads lies in one (model, dataset) range of the sorted table: an
experiment (dataset, model and their parameters) and a cost point (model, dataset, method) never span two. So:

- one pass reads the ranges in order (only ``COLUMNS``), keeps per (model, dataset, method) the mean cost of the
  chosen faithfulness metric (the same pandas group mean over the same rows in the same order) and notes where
  each experiment's rows are;
- the explanation figures then visit the experiments in the order ``explanation_figures.experiments`` gives for
  the whole table (by dataset first), reading each one's range again, so names and order are those of the whole
  table's figures.

Memory: one range (at most a (model, dataset) pair's rows) and the figures; freed memory is handed back to the
system after each range (``release_memory``; pass 1 over the first 1,000 cells of the 10,000-cell benchmark grid,
alone: peak 358 -> 318 MB, and it ends 60 instead of 160 MB above where it started, the floor of the next phase).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from matplotlib.figure import Figure

from xaibench.report import explanation_figures, figure_set
from xaibench.results.memory import release_memory

# What the table-based figures read (cost points, experiments, explanations(), surrogates).
COLUMNS = ["model", "dataset", "method", "seed", "metric", "status", "explain_s", "explanation_key", "cell_key",
           "sample_id", "target", "n_samples", "model_params", "dataset_params", "method_params", "dataset_revision",
           "model_label", "dataset_label", "target_mode"]
# What pass 1 reads (cost means, the experiments and decision-tree rows in each range): not the explanations' columns.
PASS_ONE = ["model", "dataset", "method", "seed", "metric", "status", "explain_s", "explanation_key", "cell_key",
            "model_params", "dataset_params", "method_params", "model_revision", "dataset_revision", "n_samples",
            "target_mode", "explain_output"]
# (the setting's columns too: a cost point is a competitor in a setting, COST_KEYS; cell_key: its cost is a median
# over cells)
RANGE = ["model", "dataset"]
BATCH_ROWS = 20_000


def streamed_figures(path: str | os.PathLike[str], summary: pd.DataFrame, store: str | os.PathLike[str],
                     notes: list[str] | None = None, *, ranks: pd.DataFrame | None = None,
                     friedman: Mapping[str, Any] | None = None,
                     agreement: pd.DataFrame | None = None) -> dict[str, Figure]:
    """``figure_set.report_figures(load_table(path), summary, ...)`` for a table sorted as the suite writes it
    (``table.parquet`` of a sweep): the same figures under the same names, in the same order."""
    return dict(iter_streamed_figures(path, summary, store, notes, ranks=ranks, friedman=friedman,
                                      agreement=agreement))


def iter_streamed_figures(path: str | os.PathLike[str], summary: pd.DataFrame | Callable[[], pd.DataFrame],
                          store: str | os.PathLike[str], notes: list[str] | None = None, *,
                          ranks: pd.DataFrame | None = None, friedman: Mapping[str, Any] | None = None,
                          agreement: pd.DataFrame | None = None, cost_metric: str | None | bool = False
                          ) -> Iterator[tuple[str, Figure]]:
    """:func:`streamed_figures` as (name, figure) pairs, drawn when asked for: the summary's figures one at a
    time, then the file's (its pass over the ranges starts once the summary's figures are drawn). A caller that
    renders and frees each figure before asking for the next (``wandb_sink.log_sweep``) holds one at a time.
    The pass over the file's ranges runs first (at the first request), before any figure is drawn, and its
    transient memory is released (after the figures it started ~240 MB higher; the peak moved little: 1,035 vs
    1,056 MB at 10,000 cells, one run each). ``cost_metric``: ``figure_set.cost_metric`` of the whole summary when
    ``summary`` holds only its scored rows (the W&B run of a streamed sweep: its figures draw no other rows).

    ``summary`` may be a function that makes it (the W&B run of a streamed sweep, with ``cost_metric``): it is
    then made after the pass over the ranges, and, made or given, it is let go once the cost figures are drawn,
    so neither the pass nor the explanation figures run on top of it (27 MB at 10,000 cells, where those two
    phases make the run's peak; a caller that passes the frame keeps its own reference)."""
    if cost_metric is False:
        summary = summary if isinstance(summary, pd.DataFrame) else summary()
        cost_metric = figure_set.cost_metric(summary)
    table = _Ranges(path, cost_metric)
    release_memory()
    rows = summary if isinstance(summary, pd.DataFrame) else summary()
    del summary
    yield from figure_set.summary_figure_items(rows, notes, ranks=ranks, friedman=friedman, agreement=agreement)
    yield from figure_set.cost_items(table.costs(), figure_set.scored_rows(rows), notes)
    del rows  # the explanation figures read the file's ranges, no summary row
    release_memory()
    yield from explanation_figures.gallery_items(None, store, notes, groups=table.experiments())
    yield from explanation_figures.counterfactual_items(None, store, notes, groups=table.experiments())
    yield from explanation_figures.surrogate_items(None, store, notes, groups=table.experiments(trees=True))


class _Ranges:
    """Pass 1 over the file's (model, dataset) ranges: their row spans, the experiments in each, cost means."""

    def __init__(self, path: str | os.PathLike[str], cost_metric: str | None) -> None:
        self.file = pq.ParquetFile(path)
        names = self.file.schema_arrow.names
        self.columns = [c for c in COLUMNS if c in names]
        self.pass_one = [c for c in PASS_ONE if c in names]
        self.where: dict[tuple, tuple[int, int]] = {}  # experiment key -> its range's (start, stop) rows
        self.trees: set[tuple] = set()  # experiments with decision-tree rows
        self.lowest: dict[tuple, dict[bool, object]] = {}  # key -> {False: lowest explained seed, True: of trees}
        cost_parts = []
        for start, frame in self._ranges():
            span = (start, start + len(frame))
            for key, seed in _experiment_seeds(frame):
                self.where[key] = span
                self.lowest.setdefault(key, {})[False] = seed
            for key, seed in _experiment_seeds(explanation_figures.surrogate_rows(frame)):
                self.trees.add(key)
                self.lowest.setdefault(key, {})[True] = seed
            if cost_metric is not None:
                cost_parts.append(_cost_means(frame, cost_metric))
            del frame
            release_memory()  # each range's conversions: the pass's peak is one range's, not what piled up
        self.cost_rows = (pd.concat(cost_parts, ignore_index=True) if cost_parts
                          else pd.DataFrame(columns=["model", "dataset", "method", "status", "metric", "explain_s"]))

    def costs(self) -> pd.DataFrame:
        """A table whose ok rows of the cost metric give the whole table's mean cost per (model, dataset, method):
        one row each, holding that mean."""
        return self.cost_rows

    def experiments(self, *, trees: bool = False) -> Iterator[pd.DataFrame]:
        """``explanation_figures.experiments(table)`` (of the decision-tree rows with ``trees``), lazily: each
        experiment's rows read from its range."""
        cached: tuple[tuple[int, int], pd.DataFrame] | None = None
        for key in sorted(self.trees if trees else self.where):
            span = self.where[key]
            if cached is None or cached[0] != span:
                cached = None
                release_memory()  # the last range's rows and conversions, before the next range is read
                cached = (span, self._read(*span))
            frame = cached[1]
            frame = explanation_figures.surrogate_rows(frame) if trees else frame
            for rows in explanation_figures.experiments(frame):
                if _experiment_keys(rows) == [key]:
                    yield rows

    def _ranges(self) -> Iterator[tuple[int, pd.DataFrame]]:
        """(first row, rows) of each (model, dataset) range, in file order."""
        carry: pa.Table | None = None
        start = 0
        for group in range(self.file.metadata.num_row_groups):
            for batch in self.file.iter_batches(batch_size=BATCH_ROWS, row_groups=[group], columns=self.pass_one,
                                                use_threads=False):
                table = pa.Table.from_batches([batch])
                table = pa.concat_tables([carry, table]) if carry is not None else table
                cut = _last_range_start(table)
                for begin, end in _range_bounds(table.slice(0, cut)):
                    yield start, _frame(table.slice(begin, end - begin), start)
                    start += end - begin
                carry = table.slice(cut)
        if carry is not None and carry.num_rows:
            for begin, end in _range_bounds(carry):
                yield start, _frame(carry.slice(begin, end - begin), start)
                start += end - begin

    def _read(self, start: int, stop: int) -> pd.DataFrame:
        """The rows of ``start:stop`` that ``explanation_figures.experiments`` can pick, of all explained rows or of
        the decision-tree rows (explained rows at their experiment's lowest seed, or at its trees' lowest: it picks
        the same rows from these), indexed by their position in the table. Read a batch at a time and filtered on
        Arrow: the range's other rows are never held together or converted to pandas."""
        sizes = [self.file.metadata.row_group(i).num_rows for i in range(self.file.metadata.num_row_groups)]
        ends = np.cumsum(sizes)
        first, last = int(np.searchsorted(ends, start, side="right")), int(np.searchsorted(ends, stop - 1, side="right"))
        position, kept, rows = int(ends[first] - sizes[first]), [], []
        for group in range(first, last + 1):
            for batch in self.file.iter_batches(batch_size=BATCH_ROWS, row_groups=[group], columns=self.columns,
                                                use_threads=False):
                begin, end = max(start, position), min(stop, position + batch.num_rows)
                if begin < end:
                    part = pa.Table.from_batches([batch]).slice(begin - position, end - begin)
                    keep = self._picked(part)
                    kept.append(part.take(pa.array(keep)))
                    rows.append(begin + keep)
                position += batch.num_rows
        frame = (pa.concat_tables(kept) if kept else self.file.schema_arrow.empty_table().select(self.columns)
                 ).to_pandas()
        frame.index = pd.Index(np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64))
        return frame

    def _picked(self, part: pa.Table) -> np.ndarray:
        """Positions in ``part`` of its explained rows at their experiment's lowest explained seed, or, for
        decision-tree rows, at its trees' lowest (pass 1 noted both per experiment)."""
        key = part.column("explanation_key") if "explanation_key" in part.column_names else None
        explained = (np.ones(part.num_rows, dtype=bool) if key is None
                     else pc.fill_null(pc.not_equal(key, ""), False).to_numpy(zero_copy_only=False))
        columns = [c for c in explanation_figures.EXPERIMENT if c in part.column_names]
        if not part.num_rows or not explained.any():
            return np.flatnonzero(explained)
        from xaibench.results.collect.arrow_rows import row_ids

        ids = row_ids(part, columns)
        firsts = np.unique(ids, return_index=True)[1]  # one row of each experiment (ids are below num_rows)
        lowest = np.full((2, int(ids.max()) + 1), np.nan)  # [all explained rows, decision trees] x experiment
        for row, head in zip(firsts, part.select(columns).take(pa.array(firsts)).to_pylist()):
            seeds = self.lowest.get(tuple(head[c] for c in columns), {})
            lowest[:, ids[row]] = seeds.get(False, np.nan), seeds.get(True, np.nan)
        seed = part.column("seed").to_numpy(zero_copy_only=False).astype(np.float64)  # exact for any int seed
        trees = pc.fill_null(pc.equal(part.column("method"), "decision_tree"), False).to_numpy(zero_copy_only=False)
        return np.flatnonzero(explained & ((seed == lowest[0, ids]) | (trees & (seed == lowest[1, ids]))))


def _frame(table: pa.Table, start: int) -> pd.DataFrame:
    frame = table.to_pandas()
    frame.index = pd.RangeIndex(start, start + len(frame))
    return frame


def _range_ids(table: pa.Table) -> np.ndarray:
    from xaibench.results.collect.arrow_rows import row_ids

    return row_ids(table, RANGE) if table.num_rows else np.zeros(0, dtype=np.int64)


def _last_range_start(table: pa.Table) -> int:
    """Where the table's last (model, dataset) range begins (it may continue in the next batch)."""
    ids = _range_ids(table)
    changes = np.flatnonzero(ids[1:] != ids[:-1])
    return int(changes[-1]) + 1 if changes.size else 0


def _range_bounds(table: pa.Table) -> list[tuple[int, int]]:
    """(begin, end) rows of each (model, dataset) range of a table sorted by them."""
    ids = _range_ids(table)
    if not ids.size:
        return []
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    edges = np.r_[0, cuts, ids.size]
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _experiment_seeds(frame: pd.DataFrame) -> list[tuple[tuple, object]]:
    """The experiments (``explanation_figures.EXPERIMENT`` values) with explained rows in ``frame``, each with the
    seed ``experiments`` picks for it (its lowest explained seed)."""
    return [(tuple(rows.iloc[0][c] for c in explanation_figures.EXPERIMENT if c in rows.columns), rows.iloc[0]["seed"])
            for rows in explanation_figures.experiments(frame)]


def _experiment_keys(frame: pd.DataFrame) -> list[tuple]:
    """The experiments (``explanation_figures.EXPERIMENT`` values) with explained rows in ``frame``."""
    return [key for key, _ in _experiment_seeds(frame)]


def _cost_means(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One ok row of ``metric`` per cost point (``cost_scatter.COST_KEYS``: a competitor in a setting)
    holding its ``explain_s`` (``cost_scatter.cell_median_costs``: the median over its cells, which a range holds
    whole; the same bits as over the whole table, and the point's cost again when read back alone)."""
    from xaibench.report.figures.cost_scatter import COST_KEYS, cell_median_costs
    from xaibench.results.groups import setting_id

    ok = frame[(frame["status"] == "ok") & (frame["metric"] == metric)]
    ok = ok.assign(setting=setting_id(ok))
    means = cell_median_costs(ok, [c for c in COST_KEYS if c in ok.columns], "explain_s")
    return means.assign(status="ok", metric=metric)
