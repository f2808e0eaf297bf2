"""hydra-submitit-launcher with several cells per task: a 10,000-cell sweep is not 10,000 Slurm jobs.

``ChunkedSlurmLauncher`` / ``ChunkedLocalLauncher`` are submitit's Slurm / local launchers whose ``launch`` groups
the sweep's jobs ``cells_per_task`` at a time: one array task runs its group one job after the other (each job
exactly as the stock launcher runs it: own config, own ``jobs/<n>`` folder, own return value). Configs:
``hydra/launcher=submitit_slurm_chunked`` / ``submitit_local_chunked`` (presets: ``conf/hydra/launcher/slurm*.yaml``).
Hydra only loads launchers from the ``hydra_plugins`` package, hence this module's place.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, LocalQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


class _RunGroup:
    """What one array task runs: several jobs of the sweep, in order (pickled to the worker)."""

    def __init__(self, launcher: Any) -> None:
        self.launcher = launcher

    def __call__(self, group: List[tuple]) -> List[JobReturn]:
        return [self.launcher(*job) for job in group]

    def checkpoint(self, group: List[tuple]) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, group)  # requeued on preemption, whole group


class _Chunked:
    """Mixin over a submitit launcher: ``cells_per_task`` jobs per array task."""

    _EXECUTOR: str

    def __init__(self, cells_per_task: int = 1, **params: Any) -> None:
        super().__init__(**params)  # type: ignore[call-arg]
        self.cells_per_task = max(1, int(cells_per_task))  # the pre-flight refuses < 1 (check_can_start)

    @staticmethod
    def check_can_start(launcher: Any) -> None:
        """Called by the pre-flight before any file is touched: ``cells_per_task`` is a positive integer.

        Raises:
            UserError: it is not (0 used to run silently as 1).
        """
        from xaibench.errors import UserError

        value = launcher.get("cells_per_task", 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"hydra.launcher.cells_per_task must be a positive integer (cells run one after the "
                            f"other in each task), got {value!r}")

    def _executor(self) -> Any:
        """submitit's executor with the launcher's parameters (as the stock ``launch`` builds it)."""
        import submitit

        params = dict(self.params)  # type: ignore[attr-defined]
        specific_init_keys = {"max_num_timeout"}
        init_params = {"folder": params["submitit_folder"]}
        init_params.update({f"{self._EXECUTOR}_{k}": v for k, v in params.items() if k in specific_init_keys})
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init_params)
        baseparams = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in baseparams else f"{self._EXECUTOR}_{k}": v for k, v in params.items()
                                      if k not in specific_init_keys | {"submitit_folder"}})
        return executor

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None  # type: ignore[attr-defined]
        executor = self._executor()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))  # type: ignore[attr-defined]
        sweep_dir.mkdir(parents=True, exist_ok=True)
        jobs = []
        for offset, overrides in enumerate(job_overrides):
            idx = initial_job_idx + offset
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            jobs.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        size = self.cells_per_task
        groups = [jobs[i:i + size] for i in range(0, len(jobs), size)]
        log.info(f"{len(jobs)} jobs in {len(groups)} {self._EXECUTOR} tasks ({size} per task)")
        submitted = executor.map_array(_RunGroup(self), groups)
        return [result for task in submitted for result in task.results()[0]]


class ChunkedSlurmLauncher(_Chunked, SlurmLauncher):
    """Slurm array tasks of ``cells_per_task`` cells each."""


class ChunkedLocalLauncher(_Chunked, LocalLauncher):
    """submitit's local executor with ``cells_per_task`` cells per task (tests; one machine without Slurm)."""


@dataclass
class ChunkedSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.xaibench_launchers.chunked_submitit.ChunkedSlurmLauncher"
    cells_per_task: int = 1


@dataclass
class ChunkedLocalConf(LocalQueueConf):
    _target_: str = "hydra_plugins.xaibench_launchers.chunked_submitit.ChunkedLocalLauncher"
    cells_per_task: int = 1


ConfigStore.instance().store(group="hydra/launcher", name="submitit_slurm_chunked", node=ChunkedSlurmConf,
                             provider="xaibench")
ConfigStore.instance().store(group="hydra/launcher", name="submitit_local_chunked", node=ChunkedLocalConf,
                             provider="xaibench")
