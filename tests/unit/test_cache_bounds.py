"""The CLI's caches (plans, compositions, remembered checks) keep their most recently used files only."""
from __future__ import annotations

import os
import time

from xaibench.config import cache_bounds, verdicts
from xaibench.config import plan as plan_module
from xaibench.config.preflight import compose_job
from xaibench.engine.cell import CellSpec


def _file(folder, name: str, size: int, age_s: float):
    path = folder / name
    path.write_bytes(b"x" * size)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_prune_keeps_the_newest_files_within_the_count_and_byte_bounds(tmp_path):
    files = [_file(tmp_path, f"{i}.pickle", 100, age_s=100 - i) for i in range(10)]  # 9 is the newest
    other = _file(tmp_path, "notes.md", 10, age_s=1000)
    stale = _file(tmp_path, ".5.pickle.abc.tmp", 10, age_s=2 * cache_bounds.STALE_TEMP_S)
    fresh = _file(tmp_path, ".6.pickle.def.tmp", 10, age_s=1)  # a concurrent writer's: left alone
    removed = cache_bounds.prune(tmp_path, ".pickle", max_files=4, max_bytes=10_000)
    assert sorted(p.name for p in tmp_path.glob("*.pickle")) == ["6.pickle", "7.pickle", "8.pickle", "9.pickle"]
    assert set(removed) == {*files[:6], stale} and other.exists() and fresh.exists()
    cache_bounds.prune(tmp_path, ".pickle", max_files=4, max_bytes=250)  # bytes: two files of 100
    assert sorted(p.name for p in tmp_path.glob("*.pickle")) == ["8.pickle", "9.pickle"]
    cache_bounds.prune(tmp_path, ".pickle", max_files=1, max_bytes=50, keep=files[8])  # kept whatever its size
    assert [p.name for p in tmp_path.glob("*.pickle")] == ["8.pickle"]
    assert cache_bounds.prune(tmp_path / "missing", ".pickle", max_files=1, max_bytes=1) == []


def test_plans_are_pruned_least_recently_used_first(tmp_path, monkeypatch):
    """Each new command line leaves a plan and a composition; a plan loaded again (a warm rerun) is kept over an
    older one, and what was pruned is composed again, never lost."""
    monkeypatch.setenv("XAIBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("XAIBENCH_NO_PLAN_CACHE", raising=False)
    monkeypatch.setattr(plan_module, "PLAN_FILES", 3)
    monkeypatch.setattr("xaibench.config.preflight.validate",
                        lambda overrides, *, multirun, config_name, **_: [compose_job(overrides, config_name)])
    sweeps = {n: ["model=logreg", "dataset=iris", "method=saliency", f"n_samples={n}"] for n in (2, 3, 4, 5)}

    def cached(n: int) -> bool:
        return (plan_module.cache_dir() / f"{plan_module.plan_key(sweeps[n], multirun=False, config_name='config')}"
                                          ".pickle").is_file()

    for n in (2, 3, 4):
        plan_module.make_plan(sweeps[n], multirun=False)
        time.sleep(0.01)  # distinct mtimes
    assert not cached(2) and cached(3) and cached(4)  # each wrote a plan and a composition: 6 files, 3 kept
    assert len(list(plan_module.cache_dir().glob("*.pickle"))) == 3
    plan_module.make_plan(sweeps[3], multirun=False)  # a warm rerun of n=3 marks it used
    time.sleep(0.01)
    plan_module.make_plan(sweeps[5], multirun=False)
    assert cached(3) and cached(5) and not cached(4)
    assert len(list(plan_module.cache_dir().glob("*.pickle"))) == 3


def test_remembered_checks_keep_the_most_recent_code_versions(tmp_path, monkeypatch):
    monkeypatch.setenv("XAIBENCH_CACHE", str(tmp_path / "cache"))
    for name in ("XAIBENCH_NO_PLAN_CACHE", "XAIBENCH_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "cache" / "verdicts"
    folder.mkdir(parents=True)
    old = [_file(folder, f"{i:032x}.txt", 33, age_s=1000 + i) for i in range(verdicts.VERDICT_FILES + 4)]
    cell = CellSpec(model={"name": "logreg"}, dataset={"name": "iris"}, method={"name": "saliency"},
                    metrics={"sparseness": {}}, n_samples=4)
    checks = verdicts.Verdicts.for_this_code()
    checks.add(cell)
    checks.save()
    kept = sorted(folder.glob("*.txt"))
    assert len(kept) == verdicts.VERDICT_FILES and checks.path in kept
    assert set(kept) - {checks.path} == set(old[:verdicts.VERDICT_FILES - 1])  # the newest of the older versions
    assert verdicts.Verdicts.for_this_code().known(cell)
