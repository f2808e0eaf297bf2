"""Where the Hydra configs live: the repository's top-level ``conf/`` (or ``$XAIBENCH_CONF_DIR``)."""
from __future__ import annotations

import os
from pathlib import Path

GROUPS = ("model", "dataset", "method", "metrics", "logger", "experiment")


def conf_dir() -> Path:
    override = os.environ.get("XAIBENCH_CONF_DIR")
    return Path(override).resolve() if override else Path(__file__).resolve().parents[2] / "conf"


def group_options(group: str, extra_dirs: list[Path] = ()) -> list[str]:
    """Option names of a config group: the ``*.yaml`` stems in ``conf/<group>/`` (and any extra search dirs), and
    ``sub/name`` for options in subfolders (e.g. ``method=variant/gradient``, a registered method with other
    parameters)."""
    names = set()
    for root in [conf_dir(), *extra_dirs]:
        folder = Path(root) / group
        if folder.is_dir():
            names.update(p.relative_to(folder).with_suffix("").as_posix() for p in folder.rglob("*.yaml"))
    return sorted(names)
