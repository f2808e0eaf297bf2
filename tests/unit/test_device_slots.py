"""One job per device: concurrent jobs on one box hold distinct device slots (logical devices on CPU)."""
from __future__ import annotations

import multiprocessing
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
    for index in range(2):  # both slots are taken while they run: a third job would wait
        with pytest.raises(Timeout):
            FileLock(str(tmp_path / f"slot-{index}.lock")).acquire(timeout=0)
    release.set()
    for worker in workers:
        worker.join(timeout=60)
    with device_slot(["cpu:logical0", "cpu:logical1"], tmp_path, start=1) as (index, device):
        assert (index, device) == (1, "cpu:logical1")  # free again; a job starts at its own number's slot


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
    table = xaibench.run(["model=logreg", "dataset=iris", "method=saliency,random", "n_samples=4",
                          "metrics=sparsity", "devices=[cpu,cpu]"], multirun=True)
    assert set(table["status"]) == {"ok"} and set(table["device"]) == {"cpu"}
    assert (workdir / "results" / "runs" / "default" / ".devices").is_dir()
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
    slot = workdir / "results" / "runs" / "default" / ".devices" / "slot-0.lock"
    slot.parent.mkdir(parents=True)
    done = []
    with FileLock(str(slot)):  # another job of the sweep computing on "the" device
        worker = threading.Thread(target=lambda: done.append(xaibench.run(
            ["model=logreg", "dataset=iris", "method=saliency", "n_samples=4", "metrics=sparsity", "devices=all"])),
            daemon=True)
        worker.start()
        worker.join(120)
    assert done and set(done[0]["status"]) == {"ok"} and set(done[0]["device"]) == {"cpu"}
