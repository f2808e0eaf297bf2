"""What a streamed summary ranks: each configuration's mean over the samples every ranked competitor of its
comparison group scored, as ``statistics.shared_sample_ranks`` computes it for the report.

A competitor's ``mean`` skips its NaN samples and the seeds whose cell failed, so ranking means would rank a method
on the easy samples it managed. The report ranks on the (seed, sample) values every competitor with a mean scored;
``SharedSamples`` gives the summary's ``rank`` the same values while the table streams by. A comparison group lies
within one (model, dataset) setting, and chunks come in (model, dataset, method) order, so the ok values of one
setting are held until the next setting starts (memory: one setting's scores, not the table's). Where every ranked
competitor of a group scored the same (seed, sample) values (no NaN, no failed seed: the usual case), the value
ranked is the ``mean`` itself, bit for bit, so such ranks are those of the means.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SharedSamples"]

_SETTING = ["model", "dataset"]


class SharedSamples:
    """Shared-sample means of the summary rows whose own samples the shared ones do not cover, chunk by chunk."""

    def __init__(self) -> None:
        self.pending: list[pd.DataFrame] = []  # ok values of the setting the last chunk ended in
        self.pending_setting: tuple | None = None
        self.finished: set[tuple] = set()  # settings whose shared means are computed
        # comparison ids and sample ids as integers (fast to group). A comparison lies in one setting: its code is
        # forgotten once the setting is complete (the pending settings' ids are held, not the table's). Sample
        # codes are kept, in the order of first appearance: a sample scored twice in a row is averaged in their
        # order (``_shared``), so their order is part of the result's last bits; they grow with the distinct
        # sample ids of the table (its datasets' explained samples), not with its cells.
        self.comparisons: dict[str, int] = {}
        self.next_comparison = 0
        self.samples: dict[str, int] = {}
        self.rows: list[np.ndarray] = []  # summary rows ranked on a shared mean other than their mean ...
        self.values: list[np.ndarray] = []  # ... and that mean (NaN: the group's competitors share no sample)
        self.complete = 0  # summary rows before this one are of complete settings (their shared means are known)
        self.n_rows = 0  # summary rows seen

    def add(self, table: pd.DataFrame, part: pd.DataFrame, gid: np.ndarray, ok: np.ndarray, offset: int) -> None:
        """The ok values of one chunk (``gid``: each table row's summary row in ``part``, the chunk's summary
        starting at row ``offset`` of the whole summary, with its ``comparison`` ids)."""
        settings = list(part[_SETTING].astype(str).itertuples(index=False, name=None))
        if self.finished.intersection(settings):
            raise ValueError("chunks out of (model, dataset, method) order: a setting came back after the next one")
        last = settings[-1]
        rows = gid[ok]
        samples, ids = pd.factorize(table["sample_id"])  # the chunk's few distinct ids, then codes
        samples = samples[ok]
        values = pd.DataFrame({
            "row": rows + offset, "comparison": self._comparison_codes(part["comparison"])[rows],
            "seed": table["seed"].to_numpy()[ok] if "seed" in table.columns else 0,
            "sample": np.array([self.samples.setdefault(str(t), len(self.samples)) for t in ids],
                               dtype=np.int64)[samples] if len(ids) else samples,
            "value": table["value"].to_numpy(dtype=np.float64)[ok]})
        in_last = np.array([s == last for s in settings], dtype=bool)  # the setting the chunk ends in
        current = in_last[rows]
        if self.pending_setting == last:  # it goes on in the next chunk, maybe
            done, self.pending = [values[~current]], [*self.pending, values[current]]
        else:  # the pending setting is complete
            done, self.pending = [*self.pending, values[~current]], [values[current]]
            self.finished.update([self.pending_setting] if self.pending_setting is not None else [])
            self.complete = offset + int(np.argmax(in_last))  # the last setting's first row (its rows are contiguous)
        self._shared(pd.concat(done) if len(done) > 1 else done[0])
        self.finished.update(s for s in settings if s != last)
        if self.pending_setting != last:
            self._prune()
        self.pending_setting = last
        self.n_rows = offset + len(part)

    def _comparison_codes(self, texts) -> np.ndarray:
        """Each comparison id's integer code (the same id, the same code, while its setting is pending)."""
        codes = np.empty(len(texts), dtype=np.int64)
        for position, text in enumerate(texts):
            code = self.comparisons.setdefault(str(text), self.next_comparison)
            if code == self.next_comparison:
                self.next_comparison += 1
            codes[position] = code
        return codes

    def _prune(self) -> None:
        """Forget the codes of complete settings' comparison ids (only pending values' codes are compared)."""
        live = set()
        for values in self.pending:
            live.update(np.unique(values["comparison"].to_numpy()).tolist())
        self.comparisons = {text: code for text, code in self.comparisons.items() if code in live}

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows of complete settings (all before ``complete``) ranked on a shared mean other than their mean,
        and that mean, since the last call (each row once)."""
        rows = np.concatenate(self.rows) if self.rows else np.zeros(0, dtype=np.int64)
        values = np.concatenate(self.values) if self.values else np.zeros(0)
        self.rows, self.values = [], []
        return rows, values

    def finish(self) -> None:
        """Complete the last setting (the table has ended): every row is then before ``complete``."""
        if self.pending:
            self._shared(pd.concat(self.pending) if len(self.pending) > 1 else self.pending[0])
            self.finished.add(self.pending_setting)
        self.pending, self.pending_setting = [], None
        self.complete = self.n_rows

    def _shared(self, values: pd.DataFrame) -> None:
        """Shared means of the complete settings' rows in ``values`` whose own (seed, sample) values are more than
        the shared ones (a duplicated (seed, sample) of one row counts once, at its mean, as the report's pivot).
        Array operations on the integer codes (a groupby per step cost twice as much)."""
        if values.empty:
            return
        row, comparison, seed, sample, value = (values[c].to_numpy() for c in values.columns)
        cell, n_cells = _group_ids(row, seed, sample)
        twice = np.zeros(0, dtype=row.dtype)  # rows whose mean counts a (seed, sample) twice: never their mean
        if n_cells < len(cell):  # a (seed, sample) twice in one row: once, at its mean
            repeated = np.bincount(cell, minlength=n_cells)
            value = np.bincount(cell, weights=value, minlength=n_cells) / repeated
            row, comparison, seed, sample = (a[_firsts(cell, n_cells)] for a in (row, comparison, seed, sample))
            twice = row[repeated > 1]
        local, n_rows = _group_ids(row)  # 0..n_rows-1 in row order
        rows = row[_firsts(local, n_rows)]
        group, _ = _group_ids(comparison[_firsts(local, n_rows)])  # each row's comparison group
        competitors = np.bincount(group)[group[local]]  # per value: how many rows its group ranks
        key, _ = _group_ids(comparison, seed, sample)
        shared = np.bincount(key)[key] == competitors  # every ranked row of the group scored this (seed, sample)
        differing = np.bincount(local, minlength=n_rows) != np.bincount(local[shared], minlength=n_rows)
        differing |= np.isin(rows, twice)
        if not differing.any():
            return
        keep = shared & differing[local]
        pair, n_pairs = _group_ids(local[keep], seed[keep])  # (row, seed): the mean over seeds of per-seed means
        per_seed = np.bincount(pair, weights=value[keep]) / np.bincount(pair)
        of_row = local[keep][_firsts(pair, n_pairs)]
        sums, counts = np.bincount(of_row, weights=per_seed, minlength=n_rows), np.bincount(of_row, minlength=n_rows)
        means = np.divide(sums, counts, out=np.full(n_rows, np.nan), where=counts > 0)  # NaN: nothing shared
        self.rows.append(rows[differing].astype(np.int64))
        self.values.append(means[differing])


def _group_ids(*keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Each position's group, ``0..G-1`` in the lexicographic order of ``keys`` (equal keys, one group), and ``G``."""
    order = np.lexsort(keys[::-1])
    new = np.zeros(order.size, dtype=bool)
    new[:1] = True
    for key in keys:
        ordered = key[order]
        new[1:] |= ordered[1:] != ordered[:-1]
    ids = np.empty(order.size, dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids, int(ids.max()) + 1 if ids.size else 0


def _firsts(ids: np.ndarray, n: int) -> np.ndarray:
    """The first position of each group ``0..n-1`` in ``ids``."""
    first = np.empty(n, dtype=np.int64)
    first[ids[::-1]] = np.arange(ids.size)[::-1]
    return first
