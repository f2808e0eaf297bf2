"""Validate a whole sweep before any compute: names, types, parameters, sample counts.

Expands the sweep exactly as Hydra's basic sweeper does (``hydra.sweeper.params`` from the config, then the
command-line sweep overrides), composes every combination with Hydra's compose API and resolves each cell
against the registries. Nothing is written to disk. Any problem raises ``UserError`` with one clear line.

Modules: ``composition`` (the jobs, expanded and composed), ``group_names``, ``override_errors`` (one line for
what Hydra or OmegaConf refused), ``hydra_settings`` (values of Hydra's own settings: its folders, mode, sweeper,
callback), ``launchers`` (with ``launcher_plugins``), ``job_checks`` (one job's options, data and model),
``remembered`` (compositions kept within a process, and what a plan read: environment, folders).
:func:`validate` runs them all over a sweep.
"""
from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig

from xaibench.config.plan import Plan
from xaibench.config.preflight.composition import (QUOTING_HINT, _check_top_level_keys, _known_keys, compose_job,
                                                   compose_jobs, expand_sweep, fixed_overrides, hydra_config,
                                                   validate_names)
from xaibench.config.preflight.hydra_settings import check_folders, check_hydra_folders, check_subdir_per_job
from xaibench.config.preflight.group_names import HYDRA_GROUPS, REFUSED_LAUNCHERS
from xaibench.config.preflight.job_checks import WANDB_MODES, _check_user_files, validate_config
from xaibench.config.preflight.launchers import (STOCK_SLURM, _check_gpus_are_used, check_array_size, check_launch,
                                                 is_remote, launch_of)
from xaibench.config.preflight.remembered import planned_reads
from xaibench.config.verdicts import Verdicts

__all__ = ["HYDRA_GROUPS", "MAX_VALIDATED", "QUOTING_HINT", "REFUSED_LAUNCHERS", "STOCK_SLURM", "WANDB_MODES",
           "check_array_size", "check_launch", "compose_job", "compose_jobs", "expand_sweep", "is_remote", "launch_of",
           "planned_reads", "validate", "validate_config", "validate_names"]

MAX_VALIDATED = 2000  # jobs that build their dataset and model for their own seed; the others build once per
# (dataset, model, n_samples) that no earlier job built: every job is still checked before any file is written


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
        base = hydra_config(fixed_overrides(overrides, multirun=multirun), config_name)
        check_hydra_folders(base, multirun=multirun)  # the folders Hydra writes: here only, not in compare's
    else:
        check_folders(composed.folders)  # as composed then: the folder may have become a file since
    remote = False
    if multirun:
        launch = composed.launch if composed is not None and composed.launch else launch_of(overrides, config_name)
        check_launch(launch)
        remote = is_remote(launch.launcher)
    configs = list(composed.configs) if composed is not None else compose_jobs(jobs, config_name)
    if multirun:
        _check_gpus_are_used(launch, configs)
    known = _known_keys(config_name)
    for cfg in configs:
        _check_top_level_keys(cfg, config_name, known)
    if multirun and composed is None:
        check_subdir_per_job(base.hydra, jobs, configs)  # after the keys: it reads the configs' values
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
