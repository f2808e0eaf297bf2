"""The Slurm launcher presets compose into the chunked submitit Slurm launcher with their resources."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from xaibench.config.preflight import is_remote
from xaibench.config.preflight.composition import _compose
from xaibench.config.preflight.launchers import _launcher_target


@pytest.mark.parametrize(("preset", "gpus"), [("slurm", 1), ("slurm_cpu", None)])
def test_slurm_presets_compose(preset: str, gpus: int | None) -> None:
    cfg = _compose([f"hydra/launcher={preset}", "hydra.launcher.partition=gpu"], "config", return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    assert launcher["_target_"].endswith("chunked_submitit.ChunkedSlurmLauncher")
    assert launcher["cells_per_task"] > 1  # a 10,000-cell sweep is not 10,000 Slurm jobs
    assert launcher["gpus_per_task"] == gpus
    assert launcher["partition"] == "gpu"
    assert launcher["array_parallelism"] > 1 and launcher["timeout_min"] > 0 and launcher["mem_gb"] > 0
    assert launcher["submitit_folder"].startswith("${hydra.sweep.dir}/")  # logs beside the sweep's results
    assert launcher["additional_parameters"] == {"requeue": True}  # a preempted task or a failed node's is requeued
    assert is_remote(_launcher_target([f"hydra/launcher={preset}"], "config"))  # local devices are not checked for it
