"""docs/ci.md's "Adopting it in your repository" runs as written in a user's own repository.

The user's repository is made here (what the page leaves to the user): ``mypkg/nets.py`` (a small torch network),
its trained weights and an ``.npz`` of tabular data with ground-truth masks. The page's own blocks are then used
verbatim: ``conf/experiment/my_ci.yaml``, ``ci/tolerances.yaml``, the first-baseline commands, the plain shell
script and the GitHub Actions workflow's compare step (run with bash as the runner does; its sweep step is checked
to be the shell script's sweep). ``xaibench``
is put on PATH like the installed console script: ``python -P`` does not import from the current folder.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import REPO, cli_env

pytestmark = pytest.mark.slow  # two small cold sweeps of the page's own experiment (4 methods x 4 metrics)

DOC = REPO / "docs" / "ci.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
NET = '''import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, n_features: int = 20, n_classes: int = 2):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, 16), nn.ReLU(), nn.Linear(16, n_classes))

    def forward(self, x):
        return self.body(x)
'''


def blocks() -> dict[str, str]:
    """The page's blocks this test runs, found by what they are (first lines), not by position."""
    found = {}
    for lang, code in FENCE.findall(DOC.read_text()):
        if lang == "yaml" and "conf/experiment/my_ci.yaml" in code.splitlines()[1]:
            found["experiment"] = code
        elif lang == "yaml" and code.startswith("# ci/tolerances.yaml"):
            found["tolerances"] = code
        elif lang == "yaml" and code.startswith("# .github/workflows/"):
            found["workflow"] = code
        elif lang == "bash" and "results/baselines/my_ci" in code and "--update-baseline" in code:
            found["first_baseline"] = code
        elif lang == "bash" and code.startswith("#!/usr/bin/env bash") and "my_ci" in code:
            found["shell"] = code
    return found


def user_repo(root: Path) -> None:
    """What the page leaves to the user: the network, its weights, the data (x, y, masks)."""
    (root / "mypkg").mkdir(parents=True)
    (root / "mypkg" / "__init__.py").write_text("")
    (root / "mypkg" / "nets.py").write_text(NET)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 20)).astype(np.float32)
    weights = np.zeros(20, dtype=np.float32)
    weights[:5] = [2, -2, 1.5, 1, -1]
    y = (x @ weights > 0).astype(np.int64)
    masks = np.zeros_like(x)
    masks[:, :5] = 1
    (root / "data").mkdir()
    np.savez(root / "data" / "ci_sample.npz", x=x, y=y, masks=masks)
    namespace: dict = {}
    exec(NET, namespace)  # noqa: S102 - the same class the sweep imports from mypkg.nets
    torch.manual_seed(0)
    net = namespace["Net"](20)
    optimiser = torch.optim.Adam(net.parameters(), 0.05)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(60):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(inputs), labels).backward()
        optimiser.step()
    (root / "weights").mkdir()
    torch.save(net.state_dict(), root / "weights" / "net.pt")


def bash(code: str, cwd: Path, env: dict, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *flags, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_adopting_it_in_your_repository_runs_as_written(tmp_path):
    found = blocks()
    assert set(found) == {"experiment", "tolerances", "workflow", "first_baseline", "shell"}
    repo = tmp_path / "repo"
    user_repo(repo)
    (repo / "conf" / "experiment").mkdir(parents=True)
    (repo / "conf" / "experiment" / "my_ci.yaml").write_text(found["experiment"])
    (repo / "ci").mkdir()
    (repo / "ci" / "tolerances.yaml").write_text(found["tolerances"])
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "xaibench").write_text(f'#!/bin/sh\nexec "{sys.executable}" -P -m xaibench "$@"\n')
    (shim / "xaibench").chmod(0o755)
    env = cli_env(PATH=f"{shim}{os.pathsep}{os.environ['PATH']}", TMPDIR=str(tmp_path))

    first = bash(found["first_baseline"], repo, env)
    assert first.returncode == 0, first.stderr
    baseline = repo / "results" / "baselines" / "my_ci"
    table = pd.read_parquet(baseline / "table.parquet")
    assert (table["status"] == "ok").all() and set(table["method"]) == {"saliency", "integrated_gradients",
                                                                          "occlusion", "random"}
    assert "experiment=my_ci" in json.loads((baseline / "table.provenance.json").read_text())["command"]

    # The workflow's compare step, run as the runner does (bash -eo pipefail, the job's env). Its sweep step is the
    # plain shell script's sweep (run below) on $RUNNER_TEMP's store, failing on exit 2 only: checked as text, so
    # this test pays for two sweeps, not three (each costs ~5 CPU-s, mostly start-up).
    job = yaml.safe_load(found["workflow"])["jobs"]["compare"]
    steps = {step.get("name"): step for step in job["steps"]}
    sweep_step = " ".join(steps["Run the CI sweep cold"]["run"].replace("\\\n", " ").split())
    assert sweep_step.endswith("|| [ $? -eq 1 ] # cells that errored are reported by compare")
    shell_sweep = next(line for line in found["shell"].splitlines() if line.startswith("xaibench -m"))
    assert sweep_step.split(" || ")[0].replace("$RUNNER_TEMP/store", '"$store"') == shell_sweep
    job_env = {k: str(v).replace("${{ github.workspace }}", str(repo)) for k, v in job.get("env", {}).items()}
    # the job's PYTHONPATH replaces the inherited one; xaibench is "installed" here through that inherited path (the
    # code under test, not whatever the venv has installed), so it stays behind the job's
    job_env["PYTHONPATH"] = os.pathsep.join(p for p in (job_env.get("PYTHONPATH"), env.get("PYTHONPATH")) if p)
    gh_env = {**env, **job_env, "RUNNER_TEMP": str(tmp_path)}
    step = bash(steps["Compare with the committed baseline"]["run"], repo, gh_env, "--noprofile", "--norc", "-eo",
                "pipefail")
    assert step.returncode == 0, (step.stdout[-2000:], step.stderr[-2000:])
    assert step.stdout.startswith("xaibench compare: PASS") and "✅ pass" in (repo / "compare.md").read_text()

    script = repo / "ci.sh"
    script.write_text(found["shell"])
    for name in ("compare.md", "compare.json"):
        (repo / name).unlink()
    shell = subprocess.run(["bash", str(script)], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert shell.returncode == 0, shell.stderr
    result = json.loads((repo / "compare.json").read_text())
    assert result["verdict"] == "pass" and result["counts"]["differing"] == 0
    assert result["counts"]["pairs"] == len(table) and result["policy"]["name"] == "ci/tolerances.yaml"
    assert result["policy"]["metrics"]["faithfulness_correlation"]["mode"] == "bootstrap"
