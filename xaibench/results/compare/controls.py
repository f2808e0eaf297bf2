"""Controls -- reference methods (``random``, ``constant``, ``sobel``, a user's own), not methods under test -- and
the ``below_control`` findings: a method that beat a control of its comparison group now scores at or below it.

Which units are controls: ``Controls`` (the rows' recorded role, else the policy's ``controls``). A control's own
drift is reported by the unit walk (``unit_changes``); here each method's per-sample lead over each control of its
group is tested like a score change (``below_controls``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xaibench.results.compare.change_text import moved_text, why_not_significant
from xaibench.results.compare.findings import Finding
from xaibench.results.compare.names import UnitNames
from xaibench.results.compare.pairing import SAMPLE_KEY, Pairs, UnitRows
from xaibench.results.compare.policy import Policy
from xaibench.results.compare.tables import group_columns
from xaibench.results.compare.values import WORSE, assess


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


def below_controls(pairs: Pairs, base_units: UnitRows, cur_units: UnitRows, units: list[str], names: UnitNames,
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
                   names: UnitNames, policy: Policy, strict: bool) -> Finding | None:
    """The ``below_control`` finding of one method (``key``; ``kind``: its family and direction) and one control
    (see ``below_controls``), or None. ``paired``: ``bm``, ``bc``, ``cm``, ``cc`` (baseline/current method/control
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
        verdict = f"passed: the gap's change is not significant{why_not_significant(change, tol)}"
    else:
        verdict = "passed: the gap moved within tolerance"
    text = (f"no longer beats the control {name}: mean {means['cm']:.4g} vs {means['cc']:.4g} (baseline "
            f"{means['bm']:.4g} vs {means['bc']:.4g}); its lead {change.baseline_mean:+.4g} -> "
            f"{change.current_mean:+.4g} over {change.n} pairs{moved_text(change)}: {verdict}")
    details = {"control": str(control[units.index("method")]), "control_variant": names.variant(control),
               "control_label": name,
               "baseline": [float(means["bm"]), float(means["bc"])],
               "current": [float(means["cm"]), float(means["cc"])]}
    return Finding("below_control", change.verdict == WORSE or strict, unit, text, change=change, tolerance=tol,
                   details=details)
