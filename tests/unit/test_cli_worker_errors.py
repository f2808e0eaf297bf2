"""Bad input met inside a launcher worker does not take the worker's other cells down (``cli._run_task``).

A Slurm array task runs ``cells_per_task`` cells one after the other (``chunked_submitit``): a cell that meets
bad input only on the node (``device=cuda`` where the node has no GPU, a data file gone since the pre-flight) used
to ``sys.exit(2)`` the whole task, losing its other cells. The launching process still stops at once.
"""
from __future__ import annotations

import pytest

from xaibench import cli, sweep
from xaibench.errors import UserError


@pytest.fixture
def failing_job(monkeypatch):
    calls = []

    def run_job(cfg, label=""):
        calls.append(label)
        raise UserError("device cuda is not available on this node")

    monkeypatch.setattr(sweep, "run_job", run_job)
    return calls


def test_a_launcher_worker_prints_bad_input_and_returns_so_its_next_cells_run(failing_job, monkeypatch, capsys):
    monkeypatch.setattr(sweep, "in_launching_process", lambda: False)
    written = [cli._run_task({}, f"job {job}", multirun=True) for job in (0, 1)]  # one task, cells_per_task=2
    assert failing_job == ["job 0", "job 1"]
    assert written == [False, False]  # the job's return value: the task's end line counts the cells not written
    assert capsys.readouterr().err.splitlines() == ["xaibench: error: device cuda is not available on this node"] * 2


@pytest.mark.parametrize("multirun, launching", [(True, True), (False, False), (False, True)])
def test_the_launching_process_and_a_single_run_still_stop_with_exit_2(failing_job, monkeypatch, capsys,
                                                                       multirun, launching):
    monkeypatch.setattr(sweep, "in_launching_process", lambda: launching)
    with pytest.raises(SystemExit) as stopped:
        cli._run_task({}, "job 0" if multirun else "", multirun=multirun)
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "xaibench: error: device cuda is not available on this node\n"


def test_a_job_that_writes_its_cell_returns_true(monkeypatch):
    monkeypatch.setattr(sweep, "run_job", lambda cfg, label="": None)
    assert cli._run_task({}, "job 3", multirun=True) is True
