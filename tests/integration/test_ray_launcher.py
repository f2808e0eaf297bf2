"""One job per GPU through Ray, with logical GPUs on CPU (``hydra/launcher=ray_cpu``), and Ray missing.

One real Ray session for the module: a 4-cell sweep on 2 logical GPUs. Each job takes the device Ray assigned
(``cpu:<logical GPU>``) and the table equals the basic launcher's bit for bit.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import run_cli
from xaibench.results.schema import RESULT_COLUMNS

CELLS = ["model=logreg", "dataset=iris", "method=saliency,random,input_x_gradient,integrated_gradients",
         "n_samples=4", "metrics=sparsity", "sweep_id=t"]


@pytest.fixture(scope="module")
def ray_sweep(tmp_path_factory) -> tuple[Path, str, Path]:
    """(working directory, stdout, the temp root the sweep ran with: Ray's session files go there)."""
    root = tmp_path_factory.mktemp("ray")
    temp_root = Path(tempfile.mkdtemp(prefix="xbt-", dir="/tmp"))  # short: Ray's socket paths live below it
    try:
        done = run_cli(["-m", *CELLS, "hydra/launcher=ray_cpu"], root, RAY_DISABLE_USAGE_STATS="1",
                       TMPDIR=str(temp_root))
        assert done.returncode == 0, done.stderr[-3000:]
        yield root, done.stdout, temp_root
    finally:
        shutil.rmtree(temp_root, ignore_errors=True)


@pytest.mark.slow
def test_ray_gives_each_job_a_logical_gpu_and_the_basic_launchers_table(ray_sweep, workdir, monkeypatch):
    import xaibench

    root, stdout, _ = ray_sweep
    sweep = root / "results" / "runs" / "t"
    jobs = {n: yaml.safe_load((sweep / "jobs" / str(n) / ".hydra" / "config.yaml").read_text()) for n in range(4)}
    devices = {n: cfg["device"] for n, cfg in jobs.items()}
    assert devices[0] != devices[1]  # submitted together onto two free logical GPUs
    assert set(devices.values()) == {"cpu:0", "cpu:1"}  # four jobs, two GPUs: every job held one of them
    table = pd.read_parquet(sweep / "table.parquet")
    for cfg in jobs.values():  # rows record the device of their job
        assert set(table.loc[table["method"] == cfg["method"]["name"], "device"]) == {cfg["device"]}
    assert sum(line.count("[job ") for line in stdout.splitlines()) == 4  # every job's line reached the driver

    monkeypatch.setenv("XAIBENCH_CACHE", str(workdir / "cache"))
    basic = xaibench.run(CELLS, multirun=True)  # in-process basic launcher, its own fresh store
    assert set(basic["device"]) == {"cpu"}
    pd.testing.assert_frame_equal(table[list(RESULT_COLUMNS)].reset_index(drop=True),
                                  basic[list(RESULT_COLUMNS)].reset_index(drop=True), check_exact=True)


@pytest.mark.slow
def test_ray_leaves_no_session_files_in_the_temp_folder_and_keeps_its_logs_with_the_sweep(ray_sweep):
    """Ray used to leave a session folder in /tmp/ray after every sweep (nothing removed them); the Ray started
    for a sweep now lives in a temp folder removed at exit, its logs kept in <sweep>/ray/logs."""
    root, _, temp_root = ray_sweep
    assert not [p.name for p in temp_root.iterdir() if p.name.startswith(("ray", "xbray-"))]
    logs = root / "results" / "runs" / "t" / "ray" / "logs"
    job_logs = [p for p in logs.glob("worker-*.out") if "[job " in p.read_text()]
    assert sum(p.read_text().count("[job ") for p in job_logs) == 4  # every job's output, kept with the sweep


def test_a_ray_launcher_without_ray_installed_is_refused_before_any_file(tmp_path_factory):
    cwd, hidden = tmp_path_factory.mktemp("refused"), tmp_path_factory.mktemp("no_ray")
    (hidden / "ray.py").write_text('raise ModuleNotFoundError("No module named \'ray\'", name="ray")\n')
    path = os.pathsep.join([str(hidden), os.environ.get("PYTHONPATH", "")])  # `ray` cannot be imported
    done = run_cli(["-m", *CELLS, "hydra/launcher=ray"], cwd, PYTHONPATH=path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("xaibench: error: ")
    assert "hydra/launcher=ray needs Ray, which cannot be imported here" in done.stderr
    assert "pip install 'xaibench[ray]'" in done.stderr
    assert list(cwd.iterdir()) == []
