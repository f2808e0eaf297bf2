"""``device=auto`` on a machine where torch sees no GPU: the CPU, silently on a CPU box; with a warning in the job's
log where the job was given GPUs (a Slurm GPU task with a CPU-only torch would otherwise run the whole sweep on the
CPU, its GPUs idle, and say so only in the rows' ``device`` column)."""
from __future__ import annotations

import pytest
import torch

from xaibench.engine import device
from xaibench.engine.device import resolve_device

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the fallback needs a machine without CUDA")


@pytest.fixture(autouse=True)
def no_gpu_env(monkeypatch):
    for key in device.GPU_ENV:
        monkeypatch.delenv(key, raising=False)
    device._warn_gpus_unused.cache_clear()
    yield
    device._warn_gpus_unused.cache_clear()


def test_auto_on_a_cpu_box_is_the_cpu_without_a_word(capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # what Slurm sets on a CPU task of some clusters
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "0")
    assert resolve_device("auto") == "cpu"
    assert capsys.readouterr().err == ""


def test_auto_on_a_job_given_gpus_warns_once_naming_them_and_the_torch_build(capsys, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("SLURM_JOB_GPUS", "3")
    assert [resolve_device("auto") for _ in range(3)] == ["cpu"] * 3  # every cell of a task resolves it
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("xaibench: warning: device=auto computes on the CPU although this job was given GPUs "
                          "(CUDA_VISIBLE_DEVICES=0, SLURM_JOB_GPUS=3): torch ")
    build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
    assert build in err and "set device=cuda to stop instead" in err


def test_the_launching_process_of_a_slurm_sweep_does_not_warn_about_its_own_gpus(capsys, monkeypatch):
    """Launched from an interactive allocation (``salloc --gres=gpu:1``, CUDA_VISIBLE_DEVICES set) with a CPU
    torch on the login side: the pre-flight warned that the sweep would compute on the CPU, although its cells run
    in Slurm tasks that check their own GPUs (each task's log still warns where that is true)."""
    import os
    from pathlib import Path

    from xaibench.config.preflight import validate

    fake_slurm = Path(__file__).parents[1] / "integration" / "fake_slurm"  # sbatch on PATH
    monkeypatch.setenv("PATH", f"{fake_slurm}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    configs = validate(["model=logreg", "dataset=iris", "method=saliency", "n_samples=4", "metrics=sparsity",
                        "device=auto", "hydra/launcher=slurm"], multirun=True)
    assert len(configs) == 1 and capsys.readouterr().err == ""
    assert resolve_device("auto") == "cpu" and "was given GPUs (CUDA_VISIBLE_DEVICES=0)" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_a_cuda_device_on_a_cpu_box_is_refused_naming_the_device_asked_for(name):
    """``device=cuda:1`` was refused as "device=cuda but no CUDA device is visible"."""
    from xaibench.errors import UserError

    with pytest.raises(UserError) as refused:
        resolve_device(name)
    assert str(refused.value) == f"device={name} but no CUDA device is visible; use device=cpu or device=auto"
