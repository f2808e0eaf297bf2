"""Cost of pre-flighting every job of a large sweep instead of the first ``MAX_VALIDATED`` (2,000).

A sweep of ``--jobs`` jobs (mlp on iris, ``seed=range(0, jobs/2)`` x 2 methods: every job a new seed, the costly
case, since the dataset and model builds depend on the seed) is composed once; then, in interleaved repetitions,
the old check (``validate_config`` on the first 2,000 jobs, each building its dataset and model) and the new one
(every job: its own checks, and the builds of the first 2,000 plus any (dataset, model, n_samples) not built
before). CPU time of this process (the machine is shared). Prints a table and writes
``benchmarks/out/preflight_all_jobs.json``.

    .venv/bin/python benchmarks/bench_preflight_all_jobs.py [--jobs 10000] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from xaibench.config import preflight
from xaibench.config.preflight import job_checks
from xaibench.config.preflight.composition import _check_top_level_keys
from xaibench.config.verdicts import Verdicts

OUT = Path(__file__).resolve().parent / "out"


def _clear() -> None:
    job_checks._built_dataset.cache_clear()
    job_checks._check_model_builds.cache_clear()


def first_only(configs) -> float:
    _clear()
    start = time.process_time()
    for cfg in configs[:preflight.MAX_VALIDATED]:
        _check_top_level_keys(cfg, "config")
    job_checks._check_user_files(configs[:preflight.MAX_VALIDATED])
    for cfg in configs[:preflight.MAX_VALIDATED]:
        preflight.validate_config(cfg, verdicts=Verdicts(None))
    return time.process_time() - start


def every_job(configs) -> float:
    _clear()
    start = time.process_time()
    for cfg in configs:
        _check_top_level_keys(cfg, "config")
    job_checks._check_user_files(configs)
    built: set = set()
    for index, cfg in enumerate(configs):
        preflight.validate_config(cfg, verdicts=Verdicts(None), built=built,
                                  reuse_builds=index >= preflight.MAX_VALIDATED)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    overrides = ["model=mlp", "dataset=iris", "method=saliency,random", f"seed=range(0,{args.jobs // 2})",
                 "n_samples=4"]
    start = time.process_time()
    configs = preflight.compose_jobs(preflight.expand_sweep(overrides, multirun=True))
    compose = time.process_time() - start
    rows = {"first_2000": [], "every_job": []}
    for _ in range(args.repeats):  # interleaved
        rows["first_2000"].append(first_only(configs))
        rows["every_job"].append(every_job(configs))
    print(f"{len(configs)} jobs; composing them: {compose:.1f} CPU-s")
    print(f"{'check':<12} {'CPU-s (each repetition)':<28}")
    for name, values in rows.items():
        print(f"{name:<12} {', '.join(f'{v:.1f}' for v in values):<28}")
    OUT.mkdir(exist_ok=True)
    (OUT / "preflight_all_jobs.json").write_text(json.dumps(
        {"jobs": len(configs), "compose_cpu_s": compose, "cpu_s": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
