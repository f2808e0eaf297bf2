"""CPU time of ``summarize`` (and the report's statistics) on large synthetic results tables.

Usage::

    .venv/bin/python benchmarks/bench_summary.py                  # 64k and 640k rows, one and two seeds
    .venv/bin/python benchmarks/bench_summary.py --rows-only 640000 --reps 5 --with-stats

The table has the results schema's grouping columns: cells = models x datasets x methods x seeds (1,000 cells
for 640k rows: 5 models x 10 datasets x 20 methods with one seed, or 5 x 5 x 20 x 2 seeds), 20 metrics, 32
samples, 1% NaN scores. Sizes are measured interleaved (rep 1 of every size, then rep 2, ...) and CPU time
(``time.process_time``) is reported, min and median over repetitions. Each run also checks that two summaries
of the same table are identical (determinism). ``--with-stats`` times ``pairwise_tests`` (190 Wilcoxon tests per
comparison group with 20 methods) and the rest of a report's statistics once per size.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from xaibench.results import statistics as st  # noqa: E402
from xaibench.results.aggregate import summarize  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "bench_summary.json"
# name -> (models, datasets, methods, seeds, metrics, samples)
SIZES = {
    "64k rows, 1 seed": (5, 1, 20, 1, 20, 32),
    "640k rows, 1 seed": (5, 10, 20, 1, 20, 32),
    "640k rows, 2 seeds": (5, 5, 20, 2, 20, 32),
}


def synthetic_table(models: int, datasets: int, methods: int, seeds: int, metrics: int, samples: int,
                    seed: int = 0) -> pd.DataFrame:
    """Long-format rows with the columns summarize groups on; values N(method effect, 1), 1% NaN."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(models), np.arange(datasets), np.arange(methods), np.arange(seeds),
                                np.arange(metrics), np.arange(samples), indexing="ij"), axis=-1).reshape(-1, 6)
    mo, da, me, se, mt, sa = grid.T
    values = me * 0.05 + rng.normal(0.0, 1.0, len(grid))
    nan = rng.random(len(grid)) < 0.01
    values[nan] = np.nan

    def names(prefix: str, index: np.ndarray) -> pd.Categorical:
        return pd.Categorical.from_codes(index, [f"{prefix}{i}" for i in range(index.max() + 1)]).astype(str)

    return pd.DataFrame({
        "model": names("model", mo), "dataset": names("dataset", da), "method": names("method", me),
        "metric": names("metric", mt), "family": names("family", mt % 5), "higher_is_better": mt % 3 != 0,
        "sample_id": names("s", sa), "seed": se, "value": values,
        "status": np.where(nan, "nan", "ok"), "message": "", "params": "{}", "method_params": "{}",
        "model_params": "{}", "dataset_params": "{}", "n_samples": samples, "model_revision": "",
        "dataset_revision": "", "model_accuracy": 0.9, "model_flag": "",
    })


def cpu(fn) -> tuple[float, object]:
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--with-stats", action="store_true", help="also time the report's statistics once")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()

    tables = {name: synthetic_table(*shape) for name, shape in SIZES.items()}
    times: dict[str, list[float]] = {name: [] for name in tables}
    deterministic = {}
    for _ in range(args.reps):  # interleaved: every size once per round
        for name, table in tables.items():
            seconds, summary = cpu(lambda: summarize(table))
            times[name].append(seconds)
            deterministic[name] = deterministic.get(name, True) and summary.equals(summarize(table))
    records = []
    for name, table in tables.items():
        record = {"table": name, "rows": len(table), "groups": int(table.groupby(["model", "dataset", "method",
                                                                                    "metric"]).ngroups),
                  "cpu_s_min": min(times[name]), "cpu_s_median": statistics.median(times[name]),
                  "deterministic": deterministic[name]}
        if args.with_stats:
            summary = summarize(table)
            record["pairwise_tests_cpu_s"], pairs = cpu(lambda: st.pairwise_tests(table))
            record["n_tests"] = len(pairs)
            record["ranks_friedman_agreement_cpu_s"], _ = cpu(lambda: (st.average_ranks(summary, "family"),
                                                                       st.friedman_nemenyi(summary),
                                                                       st.metric_agreement(summary)))
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    print(frame.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                               "reps": args.reps, "results": records}, indent=2))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
