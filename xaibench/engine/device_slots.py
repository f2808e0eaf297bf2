"""One job per device on a machine with several accelerators (``devices: [cuda:0, cuda:1, ...]`` or ``all``).

With a parallel launcher on one box (``hydra/launcher=joblib hydra.launcher.n_jobs=<number of GPUs>``), every job
that computes holds one device slot for as long as it runs: a file lock per slot, one folder for the machine
(``device_lock_dir``), so that the jobs of two sweeps running at once on the box do not share a GPU either (the
locks were in each sweep folder: two sweeps each put a job on every GPU). A slot is named by the physical device
(``cuda:1`` under ``CUDA_VISIBLE_DEVICES=2,3`` is GPU 3) and its rank among the list's entries for that device
(``[cuda:0, cuda:0]``: two slots on GPU 0). A job takes the first free slot (starting at its job number, so jobs
spread out) and waits when all are taken; concurrent jobs therefore never share a device. Jobs whose cell is already
stored take no slot. The device is not in any key, and rows record the device each stage actually ran on.
"""
from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from xaibench.errors import UserError


def expand_devices(devices: str | Sequence[str]) -> list[str]:
    """``"all"`` -> every visible CUDA device (``["cpu"]`` without one); a list is taken as given."""
    if isinstance(devices, str):
        if devices != "all":
            raise UserError(f"devices must be a list of devices (e.g. [cuda:0, cuda:1]) or 'all', got {devices!r}")
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return [f"cuda:{i}" for i in range(count)] or ["cpu"]
    listed = [str(d) for d in devices]
    if not listed:
        raise UserError("devices must not be empty; use null to keep the single 'device'")
    return listed


def device_lock_dir() -> Path:
    """The machine's slot locks: ``$XAIBENCH_DEVICE_LOCKS``, else ``<temp dir>/xaibench-devices-<uid>`` (a local
    folder: flock on a shared filesystem would make one node's GPU 0 another's). Inside a Slurm job, a folder of
    its own: Slurm gave the job its GPUs, and two jobs on one node may both see theirs as ``cuda:0``
    (``CUDA_VISIBLE_DEVICES=0`` under cgroups) while they are different GPUs."""
    default = Path(tempfile.gettempdir()) / f"xaibench-devices-{os.getuid()}"
    if os.environ.get("SLURM_JOB_ID"):
        default = default / f"slurm-{os.environ['SLURM_JOB_ID']}"
    return Path(os.environ.get("XAIBENCH_DEVICE_LOCKS") or default)


def slot_names(devices: Sequence[str]) -> list[str]:
    """Each slot's lock file name: the physical device (``CUDA_VISIBLE_DEVICES`` maps ``cuda:<i>`` to its i-th
    entry, an index or a UUID) and the slot's rank among the list's slots on that device."""
    visible = [entry.strip() for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
    names, seen = [], {}
    for device in devices:
        kind, _, index = str(device).partition(":")
        if kind == "cuda":
            number = int(index) if index.isdigit() else 0
            base = f"cuda-{visible[number] if number < len(visible) else number}"
        else:
            base = str(device)
        base = re.sub(r"[^A-Za-z0-9._-]", "_", base)
        seen[base] = seen.get(base, -1) + 1
        names.append(f"{base}.{seen[base]}.lock")
    return names


@contextmanager
def device_slot(devices: Sequence[str], lock_dir: Path | None = None, start: int = 0, poll_s: float = 0.05
                ) -> Iterator[tuple[int, str]]:
    """Hold one of ``devices`` (its slot index and name) until the block ends; ``lock_dir``: the machine's
    (``device_lock_dir``) unless given."""
    lock_dir = lock_dir or device_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    locks = [FileLock(str(lock_dir / name)) for name in slot_names(devices)]
    while True:
        for offset in range(len(devices)):
            index = (start + offset) % len(devices)
            try:
                locks[index].acquire(timeout=0)
            except Timeout:
                continue
            try:
                yield index, devices[index]
            finally:
                locks[index].release()
            return
        time.sleep(poll_s)
