"""Derived table: per (model, dataset, method, metric) configuration, mean, CI, seeds, NaN/error rates and rank.

With one seed the mean is over samples and its CI is the per-sample percentile bootstrap. With several seeds the
mean is the mean over seeds of the per-seed means and its CI comes from the two-way bootstrap that resamples seeds
and sample ids at once (``results/bootstrap.py``): seeds are replicates of an experiment and a sample scored in
several seeds is still one sample, never several. ``n_seeds`` says which case a row is. Everything is computed
with group-wise array operations, so a 640k-row table summarises in a few seconds (``benchmarks/bench_summary.py``).
"""
from __future__ import annotations

import json
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from xaibench.results import bootstrap as boot
from xaibench.results.bootstrap import bootstrap_ci, chunk_bounds, interval_draws
from xaibench.results.groups import COMPETITOR_COLUMNS, comparison_id, competitor_labels, setting_id
from xaibench.results.memory import release_memory
from xaibench.results.roles import pair_roles, row_roles
from xaibench.results.row_columns import RowColumns
from xaibench.results.shared import SharedSamples
from xaibench.types import CONTROL_ROLE

__all__ = ["summarize", "Summarizer", "SummaryPieces", "bootstrap_ci", "GROUP", "CONFIG"]

GROUP = ["model", "dataset", "method", "metric"]
# Config columns that make two rows with the same names different experiments; seeds are replicates.
CONFIG = ["model_params", "dataset_params", "method_params", "params", "n_samples", "model_revision",
          "dataset_revision", "target_mode", "explain_output"]

# Every column summarize reads (a streaming caller converts only these to pandas).
INPUT_COLUMNS = GROUP + CONFIG + ["seed", "sample_id", "value", "status", "message", "family", "higher_is_better",
                                  "dataset_label", "model_label", "model_accuracy", "model_flag"]
_BLOCK = 4096  # groups bootstrapped in one array operation
_MERGE = 32  # Summarizer: every _MERGE chunk summaries are concatenated into one frame and put in a temporary
# file (_Parts) until the end (many small frames cost more memory than their rows; held, they grow with the table)
SPILL_BYTES = 2 * 2**20  # values waiting for their bootstrap block kept in memory; more go to a temporary file
RANK_ROWS = 4096  # _RankKeys: complete settings' rank keys go to a temporary file in batches of about this many rows
LABELS = {"dataset_label": "dataset", "model_label": "model"}  # display-name column -> name column


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
    table would make (``_Intervals``); competitor labels and ranks, which compare methods across chunks, are
    added at the end. So the result equals ``summarize`` of the whole table, bit for bit.
    """

    def __init__(self, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> None:
        self.intervals = _Intervals(n_boot=n_boot, level=level, seed=seed)
        self.parts: list[pd.DataFrame] = []  # the recent chunks' summaries (fewer than _MERGE)
        self.merged = _Parts()  # every _MERGE chunks' summaries, concatenated, waiting in a temporary file
        self.n_groups = 0
        self.config: list[str] | None = None
        self.rank_keys = _RankKeys()  # what the ranks need of the rows of settings not yet complete
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
        part, shapes, (gid, ok) = _partial(table, config)
        self.intervals.add(self.n_groups, shapes)
        part["variant"] = _variant_labels(part, config)  # rows sharing the four names lie in one block
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
        if len(self.parts) >= _MERGE:  # only the recent parts: no copy of the whole summary so far
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
        return SummaryPieces(self.merged, columns, _competitor_map(self.competitors), pair_roles(self.competitors))


class SummaryPieces:
    """A finished summary waiting in temporary files, its rows handed out a part (up to ``_MERGE`` chunks'
    configurations) at a time with their CIs, competitor labels and ranks: what ``Summarizer.result`` returns is
    ``frame()``, the concatenation of ``pieces()``. Writing (``collect.write_pieces``) and printing
    (``console.summary_blocks``) go piece by piece, so a large summary (120,000 rows at 10,000 cells) is never
    held whole; its CIs and ranks wait in ``RowColumns`` (a temporary file) and are read a piece's rows at a time.
    ``close()`` deletes the files."""

    def __init__(self, parts: _Parts, columns: RowColumns, competitors: dict[tuple[str, str], str],
                 roles: dict[tuple[str, str], str] | None = None) -> None:
        self.parts, self.columns_file, self.competitors = parts, columns, competitors
        self.roles = roles or {}  # (method, method_params) -> "control" or "" (results/roles.py)
        self.n_rows = columns.n_rows
        self.columns = list(_ORDER)  # each piece's columns

    def pieces(self) -> Iterator[pd.DataFrame]:
        """The summary's rows in order, a part at a time (each a frame with the summary's columns)."""
        offset = 0
        for part in self.parts.frames():
            stop = offset + len(part)
            part["ci_low"] = self.columns_file.read("ci_low", offset, stop)
            part["ci_high"] = self.columns_file.read("ci_high", offset, stop)
            part["competitor"] = _of_pairs(part, self.competitors, competitor_labels)
            part["rank"] = pd.Series(self.columns_file.read("rank", offset, stop), index=part.index).astype("Int64")
            part["shared_mean"] = self.columns_file.read("shared_mean", offset, stop)
            part["role"] = _of_pairs(part, self.roles, row_roles)
            offset = stop
            yield part[_ORDER]

    def frame(self, columns: Iterable[str] | None = None) -> pd.DataFrame:
        """The whole summary (empty frame when it has no rows), or only its ``columns`` (those it has, in the
        summary's order): the W&B sweep run's statistics and figures read a few columns of every row."""
        kept = None if columns is None else set(columns)
        pieces = [part if kept is None else part[[c for c in part.columns if c in kept]].copy()
                  for part in self.pieces()]  # each whole part goes once its columns are taken
        if not pieces:
            return pd.DataFrame()
        return pieces[0] if len(pieces) == 1 else _concat_releasing(pieces)

    def close(self) -> None:
        """Delete the temporary files (the pieces are gone)."""
        self.parts.close()
        self.columns_file.close()


class _RankKeys:
    """Each summary row's mean, direction, comparison group (as a code) and competitor (as a code), held for the
    rows of the settings not yet complete: once about ``RANK_ROWS`` rows of complete settings wait, their keys,
    with the value each row is ranked on (``SharedSamples``), go to a temporary file as one batch, and ``write``
    ranks the batches one at a time at the end (a comparison group lies in one setting, so in one batch; the
    controls, which get no rank, are known only then: ``pair_roles`` of the whole table). Memory: about one batch,
    not the summary's rows (which grew with the cells)."""

    def __init__(self) -> None:
        self.pending: dict[str, list[np.ndarray]] = {"mean": [], "higher": [], "group": [], "method": []}
        self.start = 0  # the summary row of the first pending key (the rows before are in ``batches``)
        self.codes: dict[str, int] = {}  # the pending rows' comparison ids (pruned after each batch)
        self.next_code = 0
        self.pairs: dict[tuple[str, str], int] = {}  # each distinct (method, method_params): its code
        self.batches = _Parts()

    def add(self, part: pd.DataFrame) -> None:
        self.pending["mean"].append(part["mean"].to_numpy(dtype=np.float64))
        self.pending["higher"].append(part["higher_is_better"].to_numpy(dtype=bool))
        groups = np.empty(len(part), dtype=np.int64)
        for position, comparison in enumerate(part["comparison"]):
            groups[position] = code = self.codes.setdefault(comparison, self.next_code)
            self.next_code += code == self.next_code
        self.pending["group"].append(groups)
        params = part["method_params"].astype(str) if "method_params" in part.columns else pd.Series("", part.index)
        codes, uniques = pd.factorize(pd.MultiIndex.from_arrays([part["method"].astype(str), params]))
        known = np.array([self.pairs.setdefault(tuple(pair), len(self.pairs)) for pair in uniques], dtype=np.int64)
        self.pending["method"].append(known[codes] if len(codes) else codes.astype(np.int64))

    def settle(self, shared: SharedSamples, *, rows: int | None = None) -> None:
        """Put the keys of the complete settings' rows in a batch once at least ``rows`` (``RANK_ROWS``) wait."""
        n = shared.complete - self.start
        if n < max(RANK_ROWS if rows is None else rows, 1):
            return
        keys = {name: np.concatenate(arrays) for name, arrays in self.pending.items()}
        batch = {name: array[:n] for name, array in keys.items()}
        taken, values = shared.take()  # the shared means of rows before ``shared.complete``
        batch["mean"] = batch["mean"].copy()
        batch["mean"][taken - self.start] = values
        self.batches.put(batch)
        self.pending = {name: [array[n:].copy()] for name, array in keys.items()}
        self.start = shared.complete
        live = set(np.unique(self.pending["group"][0]).tolist())
        self.codes = {comparison: code for comparison, code in self.codes.items() if code in live}

    def write(self, shared: SharedSamples, columns: RowColumns) -> None:
        """``_ranks`` of the summary these rows make (the summary's row order), of the means over the samples
        every ranked competitor of a group scored (``shared``), as the report ranks, into ``columns``' ``rank``
        (NaN: no rank), and those means (controls' too) into its ``shared_mean``. Controls (``pair_roles`` of
        every (method, method_params) of the table) are reference
        rows: no rank (``statistics.shared_sample_ranks``)."""
        shared.finish()
        self.settle(shared, rows=1)
        roles = pair_roles(self.pairs)
        control = np.array([roles.get(pair, "") == CONTROL_ROLE for pair in self.pairs], dtype=bool)
        offset = 0
        for batch in self.batches.frames():
            ranked = batch["mean"]  # the shared-sample mean, controls' too: the summary's ``shared_mean``
            columns.write("shared_mean", offset, ranked)
            ranked[control[batch["method"]]] = np.nan
            keys = pd.DataFrame({"mean": ranked, "higher_is_better": batch["higher"], "comparison": batch["group"]})
            ranks = _ranks(keys)  # per group: the same ranks with the groups' codes as with their ids
            columns.write("rank", offset, ranks.to_numpy(dtype=np.float64, na_value=np.nan))
            offset += len(ranked)
        self.batches.close()


def _competitor_map(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """``competitor_labels`` of every distinct (method, method_params) of the summary (labels depend on all of a
    method's parameter sets in the table)."""
    if not pairs:
        return {}
    frame = pd.DataFrame(sorted(pairs), columns=["method", "method_params"])
    return dict(zip(frame.itertuples(index=False, name=None), competitor_labels(frame)))


def _of_pairs(part: pd.DataFrame, values: dict[tuple[str, str], str],
              of_rows: Callable[[pd.DataFrame], pd.Series]) -> pd.Series:
    """The part's rows' ``values`` (computed over the whole summary's (method, method_params) pairs: competitor
    labels and roles depend on every pair of the table), or ``of_rows(part)`` where it has no ``method_params``."""
    if "method_params" not in part.columns:
        return of_rows(part)
    keys = pd.MultiIndex.from_frame(part[["method", "method_params"]].astype(str))
    return pd.Series(keys.map(values), index=part.index, dtype="string")


class _Parts:
    """Frames put aside in an anonymous temporary file (pickled: dtypes, objects and column index as they were)
    and taken back in order. While a table streams, the summary of what has passed waits there, not in memory:
    120,000 rows (10,000 cells x 20 metrics) are about 44 MB as frames, which made a sweep's memory grow with its
    cells."""

    def __init__(self) -> None:
        self.file = None  # opened on the first put
        self.count = 0

    def put(self, frame: pd.DataFrame) -> None:
        if self.file is None:
            self.file = tempfile.TemporaryFile(prefix="xaibench-summary-")
        pickle.dump(frame, self.file, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += 1

    def frames(self) -> Iterator[pd.DataFrame]:
        """Every frame put, in order, read back one at a time (again on every call)."""
        position = 0
        for _ in range(self.count):
            if self.file is None:  # closed meanwhile
                return
            self.file.seek(position)  # another reader may have moved it
            frame = pickle.load(self.file)
            position = self.file.tell()
            yield frame

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.file, self.count = None, 0


def _concat_releasing(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """``pd.concat(parts, ignore_index=True)`` of frames with the same columns, made a column at a time while the
    parts let go of it, so that the summary is not held twice (its parts and the whole: 160 MB at 10,000 cells).
    The parts are emptied."""
    columns = parts[0].columns
    whole = pd.concat([part.iloc[:, :0] for part in parts], ignore_index=True)  # the index and column index
    for column in columns:
        whole[column] = pd.concat([part[column] for part in parts], ignore_index=True)
        for part in parts:
            del part[column]
    whole.columns = columns  # pd.concat's column index (its dtype too)
    return whole


def _partial(table: pd.DataFrame, config: list[str]) -> tuple[pd.DataFrame, list, tuple[np.ndarray, np.ndarray]]:
    """Per-configuration statistics of one chunk (sorted by the keys) before CIs, labels and ranks, the values to
    bootstrap (``_shapes``), and each table row's configuration (its row of the statistics) and ok flag."""
    grouped = table.groupby(GROUP + config, sort=True, dropna=False)
    summary = grouped.size().reset_index().drop(columns=0)
    gid = grouped.ngroup().to_numpy()
    n_groups = len(summary)
    first = _first_rows(gid, n_groups)
    seeds = table["seed"].to_numpy() if "seed" in table.columns else np.zeros(len(table), dtype=np.int64)
    status = table["status"].astype(str)
    ok = _equals(status, "ok")

    summary = summary.assign(**_labels(table, first), **_descriptors(table, gid, first, seeds, status, ok))
    stats, shapes = _scores(table, gid, seeds, ok, n_groups)
    return summary.assign(**stats, **_model_quality(table, gid, seeds, n_groups)), shapes, (gid, ok)


_ORDER = ["model", "dataset", "method", "metric", "dataset_label", "model_label", "variant", "competitor",
          "comparison", "setting", "n_seeds", "family", "higher_is_better", "mean", "std", "n", "n_values", "ci_low",
          "ci_high", "nan_rate", "error_rate", "status", "message", "rank", "shared_mean", "model_accuracy",
          "model_flag", "role"]


def _first_rows(gid: np.ndarray, n_groups: int) -> np.ndarray:
    """The position of each group's first row (rows in table order)."""
    index = np.full(n_groups, -1)
    order = np.arange(gid.size)[::-1]
    index[gid[order]] = order  # the last assignment wins: the first row of each group
    return index


def _equals(column: pd.Series, value: str) -> np.ndarray:
    """``column == value`` as a numpy bool array (missing values are not equal)."""
    return (column == value).to_numpy(dtype=bool, na_value=False)


def _labels(table: pd.DataFrame, first: np.ndarray) -> dict:
    """Display names: each group's first row's label, its name where the label is empty."""
    out = {}
    for label, name in LABELS.items():
        source = table[label] if label in table.columns else table[name]
        names = table[name].iloc[first].astype(str).to_numpy()
        values = source.iloc[first].astype(str).fillna("").to_numpy()
        out[label] = np.where(values == "", names, values)
    return out


def _descriptors(table: pd.DataFrame, gid: np.ndarray, first: np.ndarray, seeds: np.ndarray, status: pd.Series,
                 ok: np.ndarray) -> dict:
    """Family, direction, seed count, status, message, NaN and error rates per group."""
    n_groups = len(first)
    n_seeds = pd.Series(seeds).groupby(gid, sort=True).nunique().to_numpy()
    counts = {s: np.bincount(gid[_equals(status, s)], minlength=n_groups)
              for s in ("error", "nan", "not_applicable")}  # rows per group with this status
    error = _equals(status, "error")
    error_seeds = pd.Series(seeds[error]).groupby(gid[error]).nunique()
    error_seeds = error_seeds.reindex(range(n_groups), fill_value=0).to_numpy()
    not_ok = np.flatnonzero(~ok)  # the first message of a row that is not ok, per group
    messages = pd.Series(table["message"].iloc[not_ok].astype(str).to_numpy())
    keep = (messages != "").to_numpy()
    message = messages[keep].groupby(gid[not_ok][keep]).first().reindex(range(n_groups), fill_value="")
    scored = (table["sample_id"].astype(str) != "").to_numpy(dtype=bool, na_value=True)
    family, higher = _first_values(table, gid, first)
    return {
        "n_seeds": n_seeds.astype(np.int64),
        "family": family,
        "higher_is_better": higher,
        "nan_rate": counts["nan"] / np.maximum(np.bincount(gid[scored], minlength=n_groups), 1),
        "error_rate": error_seeds / np.maximum(n_seeds, 1),
        "status": np.where(counts["error"] > 0, "error",
                           np.where(counts["not_applicable"] > 0, "not_applicable", "ok")),
        "message": message.to_numpy(dtype=object),
    }


def _first_values(table: pd.DataFrame, gid: np.ndarray, first: np.ndarray) -> tuple[pd.api.extensions.ExtensionArray,
                                                                                  np.ndarray]:
    """Each group's first family and direction that is not missing (the first row's, unless it lacks one)."""
    columns = table[["family", "higher_is_better"]].iloc[first]
    if columns.isna().to_numpy().any():
        columns = table.groupby(gid, sort=True)[["family", "higher_is_better"]].first()
    family = pd.array(columns["family"].to_numpy(dtype=object), dtype=_TEXT)  # typed as text even when all
    # missing: a chunk's summary would otherwise infer object, and a streamed summary's column with it
    return family, columns["higher_is_better"].astype(bool).to_numpy()


_TEXT = pd.Series(["text"]).dtype  # what pandas infers for a column of strings (str on pandas 3, else object)


def _scores(table: pd.DataFrame, gid: np.ndarray, seeds: np.ndarray, ok: np.ndarray,
            n_groups: int) -> tuple[dict, list]:
    """Mean over seeds of per-seed means, pooled std of each group's ok values, ``n`` (its distinct scored sample
    ids: a sample scored in several seeds counts once) and ``n_values`` (its ok values), and the groups' values
    for the bootstrap: ``[(shape, group ids, values (groups, ...))]``, one entry per shape (``_shapes``)."""
    values = table["value"].to_numpy(dtype=np.float64)[ok]
    g, s = gid[ok], seeds[ok]
    sample = pd.factorize(table["sample_id"].astype(str)[ok], sort=True)[0]  # codes in the ids' sorted order
    order = np.lexsort((sample, s, g))  # deterministic whatever the row order of the table
    values, g, s, sample = values[order], g[order], s[order], sample[order]
    per_seed = pd.DataFrame({"g": g, "s": s, "v": values}).groupby(["g", "s"], sort=True)["v"].agg(["mean", "size"])
    mean = per_seed["mean"].groupby(level="g").mean().reindex(range(n_groups))
    std = pd.Series(values).groupby(g).std(ddof=1).reindex(range(n_groups))
    dense = _dense_ranks(g, sample)  # 0..N-1: the sample's place among its group's N distinct sample ids
    n = np.zeros(n_groups, dtype=np.int64)
    np.maximum.at(n, g, dense + 1)  # distinct sample ids: a sample scored in several seeds counts once
    stats = {"mean": mean.to_numpy(), "std": std.to_numpy(), "n": n,
             "n_values": np.bincount(g, minlength=n_groups)}
    return stats, _shapes(values, dense, per_seed)


def _dense_ranks(g: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each value's code as ``0..N-1`` among the ``N`` distinct codes of its group (in code order)."""
    order = np.lexsort((codes, g))
    group, code = g[order], codes[order]
    new_group = np.r_[True, group[1:] != group[:-1]]
    dense = np.cumsum(new_group | np.r_[True, code[1:] != code[:-1]]) - 1
    ranks = np.empty_like(dense)
    ranks[order] = dense - np.maximum.accumulate(np.where(new_group, dense, 0))
    return ranks


def _shapes(values: np.ndarray, samples: np.ndarray,
            per_seed: pd.DataFrame) -> list[tuple[tuple, np.ndarray, np.ndarray]]:
    """Groups bucketed by shape, each bucket's values as one array.

    One seed: shape ``("samples", (n,))``, values ``(groups, n)``. Several: shape ``("grid", (S, N))`` for ``S``
    seeds and ``N`` distinct sample ids (``samples``: each value's), values ``(groups, S * N)`` with seed ``s``'s
    score of sample ``i`` at ``s * N + i`` and NaN where that seed did not score that sample: the two-way bootstrap
    resamples a sample id in every seed at once.
    """
    sizes = per_seed["size"].to_numpy()
    starts = np.cumsum(sizes) - sizes  # also right when no value is ok (no groups)
    groups = per_seed.index.get_level_values("g").to_numpy()
    if not groups.size:
        return []
    first = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])  # each group's first (group, seed) row
    n_seeds = np.diff(np.r_[first, groups.size])
    seed_of = np.repeat(np.arange(groups.size) - np.repeat(first, n_seeds), sizes)  # 0..S-1 per value
    counts = np.add.reduceat(sizes, first)  # values per group
    n_samples = np.maximum.reduceat(samples, starts[first]) + 1
    buckets: dict[tuple, list[int]] = {}  # shape -> positions in ``first``
    for position in range(first.size):
        shape = (("samples", (int(counts[position]),)) if n_seeds[position] == 1
                 else ("grid", (int(n_seeds[position]), int(n_samples[position]))))
        buckets.setdefault(shape, []).append(position)
    out = []
    for shape, members in sorted(buckets.items()):
        members = np.array(members)
        begin, count = starts[first[members]], counts[members]
        index = np.repeat(begin - np.cumsum(count) + count, count) + np.arange(count.sum())  # their values
        if shape[0] == "samples":
            block = values[index].reshape(len(members), shape[1][0])
        else:
            n = shape[1][1]
            block = np.full((len(members), shape[1][0] * n), np.nan)
            block[np.repeat(np.arange(len(members)), count), seed_of[index] * n + samples[index]] = values[index]
        out.append((shape, groups[first[members]], block))
    return out


class _Intervals:
    """Bootstrap CIs, one array operation per _BLOCK groups of one shape, in group order.

    Groups arrive chunk by chunk and wait to the end; then each shape's groups are bootstrapped _BLOCK at a time
    in group order, so the blocks are the same whether the table came whole or in chunks (each block draws from
    its own ``default_rng(seed)``: the order of the blocks does not matter). The waiting values grow with the
    table: beyond ``SPILL_BYTES`` they wait in an anonymous temporary file (``_Spilled``) and are read back piece
    by piece for their block (the same float64 values). Waiting to the end keeps a block's bootstrap (~50 MB for
    4,096 groups) from running on top of a chunk being read and written, where a large table's first full blocks
    used to fall (memory then grew with the cells).
    """

    def __init__(self, *, n_boot: int, level: float, seed: int) -> None:
        self.n_boot, self.level, self.seed = n_boot, level, seed
        self.waiting: dict[tuple, list] = {}  # shape -> [(group ids, values) or _Spilled]
        self.columns: RowColumns | None = None  # where the bounds go (``result``)
        self.held = 0  # bytes of waiting group ids and values in memory
        self.spill = None  # the temporary file, opened on first use

    def add(self, offset: int, shapes: list[tuple[tuple, np.ndarray, np.ndarray]]) -> None:
        for shape, groups, block in shapes:
            self.waiting.setdefault(shape, []).append(self._keep(groups + offset, block))

    def result(self, columns: RowColumns) -> None:
        """Bootstrap every waiting group; its bounds go to ``columns``' ``ci_low`` and ``ci_high`` (NaN where a
        group has none), not to memory (24 bytes a summary row held to the end, which grew with the cells)."""
        self.columns = columns
        for shape in sorted(self.waiting):
            self._run(shape)
            release_memory()  # the shape's blocks and draws: trimmed before the next shape (flat in the shapes)
        if self.spill is not None:
            self.spill.close()
            self.spill = None

    def _keep(self, ids: np.ndarray, values: np.ndarray):  # -> tuple[np.ndarray, np.ndarray] | _Spilled
        """``ids`` and ``values`` in memory while the waiting ones fit ``SPILL_BYTES``, else written to the spill
        file (the ids too: 8 bytes a group, which grew with the table)."""
        if self.held + ids.nbytes + values.nbytes <= SPILL_BYTES:
            self.held += ids.nbytes + values.nbytes
            return ids, values
        if self.spill is None:
            self.spill = tempfile.TemporaryFile(prefix="xaibench-bootstrap-")
        self.spill.seek(0, 2)
        spilled = _Spilled(self.spill.tell(), values.shape)
        self.spill.write(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
        self.spill.write(np.ascontiguousarray(values, dtype=np.float64).tobytes())
        return spilled

    def _load(self, waiting) -> tuple[np.ndarray, np.ndarray]:
        """Waiting group ids and values back in memory (read from the spill file if they were written there)."""
        if not isinstance(waiting, _Spilled):
            self.held -= waiting[0].nbytes + waiting[1].nbytes
            return waiting
        self.spill.seek(waiting.offset)
        n_ids, count = waiting.shape[0], int(np.prod(waiting.shape))
        ids = np.frombuffer(self.spill.read(n_ids * 8), dtype=np.int64, count=n_ids)
        values = np.frombuffer(self.spill.read(count * 8), dtype=np.float64, count=count).reshape(waiting.shape)
        return ids, values

    def _run(self, shape: tuple) -> None:
        with _one_blas_thread():
            self._bootstrap(shape)

    def _bootstrap(self, shape: tuple) -> None:
        """Every waiting group of one shape, in blocks of _BLOCK groups in group order, as ``mean_intervals`` of
        each block would bound them (the same chunks of ``QUANTILE_ROWS`` complete or gapped groups, so the same
        bits), but streamed: the values are loaded piece by piece and a chunk is bootstrapped as soon as it is
        known to be whole, so about one chunk per kind is in memory, not a block (4,096 groups of 5 seeds x 150
        sample ids were 25 MB, and a shape's block filled up with the table's size)."""
        (kind, dims), queue = shape, self.waiting.pop(shape)[::-1]
        if kind == "samples" and dims == (1,):  # one value: no CI can be computed (NaN, as the columns start)
            return
        n_seeds, n_samples = dims if kind == "grid" else (1, 0)
        draws = interval_draws(int(np.prod(dims)), n_seeds=n_seeds, n_samples=n_samples, n_boot=self.n_boot,
                               seed=self.seed)
        streams: dict[bool, _Chunks] = {}  # complete (or one seed) / with gaps -> its groups not yet bootstrapped
        in_block = 0
        while queue:
            ids, values = self._load(queue.pop())  # the in-memory pieces go as they are used
            start = 0
            while start < len(ids):
                stop = start + min(len(ids) - start, _BLOCK - in_block)
                rows = slice(start, stop)
                complete = (np.isfinite(values[rows]).all(axis=1) if n_seeds > 1
                            else np.ones(stop - start, dtype=bool))
                for whole in (True, False):
                    members = np.flatnonzero(complete == whole)
                    if members.size:
                        stream = streams.setdefault(whole, _Chunks())
                        stream.add(ids[rows][members], values[rows][members])
                        while stream.count >= boot.QUANTILE_ROWS + 2:  # not the block's last chunk: bootstrap it
                            self._bound(*stream.take(boot.QUANTILE_ROWS), draws)
                in_block, start = in_block + stop - start, stop
                if in_block == _BLOCK:
                    self._end_block(streams, draws)
                    in_block = 0
        self._end_block(streams, draws)

    def _end_block(self, streams: dict[bool, _Chunks], draws: tuple) -> None:
        """The block's last chunk of each kind: ``_row_chunks`` of what is left (a last single group joins the
        chunk before it, which is why a chunk waits until two more groups follow it)."""
        for stream in streams.values():
            if stream.count:
                ids, values = stream.take(stream.count)
                for rows in boot._row_chunks(len(ids)):
                    self._bound(ids[rows], values[rows], draws)
        streams.clear()

    def _bound(self, ids: np.ndarray, values: np.ndarray, draws: tuple) -> None:
        low, high = chunk_bounds(values, slice(None) if draws[0] == 1 else np.arange(len(values)), draws,
                                 level=self.level)
        self.columns.scatter("ci_low", ids, low)
        self.columns.scatter("ci_high", ids, high)


class _Chunks:
    """Group ids and their values waiting to be bootstrapped, in order, taken from the front."""

    def __init__(self) -> None:
        self.ids: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.count = 0

    def add(self, ids: np.ndarray, values: np.ndarray) -> None:
        self.ids.append(ids)
        self.values.append(values)
        self.count += len(ids)

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` groups (copies: what is left holds no reference to them)."""
        ids, values = np.concatenate(self.ids), np.concatenate(self.values)
        self.ids, self.values = ([ids[n:].copy()], [values[n:].copy()]) if n < len(ids) else ([], [])
        self.count = len(ids) - n
        return ids[:n], values[:n]


@dataclass(frozen=True)
class _Spilled:
    """Waiting group ids and values written to ``_Intervals.spill``: where (byte offset; the ids, then the values)
    and the values' ``(groups, values)`` shape."""

    offset: int
    shape: tuple[int, ...]


def _one_blas_thread():  # -> a context manager
    """The bootstrap's matrix products on one BLAS thread. Their last bits depend on how BLAS splits them between
    threads, i.e. on the machine's core count: on one thread the CIs are the same on every machine of one CPU
    kind. It also halves the summary's CPU time (OpenBLAS's threads spin between the many small products)."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


_BLAS = None  # threadpoolctl's controller, made on first use


def _model_quality(table: pd.DataFrame, gid: np.ndarray, seeds: np.ndarray, n_groups: int) -> dict:
    """Test accuracy (mean over seeds) and the underfit flag (set when any seed's model underfits)."""
    if "model_accuracy" not in table.columns:
        return {"model_accuracy": np.full(n_groups, np.nan), "model_flag": np.full(n_groups, "", dtype=object)}
    frame = pd.DataFrame({"g": gid, "s": seeds, "acc": table["model_accuracy"].to_numpy(dtype=np.float64)})
    accuracy = frame.groupby(["g", "s"])["acc"].first().groupby(level="g").mean().reindex(range(n_groups))
    underfit = (_equals(table["model_flag"].astype(str), "underfit") if "model_flag" in table.columns
                else np.zeros(len(table), dtype=bool))
    return {"model_accuracy": accuracy.to_numpy(),
            "model_flag": np.where(np.bincount(gid[underfit], minlength=n_groups) > 0, "underfit", "")}


def _variant_labels(summary: pd.DataFrame, config: list[str]) -> list[str]:
    """Name what differs between rows sharing (model, dataset, method, metric), e.g. ``method.n_steps=64``.

    Empty when a combination was run with one configuration only (the usual case).
    """
    labels = [""] * len(summary)
    shared = np.flatnonzero(summary.duplicated(GROUP, keep=False).to_numpy())
    if not shared.size:
        return labels
    rows = summary.iloc[shared]
    groups = rows.groupby(GROUP, sort=False).ngroup().to_numpy()
    columns = [rows[c].to_numpy(dtype=object) for c in config]
    parsed: dict[str, dict] = {}  # the same parameter JSON recurs on many rows: parse it once
    order = np.argsort(groups, kind="stable")
    for members in np.split(order, np.flatnonzero(np.diff(groups[order])) + 1):  # one group's rows at a time
        values = [_flatten(tuple(column[i] for column in columns), config, parsed) for i in members]
        keys = sorted({k for row in values for k in row})
        differing = [k for k in keys if len({repr(row.get(k)) for row in values}) > 1]
        for i, row in zip(members, values):
            labels[shared[i]] = " ".join(f"{k}={row.get(k)}" for k in differing)
    return labels


def _flatten(values: tuple, config: list[str], parsed: dict[str, dict]) -> dict:
    prefixes = {"model_params": "model.", "dataset_params": "dataset.", "method_params": "method.", "params": "metric."}
    out = {}
    for column, value in zip(config, values):
        if column in prefixes:
            text = value or "{}"
            if text not in parsed:
                parsed[text] = json.loads(text)
            for k, v in parsed[text].items():
                out[prefixes[column] + k] = v
        else:
            out[column] = value
    return out


def _ranks(summary: pd.DataFrame) -> pd.Series:
    """Rank (1 = best, ties share the best rank) of the ranked mean within its comparison group, by declared direction;
    means equal up to float rounding tie (``statistics.snap_ties``)."""
    from xaibench.results.statistics import snap_ties

    signed = summary["mean"].where(~summary["higher_is_better"], -summary["mean"])  # smaller = better
    return snap_ties(signed, summary["comparison"]).groupby(summary["comparison"]).rank(method="min").astype("Int64")
