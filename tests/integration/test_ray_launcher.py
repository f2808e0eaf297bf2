"""One job per GPU through Ray, with logical GPUs on CPU (``hydra/launcher=ray_cpu``), and Ray missing.

One real Ray session for the module: a 4-cell sweep on 2 logical GPUs. Each job takes the device Ray assigned
(``cpu:<logical GPU>``) and the table equals the basic launcher's bit for bit.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import run_cli
from xaibench.results.schema import RESULT_COLUMNS

CELLS = ["model=logreg", "dataset=iris", "method=saliency,random,input_x_gradient,integrated_gradients",
         "n_samples=4", "metrics=sparsity", "sweep_id=t"]


@pytest.fixture(scope="module")
def ray_sweep(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("ray")
    done = run_cli(["-m", *CELLS, "hydra/launcher=ray_cpu"], root, RAY_DISABLE_USAGE_STATS="1")
    assert done.returncode == 0, done.stderr[-3000:]
    return root, done.stdout


@pytest.mark.slow
def test_ray_gives_each_job_a_logical_gpu_and_the_basic_launchers_table(ray_sweep, workdir, monkeypatch):
    import xaibench

    root, stdout = ray_sweep
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
