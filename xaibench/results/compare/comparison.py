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

Here: aligning the two tables' units (a cell that failed before scoring matched to its scored unit, a method whose
parameters changed matched to its old unit) and putting the findings together. The checks themselves are in
``unit_changes`` (unit by unit), ``controls`` (``below_control``), ``ranks`` and ``revisions``; the results'
types in ``findings``, how units are named in ``names``.
"""
from __future__ import annotations

import pandas as pd

from xaibench.results.compare.controls import Controls, below_controls
from xaibench.results.compare.findings import KINDS, ComparedUnit, Comparison, Finding
from xaibench.results.compare.names import NAMES, UnitNames, display_labels
from xaibench.results.compare.pairing import SAMPLE_KEY, Pairs, UnitRows
from xaibench.results.compare.policy import Policy
from xaibench.results.compare.ranks import rank_changes
from xaibench.results.compare.resolution import coarse_tolerances
from xaibench.results.compare.revisions import changed_parts, revision_changes
from xaibench.results.compare.tables import (check_unique, records_any_role, unit_columns, without_roles,
                                            without_run_notes)
from xaibench.results.compare.unit_changes import UnitWalker

__all__ = ["KINDS", "NAMES", "ComparedUnit", "Comparison", "Controls", "Finding", "changed_parts", "compare_tables"]


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
    display = display_labels(current, baseline)  # model.label / dataset.label: as the tables are now first
    names = UnitNames(keys, units, base_units.frame, cur_units.frame, display)
    walker = UnitWalker(policy, controls, strict_changes, allow_missing, base_units, cur_units, pairs)
    replaced = _reparametrised(keys, base_units, cur_units, units)
    for key in keys:
        walker.visit(names.unit(key), key, paired.get(key, key), replaced.get(key), names)
    findings = walker.findings
    findings += below_controls(pairs, base_units, cur_units, units, names, policy, controls, strict_changes)
    findings += rank_changes(pairs, base_units, cur_units, units, names, policy, controls, strict_changes)
    findings += revision_changes(baseline, current, strict_changes, display)
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


def _nothing_compared(baseline: pd.DataFrame, current: pd.DataFrame, walker: UnitWalker,
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
