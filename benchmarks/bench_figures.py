"""CPU time and Python memory of the report's per-metric score figure (``metric_scores``) on large summaries.

Usage::

    .venv/bin/python benchmarks/bench_figures.py                 # 120, 1,200 and 12,000 summary rows
    .venv/bin/python benchmarks/bench_figures.py --groups 30 300 --reps 5

A synthetic summary has ``groups`` experiments (dataset / model) x 10 methods x 4 metrics, 10% of the
(experiment, method) pairs missing and 10% of the means without a CI; a 1,000-cell sweep's summary has ~12,000
rows. Each size is drawn and rendered to pixels (``FigureCanvasAgg.draw``), interleaved (rep 1 of every size, then
rep 2, ...); CPU time (``time.process_time``) min and median, and the tracemalloc peak of one more, untimed run.
"""
from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from xaibench.report.figures import metric_scores  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "bench_figures.json"
METHODS = [f"method_{i}" for i in range(9)] + ["random"]
METRICS = ["faithfulness_correlation", "max_sensitivity", "sparseness", "pixel_flipping"]


def synthetic_summary(groups: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g, method, metric in itertools.product(range(groups), METHODS, METRICS):
        if rng.random() < 0.1:
            continue
        mean, half = rng.random(), (np.nan if rng.random() < 0.1 else 0.05)
        rows.append({"model": f"model_{g % 5}", "dataset": f"dataset_{g // 5}", "method": method, "metric": metric,
                     "mean": mean, "ci_low": mean - half, "ci_high": mean + half, "higher_is_better": True})
    return pd.DataFrame(rows)


def draw(summary: pd.DataFrame, *, traced: bool = False) -> float:
    """CPU seconds of building and rendering the figure, or (``traced``) its tracemalloc peak in MB (tracing slows
    Python code several times, so it is a separate, untimed run)."""
    if traced:
        tracemalloc.start()
    start = time.process_time()
    FigureCanvasAgg(metric_scores(summary)).draw()
    seconds = time.process_time() - start
    if not traced:
        return seconds
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, nargs="+", default=[3, 30, 300])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    summaries = {g: synthetic_summary(g) for g in args.groups}
    times: dict[int, list[float]] = {g: [] for g in args.groups}
    for _ in range(args.reps):
        for g, summary in summaries.items():
            times[g].append(draw(summary))
    peaks = {g: draw(summary, traced=True) for g, summary in summaries.items()}
    results = [{"experiments": g, "summary_rows": len(summaries[g]), "cpu_s_min": min(times[g]),
                "cpu_s_median": statistics.median(times[g]), "python_peak_mb": peaks[g]} for g in args.groups]
    print(f"{'experiments':>11} {'rows':>7} {'CPU-s min':>10} {'median':>8} {'peak MB':>8}")
    for r in results:
        print(f"{r['experiments']:>11} {r['summary_rows']:>7} {r['cpu_s_min']:>10.2f} {r['cpu_s_median']:>8.2f} "
              f"{r['python_peak_mb']:>8.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": platform.platform(), "reps": args.reps, "results": results},
                                         indent=2))


if __name__ == "__main__":
    main()
