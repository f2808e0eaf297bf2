"""hydra-submitit-launcher with several cells per task: a 10,000-cell sweep is not 10,000 Slurm jobs.

``ChunkedSlurmLauncher`` / ``ChunkedLocalLauncher`` are submitit's Slurm / local launchers whose ``launch`` groups
the sweep's jobs ``cells_per_task`` at a time: one array task runs its group one job after the other (each job
exactly as the stock launcher runs it: own config, own ``jobs/<n>`` folder, own return value). Configs:
``hydra/launcher=submitit_slurm_chunked`` / ``submitit_local_chunked`` (presets: ``conf/hydra/launcher/slurm*.yaml``).
Hydra only loads launchers from the ``hydra_plugins`` package, hence this module's place.
"""

import contextlib
import copy
import io
import logging
import re
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, List, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, LocalQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


class _RunGroup:
    """What one array task runs: several jobs of the sweep, in order (pickled to the worker).

    The jobs of a group share one copy of Hydra's singleton state in the pickle (16 KB a job before; deep-copied
    for each job here, so each starts from the state the stock launcher gives it), and each returns its status and
    return value without its composed configs (25 KB pickled, 145 KB in memory a job before): a 10,000-cell
    sweep's launching process no longer holds 1.45 GB of configs nobody reads, nor writes ~400 MB of pickles.
    """

    def __init__(self, launcher: Any) -> None:
        self.launcher = launcher

    def __call__(self, group: List[tuple]) -> List[JobReturn]:
        returns = []
        for *job, state in group:
            done = self.launcher(*job, copy.deepcopy(state))
            done.cfg = done.hydra_cfg = None  # the job's folder keeps them (.hydra/); the sweeper reads the status
            returns.append(done)
        return returns

    def checkpoint(self, group: List[tuple]) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, group)  # requeued on preemption, whole group


class _Chunked:
    """Mixin over a submitit launcher: ``cells_per_task`` jobs per array task."""

    _EXECUTOR: str  # submitit's executor name ("slurm", "local"), from the stock launcher
    _CONF: type  # the launcher's config dataclass: its fields are the settings it takes
    POLL_S = 1.0  # seconds between checks of the tasks' result files (submitit asks Slurm at most once a minute)

    def __init__(self, cells_per_task: int = 1, **params: Any) -> None:
        super().__init__(**params)  # type: ignore[call-arg]
        self.cells_per_task = max(1, int(cells_per_task))  # the pre-flight refuses < 1 (check_can_start)

    @classmethod
    def check_can_start(cls, launcher: Any) -> None:
        """Called by the pre-flight before any file is touched: every setting is one the launcher has, and
        ``cells_per_task`` is a positive integer.

        Raises:
            UserError: a setting added with ``+`` that the launcher lacks (``+hydra.launcher.partitio=gpu``: submitit
                refused it with a traceback once stored cells were written), or ``cells_per_task`` < 1 (0 used to
                run silently as 1).
        """
        import difflib

        from xaibench.errors import UserError

        known = sorted(field.name for field in fields(cls._CONF))
        for key in sorted(set(launcher.keys()) - set(known)):
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(k for k in known if k[0] != '_')}"
            if cls._EXECUTOR == "slurm":
                hint += " (other sbatch options go in hydra.launcher.additional_parameters)"
            raise UserError(f"hydra.launcher.{key} is not a setting of the {cls._EXECUTOR} launcher; {hint}")
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
        state = Singleton.get_state()  # one deep copy for the sweep, shared in each task's pickle (_RunGroup)
        for offset, overrides in enumerate(job_overrides):
            idx = initial_job_idx + offset
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            jobs.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", state))
        size = self.cells_per_task
        groups = [jobs[i:i + size] for i in range(0, len(jobs), size)]
        submitted = _submit(executor, _RunGroup(self), groups, self._EXECUTOR)
        print(_submitted_line(submitted, groups, self._EXECUTOR, self.params, sweep_dir),  # type: ignore[attr-defined]
              flush=True)
        return _gather(submitted, groups, poll_s=self.POLL_S)


def _submit(executor: Any, run: _RunGroup, groups: List[list], kind: str) -> list:
    """``executor.map_array`` (one array job); a submission the scheduler refuses is the user's to fix.

    Raises:
        UserError: ``sbatch`` refused the job (a partition or account that does not exist, a time or memory
            limit above the partition's, an array larger than ``MaxArraySize``), in one line with its reason.
    """
    from submitit.core.utils import FailedJobError, FailedSubmissionError

    from xaibench.errors import UserError

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes sbatch's stderr: it goes in our one line
            return executor.map_array(run, groups)
    except (FailedJobError, FailedSubmissionError) as error:
        reason = " ".join(line.strip() for line in str(error).strip().splitlines() if line.strip())[:400]
        raise UserError(f"{kind} refused the sweep's array job ({_count(len(groups), 'task')}): {reason}; fix the "
                        f"hydra.launcher.* settings (partition, account, timeout_min, mem_gb, cells_per_task) and "
                        f"rerun: stored cells are not recomputed") from None


def _submitted_line(submitted: list, groups: List[list], kind: str, params: Any, sweep_dir: Path) -> str:
    """What a cluster user needs once the array is queued: its id, its size, where its logs are, how to follow it."""
    job_id = str(submitted[0].job_id).split("_")[0]
    logs = Path(str(submitted[0].paths.stdout)).parent  # <folder>/<job>_0 (a Slurm array), <folder>/<job> (one task)
    if len(submitted) > 1:  # submitit's local executor runs each task as a job of its own (ids are process ids)
        array = all(str(task.job_id).startswith(f"{job_id}_") for task in submitted)
        logs = logs.parent / (f"{job_id}_<task>" if array else "<task id>")
    parallel = params.get("array_parallelism")
    limit = f", at most {parallel} running at once" if parallel and kind == "slurm" and len(groups) > parallel else ""
    text = (f"submitted {kind} job {job_id}: {_count(len(groups), 'array task')} for "
            f"{_count(sum(len(group) for group in groups), 'cell')}, up to {len(groups[0])} per task{limit}\n"
            f"  logs: {logs}/ (each finished cell's line in *_log.out, errors in *_log.err)")
    if kind == "slurm":
        text += f"\n  follow: squeue -j {job_id}; sacct -j {job_id}; xaibench summary {sweep_dir}"
    return text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _gather(submitted: list, groups: List[list], *, poll_s: float) -> List[JobReturn]:
    """Wait for every task, saying as each ends; the job returns of the tasks that finished.

    A task that dies (killed for memory, node failure, its time limit, cancelled) is reported in one
    line naming its cells and logs, and the other tasks are still collected: the sweep then ends incomplete (exit 1)
    and a rerun computes only the cells no task stored.
    """
    returns: List[JobReturn] = []
    pending = dict(enumerate(submitted))
    n_cells, n_written = sum(len(group) for group in groups), 0
    try:
        while pending:
            for index in [index for index, task in pending.items() if task.done()]:
                task = pending.pop(index)
                try:
                    ended = task.results()[0]
                except Exception as error:  # noqa: BLE001 - one lost task must not lose the other tasks' cells
                    print(_failed_line(task, groups, index, error), file=sys.stderr, flush=True)
                    continue
                returns.extend(ended)
                written = sum(_written(job) for job in ended)
                n_written += written
                print(f"task {task.job_id} ended: {written} of {_count(len(ended), 'cell')} written"
                      + (f" (see {task.paths.stderr})" if written < len(ended) else "")
                      + f"; {n_written} of {n_cells} cells, {len(submitted) - len(pending)} of {len(submitted)} "
                      f"tasks", flush=True)
            if pending:
                time.sleep(poll_s)
    except KeyboardInterrupt:  # Ctrl-C on the login node stops the waiting, not the array
        print(_interrupted_line(submitted), file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    return returns


def _written(job: JobReturn) -> bool:
    """Whether a job wrote its cell: the xaibench task returns False when it printed why it could not (bad input in
    the task, a full disk); a job Hydra saw raise wrote nothing."""
    return job.status == JobStatus.COMPLETED and job._return_value is not False


def _interrupted_line(submitted: list) -> str:
    job_id = str(submitted[0].job_id).split("_")[0]
    slurm = str(submitted[0].job_id) != job_id or type(submitted[0]).__name__.startswith("Slurm")
    running = (f"Slurm job {job_id} keeps running and storing cells (scancel {job_id} stops it)" if slurm
               else "tasks still running keep storing cells")
    return (f"xaibench: interrupted: {running}; once it has ended, rerun the same command to collect the sweep "
            f"(stored cells are not recomputed)")


def _failed_line(task: Any, groups: List[list], index: int, error: BaseException) -> str:
    """``task 1002_1 (job 2: method=crash) ended: FAILED; see <log.out>, <log.err>``: the jobs by their sweep
    numbers (``jobs/<n>``) and the overrides that tell them from the sweep's other jobs."""
    common = set.intersection(*(set(job[0]) for group in groups for job in group))
    described = [f"{_job_number(job)}: {' '.join(o for o in filter_overrides(job[0]) if o not in common)}".rstrip(": ")
                 for job in groups[index]]
    cells = f"job {described[0]}" if len(described) == 1 else f"jobs {described[0]} ... {described[-1]}"
    state = re.search(r"state: ([A-Z_]+)", str(error))
    first = (str(error).strip() or "?").splitlines()[0][:200]
    reason = f"state {state.group(1)}" if state else f"{type(error).__name__}: {first}"
    return (f"xaibench: error: task {task.job_id} ({cells}) ended before storing its cells: {reason}; "
            f"see {task.paths.stdout} and {task.paths.stderr}")


def _job_number(job: tuple) -> int:
    """The job's number in the whole sweep (``SkipStoredSweeper`` launches some jobs, each in ``jobs/<n>``)."""
    for override in job[0]:
        if override.startswith("hydra.sweep.subdir=jobs/") and override.rsplit("/", 1)[-1].isdigit():
            return int(override.rsplit("/", 1)[-1])
    return int(job[2])


@dataclass
class ChunkedSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.xaibench_launchers.chunked_submitit.ChunkedSlurmLauncher"
    cells_per_task: int = 1


@dataclass
class ChunkedLocalConf(LocalQueueConf):
    _target_: str = "hydra_plugins.xaibench_launchers.chunked_submitit.ChunkedLocalLauncher"
    cells_per_task: int = 1


class ChunkedSlurmLauncher(_Chunked, SlurmLauncher):
    """Slurm array tasks of ``cells_per_task`` cells each."""

    _CONF = ChunkedSlurmConf


class ChunkedLocalLauncher(_Chunked, LocalLauncher):
    """submitit's local executor with ``cells_per_task`` cells per task (tests; one machine without Slurm)."""

    _CONF = ChunkedLocalConf


ConfigStore.instance().store(group="hydra/launcher", name="submitit_slurm_chunked", node=ChunkedSlurmConf,
                             provider="xaibench")
ConfigStore.instance().store(group="hydra/launcher", name="submitit_local_chunked", node=ChunkedLocalConf,
                             provider="xaibench")
