"""Both tables' rows by unit, and the samples of the units both score paired in one merge (no frame per unit).

``compare`` once split each table into one DataFrame per unit (all ~43 columns) and merged each unit's baseline and
current rows on their own: ~2 CPU-ms per row, a 1k-cell x 20-metric table (640k rows) ~20 CPU-minutes and several
GB. Here each table keeps only the columns compare reads (``UnitRows``: the unit columns, the sample key, value,
status, message, direction, family) with each unit's row positions, and ``Pairs`` pairs the (seed, sample) rows of
every unit that both tables score in ONE outer merge on (unit, seed, sample_id). An outer merge sorts its keys, so
each unit's slice is in the order the merge of that unit's rows alone had (seed, then sample id): the values reach
the tests in the same order and every mean, p-value and message is the same to the bit.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SAMPLE_KEY = ["seed", "sample_id"]
READ = ["value", "status", "message", "higher_is_better", "family"]  # besides the unit columns and SAMPLE_KEY
PAIRED = ["value", "status", "message", "higher_is_better"]  # what a pair carries from each side


class UnitRows:
    """One table's rows as compare reads them, grouped by unit (``tables.unit_columns``).

    Attributes:
        frame: the table's unit columns, ``SAMPLE_KEY`` and ``READ`` columns, rows in the table's order (index
            0..n-1).
        positions: unit key -> the unit's row positions in ``frame`` (ascending), in order of first appearance.
        states: unit key -> ``ok`` (scored: per-sample rows, whatever their statuses) or the status of the unit's
            single cell-level row (``error``, ``not_applicable``).
    """

    def __init__(self, frame: pd.DataFrame, units: list[str]) -> None:
        self.frame = frame[list(dict.fromkeys(units + SAMPLE_KEY + READ))].reset_index(drop=True)
        groups = {} if frame.empty else self.frame.groupby(units, sort=False, dropna=False).indices
        self.positions = {key if isinstance(key, tuple) else (key,): rows for key, rows in groups.items()}
        self.scored = (self.frame["sample_id"] != "").to_numpy(bool)
        status = self.frame["status"].to_numpy(object)
        self.states = {key: "ok" if self.scored[rows].any() else str(status[rows[0]])
                       for key, rows in self.positions.items()}
        self._family = self.frame["family"].to_numpy(object)
        self._higher = self.frame["higher_is_better"].to_numpy(object)
        self._message = self.frame["message"].to_numpy(object)

    def __contains__(self, key: tuple) -> bool:
        return key in self.positions

    def get(self, key: tuple) -> pd.DataFrame | None:
        """The unit's rows as a frame (``READ`` columns and the key), or None when the table lacks it."""
        return self.frame.take(self.positions[key]) if key in self.positions else None

    def coded(self) -> pd.DataFrame:
        """``frame`` with the unit columns replaced by ``unit``, one integer per unit (grouping by it groups as the
        unit columns do, in the same order, without a copy of those columns per row)."""
        code = np.empty(len(self.frame), dtype=np.int64)
        for i, rows in enumerate(self.positions.values()):
            code[rows] = i
        kept = [c for c in self.frame.columns if c in SAMPLE_KEY + READ or c in ("method", "method_params", "metric")]
        return self.frame[kept].assign(unit=code)

    def kind(self, key: tuple) -> tuple[str, bool]:
        """The unit's family and ``higher_is_better`` (of its first row)."""
        first = self.positions[key][0]
        return str(self._family[first]), bool(self._higher[first])

    def message(self, key: tuple) -> str:
        """The first non-empty message of the unit's rows, else ""."""
        return next((str(m) for m in self._message[self.positions[key]] if m), "")

    def count(self, key: tuple) -> str:
        """``10 value(s)`` (the unit's per-sample rows) or ``the cell`` (a cell-level row only)."""
        n = int(self.scored[self.positions[key]].sum())
        return f"{n} value(s)" if n else "the cell"


class Pairs:
    """The rows of the units both tables score (``keys``, both ``ok``), paired on (seed, sample_id) in one outer
    merge; unit ``i`` (its position in ``keys``) is the slice ``bounds[i]:bounds[i + 1]`` of ``merged``.

    Attributes:
        merged: ``unit`` (position in ``keys``), ``SAMPLE_KEY``, ``PAIRED`` columns suffixed ``_base``/``_cur``,
            ``row_base``/``row_cur`` (row positions in each side's ``UnitRows.frame``) and ``_merge``
            (``both``/``left_only``/``right_only``), sorted by unit, seed, sample id.
        regular: ``(units,)`` True where every row is in both tables with the same status and direction (the usual
            case: only ``ok_values`` is needed; the others read their rows, ``rows``).
    """

    def __init__(self, base: UnitRows, cur: UnitRows, keys: list[tuple]) -> None:
        self.keys = keys
        sides = [_coded(side, keys).rename(columns={c: f"{c}_{name}" for c in PAIRED + ["row"]})
                 for side, name in ((base, "base"), (cur, "cur"))]
        self.merged = sides[0].merge(sides[1], on=["unit"] + SAMPLE_KEY, how="outer", indicator=True)
        unit = self.merged["unit"].to_numpy(np.int64)
        self.bounds = np.searchsorted(unit, np.arange(len(keys) + 1))
        both = (self.merged["_merge"] == "both").to_numpy(bool)
        status = [self.merged[f"status_{s}"].to_numpy(object, na_value=None) for s in ("base", "cur")]
        higher = [self.merged[f"higher_is_better_{s}"].to_numpy(object, na_value=None) for s in ("base", "cur")]
        self.ok = both & (status[0] == "ok") & (status[1] == "ok")
        irregular = ~both | (status[0] != status[1]) | (higher[0] != higher[1])
        self.regular = np.bincount(unit[irregular], minlength=len(keys)) == 0
        self._values = [self.merged[f"value_{s}"].to_numpy(np.float64) for s in ("base", "cur")]
        self._samples = self.merged["sample_id"].astype(str).to_numpy(object)
        self._status, self._higher = status, higher
        self._columns: dict[str, np.ndarray] = {}  # made on the first irregular unit (``rows``)

    def rows(self, i: int) -> dict[str, np.ndarray]:
        """Unit ``i``'s paired rows as arrays ``(rows,)`` (``_merge``, ``seed``, ``sample_id``, statuses, directions,
        the current message), in the order an outer merge of its rows alone gives; a missing side is None."""
        if not self._columns:
            self._columns = {"_merge": self.merged["_merge"].to_numpy(object), "sample_id": self._samples,
                             "seed": self.merged["seed"].to_numpy(object), "status_base": self._status[0],
                             "status_cur": self._status[1], "higher_is_better_base": self._higher[0],
                             "higher_is_better_cur": self._higher[1],
                             "message_cur": self.merged["message_cur"].to_numpy(object, na_value=None)}
        span = slice(self.bounds[i], self.bounds[i + 1])
        return {name: values[span] for name, values in self._columns.items()}

    def ok_values(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit ``i``'s baseline values, current values and sample ids ``(pairs,)`` where both rows are ``ok``."""
        span = slice(self.bounds[i], self.bounds[i + 1])
        ok = self.ok[span]
        return self._values[0][span][ok], self._values[1][span][ok], self._samples[span][ok]

    def shared_rows(self, side: UnitRows, name: str, units: list[str]) -> pd.DataFrame:
        """``side``'s (``name``: ``base``/``cur``) per-sample values ``ok`` in both tables, one row per unit and
        direction: the unit columns, ``higher_is_better`` and ``value``, the mean over the unit's rows in their table
        order, grouped by the unit's rank in the sorted ``keys``: the groups and group ids of a sorted groupby on the
        unit columns themselves, so pandas sums each group the same way (it picks its method by whether the ids are
        monotonic over the rows) and the means are the same to the bit."""
        shared = self.ok & (self._samples != "")
        rows = self.merged[f"row_{name}"].to_numpy()[shared].astype(np.int64)
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        frame = pd.DataFrame({"unit": self.merged["unit"].to_numpy(np.int64)[shared][order],
                              "higher_is_better": side.frame["higher_is_better"].to_numpy()[rows],
                              "value": side.frame["value"].to_numpy(np.float64)[rows]})
        means = frame.groupby(["unit", "higher_is_better"], sort=True)["value"].mean().reset_index()
        keys = pd.DataFrame([self.keys[u] for u in means["unit"]], columns=units, index=means.index)
        keys = keys.astype(side.frame[units].dtypes.to_dict()) if len(keys) else side.frame[units].iloc[:0]
        return pd.concat([keys, means[["higher_is_better", "value"]]], axis=1)


def _coded(side: UnitRows, keys: list[tuple]) -> pd.DataFrame:
    """``side``'s rows of ``keys`` with ``unit`` (the key's position) and ``row`` (the row's position)."""
    code = np.full(len(side.frame), -1, dtype=np.int64)
    for i, key in enumerate(keys):
        code[side.positions[key]] = i
    keep = code >= 0
    rows = side.frame.loc[keep, SAMPLE_KEY + PAIRED]
    return rows.assign(unit=code[keep], row=np.flatnonzero(keep))[["unit"] + SAMPLE_KEY + PAIRED + ["row"]]
