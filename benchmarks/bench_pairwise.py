"""CPU time of the report's paired tests (``statistics.pairwise_tests``) on a synthetic table of many groups.

Holm's correction runs once per comparison group. statsmodels' ``multipletests(method="holm")`` calls
``gc.collect()`` on every call, so its cost grows with the groups and with the objects the process holds; the
suite computes the same numbers directly (``statistics.holm``, checked against statsmodels in the tests). This
script times ``pairwise_tests`` with each Holm implementation, interleaved, in one process. Prints a table and
writes ``benchmarks/out/pairwise.json``.

    .venv/bin/python benchmarks/bench_pairwise.py [--groups 400] [--methods 5] [--samples 32] [--repeat 2]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from xaibench.results import statistics as st

OUT = Path(__file__).resolve().parent / "out"


def synthetic_table(groups: int, methods: int, samples: int) -> pd.DataFrame:
    """``groups`` comparison groups (one dataset each) x ``methods`` x ``samples`` ok rows of one metric."""
    rng = np.random.default_rng(0)
    n = groups * methods * samples
    return pd.DataFrame({
        "model": "m", "dataset": np.repeat([f"d{g}" for g in range(groups)], methods * samples),
        "method": np.tile(np.repeat([f"m{k}" for k in range(methods)], samples), groups), "metric": "faith",
        "family": "faithfulness", "higher_is_better": True, "sample_id": np.tile([f"s{i}" for i in range(samples)],
                                                                                groups * methods),
        "value": rng.normal(0, 1, n) + np.tile(np.repeat(0.1 * np.arange(methods), samples), groups),
        "status": "ok", "seed": 0, "method_params": "{}", "params": "{}"})


def statsmodels_holm(p_values: np.ndarray) -> np.ndarray:
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = multipletests(p[finite], method="holm")[1]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=400)
    parser.add_argument("--methods", type=int, default=5)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    table = synthetic_table(args.groups, args.methods, args.samples)
    variants = {"holm: suite (direct)": st.holm, "holm: statsmodels": statsmodels_holm}
    own = st.holm
    st.pairwise_tests(table.head(2 * args.samples))  # imports outside the timings
    times: dict[str, list[float]] = {name: [] for name in variants}
    results = {}
    for _ in range(args.repeat):
        for name, holm in variants.items():
            st.holm = holm
            started = time.process_time()
            results[name] = st.pairwise_tests(table)
            times[name].append(time.process_time() - started)
    st.holm = own
    first, second = results.values()
    assert np.allclose(first["p_holm"], second["p_holm"], rtol=1e-12, atol=0), "the two Holm implementations differ"
    print(f"pairwise_tests on {len(table):,} rows ({args.groups} groups x {args.methods} methods x {args.samples} "
          f"samples, {len(first)} pairs); CPU seconds, {args.repeat} interleaved runs")
    for name, values in times.items():
        print(f"  {name:22s} " + "  ".join(f"{v:6.2f}" for v in values))
    OUT.mkdir(exist_ok=True)
    record = {"rows": len(table), "groups": args.groups, "methods": args.methods, "samples": args.samples,
              "pairs": len(first), "cpu_s": times, "machine": platform.platform(), "python": platform.python_version()}
    (OUT / "pairwise.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
