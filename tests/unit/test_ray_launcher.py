"""The Ray launcher's presets, its start check, its GPU-id -> torch-index mapping and logical CPU devices."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from hydra_plugins.xaibench_launchers.ray_local import RayLauncher, torch_index
from xaibench.config.preflight import is_remote
from xaibench.config.preflight.composition import _compose
from xaibench.config.preflight.launchers import _launcher_target
from xaibench.engine.device import resolve_device
from xaibench.errors import UserError


@pytest.mark.parametrize(("preset", "init_gpus", "device"), [("ray", None, "cuda:{gpu}"), ("ray_cpu", 2, "cpu:{gpu}")])
def test_ray_presets_compose_one_job_per_gpu(preset: str, init_gpus: int | None, device: str) -> None:
    cfg = _compose([f"hydra/launcher={preset}"], "config", return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"] == "hydra_plugins.xaibench_launchers.ray_local.RayLauncher"
    assert launcher["remote"]["num_gpus"] == 1  # one job per (logical) GPU
    assert launcher["init"]["num_gpus"] == init_gpus and launcher["init"]["include_dashboard"] is False
    assert launcher["device"] == device
    assert is_remote(_launcher_target([f"hydra/launcher={preset}"], "config"))  # jobs take Ray's device


def test_rays_gpu_ids_map_to_torch_indices() -> None:
    assert torch_index("1", "") == 1  # no CUDA_VISIBLE_DEVICES: Ray numbers the GPUs as torch does
    assert torch_index("7", "5,7") == 1  # Ray's ids are the visible entries; torch counts from 0 in that order
    assert torch_index("GPU-b2c1", "GPU-a9f0, GPU-b2c1") == 1  # UUIDs too


def test_cpu_n_is_a_logical_cpu_device() -> None:
    assert resolve_device("cpu:1") == "cpu:1"
    with pytest.raises(UserError, match="unknown device"):
        resolve_device("cpu1")


def test_a_local_ray_without_the_gpus_a_job_asks_is_refused() -> None:
    def launcher(init: dict, device: str | None = None) -> OmegaConf:
        return OmegaConf.create({"init": init, "remote": {"num_gpus": 1}, **({"device": device} if device else {})})

    with pytest.raises(UserError, match="asks 1 GPU per job but Ray would start here with 0 GPU"):
        RayLauncher.check_can_start(launcher({"address": "local", "num_gpus": 0}, "cpu:{gpu}"))  # jobs would wait
    RayLauncher.check_can_start(launcher({"address": "local", "num_gpus": 2}, "cpu:{gpu}"))  # logical GPUs
    RayLauncher.check_can_start(launcher({"address": "auto", "num_gpus": 0}))  # a running cluster's GPUs


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_logical_gpus_with_jobs_on_cuda_are_refused() -> None:
    """``hydra/launcher=ray hydra.launcher.init.num_gpus=2`` on a machine without CUDA (the refusal above used to
    suggest it): Ray assigned the logical GPUs and every job failed on ``cuda:<i>`` with a worker traceback."""
    cuda = OmegaConf.create({"init": {"address": "local", "num_gpus": 2}, "remote": {"num_gpus": 1},
                             "device": "cuda:{gpu}"})
    with pytest.raises(UserError, match=r"run each on cuda:\{gpu\}, but CUDA sees 0 here.*hydra/launcher=ray_cpu"):
        RayLauncher.check_can_start(cuda)
    with pytest.raises(UserError, match="but CUDA sees 0"):
        RayLauncher.check_can_start(OmegaConf.create({"init": {"num_gpus": 1}, "remote": {"num_gpus": 1}}))


def test_rays_log_settings_are_in_place_before_ray_is_first_imported() -> None:
    """The pre-flight imports Ray first (``check_can_start``); ``RAY_DEDUP_LOGS=0`` set only when Ray started was
    read too late, so progress lines differing only in numbers (seeds) were held back past the summary."""
    import subprocess
    import sys

    code = ("from omegaconf import OmegaConf; from hydra_plugins.xaibench_launchers.ray_local import RayLauncher; "
            "RayLauncher.check_can_start(OmegaConf.create({'init': {'num_gpus': 2}, 'remote': {'num_gpus': 1}, "
            "'device': 'cpu:{gpu}'})); from ray._private import ray_constants; print(ray_constants.RAY_DEDUP_LOGS)")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("RAY_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
