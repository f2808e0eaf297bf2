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
import os
import re
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, List, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
try:  # hydra-submitit-launcher comes with `pip install 'xaibench[launchers]'`; without it there are no Slurm
    # launchers (the pre-flight says how to get them). Hydra imports every hydra_plugins module for any run: an
    # ImportError here printed Hydra's 5-line warning calling this plugin "incompatible or buggy" on every sweep.
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, LocalQueueConf, SlurmQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
except ImportError:
    SlurmLauncher = None
from omegaconf import OmegaConf

from hydra_plugins.xaibench_launchers.skip_stored import remove_unfilled_folder
from xaibench.config.slurm import check_array_fits, mark_collected, record_array

log = logging.getLogger(__name__)


class _RunGroup:
    """What one array task runs: several jobs of the sweep, in order (pickled to the worker).

    The jobs of a group share one copy of Hydra's singleton state in the pickle (16 KB a job before; deep-copied
    for each job here, so each starts from the state the stock launcher gives it), and each returns its status and
    return value without its composed configs (25 KB pickled, 145 KB in memory a job before): a 10,000-cell
    sweep's launching process no longer holds 1.45 GB of configs nobody reads, nor writes ~400 MB of pickles.

    At its time limit or on preemption (Slurm's ``--signal=USR2``, submitit's handler) the task is requeued with
    the jobs it has finished (``checkpoint``): the next attempt runs only the others. A timed-out attempt that
    finished no job is not requeued (its cell needs more than ``timeout_min``; requeuing would time out again),
    nor one past ``max_num_timeout`` requeues: the task then stops at once, its unfinished jobs return "not
    written" with one line in the task's ``*_log.err``, and a rerun of the sweep computes only them.

    A task that Slurm requeues by itself, with no signal the task could act on (preemption with
    ``PreemptMode=REQUEUE``: SIGTERM, then SIGKILL after the partition's ``GraceTime``; a node failure; an admin's
    ``scontrol requeue``), likewise runs only the jobs it had not finished: after each job the task's pickle is
    rewritten with the jobs finished so far (``_save_progress``), and a requeued task starts from that pickle.
    """

    def __init__(self, launcher: Any) -> None:
        self.launcher = launcher
        self.finished: List[JobReturn] = []  # the group's jobs finished by this task's earlier attempts
        self.timed_out = False  # the signal was the time limit's (set by the signal handler, read by checkpoint)
        self.terminated = False  # the task got SIGTERM (said once in its log)
        self._attempt_from = 0  # len(finished) when this attempt started

    def __call__(self, group: List[tuple]) -> List[JobReturn]:
        self._attempt_from = len(self.finished)
        self.terminated = False
        if self.finished:
            print(f"requeued: {len(self.finished)} of {len(group)} cells were finished by earlier attempts; running "
                  f"the other {len(group) - len(self.finished)}", flush=True)
        with _stop_instead_of_error(self) as handler:
            try:
                for *job, state in group[len(self.finished):]:
                    done = self.launcher(*job, copy.deepcopy(state))
                    done.cfg = done.hydra_cfg = None  # the job's folder keeps them (.hydra/); the sweeper reads status
                    self.finished.append(done)
                    if len(self.finished) < len(group):
                        _save_progress(handler, self, group)
            except _Stopped as stopped:
                left = group[len(self.finished):]
                numbers = [str(_job_number(job)) for job in left]
                jobs = ", ".join(numbers) if len(numbers) < 4 else f"{numbers[0]} ... {numbers[-1]}"
                print(f"xaibench: error: {stopped}; the cells of job{'s' if len(left) > 1 else ''} {jobs} were not "
                      f"stored: rerun the sweep to compute them (stored cells are not recomputed)", file=sys.stderr,
                      flush=True)
                self.finished.extend(JobReturn(overrides=list(job[0]), status=JobStatus.COMPLETED,
                                               _return_value=False) for job in left)
        return self.finished

    def checkpoint(self, group: List[tuple]) -> Any:
        """submitit's requeue hook: resubmit the task with the jobs it finished (None: not requeued)."""
        import submitit

        if self.timed_out and len(self.finished) == self._attempt_from:
            return None  # no cell finished within timeout_min: a requeued attempt would time out again
        return submitit.helpers.DelayedSubmission(self, group)


class _Stopped(BaseException):
    """The task stops (not requeued at its time limit): a BaseException, so that the cell it interrupts does not
    record it as the cell's error (``run_cell`` records an ``Exception`` as error rows) but ends the task."""


def _save_progress(handler: Any, run: _RunGroup, group: List[tuple]) -> None:
    """Rewrite the task's pickle (``<job>_<task>_submitted.pkl``, atomically) with the jobs it has finished, with
    the requeues at the time limit it has left: a task that Slurm requeues by itself (preemption, node failure)
    loads it and runs only the others. ~10 ms a job (~170 KB: Hydra caches configs). Outside a submitit task: nothing.
    """
    if handler is None or handler.env.global_rank != 0:
        return
    from submitit.core import utils

    progress = utils.DelayedSubmission(run, group)
    progress.set_timeout(handler._delayed._timeout_min, handler._delayed._timeout_countdown)
    try:
        with utils.temporary_save_path(handler._job_paths.submitted_pickle) as path:
            progress.dump(path)
    except OSError as error:  # a full disk: the task goes on; a requeue would then run its finished cells again
        print(f"xaibench: warning: could not record the task's finished cells in {handler._job_paths.submitted_pickle} "
              f"({type(error).__name__}: {error}); if Slurm requeues the task, it runs them again (read from the "
              f"store)", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _stop_instead_of_error(run: _RunGroup):
    """Inside a submitit task: its time-limit / preemption handler, told whether the signal is the time limit, and
    whose "not requeued" error (``UncompletedJobError``, raised in whatever code runs when the signal comes: the
    middle of a cell) becomes ``_Stopped``; SIGTERM (Slurm preempting, cancelling or ending the task) is said once
    in the task's ``*_log.err`` and otherwise ignored, as submitit does: the task goes on, and each job it finishes
    before it is killed is kept (``_save_progress``). Yields submitit's signal handler (None elsewhere: nothing
    installed)."""
    import signal

    from submitit.core.job_environment import JobEnvironment
    from submitit.core.utils import UncompletedJobError

    number = JobEnvironment._usr_sig()
    submitit_handler = signal.getsignal(number)
    if not hasattr(getattr(submitit_handler, "__self__", None), "has_timed_out"):
        yield None
        return

    def handler(signum: int, frame: Any) -> None:
        run.timed_out = submitit_handler.__self__.has_timed_out()
        try:
            submitit_handler(signum, frame)  # checkpoint, then requeue and exit; or raise: not requeued
        except UncompletedJobError as error:
            raise _Stopped(_not_requeued(run, str(error))) from None
        except Exception as error:  # noqa: BLE001 - scontrol requeue refused: not the running cell's error
            first = (str(error).strip() or "?").splitlines()[0][:200]
            raise _Stopped(f"task {'stopped at its time limit' if run.timed_out else 'preempted'} and could not be "
                           f"requeued ({type(error).__name__}: {first})") from None

    def terminated(signum: int, frame: Any) -> None:
        if not run.terminated:
            run.terminated = True
            os.write(2, _terminated_line(run).encode())  # not print: a signal may interrupt a write to stderr

    previous_term = signal.signal(signal.SIGTERM, terminated)
    signal.signal(number, handler)
    try:
        yield submitit_handler.__self__
    finally:
        signal.signal(number, submitit_handler)
        signal.signal(signal.SIGTERM, previous_term)


def _terminated_line(run: _RunGroup) -> str:
    return (f"xaibench: warning: task got SIGTERM (Slurm preempts, cancels or stops it); it goes on until it is "
            f"killed, {len(run.finished)} finished cell{'s are' if len(run.finished) != 1 else ' is'} kept, and if "
            f"Slurm requeues the task (PreemptMode=REQUEUE, a node failure) it runs only the cells not finished\n")


def _not_requeued(run: _RunGroup, reason: str) -> str:
    """Why the task stopped without being requeued, with what to change."""
    limit = run.launcher.params.get("timeout_min")
    if not run.timed_out:
        return f"task preempted and not requeued ({reason.strip()})"
    if "checkpoint function returned None" in reason:
        return (f"task stopped at its time limit (timeout_min={limit}) in the middle of its first cell of this "
                f"attempt, so it was not requeued: raise hydra.launcher.timeout_min")
    requeues = run.launcher.params.get("max_num_timeout", 0)
    times = "and not requeued (hydra.launcher.max_num_timeout=0)" if not requeues else \
        f"again after {requeues} requeue{'s' if requeues != 1 else ''} (hydra.launcher.max_num_timeout={requeues})"
    return (f"task stopped at its time limit (timeout_min={limit}) {times}; raise hydra.launcher.timeout_min or "
            f"max_num_timeout, or lower cells_per_task")


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
                refused it with a traceback once stored cells were written), ``cells_per_task`` < 1 (0 used to
                run silently as 1), ``max_num_timeout`` < 0, or ``tasks_per_node``/``nodes`` > 1 (each process
                of the task computed every one of its cells).
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
        requeues = launcher.get("max_num_timeout", 0)
        if isinstance(requeues, bool) or not isinstance(requeues, int) or requeues < 0:
            raise UserError(f"hydra.launcher.max_num_timeout must be a non-negative integer (how many times a task "
                            f"at its time limit is requeued; 0: never), got {requeues!r}")
        if cls._EXECUTOR == "slurm":
            slurm_poll_s()  # a malformed $XAIBENCH_SLURM_POLL_S is refused here, before any file is touched
        _check_counts(launcher)
        for key in ("tasks_per_node", "nodes"):
            value = launcher.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 1:
                raise UserError(f"hydra.launcher.{key}={value} would run each task's cells in {value} processes at "
                                f"once, every one computing them all (a task runs its cells one after the other in "
                                f"one process); use hydra.launcher.{key}=1, and cells_per_task or array_parallelism "
                                f"for more at once")

    @classmethod
    def sbatch_script(cls, settings: dict, n_tasks: int) -> str:
        """The sbatch file ``launch`` would submit for an array of ``n_tasks`` tasks with these settings (the
        pre-flight's ``sbatch --test-only``); its log paths are in a folder that is not created."""
        from submitit.slurm.slurm import _make_sbatch_string

        params = {k: v for k, v in settings.items() if not str(k).startswith("_")}
        params["submitit_folder"] = "/nonexistent/xaibench-test-only/%j"
        executor = cls(**params)._executor()._executor  # AutoExecutor -> SlurmExecutor: sbatch's parameter names
        array = {"map_count": n_tasks} if n_tasks > 1 else {}  # one task is a plain job, as submitit submits it
        return _make_sbatch_string(command="true", folder=executor.folder, **executor.parameters, **array)

    def _executor(self) -> Any:
        """submitit's executor with the launcher's parameters (as the stock ``launch`` builds it)."""
        import submitit

        params = dict(self.params)  # type: ignore[attr-defined]
        if params.get("additional_parameters"):
            params["additional_parameters"] = _sbatch_switches(params["additional_parameters"])
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
        # Read first: a malformed value (a launch without the pre-flight, Hydra's alone) was refused only once the
        # array was submitted, and its tasks ran unwatched.
        every_s = slurm_poll_s() if self._EXECUTOR == "slurm" else None
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
        if self._EXECUTOR == "slurm":  # the pre-flight checked the sweep (cli); this launch may be Hydra's alone
            check_array_fits(len(jobs), size, self.params.get("timeout_min"))  # type: ignore[attr-defined]
        submitted = _submit(executor, _RunGroup(self), groups, self._EXECUTOR, sweep_dir)
        job_id = str(submitted[0].job_id).split("_")[0]
        if self._EXECUTOR == "slurm":  # a later run of this sweep folder is refused while the array runs
            record_array(sweep_dir, job_id, len(groups), len(jobs))
        print(_submitted_line(submitted, groups, self._EXECUTOR, self.params, sweep_dir),  # type: ignore[attr-defined]
              flush=True)
        poll_s, refresh = self.POLL_S, None
        if every_s is not None:
            poll_s, refresh = min(poll_s, every_s), _sacct_refresher(submitted, every_s)
        try:
            returns = _gather(submitted, groups, poll_s=poll_s, cells_written=_cell_files_counter(sweep_dir),
                              refresh=refresh)
        finally:
            remove_unfilled_folder(self.params.get("submitit_folder"))  # type: ignore[attr-defined]
        if self._EXECUTOR == "slurm":  # every task ended: no need to ask squeue about it again
            mark_collected(sweep_dir, job_id)
        return returns


# Settings that count something (sbatch refuses 0 or less, after the stored cells were written; submitit's local
# executor ran gpus_per_node=-1 as "no GPU" and timeout_min=-5 as no limit): what each one means, for the message.
_COUNTS = {"timeout_min": "minutes of wall-clock time per task", "cpus_per_task": "CPUs per task",
           "gpus_per_task": "GPUs per task; null: none, or hydra/launcher=slurm_cpu",
           "gpus_per_node": "GPUs per node; null: none", "cpus_per_gpu": "CPUs per GPU; null: Slurm's default",
           "tasks_per_node": "tasks per node", "nodes": "nodes per task", "mem_gb": "GB of memory per node; null: "
           "the partition's default", "array_parallelism": "array tasks running at once"}


def _check_counts(launcher: Any) -> None:
    """Each count setting is a positive integer (or null where the launcher allows it), and ``signal_delay_s``
    leaves the task time to run (a non-negative number of seconds below ``timeout_min``).

    Raises:
        UserError: ``hydra.launcher.gpus_per_task=-1``, ``timeout_min=0``, ``mem_gb=-1``, ``array_parallelism=0``,
            ``signal_delay_s=-1``, ...
    """
    from xaibench.errors import UserError

    for key, meaning in _COUNTS.items():
        value = launcher.get(key)
        if value is None or key not in launcher:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"hydra.launcher.{key} must be a positive integer ({meaning}), got {value!r}")
    delay, timeout = launcher.get("signal_delay_s"), launcher.get("timeout_min")
    if delay is None or isinstance(delay, bool) or not isinstance(delay, int):
        return
    if delay < 0 or (isinstance(timeout, int) and delay >= 60 * timeout):
        raise UserError(f"hydra.launcher.signal_delay_s={delay} must be at least 0 and below the task's time limit "
                        f"(timeout_min={timeout}: {60 * timeout if isinstance(timeout, int) else '?'} s): Slurm "
                        f"signals the task that many seconds before its limit, so that it can be requeued")


def _cell_files_counter(sweep_dir: Path) -> Callable[[], int]:
    """How many cell files the tasks have written to ``<sweep>/cells/`` since now (the stored cells were written
    there before the launch)."""
    from xaibench.results.collect import SWEEP_CELLS

    def count() -> int:
        try:
            return sum(1 for entry in os.scandir(sweep_dir / SWEEP_CELLS) if entry.name.endswith(".parquet"))
        except OSError:
            return 0
    before = count()
    return lambda: count() - before


def _sbatch_switches(additional: Any) -> dict:
    """``additional_parameters`` as submitit writes them (``true`` -> ``--name``, else ``--name=value``) with the
    switches set to false left out, ``requeue: false`` as ``--no-requeue``: submitit wrote ``--requeue=False``,
    which sbatch refuses (``hydra.launcher.additional_parameters.requeue=false``, to turn off the presets')."""
    switches = {}
    for name, value in dict(additional).items():
        if value is False and name == "requeue":
            switches["no_requeue"] = True
        elif value is not False:
            switches[name] = value
    return switches


def _submit(executor: Any, run: _RunGroup, groups: List[list], kind: str, sweep_dir: Path) -> list:
    """``executor.map_array`` (one array job); a submission the scheduler refuses is the user's to fix.

    A refused submission leaves nothing that looks like jobs out there: the script and pickles submitit wrote for it
    are removed, and ``sweep.json`` says ``failed`` with sbatch's reason (it said ``running`` forever, and
    ``xaibench summary`` "did not finish"). (The pre-flight's ``sbatch --test-only`` refuses most such arrays
    before any file is touched; this is for what changed in between, or what only the real submission checks.)

    Raises:
        UserError: ``sbatch`` refused the job (a partition or account that does not exist, a time or memory
            limit above the partition's, an array larger than ``MaxArraySize``), in one line with its reason.
    """
    from submitit.core.utils import FailedJobError, FailedSubmissionError

    from xaibench.errors import UserError
    from xaibench.results import manifest

    folder = _submission_folder(executor)
    before = set(os.listdir(folder)) if folder.is_dir() else None
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes sbatch's stderr: it goes in our one line
            return executor.map_array(run, groups)
    except (FailedJobError, FailedSubmissionError) as error:
        reason = " ".join(line.strip() for line in str(error).strip().splitlines() if line.strip())[:400]
        _remove_new_files(folder, before)
        what = f"{kind} refused the sweep's array job ({_count(len(groups), 'task')}): {reason}"
        manifest.fail(sweep_dir, f"{what}; no job was submitted: fix the hydra.launcher.* settings and rerun")
        raise UserError(f"{what}; fix the hydra.launcher.* settings (partition, account, timeout_min, mem_gb, "
                        f"cells_per_task) and rerun: stored cells are not recomputed") from None


def _submission_folder(executor: Any) -> Path:
    """Where submitit writes a submission's script and pickles: ``submitit_folder`` up to its first ``%j``-like
    part (``<sweep>/slurm/``)."""
    from submitit.core.utils import JobPaths

    return JobPaths.get_first_id_independent_folder(executor._executor.folder)


def _remove_new_files(folder: Path, before: set | None) -> None:
    """Remove the files a refused submission wrote in ``folder`` (those not in ``before``), and ``folder`` itself
    where the submission created it and left it empty."""
    if not folder.is_dir():
        return
    for name in set(os.listdir(folder)) - (before or set()):
        if (folder / name).is_file():
            (folder / name).unlink(missing_ok=True)
    if before is None:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty


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


SLURM_POLL_S = "XAIBENCH_SLURM_POLL_S"
MIN_SLURM_POLL_S = 0.5  # the launcher looks at its tasks every POLL_S = 1 s: a faster sacct pace is never used


def slurm_poll_s() -> float | None:
    """``$XAIBENCH_SLURM_POLL_S``: at most how many seconds the Slurm launcher goes without asking ``sacct`` for its
    tasks' states, and how long it waits for the result file of a task ``sacct`` lists as ended; unset (None):
    submitit's pace (``sacct`` 2, 4, 8, ... seconds after the submission, then every 10 minutes at most; 15 s for
    the file, which a network file system may show late). A task that stored its cells is seen within a second
    either way (its result file); this only makes a task that died without one be reported sooner. Meant for a
    fake or a small private Slurm (the tests set 1), where ``sacct`` costs nothing.

    Raises:
        UserError: not a number of seconds from ``MIN_SLURM_POLL_S`` (0.5).
    """
    value = os.environ.get(SLURM_POLL_S, "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not MIN_SLURM_POLL_S <= seconds < float("inf"):  # below: sacct (slurmdbd) asked on every loop turn
        from xaibench.errors import UserError

        raise UserError(f"{SLURM_POLL_S} must be a number of seconds from {MIN_SLURM_POLL_S} (how often the Slurm "
                        f"launcher asks sacct about its tasks; unset: submitit's pace), got {value!r}")
    return seconds


def _sacct_refresher(submitted: list, every_s: float) -> Callable[[], None]:
    """Ask ``sacct`` about every task (one call: submitit's shared watcher) if ``every_s`` seconds have passed since
    the last call; each task then waits at most ``every_s`` seconds for its result file once ``sacct`` lists it as
    ended (submitit's ``_results_timeout_s``, 15 s)."""
    for task in submitted:
        task._results_timeout_s = every_s
    watcher, last = type(submitted[0]).watcher, [time.monotonic()]  # submitit asked once at the submission

    def refresh() -> None:
        if time.monotonic() - last[0] >= every_s:
            watcher.update()
            last[0] = time.monotonic()

    return refresh


def _gather(submitted: list, groups: List[list], *, poll_s: float,
            cells_written: Callable[[], int] | None = None,
            refresh: Callable[[], None] | None = None) -> List[JobReturn]:
    """Wait for every task, saying as each ends and, between, how many tasks run and cells are written (a line
    after 2, 4, 8 minutes, then every 15: a 20-cell task may take hours, and nothing was printed meanwhile);
    the job returns of the tasks that finished. ``cells_written``: the cells the tasks have stored so far.
    ``refresh``: called before each look at the tasks (``$XAIBENCH_SLURM_POLL_S``'s ``sacct`` pace).

    A task that dies (killed for memory, node failure, its time limit, cancelled) is reported in one
    line naming its cells and logs, and the other tasks are still collected: the sweep then ends incomplete (exit 1)
    and a rerun computes only the cells no task stored. So is a task preempted and not requeued
    (``PreemptMode=CANCEL``): submitit takes Slurm's PREEMPTED for a task about to be requeued and waits for it
    forever; one still PREEMPTED after ``PREEMPTED_S`` has ended.
    """
    returns: List[JobReturn] = []
    pending = dict(enumerate(submitted))
    n_cells, n_written = sum(len(group) for group in groups), 0
    preempted: dict = {}  # task index -> when Slurm was first seen to list it PREEMPTED
    statuses, next_status = 0, time.monotonic() + STATUS_S[0]
    try:
        while pending:
            if refresh is not None:
                refresh()
            ends = {index: _end(task, index, preempted) for index, task in pending.items()}
            for index in [index for index, end in ends.items() if end]:
                task = pending.pop(index)
                try:
                    if ends[index] == "preempted":
                        raise _NotRequeued(f"state PREEMPTED and not requeued within {PREEMPTED_S // 60} minutes "
                                           f"(the partition's PreemptMode is CANCEL, or the task may not be requeued)")
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
            if pending and time.monotonic() >= next_status:
                written_so_far = cells_written() if cells_written is not None else n_written
                print(_waiting_line(submitted, pending, n_cells, max(written_so_far, n_written)), flush=True)
                statuses += 1
                next_status = time.monotonic() + STATUS_S[min(statuses, len(STATUS_S) - 1)]
            if pending:
                time.sleep(poll_s)
    except KeyboardInterrupt:  # Ctrl-C on the login node stops the waiting, not the array
        print(_interrupted_line(submitted), file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    except BaseException as error:  # SIGTERM (`kill`, the end of a batch job): the same line, exit code 143
        if type(error).__name__ != "Terminated":  # xaibench.cli's, raised by its SIGTERM handler
            raise
        print(_interrupted_line(submitted, "terminated (SIGTERM)"), file=sys.stderr, flush=True)
        raise SystemExit(143) from None
    return returns


STATUS_S = (120, 240, 480, 900)  # seconds before each "waiting" line, the last one repeated


def _waiting_line(submitted: list, pending: dict, n_cells: int, written: int) -> str:
    """``waiting (11:42): 37 of 500 tasks ended, 64 running, 399 queued; 812 of 10000 cells written``: the tasks'
    states as submitit last read them (no extra ``sacct``)."""
    running = sum(str(getattr(task, "state", "")).upper() == "RUNNING" for task in pending.values())
    return (f"waiting ({_clock()}): {len(submitted) - len(pending)} of {_count(len(submitted), 'task')} ended, "
            f"{running} running, {len(pending) - running} queued; {written} of {n_cells} cells written")


def _clock() -> str:
    return time.strftime("%H:%M")


PREEMPTED_S = 900  # a task Slurm lists as PREEMPTED for this long was not requeued (GraceTime is minutes at most;
# submitit asks sacct at least every 10 minutes, so a requeued task's PENDING is seen within it)


class _NotRequeued(Exception):
    """A task preempted and not requeued: it ended without a result (its message is the reason)."""


def _end(task: Any, index: int, preempted: dict) -> str:
    """``done`` once submitit has the task's end; ``preempted`` once Slurm has listed it PREEMPTED for
    ``PREEMPTED_S`` (submitit counts PREEMPTED as "about to be requeued" and would wait for it forever); else ""."""
    if task.done():
        return "done"
    if str(getattr(task, "state", "")).upper() != "PREEMPTED":  # submitit's cached sacct answer
        preempted.pop(index, None)
        return ""
    return "preempted" if time.time() - preempted.setdefault(index, time.time()) >= PREEMPTED_S else ""


def _written(job: JobReturn) -> bool:
    """Whether a job wrote its cell: the xaibench task returns False when it printed why it could not (bad input in
    the task, a full disk); a job Hydra saw raise wrote nothing."""
    return job.status == JobStatus.COMPLETED and job._return_value is not False


def _interrupted_line(submitted: list, what: str = "interrupted") -> str:
    job_id = str(submitted[0].job_id).split("_")[0]
    slurm = str(submitted[0].job_id) != job_id or type(submitted[0]).__name__.startswith("Slurm")
    if not slurm:  # local tasks stop with their launcher (engine/launcher_watch.py)
        return (f"xaibench: {what}: the local tasks stop with it; what they stored is kept: rerun the same command "
                f"to finish the sweep (stored cells are not recomputed)")
    return (f"xaibench: {what}: Slurm job {job_id} keeps running and storing cells (scancel {job_id} stops it); once "
            f"it has ended, rerun the same command to collect the sweep (stored cells are not recomputed)")


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
    reason = str(error) if isinstance(error, _NotRequeued) else reason
    return (f"xaibench: error: task {task.job_id} ({cells}) ended before storing its cells: {reason}; "
            f"see {task.paths.stdout} and {task.paths.stderr}")


def _job_number(job: tuple) -> int:
    """The job's number in the whole sweep (``SkipStoredSweeper`` launches some jobs, each in ``jobs/<n>``)."""
    for override in job[0]:
        if override.startswith("hydra.sweep.subdir=jobs/") and override.rsplit("/", 1)[-1].isdigit():
            return int(override.rsplit("/", 1)[-1])
    return int(job[2])


if SlurmLauncher is not None:
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
