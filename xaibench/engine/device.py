"""Device choice. Not part of any key: results must not depend on it (on CPU they are bit-identical).

Importable without torch: the pre-flight checks ``cpu`` devices without loading it (torch only for ``auto``/``cuda``).
"""
from __future__ import annotations

import re

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
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise UserError("device=cuda but no CUDA device is visible; use device=cpu or device=auto")
    return name

