"""Python API for notebooks: the same code path as the CLI (pre-flight, cells, sweep folder, summary).

    >>> import xaibench
    >>> table = xaibench.run(["model=mlp", "dataset=breast_cancer", "method=saliency,random"], multirun=True)
    >>> summary = xaibench.summarize(table)
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xaibench import sweep
from xaibench.config.preflight import validate


def run(overrides: Sequence[str] = (), *, multirun: bool = False, echo: bool = False) -> pd.DataFrame:
    """Run one cell (or, with ``multirun=True``, every combination of the sweep) and return the results table.

    Args:
        overrides: Hydra overrides exactly as on the command line, e.g. ``["model=cnn", "dataset=digits"]``.
        multirun: expand sweeps (``method=a,b`` and an experiment's ``hydra.sweeper.params``).
        echo: print one line per cell and the summary, as the CLI does.

    Raises:
        UserError: bad input, before any compute.
    """
    configs = validate(list(overrides), multirun=multirun)
    folders = {sweep.sweep_dir(cfg): cfg for cfg in configs}
    for folder in folders:
        sweep.start_sweep(folder)
    for index, cfg in enumerate(configs):
        if not echo:
            cfg.progress = False
        sweep.run_job(cfg, label=f"job {index}" if multirun else "")
    tables = [sweep.finish_sweep(folder, echo=echo, cfg=folders[folder]) for folder in sorted(folders)]
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]


def load(path: str | Path) -> pd.DataFrame:
    """Load a results table: a ``.parquet``/``.csv`` file or a sweep folder."""
    from xaibench.results.collect import load_table

    return load_table(path)
