"""Launcher checks before any file is touched: the launcher can start here (installed, Slurm's ``sbatch``, its own
``check_can_start``), its settings make sense, GPUs asked are used, and a Slurm array fits the cluster."""
from __future__ import annotations

import shutil
from collections.abc import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from xaibench.config.plan import Launch
from xaibench.config.preflight.composition import hydra_config
from xaibench.config.preflight.launcher_plugins import _PLUGIN_PACKAGES, _installed
from xaibench.config.preflight.override_errors import _first_line
from xaibench.errors import UserError


def launch_of(overrides: Sequence[str], config_name: str = "config") -> Launch:
    """The sweep's ``Launch`` (its fixed overrides composed with Hydra's config: ``composition.hydra_config``, once
    per process while the config files stay as they are; an edited experiment file gives its new launcher)."""
    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(list(overrides)) if not o.is_sweep_override()]
    return _launch_of(tuple(fixed), config_name)


def _launch_of(fixed: tuple[str, ...], config_name: str) -> Launch:
    cfg = hydra_config(fixed, config_name)
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
    if not target:  # hydra.launcher=null, ~hydra/launcher: Hydra logged "Empty path", then ours
        from xaibench.config.preflight.group_names import REFUSED_LAUNCHERS, _hydra_options

        offered = ", ".join(sorted(_hydra_options("hydra/launcher", ()) - REFUSED_LAUNCHERS))
        raise UserError(f"no launcher is chosen (hydra.launcher has no _target_: hydra.launcher=null or "
                        f"~hydra/launcher?); choose one with hydra/launcher=<name>: {offered}")
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
