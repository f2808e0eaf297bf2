"""Python API for notebooks: the same code path as the CLI (pre-flight, cells, sweep folder, summary).

    >>> import xaibench
    >>> table = xaibench.run(["model=mlp", "dataset=breast_cancer", "method=saliency,random"], multirun=True)
    >>> summary = xaibench.summarize(table)
"""
from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xaibench import sweep
from xaibench.config.preflight import validate
from xaibench.errors import UserError


def run(overrides: Sequence[str] | str = (), *, multirun: bool = False, echo: bool = False) -> pd.DataFrame:
    """Run one cell (or, with ``multirun=True``, every combination of the sweep) and return the results table.

    Args:
        overrides: Hydra overrides exactly as on the command line, e.g. ``["model=cnn", "dataset=digits"]``;
            a string is split like a shell command line (``"model=cnn dataset=digits"``).
        multirun: expand sweeps (``method=a,b`` and an experiment's ``hydra.sweeper.params``).
        echo: print one line per cell and the summary, as the CLI does.

    Raises:
        UserError: bad input, before any compute (also: the sweep folder is in use by another run).
        StorageError: the store or results folder cannot be written (e.g. the disk is full).
    """
    configs = validate(_override_list(overrides), multirun=multirun)
    folders = {sweep.sweep_dir(cfg) for cfg in configs}
    with sweep.claim_sweeps(configs):
        for index, cfg in enumerate(configs):
            if not echo:
                cfg.progress = False
            sweep.run_job(cfg, label=f"job {index}" if multirun else "")
        tables = [sweep.finish_sweep(folder, echo=echo) for folder in sorted(folders)]
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]


def _override_list(overrides: Sequence[str] | str) -> list[str]:
    if isinstance(overrides, str):
        try:
            return shlex.split(overrides)
        except ValueError as error:
            raise UserError(f"cannot split the overrides {overrides!r}: {error}") from None
    try:
        items = list(overrides)
    except TypeError:
        raise UserError(f"overrides must be a list of strings like ['model=mlp'], got {overrides!r}") from None
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        raise UserError(f"overrides must be strings like 'model=mlp', got {bad[0]!r}")
    return items


def load(path: str | Path) -> pd.DataFrame:
    """Load a results table: a ``.parquet``/``.csv`` file or a sweep folder."""
    from xaibench.results.collect import load_table

    return load_table(path)
