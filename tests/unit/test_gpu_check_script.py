"""``benchmarks/gpu/check.sh`` on a GPU box lent for 15 minutes, one call: what it needs that the box lacks is
said at once, before any step spends device time.

Before: without ``.whl`` (``fetch_wheels.sh`` not run, or ``carry`` forgotten) the script took the CPU branch on the
box, ran every step with ``.venv/bin/python`` (not on the box: the virtual environment is not carried) and failed
each one; with a wheel missing or two versions of one, pip refused the whole install after ``nvidia-smi``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu" / "check.sh"
WHEELS = ["antlr4_python3_runtime-4.9.3-py3-none-any.whl", "cachetools-8.0.2-py3-none-any.whl",
          "captum-0.9.0-py3-none-any.whl", "hydra_core-1.3.8-py3-none-any.whl", "omegaconf-2.3.1-py3-none-any.whl",
          "quantus-0.6.0-py3-none-any.whl"]


@pytest.mark.parametrize(("wheels", "refusal"), [
    (None, ".whl/ holds 0 wheel(s) of captum (1 needed)"),
    ([w for w in WHEELS if not w.startswith("quantus")], ".whl/ holds 0 wheel(s) of quantus (1 needed)"),
    ([*WHEELS, "captum-0.8.0-py3-none-any.whl"], ".whl/ holds 2 wheel(s) of captum (1 needed)"),
])
def test_the_gpu_check_says_what_it_lacks_before_any_step(wheels, refusal, tmp_path):
    (tmp_path / "benchmarks" / "gpu").mkdir(parents=True)
    shutil.copy(SCRIPT, tmp_path / "benchmarks" / "gpu" / "check.sh")
    if wheels is not None:
        (tmp_path / ".whl").mkdir()
        for name in wheels:
            (tmp_path / ".whl" / name).write_bytes(b"")  # never installed: the check comes first
    done = subprocess.run(["bash", str(tmp_path / "benchmarks" / "gpu" / "check.sh")], capture_output=True, text=True,
                          env={**os.environ, "DEVICE": "cuda", "OUT": str(tmp_path / "out")}, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"check.sh: error: {refusal}: run 'bash benchmarks/gpu/fetch_wheels.sh' where a registry "
                           f"is reachable, then run this with carry=[\".whl\"]\n")
    assert done.stdout == "" and sorted(p.name for p in (tmp_path / "out").iterdir()) == []  # no step, no nvidia-smi
