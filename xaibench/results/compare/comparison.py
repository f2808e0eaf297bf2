"""Compare a current results table with a baseline: what is missing, new, changed, broken, re-ranked.

``compare_tables`` walks the *units* of both tables (one method on one metric in one experiment, see
:mod:`xaibench.results.compare.tables`; their samples paired in one merge, :mod:`~xaibench.results.compare.pairing`)
and turns every difference into a ``Finding``:

- ``missing`` (a unit or samples the baseline has and the current table lacks): fails unless allowed; when not
  one of the baseline's values could be compared (another seed or split) it fails also when allowed;
- ``new`` (a unit or samples only the current table has): reported; a method whose parameters changed that now
  scores significantly worse than with the old ones fails (also under ``allow_missing``);
- ``status`` (ok -> nan/error, a computed unit now erroring or not applicable): fails, with the message;
  the other way round (now computed) is reported;
- ``degraded`` / ``improved`` (paired values beyond the policy's tolerance, in the metric's direction):
  degradation fails, improvement is reported;
- ``unconfirmed`` (the mean moved beyond the size bound but the policy's one-sided test is not significant: a
  change confined to fewer samples than machine noise can move, or samples moving both ways): reported, passed;
- ``control`` (a control method's -- a reference point, not a method under test: one whose rows record
  ``"role": "control"`` (``Explainer.control``: ``random``, ``constant``, ``sobel``, a user's own) or that the
  policy's ``controls`` names -- own scores moved, e.g. after the model was retrained): reported, passed unless the
  policy sets ``gate_controls`` (then it is ``degraded``/``improved`` like any method);
- ``below_control`` (a method that beat a control of its comparison group now scores at or below it): fails
  when the paired gap's change is significant under the policy (else reported, passed);
- ``rank`` (within a comparison group a method now ranks below one it used to beat, on the samples both tables
  scored, the two apart by more than the tolerance in both tables): reported;
- ``revision`` (a dataset's content or a model's weights changed): reported;
- ``direction`` (a metric's declared direction flipped): fails.

With ``strict_changes`` every reported change fails too ("nothing may change").
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xaibench.results.compare.pairing import SAMPLE_KEY, Pairs, UnitRows
from xaibench.results.compare.policy import Policy, Tolerance
from xaibench.results.compare.resolution import CoarseTolerance, coarse_tolerances
from xaibench.results.compare.tables import (REVISION_COLUMNS, check_unique, group_columns, unit_columns,
                                            records_any_role, without_roles, without_run_notes)
from xaibench.results.compare.values import BETTER, SAME, WORSE, ValueChange, assess, wilcoxon_min_pairs
from xaibench.results.groups import competitor_columns, competitor_labels

NAMES = ["model", "dataset", "method", "metric"]
KINDS = ("missing", "status", "direction", "degraded", "below_control", "improved", "unconfirmed", "control", "new",
         "rank", "revision")


@dataclass(frozen=True)
class Finding:
    """One difference between the tables.

    Attributes:
        kind: one of ``KINDS``.
        fails: whether it makes the comparison fail.
        unit: the unit's columns (``model``, ``dataset``, ``method``, ``metric``, params ...) plus ``family``,
            ``higher_is_better``, a short ``variant`` naming the parameters that tell same-named units apart
            (``method.abs=False``, as the summary's ``variant`` column) and ``labels``: the unit's model, dataset,
            method and metric as the report names them (``saliency (abs=False)``, ``_Names``).
        message: one sentence for people.
        change: the value comparison (``degraded``/``improved``), else None.
        tolerance: the tolerance that applied to ``change``.
        details: machine-readable extras (counts, sample ids, ranks).
    """

    kind: str
    fails: bool
    unit: dict
    message: str
    change: ValueChange | None = None
    tolerance: Tolerance | None = None
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ComparedUnit:
    """One unit ``compare_tables`` visited (a testcase of the JUnit report, ``junit.py``), in key order.

    Attributes:
        unit: its columns, ``family``, ``higher_is_better``, ``variant`` and ``labels``, as a ``Finding.unit``.
        key: its unit columns' values (``Comparison.unit_columns``), as its findings' ``unit`` holds them.
        states: its state in the baseline and the current table (``ok``: scored, else the cell's status; None:
            that table lacks it).
        n_pairs: (seed, sample) pairs of its values compared: with the baseline's unit, or for a unit only the
            current table has, with the baseline's unit of other parameters it replaces; 0: nothing compared.
    """

    unit: dict
    key: tuple
    states: tuple[str | None, str | None]
    n_pairs: int


@dataclass(frozen=True)
class Controls:
    """Which units are controls: the rows' own role (``recorded``: methods whose ``method_params`` said
    ``"role": "control"``, set by ``Explainer.control``) or an entry of the policy's ``controls``.

    The default list (the built-in controls' names, ``Policy.default_controls``) stands in for the role only where
    neither table records roles (``records_roles`` False: written before rows recorded them), as in the report
    (``results/roles.py``): in tables that record roles, a method of the user's merely named ``random`` is a method.
    A policy's own list applies as written."""

    policy: Policy
    recorded: frozenset[str] = frozenset()
    records_roles: bool = False

    def __call__(self, method: str, method_params: str = "{}") -> bool:
        if str(method) in self.recorded:
            return True
        if self.records_roles and self.policy.default_controls:
            return False
        return self.policy.is_control(method, method_params)

    def of(self, unit: dict) -> bool:
        return self(unit["method"], unit.get("method_params", "{}"))


@dataclass(frozen=True)
class Comparison:
    """The outcome of ``compare_tables``: findings plus how much was compared."""

    findings: tuple[Finding, ...]
    policy: Policy
    n_units: int
    n_pairs: int
    n_differing: int
    max_abs_diff: float
    strict_changes: bool = False
    allow_missing: bool = False
    unused_overrides: tuple[str, ...] = ()  # policy entries naming no family/metric/control of either table (a typo?)
    recorded_controls: tuple[str, ...] = ()  # methods whose rows record the control role ("role": "control")
    coarse_tolerances: tuple[CoarseTolerance, ...] = ()  # metrics whose tolerance hides changes of >10% of scores
    units: tuple[ComparedUnit, ...] = ()  # every unit visited, in key order (the JUnit report's testcases)
    unit_columns: tuple[str, ...] = ()  # the columns naming a unit (``tables.unit_columns``)

    @property
    def failed(self) -> bool:
        return any(f.fails for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def of_kind(self, *kinds: str) -> list[Finding]:
        return [f for f in self.findings if f.kind in kinds]


def compare_tables(baseline: pd.DataFrame, current: pd.DataFrame, policy: Policy, *, strict_changes: bool = False,
                   allow_missing: bool = False) -> Comparison:
    """Compare two conformed results tables (see the module docstring for what is reported and what fails)."""
    records_roles = records_any_role(baseline) or records_any_role(current)
    baseline, base_roles = without_roles(without_run_notes(baseline))
    current, cur_roles = without_roles(without_run_notes(current))
    controls = Controls(policy, base_roles | cur_roles, records_roles)
    units = unit_columns(baseline, current)
    for frame, role in ((baseline, "baseline"), (current, "current")):
        check_unique(frame, units + SAMPLE_KEY, role, "table")
    base_units, cur_units = UnitRows(baseline, units), UnitRows(current, units)
    paired = _cell_level_pairs(base_units, cur_units, units)
    keys = sorted((set(base_units.positions) | set(cur_units.positions)) - set(paired.values()))
    scored = [k for k in keys if base_units.states.get(k) == cur_units.states.get(k) == "ok"]
    pairs = Pairs(base_units, cur_units, scored)
    names = _Names(keys, units, base_units.frame, cur_units.frame)
    walker = _UnitWalker(policy, controls, strict_changes, allow_missing, base_units, cur_units, pairs)
    replaced = _reparametrised(keys, base_units, cur_units, units)
    for key in keys:
        walker.visit(names.unit(key), key, paired.get(key, key), replaced.get(key), names)
    findings = walker.findings
    findings += _below_controls(pairs, base_units, cur_units, units, names, policy, controls, strict_changes)
    findings += _rank_changes(pairs, base_units, cur_units, units, names, policy, controls, strict_changes)
    findings += _revision_changes(baseline, current, strict_changes)
    findings += _nothing_compared(baseline, current, walker, findings)
    order = {kind: index for index, kind in enumerate(KINDS)}
    findings.sort(key=lambda f: (not f.fails, order[f.kind], [str(f.unit.get(n, "")) for n in NAMES]))
    return Comparison(tuple(findings), policy, n_units=len(keys), n_pairs=walker.n_pairs,
                      n_differing=walker.n_differing, max_abs_diff=walker.max_abs_diff,
                      strict_changes=strict_changes, allow_missing=allow_missing,
                      unused_overrides=_unused_overrides(policy, base_units.frame, cur_units.frame),
                      recorded_controls=tuple(sorted(controls.recorded)),
                      coarse_tolerances=coarse_tolerances(base_units.coded(), ["unit"], policy, controls),
                      units=tuple(walker.visited), unit_columns=tuple(units))


def _unused_overrides(policy: Policy, baseline: pd.DataFrame, current: pd.DataFrame) -> tuple[str, ...]:
    """``families.X`` / ``metrics.Y`` entries of the policy that match nothing in either table."""
    unused = []
    for section, entries, column in (("families", policy.families, "family"), ("metrics", policy.metrics, "metric")):
        present = set(baseline[column].astype(str)) | set(current[column].astype(str))
        unused += [f"{section}.{name}" for name in entries if name not in present]
    if not policy.default_controls:  # a policy's own list: a misspelt control would gate as a method
        methods = pd.concat([frame[["method", "method_params"]].drop_duplicates() for frame in (baseline, current)])
        methods = methods.drop_duplicates()
        pairs = list(zip(methods["method"].astype(str), methods["method_params"].astype(str)))
        unused += [f"controls.{entry}" for entry in policy.controls if not any(entry.matches(*p) for p in pairs)]
    return tuple(unused)


def _cell_level_pairs(base_units: UnitRows, cur_units: UnitRows, units: list[str]) -> dict[tuple, tuple]:
    """Baseline unit key -> current unit key for units that differ only in the metric's ``params`` because one side
    is a cell-level row (``error``/``not_applicable``, no scores).

    Scored rows record the metric's parameters as resolved (adapter settings added, fractions turned into counts);
    a cell that failed before scoring records them as configured. Such a pair is one measurement whose status
    changed (``ok -> error`` with the message), not a missing unit plus a new one. Only unambiguous pairs (one
    candidate on each side) are joined.
    """
    if "params" not in units:
        return {}
    at = units.index("params")

    def rest(key: tuple) -> tuple:
        return key[:at] + key[at + 1:]

    base_only, cur_only = {}, {}
    for source, other, into in ((base_units, cur_units, base_only), (cur_units, base_units, cur_only)):
        for key in source.positions:
            if key not in other:
                into.setdefault(rest(key), []).append(key)
    pairs = {}
    for shared, base_keys in base_only.items():
        cur_keys = cur_only.get(shared, [])
        if len(base_keys) == len(cur_keys) == 1:
            base_key, cur_key = base_keys[0], cur_keys[0]
            if base_units.states[base_key] != "ok" or cur_units.states[cur_key] != "ok":
                pairs[base_key] = cur_key
    return pairs


def _reparametrised(keys: list[tuple], base_units: UnitRows, cur_units: UnitRows,
                    units: list[str]) -> dict[tuple, tuple]:
    """New unit key -> the baseline-only unit it replaces: the same model, dataset, method and metric names, other
    parameters (one scored unit on each side). Other parameters make another experiment (``missing`` + ``new``), but
    the report still shows what the new ones score against the old."""
    at = [units.index(n) for n in NAMES if n in units]
    sides: dict[tuple, tuple[list, list]] = {}
    for key in keys:
        base_only, cur_only = key in base_units and key not in cur_units, key in cur_units and key not in base_units
        if base_only or cur_only:
            sides.setdefault(tuple(key[i] for i in at), ([], []))[0 if base_only else 1].append(key)
    pairs = {}
    for old, new in sides.values():
        if len(old) == len(new) == 1 and base_units.states[old[0]] == cur_units.states[new[0]] == "ok":
            pairs[new[0]] = old[0]
    return pairs


class _UnitWalker:
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

    def visit(self, unit: dict, key: tuple, cur_key: tuple, replaced: tuple | None, names: _Names) -> None:
        """Compare one unit's rows: ``key`` in the baseline, ``cur_key`` in the current table (another key for a
        cell-level pair, ``_cell_level_pairs``). ``replaced``: for a unit only the current table has, the baseline
        unit it replaces (same names, other parameters: ``_reparametrised``)."""
        in_base, in_cur = key in self.base, cur_key in self.cur
        family, higher = (self.base if in_base else self.cur).kind(key if in_base else cur_key)
        unit = {**unit, "family": family, "higher_is_better": higher}
        compared = self.n_pairs + self.n_versus
        if not in_base:
            state = self.cur.states[cur_key]
            self.add("new", self.strict, unit, f"new: {self.cur.count(cur_key)} ({state})", details={"state": state})
            if replaced is not None:
                self._versus(unit, names.described(replaced), self.base.get(replaced), self.cur.get(cur_key))
        elif not in_cur:
            state = self.base.states[key]
            fails = not self.allow_missing and state != "not_applicable"
            self.add("missing", fails, unit, f"missing: {self.base.count(key)} of the baseline ({state})",
                     details={"state": state})
        elif key in self.scored:
            self._samples(unit, self.scored[key])
        else:
            self._cell_states(unit, key, cur_key)
        states = (self.base.states[key] if in_base else None, self.cur.states[cur_key] if in_cur else None)
        self.visited.append(ComparedUnit(unit, key, states, self.n_pairs + self.n_versus - compared))

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
                f"pairs{_moved(change)}")
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
            self.add("degraded", True, unit, _describe(change), change=change, tolerance=tol)
        elif change.verdict == BETTER:
            self.add("improved", self.strict, unit, _describe(change), change=change, tolerance=tol)
        elif tol.mode in ("wilcoxon", "bootstrap") and abs(change.delta) > change.tolerance:
            worse = change.delta < 0 if unit["higher_is_better"] else change.delta > 0
            direction = "worse" if worse else "better"
            self.add("unconfirmed", self.strict, unit, _describe(change, direction, tol), change=change,
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
        text = (_describe(change) if change.verdict != SAME else _describe(change, direction, tol)) + (
            f"; {unit['method']} is a control (a reference point): its own drift is reported, not gated")
        self.add("control", self.strict, unit, text, change=change, tolerance=tol,
                 details={"direction": direction, "would_be": would_be})


def _nothing_compared(baseline: pd.DataFrame, current: pd.DataFrame, walker: _UnitWalker,
                      findings: list[Finding]) -> list[Finding]:
    """A failing finding when the baseline has scored values and not one of them could be compared (every unit's
    samples ``missing``: another seed, sample count or split), although nothing else fails: with ``allow_missing``
    such a comparison passed while checking nothing. When the current table has no rows, or the tables come from two
    xaibench releases, it is given whatever else fails, and says why (``releases.release_note``): every unit
    ``missing`` (+ ``new``) does not."""
    from xaibench.results.compare.releases import release_note

    scored = ((baseline["status"] == "ok") & (baseline["sample_id"] != "")).any()
    if walker.n_pairs or not scored:
        return []
    if current.empty:  # every unit is missing: say why in one line first
        return [Finding("missing", True, {}, "nothing compared: the current table has no rows; rerun the sweep "
                        "that wrote it (its log says why it wrote none)", details={"nothing_compared": True})]
    release = release_note(baseline, current)
    if release is not None:
        clause, details = release
        return [Finding("missing", True, {}, f"nothing compared: {clause}, and no unit of one matches the other's "
                        "(a release may record parameters under other keys); once you have reviewed what the release "
                        "changed, refresh the baseline from a run of this one (--update-baseline)",
                        details={"nothing_compared": True, **details})]
    if walker.n_versus or any(f.fails for f in findings):
        return []
    return [Finding("missing", True, {}, "nothing compared: the current table has none of the baseline's (seed, "
                    "sample) values (another seed, sample count or data split?); this fails also with "
                    "--allow-missing, which allows units to go, not the whole comparison",
                    details={"nothing_compared": True})]


def _describe(change: ValueChange, unconfirmed: str = "", tol: Tolerance | None = None) -> str:
    """One sentence on a value change; ``unconfirmed``: the direction ("worse"/"better") of a large change whose
    test is not significant (``tol``: the tolerance that applied)."""
    word = unconfirmed or ("worse" if change.verdict == WORSE else "better")
    if change.n_beyond and not unconfirmed:  # elementwise: one value beyond its own bound decides, not the mean
        word += (f" (elementwise: {change.n_beyond} of {change.n} values beyond their bound, "
                 f"{'at least one' if change.verdict == WORSE else 'none'} worse)")
    relative = f" ({change.relative:+.1%})" if np.isfinite(change.relative) else ""
    text = (f"{word}: mean {change.baseline_mean:.4g} -> {change.current_mean:.4g}, "
            f"delta {change.delta:+.4g}{relative} over {change.n} pairs{_moved(change)}")
    if not unconfirmed:
        return text
    return (f"{text}: beyond the size bound {change.tolerance:.3g} but not significant{_why_not(change, tol)}, "
            "passed as noise")


def _moved(change: ValueChange) -> str:
    """``; 4 of 10 samples beyond tolerance, all worse`` (the samples the tests weigh), or "" when none is."""
    moved = change.n_worse + change.n_better
    if not moved:
        return ""
    ways = (f"all {'worse' if change.n_worse else 'better'}" if not (change.n_worse and change.n_better)
            else f"{change.n_worse} worse, {change.n_better} better")
    return f"; {moved} of {change.n_samples} samples beyond tolerance, {ways}"


def _why_not(change: ValueChange, tol: Tolerance | None) -> str:
    """Why a large change is not significant: too few samples moved one way for the test to tell them from
    samples that flip on another machine (or they moved both ways)."""
    p_value = f"one-sided p={change.p_value:.2g}" if change.p_value is not None else ""
    moved = max(change.n_worse, change.n_better)
    if tol is None or tol.mode != "wilcoxon" or moved >= wilcoxon_min_pairs(tol.alpha):
        return f" ({p_value})" if p_value else ""
    return (f" ({p_value}: at least {wilcoxon_min_pairs(tol.alpha)} samples must move one way at "
            f"alpha={tol.alpha:g}; fewer can be samples that flip on another machine)")


class _Names:
    """How findings name units: as the report does (``groups.competitor_labels``), plus the ``variant`` text.

    A unit's method is its competitor label over both tables (``saliency (abs=False)``: the parameters its
    variants differ in or that differ from the method's shipped config), the label the report's tables, figures
    and summary files give it; the other parameters that tell units of the same names apart follow their name in
    the same style (``pixel_flipping (features_in_step=4)``, ``mlp (hidden=32)``; the setting's own, such as
    ``n_samples``, follow the dataset). ``variant`` keeps the differing parameters as ``method.abs=False`` (the
    summary's ``variant`` column), for the JSON verdict.
    """

    def __init__(self, keys: list[tuple], units: list[str], baseline: pd.DataFrame, current: pd.DataFrame) -> None:
        self.units = units
        self.differing = _differing(keys, units)
        columns = competitor_columns(pd.DataFrame(columns=units))
        pairs = pd.concat([frame[columns].drop_duplicates() for frame in (baseline, current)]).astype(str)
        pairs = pairs.drop_duplicates()
        self.competitors = dict(zip(pairs.itertuples(index=False, name=None), competitor_labels(pairs).astype(str)))
        self.columns = columns

    def variant(self, key: tuple) -> str:
        return " ".join(f"{k}={v}" for k, v in self.differing.get(key, {}).items())

    def labels(self, key: tuple) -> dict[str, str]:
        """The unit's model, dataset, method and metric as the report names them."""
        unit = dict(zip(self.units, key))
        extra: dict[str, list[str]] = {name: [] for name in NAMES}
        for item, value in self.differing.get(key, {}).items():
            prefix, _, param = item.partition(".")
            if prefix in extra and prefix != "method" and param:
                extra[prefix].append(f"{param}={value}")
            elif not param:  # a setting column (n_samples, target_mode, ...): with the dataset, as the report's
                extra["dataset"].append(f"{item}={value}")
        method = self.competitors.get(tuple(str(unit.get(c, "")) for c in self.columns), str(unit.get("method", "")))
        out = {}
        for name in NAMES:
            text = method if name == "method" else str(unit.get(name, ""))
            out[name] = f"{text} ({', '.join(extra[name])})" if extra[name] else text
        return out

    def method(self, key: tuple) -> str:
        return self.labels(key)["method"]

    def described(self, key: tuple) -> str:
        """The names of ``key`` that carry parameters (``integrated_gradients (n_steps=32)``), for "the
        baseline's ..."; "other parameters" where none does."""
        labels = self.labels(key)
        unit = dict(zip(self.units, key))
        shown = [labels[n] for n in NAMES if labels[n] != str(unit.get(n, ""))]
        return ", ".join(shown) or "other parameters"

    def unit(self, key: tuple) -> dict:
        """The unit's columns plus ``variant`` and ``labels`` (see ``Finding.unit``)."""
        return {**dict(zip(self.units, key)), "variant": self.variant(key), "labels": self.labels(key)}


def _differing(keys: list[tuple], units: list[str]) -> dict[tuple, dict]:
    """For units sharing model/dataset/method/metric names, the flattened parameters that differ between them
    (``{"method.abs": False}``; none for a unit alone under its names)."""
    name_index = [units.index(n) for n in NAMES if n in units]
    by_names: dict[tuple, list[tuple]] = {}
    for key in keys:
        by_names.setdefault(tuple(key[i] for i in name_index), []).append(key)
    out: dict[tuple, dict] = {key: {} for key in keys}
    for group in by_names.values():
        if len(group) < 2:
            continue
        flat = {key: _flatten(dict(zip(units, key))) for key in group}
        present = dict.fromkeys(k for v in flat.values() for k in v)
        differing = sorted(k for k in present if len({repr(f.get(k)) for f in flat.values()}) > 1)
        for key, values in flat.items():
            out[key] = {k: values.get(k) for k in differing}
    return out


def _flatten(unit: dict) -> dict:
    prefixes = {"model_params": "model.", "dataset_params": "dataset.", "method_params": "method.", "params": "metric."}
    out = {}
    for column, value in unit.items():
        if column in prefixes:
            try:
                out.update({prefixes[column] + k: v for k, v in json.loads(value or "{}").items()})
            except (TypeError, ValueError):
                out[column] = value
        elif column not in NAMES:
            out[column] = value
    return out


def _below_controls(pairs: Pairs, base_units: UnitRows, cur_units: UnitRows, units: list[str], names: _Names,
                    policy: Policy, is_control: Controls, strict: bool) -> list[Finding]:
    """Methods that beat a control of their comparison group in the baseline (mean paired gap in the metric's good
    direction > 0) and now score at or below it (gap <= 0). The gap's change is assessed like a score change (the
    policy's tolerance and test on the per-sample gaps): significant fails, otherwise it is reported and passes, so
    a method that only tied a control is not failed by noise.

    The pairs that can qualify are found for all groups at once (``_control_candidates``); only those are paired
    and assessed one by one. Groups are visited in key order."""
    at = [units.index(c) for c in group_columns(units)]
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(pairs.keys):  # sorted: the units both tables score
        groups.setdefault(tuple(key[j] for j in at), []).append(i)
    control = _control_flags(pairs.keys, units, is_control)
    candidates = _control_candidates(pairs, list(groups.values()), control, base_units)
    cache: dict[tuple, pd.Series] = {}

    def scores(side: str, key: tuple) -> pd.Series:
        """A unit's ok per-sample values indexed by (seed, sample_id), made once per unit and table."""
        if (side, key) not in cache:
            frame = (base_units if side == "base" else cur_units).get(key)
            ok = frame[(frame["status"] == "ok") & (frame["sample_id"] != "")]
            cache[side, key] = ok.set_index(SAMPLE_KEY)["value"].astype(np.float64)
        return cache[side, key]

    findings = []
    for members in groups.values():
        controls = [i for i in members if control[i]]
        for i in (i for i in members if not control[i]):
            for c in controls:
                if (i, c) not in candidates:
                    continue
                key, control_key = pairs.keys[i], pairs.keys[c]
                paired = pd.concat([scores(side, k) for side in ("base", "cur") for k in (key, control_key)], axis=1,
                                   join="inner", keys=["bm", "bc", "cm", "cc"]).dropna()
                finding = _below_control(key, control_key, paired, base_units.kind(key), units, names, policy, strict)
                if finding is not None:
                    findings.append(finding)
    return findings


def _control_flags(keys: list[tuple], units: list[str], is_control: Controls) -> np.ndarray:
    """``(units,)`` whether each unit's method is a control (asked once per method and parameters)."""
    at = [units.index(c) for c in ("method", "method_params") if c in units]
    flags: dict[tuple, bool] = {}
    for key in keys:
        method = tuple(key[j] for j in at)
        if method not in flags:
            flags[method] = is_control.of(dict(zip(units, key)))
    return np.array([flags[tuple(key[j] for j in at)] for key in keys], dtype=bool)


def _control_candidates(pairs: Pairs, groups: list[list[int]], control: np.ndarray,
                        base_units: UnitRows) -> set[tuple[int, int]]:
    """(method, control) unit positions whose mean signed gap may be > 0 in the baseline and <= 0 now, from one
    join of every group's methods with its controls on (seed, sample_id). A margin of 1e-9 of the values' scale
    keeps pairs whose means differ from ``_below_control``'s (another summation order) only in the last bits, and
    any pair with a non-finite value: ``_below_control`` decides on exactly its own numbers."""
    group = np.empty(len(pairs.keys), dtype=np.int64)
    for g, members in enumerate(groups):
        group[members] = g
    sign = np.array([1.0 if base_units.kind(key)[1] else -1.0 for key in pairs.keys])
    merged = pairs.merged
    rows = merged.loc[pairs.ok & (merged["sample_id"] != "").to_numpy(bool),
                      ["unit", *SAMPLE_KEY, "value_base", "value_cur"]]
    unit = rows["unit"].to_numpy(np.int64)
    rows = rows.assign(group=group[unit], control=control[unit])
    if not rows["control"].any():
        return set()
    joined = rows[~rows["control"]].merge(rows[rows["control"]], on=["group", *SAMPLE_KEY], suffixes=("", "_c"))
    if joined.empty:
        return set()
    signs = sign[joined["unit"].to_numpy(np.int64)]
    values = joined[["value_base", "value_base_c", "value_cur", "value_cur_c"]].to_numpy(np.float64)
    gaps = pd.DataFrame({"unit": joined["unit"].to_numpy(np.int64), "control": joined["unit_c"].to_numpy(np.int64),
                         "base": signs * (values[:, 0] - values[:, 1]), "cur": signs * (values[:, 2] - values[:, 3]),
                         "scale": np.abs(values).sum(axis=1), "odd": ~np.isfinite(values).all(axis=1)})
    per_pair = gaps.groupby(["unit", "control"], sort=False).agg(base=("base", "mean"), cur=("cur", "mean"),
                                                                 scale=("scale", "mean"), odd=("odd", "any"))
    margin = 1e-9 * per_pair["scale"]
    maybe = per_pair["odd"] | ((per_pair["base"] > -margin) & (per_pair["cur"] <= margin))
    return set(per_pair.index[maybe.to_numpy(bool)])


def _below_control(key: tuple, control: tuple, paired: pd.DataFrame, kind: tuple[str, bool], units: list[str],
                   names: _Names, policy: Policy, strict: bool) -> Finding | None:
    """The ``below_control`` finding of one method (``key``; ``kind``: its family and direction) and one control
    (see ``_below_controls``), or None. ``paired``: ``bm``, ``bc``, ``cm``, ``cc`` (baseline/current method/control
    values) on the (seed, sample_id) all four have."""
    if paired.empty:
        return None
    unit = {**names.unit(key), "family": kind[0], "higher_is_better": kind[1]}
    sign = 1.0 if unit["higher_is_better"] else -1.0
    base_gap, cur_gap = sign * (paired["bm"] - paired["bc"]), sign * (paired["cm"] - paired["cc"])
    if not (base_gap.mean() > 0 >= cur_gap.mean()):
        return None
    tol = policy.tolerance(unit["metric"], unit["family"])
    change = assess(base_gap.to_numpy(), cur_gap.to_numpy(), True, tol,
                    paired.index.get_level_values("sample_id").astype(str).to_numpy())
    name = names.method(control)
    means = paired.mean()
    test = f" (one-sided p={change.p_value:.2g})" if change.p_value is not None else ""
    if change.verdict == WORSE:
        verdict = f"fails{test}"
    elif abs(change.delta) > change.tolerance:
        verdict = f"passed: the gap's change is not significant{_why_not(change, tol)}"
    else:
        verdict = "passed: the gap moved within tolerance"
    text = (f"no longer beats the control {name}: mean {means['cm']:.4g} vs {means['cc']:.4g} (baseline "
            f"{means['bm']:.4g} vs {means['bc']:.4g}); its lead {change.baseline_mean:+.4g} -> "
            f"{change.current_mean:+.4g} over {change.n} pairs{_moved(change)}: {verdict}")
    details = {"control": str(control[units.index("method")]), "control_variant": names.variant(control),
               "control_label": name,
               "baseline": [float(means["bm"]), float(means["bc"])],
               "current": [float(means["cm"]), float(means["cc"])]}
    return Finding("below_control", change.verdict == WORSE or strict, unit, text, change=change, tolerance=tol,
                   details=details)


def _rank_changes(pairs: Pairs, base_units: UnitRows, cur_units: UnitRows, units: list[str], names: _Names,
                  policy: Policy, is_control: Controls, strict: bool) -> list[Finding]:
    """Pairs of competitors whose order (by mean ok value over the samples both tables scored, in the metric's
    direction) reversed in a group beyond the tolerance; a method and a control are ``_below_controls``' business.

    Beyond the tolerance: the leader led by more than the pair's bound in the baseline and trails by more than it
    now, the bound being the larger of the two units' size bounds (``atol + rtol * mean|baseline|``, as their value
    changes get). Two methods closer than that are tied at the policy's resolution, and ~1e-3 drift of another
    machine swapped them back and forth: a finding every run that taught people to ignore findings. The lead then
    changes by more than twice the bound, so at least one of the means moved beyond its own bound: drift the policy
    passes (each mean within its bound) never makes a reported reversal.

    Only the shared (seed, sample) pairs count: a current table with another seed or more samples would otherwise
    rank methods on other data than the baseline did, and report reversals nothing caused. Each table's means are
    taken over its own rows in its own order (as ranks are); groups are visited in key order."""
    base_means, cur_means = (_means(pairs.shared_rows(rows, name, units), units)
                             for rows, name in ((base_units, "base"), (cur_units, "cur")))
    both = base_means.merge(cur_means, on=units + ["higher_is_better"], suffixes=("_base", "_cur"))
    if both.empty:
        return []
    groups = both.groupby(group_columns(units), sort=True, dropna=False).ngroup().to_numpy(np.int64)
    order = np.argsort(groups, kind="stable")
    bounds = np.searchsorted(groups[order], np.arange(groups.max() + 2))
    competitors = both[competitor_columns(both)]
    controls = np.array([is_control.of(row) for row in competitors.to_dict("records")], dtype=bool)
    base, cur = both["score_base"].to_numpy(np.float64), both["score_cur"].to_numpy(np.float64)
    tolerance = _size_bounds(both, units, pairs, base_units, policy)
    findings = []
    for g in range(len(bounds) - 1):
        rows = order[bounds[g]:bounds[g + 1]]
        margin = np.maximum(tolerance[rows][:, None], tolerance[rows][None, :])
        swaps = ((base[rows][:, None] - base[rows][None, :] > margin)
                 & (cur[rows][None, :] - cur[rows][:, None] > margin))
        for better, worse in zip(*np.nonzero(swaps)):  # row-major: as a loop over (i, j)
            if controls[rows[better]] == controls[rows[worse]]:
                findings.append(_rank_finding(rows[better], rows[worse], both, units, names,
                                              float(margin[better, worse]), strict))
    return findings


def _size_bounds(both: pd.DataFrame, units: list[str], pairs: Pairs, base_units: UnitRows,
                 policy: Policy) -> np.ndarray:
    """``(rows of both,)`` each unit's size bound ``atol + rtol * mean|baseline|`` over its paired ok values: the
    bound its own value change is held to (``values.assess``)."""
    bound = {}
    for i, key in enumerate(pairs.keys):
        tol = policy.tolerance(str(key[units.index("metric")]), base_units.kind(key)[0])
        base_values = pairs.ok_values(i)[0]
        bound[key] = tol.atol + tol.rtol * (float(np.mean(np.abs(base_values))) if base_values.size else 0.0)
    return np.array([bound.get(key, 0.0) for key in both[units].itertuples(index=False, name=None)])


def _means(ok: pd.DataFrame, units: list[str]) -> pd.DataFrame:
    """Mean value per unit of ``ok`` rows, with ``score`` signed so that higher is better."""
    means = ok.groupby(units + ["higher_is_better"], sort=True, dropna=False)["value"].mean().reset_index()
    signed = means["value"].where(means["higher_is_better"], -means["value"])
    return means.assign(score=signed)


def _select(frame: pd.DataFrame, columns: list[str], key: tuple) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for column, value in zip(columns, key):
        mask &= (frame[column] == value).to_numpy()
    return frame[mask]


def _rank_finding(was_better: int, now_better: int, pairs: pd.DataFrame, units: list[str], names: _Names,
                  tolerance: float, strict: bool) -> Finding:
    row_a, row_b = pairs.iloc[was_better], pairs.iloc[now_better]
    key_b = tuple(row_b[c] for c in units)
    unit = {**names.unit(key_b), "higher_is_better": bool(row_b["higher_is_better"])}
    a_name = names.method(tuple(row_a[c] for c in units))
    text = (f"{names.method(key_b)} now ranks above {a_name} "
            f"({row_b['value_cur']:.4g} vs {row_a['value_cur']:.4g}; baseline {row_b['value_base']:.4g} vs "
            f"{row_a['value_base']:.4g}; apart by more than the tolerance {tolerance:.3g} in both)")
    details = {"now_above": str(row_b["method"]), "now_below": str(row_a["method"]),
               "baseline": [float(row_b["value_base"]), float(row_a["value_base"])],
               "current": [float(row_b["value_cur"]), float(row_a["value_cur"])], "tolerance": tolerance}
    return Finding("rank", strict, unit, text, details=details)


def _revision_changes(baseline: pd.DataFrame, current: pd.DataFrame, strict: bool) -> list[Finding]:
    """A model's or dataset's fingerprint that differs between the tables (same name and parameters), naming the
    part that changed -- a revision joins parts with ``+``: the weights file's (or data's) digest, then tagged ones
    such as ``code:<digest>`` of the file defining a model class -- and, for a model, its test accuracy."""
    findings = []
    for column, axis in zip(REVISION_COLUMNS, ("model", "dataset")):
        if column not in baseline or column not in current:
            continue
        key = [axis, f"{axis}_params"]
        before = baseline.loc[baseline[column] != "", key + [column]].drop_duplicates(key)
        after = current.loc[current[column] != "", key + [column]].drop_duplicates(key)
        joined = before.merge(after, on=key, suffixes=("_base", "_cur"))
        for row in joined[joined[f"{column}_base"] != joined[f"{column}_cur"]].itertuples(index=False):
            row = row._asdict()
            old, new = row[f"{column}_base"], row[f"{column}_cur"]
            what = changed_parts(str(old), str(new), "weights" if axis == "model" else "content")
            accuracy = _accuracy_change(baseline, current, key, (row[axis], row[f"{axis}_params"])) if axis == "model" \
                else ""
            text = (f"{axis} {row[axis]} {what}{accuracy}: its scores are measured on a changed "
                    f"{'model' if axis == 'model' else 'dataset'}")
            findings.append(Finding("revision", strict, {axis: row[axis], f"{axis}_params": row[f"{axis}_params"]},
                                    text, details={"before": old, "after": new}))
    return findings + _retrained(baseline, current, {(f.unit.get("model"), f.unit.get("model_params"))
                                                      for f in findings if "model" in f.unit}, strict)


def _retrained(baseline: pd.DataFrame, current: pd.DataFrame, reported: set, strict: bool) -> list[Finding]:
    """Models of the same name, parameters and revision whose test accuracy on the same dataset (name and parameters)
    differs: trained to other weights (a built-in model retrained under another torch, BLAS or training code).
    Scores moving with them are explained. A model is trained and tested per dataset: its accuracy on another
    dataset, or a mean over other datasets (one dropped from the sweep), says nothing about its weights."""
    key = ["model", "model_params", "dataset", "dataset_params"]
    if "model_accuracy" not in baseline or "model_accuracy" not in current:
        return []
    means = [frame.groupby(key, sort=True)["model_accuracy"].mean().rename(side)
             for frame, side in ((baseline, "before"), (current, "after"))]
    joined = pd.concat(means, axis=1, join="inner").dropna()
    findings = []
    for (model, params, dataset, dataset_params), row in joined[(joined["before"] - joined["after"]).abs()
                                                                > 1e-9].iterrows():
        if (model, params) in reported:
            continue
        text = (f"model {model} test accuracy {row['before']:.3g} -> {row['after']:.3g} on {dataset} with the same "
                "parameters and revision: trained to other weights (training code, torch or BLAS changed); its scores "
                "are measured on a changed model")
        findings.append(Finding("revision", strict, {"model": model, "model_params": params, "dataset": dataset,
                                                     "dataset_params": dataset_params}, text,
                                details={"accuracy": [float(row["before"]), float(row["after"])]}))
    return findings


def _revision_parts(revision: str, first: str) -> dict[str, str]:
    """``{"weights": digest, "code": digest, ...}`` of a revision (``<digest>+code:<digest>``); ``first`` names the
    untagged part."""
    parts = {}
    for index, piece in enumerate(revision.split("+")):
        tag, _, value = piece.partition(":")
        tagged = bool(value) and tag.replace("_", "").replace("-", "").isalpha()
        parts[tag if tagged else first if index == 0 else f"part {index + 1}"] = value if tagged else piece
    return parts


def changed_parts(old: str, new: str, first: str) -> str:
    """``code changed (509c4cc9018f -> 611e833b9a40; weights unchanged)``: which parts of a revision differ."""
    before, after = _revision_parts(old, first), _revision_parts(new, first)
    changed = [name for name in dict.fromkeys([*before, *after]) if before.get(name) != after.get(name)]
    same = [name for name in before if name not in changed]
    shown = "; ".join(f"{name} {before.get(name, '')[:12] or 'none'} -> {after.get(name, '')[:12] or 'none'}"
                      for name in changed)
    return (f"{' and '.join(changed)} changed ({shown}" + (f"; {' and '.join(same)} unchanged" if same else "") + ")")


def _accuracy_change(baseline: pd.DataFrame, current: pd.DataFrame, key: list[str], value: tuple) -> str:
    """``; test accuracy 1 -> 0.7`` when the model's recorded accuracy differs (the mean over the datasets both tables
    test it on: a dataset only one of them has would move the mean by itself), else ""."""
    if "model_accuracy" not in baseline or "model_accuracy" not in current:
        return ""
    rows = [_select(frame, key, value) for frame in (baseline, current)]
    data = ["dataset", "dataset_params"]
    shared = rows[0][data].drop_duplicates().merge(rows[1][data].drop_duplicates())
    means = [frame.merge(shared, on=data)["model_accuracy"].astype(float).mean() for frame in rows]
    if not all(np.isfinite(means)) or abs(means[0] - means[1]) < 1e-9:
        return ""
    return f"; test accuracy {means[0]:.3g} -> {means[1]:.3g}"
