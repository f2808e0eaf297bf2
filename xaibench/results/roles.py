"""Which competitors are controls: known by the role their rows record, not by their name.

A method class with ``control = True`` (``random``, ``constant``, ``sobel``, their subclasses, a user's own;
``xaibench/explainers/base.py``) records ``"role": "control"`` in its rows' ``method_params``. Everything that
treats controls apart (the statistics' control checks and "control matches or beats the best method" warnings,
the report's tables and figures, the galleries, the summary's ``role`` column, the W&B run) asks this module, so a
user's own control is a control everywhere and a user's method that happens to be called ``random`` is not.

Tables written before rows recorded roles hold none at all: there the built-in controls' names
(``BUILTIN_CONTROLS``) stand in for the role. A table is read by roles as soon as any of its rows records one
(the suite records every control's role; ``engine/stamp.py`` adds it to cells reused from a store written
before), so a table that records roles never has a control recognised by name alone.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
import pandas as pd

from xaibench.types import CONTROL_ROLE as CONTROL
from xaibench.types import ROLE_KEY  # the method_params key naming a method's role (``Explainer.recorded_role``)

BUILTIN_CONTROLS = ("random", "constant", "sobel")  # the suite's controls: the names of a table without roles
ROLE_COLUMN = "role"  # the summary's column: "control" for a control's rows, else ""


def recorded_role(method_params: str) -> str | None:
    """The role a ``method_params`` JSON object records, or None where it records none (or is not JSON)."""
    if f'"{ROLE_KEY}"' not in str(method_params):
        return None
    params = _json_object(method_params)
    return str(params[ROLE_KEY]) if params is not None and ROLE_KEY in params else None


def mentions_role(texts: pd.Series) -> pd.Series:
    """Whether each ``method_params`` text names the role key: the cheap test before parsing (a text that does not
    records no role)."""
    return texts.str.contains(f'"{ROLE_KEY}"', regex=False)


def split_role(method_params: str) -> tuple[str, str]:
    """``(method_params without its role, the role or "")``: the JSON re-dumped with sorted keys where it records a
    role, else unchanged."""
    params = _json_object(method_params)
    if params is None or ROLE_KEY not in params:
        return method_params, ""
    role = str(params.pop(ROLE_KEY))
    return json.dumps(params, sort_keys=True), role


def _json_object(text: str) -> dict | None:
    """The ``method_params`` JSON object (``{}`` for an empty text), or None where it is not one."""
    try:
        params = json.loads(text or "{}")
    except (TypeError, ValueError):
        return None
    return params if isinstance(params, dict) else None


def pair_roles(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """``CONTROL`` or ``""`` for each distinct ``(method, method_params)`` of one table.

    The recorded role where any pair records one; in a table where none does (written before roles were
    recorded), ``CONTROL`` for the built-in controls' names.
    """
    pairs = {(str(m), str(p)) for m, p in pairs}
    recorded = {pair: recorded_role(pair[1]) for pair in pairs}
    if any(role is not None for role in recorded.values()):
        return {pair: CONTROL if role == CONTROL else "" for pair, role in recorded.items()}
    return {pair: CONTROL if pair[0] in BUILTIN_CONTROLS else "" for pair in pairs}


def row_roles(frame: pd.DataFrame) -> pd.Series:
    """Each row's role (``CONTROL`` or ``""``) by :func:`pair_roles` of the frame's rows; by the built-in names
    where the frame has no ``method_params``."""
    if "method_params" not in frame.columns:
        names = frame["method"].astype(str)
        return pd.Series(names.isin(BUILTIN_CONTROLS).map({True: CONTROL, False: ""}), index=frame.index,
                         dtype="string")
    keys = frame[["method", "method_params"]].astype(str)
    roles = pair_roles(keys.drop_duplicates().itertuples(index=False, name=None))
    return pd.Series(pd.MultiIndex.from_frame(keys).map(roles), index=frame.index, dtype="string")


def table_controls(table: pd.DataFrame) -> frozenset[str]:
    """The competitor labels (``groups.competitor_labels``) of the table's controls."""
    from xaibench.results.groups import competitor_labels

    if table.empty:
        return frozenset()
    pairs = table[[c for c in ("method", "method_params") if c in table.columns]].drop_duplicates()
    return frozenset(competitor_labels(pairs)[row_roles(pairs) == CONTROL].astype(str))


def summary_controls(summary: pd.DataFrame) -> frozenset[str]:
    """The competitor labels of a summary's controls: its ``role`` column, or the built-in names for a summary
    written before it had one (``competitor`` is ``method`` where that column is missing too)."""
    if summary is None or summary.empty:
        return frozenset()
    names = summary["competitor"] if "competitor" in summary.columns else summary["method"]
    if ROLE_COLUMN in summary.columns:
        return frozenset(names[summary[ROLE_COLUMN].astype(str) == CONTROL].astype(str))
    return frozenset(n for n in names.astype(str).unique() if is_builtin_control(n))


def is_builtin_control(competitor: str) -> bool:
    """Whether a competitor label (``random`` or ``random (positive=True)``) names a built-in control: how a
    caller that has no roles at all (a hand-made summary without ``role``) tells controls."""
    return str(competitor).split(" (")[0] in BUILTIN_CONTROLS


def is_control(competitor: str, controls: Iterable[str] | None) -> bool:
    """Whether ``competitor`` is one of ``controls`` (:func:`table_controls` / :func:`summary_controls`); by the
    built-in names where ``controls`` is None (nothing tells roles)."""
    return is_builtin_control(competitor) if controls is None else str(competitor) in controls


def controls_last(names: Iterable[str], controls: Iterable[str] | None) -> list[str]:
    """``names`` alphabetically, controls (:func:`is_control`) last: they are reference points, not competitors.
    The order of every report table's rows and every figure's legend."""
    return sorted(names, key=lambda name: (is_control(name, controls), str(name)))


def record_builtin_roles(frame: pd.DataFrame) -> None:
    """Add ``"role": "control"`` to the ``method_params`` of the built-in controls' rows in ``frame`` (in place)
    that record no role (rows a store kept from before roles were recorded), as the suite records it today
    (sorted JSON keys).

    Only for a sweep's rows: there a method named ``random``, ``constant`` or ``sobel`` is the built-in control (the
    registry refuses a second method of a name), so a reused cell and a fresh one record the same role and a
    table never mixes rows with and without roles. Not for ``xaibench.evaluate`` rows, whose method name is the
    caller's. Reads only the built-in controls' rows (a warm sweep stamps every stored row).
    """
    if frame.empty or "method_params" not in frame.columns:
        return
    named = np.flatnonzero(frame["method"].isin(BUILTIN_CONTROLS).to_numpy(dtype=bool))
    if not len(named):
        return
    texts = frame["method_params"].iloc[named].astype(str)
    lacking = ~mentions_role(texts).to_numpy(dtype=bool)
    if lacking.any():
        added = {text: _with_control_role(text) for text in texts[lacking].unique()}
        column = frame.columns.get_loc("method_params")
        frame.iloc[named[lacking], column] = texts[lacking].map(added).to_numpy()  # positions: any index


def _with_control_role(text: str) -> str:
    params = _json_object(text)
    return text if params is None else json.dumps({**params, ROLE_KEY: CONTROL}, sort_keys=True)
