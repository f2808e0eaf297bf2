"""Ranks of the summary's rows within their comparison group: each row's rank key kept in batches of complete
settings (``RankKeys``), ranked at the end by the means over the samples every competitor shares."""
from __future__ import annotations

import numpy as np
import pandas as pd

from xaibench.results.aggregate.temp_frames import TempFrames
from xaibench.results.roles import pair_roles
from xaibench.results.row_columns import RowColumns
from xaibench.results.shared import SharedSamples
from xaibench.types import CONTROL_ROLE

RANK_ROWS = 4096  # RankKeys: complete settings' rank keys go to a temporary file in batches of about this many rows


class RankKeys:
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
        self.batches = TempFrames()

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
        """``comparison_ranks`` of the summary these rows make (the summary's row order), of the means over the samples
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
            ranks = comparison_ranks(keys)  # per group: the same ranks with the groups' codes as with their ids
            columns.write("rank", offset, ranks.to_numpy(dtype=np.float64, na_value=np.nan))
            offset += len(ranked)
        self.batches.close()


def comparison_ranks(summary: pd.DataFrame) -> pd.Series:
    """Rank (1 = best, ties share the best rank) of the ranked mean within its comparison group, by declared direction;
    means equal up to float rounding tie (``statistics.snap_ties``)."""
    from xaibench.results.statistics import snap_ties

    signed = summary["mean"].where(~summary["higher_is_better"], -summary["mean"])  # smaller = better
    return snap_ties(signed, summary["comparison"]).groupby(summary["comparison"]).rank(method="min").astype("Int64")
