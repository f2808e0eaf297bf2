"""Sweep overhead per cell: CPU seconds of a whole CLI sweep, cold (empty store) and warm (everything stored).

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_sweep.py                      # 12 and 48 cells
    PYTHONPATH=. .venv/bin/python benchmarks/bench_sweep.py --cells 12 48 192 --launcher hydra/launcher=basic

Each sweep runs ``python -m xaibench -m ...`` in a fresh folder (its own store and plan cache) over tiny cells
(logreg/mlp x iris/wine/breast_cancer x gradient methods x seeds, 8 samples, the default suite with few runs).
CPU time = user + system of the child process (``resource.getrusage``), not wall time (the machine is shared).
Warm reruns are repeated ``--repeats`` times (median). Cold overhead per cell = (cold CPU - the cells' own
explain + score CPU as recorded in the rows) / cells; warm overhead per cell = warm CPU / cells (nothing left to
compute).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, nargs="+", default=[12, 48])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--launcher", nargs="*", default=[], help="extra overrides, e.g. hydra/launcher=basic")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    rows = []
    for n_cells in args.cells:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "PYTHONPATH": str(ROOT), "XAIBENCH_CACHE": str(Path(tmp) / "cache"),
                   "XAIBENCH_STORE": str(Path(tmp) / "store")}
            overrides = sweep_args(n_cells) + list(args.launcher)
            cold = cpu_of(overrides, Path(tmp), env)
            table = pd.read_parquet(Path(tmp) / "results" / "runs" / "default" / "table.parquet")
            cells = table["cell_key"].nunique()
            per_sample = table.drop_duplicates(["cell_key", "metric"])
            compute = float((per_sample["score_s"] * per_sample["n_samples"]).sum()
                            + table.drop_duplicates("cell_key").eval("explain_s * n_samples").sum())
            warm = [cpu_of(overrides, Path(tmp), env) for _ in range(args.repeats)]
        row = {"cells": cells, "cold_cpu_s": cold, "cell_compute_s": compute, "warm_cpu_s": statistics.median(warm),
               "cold_overhead_per_cell_s": (cold - compute) / cells, "warm_per_cell_s": statistics.median(warm) / cells,
               "launcher": " ".join(args.launcher) or "default (in-process)"}
        rows.append(row)
        print(f"  {cells} cells: cold {cold:.1f} CPU-s (compute {compute:.1f}), warm {row['warm_cpu_s']:.2f} CPU-s",
              file=sys.stderr, flush=True)
    print("| cells | launcher | cold CPU-s | cells' compute s | cold overhead/cell | warm CPU-s | warm/cell |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['cells']} | {r['launcher']} | {r['cold_cpu_s']:.1f} | {r['cell_compute_s']:.1f} | "
              f"{r['cold_overhead_per_cell_s']:.3f} | {r['warm_cpu_s']:.2f} | {r['warm_per_cell_s']:.3f} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": rows}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
