"""Config group choices checked before composing: each name exists (``model=mlp``, ``hydra/launcher=slurm``), the
user's own configs are on Hydra's search path, and nothing sweeps what cannot be swept (Hydra's settings, the
scoring engine)."""
from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path

from xaibench.config.paths import GROUPS, group_options
from xaibench.config.preflight.launcher_plugins import _PLUGIN_OF, _installed
from xaibench.errors import UserError


def _check_group_names(parsed) -> None:
    extra = _search_dirs(parsed)
    for override in parsed:
        key = override.get_key_element().lstrip("+~")
        if key.startswith("hydra") and override.is_sweep_override():
            raise UserError(f"{override.input_line} sweeps over Hydra's own settings, which Hydra cannot do (one "
                            f"launcher and one set of its settings per run); run one sweep per value")
        if key == "engine" and override.is_sweep_override():
            raise UserError(f"{override.input_line} sweeps over the scoring engine, which is not an experimental "
                            "variable (both engines give the same scores) and no column tells their rows apart; run "
                            "one sweep per engine with its own sweep_id, or compare them with benchmarks/bench_scoring.py")
        if key in HYDRA_GROUPS and not override.is_delete():
            _check_hydra_choice(key, override.get_value_element_as_str(), extra)
        if key not in GROUPS or override.is_delete():
            continue
        options = group_options(key, extra)
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [
            override.get_value_element_as_str()]
        for value in values:
            if value == "null" and key != "experiment":
                raise UserError(f"{key}=null leaves the {key} group empty; choose one of: {', '.join(options)}")
            if value not in options and value != "null":
                close = difflib.get_close_matches(value, list(options), n=1)
                hint = _unsearched_config(key, value, extra) or (f"did you mean {close[0]!r}? " if close else "")
                raise UserError(f"unknown {key} {value!r}; {hint}valid: {', '.join(options)}")


def _unsearched_config(group: str, value: str, extra: list[Path]) -> str:
    """The hint for a config of the user's own that Hydra does not search: ``conf/experiment/my_ci.yaml`` in the
    folder the command runs in, without ``hydra.searchpath`` (docs/ci.md's first run reads "unknown experiment
    'my_ci'; valid: ci, ..." otherwise, which names neither the file nor the fix)."""
    conf = Path.cwd() / "conf"
    if not (conf / group / f"{value}.yaml").is_file() or any(d.resolve() == conf.resolve() for d in extra):
        return ""
    return (f"conf/{group}/{value}.yaml in this folder is not on Hydra's search path: add "
            f"\"hydra.searchpath=[file://{conf}]\"; ")


HYDRA_GROUPS = ("hydra/launcher", "hydra/sweeper")


def _check_hydra_choice(group: str, value: str, extra: list[Path]) -> None:
    """A launcher or sweeper that exists: ``conf/<group>/`` presets and the installed Hydra plugins' configs.

    Hydra's own message lists only the options of its configs it has loaded (``basic``), not the plugins'.

    Raises:
        UserError: an unknown name, or a launcher whose Hydra plugin is not installed (the ``launchers`` extra):
            the Slurm presets said "Could not load 'hydra/launcher/submitit_slurm_chunked'".
    """
    if group == "hydra/launcher" and value in _PLUGIN_OF and not _installed(_PLUGIN_OF[value][0]):
        raise UserError(f"hydra/launcher={value} needs {_PLUGIN_OF[value][1]}, which is not installed: "
                        f"pip install 'xaibench[launchers]'")
    options = _hydra_options(group, tuple(extra))
    if value not in options:
        offered = sorted(set(options) - REFUSED_LAUNCHERS)  # "did you mean 'submitit_slurm'?", then refused
        close = difflib.get_close_matches(value, offered, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"unknown {group} {value!r}; {hint}valid: {', '.join(offered)}")


REFUSED_LAUNCHERS = frozenset({"submitit_slurm"})  # known to Hydra, refused by _check_launcher_can_start


@lru_cache(maxsize=8)
def _hydra_options(group: str, extra: tuple[Path, ...]) -> frozenset[str]:
    """``conf/<group>/`` presets (and the user's search dirs') and the configs of the installed Hydra plugins
    (found once per process: every job's overrides are checked)."""
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()  # discovers the installed plugins, which register their configs (joblib, submitit, ...)
    plugins = {name.removesuffix(".yaml") for name in ConfigStore.instance().list(group)}
    return frozenset(group_options(group, list(extra))) | plugins


def _search_dirs(parsed) -> list[Path]:
    """Config dirs the user added with ``hydra.searchpath=[file:///abs/conf, pkg://their.configs, ...]`` (a
    ``pkg://`` package where it is a folder on disk)."""
    from xaibench.config.preflight.remembered import _package_folder

    dirs = []
    for override in parsed:
        if override.get_key_element() == "hydra.searchpath" and not override.is_delete():
            value = override.value()
            for item in value if isinstance(value, list) else [value]:
                if not str(item).startswith("pkg://"):
                    dirs.append(Path(str(item).removeprefix("file://")))
                elif (folder := _package_folder(str(item).removeprefix("pkg://"))) is not None:
                    dirs.append(folder)
    return dirs
