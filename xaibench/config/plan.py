"""A sweep's plan: its validated job configs, composed once and remembered for identical reruns.

The pre-flight composes every job with Hydra's compose API (about 0.1-0.3 s each) and validates it against the
registries. Its answer depends only on the command line, the config files and the package's code, so it is
cached under a digest of those (``$XAIBENCH_CACHE``, default ``~/.cache/xaibench/plans``): a warm rerun of the
same sweep loads its configs from one file instead of composing them again. Sweeps that add config search
paths (``hydra.searchpath``) or copy environment variables (``hydra.job.env_copy``) on the command line are never
cached. A plan keeps the values of the environment variables its answer read (``hydra.job.env_copy`` of its
configs, every ``${oc.env:NAME}`` written in them) and is not used once one changed; it also keeps the folders
Hydra writes (``hydra.sweep.dir``/``hydra.run.dir`` of the user's own), checked again on every load. The plan
also says whether the sweep can run in this process (no Hydra setting on the command line but
``hydra.searchpath``; Hydra's basic launcher and sweeper), see ``run_in_process``, and how Hydra would launch it
(``Launch``, checked again on every multirun: the launcher may have gone).

Only the most recently used plans are kept (``cache_bounds``: 256 files, 512 MB): a config edit leaves a new plan
behind and never reads the old one again.

The composition alone is cached too (``composed-<digest>.pickle``), under a digest of the configs, the composing
code (``xaibench/config/``, ``hydra_plugins/``) and Hydra's version: after an edit elsewhere in the code the jobs
are checked again (``preflight.validate(composed=...)``) but not composed again.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import omegaconf
from omegaconf import DictConfig

from xaibench import __version__
from xaibench.config.cache_bounds import PLAN_BYTES, PLAN_FILES, prune, touch
from xaibench.config.paths import conf_dir

BASIC = ("hydra._internal.core_plugins.basic_launcher.BasicLauncher",
         "hydra._internal.core_plugins.basic_sweeper.BasicSweeper")


@dataclass(frozen=True)
class Launch:
    """How Hydra would launch the sweep: ``hydra.launcher`` and ``hydra.sweeper`` as composed (experiments may set
    them). Kept in a cached plan, so that a rerun checks again that the launcher can start here."""

    launcher: str  # hydra.launcher._target_
    sweeper: str  # hydra.sweeper._target_
    settings: dict | None  # hydra.launcher (plain, unresolved), for the launcher's own check_can_start


@dataclass(frozen=True)
class Plan:
    """The job configs of a sweep (composed, unresolved), whether they may run in this process, and (multirun) how
    Hydra would launch them (``Launch``: checked again on every run, cached or not)."""

    configs: list[DictConfig]
    in_process: bool
    launch: Launch | None = None
    env: tuple[tuple[str, str | None], ...] = ()  # the environment variables its answer read, and their values then
    folders: tuple[tuple[str, str], ...] = ()  # (option, path): the folders Hydra writes, checked again on each load
    hydra_settings: tuple[str, ...] = ()  # settings of its configs that only Hydra applies (hydra.job.env_set, ...)


def make_plan(overrides: Sequence[str], *, multirun: bool, config_name: str = "config",
              remember_checks: bool = False) -> Plan:
    """Validate the sweep (pre-flight) or load its cached plan; raises ``UserError`` on bad input.

    ``remember_checks``: ``preflight.validate``'s (the CLI: a plan that is not cached re-checks only new cells).
    A plan that is not cached may still have its composition cached (the code was edited, not the configs): its
    job configs are then only checked, not composed again.
    """
    key = plan_key(overrides, multirun=multirun, config_name=config_name)
    cached = _load(key) if key else None
    if cached is not None:
        if cached.folders:  # hydra.sweep.dir / hydra.run.dir of the user's own: made a file, or read-only, since
            from xaibench.config.preflight.hydra_settings import check_folders

            check_folders(cached.folders)
        if multirun and not cached.in_process:  # the launcher may have gone since (Ray uninstalled, no sbatch)
            from xaibench.config.preflight import check_launch

            check_launch(cached.launch)
        return cached
    from xaibench.config.preflight import launch_of, planned_reads, validate

    composition = f"composed-{plan_key(overrides, multirun=multirun, config_name=config_name, composition=True)}" \
        if key else ""
    composed = _load(composition) if composition else None
    configs = validate(list(overrides), multirun=multirun, config_name=config_name, remember_checks=remember_checks,
                       composed=composed)
    if composed is not None:
        plan = composed
    else:
        launch = launch_of(list(overrides), config_name)
        basic = (launch.launcher, launch.sweeper) == BASIC
        env, folders, hydra_only = planned_reads(list(overrides), multirun=multirun, config_name=config_name)
        in_process = basic and not hydra_only and not any(map(_needs_hydra, overrides))
        plan = Plan(configs, in_process=in_process, launch=launch, env=env, folders=folders, hydra_settings=hydra_only)
        if composition:
            _save(composition, plan)
    if key and not any(_reads_files(cfg) for cfg in configs):  # files may change or vanish: re-validate them
        _save(key, plan)
    return plan


def _needs_hydra(override: str) -> bool:
    """An override of Hydra's own settings, which only Hydra applies (the in-process launcher ran without
    ``hydra.job.env_set``, ``env_copy``, ``chdir``, ``hydra.run.dir``, the logging settings, without a word); not
    ``hydra.searchpath``, which only composition reads."""
    key = override.lstrip("+~").split("=", 1)[0]
    return key.startswith("hydra") and not key.startswith("hydra.searchpath")


def cached_configs(overrides: Sequence[str], *, multirun: bool,
                   config_name: str = "config") -> list[DictConfig] | None:
    """The job configs of a cached composition of this command line with the config files as they are now (None:
    not cached). ``compare`` reads them to tell whether a sweep's config changed, without composing again."""
    key = plan_key(overrides, multirun=multirun, config_name=config_name, composition=True)
    plan = _load(f"composed-{key}") if key else None
    return plan.configs if plan is not None else None


def plan_key(overrides: Sequence[str], *, multirun: bool, config_name: str, composition: bool = False) -> str:
    """Digest of what the pre-flight's answer depends on; '' when it must not be cached.

    ``composition``: of what its composition alone depends on (the configs, the composing code in
    ``xaibench/config/`` and ``hydra_plugins/``, Hydra's and its plugins' versions), not the rest of the package.
    """
    if any("hydra.searchpath" in o or "env_copy" in o for o in overrides) or os.environ.get("XAIBENCH_NO_PLAN_CACHE"):
        return ""  # env_copy reads the environment when composing: a variable unset since was Hydra's KeyError
    digest = hashlib.blake2b(digest_size=16)
    root = conf_dir()
    digest.update(f"{__version__}|{omegaconf.__version__}|{multirun}|{config_name}|{list(overrides)!r}|{root}|".encode())
    digest.update(os.environ.get("XAIBENCH_STORE", "").encode())
    if not composition:  # a plugin's methods and their parameters are checked: another plugin, or an edited one
        from xaibench.engine.plugin_code import plugin_modules_digest

        digest.update(f"|{os.environ.get('XAIBENCH_PLUGINS', '')}|{plugin_modules_digest()}|".encode())
    package = Path(__file__).resolve().parents[1]  # validation is code too: an edited check re-validates
    code = [package / "config", package.parent / "hydra_plugins"] if composition else [package]
    if composition:
        digest.update(f"composition|{_versions(COMPOSING_LIBRARIES)}".encode())
    for base, pattern in ((root, "*.yaml"), *((folder, "*.py") for folder in code)):
        for path in sorted(base.rglob(pattern)):
            stat = path.stat()
            digest.update(f"{path.relative_to(base)}|{stat.st_size}|{stat.st_mtime_ns}|".encode())
    return digest.hexdigest()


COMPOSING_LIBRARIES = ("hydra-core", "hydra-joblib-launcher", "hydra-submitit-launcher", "hydra-optuna-sweeper")


def _versions(names: Sequence[str]) -> str:
    from importlib import metadata

    found = []
    for name in names:
        try:
            found.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name}=-")
    return "|".join(found)


def _reads_files(cfg: DictConfig) -> bool:
    from xaibench.engine.cell import CellSpec

    return CellSpec.from_config(cfg).reads_user_files()


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xaibench"
    return Path(os.environ.get("XAIBENCH_CACHE", default)) / "plans"


def _load(key: str) -> Plan | None:
    """The cached plan, or None. Configs are pickled ``DictConfig``s (struct mode, interpolations unresolved, as
    Hydra composed them): unpickling 48 of them takes 10 ms, ``OmegaConf.create`` from JSON 150 ms. The cache is
    the user's own folder (like ``__pycache__``); a damaged file fails to load and the plan is recomputed."""
    path = cache_dir() / f"{key}.pickle"
    try:
        plan = pickle.loads(path.read_bytes())
        if (isinstance(plan, Plan) and all(isinstance(cfg, DictConfig) for cfg in plan.configs)
                and (plan.in_process or plan.launch is not None) and env_unchanged(plan.env)):
            touch(path)  # recently used: kept when the cache is pruned
            return plan
    except Exception:  # noqa: BLE001 - a missing or damaged plan is recomputed
        pass
    return None


def env_unchanged(values: tuple[tuple[str, str | None], ...]) -> bool:
    """Each variable ``(name, value)`` still holds ``value`` (None: still unset)."""
    return all(os.environ.get(name) == value for name, value in values)


def _save(key: str, plan: Plan) -> None:
    from xaibench.engine.store import atomic_write_bytes

    path = cache_dir() / f"{key}.pickle"
    try:
        atomic_write_bytes(path, pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:
        return  # a read-only home only costs the next run a pre-flight
    prune(cache_dir(), ".pickle", max_files=PLAN_FILES, max_bytes=PLAN_BYTES, keep=path)
