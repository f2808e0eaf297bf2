"""Sweep overhead per cell beyond compute: CPU seconds of whole CLI sweeps, cold and warm, at 12/48/192 cells.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_sweep.py                        # 12 and 48 cells
    PYTHONPATH=. .venv/bin/python benchmarks/bench_sweep.py --cells 12 48 192 --n-jobs 1 2

Each size runs ``python -m xaibench -m ...`` in a fresh folder (its own store and plan cache) over tiny cells
(logreg/mlp x iris/wine/breast_cancer x gradient methods x seeds, 8 samples, the default suite with few runs):

- ``cold``: empty store, no cached plan: everything, model training included.
- ``cold cells``: a fresh store holding only the trained models of the first run, no cached plan: the pre-flight,
  every explanation and score, the store and the sweep folder. Its overhead per cell is
  (CPU - the cells' own explain + score time recorded in the rows) / cells. The rows' times are wall seconds of
  one torch thread, so on a busy machine they overstate compute and the overhead is a lower bound.
- ``warm``: every cell in the store, cached plan (an identical rerun); ``warm, new plan``: the same without its
  cached plan but with the cells' pre-flight checks remembered (``xaibench/config/verdicts.py``: a rerun after
  editing a config file in a way that leaves these cells as they were, or a new command line over known cells);
  ``warm, code edited``: the plan and the remembered checks deleted, the composition kept (``composed-*``: a
  rerun after editing the package's code outside ``xaibench/config/``); ``warm, cold plan``:
  ``XAIBENCH_NO_PLAN_CACHE=1``, nothing cached. Nothing is computed, so all of it is overhead. The four are
  interleaved, ``--repeats`` times each (median, and range).
- with ``--n-jobs``: warm reruns through Hydra's joblib launcher with that many workers (CPU of the process and
  the workers it waited for; stored cells are written by the launching process, no job is launched), and
  ``joblib, 1/4 relaunched``: the same after deleting a quarter of the cells' artefacts from the store (their
  explanation and score stages stay), so that those cells go to joblib workers and are rebuilt from their stages.

Growth: the marginal CPU per cell between consecutive sizes is printed as well (the fixed costs, imports above all,
cancel out). CPU time = user + system of the child processes (``resource.getrusage``), never wall time: the
machine is shared. Prints a table and writes ``benchmarks/out/sweep.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "sweep.json"
MODELS, DATASETS = ["logreg", "mlp"], ["iris", "wine", "breast_cancer"]
METHODS = ["saliency", "input_x_gradient", "integrated_gradients", "random"]


def sweep_args(n_cells: int) -> list[str]:
    seeds = max(1, n_cells // (len(MODELS) * len(DATASETS) * len(METHODS)))
    methods = METHODS if n_cells >= 24 else METHODS[: max(1, n_cells // 6)]
    return ["-m", f"model={','.join(MODELS)}", f"dataset={','.join(DATASETS)}", f"method={','.join(methods)}",
            f"seed={','.join(str(s) for s in range(seeds))}", "n_samples=8", "progress=false",
            "metrics.faithfulness_correlation.nr_runs=5", "metrics.max_sensitivity.nr_samples=2"]


def cpu_of(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-m", "xaibench", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"sweep failed ({done.returncode}): {done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def rows_compute_s(folder: Path) -> tuple[int, float]:
    """(cells, seconds of explain + score the rows record: per-sample times x samples)."""
    table = pd.read_parquet(folder / "results" / "runs" / "default" / "table.parquet")
    scored = table.drop_duplicates(["cell_key", "metric"])
    cells = table.drop_duplicates("cell_key")
    compute = (scored["score_s"] * scored["n_samples"]).sum() + (cells["explain_s"] * cells["n_samples"]).sum()
    return len(cells), float(compute)


def environment(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XAIBENCH_")}
    return {**env, "PYTHONPATH": str(ROOT), "XAIBENCH_CACHE": str(folder / "cache"),
            "XAIBENCH_STORE": str(folder / "store"), **extra}


def measure(n_cells: int, repeats: int, n_jobs: list[int]) -> dict:
    """Every figure of one sweep size (``n_jobs``: joblib worker counts to time warm reruns with, maybe none)."""
    overrides = sweep_args(n_cells)
    with tempfile.TemporaryDirectory() as tmp:
        first, second = Path(tmp) / "cold", Path(tmp) / "cold_cells"
        first.mkdir()
        cold = cpu_of(overrides, first, environment(first))
        shutil.copytree(first / "store" / "v2" / "models", second / "store" / "v2" / "models")
        cold_cells = cpu_of(overrides, second, environment(second))
        cells, compute = rows_compute_s(second)
        warm, warm_new_plan, warm_code_edited, warm_cold_plan = [], [], [], []
        for _ in range(repeats):  # interleaved: all see the same load
            warm.append(cpu_of(overrides, second, environment(second)))
            shutil.rmtree(second / "cache" / "plans")  # as after editing a config: the cells' checks are remembered
            warm_new_plan.append(cpu_of(overrides, second, environment(second)))
            forget_code(second / "cache")  # as after editing the code: only the composition is still valid
            warm_code_edited.append(cpu_of(overrides, second, environment(second)))
            warm_cold_plan.append(cpu_of(overrides, second, environment(second, XAIBENCH_NO_PLAN_CACHE="1")))
        joblib = {n: statistics.median(cpu_of([*overrides, "hydra/launcher=joblib", f"hydra.launcher.n_jobs={n}"],
                                              second, environment(second)) for _ in range(repeats)) for n in n_jobs}
        relaunched = {n: joblib_relaunching(overrides, second, n, repeats) for n in n_jobs}
    return {"cells": cells, "cold_cpu_s": cold, "cold_cells_cpu_s": cold_cells, "cell_compute_s": compute,
            "cold_overhead_per_cell_s": (cold_cells - compute) / cells,
            "warm_cpu_s": statistics.median(warm), "warm_cpu_range_s": [min(warm), max(warm)],
            "warm_per_cell_s": statistics.median(warm) / cells,
            "warm_new_plan_cpu_s": statistics.median(warm_new_plan),
            "warm_new_plan_range_s": [min(warm_new_plan), max(warm_new_plan)],
            "warm_code_edited_cpu_s": statistics.median(warm_code_edited),
            "warm_code_edited_range_s": [min(warm_code_edited), max(warm_code_edited)],
            "warm_cold_plan_cpu_s": statistics.median(warm_cold_plan),
            "warm_cold_plan_range_s": [min(warm_cold_plan), max(warm_cold_plan)],
            "warm_joblib_cpu_s": {str(n): cpu for n, cpu in joblib.items()},
            "joblib_quarter_relaunched_cpu_s": {str(n): cpu for n, cpu in relaunched.items()}}


def forget_code(cache: Path) -> None:
    """What editing the package's code invalidates: the plans and the remembered checks, not the compositions."""
    for path in (cache / "plans").glob("*.pickle"):
        if not path.name.startswith("composed-"):
            path.unlink()
    shutil.rmtree(cache / "verdicts", ignore_errors=True)


def joblib_relaunching(overrides: list[str], folder: Path, n_jobs: int, repeats: int) -> float:
    """Median CPU of joblib reruns after a quarter of the cell artefacts were deleted (stages kept)."""
    cells = sorted((folder / "store" / "v2" / "cells").rglob("*.artefact"))
    runs = []
    for _ in range(repeats):
        saved = {path: path.read_bytes() for path in cells[::4]}
        for path in saved:
            path.unlink()
        runs.append(cpu_of([*overrides, "hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}"], folder,
                           environment(folder)))
        for path, data in saved.items():  # the rebuilt artefacts are the same cells: put the originals back
            path.write_bytes(data)
    return statistics.median(runs)


def add_growth(rows: list[dict]) -> None:
    """Marginal CPU per added cell between consecutive sizes (fixed costs cancel)."""
    for small, large in zip(rows, rows[1:]):
        added = large["cells"] - small["cells"]
        large["marginal_per_cell_s"] = {
            name: (large[key] - small[key]) / added
            for name, key in (("cold_cells_overhead", "cold_overhead_total_s"), ("warm", "warm_cpu_s"),
                              ("warm_new_plan", "warm_new_plan_cpu_s"), ("warm_code_edited", "warm_code_edited_cpu_s"),
                              ("warm_cold_plan", "warm_cold_plan_cpu_s"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, nargs="+", default=[12, 48])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, nargs="*", default=[], help="joblib workers for warm reruns, e.g. 1 2")
    parser.add_argument("--n-jobs-max-cells", type=int, default=48,
                        help="joblib runs only for sweeps up to this many cells (Hydra composes every job again)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    rows = []
    for n_cells in args.cells:
        row = measure(n_cells, args.repeats, args.n_jobs if n_cells <= args.n_jobs_max_cells else [])
        row["cold_overhead_total_s"] = row["cold_cells_cpu_s"] - row["cell_compute_s"]
        rows.append(row)
        print(f"  {row['cells']} cells: cold {row['cold_cpu_s']:.1f}, cold cells {row['cold_cells_cpu_s']:.1f} "
              f"(compute {row['cell_compute_s']:.1f}), warm {row['warm_cpu_s']:.2f}, "
              f"warm new plan {row['warm_new_plan_cpu_s']:.2f}, warm code edited {row['warm_code_edited_cpu_s']:.2f}, "
              f"warm cold plan {row['warm_cold_plan_cpu_s']:.2f} CPU-s", file=sys.stderr, flush=True)
    add_growth(rows)
    print("| cells | cold CPU-s | cold cells CPU-s | cells' compute s | cold overhead/cell | warm CPU-s (range) "
          "| warm/cell | warm, new plan CPU-s | warm, code edited CPU-s | warm, cold plan CPU-s | marginal/cell: "
          "cold overhead, warm, warm new plan, warm code edited, warm cold plan |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        margin = r.get("marginal_per_cell_s")
        margin_text = (f"{margin['cold_cells_overhead']:.3f} / {margin['warm']:.4f} / {margin['warm_new_plan']:.3f}"
                       f" / {margin['warm_code_edited']:.3f} / {margin['warm_cold_plan']:.3f}" if margin else "-")
        print(f"| {r['cells']} | {r['cold_cpu_s']:.1f} | {r['cold_cells_cpu_s']:.1f} | {r['cell_compute_s']:.1f} | "
              f"{r['cold_overhead_per_cell_s']:.3f} | {r['warm_cpu_s']:.2f} ({r['warm_cpu_range_s'][0]:.2f}-"
              f"{r['warm_cpu_range_s'][1]:.2f}) | {r['warm_per_cell_s']:.3f} | {r['warm_new_plan_cpu_s']:.2f} | "
              f"{r['warm_code_edited_cpu_s']:.2f} | {r['warm_cold_plan_cpu_s']:.2f} | {margin_text} |")
    if args.n_jobs:
        print("\n| cells | " + " | ".join(f"warm, joblib n_jobs={n} CPU-s" for n in args.n_jobs) + " | "
              + " | ".join(f"joblib n_jobs={n}, 1/4 relaunched CPU-s" for n in args.n_jobs) + " |")
        print("|---:|" + "---:|" * (2 * len(args.n_jobs)))
        for r in rows:
            if r["warm_joblib_cpu_s"]:
                print(f"| {r['cells']} | " + " | ".join(f"{r['warm_joblib_cpu_s'][str(n)]:.2f}" for n in args.n_jobs)
                      + " | " + " | ".join(f"{r['joblib_quarter_relaunched_cpu_s'][str(n)]:.2f}" for n in args.n_jobs)
                      + " |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": rows}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
