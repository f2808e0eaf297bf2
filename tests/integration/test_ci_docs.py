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
import xml.etree.ElementTree as ET
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
        elif lang == "yaml" and code.startswith("# .gitlab-ci.yml"):
            found["gitlab"] = code
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


def pull_request(repo: Path, baseline: pd.DataFrame, env: dict) -> None:
    """``repo`` as a pull request's checkout that refreshed the baseline: ``origin``'s ``main`` (the target branch)
    holds the baseline before the refresh, where saliency scored 0.5 higher."""
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.org", *args], cwd=repo, env=env,
                       check=True, capture_output=True, timeout=60)

    table = repo / "results" / "baselines" / "my_ci" / "table.parquet"
    older = baseline.copy()
    older.loc[older["method"] == "saliency", "value"] += 0.5
    git("init", "-q", "-b", "main")
    older.to_parquet(table, index=False)
    git("add", "-A")
    git("commit", "-qm", "the target branch")
    git("clone", "-q", "--bare", ".", str(repo.parent / "origin.git"))
    git("remote", "add", "origin", f"file://{repo.parent / 'origin.git'}")
    git("checkout", "-qb", "pr")
    baseline.to_parquet(table, index=False)
    git("commit", "-qam", "retrain; refresh the baseline")


def gitlab_merge_request(found: dict, repo: Path, env: dict, github_report: str) -> None:
    """The GitLab job in the pull request's checkout: its sweep is the shell script's, its compare item reports the
    refreshed baseline as the GitHub step does (against ``origin``'s ``main``), and its after_script leaves the
    report alone (and posts nothing without a token)."""
    job = yaml.safe_load(found["gitlab"])["explanation-quality"]
    sweep, compare = job["script"][2], job["script"][3]
    shell_sweep = next(line for line in found["shell"].splitlines() if line.startswith("xaibench -m"))
    assert sweep == shell_sweep.replace('"$store"', '"$(mktemp -d)"') + " || [ $? -eq 1 ]"
    done = bash(compare, repo, {**env, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"}, "-eo", "pipefail")
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    assert (repo / "compare.md").read_text() == github_report
    # ci17: the JUnit report GitLab's merge-request widget reads: one testcase per unit, none failing (a pass)
    assert job["artifacts"]["reports"]["junit"] == "compare.xml" and "--junit compare.xml" in compare
    junit = ET.parse(repo / "compare.xml").getroot()
    verdict = json.loads((repo / "compare.json").read_text())
    units = [case for suite in junit[1:] for case in suite.findall("testcase")]
    assert len(units) == verdict["counts"]["units"] > 0 and (junit.get("failures"), junit.get("errors")) == ("0", "0")
    properties = {p.get("name"): p.get("value") for p in junit.find("testsuite/properties")}
    assert properties["verdict"] == "pass" and properties["baseline_refresh"] == verdict["baseline_refresh"]["state"]
    for line in job["after_script"]:
        assert bash(line, repo, {**env, "CI_JOB_URL": "https://gitlab.example/job/1"}).returncode == 0
    assert (repo / "compare.md").read_text() == github_report


def bash(code: str, cwd: Path, env: dict, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *flags, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_adopting_it_in_your_repository_runs_as_written(tmp_path):
    found = blocks()
    assert set(found) == {"experiment", "tolerances", "workflow", "gitlab", "first_baseline", "shell"}
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
    # The pull request refreshes the baseline (the target branch, main on origin, has an older one with other scores):
    # the step fetches the target's baseline, and the report lists what the refresh accepts (it used to say only
    # "pass": the run equals the refreshed baseline by construction).
    pull_request(repo, table, env)
    job_env = {k: str(v).replace("${{ github.workspace }}", str(repo)) for k, v in job.get("env", {}).items()}
    # the job's PYTHONPATH replaces the inherited one; xaibench is "installed" here through that inherited path (the
    # code under test, not whatever the venv has installed), so it stays behind the job's
    job_env["PYTHONPATH"] = os.pathsep.join(p for p in (job_env.get("PYTHONPATH"), env.get("PYTHONPATH")) if p)
    gh_env = {**env, **job_env, "RUNNER_TEMP": str(tmp_path), "GITHUB_BASE_REF": "main"}
    step = bash(steps["Compare with the committed baseline"]["run"], repo, gh_env, "--noprofile", "--norc", "-eo",
                "pipefail")
    assert step.returncode == 0, (step.stdout[-2000:], step.stderr[-2000:])
    assert step.stdout.startswith("xaibench compare: PASS") and "✅ pass" in (repo / "compare.md").read_text()
    assert step.stdout.splitlines()[1].startswith("  baseline refreshed by this pull request: against the target "
                                                  f"branch's ({tmp_path}/results/baselines/my_ci) it accepts ")
    report = (repo / "compare.md").read_text()
    assert "### 🔄 This pull request refreshes the baseline" in report
    assert "- ❌ degraded: torch_module/npz_arrays/saliency/faithfulness_correlation ↑: worse:" in report
    gitlab_merge_request(found, repo, {**env, **job_env}, report)

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

    # The experiment is edited after the run (a metric parameter): the run's table is not what the config defines
    # now, and comparing it used to pass on the old scores. Refused with one line naming the command to rerun.
    experiment = repo / "conf" / "experiment" / "my_ci.yaml"
    experiment.write_text(experiment.read_text().replace("{nr_runs: 20}", "{nr_runs: 21}"))
    stale = subprocess.run(["xaibench", "compare", "results/baselines/my_ci", "results/runs/my_ci", "--quiet"],
                           cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert stale.returncode == 2 and stale.stdout == "", stale.stdout
    [line] = stale.stderr.splitlines()
    assert line.startswith("xaibench: error: current results/runs/my_ci is stale: it was made by another config "
                           "than `xaibench -m experiment=my_ci 'hydra.searchpath=[file://") and \
        "4 of the 4 cells it defines now were not run (torch_module/npz_arrays/integrated_gradients, " in line and \
        "4 of the 4 cells it ran are no longer defined" in line and "--allow-stale" in line, line


def test_the_workflow_report_step_replaces_the_comment_also_when_no_report_was_written(tmp_path):
    """When the install, the sweep or compare stopped with exit 2, no compare.md was written: the report step's
    ``cat compare.md`` failed, nothing was posted, and the pull request kept the previous push's "✅ pass" comment.
    It now posts a note that points to the job log (and posts the report when there is one). ``gh`` is a fake that
    records its calls; ``--edit-last`` fails as it does before the first comment."""
    job = yaml.safe_load(blocks()["workflow"])["jobs"]["compare"]
    (step,) = [s for s in job["steps"] if s.get("name") == "Report"]
    assert step["if"] == "always()" and step["continue-on-error"] is True
    code = step["run"].replace("${{ github.event.pull_request.number }}", "7")
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "gh").write_text('#!/bin/sh\necho "$*" >> "$GH_LOG"\ncase "$*" in *--edit-last*) exit 1;; esac\n'
                             'cp compare.md "$GH_LOG.body"\n')
    (shim / "gh").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}", "GH_LOG": str(tmp_path / "gh.log"),
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_REPOSITORY": "me/mine", "GITHUB_RUN_ID": "42"}
    done = bash(code, work, env, "--noprofile", "--norc", "-eo", "pipefail")
    assert done.returncode == 0, done.stderr
    posted = (tmp_path / "gh.log.body").read_text()
    assert posted.startswith("## xaibench compare: ⚠️ no report\n\nA step stopped before compare wrote one; the job "
                             "log says why: https://github.com/me/mine/actions/runs/42")
    assert (tmp_path / "summary.md").read_text() == posted
    assert (tmp_path / "gh.log").read_text().splitlines() == ["pr comment 7 --body-file compare.md --edit-last",
                                                              "pr comment 7 --body-file compare.md"]
    gitlab = yaml.safe_load(blocks()["gitlab"])["explanation-quality"]["after_script"]
    gitlab_work = tmp_path / "gitlab"
    gitlab_work.mkdir()
    for line in gitlab:  # no token: no note; the missing report is replaced by the note that points to the log
        assert bash(line, gitlab_work, {**env, "CI_JOB_URL": "https://gitlab.example/job/1"}).returncode == 0
    assert (gitlab_work / "compare.md").read_text() == ("## xaibench compare: ⚠️ no report\n\nA step stopped before "
                                                        "compare wrote one; the job log says why: "
                                                        "https://gitlab.example/job/1\n")
    (work / "compare.md").write_text("## xaibench compare: ❌ regression\n")  # a report: posted as it is
    assert bash(code, work, env, "--noprofile", "--norc", "-eo", "pipefail").returncode == 0
    assert (tmp_path / "gh.log.body").read_text() == "## xaibench compare: ❌ regression\n"
