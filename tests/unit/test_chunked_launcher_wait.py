"""The chunked submitit launcher waits for every array task: a task that dies is one line naming its cells and
logs, the other tasks' cells are still collected, and Ctrl-C says the array keeps running (submitit's job objects
stood in for by tasks that finish after a few polls; the real ones run in tests/integration/test_slurm_tasks.py)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from submitit.core.utils import UncompletedJobError

from hydra_plugins.xaibench_launchers.chunked_submitit import _gather


class Task:
    """A submitted array task: done after ``polls`` checks; its results, or the error submitit raises."""

    def __init__(self, job_id: str, returns=(), error: BaseException | None = None, polls: int = 0) -> None:
        self.job_id, self.returns, self.error, self.polls = job_id, list(returns), error, polls
        log = Path("/sweep/slurm") / job_id / f"{job_id}_0_log"
        self.paths = SimpleNamespace(stdout=log.with_suffix(".out"), stderr=log.with_suffix(".err"))

    def done(self) -> bool:
        self.polls -= 1
        return self.polls < 0

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


def test_ctrl_c_while_waiting_says_the_array_keeps_running(capsys, monkeypatch):
    def interrupted(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr("hydra_plugins.xaibench_launchers.chunked_submitit.time.sleep", interrupted)
    with pytest.raises(SystemExit) as stopped:
        _gather([Task("8_0", polls=5), Task("8_1", polls=5)], GROUPS[:2], poll_s=1)
    assert stopped.value.code == 130
    assert capsys.readouterr().err == ("xaibench: interrupted: Slurm job 8 keeps running and storing cells (scancel 8 "
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
