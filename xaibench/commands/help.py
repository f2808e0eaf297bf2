"""``xaibench --help``: the verbs, the config groups with their options, the run options, then Hydra's usage.

Read from the code (``cli.VERBS`` and each verb module's ``DESCRIPTION``) and from ``conf/`` (the group folders
and the root config), so it never goes stale. Imports neither torch nor the registries: it answers at once.
"""
from __future__ import annotations

import importlib
import textwrap
from collections.abc import Mapping

import yaml

from xaibench.config.paths import GROUPS, conf_dir, group_options

_WIDTH = 110
# Flags xaibench answers itself (--help, --version) or refuses (--config-path/--config-dir: use hydra.searchpath).
_HYDRA_FLAGS_HIDDEN = frozenset({"help", "version", "config_path", "config_dir", "experimental_rerun"})


def overview(verbs: Mapping[str, str]) -> str:
    """The full help text."""
    from xaibench import __version__

    parts = [
        f"xaibench {__version__}: reproducible benchmarks of explanation methods (models x datasets x methods,",
        "scored with Quantus metrics, one tidy results table).",
        "",
        "usage: xaibench [-m] [group=option ...] [key=value ...]   run one cell, or with -m every combination",
        "       xaibench VERB [options]                             work with results (xaibench VERB --help)",
        "       xaibench --version | --help",
        "",
        "verbs:",
        *_verb_lines(verbs),
        "",
        "config groups (group=option; sweep with -m group=a,b; parameters as group.param=value):",
        *_group_lines(),
        "",
        "run options (key=value):",
        *_wrap(", ".join(_run_options()), "  "),
        "",
        "launchers (-m hydra/launcher=NAME; logs, progress and failures on a cluster: docs/cluster.md):",
        *_wrap(", ".join(["basic (the default: in this process)", "joblib (hydra.launcher.n_jobs=N)",
                          *group_options("hydra/launcher"), "submitit_local_chunked"]), "  "),
        "",
        "examples:",
        "  xaibench -m experiment=quickstart",
        "  xaibench -m model=cnn,mlp dataset=digits method=saliency,integrated_gradients seed=0,1,2",
        "  xaibench dataset=csv_table dataset.path=data/my.csv dataset.target=label dataset.label='My data'",
        "  xaibench --cfg job model=cnn dataset=digits      (show the composed config)",
        "",
        "Hydra's usage (flags accepted before the overrides):",
        _hydra_usage(),
    ]
    return "\n".join(parts)


def _verb_lines(verbs: Mapping[str, str]) -> list[str]:
    width = max(map(len, verbs)) + 2
    lines = []
    for name, module_name in verbs.items():
        description = getattr(importlib.import_module(module_name), "DESCRIPTION", "").strip().splitlines()
        lines += _wrap(description[0] if description else "", f"  {name:<{width}}", " " * (width + 2))
    return lines


def _group_lines() -> list[str]:
    width = max(map(len, GROUPS)) + 2
    lines = []
    for group in GROUPS:
        lines += _wrap(", ".join(group_options(group)), f"  {group + ':':<{width}}", " " * (width + 2))
    return lines


def _run_options() -> list[str]:
    data = yaml.safe_load((conf_dir() / "config.yaml").read_text()) or {}
    return [key for key in data if key not in ("defaults", "hydra", *GROUPS)] + ["model.label", "dataset.label"]


def _hydra_usage() -> str:
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    lines = []
    for action in parser._actions:  # format_help() fails on Hydra's lazy completion help text
        if action.option_strings and action.dest not in _HYDRA_FLAGS_HIDDEN:
            text = " ".join(str(action.help or "").split()).split(": ")[0]
            lines += _wrap(text, f"  {', '.join(action.option_strings):<26}", " " * 28)
    return "\n".join(lines)


def _wrap(text: str, first: str, rest: str | None = None) -> list[str]:
    return textwrap.wrap(text, _WIDTH, initial_indent=first, subsequent_indent=rest if rest is not None else first,
                         break_on_hyphens=False) or [first.rstrip()]
