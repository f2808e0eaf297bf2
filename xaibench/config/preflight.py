"""Validate a whole sweep before any compute: names, types, parameters, sample counts.

Expands the sweep exactly as Hydra's basic sweeper does (``hydra.sweeper.params`` from the config, then the
command-line sweep overrides), composes every combination with Hydra's compose API and resolves each cell
against the registries. Nothing is written to disk. Any problem raises ``UserError`` with one clear line.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import re
import shutil
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob
from hydra.errors import HydraException
from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from xaibench.config.paths import GROUPS, conf_dir, group_options
from xaibench.config.plan import Launch, Plan
from xaibench.config.verdicts import Verdicts
from xaibench.engine.cell import CellSpec
from xaibench.errors import UserError

MAX_VALIDATED = 2000  # jobs that build their dataset and model for their own seed; the others build once per
# (dataset, model, n_samples) that no earlier job built: every job is still checked before any file is written


def expand_sweep(overrides: Sequence[str], *, multirun: bool, config_name: str = "config") -> list[list[str]]:
    """The list of per-job override lists Hydra's basic sweeper would launch (one entry when not multirun)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parser = OverridesParser.create()
    parsed = _parse_overrides(parser, overrides)
    _check_added_hydra_keys(parsed, multirun, config_name)
    if not multirun:
        sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
        if sweeps:
            raise UserError(f"{sweeps[0]} is a sweep: add -m (multirun) to run every combination")
        declared = OmegaConf.select(_compose(list(overrides), config_name, return_hydra_config=True),
                                    "hydra.sweeper.params")
        if declared:
            listed = " ".join(f"{k}={v}" for k, v in declared.items())
            raise UserError(f"this config declares a sweep ({listed}): add -m (multirun) to run it")
        return [list(overrides)]
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    base = _compose(fixed, config_name, return_hydra_config=True)
    params = OmegaConf.select(base, "hydra.sweeper.params") or {}
    from_config = [f"{k}={v}" for k, v in params.items()]
    try:
        all_overrides = parser.parse_overrides(from_config + list(overrides))
        _set_group_lister(all_overrides)
        _check_group_names(all_overrides)
        batches = BasicSweeper.split_arguments(all_overrides, None)
    except HydraException as error:
        raise UserError(_first_line(error)) from None
    jobs = [list(job) for batch in batches for job in batch]
    if not jobs:  # Hydra launches nothing and the run exits 0 having done nothing
        empty = [o.input_line or f"{o.key_or_group}={o.value()}" for o in all_overrides
                 if o.is_sweep_override() and not list(o.sweep_string_iterator())]
        raise UserError(f"the sweep has no jobs: {', '.join(empty) or 'a swept key'} gives no value; "
                        f"give every swept key at least one value (e.g. seed=range(0,3) or seed=0,1,2)")
    return jobs


def _parse_overrides(parser: OverridesParser, overrides: Sequence[str]) -> list:
    """Hydra's parsed overrides, with syntax errors and unknown group names as one-line ``UserError``s."""
    try:
        parsed = parser.parse_overrides(list(overrides))
    except HydraException as error:
        raise UserError(_first_line(error) + QUOTING_HINT) from None
    _set_group_lister(parsed)
    _check_group_names(parsed)
    return parsed


def _set_group_lister(parsed) -> None:
    """Give the overrides the config loader a ``glob(...)`` sweep lists its group's options with (Hydra's
    sweepers set their own; without one, ``method=glob(*)`` raised "ConfigLoader is not set")."""
    if any(isinstance(o.value(), Glob) for o in parsed):
        loader = _config_loader(tuple(_search_dirs(parsed)))
        for override in parsed:
            override.config_loader = loader


@lru_cache(maxsize=8)
def _config_loader(extra: tuple[Path, ...]):
    """Hydra's loader over xaibench's configs and the user's ``hydra.searchpath`` dirs, as a run's sweeper has."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path

    search_path = create_config_search_path(str(conf_dir()))
    for folder in extra:
        search_path.append("xaibench-searchpath", f"file://{folder}")
    return ConfigLoaderImpl(config_search_path=search_path)


# Hydra's grammar error names no fix; paths with ~ or parentheses (`dataset.path=~/data.csv`) are the usual cause.
QUOTING_HINT = (" (quote values with characters such as ~ ( ) [ ] , = or spaces: 'dataset.path=\"~/my data.csv\"', "
                "'dataset.features=[\"length (cm)\",age]')")


def validate_names(overrides: Sequence[str], *, multirun: bool, config_name: str = "config") -> None:
    """The checks that need no data (names, override syntax, composition): for ``--cfg``/``--info``."""
    parsed = _parse_overrides(OverridesParser.create(), overrides)
    _check_added_hydra_keys(parsed, multirun, config_name)
    fixed = [o.input_line for o in parsed if not (multirun and o.is_sweep_override())]
    _check_top_level_keys(_compose(fixed, config_name, return_hydra_config=False), config_name)


def _check_added_hydra_keys(parsed, multirun: bool, config_name: str) -> None:
    """``+hydra.bogus=1``, which Hydra accepts and ignores; keys into a null Hydra section (``hydra_keys``)."""
    from xaibench.config.hydra_keys import check_hydra_settings

    fixed = [o for o in parsed if not (multirun and o.is_sweep_override())]
    check_hydra_settings(fixed, lambda rest: _compose(rest, config_name, return_hydra_config=True))


def compose_job(overrides: Sequence[str], config_name: str = "config") -> DictConfig:
    """The composed (job-level) config of one combination."""
    return _compose(list(overrides), config_name, return_hydra_config=False)


def compose_jobs(jobs: Sequence[Sequence[str]], config_name: str = "config") -> list[DictConfig]:
    """``compose_job`` for every job, composing each distinct selection of config groups once.

    Jobs that differ only in plain values (``seed=1``, ``n_samples=8``, ``model.hidden=[8]``) share their defaults
    list. Hydra's ``compose`` builds the config from the defaults list, then applies the value overrides in
    command-line order (``ConfigLoaderImpl._apply_overrides_to_config``); here the first part is done once per
    selection and the second, with that same Hydra function, per job, on a copy: the same configs, and a 48-job
    sweep over 2 seeds composes 24 times instead of 48 (~75 ms each). A job with any other override (a deletion,
    ``hydra.*``, a package) is composed on its own: Hydra applies those in command-line order with the values.
    """
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    parser = OverridesParser.create()
    bases: dict[tuple[str, ...], DictConfig] = {}
    configs = []
    for job in jobs:
        parsed = _parse_overrides(parser, job)
        plain = [_is_plain_value(o) for o in parsed]
        values = [o for o, is_value in zip(parsed, plain) if is_value]
        if not values or not all(is_value or _is_group_choice(o) for o, is_value in zip(parsed, plain)):
            configs.append(compose_job(job, config_name))  # e.g. a deletion: Hydra applies it in line order
            continue
        selection = tuple(o.input_line for o, is_value in zip(parsed, plain) if not is_value)
        if selection not in bases:
            bases[selection] = compose_job(list(selection), config_name)
        cfg = copy.deepcopy(bases[selection])
        try:
            ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        except (HydraException, OmegaConfBaseException, ValueError) as error:
            raise UserError(_override_error(error, lambda: bases[selection])) from None
        configs.append(cfg)
    return configs


def _is_plain_value(override) -> bool:
    """An override of a config value (``seed=1``, ``+x.y=2``), not of a config group or of Hydra's settings."""
    key = override.key_or_group
    return (override.package is None and not override.is_delete() and "/" not in key and not key.startswith("hydra")
            and ("." in key or not (conf_dir() / key).is_dir()))


def _is_group_choice(override) -> bool:
    """A choice of option in one of the suite's config groups (``model=mlp``): consumed by the defaults list."""
    key = override.key_or_group
    return (override.package is None and not override.is_delete() and "." not in key and not key.startswith("hydra")
            and (conf_dir() / key).is_dir())


def validate(overrides: Sequence[str], *, multirun: bool, config_name: str = "config",
             remember_checks: bool = False, composed: Plan | None = None) -> list[DictConfig]:
    """Compose and validate every job of the sweep; return their configs (raises ``UserError``).

    ``remember_checks``: skip the data/model checks of cells that passed them before under this code, and remember
    the new passes (``xaibench.config.verdicts``). For the CLI, where the registries hold only the package's and
    ``$XAIBENCH_PLUGINS``'s entries; not for a Python process that may register its own at run time.
    ``composed``: the sweep's plan as composed before from the same configs (``plan.make_plan``, after a code
    edit): its configs are checked, not composed again (their names and syntax passed when they were composed).
    """
    if composed is None:
        jobs = expand_sweep(overrides, multirun=multirun, config_name=config_name)
    remote = False
    if multirun:
        launch = composed.launch if composed is not None and composed.launch else launch_of(overrides, config_name)
        check_launch(launch)
        remote = is_remote(launch.launcher)
    configs = list(composed.configs) if composed is not None else compose_jobs(jobs, config_name)
    if multirun:
        _check_gpus_are_used(launch, configs)
    for cfg in configs:
        _check_top_level_keys(cfg, config_name)
    _check_user_files(configs)  # fast, before torch is imported
    verdicts = Verdicts.for_this_code() if remember_checks else Verdicts(None)
    built: set = set()  # (dataset, model, n_samples) that built: a job beyond MAX_VALIDATED reuses their build checks
    try:
        for index, cfg in enumerate(configs):
            validate_config(cfg, check_device=not remote, verdicts=verdicts, built=built,
                            reuse_builds=index >= MAX_VALIDATED)
    finally:
        verdicts.save()
    return configs


def _check_user_files(configs: list[DictConfig]) -> None:
    """Missing files, absent columns and too many samples, found without importing torch (``datachecks``)."""
    from xaibench.config.datachecks import check_user_files

    seen = set()
    for cfg in configs:
        try:
            dataset = OmegaConf.to_container(cfg.dataset, resolve=True)
            model = OmegaConf.to_container(cfg.model, resolve=True)
            n_samples = cfg.get("n_samples", 32)
        except (OmegaConfBaseException, AttributeError):
            continue  # validate_config reports malformed sections in full
        marker = repr((dataset, model, n_samples))
        if marker not in seen and isinstance(dataset, dict) and isinstance(model, dict) and isinstance(n_samples, int):
            seen.add(marker)
            check_user_files(dataset, model, n_samples)


def validate_config(cfg: DictConfig, *, check_device: bool = True, verdicts: Verdicts | None = None,
                    built: set | None = None, reuse_builds: bool = False) -> CellSpec:
    """Resolve one job config against the registries; check that its data and model can be built.

    ``verdicts``: the cells validated before under this code (``xaibench.config.verdicts``); a known cell skips the
    registry, dataset and model checks (they import torch), the checks of its run options and devices still run.
    ``built``: the (dataset, model, n_samples) whose build checks passed (added to); with ``reuse_builds`` a job
    whose triple is there skips building them again for its own seed (~17 ms a job; a 10k-job sweep over seeds).
    Every other check (names, types, training parameters, seed range, devices) still runs on the job.
    """
    from xaibench.engine.device import resolve_device

    try:
        cell = CellSpec.from_config(cfg)
    except (OmegaConfBaseException, KeyError) as error:
        raise UserError(f"invalid config: {_first_line(error)}") from None
    _check_run_options(cfg)
    if not cell.metrics:
        raise UserError("the metric suite is empty; choose one with metrics=<suite> (e.g. metrics=default)")
    resolve_device(cell.device, check_available=check_device)
    _check_devices(cfg.get("devices"), check_device)
    if verdicts is not None and verdicts.known(cell):
        return cell
    from xaibench.engine.runner import ResolvedCell

    resolved = ResolvedCell.resolve(cell)
    _check_training(resolved.model)
    triple = (resolved.dataset, resolved.model, cell.n_samples)
    if reuse_builds and built is not None and triple in built:
        return cell  # not remembered in verdicts: its own seed's build was not checked
    dataset = _built_dataset(resolved.dataset, cell.seed)
    n_test = len(dataset.test)
    if cell.n_samples > n_test:
        raise UserError(
            f"n_samples={cell.n_samples} exceeds the {n_test} test samples of dataset {cell.dataset_name}; "
            f"use n_samples<={n_test}"
        )
    _check_model_builds(resolved.model, resolved.dataset, cell.seed)
    if built is not None:
        built.add(triple)
    if verdicts is not None:
        verdicts.add(cell)
    return cell


def _check_top_level_keys(cfg: DictConfig, config_name: str) -> None:
    """Reject keys the root config does not define (``+n_sample=10``), naming the closest valid key."""
    known = _known_keys(config_name)
    for key in cfg.keys():
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(sorted(known))}"
            raise UserError(f"unknown config key {key!r}; {hint}")


@lru_cache(maxsize=8)
def _known_keys(config_name: str) -> frozenset[str]:
    return frozenset(_compose([], config_name, return_hydra_config=False).keys()) | set(GROUPS)


def _check_training(model) -> None:
    """Training parameters must make a trained model: ``epochs=-1`` would score an untrained one as ``ok``."""
    fields = {f.name: f.default for f in dataclasses.fields(model)}
    for name in ("epochs", "batch_size", "lr", "weight_decay", "min_accuracy"):
        if name not in fields:
            continue
        value = getattr(model, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"model.{name} must be a number, got {value!r}")
        # epochs=0 is valid only where the model's own default is 0 (pretrained adapters: use the weights as-is)
        smallest = {"epochs": 0 if fields["epochs"] == 0 else 1, "batch_size": 1}.get(name)
        if name in ("epochs", "batch_size") and (value != int(value) or value < smallest):
            raise UserError(f"model.{name} must be an integer >= {smallest}, got {value!r}")
        if name == "lr" and not value > 0:
            raise UserError(f"model.lr must be positive, got {value!r}")
        if name == "weight_decay" and not value >= 0:
            raise UserError(f"model.weight_decay must be >= 0, got {value!r}")
        if name == "min_accuracy" and not 0 <= value <= 1:
            raise UserError(f"model.min_accuracy must be in [0, 1], got {value!r}")
    _check_layer_sizes(model, fields)


def _check_layer_sizes(model, defaults: dict) -> None:
    """Layer widths (``hidden``, ``channels``: tuples of ints) must be >= 1: a 0-wide layer trained a constant
    model that was scored as ``ok``, and ``channels=[0, 4]`` failed every cell at training time."""
    for name, default in defaults.items():
        if not (isinstance(default, tuple) and default and all(type(v) is int for v in default)):
            continue
        value = getattr(model, name)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
            raise UserError(f"model.{name} must be a list of integers >= 1 (layer widths), got {list(value)!r}")


def _check_devices(devices, check_available: bool) -> None:
    """``devices`` (one job per device on a box): null, ``all`` or a list of devices that exist here."""
    if devices is None:
        return
    from xaibench.engine.device import resolve_device
    from xaibench.engine.device_slots import expand_devices

    listed = OmegaConf.to_container(devices) if isinstance(devices, (DictConfig, ListConfig)) else devices
    if not isinstance(listed, (str, list)):
        raise UserError(f"devices must be a list of devices (e.g. [cuda:0, cuda:1]) or 'all', got {listed!r}")
    for device in expand_devices(listed):
        resolve_device(device, check_available=check_available)


def _check_run_options(cfg: DictConfig) -> None:
    threads = cfg.get("threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UserError(f"threads must be a positive integer, got {threads!r}")
    for flag in ("strict", "progress", "verbose"):  # verbose=abc ran, quietly
        if not isinstance(cfg.get(flag, False), bool):
            raise UserError(f"{flag} must be true or false, got {cfg.get(flag)!r}")
    sweep_id = str(cfg.get("sweep_id", ""))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", sweep_id):
        raise UserError(f"sweep_id must be a plain name (letters, digits, '.', '_', '-'), got {sweep_id!r}")
    for key in ("results_dir", "store_dir"):
        _check_folder_option(key, cfg.get(key))
    _check_logger(cfg.get("logger") or {})


def _check_folder_option(key: str, value) -> None:
    """``results_dir`` / ``store_dir``: a folder path. Empty (``results_dir=$OUT`` with OUT unset) wrote the sweep
    into the working folder; null, a number or a list ended in a TypeError traceback after files were written."""
    if isinstance(value, str) and value.strip():
        return
    example = {"results_dir": "results/runs", "store_dir": "results/store"}[key]
    if value is None or (isinstance(value, str)):
        what = "null" if value is None else "empty (an unset shell variable?)"
        raise UserError(f"{key} is {what}; give a folder, e.g. {key}={example} ({key}=. for this folder)")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise UserError(f"{key} must be a folder path, got the number {value!r}; quote a folder name made of "
                        f"digits: \"{key}='{value}'\"")
    raise UserError(f"{key} must be a folder path, got {value!r}; e.g. {key}={example}")


WANDB_MODES = ("offline", "online", "disabled")  # conf/logger/wandb.yaml's


def _check_logger(logger) -> None:
    """W&B's settings, which W&B itself checked only when the sweep's results were logged, after every cell ran
    (``logger.mode=bogus``: a 4-line pydantic error as a warning, exit 0)."""
    if logger.get("name") != "wandb":
        return
    if logger.get("mode") not in WANDB_MODES:
        raise UserError(f"logger.mode must be one of {', '.join(WANDB_MODES)}, got {logger.get('mode')!r}")
    if not isinstance(logger.get("log_cached", False), bool):
        raise UserError(f"logger.log_cached must be true or false, got {logger.get('log_cached')!r}")
    for key, optional in (("project", False), ("entity", True)):
        value = logger.get(key)
        if not (isinstance(value, str) and value.strip()) and not (optional and value is None):
            raise UserError(f"logger.{key} must be a W&B {key} name, got {value!r}")


@lru_cache(maxsize=64)
def _built_dataset(spec, seed: int):
    from xaibench.engine.stages import build_dataset

    try:
        return build_dataset(spec, seed)
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - a spec that cannot build is a config problem, reported in one line
        raise UserError(f"dataset {spec.name} cannot be built with these parameters: "
                        f"{type(error).__name__}: {_first_line(error)}") from None


@lru_cache(maxsize=64)
def _check_model_builds(model_spec, dataset_spec, seed: int) -> None:
    """Build (not train) the model for the dataset, so impossible shapes fail before the sweep starts."""
    if dataset_spec.modality not in model_spec.modalities:
        return  # not_applicable, recorded as rows
    try:
        model_spec.build(_built_dataset(dataset_spec, seed))
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001
        raise UserError(f"model {model_spec.name} cannot be built for dataset {dataset_spec.name}: "
                        f"{type(error).__name__}: {_first_line(error)}") from None


def launch_of(overrides: Sequence[str], config_name: str = "config") -> Launch:
    """The sweep's ``Launch`` (its fixed overrides composed with Hydra's config, once per process)."""
    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(list(overrides)) if not o.is_sweep_override()]
    return _launch_of(tuple(fixed), config_name)


@lru_cache(maxsize=8)
def _launch_of(fixed: tuple[str, ...], config_name: str) -> Launch:
    cfg = _compose(list(fixed), config_name, return_hydra_config=True)
    settings = OmegaConf.select(cfg, "hydra.launcher")
    return Launch(str(OmegaConf.select(cfg, "hydra.launcher._target_") or ""),
                  str(OmegaConf.select(cfg, "hydra.sweeper._target_") or ""),
                  OmegaConf.to_container(settings, resolve=False) if isinstance(settings, DictConfig) else None)


def _launcher_target(overrides: Sequence[str], config_name: str) -> str:
    return launch_of(overrides, config_name).launcher


def is_remote(launcher_target: str) -> bool:
    """Jobs that run elsewhere (Slurm, Ray): this machine's devices say nothing about theirs."""
    return any(name in launcher_target for name in ("Slurm", "Ray", "RQ"))


def check_launch(launch: Launch) -> None:
    """Refuse a launcher that cannot start here, before any file is touched: it is importable, Slurm has
    ``sbatch``, and a launcher class with ``check_can_start(launcher_cfg)`` checks its own needs (Ray: installed,
    GPUs). Cheap (no composition): run on every multirun, a cached plan's too."""
    _check_launcher_can_start(launch.launcher)
    _check_joblib_jobs(launch)
    check = getattr(get_class(launch.launcher), "check_can_start", None)
    if check is not None:
        check(OmegaConf.create(launch.settings or {}))


def _check_joblib_jobs(launch: Launch) -> None:
    """``hydra.launcher.n_jobs=0`` (joblib: "has no meaning") passed the pre-flight, claimed the sweep folder and
    died in joblib with a traceback (exit 1). Negative counts are joblib's (-1: one worker per CPU core)."""
    n_jobs = (launch.settings or {}).get("n_jobs")
    if "JoblibLauncher" in launch.launcher and (n_jobs == 0 or isinstance(n_jobs, bool)):
        raise UserError(f"hydra.launcher.n_jobs must be a non-zero integer (N worker processes; -1: one per CPU "
                        f"core, -2: all but one), got {n_jobs!r}")
    if "JoblibLauncher" in launch.launcher:
        from xaibench.config.joblib_settings import check_joblib_settings

        check_joblib_settings(launch.settings or {})  # backend=bogus ran (Hydra uses loky), prefer=bogus crashed late


def _check_gpus_are_used(launch: Launch, configs: Sequence[DictConfig]) -> None:
    """A Slurm launcher that asks GPUs for jobs that compute on the CPU would hold them idle for the whole sweep
    (``hydra/launcher=slurm`` asks one GPU per task; the suite's default device is ``cpu``)."""
    settings = launch.settings or {}
    gres = str(settings.get("gres") or "")
    if "Slurm" not in launch.launcher or not (settings.get("gpus_per_task") or settings.get("gpus_per_node")
                                              or "gpu" in gres):
        return
    on_cpu = [cfg for cfg in configs if str(cfg.get("device", "cpu")).startswith("cpu") and cfg.get("devices") is None]
    per_task = settings.get("gpus_per_task")
    if isinstance(per_task, int) and not isinstance(per_task, bool) and per_task > 1 and not on_cpu:
        raise UserError(f"hydra.launcher.gpus_per_task={per_task} but a task runs its cells one after the other, each "
                        f"on one device, leaving {per_task - 1} of its GPUs idle; use hydra.launcher.gpus_per_task=1 "
                        f"(one task per GPU; more tasks run at once with array_parallelism)")
    if on_cpu:
        raise UserError(f"the Slurm launcher asks GPUs for each task but device={on_cpu[0].get('device', 'cpu')} "
                        "computes on the CPU, leaving them idle; add device=auto (or device=cuda), or use "
                        "hydra/launcher=slurm_cpu (or hydra.launcher.gpus_per_task=null) for CPU nodes")


def check_array_size(launch: Launch | None, configs: Sequence[DictConfig]) -> None:
    """A Slurm array that Slurm would refuse is refused before any file is touched (``sbatch`` refused it once the
    stored cells were written): larger than the cluster's ``MaxArraySize``, naming the ``cells_per_task`` that
    fits, or refused by ``sbatch --test-only`` (no such partition or account, no default partition, limits above
    the partition's). Only the cells the store lacks are submitted: they are counted when the whole sweep would not
    fit. Run on every launch (the store and the cluster change between runs of a cached plan).

    Raises:
        UserError: more array tasks than ``MaxArraySize`` (``scontrol show config``), or ``sbatch --test-only``'s
            refusal.
    """
    settings = (launch.settings if launch is not None else None) or {}
    size = settings.get("cells_per_task", 1)
    if launch is None or "Slurm" not in launch.launcher:
        return
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:  # refused by check_launch
        return
    from xaibench.config.slurm import check_array_fits, check_sbatch_accepts, max_array_size

    n_tasks = -(-len(configs) // size)
    limit = max_array_size()
    if limit is not None and n_tasks > limit:
        from xaibench.sweep import uncomputed_cells

        n_cells = uncomputed_cells(configs)
        check_array_fits(n_cells, size, settings.get("timeout_min"))
        n_tasks = -(-n_cells // size)
    script = getattr(get_class(launch.launcher), "sbatch_script", None)
    if script is None or not n_tasks:
        return
    try:
        check_sbatch_accepts(script(settings, n_tasks), n_tasks)
    except UserError:
        from xaibench.sweep import uncomputed_cells

        if uncomputed_cells(configs):  # a rerun whose cells are all stored submits nothing: Slurm is not needed
            raise


STOCK_SLURM = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"  # hydra/launcher=submitit_slurm


def _check_launcher_can_start(target: str) -> None:
    """Refuse a launcher that cannot start here, before any file is touched (Slurm without ``sbatch``), or that
    cannot protect the sweep folder: hydra-submitit's own Slurm launcher (its subclass ``submitit_slurm_chunked``
    records its arrays in ``slurm_arrays.json``, which a later run checks in ``squeue``, and requeues tasks with
    the cells they finished)."""
    for marker, (module, package) in _PLUGIN_PACKAGES.items():  # a cached plan's target: no choice check ran
        if marker in target and not _installed(module):
            raise UserError(f"the launcher {target.rsplit('.', 1)[-1]} needs {package}, which is not installed: "
                            f"pip install 'xaibench[launchers]'")
    if target == STOCK_SLURM:
        raise UserError("hydra/launcher=submitit_slurm (hydra-submitit's own launcher) does not record its Slurm "
                        "array in the sweep folder, so a rerun could mix that array's cells with its own, and a task "
                        "that dies or is preempted loses its cells; use hydra/launcher=submitit_slurm_chunked with the "
                        "same hydra.launcher.* settings (cells_per_task=1 is one cell per task, as submitit_slurm), or "
                        "the presets hydra/launcher=slurm / slurm_cpu (docs/cluster.md)")
    if "Slurm" in target and shutil.which("sbatch") is None:
        raise UserError("the Slurm launcher needs Slurm, but sbatch is not on PATH on this machine; run from a "
                        "Slurm login node, or try the sweep here with hydra/launcher=submitit_local_chunked (its "
                        "cells_per_task grouping, with local processes)")
    try:
        get_class(target)
    except Exception as error:  # noqa: BLE001 - a plugin that cannot be imported cannot launch
        raise UserError(f"launcher {target} cannot be imported ({type(error).__name__}: {_first_line(error)}); "
                        f"install it (pip install 'xaibench[launchers]')") from None


def _compose(overrides: list[str], config_name: str, *, return_hydra_config: bool) -> DictConfig:
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="xaibench"):
            return compose(config_name=config_name, overrides=overrides, return_hydra_config=return_hydra_config)
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        failure = error  # ``error`` is unbound when the except block ends: the closure keeps its own name

        def without_it() -> DictConfig:  # the config the override failed on: the others composed (error path only)
            key = _unknown_key(failure)
            rest = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key]
            with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="xaibench"):
                return compose(config_name=config_name, overrides=rest, return_hydra_config=True)

        raise UserError(_override_error(error, without_it)) from None


def _unknown_key(error: BaseException) -> str | None:
    """The key of Hydra's "Could not override 'method.n_step'" (a key the config does not have), else None."""
    found = re.match(r"Could not override '([^']+)'", str(error))
    return found.group(1) if found else None


def _override_error(error: BaseException, config) -> str:
    """One line for an override Hydra or OmegaConf refused, saying what is wrong with it.

    Hydra's own lines send the user the wrong way: ``Could not override 'n_sample'. To append to your config use
    +n_sample=3`` (the fix is ``n_samples``, and ``+n_sample`` is refused next) and ``Error merging override
    hydra.launcher.n_jobs=abc`` (the reason, a value of the wrong type, is in the chained error). ``config()``: the
    config the override applies to, for the keys it does have (called only for an unknown key).
    """
    key = _unknown_key(error)
    if key is None:
        cause = error.__cause__
        merging = re.match(r"Error merging override (\S+)", str(error))
        if merging and cause is not None:
            return f"{merging.group(1)}: {_first_line(cause)}"
        return _first_line(error)
    parent, _, leaf = key.rpartition(".")
    keys = _keys_under(config, parent)
    if leaf in keys:  # the key exists: its new value adds keys to a section that Hydra locks (struct)
        added = re.search(r"Key '([^']+)' is not in struct", str(error.__cause__ or ""))
        append = re.search(r"To append to your config use (\S+)", str(error))
        return (f"{key} has no key {added.group(1) if added else '...'!r} yet; add keys to it with a '+': "
                f"{append.group(1) if append else '+' + key + '=...'} (merged with its keys: "
                f"{', '.join(_keys_under(config, key)) or 'none'})")
    close = difflib.get_close_matches(leaf, keys, n=1)
    if close:
        return f"unknown config key {key!r}; did you mean {'.'.join(filter(None, [parent, close[0]]))!r}?"
    if parent == "hydra.launcher" and not keys:
        return f"unknown config key {key!r}: the basic launcher takes no settings; choose one that does first, " \
               f"e.g. hydra/launcher=joblib or hydra/launcher=slurm"
    message = f"unknown config key {key!r}" + (f"; {parent or 'the config'} has: {', '.join(keys)}" if keys else "")
    if key.startswith("hydra.") and _is_plain_dict(config, parent):  # additional_parameters, setup's env, ...
        message += f"; add a key with a '+': +{key}=<value>"
    return message


def _is_plain_dict(config, parent: str) -> bool:
    """Whether ``parent`` is a dict that takes any key (``hydra.launcher.additional_parameters``), not a section
    with fixed settings (``hydra.launcher``: a dataclass)."""
    try:
        node = OmegaConf.select(config(), parent) if parent else None
    except Exception:  # noqa: BLE001 - the hint is a courtesy
        return False
    return isinstance(node, DictConfig) and OmegaConf.get_type(node) is dict


def _keys_under(config, parent: str) -> list[str]:
    """The keys of ``config()`` at ``parent`` ('' for the top: the job's keys, Hydra's settings only under
    ``hydra``), for suggestions; [] when there is no such section."""
    try:
        node = OmegaConf.select(config(), parent) if parent else config()
    except Exception:  # noqa: BLE001 - the suggestion is a courtesy; the key is unknown either way
        return []
    if not isinstance(node, DictConfig):
        return []
    return sorted(str(k) for k in node.keys() if not str(k).startswith("_") and (parent or k != "hydra"))


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


_SUBMITIT = ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher")
_PLUGIN_OF = {name: _SUBMITIT for name in ("slurm", "slurm_cpu", "submitit_slurm", "submitit_slurm_chunked",
                                           "submitit_local", "submitit_local_chunked")}
_PLUGIN_OF["joblib"] = ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher")
_PLUGIN_PACKAGES = {"xaibench_launchers.chunked_submitit": _SUBMITIT, "hydra_submitit_launcher": _SUBMITIT,
                    "hydra_joblib_launcher": _PLUGIN_OF["joblib"]}  # launcher target -> (module, package)


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


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
    """Config dirs the user added with ``hydra.searchpath=[file:///abs/conf, ...]`` (pkg:// entries skipped)."""
    dirs = []
    for override in parsed:
        if override.get_key_element() == "hydra.searchpath" and not override.is_delete():
            value = override.value()
            for item in value if isinstance(value, list) else [value]:
                if not str(item).startswith("pkg://"):
                    dirs.append(Path(str(item).removeprefix("file://")))
    return dirs


def _first_line(error: BaseException) -> str:
    """Hydra/OmegaConf errors span several lines; keep the informative ones, joined into one."""
    lines = [line.strip() for line in (str(error).strip() or type(error).__name__).splitlines()]
    keep = [line for line in lines if line and not line.startswith(("full_key:", "object_type", "reference_type"))]
    return " ".join(keep[:3])
