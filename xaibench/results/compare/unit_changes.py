"""The unit-by-unit part of a comparison: each unit of either table is ``new``, ``missing``, changed in status
(``status``, ``direction``), or its paired values are tested (``degraded``, ``improved``, ``unconfirmed``, a
control's ``control``). ``UnitWalker`` visits the units one at a time and collects their findings and counts; what
needs several units at once (controls, ranks) is in ``controls`` and ``ranks``."""
from __future__ import annotations

import numpy as np
import pandas as pd

from xaibench.results.compare.change_text import describe_change, moved_text
from xaibench.results.compare.controls import Controls
from xaibench.results.compare.findings import ComparedUnit, Finding
from xaibench.results.compare.names import UnitNames
from xaibench.results.compare.pairing import SAMPLE_KEY, Pairs, UnitRows
from xaibench.results.compare.policy import Policy, Tolerance
from xaibench.results.compare.values import BETTER, SAME, WORSE, ValueChange, assess


class UnitWalker:
    """Compares one unit at a time and collects findings and counts."""

    def __init__(self, policy: Policy, controls: Controls, strict_changes: bool, allow_missing: bool,
                 base: UnitRows, cur: UnitRows, pairs: Pairs) -> None:
        self.policy, self.strict, self.allow_missing = policy, strict_changes, allow_missing
        self.is_control = controls
        self.base, self.cur, self.pairs = base, cur, pairs
        self.scored = {key: i for i, key in enumerate(pairs.keys)}
        self.findings: list[Finding] = []
        self.visited: list[ComparedUnit] = []
        self.n_pairs = self.n_differing = 0
        self.n_versus = 0  # pairs of new units compared with the baseline's units of other parameters (``_versus``)
        self.max_abs_diff = 0.0

    def add(self, kind: str, fails: bool, unit: dict, message: str, **extra) -> None:
        self.findings.append(Finding(kind, fails, unit, message, **extra))

    def visit(self, unit: dict, key: tuple, cur_key: tuple, replaced: tuple | None, names: UnitNames) -> None:
        """Compare one unit's rows: ``key`` in the baseline, ``cur_key`` in the current table (another key for a
        cell-level pair, ``comparison._cell_level_pairs``). ``replaced``: for a unit only the current table has, the
        baseline unit it replaces (same names, other parameters: ``comparison._reparametrised``)."""
        in_base, in_cur = key in self.base, cur_key in self.cur
        family, higher = (self.base if in_base else self.cur).kind(key if in_base else cur_key)
        unit = {**unit, "family": family, "higher_is_better": higher}
        compared = self.n_pairs + self.n_versus
        if not in_base:
            state = self.cur.states[cur_key]
            why = _state_text(state, self.cur, cur_key)
            self.add("new", self.strict, unit, f"new: {self.cur.count(cur_key)} ({why})", details={"state": state})
            if replaced is not None:
                self._versus(unit, names.described(replaced), self.base.get(replaced), self.cur.get(cur_key))
        elif not in_cur:
            state = self.base.states[key]
            fails = not self.allow_missing and state != "not_applicable"
            self.add("missing", fails, unit, f"missing: {self.base.count(key)} of the baseline "
                     f"({_state_text(state, self.base, key)})", details={"state": state})
        elif key in self.scored:
            self._samples(unit, self.scored[key])
        else:
            self._cell_states(unit, key, cur_key)
        states = (self.base.states[key] if in_base else None, self.cur.states[cur_key] if in_cur else None)
        self.visited.append(ComparedUnit(unit, key, states, self.n_pairs + self.n_versus - compared,
                                         names.identity(key)))

    def _versus(self, unit: dict, label: str, before: pd.DataFrame, after: pd.DataFrame) -> None:
        """Extend the ``new`` finding just added for a unit whose parameters changed with how it scores against the
        baseline's unit of the old parameters (``label``): the size and direction, not a verdict (another
        experiment: the old unit is ``missing``)."""
        merged = before[SAMPLE_KEY + ["value", "status"]].merge(after[SAMPLE_KEY + ["value", "status"]], on=SAMPLE_KEY,
                                                                suffixes=("_base", "_cur"))
        ok = merged[(merged["status_base"] == "ok") & (merged["status_cur"] == "ok")]
        if ok.empty:
            return
        tol = self.policy.tolerance(unit["metric"], unit["family"])
        change = assess(ok["value_base"].to_numpy(np.float64), ok["value_cur"].to_numpy(np.float64),
                        unit["higher_is_better"], tol, ok["sample_id"].astype(str).to_numpy())
        self.n_versus += change.n
        word = (change.verdict if change.verdict != SAME else "not significant" if abs(change.delta) > change.tolerance
                else "no change beyond tolerance")
        new = self.findings.pop()
        text = (f"{new.message}; against the baseline's {label or 'other parameters'}: {word}, mean "
                f"{change.baseline_mean:.4g} -> {change.current_mean:.4g}, delta {change.delta:+.4g} over {change.n} "
                f"pairs{moved_text(change)}")
        # scoring significantly worse than with the old parameters is a regression of that method, also where the
        # old unit's absence is allowed (--allow-missing); a control's drift is not (unless the policy gates it)
        worse = change.verdict == WORSE and (self.policy.gate_controls or not self.is_control.of(unit))
        self.add("new", new.fails or worse, unit, text + (": fails" if worse else ""), change=change, tolerance=tol,
                 details={**new.details, "versus": label, "direction": change.verdict})

    def _cell_states(self, unit: dict, key: tuple, cur_key: tuple) -> None:
        before, after = self.base.states[key], self.cur.states[cur_key]
        if before == after:
            return
        message = self.cur.message(cur_key) if after != "ok" else ""
        broke = before == "ok" or (before == "not_applicable" and after == "error")
        text = f"{before} -> {after}" + (f": {message}" if message else "")
        self.add("status", broke or self.strict, unit, text, details={"before": before, "after": after,
                                                                       "message": message})

    def _samples(self, unit: dict, i: int) -> None:
        """The paired values of scored unit ``i`` (``Pairs``), after its missing and new samples, status changes and
        a flipped direction where it has any (``Pairs.regular`` False)."""
        if self.pairs.regular[i]:
            self._values(unit, *self.pairs.ok_values(i))
            return
        rows = self.pairs.rows(i)
        self._missing_and_new_samples(unit, rows)
        both = rows["_merge"] == "both"
        self._sample_statuses(unit, rows, both)
        if (rows["higher_is_better_base"][both] != rows["higher_is_better_cur"][both]).any():
            self.add("direction", True, unit, "the metric's declared direction changed (higher_is_better "
                     f"{unit['higher_is_better']} -> {not unit['higher_is_better']}): values are not comparable")
            return
        self._values(unit, *self.pairs.ok_values(i))

    def _missing_and_new_samples(self, unit: dict, rows: dict[str, np.ndarray]) -> None:
        for side, kind in (("left_only", "missing"), ("right_only", "new")):
            mask = rows["_merge"] == side
            if not mask.any():
                continue
            ids = [f"{s}/{i}" for s, i in zip(rows["seed"][mask], rows["sample_id"][mask])]
            fails = (not self.allow_missing) if kind == "missing" else self.strict
            text = f"{kind}: {len(ids)} sample(s) ({', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''})"
            self.add(kind, fails, unit, text, details={"samples": ids})

    def _sample_statuses(self, unit: dict, rows: dict[str, np.ndarray], both: np.ndarray) -> None:
        before_all, after_all = rows["status_base"], rows["status_cur"]
        changed = both & (before_all != after_all)
        if not changed.any():
            return
        for before, after in sorted(set(zip(before_all[changed], after_all[changed]))):
            mask = changed & (before_all == before) & (after_all == after)
            broke = before == "ok"
            messages = sorted({m for m in rows["message_cur"][mask] if m}) if broke else []
            n = int(mask.sum())
            text = f"{n} sample(s) {before} -> {after}" + (f": {'; '.join(messages[:3])}" if messages else "")
            self.add("status", broke or self.strict, unit, text,
                     details={"before": before, "after": after, "n": n, "messages": messages,
                              "samples": [f"{s}/{i}" for s, i in zip(rows["seed"][mask], rows["sample_id"][mask])]})

    def _values(self, unit: dict, base: np.ndarray, cur: np.ndarray, samples: np.ndarray) -> None:
        if not base.size:
            return
        tol = self.policy.tolerance(unit["metric"], unit["family"])
        change = assess(base, cur, unit["higher_is_better"], tol, samples)
        self.n_pairs += change.n
        self.n_differing += change.n_differing
        self.max_abs_diff = max(self.max_abs_diff, change.max_abs_diff)
        if self.is_control.of(unit) and not self.policy.gate_controls:
            self._control(unit, change, tol)
        elif change.verdict == WORSE:
            self.add("degraded", True, unit, describe_change(change), change=change, tolerance=tol)
        elif change.verdict == BETTER:
            self.add("improved", self.strict, unit, describe_change(change), change=change, tolerance=tol)
        elif tol.mode in ("wilcoxon", "bootstrap") and abs(change.delta) > change.tolerance:
            worse = change.delta < 0 if unit["higher_is_better"] else change.delta > 0
            direction = "worse" if worse else "better"
            self.add("unconfirmed", self.strict, unit, describe_change(change, direction, tol), change=change,
                     tolerance=tol, details={"direction": direction})

    def _control(self, unit: dict, change: ValueChange, tol: Tolerance) -> None:
        """A control's scores moved: what would have been ``degraded``/``improved``/``unconfirmed``, reported as
        ``control`` (passes; ``--strict-changes`` fails it): a reference point's drift is not a regression of the
        methods under test, which ``below_control`` still holds to beating it."""
        large = tol.mode in ("wilcoxon", "bootstrap") and abs(change.delta) > change.tolerance
        if change.verdict == SAME and not large:
            return
        worse = change.delta < 0 if unit["higher_is_better"] else change.delta > 0
        direction = "worse" if worse else "better"
        would_be = {WORSE: "degraded", BETTER: "improved"}.get(change.verdict, "unconfirmed")
        text = (describe_change(change) if change.verdict != SAME else describe_change(change, direction, tol)) + (
            f"; {unit['method']} is a control (a reference point): its own drift is reported, not gated")
        self.add("control", self.strict, unit, text, change=change, tolerance=tol,
                 details={"direction": direction, "would_be": would_be})


def _state_text(state: str, rows: UnitRows, key: tuple) -> str:
    """A unit's state for a ``new``/``missing`` finding, with its reason where the unit is one cell-level row
    (``not_applicable: method deeplift applies its rules to ...``): ``the cell (not_applicable)`` alone, in the
    report and a JUnit ``<skipped>``, left the reader to open the table to learn why."""
    message = rows.message(key) if state in ("not_applicable", "error") else ""
    return f"{state}: {message}" if message else state
