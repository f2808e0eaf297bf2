"""The summary of a results table: ``summarize`` of a whole table, ``Summarizer`` of one given in chunks.

A chunk's statistics (``chunk_statistics``), variant labels (``variants``), comparison and setting ids are finished
chunk by chunk; the CIs (``intervals``), ranks (``ranks``) and competitor labels wait for the end and are added to
the finished summary's pieces (``pieces``).
"""
from __future__ import annotations

import pandas as pd

from xaibench.results.aggregate.chunk_statistics import partial_summary
from xaibench.results.aggregate.columns import CONFIG
from xaibench.results.aggregate.intervals import Intervals
from xaibench.results.aggregate.pieces import SummaryPieces, competitor_map
from xaibench.results.aggregate.ranks import RankKeys
from xaibench.results.aggregate.temp_frames import TempFrames
from xaibench.results.aggregate.variants import variant_labels
from xaibench.results.groups import COMPETITOR_COLUMNS, comparison_id, setting_id
from xaibench.results.memory import release_memory
from xaibench.results.roles import pair_roles
from xaibench.results.row_columns import RowColumns
from xaibench.results.shared import SharedSamples

MERGE = 32  # Summarizer: every MERGE chunk summaries are concatenated into one frame and put in a temporary
# file (TempFrames) until the end (many small frames cost more memory than their rows; held, they grow with the table)


def summarize(table: pd.DataFrame, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """One row per (model, dataset, method, metric) configuration; ranks are 1 = best within a comparison group.

    Columns: the names; ``dataset_label``/``model_label`` (display names; the registry name when the table has
    none); ``variant`` (what differs between rows sharing the four names); ``competitor`` (method plus its
    differing parameters); ``comparison`` (group id); ``setting`` (the group without the metric: one model on
    one dataset); ``n_seeds``; ``family``; ``higher_is_better``; ``mean``; ``std`` (over all ok (seed, sample)
    values); ``n`` (samples: distinct sample ids with an ok score, the unit of the CI and of the paired tests;
    a sample scored in several seeds counts once, so three seeds of the same 10 samples give 10, as in
    ``statistics.pairwise_tests``); ``n_values`` (ok (seed, sample) values: 30 there); ``ci_low``/``ci_high``
    (NaN for one value: no CI can be computed); ``nan_rate`` (NaN share of scored (seed, sample) rows);
    ``error_rate`` (share of seeds whose cell errored on this metric); ``status``; ``message``; ``rank`` (of the
    means over the samples every competitor with a mean in the group scored, as ``xaibench report`` ranks:
    ``results/shared.py``; the means themselves where they all scored the same samples); ``shared_mean`` (that
    mean, controls' too: what ``statistics.controls_ahead`` compares, as in the report); ``model_accuracy``
    (test accuracy, mean over seeds); ``model_flag`` (``underfit`` if any seed's model is);
    ``role`` (``control`` for a control's rows, by the role its rows record: ``results/roles.py``; else "").
    """
    summarizer = Summarizer(n_boot=n_boot, level=level, seed=seed)
    summarizer.add(table)
    return summarizer.result()


class Summarizer:
    """``summarize`` of a table given in chunks; memory: one chunk and the last few chunks' summaries (the rest
    of the summary and the values to bootstrap wait in temporary files), then at the end the summary's own rows
    (``result``), or a piece of them at a time (``finish``: ``SummaryPieces``).

    Every (model, dataset, method) block must lie in one chunk, and chunks must come in (model, dataset, method)
    order, as ``collect.write_collected`` and ``collect.summarize_file`` make them (they cut between blocks of the
    sorted table). What depends only on a block (the statistics, variant labels, comparison and setting ids) is
    finished chunk by chunk and kept in the summary's final columns; the bootstrap runs in the blocks a whole
    table would make (``Intervals``); competitor labels and ranks, which compare methods across chunks, are
    added at the end. So the result equals ``summarize`` of the whole table, bit for bit.
    """

    def __init__(self, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> None:
        self.intervals = Intervals(n_boot=n_boot, level=level, seed=seed)
        self.parts: list[pd.DataFrame] = []  # the recent chunks' summaries (fewer than MERGE)
        self.merged = TempFrames()  # every MERGE chunks' summaries, concatenated, waiting in a temporary file
        self.n_groups = 0
        self.config: list[str] | None = None
        self.rank_keys = RankKeys()  # what the ranks need of the rows of settings not yet complete
        self.shared = SharedSamples()  # the means ranks compare: over the samples a group's competitors share
        self.competitors: set[tuple[str, str]] = set()  # distinct (method, method_params): competitor labels

    def add(self, table: pd.DataFrame) -> None:
        """Summarise one chunk's configurations (a (model, dataset, method) block never spans two chunks)."""
        if table.empty:
            return
        config = [c for c in CONFIG if c in table.columns]
        if self.config is not None and config != self.config:
            raise ValueError(f"chunks with different configuration columns: {self.config} and {config}")
        self.config = config
        part, shapes, (gid, ok) = partial_summary(table, config)
        self.intervals.add(self.n_groups, shapes)
        part["variant"] = variant_labels(part, config)  # rows sharing the four names lie in one block
        part["comparison"] = comparison_id(part)
        part["setting"] = setting_id(part)
        self.shared.add(table, part, gid, ok, self.n_groups)
        self.parts.append(part.drop(columns=[c for c in config if c not in COMPETITOR_COLUMNS]))
        self.n_groups += len(part)
        self.rank_keys.add(part)
        self.rank_keys.settle(self.shared)
        if "method_params" in part.columns:
            self.competitors.update(part[["method", "method_params"]].astype(str).drop_duplicates().itertuples(
                index=False, name=None))
        if len(self.parts) >= MERGE:  # only the recent parts: no copy of the whole summary so far
            self.merged.put(pd.concat(self.parts, ignore_index=True))
            self.parts = []

    def result(self) -> pd.DataFrame:
        """The summary of every chunk added (empty frame when none had rows)."""
        pieces = self.finish()
        summary = pieces.frame()
        pieces.close()
        return summary

    def finish(self) -> SummaryPieces:
        """The summary of every chunk added, kept in its temporary file and handed out a part at a time
        (``SummaryPieces``): the CIs, competitor labels and ranks are computed here for every row from what
        ``add`` kept of each row (the ranks compare methods across chunks), not from the whole summary."""
        if self.parts:
            self.merged.put(pd.concat(self.parts, ignore_index=True) if len(self.parts) > 1 else self.parts[0])
            self.parts = []
        columns = RowColumns(["ci_low", "ci_high", "rank", "shared_mean"], self.n_groups)  # a file, not memory
        self.intervals.result(columns)
        self.rank_keys.write(self.shared, columns)
        release_memory()  # what the bootstrap and the ranks freed, before the pieces are written
        return SummaryPieces(self.merged, columns, competitor_map(self.competitors), pair_roles(self.competitors))
