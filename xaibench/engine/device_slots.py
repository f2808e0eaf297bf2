"""One job per device on a machine with several accelerators (``devices: [cuda:0, cuda:1, ...]`` or ``all``).

With a parallel launcher on one box (``hydra/launcher=joblib hydra.launcher.n_jobs=<number of GPUs>``), every job
that computes holds one device slot for as long as it runs: a file lock per slot in the sweep folder
(``.devices/slot-<i>.lock``). A job takes the first free slot (starting at its job number, so jobs spread out)
and waits when all are taken; concurrent jobs therefore never share a device. Jobs whose cell is already stored
take no slot. The device is not in any key, and rows record the device each stage actually ran on.
"""
from __future__ import annotations

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


@contextmanager
def device_slot(devices: Sequence[str], lock_dir: Path, start: int = 0, poll_s: float = 0.05
                ) -> Iterator[tuple[int, str]]:
    """Hold one of ``devices`` (its slot index and name) until the block ends."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    locks = [FileLock(str(lock_dir / f"slot-{i}.lock")) for i in range(len(devices))]
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
