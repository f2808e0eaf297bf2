"""Mirror cell rows to Weights & Biases (offline by default). W&B is a mirror, never the source of truth.

One W&B run per cell, grouped by sweep id: config = the cell's config sections and key, a ``rows`` table with the
cell's long-format rows, and ``<metric>/mean`` summaries. Offline runs land under ``logger.dir`` (``WANDB_DIR``,
cache and data dirs are pointed there too, so nothing is written into ``$HOME``); upload later with
``wandb sync <dir>/wandb/offline-run-*``.
"""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from xaibench.engine.runner import CellResult


def log_cell(result: CellResult, cfg: DictConfig) -> str:
    """Log one cell; returns the run's local directory."""
    import wandb

    logger = cfg.logger
    folder = Path(logger.get("dir") or "results/wandb").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for variable, sub in (("WANDB_DIR", ""), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data"),
                          ("WANDB_CONFIG_DIR", "config")):
        os.environ.setdefault(variable, str(folder / sub))
    rows = result.rows
    first = rows.iloc[0]
    config = {
        "cell_key": result.key,
        **{k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("model", "dataset", "method", "metrics")},
        "seed": int(cfg.seed),
        "n_samples": int(cfg.n_samples),
        "sweep_id": str(cfg.sweep_id),
    }
    run = wandb.init(
        project=logger.get("project", "xaibench"),
        entity=logger.get("entity"),
        mode=logger.get("mode", "offline"),
        dir=str(folder),
        group=str(cfg.sweep_id),
        job_type="cell",
        name=f"{first['model']}-{first['dataset']}-{first['method']}-s{int(first['seed'])}",
        config=config,
        reinit="finish_previous",
        settings=wandb.Settings(silent=True, console="off"),
    )
    try:
        table = rows.astype({c: "object" for c in rows.columns if str(rows[c].dtype) == "string"})
        run.log({"rows": wandb.Table(dataframe=table)})
        ok = rows[rows["status"] == "ok"]
        for metric, values in ok.groupby("metric")["value"]:
            run.summary[f"{metric}/mean"] = float(values.mean())
            run.summary[f"{metric}/n"] = int(values.size)
        run.summary["status"] = result.status
        run.summary["cell_key"] = result.key
        return str(run.dir)
    finally:
        run.finish()
