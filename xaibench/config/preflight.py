"""Validate a whole sweep before any compute: names, types, parameters, sample counts.

Expands the sweep exactly as Hydra's basic sweeper does (``hydra.sweeper.params`` from the config, then the
command-line sweep overrides), composes every combination with Hydra's compose API and resolves each cell
against the registries. Nothing is written to disk. Any problem raises ``UserError`` with one clear line.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from xaibench.config.paths import GROUPS, conf_dir, group_options
from xaibench.engine.cell import CellSpec
from xaibench.errors import UserError

MAX_VALIDATED = 2000  # combinations composed one by one; larger sweeps validate names only


def expand_sweep(overrides: Sequence[str], *, multirun: bool, config_name: str = "config") -> list[list[str]]:
    """The list of per-job override lists Hydra's basic sweeper would launch (one entry when not multirun)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parser = OverridesParser.create()
    try:
        parsed = parser.parse_overrides(list(overrides))
    except HydraException as error:
        raise UserError(_first_line(error)) from None
    _check_group_names(parsed)
    if not multirun:
        sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
        if sweeps:
            raise UserError(f"{sweeps[0]} is a sweep: add -m (multirun) to run every combination")
        return [list(overrides)]
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    base = _compose(fixed, config_name, return_hydra_config=True)
    params = OmegaConf.select(base, "hydra.sweeper.params") or {}
    from_config = [f"{k}={v}" for k, v in params.items()]
    try:
        all_overrides = parser.parse_overrides(from_config + list(overrides))
        _check_group_names(all_overrides)
        batches = BasicSweeper.split_arguments(all_overrides, None)
    except HydraException as error:
        raise UserError(_first_line(error)) from None
    return [list(job) for batch in batches for job in batch]


def compose_job(overrides: Sequence[str], config_name: str = "config") -> DictConfig:
    """The composed (job-level) config of one combination."""
    return _compose(list(overrides), config_name, return_hydra_config=False)


def validate(overrides: Sequence[str], *, multirun: bool, config_name: str = "config") -> list[DictConfig]:
    """Compose and validate every job of the sweep; return their configs (raises ``UserError``)."""
    jobs = expand_sweep(overrides, multirun=multirun, config_name=config_name)
    configs = []
    for index, job in enumerate(jobs):
        cfg = compose_job(job, config_name)
        if index < MAX_VALIDATED:
            validate_config(cfg)
        configs.append(cfg)
    return configs


def validate_config(cfg: DictConfig) -> CellSpec:
    """Resolve one job config against the registries; check the sample count against the test split."""
    from xaibench.engine.runner import ResolvedCell

    try:
        cell = CellSpec.from_config(cfg)
    except (OmegaConfBaseException, KeyError) as error:
        raise UserError(f"invalid config: {_first_line(error)}") from None
    threads = cfg.get("threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UserError(f"threads must be a positive integer, got {threads!r}")
    if not cell.metrics:
        raise UserError("the metric suite is empty; choose one with metrics=<suite> (e.g. metrics=default)")
    resolved = ResolvedCell.resolve(cell)
    n_test = _test_size(OmegaConf.to_yaml(OmegaConf.create(cell.dataset)), cell.seed, resolved.dataset)
    if cell.n_samples > n_test:
        raise UserError(
            f"n_samples={cell.n_samples} exceeds the {n_test} test samples of dataset {cell.dataset_name}; "
            f"use n_samples<={n_test}"
        )
    return cell


@lru_cache(maxsize=64)
def _test_size(_dataset_yaml: str, seed: int, spec) -> int:
    from xaibench.engine.stages import build_dataset

    return len(build_dataset(spec, seed).test)


def _compose(overrides: list[str], config_name: str, *, return_hydra_config: bool) -> DictConfig:
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="xaibench"):
            return compose(config_name=config_name, overrides=overrides, return_hydra_config=return_hydra_config)
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        raise UserError(_first_line(error)) from None


def _check_group_names(parsed) -> None:
    extra = _search_dirs(parsed)
    for override in parsed:
        key = override.get_key_element().lstrip("+~")
        if key not in GROUPS or override.is_delete():
            continue
        options = group_options(key, extra)
        values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [
            override.get_value_element_as_str()]
        for value in values:
            if value not in options and value != "null":
                raise UserError(f"unknown {key} {value!r}; valid: {', '.join(options)}")


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
