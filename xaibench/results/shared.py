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
        self.codes: dict[str, int] = {}  # comparison ids and sample ids as integers (fast to group)
        self.rows: list[np.ndarray] = []  # summary rows ranked on a shared mean other than their mean ...
        self.values: list[np.ndarray] = []  # ... and that mean (NaN: the group's competitors share no sample)

    def add(self, table: pd.DataFrame, part: pd.DataFrame, gid: np.ndarray, ok: np.ndarray, offset: int) -> None:
        """The ok values of one chunk (``gid``: each table row's summary row in ``part``, the chunk's summary
        starting at row ``offset`` of the whole summary, with its ``comparison`` ids)."""
        settings = list(part[_SETTING].astype(str).itertuples(index=False, name=None))
        if self.finished.intersection(settings):
            raise ValueError("chunks out of (model, dataset, method) order: a setting came back after the next one")
        last = settings[-1]
        rows = gid[ok]
        samples, ids = pd.factorize(table["sample_id"].to_numpy()[ok])  # the chunk's few distinct ids, then codes
        values = pd.DataFrame({
            "row": rows + offset, "comparison": self._coded(part["comparison"])[rows],
            "seed": table["seed"].to_numpy()[ok] if "seed" in table.columns else 0,
            "sample": self._coded(ids)[samples] if len(ids) else samples,
            "value": table["value"].to_numpy(dtype=np.float64)[ok]})
        current = np.array([s == last for s in settings], dtype=bool)[rows]  # the setting the chunk ends in
        if self.pending_setting == last:  # it goes on in the next chunk, maybe
            done, self.pending = [values[~current]], [*self.pending, values[current]]
        else:  # the pending setting is complete
            done, self.pending = [*self.pending, values[~current]], [values[current]]
            self.finished.update([self.pending_setting] if self.pending_setting is not None else [])
        self._shared(pd.concat(done) if len(done) > 1 else done[0])
        self.finished.update(s for s in settings if s != last)
        self.pending_setting = last

    def _coded(self, texts) -> np.ndarray:
        """Each text's integer code (the same text, the same code, in every chunk)."""
        return np.array([self.codes.setdefault(str(t), len(self.codes)) for t in texts], dtype=np.int64)

    def result(self, means: np.ndarray) -> np.ndarray:
        """The value each summary row is ranked on: its shared-sample mean (``means``: the summary's ``mean``,
        kept where the row's own samples are the shared ones)."""
        self._finish_pending()
        ranked = means.copy()
        if self.rows:
            ranked[np.concatenate(self.rows)] = np.concatenate(self.values)
        return ranked

    def _finish_pending(self) -> None:
        if self.pending:
            self._shared(pd.concat(self.pending) if len(self.pending) > 1 else self.pending[0])
            self.finished.add(self.pending_setting)
        self.pending, self.pending_setting = [], None

    def _shared(self, values: pd.DataFrame) -> None:
        """Shared means of the complete settings' rows in ``values`` whose own (seed, sample) values are more than
        the shared ones (a duplicated (seed, sample) of one row counts once, at its mean, as the report's pivot)."""
        if values.empty:
            return
        cell = values.groupby(["comparison", "row", "seed", "sample"], sort=False)["value"].mean().reset_index()
        competitors = cell.groupby("comparison")["row"].transform("nunique")
        holders = cell.groupby(["comparison", "seed", "sample"])["row"].transform("size")
        shared = (holders == competitors).to_numpy()
        own = cell.groupby("row").size()
        common = cell[shared].groupby("row").size().reindex(own.index, fill_value=0)
        differing = own.index[(own != common).to_numpy()]
        if not len(differing):
            return
        kept = cell[shared & cell["row"].isin(differing).to_numpy()]
        means = kept.groupby(["row", "seed"])["value"].mean().groupby(level="row").mean()
        self.rows.append(differing.to_numpy(dtype=np.int64))
        self.values.append(means.reindex(differing).to_numpy(dtype=np.float64))
