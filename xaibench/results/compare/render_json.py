"""The machine-readable JSON verdict of a ``Comparison``: every finding, the policy, counts, the command that
accepts the changes (when they can be accepted) and the pull request's baseline refresh."""
from __future__ import annotations

import json
import math
from typing import Any

from xaibench.results.compare.findings import Comparison, Finding
from xaibench.results.compare.render_shared import (acceptable, baseline_command, counts, direction, has_errors,
                                                    refresh_of, stale, update_command)


def to_json(comparison: Comparison, *, baseline: str, current: str, context: dict | None = None) -> dict[str, Any]:
    """The verdict as plain JSON-able data (every finding, the policy, counts)."""
    return {
        "verdict": "fail" if comparison.failed else "pass",
        "exit_code": comparison.exit_code,
        "baseline": {"path": baseline, **((context or {}).get("baseline") or {})},
        "current": {"path": current, **((context or {}).get("current") or {})},
        "config_check": (context or {})["config"].as_dict() if (context or {}).get("config") else None,
        "policy": comparison.policy.as_dict(),
        "strict_changes": comparison.strict_changes,
        "allow_missing": comparison.allow_missing,
        "unused_overrides": list(comparison.unused_overrides),
        "recorded_controls": list(comparison.recorded_controls),  # methods whose rows record the control role
        "coarse_tolerances": [coarse.as_dict() for coarse in comparison.coarse_tolerances],
        "counts": {"units": comparison.n_units, "pairs": comparison.n_pairs, "differing": comparison.n_differing,
                   "failing": sum(1 for f in comparison.findings if f.fails), **counts(comparison)},
        "max_abs_diff": comparison.max_abs_diff,
        "findings": [_finding_json(f) for f in comparison.findings],
        "update_command": (update_command(baseline, current, baseline_command(context))
                           if acceptable(comparison) and not has_errors(comparison) and not stale(context)
                           and not ((context or {}).get("current") or {}).get("partial") else None),
        "baseline_refresh": _refresh_json(context),
    }


def _refresh_json(context: dict | None) -> dict | None:
    """``--previous-baseline``'s outcome: its path, ``state``, and for a refresh its verdict, counts and findings."""
    refresh = refresh_of(context)
    if not refresh:
        return None
    out = {k: v for k, v in refresh.items() if k != "comparison"}
    if "comparison" in refresh:
        changes = refresh["comparison"]
        out.update(would_fail=changes.failed, counts=counts(changes),
                   findings=[_finding_json(f) for f in changes.findings])
    return out


def dumps(data: dict[str, Any]) -> str:
    """``to_json``'s data as JSON text (NaN and inf as null, numpy scalars as numbers), indented, one final newline."""
    return json.dumps(_clean(data), indent=2, sort_keys=False) + "\n"


def _finding_json(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": f.kind, "fails": f.fails, "message": f.message, "unit": dict(f.unit),
                           "details": dict(f.details)}
    if f.change is not None:
        out["change"] = {k: getattr(f.change, k) for k in f.change.__dataclass_fields__}
        out["change"]["direction"] = direction(f)
        out["tolerance"] = f.tolerance.as_dict()
    return out


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf and no numpy scalars: map them to null / Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
