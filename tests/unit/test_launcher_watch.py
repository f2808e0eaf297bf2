"""A joblib worker stops when the process that launched the sweep dies (``xaibench/engine/launcher_watch.py``).

Before, ``kill -9`` of ``xaibench -m ... hydra/launcher=joblib`` left its loky workers running: each finished its
cell (and the cells loky had queued to it) and then idled for 300 s, holding memory (a GPU's, on a GPU box) while the
rerun computed the same cells beside it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.conftest import cli_env
from xaibench.engine import launcher_watch

LAUNCHER = textwrap.dedent("""
    import os, sys, time
    from joblib import Parallel, delayed
    from xaibench.engine.launcher_watch import mark_launcher, watch_launcher

    def job(i):
        watching = watch_launcher(poll_s=0.05)
        open(sys.argv[1] + f".{i}", "w").write(f"{os.getpid()} {watching}")
        time.sleep(120)  # a long cell

    mark_launcher()
    Parallel(n_jobs=2)(delayed(job)(i) for i in range(4))  # jobs 2 and 3 wait in loky's queue
""")


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # init may not reap it at once
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_joblib_worker_stops_when_its_launcher_is_killed(tmp_path):
    marker = tmp_path / "worker"
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(marker)], env=cli_env(), stderr=subprocess.PIPE,
                                text=True)
    started = []
    try:
        for _ in range(600):
            started = [p.read_text().split() for p in tmp_path.glob("worker.*") if p.read_text().count(" ")]
            if len(started) == 2:
                break
            time.sleep(0.1)
        assert [watching for _, watching in started] == ["True", "True"]
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=30)
        for _ in range(300):
            if all(_gone(int(pid)) for pid, _ in started):
                break
            time.sleep(0.1)
        assert all(_gone(int(pid)) for pid, _ in started), "a worker outlived its launcher"
        err = launcher.stderr.read()
        for pid, _ in started:
            assert f"the launching process (pid {launcher.pid}) is gone; worker {pid} stops" in err
        assert len(list(tmp_path.glob("worker.*"))) == 2  # the queued jobs did not start
    finally:
        launcher.kill()
        for pid, _ in started:
            if not _gone(int(pid)):
                os.kill(int(pid), signal.SIGKILL)


def test_a_job_queued_to_a_worker_whose_launcher_died_stops_before_it_starts(monkeypatch, capsys):
    monkeypatch.setattr(launcher_watch, "_watching", False)
    monkeypatch.setenv(launcher_watch.LAUNCHER_PID, "999999")
    monkeypatch.setattr(os, "getppid", lambda: 1)  # re-parented to init
    worker = type("Worker", (), {"name": "LokyProcess-3"})
    monkeypatch.setattr(launcher_watch.multiprocessing, "current_process", lambda: worker)

    def exit_(code):
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", exit_)
    with pytest.raises(SystemExit):
        launcher_watch.watch_launcher()
    assert "the launching process (pid 999999) is gone" in capsys.readouterr().err


def test_processes_that_are_not_the_launchers_workers_do_not_watch(monkeypatch):
    """Slurm and submitit tasks, Ray workers and the launcher itself keep running: their scheduler (or the user)
    decides (a Slurm array outlives its launcher by design; the next run collects it)."""
    monkeypatch.setattr(launcher_watch, "_watching", False)
    monkeypatch.setenv(launcher_watch.LAUNCHER_PID, "999999")
    assert launcher_watch.watch_launcher() is False  # pytest is neither its child nor a loky worker
    monkeypatch.setenv(launcher_watch.LAUNCHER_PID, str(os.getpid()))
    assert launcher_watch.watch_launcher() is False
    monkeypatch.setenv(launcher_watch.LAUNCHER_PID, str(os.getppid()))  # its child, but a local submitit task
    assert launcher_watch.watch_launcher() is False
    monkeypatch.delenv(launcher_watch.LAUNCHER_PID)
    assert launcher_watch.watch_launcher() is False
