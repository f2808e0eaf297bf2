"""How small a change each metric's tolerance can see, relative to the scale of its baseline scores.

A unit changes only beyond ``atol + rtol * mean|baseline|``. ``atol`` is in the metric's own units, so one
policy-wide ``atol`` is fine on a metric scored around 0.5 (2% of it) and blind on one scored around 0.05: an
``atol = 0.01`` (the default policy's once) there is 20%, and a method whose max-sensitivity got 19% worse passes
as "no differences" (not even ``unconfirmed``: that needs the mean to move beyond the bound).
``coarse_tolerances`` finds such metrics in the baseline and says which ``atol`` would bring the bound to
``TARGET`` of the smallest scale (still two orders of magnitude above cross-machine drift, ~1e-3 relative, and the
tests keep weighing samples, not single values).

Methods under test only: a control's drift does not gate unless the policy's ``gate_controls`` says so.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from xaibench.results.compare.policy import Policy

COARSE = 0.10  # a bound wider than this fraction of a unit's mean |baseline| is reported
TARGET = 0.05  # the suggested atol brings the bound to this fraction of the metric's smallest scale


@dataclass(frozen=True)
class CoarseTolerance:
    """One metric whose tolerance is wider than ``COARSE`` of the mean |baseline| of some of its units.

    Attributes:
        metric: the metric's name (a policy's ``metrics`` key).
        units: its units (methods under test) in the baseline; ``coarse``: how many of them are affected.
        widest, narrowest: the bound as a fraction of the unit's mean |baseline|, over the affected units.
        smallest_scale, largest_scale: the affected units' mean |baseline|.
        atol, rtol: the tolerance that applies; ``suggested_atol``: the atol that makes the bound ``TARGET`` of
            ``smallest_scale`` (rounded down to one significant digit; 0 when ``rtol`` alone exceeds it).
    """

    metric: str
    units: int
    coarse: int
    widest: float
    narrowest: float
    smallest_scale: float
    largest_scale: float
    atol: float
    rtol: float
    suggested_atol: float

    def text(self) -> str:
        """One line for the report."""
        share = (f"{_percent(self.narrowest)}-{_percent(self.widest)}"
                 if _percent(self.narrowest) != _percent(self.widest) else _percent(self.widest))
        scale = (f"{self.smallest_scale:.2g}-{self.largest_scale:.2g}" if self.units and self.coarse > 1
                 else f"{self.smallest_scale:.2g}")
        fix = (f"`metrics: {{{self.metric}: {{atol: {self.suggested_atol:g}}}}}` in your policy brings it to "
               f"{TARGET:.0%}" if self.rtol < TARGET else f"its rtol alone is {self.rtol:.0%}")
        return (f"`{self.metric}`: its tolerance (atol={self.atol:g} + rtol={self.rtol:g}·mean|b|) is {share} of the "
                f"mean |baseline| of {self.coarse} of its {self.units} units ({scale}), so a change smaller than that "
                f"passes without a finding; {fix} (docs/ci.md)")

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def coarse_tolerances(baseline: pd.DataFrame, units: list[str], policy: Policy,
                      is_control: Callable[[str, str], bool]) -> tuple[CoarseTolerance, ...]:
    """The metrics of ``baseline`` (a conformed table) whose tolerance under ``policy`` exceeds ``COARSE`` of the
    mean |baseline| of some of their units (``units``: the unit columns), methods under test only."""
    ok = baseline[baseline["status"] == "ok"]
    if ok.empty:
        return ()
    scales = ok.assign(magnitude=ok["value"].abs()).groupby(units, sort=False, dropna=False).agg(
        scale=("magnitude", "mean"), method=("method", "first"), method_params=("method_params", "first"),
        metric=("metric", "first"), family=("family", "first")).reset_index(drop=True)
    tested = [policy.gate_controls or not is_control(str(m), str(p))
              for m, p in zip(scales["method"], scales["method_params"])]
    found = []
    for (metric, family), rows in scales[tested].groupby(["metric", "family"], sort=True):
        tol = policy.tolerance(str(metric), str(family))
        share = (tol.atol + tol.rtol * rows["scale"]) / rows["scale"].where(rows["scale"] > 0)
        coarse = rows[share > COARSE]
        if coarse.empty:
            continue
        smallest = float(coarse["scale"].min())
        found.append(CoarseTolerance(
            metric=str(metric), units=len(rows), coarse=len(coarse), widest=float(share[coarse.index].max()),
            narrowest=float(share[coarse.index].min()), smallest_scale=smallest,
            largest_scale=float(coarse["scale"].max()), atol=tol.atol, rtol=tol.rtol,
            suggested_atol=_round_down(max(TARGET - tol.rtol, 0.0) * smallest)))
    return tuple(found)


def _percent(share: float) -> str:
    """``0.103`` -> ``10.3%`` (three digits: a bound just over ``COARSE`` does not read as equal to it)."""
    return f"{100 * share:.3g}%"


def _round_down(value: float) -> float:
    """``value`` rounded down to one significant digit (0.00144 -> 0.001)."""
    if value <= 0 or not math.isfinite(value):
        return 0.0
    unit = 10.0 ** math.floor(math.log10(value))
    return math.floor(value / unit) * unit
