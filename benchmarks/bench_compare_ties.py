"""CPU time of ``xaibench compare``'s one-sided Wilcoxon test on tied differences (a 0/1 metric's changed unit).

With tied |differences| and n <= 13, ``scipy.stats.wilcoxon`` runs an exhaustive permutation test;
``xaibench.results.compare.values.signed_rank_p`` counts the same 2**n sign flips with one matrix product. Both are
timed on the same differences, interleaved, and their p-values compared. Prints a table and writes
``benchmarks/out/compare_ties.json``.

    .venv/bin/python benchmarks/bench_compare_ties.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import stats

from xaibench.results.compare.values import signed_rank_p

OUT = Path(__file__).resolve().parent / "out"


def differences(n: int) -> np.ndarray:
    """A pointing-game unit that broke on most samples: -1 on all but one, +1 on that one (every |d| tied)."""
    d = -np.ones(n)
    d[0] = 1.0
    return d


def cpu_seconds(function, *args) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    started = time.process_time()
    value = function(*args)
    return time.process_time() - started, float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[6, 8, 10, 12, 13])
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        d, scipy_s, ours_s, same = differences(n), [], [], True
        for _ in range(args.repeats):  # interleaved: both see the same machine load
            seconds, reference = cpu_seconds(lambda x: stats.wilcoxon(x, alternative="less").pvalue, d)
            scipy_s.append(seconds)
            seconds, ours = cpu_seconds(signed_rank_p, d, "less")
            ours_s.append(seconds)
            same &= abs(reference - ours) <= 1e-12 * reference
        rows.append({"n": n, "scipy_s": min(scipy_s), "signed_rank_p_s": min(ours_s),
                     "ratio": min(scipy_s) / max(min(ours_s), 1e-9), "same_p_value": bool(same), "p_value": ours})
    print(f"{'n':>3} {'scipy CPU-s':>12} {'ours CPU-s':>11} {'ratio':>8} {'same p':>7}")
    for row in rows:
        print(f"{row['n']:>3} {row['scipy_s']:>12.4f} {row['signed_rank_p_s']:>11.5f} {row['ratio']:>8.0f} "
              f"{str(row['same_p_value']):>7}")
    OUT.mkdir(exist_ok=True)
    (OUT / "compare_ties.json").write_text(json.dumps({"repeats": args.repeats, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
