"""Where the Hydra configs live: the repository's top-level ``conf/`` (or ``$XAIBENCH_CONF_DIR``)."""
from __future__ import annotations

import os
from pathlib import Path

GROUPS = ("model", "dataset", "method", "metrics", "logger", "experiment")


def conf_dir() -> Path:
    override = os.environ.get("XAIBENCH_CONF_DIR")
    return Path(override).resolve() if override else Path(__file__).resolve().parents[2] / "conf"


def group_options(group: str, extra_dirs: list[Path] = ()) -> list[str]:
    """Option names of a config group: the ``*.yaml`` stems in ``conf/<group>/`` (and any extra search dirs)."""
    names = set()
    for root in [conf_dir(), *extra_dirs]:
        folder = Path(root) / group
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.yaml"))
    return sorted(names)
