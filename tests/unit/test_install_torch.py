"""scripts/install_torch.sh: the CPU build of torch from a local wheel, else from PyTorch's CPU index, never PyPI.

PyPI's Linux torch is the CUDA build (several GB, useless on a CPU machine): a plain ``pip install torch`` on an
ordinary machine would pull it. The script is run with a fake Python that records each pip call and plays pip's
answer for the local-wheel attempt.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install_torch.sh"
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
case "$*" in *--no-index*) exit "$LOCAL_WHEEL_RC";; esac
exit 0
"""


def _install(tmp_path: Path, local_wheel: bool, index: str | None = None) -> tuple[list[str], str]:
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "CALLS": str(calls), "LOCAL_WHEEL_RC": "0" if local_wheel else "1"}
    env.pop("XAIBENCH_TORCH_INDEX_URL", None)
    if index:
        env["XAIBENCH_TORCH_INDEX_URL"] = index
    done = subprocess.run(["bash", str(SCRIPT), str(fake), "2.13.0"], env=env, capture_output=True, text=True,
                          check=True)
    return calls.read_text().splitlines(), done.stdout


def test_a_local_wheel_is_installed_without_an_index_then_its_dependencies(tmp_path):
    calls, printed = _install(tmp_path, local_wheel=True)
    assert len(calls) == 2
    assert "--no-index --no-deps torch==2.13.0" in calls[0]
    assert calls[1].endswith("-q torch==2.13.0") and "--index-url" not in calls[1]
    assert printed == ""


def test_without_a_local_wheel_torch_comes_from_the_cpu_index_never_pypi(tmp_path):
    calls, printed = _install(tmp_path, local_wheel=False)
    assert len(calls) == 2
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in calls[1]
    assert "download.pytorch.org/whl/cpu" in printed


def test_a_mirror_of_the_cpu_index_can_be_named(tmp_path):
    calls, _ = _install(tmp_path, local_wheel=False, index="https://mirror.example/whl/cpu")
    assert "--index-url https://mirror.example/whl/cpu torch==2.13.0" in calls[1]
