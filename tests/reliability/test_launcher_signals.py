"""A launcher sweep (submitit's local executor, joblib) whose launching process is killed or sent SIGTERM: real
sweeps in real subprocesses, real signals (docs/reliability.md, "Dead jobs, refused submissions, interruptions").

The sweeps run two cells: ``fast`` (saliency at once) and ``slow`` (saliency after waiting while the file named by
``$SLOW_WHILE`` exists), so the signal reaches the sweep with one cell stored and one in progress; deleting the file
lets the rerun finish."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli
from xaibench.results.collect import load_table

LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

PLUGIN = '''
import os, time
from dataclasses import dataclass
from pathlib import Path
from xaibench.explainers.gradient.saliency import SaliencyExplainer
from xaibench.registry import EXPLAINERS

@EXPLAINERS.register("waits")
@dataclass(frozen=True)
class Waits(SaliencyExplainer):
    """Saliency that first says it started (``$SLOW_WHILE.started``), then waits while ``$SLOW_WHILE`` exists."""
    slow: bool = False
    def explain(self, model, x, target):
        flag = Path(os.environ["SLOW_WHILE"])
        if self.slow:
            Path(f"{flag}.started").write_text(str(os.getpid()))
            while flag.exists():
                time.sleep(0.05)
        return super().explain(model, x, target)
'''
SWEEP = ["-m", "model=mlp", "dataset=iris", "method=waits", "method.slow=false,true", "n_samples=4", "sweep_id=t",
         "metrics=sparsity"]


def _plugin(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """The plugin's files, the overrides that find its config and the environment that loads it."""
    plugin = tmp_path / "plugin"
    (plugin / "conf" / "method").mkdir(parents=True)
    (plugin / "waits_plugin.py").write_text(PLUGIN)
    (plugin / "conf" / "method" / "waits.yaml").write_text("name: waits\nslow: false\n")
    flag = tmp_path / "slow"
    flag.write_text("")
    env = {"XAIBENCH_PLUGINS": "waits_plugin", "PYTHONPATH": f"{plugin}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "SLOW_WHILE": str(flag)}
    return [*SWEEP, f"hydra.searchpath=[file://{plugin / 'conf'}]"], env


def _wait_for(condition, what: str, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the sweep ended before {what}: {process.communicate()}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def _mid_sweep(folder: Path, tmp_path: Path):
    """True once the fast cell is written and the slow cell explains."""
    return lambda: len(list((folder / "cells").glob("*.parquet"))) == 1 and (tmp_path / "slow.started").exists()


def _rerun_finishes_only_the_missing_cell(args: list[str], env: dict[str, str], tmp_path: Path, folder: Path) -> str:
    """The same command again, the slow cell let go: exit 0, one note on the earlier run, both cells, each once."""
    Path(env["SLOW_WHILE"]).unlink()
    rerun = run_cli(args, tmp_path, **env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"xaibench: note: the previous run of {Path('results/runs/t')} did not finish (1 of 2 cells written, " \
           "started " in rerun.stderr
    assert json.loads((folder / "sweep.json").read_text())["state"] == "finished"
    table = load_table(folder)
    assert table.groupby("cell_key").size().tolist() == [12, 12] and set(table["status"]) == {"ok"}
    assert not table.duplicated(["cell_key", "metric", "sample_id"]).any()
    return rerun.stdout


@pytest.mark.slow
@LINUX
def test_a_killed_submitit_local_launcher_stops_its_tasks_and_the_rerun_computes_only_what_is_missing(tmp_path):
    """rel17: submitit's local executor starts each task under a controller process meant to outlive the launching
    process. ``kill -9`` of ``xaibench -m ... hydra/launcher=submitit_local`` left its tasks computing and writing
    cells into the sweep folder beside the rerun (holding a GPU, unseen); the rerun did not say the earlier run had
    stopped. Now each task stops within a second (its log says why), the folder says 1 of 2 cells, the rerun says
    the earlier run did not finish and launches only the missing cell."""
    args, env = _plugin(tmp_path)
    args = [*args, "hydra/launcher=submitit_local"]
    folder = tmp_path / "results" / "runs" / "t"
    launcher = subprocess.Popen([sys.executable, "-m", "xaibench", *args], cwd=tmp_path, env=cli_env(**env),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(_mid_sweep(folder, tmp_path), "cell written and slow cell started", launcher)
    tasks = [int(path.name) for path in (folder / ".submitit").iterdir() if path.name.isdigit()]
    assert len(tasks) == 2 and any(_alive(pid) for pid in tasks)
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(timeout=30)
    deadline = time.monotonic() + 60  # the tasks poll their launcher every second; the machine may be loaded
    while any(_alive(pid) for pid in tasks) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in tasks), "the killed launcher's submitit tasks are still running"
    logs = "".join(path.read_text() for path in (folder / ".submitit").glob("*/*_log.err"))
    assert "the launching process (pid %d) is gone" % launcher.pid in logs
    assert load_table(folder).attrs["xaibench_partial"] == "1 of 2 cells; the sweep did not finish"
    stdout = _rerun_finishes_only_the_missing_cell(args, env, tmp_path, folder)
    assert "[job 0] mlp x iris x waits (seed 0): ok" in stdout and " cached;" in stdout  # written from the store
    assert len([path for path in (folder / ".submitit").iterdir() if path.name.isdigit()]) == 3  # one task launched


@pytest.mark.slow
@LINUX
def test_sigterm_to_a_background_launcher_sweep_is_one_line_exit_143_and_resumable(tmp_path):
    """rel17: a sweep started with ``&`` from a script (no job control) ignores SIGINT, as the shell asks of every
    background command; ``kill`` (SIGTERM) is how it is stopped. With a launcher (joblib here) Python's default
    SIGTERM ended the launching process without a word, mid-write. Now: one line, exit code 143, no temp file, the
    folder says the sweep did not finish, and the same command finishes it."""
    args, env = _plugin(tmp_path)
    args = [*args, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    folder = tmp_path / "results" / "runs" / "t"
    script = '"$@" & echo $! > xaibench.pid; wait $!'  # bash -c: no job control, `&` ignores SIGINT
    shell = subprocess.Popen(["bash", "-c", script, "bash", sys.executable, "-m", "xaibench", *args], cwd=tmp_path,
                             env=cli_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(_mid_sweep(folder, tmp_path), "cell written and slow cell started", shell)
    pid = int((tmp_path / "xaibench.pid").read_text())
    ignored = int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("SigIgn:")), 16)
    assert ignored & (1 << (signal.SIGINT - 1))  # the shell's doing: documented, kept
    os.kill(pid, signal.SIGTERM)
    out, err = shell.communicate(timeout=120)
    assert shell.returncode == 143, err[-3000:]
    assert err.splitlines() == ["xaibench: terminated (SIGTERM): the cells finished so far are stored and the "
                                "sweep's previous table is kept; rerun the same command to finish it (stored cells "
                                "are not recomputed)"]
    assert not [path for path in (tmp_path / "results").rglob("*") if path.name.endswith(".tmp")]
    assert load_table(folder).attrs["xaibench_partial"] == "1 of 2 cells; the sweep did not finish"
    _rerun_finishes_only_the_missing_cell(args, env, tmp_path, folder)


def test_hydra_runs_in_one_process_add_the_resource_tracker_warning_option_once(monkeypatch):
    """review18: each Hydra run of the CLI appended its ``-W ignore:resource_tracker:UserWarning`` option to the
    process's ``sys.warnoptions`` (the API and tests run the CLI many times in one process): one is enough."""
    from xaibench import cli

    monkeypatch.setattr(sys, "warnoptions", [])
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    for _ in range(2):
        with pytest.raises(SystemExit) as done:
            cli._run_hydra(["--cfg", "job"])  # prints the composed config and exits 0
        assert done.value.code in (0, None)
    assert sys.warnoptions == ["ignore:resource_tracker:UserWarning"]


def test_a_hydra_run_does_not_exit_with_an_earlier_sweeps_exit_code(monkeypatch):
    """suite19: `--cfg job` exited 1 after an earlier failed sweep in the same process (the API, tests): the exit
    code is the process's last sweep's, and a Hydra run that runs no sweep kept the stale one."""
    from xaibench import cli, sweep

    monkeypatch.setattr(sys, "argv", list(sys.argv))
    sweep.set_exit_code(1)  # what a sweep with an errored cell leaves
    with pytest.raises(SystemExit) as done:
        cli._run_hydra(["--cfg", "job"])
    assert done.value.code in (0, None) and sweep.exit_code() == 0
