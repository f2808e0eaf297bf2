"""Speed and memory of collecting a sweep: per-frame conform (before) vs conform once vs streaming; print + JSON.

Usage::

    .venv/bin/python benchmarks/bench_collect.py                      # 250 and 1000 cells x 20 metrics x 32 samples
    .venv/bin/python benchmarks/bench_collect.py --cells 1000 --repeats 3

A synthetic sweep folder is written once per size (schema-conformant rows: 5 models x 4 datasets x 10 methods x
seeds, 20 metrics, 32 samples per cell). Each variant then runs in a fresh subprocess, so its peak RSS
(``VmHWM``) is its own; repetitions are interleaved (A B C A B C ...) and the median is reported:

- ``per_frame``: the former ``_combine`` (conform every cell frame, then concatenate);
- ``conform_once``: ``collect_sweep`` (concatenate, then conform once);
- ``streaming``: ``write_collected`` to a Parquet file (one (model, dataset, method, seed) group in memory).

``imports`` is the RSS of a process that only imports the modules (the floor under every variant). The tables
are checked to be identical (the streamed file read back) before anything is reported.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "collect.json"
VARIANTS = ("imports", "per_frame", "conform_once", "streaming")
N_METRICS, N_SAMPLES = 20, 32


def make_sweep(folder: Path, n_cells: int) -> None:
    """Write ``n_cells`` synthetic cell files of N_METRICS x N_SAMPLES rows each into ``folder/cells``."""
    import numpy as np
    import pandas as pd

    from xaibench.results.schema import COLUMNS, conform

    (folder / "cells").mkdir(parents=True, exist_ok=True)
    n = N_METRICS * N_SAMPLES
    rng = np.random.default_rng(0)
    base = {c: [""] * n for c, dtype in COLUMNS.items() if dtype == "string"}
    base.update({c: [0] * n for c, dtype in COLUMNS.items() if dtype == "int64"})
    base.update({c: [0.0] * n for c, dtype in COLUMNS.items() if dtype == "float64"})
    base.update({c: [True] * n for c, dtype in COLUMNS.items() if dtype == "bool"})
    template = pd.DataFrame(base)
    template["metric"] = np.repeat([f"metric_{i:02d}" for i in range(N_METRICS)], N_SAMPLES)
    template["sample_id"] = np.tile([f"s{i:03d}" for i in range(N_SAMPLES)], N_METRICS)
    template["status"], template["params"] = "ok", "{}"
    for index in range(n_cells):
        frame = template.copy()
        model, dataset, method, seed = index % 5, index // 5 % 4, index // 20 % 10, index // 200
        frame["model"], frame["dataset"] = f"model_{model}", f"dataset_{dataset}"
        frame["method"], frame["seed"] = f"method_{method}", seed
        frame["cell_key"] = key = f"{index:032x}"
        frame["value"] = rng.normal(size=n)
        conform(frame).to_parquet(folder / "cells" / f"{key}.parquet", index=False)


def worker(variant: str, folder: Path) -> dict:
    """Run one variant in this (fresh) process; return seconds, CPU seconds and peak RSS."""
    import pandas as pd

    from xaibench.results import collect
    from xaibench.results.schema import ROW_KEY, conform, sort_rows

    started, cpu = time.perf_counter(), time.process_time()
    rows = 0
    if variant == "per_frame":
        frames = [conform(pd.read_parquet(p)) for p in sorted((folder / "cells").glob("*.parquet"))]
        table = pd.concat(frames, ignore_index=True).drop_duplicates(subset=ROW_KEY, keep="last")
        table = sort_rows(table.drop_duplicates(subset=collect.SAMPLE_IDENTITY, keep="first"))
        table.to_parquet(folder / f"{variant}.parquet", index=False)
        rows = len(table)
    elif variant == "conform_once":
        table = collect.collect_sweep(folder)
        table.to_parquet(folder / f"{variant}.parquet", index=False)
        rows = len(table)
    elif variant == "streaming":
        collect.write_collected(folder, folder / f"{variant}.parquet")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak_rss_mb(), "rows": rows}


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``: reset by exec, unlike ``ru_maxrss``, which would count the
    parent's memory at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(variant: str, folder: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--worker", variant, str(folder)], capture_output=True,
                          text=True, check=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_identical(folder: Path) -> None:
    import pandas as pd

    reference = pd.read_parquet(folder / "per_frame.parquet")
    for variant in ("conform_once", "streaming"):
        pd.testing.assert_frame_equal(pd.read_parquet(folder / f"{variant}.parquet"), reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[250, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]))))
        return
    measured = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_cells in args.cells:
            folder = Path(tmp) / f"sweep_{n_cells}"
            make_sweep(folder, n_cells)
            runs = {variant: [] for variant in VARIANTS}
            for _ in range(args.repeats):  # interleaved repetitions
                for variant in VARIANTS:
                    runs[variant].append(run_variant(variant, folder))
            check_identical(folder)
            for variant, samples in runs.items():
                measured.append({"cells": n_cells, "rows": n_cells * N_METRICS * N_SAMPLES, "variant": variant,
                                 **{k: statistics.median(s[k] for s in samples)
                                    for k in ("seconds", "cpu_seconds", "peak_rss_mb")}})
    _report(measured, Path(args.out))


def _report(measured: list[dict], out: Path) -> None:
    print(f"{'cells':>6} {'rows':>8}  {'variant':<13} {'s (wall)':>9} {'s (cpu)':>8} {'peak RSS MB':>12} {'vs per_frame':>13}")
    for row in measured:
        base = next(r for r in measured if r["cells"] == row["cells"] and r["variant"] == "per_frame")
        ratio = f"{base['cpu_seconds'] / row['cpu_seconds']:.1f}x faster" if row["variant"] not in (
            "imports", "per_frame") else ""
        print(f"{row['cells']:>6} {row['rows']:>8}  {row['variant']:<13} {row['seconds']:9.2f} "
              f"{row['cpu_seconds']:8.2f} {row['peak_rss_mb']:12.0f} {ratio:>13}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"python": platform.python_version(), "machine": platform.machine(),
                               "metrics_per_cell": N_METRICS, "samples_per_metric": N_SAMPLES,
                               "results": measured}, indent=1))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
