"""Device choice. Not part of any key: results must not depend on it (on CPU they are bit-identical).

Importable without torch: the pre-flight checks ``cpu`` devices without loading it (torch only for ``auto``/``cuda``).
"""
from __future__ import annotations

import os
import re
import sys
from functools import lru_cache

from xaibench.engine.stamp import peak_memory_mb  # noqa: F401  (kept importable from here)
from xaibench.errors import UserError


def resolve_device(name: str, *, check_available: bool = True) -> str:
    """``auto`` -> cuda if available else cpu; ``cuda`` without a GPU is a user error (when checked here).

    ``cpu:N`` is the CPU under a label: a logical device, so that one-job-per-device launchers (device slots, Ray
    with logical GPUs) can be tested on a CPU machine and their rows show which device each job held.
    """
    if name != "auto" and not re.fullmatch(r"(cpu|cuda)(:\d+)?", name):
        raise UserError(f"unknown device {name!r}; valid: auto, cpu, cuda, cuda:N (cpu:N: the CPU, logical device N)")
    if name == "cpu" or name.startswith("cpu:") or (name.startswith("cuda") and not check_available):
        return name
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if check_available:  # not in a Slurm/Ray launching process: its jobs run elsewhere, with their own GPUs
            _warn_gpus_unused(torch.__version__, torch.version.cuda)
        return "cpu"
    if not torch.cuda.is_available():
        raise UserError(f"device={name} but no CUDA device is visible; use device=cpu or device=auto")
    index = int(name.split(":")[1]) if ":" in name else 0
    count = torch.cuda.device_count()
    if index >= count:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        renumbered = f" (CUDA_VISIBLE_DEVICES={visible} renumbers them from 0)" if visible else ""
        raise UserError(f"device={name} but this machine shows {count} CUDA device{'s' * (count != 1)}, cuda:0 to "
                        f"cuda:{count - 1}{renumbered}; choose one of those, or device=cuda")
    return name


GPU_ENV = ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE")


@lru_cache(maxsize=1)  # once per process: a Slurm task runs many cells
def _warn_gpus_unused(torch_version: str, torch_cuda: str | None) -> None:
    """``device=auto`` falls back to the CPU; when this job was given GPUs (a Slurm GPU task, a GPU box) that is a
    mistake that costs the whole sweep (a CPU-only torch build, a driver torch cannot use), so say it in the job's
    log. On a machine without GPUs the fallback is what the user asked for: nothing is printed."""
    given = _gpus_given()
    if not given:
        return
    build = "a CPU-only build" if torch_cuda is None else f"built for CUDA {torch_cuda}, which cannot use them"
    shown = ", ".join(f"{key}={value}" for key, value in given.items())
    print(f"xaibench: warning: device=auto computes on the CPU although this job was given GPUs ({shown}): torch "
          f"{torch_version} is {build}; install a CUDA build of torch, or set device=cuda to stop instead",
          file=sys.stderr, flush=True)


def _gpus_given() -> dict[str, str]:
    """The environment variables by which a scheduler or the user gave this process GPUs (name -> value)."""
    given = {}
    for key in GPU_ENV:
        value = os.environ.get(key, "").strip()
        if value not in ("", "-1", "NoDevFiles") and not (key == "SLURM_GPUS_ON_NODE" and value == "0"):
            given[key] = value
    return given
