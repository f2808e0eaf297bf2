"""Where a sweep's folder is, and the names of what it holds beside ``cells/`` and the tables (``collect``)."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from xaibench.results import manifest

WANDB_CACHED = "wandb_cached"  # <sweep_dir>/wandb_cached/<cell_key>: cells not re-logged to W&B
WANDB_SUMMARY = "wandb_summary_logged"  # <sweep_dir>/wandb_summary_logged: its W&B summary run was logged once


PLANNED_CELLS = manifest.PLANNED_NAME  # <sweep_dir>/cells.planned: the running sweep's cell keys and labels
STRAY_CELLS = "cells.stray"  # cell files found in cells/ that are not of the sweep, set aside by its end


def sweep_dir(cfg: DictConfig) -> Path:
    return Path(cfg.results_dir) / str(cfg.sweep_id)
