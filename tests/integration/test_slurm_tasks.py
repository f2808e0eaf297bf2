"""What a Slurm user sees when tasks die or the scheduler refuses the array (fake ``sbatch``/``sacct`` on PATH).

Before: a task killed by the node (out of memory, node failure, time limit after its requeues) ended the sweep in
a 40-line submitit traceback, with no table, no count of the cells written and the other tasks' results left
uncollected; a refused submission (no such partition) likewise; and once the array was queued nothing was printed
until the end (no job id, no log folder, no progress).
"""
from __future__ import annotations

import os
import pickle
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_cli
from xaibench.commands.summary import _resume_line
from xaibench.config.slurm import check_no_array_running
from xaibench.results import manifest
from xaibench.results.collect import partial_note

FAKE_SLURM = Path(__file__).parent / "fake_slurm"
SACCT_EVERY_S = "1"  # $XAIBENCH_SLURM_POLL_S: a dead task is seen within ~2 s, not at submitit's pace + 15 s
CELLS = ["model=logreg", "dataset=iris", "n_samples=4", "metrics=sparsity", "sweep_id=t"]
KILLED = '''
import os
from dataclasses import dataclass
from xaibench.explainers.base import Explainer
from xaibench.registry import EXPLAINERS

@EXPLAINERS.register("killed")
@dataclass(frozen=True)
class Killed(Explainer):
    """Its process dies mid-cell, as under the out-of-memory killer: no exception, no result file."""
    def explain(self, model, x, target):
        os._exit(137)
'''

SLOW_ONCE = '''
import os
import time
from dataclasses import dataclass
from pathlib import Path
from xaibench.explainers.gradient.saliency import SaliencyExplainer
from xaibench.registry import EXPLAINERS

@EXPLAINERS.register("slow_once")
@dataclass(frozen=True)
class SlowOnce(SaliencyExplainer):
    """Saliency, but its first call in any process runs into the task's time limit (the fake sbatch signals the
    task once $SLOW_ONCE_FLAG exists)."""
    def explain(self, model, x, target):
        flag = Path(os.environ["SLOW_ONCE_FLAG"])
        if not flag.exists():
            flag.write_text("")
            time.sleep(120)
        return super().explain(model, x, target)
'''


def _plugin(root: Path) -> list[str]:
    (root / "plugin" / "conf" / "method").mkdir(parents=True)
    (root / "plugin" / "killed_plugin.py").write_text(KILLED + SLOW_ONCE)
    for name in ("killed", "slow_once"):
        (root / "plugin" / "conf" / "method" / f"{name}.yaml").write_text(f"name: {name}\n")
    return [f"hydra.searchpath=[file://{root / 'plugin' / 'conf'}]"]


@pytest.mark.slow
def test_a_task_that_dies_is_one_line_and_the_sweep_ends_incomplete_with_the_cells_written(tmp_path):
    """One array task of two cells: the first is stored, then the process dies in the second."""
    args = ["-m", *CELLS, "method=saliency,killed", *_plugin(tmp_path), "hydra/launcher=slurm_cpu",
            "hydra.launcher.cells_per_task=2"]
    done = run_cli(args, tmp_path, PATH=f"{FAKE_SLURM}{os.pathsep}{os.environ['PATH']}",
                   FAKE_SLURM_DIR=str(tmp_path / "slurm_state"), XAIBENCH_PLUGINS="killed_plugin",
                   XAIBENCH_SLURM_POLL_S=SACCT_EVERY_S,
                   PYTHONPATH=f"{tmp_path / 'plugin'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    folder = tmp_path / "results" / "runs" / "t"
    assert done.stdout.startswith("submitted slurm job 1000: 1 array task for 2 cells, up to 2 per task\n"
                                  f"  logs: {folder.resolve() / 'slurm' / '1000'}/ (each finished cell's line"), \
        done.stdout
    assert "  follow: squeue -j 1000; sacct -j 1000; xaibench summary results/runs/t\n" in done.stdout
    task_line, incomplete = done.stderr.splitlines()
    log = folder.resolve() / "slurm" / "1000" / "1000_0_log.out"
    assert task_line == (f"xaibench: error: task 1000 (jobs 0: method=saliency ... 1: method=killed) ended before "
                         f"storing its cells: state FAILED; see {log} and {log.with_suffix('.err')}")
    assert re.search(r"\[job 0\] logreg x iris x saliency \(seed 0\): ok", log.read_text())  # the log it names
    assert incomplete == ("xaibench: error: sweep results/runs/t is incomplete (1 of 2 cells written; missing: "
                          "logreg x iris x killed (seed 0)); its previous table is kept: rerun the sweep to finish it")
    assert len(list((folder / "cells").glob("*.parquet"))) == 1  # the cell finished before the kill is kept
    later = run_cli(["summary", "results/runs/t"], tmp_path)  # what the user reads later: which cells, and what next
    assert later.returncode == 0 and later.stdout.splitlines()[:2] == [
        "PARTIAL: 1 of 2 cells; the sweep did not finish",
        "missing: logreg x iris x killed (seed 0); rerun the sweep's command to compute them (stored cells are not "
        "recomputed)"], later.stdout
    task = pickle.loads((folder / "slurm" / "1000" / "1000_submitted.pkl").read_bytes())
    (*_, first_state), (*_, second_state) = task.args[0]
    assert first_state is second_state  # one copy of Hydra's state per task's pickle, not one per cell


def test_sbatch_refusing_the_array_is_one_line_and_exit_2(tmp_path):
    """``hydra.launcher.partition=gpux`` on a cluster without it: sbatch's reason in one line, no traceback. (The
    pre-flight's ``sbatch --test-only`` refuses it before any file is touched; here it passes, as where the
    partition went away between the two.)"""
    fake = tmp_path / "bin"
    shutil.copytree(FAKE_SLURM, fake)
    (fake / "sbatch").write_text("#!/usr/bin/env bash\n[ \"$1\" = --test-only ] && exit 0  # passed the pre-flight\n"
                                 "echo 'sbatch: error: invalid partition specified: gpux' >&2\n"
                                 "echo 'sbatch: error: Batch job submission failed: Invalid partition name' >&2\n"
                                 "exit 1\n")
    done = run_cli(["-m", *CELLS, "method=saliency", "hydra/launcher=slurm_cpu", "hydra.launcher.partition=gpux"],
                   tmp_path, PATH=f"{fake}{os.pathsep}{os.environ['PATH']}")
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr == ("xaibench: error: slurm refused the sweep's array job (1 task): sbatch: error: invalid "
                           "partition specified: gpux sbatch: error: Batch job submission failed: Invalid partition "
                           "name; fix the hydra.launcher.* settings (partition, account, timeout_min, mem_gb, "
                           "cells_per_task) and rerun: stored cells are not recomputed\n")
    # Nothing half-made says jobs are out there (before: submitit's script and pickle stayed in slurm/, and
    # sweep.json said "running" forever, so summary said "did not finish" and nothing about the refusal).
    folder = tmp_path / "results" / "runs" / "t"
    assert not (folder / "slurm").exists() and not (folder / "slurm_arrays.json").exists()
    state = manifest.read_state(folder)
    assert not state.running and not state.finished and not state.arrays
    assert state.failed == ("slurm refused the sweep's array job (1 task): sbatch: error: invalid partition specified: "
                            "gpux sbatch: error: Batch job submission failed: Invalid partition name; no job was "
                            "submitted: fix the hydra.launcher.* settings and rerun")
    assert partial_note(folder, 0) == f"0 of 1 cells; the sweep did not finish: {state.failed}"  # what summary says
    check_no_array_running(folder)  # the next run is not refused


@pytest.mark.slow
def test_a_joblib_worker_that_dies_is_one_line_and_the_sweep_ends_incomplete(tmp_path):
    """joblib gives up on the whole launch when a worker dies: Hydra's end-of-sweep callback never ran, and the
    user got joblib's traceback, no count and a sweep folder left running."""
    args = ["-m", *CELLS, "method=killed", *_plugin(tmp_path), "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    done = run_cli(args, tmp_path, XAIBENCH_PLUGINS="killed_plugin",
                   PYTHONPATH=f"{tmp_path / 'plugin'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stderr.splitlines()[:2] == [  # then Python's resource tracker may warn of the dead worker's semaphore
        "xaibench: error: a joblib worker died mid-cell (exit codes: EXIT(137)), which stops a joblib sweep; if it "
        "was killed for memory, lower hydra.launcher.n_jobs or batch_size",
        "xaibench: error: sweep results/runs/t is incomplete (0 of 1 cells written; missing: logreg x iris x killed "
        "(seed 0)); its previous table is kept: rerun the sweep to finish it"]


@pytest.mark.slow
def test_a_task_at_its_time_limit_is_requeued_and_computes_only_its_missing_cells(tmp_path):
    """Slurm signals array task 1000_0 (USR2, its time limit) in the middle of its second cell: submitit asks
    ``scontrol requeue 1000_0``, Slurm runs the task again, and the requeued task computes only that cell
    (hydra.launcher.max_num_timeout=3 in the presets; with hydra-submitit's default 0 the task recorded submitit's
    error as the cell's rows and went on until Slurm killed it)."""
    flag = tmp_path / "signal"
    args = ["-m", *CELLS, "method=saliency,slow_once,random", *_plugin(tmp_path), "hydra/launcher=slurm_cpu",
            "hydra.launcher.cells_per_task=2", "hydra.launcher.timeout_min=1",
            "hydra.launcher.signal_delay_s=30"]
    done = run_cli(args, tmp_path, PATH=f"{FAKE_SLURM}{os.pathsep}{os.environ['PATH']}",
                   FAKE_SLURM_DIR=str(tmp_path / "slurm_state"), XAIBENCH_PLUGINS="killed_plugin",
                   XAIBENCH_SLURM_POLL_S=SACCT_EVERY_S,
                   FAKE_SLURM_SIGNAL_WHEN=str(flag), SLOW_ONCE_FLAG=str(flag),
                   PYTHONPATH=f"{tmp_path / 'plugin'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "task 1000_0 ended: 2 of 2 cells written; " in done.stdout and "3 cells (3 ok)" in done.stdout
    log = (tmp_path / "results" / "runs" / "t" / "slurm" / "1000_0" / "1000_0_0_log.out").read_text()
    assert "Requeued job 1000_0 (2 remaining timeouts)" in log
    first, second = log.split("requeued: 1 of 2 cells were finished by earlier attempts; running the other 1\n")
    assert re.search(r"\[job 0\] .* saliency .* computed", first) and "[job 1]" not in first
    assert re.search(r"\[job 1\] .* slow_once .* computed", second) and "[job 0]" not in second
    table = pd.read_parquet(tmp_path / "results" / "runs" / "t" / "table.parquet")
    by_method = {m: rows["value"].to_numpy() for m, rows in table.groupby("method")}
    assert (by_method["slow_once"] == by_method["saliency"]).all()  # the requeued cell's scores: saliency's


def test_a_rerun_while_an_earlier_array_of_the_sweep_runs_is_refused(tmp_path, monkeypatch):
    """The launching process was killed (or Ctrl-C'd) and its array still runs: a rerun under the same sweep_id,
    with a changed sweep, collected the array's cells as its own. The launcher records its arrays in the sweep
    folder (``slurm_arrays.json``); a run is refused while ``squeue`` lists one, touching nothing."""
    state = tmp_path / "slurm_state"
    state.mkdir()
    for task, status in {"1000_0": "COMPLETED", "1000_1": "RUNNING", "1000_2": "PENDING"}.items():
        (state / task).write_text(status)
    folder = tmp_path / "results" / "runs" / "t"
    (folder / "cells").mkdir(parents=True)
    (folder / "cells" / "old.parquet").write_bytes(b"an earlier run's cell")
    (folder / "slurm_arrays.json").write_text('[{"job": "999", "collected": true}, {"job": "1000", "tasks": 3}]')
    (folder / "sweep.json").write_text('{"state": "running", "expected_cells": 60, "pid": 1}')  # its launcher: killed
    (folder / "cells.planned").write_text("a1\tlogreg x iris x saliency (seed 0)\n")
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    env = {"PATH": f"{FAKE_SLURM}{os.pathsep}{os.environ['PATH']}", "FAKE_SLURM_DIR": str(state)}
    refused = run_cli(["-m", *CELLS, "method=saliency"], tmp_path, **env)  # any launcher, here the in-process one
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert refused.stderr == ("xaibench: error: Slurm job 1000 of sweep folder results/runs/t is still queued or "
                              "running (1 PENDING, 1 RUNNING) and writes its cells there; rerun once it has ended "
                              "(squeue -j 1000) to collect them, or stop it first (scancel 1000); or choose another "
                              "sweep_id=\n")
    assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before
    assert manifest.read_state(folder).note(20) == (  # what `xaibench summary` says (it said "did not finish")
        "20 of 60 cells; the sweep did not finish: its launching process stopped, and its Slurm job 1000 may still be "
        "running and storing cells (squeue -j 1000); rerun the sweep once it has ended to collect them")
    assert _resume_line(folder) == (  # summary's next line said "rerun" at once, which is refused until then
        "missing: logreg x iris x saliency (seed 0); once Slurm job 1000 has ended, rerun the sweep's command to "
        "compute them (stored cells are not recomputed)")
    for task in ("1000_1", "1000_2"):
        (state / task).write_text("CANCELLED")  # scancel 1000
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.setenv("FAKE_SLURM_DIR", env["FAKE_SLURM_DIR"])
    check_no_array_running(folder)  # what the rerun's claim asks: it goes on, the ended arrays forgotten
    assert not (folder / "slurm_arrays.json").exists()


def test_cells_written_by_an_earlier_runs_jobs_are_not_collected_as_the_sweeps(workdir, capsys):
    """Where no ``squeue`` can say that an earlier array still runs (another machine, submitit's local processes,
    a deleted record), its jobs write into ``cells/`` after the new run set the old files aside: the sweep's end
    collected them as its own (3 cells for a 2-cell sweep). The sweep records its planned cells; others are set
    aside with a warning."""
    import xaibench
    from xaibench import sweep

    small = ["model=logreg", "dataset=iris", "n_samples=4", "metrics=sparsity", "sweep_id=t"]
    xaibench.run([*small, "method=saliency,random,integrated_gradients"], multirun=True)
    folder = workdir / "results" / "runs" / "t"
    old = {path.name: path.read_bytes() for path in (folder / "cells").iterdir()}
    xaibench.run([*small, "method=saliency,random"], multirun=True)  # the sweep changed
    stray = next(name for name in old if not (folder / "cells" / name).exists())
    (folder / "cells" / stray).write_bytes(old[stray])  # the earlier run's job finishes its integrated_gradients cell
    capsys.readouterr()
    sweep.finish_sweep(folder)  # the end of a launcher's sweep (Hydra's callback): cell files streamed
    table = pd.read_parquet(folder / "table.parquet")
    assert sorted(set(table["method"])) == ["random", "saliency"]
    assert capsys.readouterr().err == (
        f"xaibench: warning: 1 cell file in {folder / 'cells'} is not of this sweep (written by jobs of an earlier run "
        f"that were still running, e.g. a Slurm array: scancel it); set aside in {folder / 'cells.stray'}\n")
    assert (folder / "cells.stray" / stray).read_bytes() == old[stray]


@pytest.mark.slow
def test_a_task_preempted_and_requeued_by_slurm_runs_only_the_cells_it_had_not_finished(tmp_path):
    """``PreemptMode=REQUEUE``: Slurm sends task 1000 SIGTERM in its second cell, kills it after GraceTime and
    requeues it by itself (no USR2, so submitit's checkpoint never ran): the requeued task started again from its
    submitted pickle and ran every cell again. Now the task's pickle holds the cells it finished (the same holds
    for a node failure: SIGKILL, then Slurm's requeue), and the presets ask ``--requeue``."""
    flag = tmp_path / "preempt"
    args = ["-m", *CELLS, "method=saliency,slow_once,random", *_plugin(tmp_path), "hydra/launcher=slurm_cpu",
            "hydra.launcher.cells_per_task=3"]
    done = run_cli(args, tmp_path, PATH=f"{FAKE_SLURM}{os.pathsep}{os.environ['PATH']}",
                   FAKE_SLURM_DIR=str(tmp_path / "slurm_state"), XAIBENCH_PLUGINS="killed_plugin",
                   XAIBENCH_SLURM_POLL_S=SACCT_EVERY_S,
                   FAKE_SLURM_PREEMPT_WHEN=str(flag), FAKE_SLURM_GRACE_S="1", SLOW_ONCE_FLAG=str(flag),
                   PYTHONPATH=f"{tmp_path / 'plugin'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "task 1000 ended: 3 of 3 cells written; " in done.stdout and "3 cells (3 ok)" in done.stdout
    slurm = tmp_path / "results" / "runs" / "t" / "slurm" / "1000"
    assert "#SBATCH --requeue\n" in (slurm / "1000_submission.sh").read_text()
    log = (slurm / "1000_0_log.out").read_text()
    first, second = log.split("requeued: 1 of 3 cells were finished by earlier attempts; running the other 2\n")
    assert re.search(r"\[job 0\] .* saliency .* computed", first) and "[job 1]" not in first
    assert "[job 0]" not in second and re.search(r"\[job 1\] .* slow_once .* computed", second)
    assert re.search(r"\[job 2\] .* random .* computed", second)
    errors = (slurm / "1000_0_log.err").read_text()
    assert ("xaibench: warning: task got SIGTERM (Slurm preempts, cancels or stops it); it goes on until it is "
            "killed, 1 finished cell is kept, and if Slurm requeues the task (PreemptMode=REQUEUE, a node failure) "
            "it runs only the cells not finished\n") in errors
