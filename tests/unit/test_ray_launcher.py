"""The Ray launcher's presets, its start check, its GPU-id -> torch-index mapping and logical CPU devices."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from hydra_plugins.xaibench_launchers.ray_local import RayLauncher, torch_index
from xaibench.config.preflight import _compose, _launcher_target, is_remote
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
    def launcher(init: dict) -> OmegaConf:
        return OmegaConf.create({"init": init, "remote": {"num_gpus": 1}})

    with pytest.raises(UserError, match="asks 1 GPU per job but Ray would start here with 0 GPU"):
        RayLauncher.check_can_start(launcher({"address": "local", "num_gpus": 0}))  # every job would wait forever
    RayLauncher.check_can_start(launcher({"address": "local", "num_gpus": 2}))  # logical GPUs
    RayLauncher.check_can_start(launcher({"address": "auto", "num_gpus": 0}))  # a running cluster's GPUs
