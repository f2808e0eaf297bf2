"""The chunked submitit launcher waits for every array task: a task that dies is one line naming its cells and
logs, the other tasks' cells are still collected, and Ctrl-C says the array keeps running (submitit's job objects
stood in for by tasks that finish after a few polls; the real ones run in tests/integration/test_slurm_tasks.py)."""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from submitit.core.utils import UncompletedJobError

from hydra_plugins.xaibench_launchers.chunked_submitit import _gather


class Task:
    """A submitted array task: done after ``polls`` checks; its results, or the error submitit raises."""

    def __init__(self, job_id: str, returns=(), error: BaseException | None = None, polls: int = 0,
                 states=("RUNNING",)) -> None:
        self.job_id, self.returns, self.error, self.polls = job_id, list(returns), error, polls
        self.states = list(states)  # what sacct says at each poll, the last one from then on
        log = Path("/sweep/slurm") / job_id / f"{job_id}_0_log"
        self.paths = SimpleNamespace(stdout=log.with_suffix(".out"), stderr=log.with_suffix(".err"))

    def done(self) -> bool:
        self.polls -= 1
        return self.polls < 0

    @property
    def state(self) -> str:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def results(self) -> list:
        if self.error is not None:
            raise self.error
        return [self.returns]


def job(n: int, method: str) -> tuple:
    overrides = ["model=mlp", f"method={method}", "sweep_id=t", f"hydra.sweep.subdir=jobs/{n}"]
    return overrides, "hydra.sweep.dir", n - 10, f"job_id_for_{n - 10}", {}  # launched as n - 10: 10 were stored


def done(n: int, written: bool = True):
    """A job's return as the xaibench task gives it: True once its cell is written, False if it said why not."""
    from hydra.core.utils import JobReturn, JobStatus

    return JobReturn(overrides=[f"job {n}"], status=JobStatus.COMPLETED, _return_value=written)


GROUPS = [[job(10, "saliency"), job(11, "lime")], [job(12, "occlusion"), job(13, "kernel_shap")], [job(14, "random")]]


def test_a_dead_task_is_one_line_and_the_other_tasks_are_collected(capsys):
    died = UncompletedJobError("Job 7_1 (task: 0) with path /x/7_1_0_result.pkl\nhas not produced any output "
                               "(state: OUT_OF_MEMORY)\nNo error stream produced. Look at stdout: ...")
    r10, r11, r14 = done(10), done(11, written=False), done(14)  # job 11 met bad input in its task
    tasks = [Task("7_0", [r10, r11], polls=2), Task("7_1", error=died), Task("7_2", [r14], polls=1)]
    assert _gather(tasks, GROUPS, poll_s=0) == [r14, r10, r11]  # as the tasks end, none lost
    out, err = capsys.readouterr()
    assert err == ("xaibench: error: task 7_1 (jobs 12: method=occlusion ... 13: method=kernel_shap) ended before "
                   "storing its cells: state OUT_OF_MEMORY; see /sweep/slurm/7_1/7_1_0_log.out and "
                   "/sweep/slurm/7_1/7_1_0_log.err\n")
    assert out == ("task 7_2 ended: 1 of 1 cell written; 1 of 5 cells, 2 of 3 tasks\n"
                   "task 7_0 ended: 1 of 2 cells written (see /sweep/slurm/7_0/7_0_0_log.err); 2 of 5 cells, 3 of 3 "
                   "tasks\n")


def test_a_task_preempted_and_not_requeued_is_one_line_and_a_requeued_one_is_waited_for(capsys, monkeypatch):
    """``PreemptMode=CANCEL``: the task ends PREEMPTED, which submitit takes for "about to be requeued": the launching
    process waited for it forever, printing nothing. With REQUEUE it is PREEMPTED for a moment, then PENDING."""
    from hydra_plugins.xaibench_launchers import chunked_submitit

    r10, r11, r12, r13 = done(10), done(11), done(12), done(13)
    requeued = Task("7_1", [r12, r13], polls=6, states=["RUNNING", "PREEMPTED", "PREEMPTED", "PENDING", "RUNNING"])
    assert _gather([Task("7_0", [r10, r11], polls=1), requeued], GROUPS[:2], poll_s=0) == [r10, r11, r12, r13]
    monkeypatch.setattr(chunked_submitit, "PREEMPTED_S", 0)
    cancelled = Task("7_1", polls=10**6, states=["RUNNING", "PREEMPTED"])
    capsys.readouterr()
    assert _gather([Task("7_0", [r10, r11], polls=1), cancelled], GROUPS[:2], poll_s=0) == [r10, r11]
    assert capsys.readouterr().err == (
        "xaibench: error: task 7_1 (jobs 12: method=occlusion ... 13: method=kernel_shap) ended before storing its "
        "cells: state PREEMPTED and not requeued within 0 minutes (the partition's PreemptMode is CANCEL, or the task "
        "may not be requeued); see /sweep/slurm/7_1/7_1_0_log.out and /sweep/slurm/7_1/7_1_0_log.err\n")


def test_while_waiting_a_line_says_how_many_tasks_run_and_cells_are_written(capsys, monkeypatch):
    """Between "submitted slurm job" and the first task's end (a 20-cell task: hours) nothing was printed. Now a
    line after 2, 4, 8 minutes, then every 15 (here: every poll) gives the tasks' states as submitit last read them
    and the cells the tasks have stored so far (running tasks' too)."""
    from hydra_plugins.xaibench_launchers import chunked_submitit

    monkeypatch.setattr(chunked_submitit, "STATUS_S", (0,))
    monkeypatch.setattr(chunked_submitit, "_clock", lambda: "11:42")
    tasks = [Task("7_0", [done(10), done(11)], polls=2, states=["PENDING"]),
             Task("7_1", [done(12), done(13)], polls=1), Task("7_2", [done(14)])]
    assert len(_gather(tasks, GROUPS, poll_s=0, cells_written=lambda: 3)) == 5
    assert capsys.readouterr().out == (
        "task 7_2 ended: 1 of 1 cell written; 1 of 5 cells, 1 of 3 tasks\n"
        "waiting (11:42): 1 of 3 tasks ended, 1 running, 1 queued; 3 of 5 cells written\n"
        "task 7_1 ended: 2 of 2 cells written; 3 of 5 cells, 2 of 3 tasks\n"
        "waiting (11:42): 2 of 3 tasks ended, 0 running, 1 queued; 3 of 5 cells written\n"
        "task 7_0 ended: 2 of 2 cells written; 5 of 5 cells, 3 of 3 tasks\n")


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_while_waiting_says_the_array_keeps_running(signal_name, capsys, monkeypatch):
    """Ctrl-C, and SIGTERM to the launching process waiting on the login node (rel17: it ended without a word), stop
    the waiting, not the array: one line saying so, exit code 130 / 143."""
    from xaibench.cli import Terminated

    stop, code, said = {"SIGINT": (KeyboardInterrupt, 130, "interrupted"),
                        "SIGTERM": (Terminated, 143, "terminated (SIGTERM)")}[signal_name]

    def interrupted(seconds):
        raise stop  # what Ctrl-C, or the CLI's SIGTERM handler, raises in the waiting loop

    monkeypatch.setattr("hydra_plugins.xaibench_launchers.chunked_submitit.time.sleep", interrupted)
    with pytest.raises(SystemExit) as stopped:
        _gather([Task("8_0", polls=5), Task("8_1", polls=5)], GROUPS[:2], poll_s=1)
    assert stopped.value.code == code
    assert capsys.readouterr().err == (f"xaibench: {said}: Slurm job 8 keeps running and storing cells (scancel 8 "
                                       "stops it); once it has ended, rerun the same command to collect the sweep "
                                       "(stored cells are not recomputed)\n")


def test_a_task_runs_each_job_on_its_own_copy_of_the_shared_state_and_returns_no_configs():
    """The launcher puts one Hydra singleton state in a task's pickle for all its jobs (it pickled one 25 KB deep
    copy per job); each job still starts from an unmodified copy, and returns no composed configs (~150 KB each in
    the launching process: 1.5 GB for a 10,000-cell sweep)."""
    import pickle

    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import OmegaConf

    from hydra_plugins.xaibench_launchers.chunked_submitit import _RunGroup

    seen = []

    def launcher(overrides, key, number, job_id, state):
        seen.append(dict(state["instances"]))
        state["instances"]["mutated by"] = number  # a job changing Hydra's global state
        config = OmegaConf.create({"hydra": {"job": {"num": number}}, "payload": list(range(1000))})
        return JobReturn(overrides=overrides, cfg=config, hydra_cfg=config, status=JobStatus.COMPLETED,
                         _return_value=number)

    state = {"instances": {"config store": "x" * 20_000}, "omegaconf_resolvers": {}}
    group = [([f"method=m{n}"], "hydra.sweep.dir", n, f"job_id_for_{n}", state) for n in range(20)]
    assert len(pickle.dumps(group)) < 22_000  # one state for the 20 jobs
    returns = _RunGroup(launcher)(pickle.loads(pickle.dumps(group)))
    assert seen == [{"config store": "x" * 20_000}] * 20  # no job saw another's change
    assert [(r.return_value, r.overrides, r.cfg, r.hydra_cfg) for r in returns] == [
        (n, [f"method=m{n}"], None, None) for n in range(20)]
    assert len(pickle.dumps(returns)) < 8_000


class _Launcher:
    """Stands in for the submitit launcher a task unpickles: runs a job (``job(n)``) by calling ``cell(n)``."""

    def __init__(self, cell, **params) -> None:
        self.cell, self.params, self.ran = cell, {"timeout_min": 1, **params}, []

    def __call__(self, overrides, key, number, job_id, state):
        from hydra.core.utils import JobReturn, JobStatus

        self.ran.append(_n(overrides))
        try:  # as run_cell: an Exception in a cell becomes its error rows, and the task goes on
            self.cell(_n(overrides))
        except Exception as error:  # noqa: BLE001
            return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=f"error rows: {error}")
        return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=True)


def _n(overrides) -> int:
    return int(overrides[-1].rsplit("/", 1)[-1])


def _in_a_task(monkeypatch, tmp_path, run, group, max_num_timeout: int, requeue=None, timeout_min: int = 1):
    """submitit's own signal handlers installed for ``run`` as in a Slurm task (timeout_min=1: any USR2 is the time
    limit's; 600: a preemption's; SIGTERM: ignored); ``requeued`` lists the ``scontrol requeue`` calls
    (``requeue``: instead)."""
    import signal

    from submitit.core import job_environment, utils
    from submitit.slurm.slurm import SlurmJobEnvironment

    for name, value in {"SLURM_JOB_ID": "7", "SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_LOCALID": "0",
                        "SLURM_NODEID": "0", "SLURM_JOB_NUM_NODES": "1"}.items():
        monkeypatch.setenv(name, value)
    delayed = utils.DelayedSubmission(run, group)
    delayed.set_timeout(timeout_min, max_num_timeout)
    requeued = []
    monkeypatch.setattr(SlurmJobEnvironment, "_requeue",
                        requeue or (lambda self, countdown: requeued.append(countdown)))
    paths = SimpleNamespace(submitted_pickle=tmp_path / "7_submitted.pkl")
    handler = job_environment.SignalHandler(SlurmJobEnvironment(), paths, delayed)
    previous = signal.signal(signal.SIGUSR2, handler.checkpoint_and_try_requeue)
    previous_term = signal.signal(signal.SIGTERM, handler.bypass)

    def restore() -> None:
        signal.signal(signal.SIGUSR2, previous)
        signal.signal(signal.SIGTERM, previous_term)
    return delayed, paths, requeued, restore


def _result(delayed, restore, raises=None):
    """``delayed.result()`` in the task (expecting ``raises`` when given), its signal handlers restored after."""
    try:
        if raises is None:
            return delayed.result()
        with pytest.raises(raises):
            delayed.result()
        return None
    finally:
        restore()


def _signalled_in(number: int):
    """A cell that gets Slurm's time-limit signal in the middle of job ``number`` (then would run for minutes)."""
    import os
    import signal
    import time

    def cell(n: int) -> None:
        if n == number:
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(60)
    return cell


GROUP = [(["method=m", f"hydra.sweep.subdir=jobs/{n}"], "hydra.sweep.dir", n, f"job_id_for_{n}", {}) for n in range(3)]


def test_a_task_at_its_time_limit_is_requeued_with_the_jobs_it_finished_and_reruns_only_the_others(
        monkeypatch, tmp_path, capsys):
    """Slurm's USR2 in the middle of job 1 of 3: submitit requeues the task (it made progress: job 0); the
    requeued attempt, loaded from the pickle submitit rewrote, runs jobs 1 and 2 only and returns all three."""
    from submitit.core import utils

    from hydra_plugins.xaibench_launchers.chunked_submitit import _RunGroup

    run = _RunGroup(_Launcher(_signalled_in(1), max_num_timeout=3))
    delayed, paths, requeued, restore = _in_a_task(monkeypatch, tmp_path, run, GROUP, max_num_timeout=3)
    # submitit requeues, then exits: the cell's `except Exception` lets it pass
    _result(delayed, restore, raises=SystemExit)
    assert requeued == [2] and run.launcher.ran == [0, 1]  # one timeout of 3 used
    again = utils.DelayedSubmission.load(paths.submitted_pickle)  # what Slurm's requeued task runs
    again.function.launcher.cell = lambda n: None
    returns = again.result()
    assert again.function.launcher.ran == [0, 1, 1, 2]  # the first attempt's jobs, then only jobs 1 and 2
    assert [r.return_value for r in returns] == [True, True, True]
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("requeued:")]  # not submitit's
    assert said == ["requeued: 1 of 3 cells were finished by earlier attempts; running the other 2"]


@pytest.mark.parametrize("max_num_timeout, progress", [(0, True), (3, False)])
def test_a_task_not_requeued_stops_at_once_without_recording_an_error(monkeypatch, tmp_path, capsys,
                                                                      max_num_timeout, progress):
    """Not requeued (max_num_timeout=0: hydra-submitit's default; or no cell finished in this attempt, which a
    requeue would repeat): submitit raised its UncompletedJobError inside the running cell, which recorded it as
    the cell's error rows and went on with the task's next cells until Slurm killed it. Now the task stops at
    once, returns its finished jobs and the others as not written, and says why in its log."""
    from hydra_plugins.xaibench_launchers.chunked_submitit import _RunGroup

    signalled = 1 if progress else 0
    run = _RunGroup(_Launcher(_signalled_in(signalled), max_num_timeout=max_num_timeout))
    delayed, paths, requeued, restore = _in_a_task(monkeypatch, tmp_path, run, GROUP, max_num_timeout)
    returns = _result(delayed, restore)
    assert requeued == [] and run.launcher.ran == list(range(signalled + 1))
    assert [r.return_value for r in returns] == [True] * signalled + [False] * (3 - signalled)
    left = ", ".join(str(n) for n in range(signalled, 3))
    reason = ("task stopped at its time limit (timeout_min=1) and not requeued (hydra.launcher.max_num_timeout=0); "
              "raise hydra.launcher.timeout_min or max_num_timeout, or lower cells_per_task" if progress else
              "task stopped at its time limit (timeout_min=1) in the middle of its first cell of this attempt, so it "
              "was not requeued: raise hydra.launcher.timeout_min")
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("xaibench:")]  # not submitit's
    assert said == [f"xaibench: error: {reason}; the cells of jobs {left} were not stored: rerun the sweep to compute "
                    f"them (stored cells are not recomputed)"]


def test_a_task_whose_requeue_fails_stops_at_once_without_recording_an_error(monkeypatch, tmp_path, capsys):
    """``scontrol requeue`` refused (a cluster that allows no requeue): its CalledProcessError, raised in the
    running cell, was recorded as that cell's error rows and the task went on until Slurm killed it."""
    import subprocess

    from hydra_plugins.xaibench_launchers.chunked_submitit import _RunGroup

    def refused(self, countdown):
        raise subprocess.CalledProcessError(1, ["scontrol", "requeue", "7"])

    run = _RunGroup(_Launcher(_signalled_in(1), max_num_timeout=3))
    delayed, _, _, restore = _in_a_task(monkeypatch, tmp_path, run, GROUP, 3, requeue=refused)
    returns = _result(delayed, restore)
    assert [r.return_value for r in returns] == [True, False, False] and run.launcher.ran == [0, 1]
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("xaibench:")]  # not submitit's
    assert said == ["xaibench: error: task stopped at its time limit and could not be requeued (CalledProcessError: "
                    "Command '['scontrol', 'requeue', '7']' returned non-zero exit status 1.); the cells of jobs 1, 2 "
                    "were not stored: rerun the sweep to compute them (stored cells are not recomputed)"]


def test_a_task_preempted_with_usr2_is_requeued_without_using_a_time_limit_requeue(monkeypatch, tmp_path):
    """Preemption as submitit expects it (``PreemptParameters=send_user_signal``: USR2 long before the time limit):
    requeued with the jobs it finished, its ``max_num_timeout`` requeues left untouched."""
    from submitit.core import utils

    from hydra_plugins.xaibench_launchers.chunked_submitit import _RunGroup

    run = _RunGroup(_Launcher(_signalled_in(1), max_num_timeout=3))
    delayed, paths, requeued, restore = _in_a_task(monkeypatch, tmp_path, run, GROUP, 3, timeout_min=600)
    _result(delayed, restore, raises=SystemExit)
    assert requeued == [3] and run.launcher.ran == [0, 1]
    again = utils.DelayedSubmission.load(paths.submitted_pickle)
    again.function.launcher.cell = lambda n: None
    assert [r.return_value for r in again.result()] == [True] * 3 and again.function.launcher.ran == [0, 1, 1, 2]


class _Killed(BaseException):
    """Stands in for SIGKILL: the task's process ends in the middle of a job, with no handler and no result."""


def test_a_task_that_slurm_requeues_by_itself_runs_only_the_jobs_it_had_not_finished(monkeypatch, tmp_path, capfd):
    """Preemption with ``PreemptMode=REQUEUE`` (SIGTERM, then SIGKILL after GraceTime) or a node failure (SIGKILL):
    no USR2, so submitit never checkpointed, and the task Slurm requeued ran all its jobs again from its submitted
    pickle. Now that pickle is rewritten after each job, keeping the time-limit requeues left."""
    import os
    import signal

    from submitit.core import utils

    from hydra_plugins.xaibench_launchers.chunked_submitit import _RunGroup

    def cell(n: int) -> None:
        if n == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # preempted during job 1: the task goes on ...
        if n == 2:
            raise _Killed  # ... and is killed in job 2
    run = _RunGroup(_Launcher(cell, max_num_timeout=2))
    delayed, paths, requeued, restore = _in_a_task(monkeypatch, tmp_path, run, GROUP, 2, timeout_min=600)
    _result(delayed, restore, raises=_Killed)
    assert requeued == [] and run.launcher.ran == [0, 1, 2]
    assert capfd.readouterr().err == (
        "xaibench: warning: task got SIGTERM (Slurm preempts, cancels or stops it); it goes on until it is killed, 1 "
        "finished cell is kept, and if Slurm requeues the task (PreemptMode=REQUEUE, a node failure) it runs only the "
        "cells not finished\n")
    again = utils.DelayedSubmission.load(paths.submitted_pickle)  # what Slurm's requeued task loads
    assert again._timeout_countdown == 2
    again.function.launcher.cell = lambda n: None
    assert [r.return_value for r in again.result()] == [True] * 3
    assert again.function.launcher.ran == [0, 1, 2]  # jobs 0 and 1 as pickled after job 1, then job 2 only
    assert capfd.readouterr().out == "requeued: 2 of 3 cells were finished by earlier attempts; running the other 1\n"


def test_the_literal_percent_j_folder_of_the_local_executor_is_removed_and_nothing_else(tmp_path):
    """submitit's local controller creates ``submitit_folder`` before filling in ``%j``: an empty
    ``<sweep>/.submitit/%j/`` stayed beside the tasks' ``<pid>/`` folders, also after a killed run's tasks."""
    from hydra_plugins.xaibench_launchers.skip_stored import remove_unfilled_folder

    (tmp_path / ".submitit" / "%j").mkdir(parents=True)
    (tmp_path / ".submitit" / "4242").mkdir()
    (tmp_path / ".submitit" / "4242" / "4242_0_log.out").write_text("[job 0] ...")
    remove_unfilled_folder(f"{tmp_path}/.submitit/%j")
    assert sorted(p.name for p in (tmp_path / ".submitit").iterdir()) == ["4242"]
    (tmp_path / "slurm" / "%A_%a").mkdir(parents=True)
    (tmp_path / "slurm" / "%A_%a" / "note").write_text("the user's")  # a folder holding anything stays
    remove_unfilled_folder(f"{tmp_path}/slurm/%A_%a/logs")
    remove_unfilled_folder(None)  # the basic launcher has no submitit_folder
    assert (tmp_path / "slurm" / "%A_%a" / "note").is_file()


def test_xaibench_slurm_poll_s_reports_a_task_that_died_without_a_result_at_its_pace(monkeypatch, tmp_path, capsys):
    """perf24: a task killed without a result file was seen only at submitit's next ``sacct`` (2, 4, 8, ... s after
    the submission, up to 10 minutes apart) and then waited 15 s more for its file: the fake-Slurm tests idled
    ~15-30 s per dead task. With ``$XAIBENCH_SLURM_POLL_S`` the launcher asks ``sacct`` (one call for all tasks) at
    that pace and waits that long for the file. A real submitit job and watcher, the fake ``sacct`` on PATH."""
    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

    from hydra_plugins.xaibench_launchers.chunked_submitit import _sacct_refresher

    fake = Path(__file__).parents[1] / "integration" / "fake_slurm"
    state = tmp_path / "slurm_state"
    state.mkdir()
    (tmp_path / "slurm").mkdir()  # the task's log folder (its result file never comes)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(state))
    monkeypatch.setattr(SlurmJob, "watcher", SlurmInfoWatcher(delay_s=600))  # submitit's shared one, fresh
    (state / "5000_0").write_text("RUNNING")
    task = SlurmJob(folder=tmp_path / "slurm", job_id="5000_0")
    assert not task.done() and task.state == "RUNNING"  # submitit asked sacct once, as at the submission
    (state / "5000_0").write_text("FAILED")  # killed: no result file
    assert not task.done()  # submitit would not ask again for 2 s (later: up to 10 minutes)
    refresh = _sacct_refresher([task], 0.05)
    assert task._results_timeout_s == 0.05
    assert _gather([task], GROUPS[2:], poll_s=0.01, refresh=refresh) == []
    assert SlurmJob.watcher.num_calls >= 2
    assert capsys.readouterr().err == (
        f"xaibench: error: task 5000_0 (job 14) ended before storing its cells: state FAILED; see "
        f"{task.paths.stdout} and {task.paths.stderr}\n")


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan", "0.001"])
def test_a_malformed_xaibench_slurm_poll_s_is_refused_by_the_pre_flight(value, monkeypatch):
    from hydra_plugins.xaibench_launchers.chunked_submitit import ChunkedLocalLauncher, ChunkedSlurmLauncher, \
        slurm_poll_s
    from xaibench.errors import UserError

    monkeypatch.setenv("XAIBENCH_SLURM_POLL_S", value)
    with pytest.raises(UserError, match=rf"^XAIBENCH_SLURM_POLL_S must be a number of seconds from 0.5 \(how often "
                                        rf"the Slurm launcher asks sacct about its tasks; unset: submitit's pace\), "
                                        rf"got '{value}'$"):
        ChunkedSlurmLauncher.check_can_start({"cells_per_task": 2})
    ChunkedLocalLauncher.check_can_start({"cells_per_task": 2})  # not read by the local executor
    monkeypatch.setenv("XAIBENCH_SLURM_POLL_S", " 0.5 ")
    assert slurm_poll_s() == 0.5
    monkeypatch.delenv("XAIBENCH_SLURM_POLL_S")
    assert slurm_poll_s() is None
