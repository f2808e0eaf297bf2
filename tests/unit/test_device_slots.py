"""One job per device: concurrent jobs on one box hold distinct device slots (logical devices on CPU)."""
from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from xaibench.engine.device_slots import device_slot, expand_devices
from xaibench.errors import UserError


def _hold(lock_dir: str, release, out) -> None:  # type: ignore[no-untyped-def]
    with device_slot(["cpu:logical0", "cpu:logical1"], Path(lock_dir), start=0, poll_s=0.01) as (index, device):
        out.put((index, device))
        release.wait(60)


def test_concurrent_jobs_get_distinct_devices_and_hold_them(tmp_path):
    context = multiprocessing.get_context("spawn")
    out, release = context.Queue(), context.Event()
    # Both prefer slot 0; with two slots each running job gets its own device.
    workers = [context.Process(target=_hold, args=(str(tmp_path), release, out)) for _ in range(2)]
    for worker in workers:
        worker.start()
    held = [out.get(timeout=60) for _ in range(2)]
    assert sorted(held) == [(0, "cpu:logical0"), (1, "cpu:logical1")]
    for name in ("cpu_logical0.0.lock", "cpu_logical1.0.lock"):  # both slots are taken: a third job would wait
        with pytest.raises(Timeout):
            FileLock(str(tmp_path / name)).acquire(timeout=0)
    release.set()
    for worker in workers:
        worker.join(timeout=60)
    with device_slot(["cpu:logical0", "cpu:logical1"], tmp_path, start=1) as (index, device):
        assert (index, device) == (1, "cpu:logical1")  # free again; a job starts at its own number's slot


@dataclass(frozen=True)
class _Cell:
    device: str = "cpu"


def test_two_sweeps_on_one_box_put_their_jobs_on_different_gpus(tmp_path, monkeypatch):
    """``devices=[cuda:0, cuda:1]`` (or ``all``) in two sweeps run at once on one box: the slots were locks in each
    sweep folder, so each sweep put a job on GPU 0 (two jobs on one GPU: out of memory). The slots are the
    machine's now."""
    from omegaconf import OmegaConf

    from xaibench.sweep import jobs

    monkeypatch.setenv("XAIBENCH_DEVICE_LOCKS", str(tmp_path / "device_locks"))
    used = []

    def config(sweep_id: str):
        return OmegaConf.create({"devices": ["cuda:0", "cuda:1"], "results_dir": str(tmp_path / "runs"),
                                 "sweep_id": sweep_id, "store_dir": str(tmp_path / "store"), "threads": 1})

    def run_cell(cell, store, sweep_id):
        used.append((sweep_id, cell.device))
        if sweep_id == "a":  # while sweep a's job 0 computes, sweep b's job 0 starts
            jobs._compute_cell(_Cell(), config("b"), job=0)

    monkeypatch.setattr("xaibench.engine.runner.run_cell", run_cell)
    jobs._compute_cell(_Cell(), config("a"), job=0)
    assert used == [("a", "cuda:0"), ("b", "cuda:1")]


def test_a_slot_is_named_by_the_physical_device(monkeypatch):
    """Two sweeps given different GPUs (``CUDA_VISIBLE_DEVICES``) both say ``cuda:0``: they must not wait for each
    other, and a list naming a device twice has two slots on it."""
    from xaibench.engine.device_slots import slot_names

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,GPU-8f3e/1")
    assert slot_names(["cuda:0", "cuda:1", "cuda:0", "cuda", "cpu"]) == [
        "cuda-2.0.lock", "cuda-GPU-8f3e_1.0.lock", "cuda-2.1.lock", "cuda-2.2.lock", "cpu.0.lock"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert slot_names(["cuda:1", "cuda:0"]) == ["cuda-1.0.lock", "cuda-0.0.lock"]


def test_slurm_jobs_on_one_node_do_not_share_slots(monkeypatch):
    """Two Slurm jobs on one node each see their own GPU as cuda:0 (cgroups): the machine's slots would make them
    wait for each other (before, the locks were in the sweep folder: one "cuda:0" slot for every task of an array
    with devices=all, on a shared filesystem that locks across nodes)."""
    from xaibench.engine.device_slots import device_lock_dir

    monkeypatch.delenv("XAIBENCH_DEVICE_LOCKS", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    machine = device_lock_dir()
    monkeypatch.setenv("SLURM_JOB_ID", "1007")
    assert device_lock_dir() == machine / "slurm-1007"


def test_devices_are_listed_or_all():
    assert expand_devices(["cuda:0", "cuda:1"]) == ["cuda:0", "cuda:1"]
    assert expand_devices("all")  # every visible GPU, or the CPU
    with pytest.raises(UserError):
        expand_devices("some")
    with pytest.raises(UserError):
        expand_devices([])


def test_a_sweep_with_devices_runs_each_job_on_a_held_device(workdir, monkeypatch, tmp_path):
    import xaibench

    monkeypatch.setenv("XAIBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XAIBENCH_DEVICE_LOCKS", str(tmp_path / "device_locks"))
    table = xaibench.run(["model=logreg", "dataset=iris", "method=saliency,random", "n_samples=4",
                          "metrics=sparsity", "devices=[cpu,cpu]"], multirun=True)
    assert set(table["status"]) == {"ok"} and set(table["device"]) == {"cpu"}
    assert {path.name for path in (tmp_path / "device_locks").iterdir()} == {"cpu.0.lock", "cpu.1.lock"}
    with pytest.raises(UserError, match="devices"):
        xaibench.run(["model=logreg", "dataset=iris", "devices=some"])


def test_devices_all_without_a_gpu_does_not_run_the_jobs_one_at_a_time(workdir, monkeypatch, tmp_path):
    """``hydra/launcher=joblib hydra.launcher.n_jobs=4 devices=all`` on a box without a GPU: ``all`` is the CPU, one
    slot, so the 4 workers ran their cells one after the other. A job now takes no slot on the CPU: here it runs
    while another job holds slot 0 (it waited for it before)."""
    import threading

    import xaibench

    monkeypatch.setenv("XAIBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setenv("XAIBENCH_DEVICE_LOCKS", str(tmp_path / "device_locks"))
    slot = tmp_path / "device_locks" / "cpu.0.lock"
    slot.parent.mkdir(parents=True)
    done = []
    with FileLock(str(slot)):  # another job of the sweep computing on "the" device
        worker = threading.Thread(target=lambda: done.append(xaibench.run(
            ["model=logreg", "dataset=iris", "method=saliency", "n_samples=4", "metrics=sparsity", "devices=all"])),
            daemon=True)
        worker.start()
        worker.join(120)
    assert done and set(done[0]["status"]) == {"ok"} and set(done[0]["device"]) == {"cpu"}
