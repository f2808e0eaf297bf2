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
from xaibench.config.plan import make_plan


def run(overrides: Sequence[str] = (), *, multirun: bool = False, echo: bool = False) -> pd.DataFrame:
    """Run one cell (or, with ``multirun=True``, every combination of the sweep) and return the results table.

    Args:
        overrides: Hydra overrides exactly as on the command line, e.g. ``["model=cnn", "dataset=digits"]``.
        multirun: expand sweeps (``method=a,b`` and an experiment's ``hydra.sweeper.params``).
        echo: print one line per cell and the summary, as the CLI does.

    Raises:
        UserError: bad input, before any compute.
    """
    plan = make_plan(list(overrides), multirun=multirun)
    return sweep.run_configs(plan.configs, multirun=multirun, echo=echo)


def load(path: str | Path) -> pd.DataFrame:
    """Load a results table: a ``.parquet``/``.csv`` file or a sweep folder."""
    from xaibench.results.collect import load_table

    return load_table(path)
