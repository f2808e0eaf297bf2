"""Derived table: per (model, dataset, method, metric) configuration, mean, CI, seeds, NaN/error rates and rank.

With one seed the mean is over samples and its CI is the per-sample percentile bootstrap. With several seeds the
mean is the mean over seeds of the per-seed means and its CI comes from the two-way bootstrap that resamples seeds
and sample ids at once (``results/bootstrap.py``): seeds are replicates of an experiment and a sample scored in
several seeds is still one sample, never several. ``n_seeds`` says which case a row is. Everything is computed
with group-wise array operations, so a 640k-row table summarises in a few seconds (``benchmarks/bench_summary.py``).

- ``summarizer``: ``summarize`` (a whole table) and ``Summarizer`` (a table given in chunks; ``MERGE``).
- ``chunk_statistics``, ``bootstrap_values``: one chunk's statistics and the values it leaves to bootstrap.
- ``intervals``: the bootstrap CIs, at the end (``BLOCK``, ``SPILL_BYTES``); ``ranks``: the ranks (``RANK_ROWS``).
- ``variants``: what differs between rows sharing the four names; ``columns``: the summary's and the input's columns.
- ``pieces``: the finished summary handed out a piece at a time (``SummaryPieces``); ``temp_frames``: frames
  waiting in a temporary file.

A test or benchmark that sets a constant (``MERGE``, ``BLOCK``, ``SPILL_BYTES``, ``RANK_ROWS``) or replaces
``release_memory`` must do it on the submodule that reads it: the names below are copies.
"""
from xaibench.results.aggregate.columns import CONFIG, GROUP, INPUT_COLUMNS, LABELS
from xaibench.results.aggregate.intervals import SPILL_BYTES
from xaibench.results.aggregate.pieces import SummaryPieces
from xaibench.results.aggregate.ranks import RANK_ROWS
from xaibench.results.aggregate.summarizer import Summarizer, summarize
from xaibench.results.bootstrap import bootstrap_ci

# The names of helpers that callers used when aggregate was one module (benchmarks/, tests/, docs/): kept importable.
from xaibench.results.aggregate.chunk_statistics import _TEXT
from xaibench.results.aggregate.chunk_statistics import partial_summary as _partial
from xaibench.results.aggregate.intervals import Intervals as _Intervals
from xaibench.results.aggregate.pieces import concat_releasing as _concat_releasing
from xaibench.results.aggregate.ranks import RankKeys as _RankKeys
from xaibench.results.aggregate.ranks import comparison_ranks as _ranks
from xaibench.results.aggregate.temp_frames import TempFrames as _Parts

__all__ = ["summarize", "Summarizer", "SummaryPieces", "bootstrap_ci", "GROUP", "CONFIG"]
