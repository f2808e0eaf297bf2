"""One job per GPU through Ray: ``hydra/launcher=ray`` (GPU box) and ``hydra/launcher=ray_cpu`` (logical GPUs).

``RayLauncher`` starts Ray on this machine (``ray.init(**init)``; or joins a running cluster with
``init.address``), submits every job of the sweep as one Ray task with the ``remote`` options (``num_gpus: 1``:
one job per GPU, Ray queues the rest) and waits for them. Each task runs its job as Hydra's launchers do (own
config, own ``jobs/<n>`` folder, own return value); its ``device`` becomes the GPU Ray assigned to it,
``device.format(gpu=i)`` with ``i`` the GPU's index as torch sees it on the machine (default ``cuda:{gpu}``,
the same names as the joblib launcher's device slots, so rows record the GPU each job used).

Ray is told not to narrow ``CUDA_VISIBLE_DEVICES`` per task: the job addresses its GPU as ``cuda:<i>`` and makes
it the current CUDA device. With logical GPUs on a CPU machine (``init.num_gpus: 2``, ``device: cpu:{gpu}``)
the same assignment runs on the CPU and the rows show which logical GPU each job held (tests).

Written here rather than using hydra-ray-launcher 1.2.2: that plugin requires ``cloudpickle<3`` (joblib 1.6,
installed with scikit-learn, requires ``cloudpickle>=3``) and ``boto3`` (whose botocore caps python-dateutil
below 3), and pulls ``ray[default]``'s dashboard stack; this launcher needs only ``ray`` itself.
"""

import atexit
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from xaibench.errors import UserError

log = logging.getLogger(__name__)

NOSET_CUDA = "RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"  # Ray leaves CUDA_VISIBLE_DEVICES as the machine has it
FORWARDED = ("XAIBENCH_", "WANDB_")  # store location, W&B mode: the jobs see what the launching process sees
NODE_ONLY = ("num_cpus", "num_gpus", "resources", "labels", "object_store_memory")  # for a Ray started here


class RayLauncher(Launcher):
    """Hydra launcher: every job of the sweep is one Ray task with the ``remote`` resources."""

    def __init__(self, init: DictConfig, remote: DictConfig, device: str = "cuda:{gpu}") -> None:
        self.init = init
        self.remote = remote
        self.device = device
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None
        self.task_function: Optional[TaskFunction] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    @staticmethod
    def check_can_start(launcher: DictConfig) -> None:
        """Called by the pre-flight before any file is touched: Ray is importable and the GPUs asked exist.

        Raises:
            UserError: Ray is not installed, a resource setting is not a count, a job asks more GPUs than a local
                Ray would have (it would wait forever), or jobs would run on ``cuda:<i>`` for logical GPUs that
                CUDA does not have (every job would fail).
        """
        _ray_env_defaults()  # before Ray's first import: it reads them then
        try:
            import ray  # noqa: F401
        except ImportError as error:
            raise UserError(f"hydra/launcher=ray needs Ray, which cannot be imported here ({type(error).__name__}: "
                            f"{error}); install it: pip install 'xaibench[ray]'") from None
        init, remote = _plain(launcher.get("init")), _plain(launcher.get("remote"))
        for section, values, whole in (("init", init, True), ("remote", remote, False)):
            for name in ("num_cpus", "num_gpus"):
                _check_count(f"hydra.launcher.{section}.{name}", values.get(name), whole=whole)
        _check_options(init, remote, str(launcher.get("device") or "cuda:{gpu}"))
        wanted = float(remote.get("num_gpus") or 0)
        if not wanted or _joins_cluster(init):
            return  # a running cluster's GPUs are not this machine's
        template = str(launcher.get("device") or "cuda:{gpu}")
        have = init.get("num_gpus")
        if have is None or template.startswith("cuda"):
            import torch

            cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
            have = cuda if have is None else have
            if template.startswith("cuda") and have > cuda:
                raise UserError(f"hydra/launcher=ray would give jobs {have} GPU(s) (hydra.launcher.init.num_gpus) "
                                f"and run each on {template}, but CUDA sees {cuda} here, so every job would fail; "
                                "on a machine without GPUs use hydra/launcher=ray_cpu (logical GPUs, jobs on the "
                                "CPU)")
        if have < wanted:
            raise UserError(f"hydra/launcher=ray asks {wanted:g} GPU per job but Ray would start here with {have} "
                            "GPU(s), so no job could ever start; on a machine without GPUs use "
                            "hydra/launcher=ray_cpu (logical GPUs, jobs on the CPU)")

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import ray

        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs = []
        for offset, overrides in enumerate(job_overrides):
            idx = initial_job_idx + offset
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = f"ray_{idx}"
                sweep_config.hydra.job.num = idx
            configs.append(sweep_config)
        # stopped when the process exits (atexit): late job logs still arrive; Ray's logs then go to <sweep>/ray/logs
        _start_ray(_plain(self.init), Path(str(self.config.hydra.sweep.dir)) / "ray")
        task = ray.remote(**_plain(self.remote))(_run_job).options(name="xaibench")
        state, cwd = Singleton.get_state(), os.getcwd()
        pending = [task.remote(self.hydra_context, cfg, self.task_function, state, self.device, cwd) for cfg in configs]
        return list(ray.get(pending))


def _check_count(name: str, value: Any, *, whole: bool) -> None:
    """A resource count: null or a non-negative number (``whole``: an integer, as ``ray.init`` takes)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is None or (number and value >= 0 and (not whole or value == int(value))):
        return
    kind = "a non-negative integer" if whole else "a non-negative number"
    kind += " (0.5: two jobs per GPU)" if name.endswith("remote.num_gpus") else ""
    raise UserError(f"{name} must be {kind} or null, got {value!r}")


def _check_options(init: Dict[str, Any], remote: Dict[str, Any], template: str) -> None:
    """The settings ``launch`` passes on are ones Ray takes and ``device`` names a device for every GPU.

    Raises:
        UserError: an option ``ray.init`` or ``ray.remote`` does not have or refuses (``+hydra.launcher.remote.gpus=1``,
            ``remote.max_calls=-1``: a traceback once the sweep folder was claimed), an ``init.address`` that is
            neither ``local``, ``auto`` nor ``host:port``, or a ``device`` that is not ``cpu``/``cuda`` with
            ``{gpu}`` (``device=bogus`` ran every job on it, each refused).
    """
    import inspect
    import re

    import ray

    known = [name for name in inspect.signature(ray.init).parameters if name != "kwargs"]
    for name in sorted(init):
        if name not in known and not name.startswith("_"):  # ray.init's **kwargs: its private _temp_dir, ...
            raise UserError(f"hydra.launcher.init.{name} is not an option of ray.init; it takes: {', '.join(known)}")
    address = init.get("address")
    if address not in (None, "local", "auto") and not re.fullmatch(r"(ray://)?[\w.\-]+:\d+", str(address)):
        raise UserError(f"hydra.launcher.init.address must be local (a new Ray here), auto (the Ray running here) or "
                        f"host:port of a running Ray cluster, got {address!r}")
    try:
        from ray._common.ray_option_utils import validate_task_options
    except ImportError:  # another Ray's layout: ray.remote checks them at launch
        validate_task_options = None
    if validate_task_options is not None:
        try:
            validate_task_options(remote, in_options=False)
        except (ValueError, TypeError) as error:
            raise UserError(f"hydra.launcher.remote: {_first_sentence(error)}") from None
    try:
        import torch

        device = torch.device(template.format(gpu=0))
    except (KeyError, IndexError, ValueError, RuntimeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise UserError(f"hydra.launcher.device={template!r} must name each job's device from the GPU Ray assigned, "
                        f"as cuda:{{gpu}} (a GPU box) or cpu:{{gpu}} (logical GPUs on the CPU)")


def _first_sentence(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.split(" Valid ones are")[0][:300]


def _start_ray(init: Dict[str, Any], logs_dir: Path) -> None:
    """``ray.init(**init)`` unless Ray is already up in this process.

    A Ray started here (not a running cluster's, no ``_temp_dir`` of the user's) keeps its session files in a
    fresh temp folder instead of ``/tmp/ray``, where every sweep left a session folder (~200 kB of logs, more
    with chatty jobs) that nothing removed; when the process exits, Ray is stopped, its logs are moved to
    ``logs_dir/logs`` (the sweep's own folder, replacing the previous run's) and the temp folder is removed.
    """
    _ray_env_defaults()
    import ray

    if ray.is_initialized():
        return
    runtime_env = dict(init.pop("runtime_env", None) or {})
    ours = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED)}  # also to a running cluster's workers
    runtime_env["env_vars"] = {NOSET_CUDA: "1", **ours, **(runtime_env.get("env_vars") or {})}
    if _joins_cluster(init):  # a running cluster has its own resources; ray.init refuses them
        init = {k: v for k, v in init.items() if k not in NODE_ONLY}
    own_temp = None
    if not _joins_cluster(init) and init.get("_temp_dir") is None:
        own_temp = _short_temp_dir()
        init["_temp_dir"] = own_temp
    try:
        ray.init(runtime_env=runtime_env, **{k: v for k, v in init.items() if v is not None})
    except BaseException:
        shutil.rmtree(own_temp or "", ignore_errors=True)
        raise
    if own_temp is not None:
        atexit.register(_stop_ray, own_temp, logs_dir)  # runs before Ray's own atexit shutdown (registered first)


def _ray_env_defaults() -> None:
    """Ray's settings for a sweep, unless the user set them. Ray reads ``RAY_DEDUP_LOGS`` when it is first imported
    (the pre-flight's ``check_can_start`` imports it first): set after that, it did nothing, and Ray held back the
    progress lines of jobs that differ only in numbers (seeds, job numbers) until after the sweep's summary."""
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")  # offline: no usage report
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # every job's progress line, even when two look alike
    if not sys.stdout.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")  # no colour codes in logs written to files


def _short_temp_dir() -> str:
    """A new folder for Ray's session files in the temp root Ray would use (``$RAY_TMPDIR``, ``$TMPDIR``, /tmp),
    with a short name: Ray's sockets live below it and a Unix socket path has at most 107 bytes."""
    root = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    return tempfile.mkdtemp(prefix="xbray-", dir=root)


def _stop_ray(temp_dir: str, logs_dir: Path) -> None:
    """Stop the Ray this process started, keep its logs in ``logs_dir/logs`` and remove its temp folder."""
    import ray

    try:
        ray.shutdown()
    finally:
        for logs in sorted(Path(temp_dir).glob("session_*/logs"))[-1:]:
            try:
                shutil.rmtree(logs_dir / "logs", ignore_errors=True)
                logs_dir.mkdir(parents=True, exist_ok=True)
                shutil.move(str(logs), str(logs_dir / "logs"))
            except OSError as error:  # a full or read-only results folder: the logs are not worth failing for
                print(f"xaibench: warning: Ray's logs were not kept ({error})", file=sys.stderr)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _joins_cluster(init: Dict[str, Any]) -> bool:
    """``address: local`` (the presets) starts a new Ray here; null lets Ray look for one first (``RAY_ADDRESS``,
    a ``ray start`` on this machine); anything else joins that cluster."""
    return init.get("address") not in (None, "local")


def _run_job(hydra_context: HydraContext, sweep_config: DictConfig, task_function: TaskFunction,
             singleton_state: Dict[Any, Any], device: str, cwd: str) -> JobReturn:
    """One job inside a Ray task: on the GPU Ray assigned (if any), as Hydra's launchers run a job."""
    setup_globals()
    Singleton.set_state(singleton_state)
    os.chdir(cwd)  # relative results/store paths mean the same folder as in the launching process
    assigned = assigned_device(device)
    if assigned is not None:
        with open_dict(sweep_config):
            sweep_config.device = assigned
            sweep_config.devices = None  # Ray's assignment replaces the device slots of the joblib launcher
        _make_current(assigned)
    HydraConfig.instance().set_config(sweep_config)
    return run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def assigned_device(template: str) -> Optional[str]:
    """The job's device from the GPU Ray assigned to this task (``None`` when it has none); with several GPUs
    per task the job runs on the first."""
    import ray

    ids = ray.get_gpu_ids()
    if not ids:
        return None
    return template.format(gpu=torch_index(str(ids[0]), os.environ.get("CUDA_VISIBLE_DEVICES", "")))


def torch_index(gpu_id: str, visible: str) -> int:
    """Torch's index of Ray's GPU ``gpu_id``: Ray's ids are the entries of ``CUDA_VISIBLE_DEVICES`` as the node
    started (``0..n-1`` without it), and torch numbers the visible GPUs from 0 in that order."""
    order = [entry.strip() for entry in visible.split(",") if entry.strip()]
    return order.index(gpu_id) if gpu_id in order else int(gpu_id)


def _make_current(device: str) -> None:
    """Make ``cuda:<i>`` the current CUDA device, so that nothing of the job lands on GPU 0 by default."""
    if not device.startswith("cuda"):
        return
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(torch.device(device))


def _plain(node: Any) -> Dict[str, Any]:
    if node is None:
        return {}
    return dict(OmegaConf.to_container(node, resolve=True)) if isinstance(node, DictConfig) else dict(node)


@dataclass
class RayLauncherConf:
    _target_: str = "hydra_plugins.xaibench_launchers.ray_local.RayLauncher"
    init: Dict[str, Any] = field(default_factory=lambda: {"address": "local", "num_cpus": None, "num_gpus": None,
                                                          "include_dashboard": False})
    remote: Dict[str, Any] = field(default_factory=lambda: {"num_gpus": 1, "num_cpus": 1})
    device: str = "cuda:{gpu}"


ConfigStore.instance().store(group="hydra/launcher", name="xaibench_ray", node=RayLauncherConf, provider="xaibench")
