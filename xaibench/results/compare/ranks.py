"""``rank`` findings: within a comparison group a method now ranks below one it used to beat, the two apart by
more than the tolerance in both tables (a method and a control: ``controls.below_controls`` instead)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from xaibench.results.compare.controls import Controls
from xaibench.results.compare.findings import Finding
from xaibench.results.compare.names import UnitNames
from xaibench.results.compare.pairing import Pairs, UnitRows
from xaibench.results.compare.policy import Policy
from xaibench.results.compare.tables import group_columns
from xaibench.results.groups import competitor_columns


def rank_changes(pairs: Pairs, base_units: UnitRows, cur_units: UnitRows, units: list[str], names: UnitNames,
                 policy: Policy, is_control: Controls, strict: bool) -> list[Finding]:
    """Pairs of competitors whose order (by mean ok value over the samples both tables scored, in the metric's
    direction) reversed in a group beyond the tolerance; a method and a control are the business of
    ``controls.below_controls``.

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


def _rank_finding(was_better: int, now_better: int, pairs: pd.DataFrame, units: list[str], names: UnitNames,
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
