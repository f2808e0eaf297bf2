"""Where a report's numbers come from: the sweep, code commit and library versions its table's rows record, the
grid of cells they cover, and the sweep's command line where the table still lies in its sweep folder.

A table copied out of its sweep folder keeps its rows' provenance columns (``results/schema.py``:
``PROVENANCE_COLUMNS``), so its report still names the sweep and commit; the command line lives in the folder's
``sweep.json`` only, and the report says so where it cannot find it. A table without those columns (a hand-made
CSV) gets "unknown" in each row, never a guess.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from xaibench.report.tables.model import Cell, Column, Table

# (column, what the report calls it)
RECORDED = (("sweep_id", "sweep"), ("git_sha", "xaibench commit (git_sha)"), ("xaibench_version", "xaibench"),
            ("torch_version", "torch"), ("captum_version", "captum"), ("quantus_version", "quantus"))
GRID = ("model", "dataset", "method", "seed", "n_samples", "target_mode", "explain_output")  # the cells' names


def provenance_table(table: pd.DataFrame, source: Path | None = None) -> Table:
    """One row per fact: the recorded sweep, commit and versions (each distinct value, or ``unknown``), when the
    rows were made, the grid of cells, and with ``source`` (the path the report read) the sweep's command line or
    why it is unknown.

    Args:
        table: the results table the report reads.
        source: the table file or sweep folder given to ``xaibench report``; None (the Python API) leaves the
            command line out.
    """
    rows = [(label, _recorded(table, column)) for column, label in RECORDED]
    rows.append(("rows made", _created(table)))
    rows.append(("cells", _grid(table)))
    if source is not None:
        rows.append(("sweep command", _command(table, Path(source))))
    unknown = [label for label, value in rows if value.startswith("unknown")]
    notes = (f"Unknown: {', '.join(unknown)}.",) if unknown else ()
    return Table(key="provenance", caption="Provenance: the sweep, code and libraries this report's table records.",
                 corner="what", columns=(Column("value", text=True),),
                 rows=tuple((label, (Cell(value),)) for label, value in rows), notes=notes)


def _values(table: pd.DataFrame, column: str) -> list[str]:
    if column not in table.columns:
        return []
    values = table[column].dropna().astype(str)
    return sorted(v for v in values.unique() if v not in ("", "unknown"))


def _recorded(table: pd.DataFrame, column: str) -> str:
    values = _values(table, column)
    if not values:
        return f"unknown (the table records no {column})"
    if len(values) == 1:
        return values[0]
    return f"{len(values)} values: {', '.join(values)} (the table mixes them)"


def _created(table: pd.DataFrame) -> str:
    values = _values(table, "created_at")
    if not values:
        return "unknown (the table records no created_at)"
    return values[0] if len(values) == 1 else f"{values[0]} to {values[-1]}"


def _grid(table: pd.DataFrame) -> str:
    """``model=mlp dataset=breast_cancer,digits method=... seed=0,1 n_samples=16``: the names the rows cover."""
    parts = []
    for column in GRID:
        values = _values(table, column)
        if values:
            parts.append(f"{column}={','.join(_numeric_order(values))}")
    metrics = _values(table, "metric")
    return " ".join(parts) + (f"; metrics: {', '.join(metrics)}" if metrics else "")


def _numeric_order(values: list[str]) -> list[str]:
    """Seeds as numbers (0, 1, 10), names as text."""
    try:
        return sorted(values, key=float)
    except ValueError:
        return values


def _command(table: pd.DataFrame, source: Path) -> str:
    """The command line of the sweep whose folder holds the table (its ``sweep.json``), or why it is unknown."""
    from xaibench.results.compare.config_check import rerun_command
    from xaibench.results.manifest import recorded_command

    folder = source if source.is_dir() else source.parent
    sweeps = _values(table, "sweep_id")
    in_sweep = folder.name in sweeps and (folder / "sweep.json").is_file()
    command = recorded_command(folder) if in_sweep else None
    if in_sweep and command is None:
        return (f"unknown: {folder / 'sweep.json'} records no command line (a sweep of the Python API, or of an "
                "older xaibench)")
    if command is None:
        where = f"<results_dir>/{sweeps[0] if len(sweeps) == 1 else '<sweep_id>'}/sweep.json"
        return (f"unknown: {source} does not lie in its sweep folder (a table copied out of it), whose sweep.json "
                f"records the command ({where}); each cell's configuration is in the table's rows "
                "(model_params, dataset_params, method_params, params)")
    return rerun_command(command)  # quoted for a shell, with its --config-name (or the xaibench.run call)
