"""Single-threaded cost of ``GLOBAL_RNG_LOCK`` (``engine/seeding.py``), held by ``quantus_adapter.score`` from
seeding numpy's global RNG to the call's last draw, and of ``quiet.ignore_warnings`` (the explainers' per-thread
warning filter) against the ``catch_warnings`` + ``filterwarnings`` it replaced.

CPU time of this process (the machine is shared), interleaved repetitions:

- the lock alone: ``--blocks`` empty ``with GLOBAL_RNG_LOCK`` blocks against as many empty loop turns;
- warning blocks: ``--blocks`` empty ``ignore_warnings(message=...)`` against ``catch_warnings`` blocks;
- real scoring: ``score`` of faithfulness correlation (``nr_runs=20``, 16 samples, 10-feature mlp) ``--calls``
  times, with the lock and with it replaced by a ``nullcontext``.

Prints a table and writes ``benchmarks/out/rng_lock.json``.

    .venv/bin/python benchmarks/bench_rng_lock.py [--blocks 100000] [--calls 30] [--repeats 3]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from xaibench.engine.seeding import GLOBAL_RNG_LOCK
from xaibench.metrics import quantus_adapter, testing
from xaibench.metrics.quiet import ignore_warnings
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.types import Modality

OUT = Path(__file__).resolve().parent / "out"
NOTICE = "Setting backward hooks on ReLU activations"


@contextlib.contextmanager
def catch_notice():
    """What the explainers did before: the process-wide filter list swapped and restored."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=NOTICE)
        yield


def per_block(make, n: int) -> float:
    """CPU microseconds per empty block of ``make()``."""
    start = time.process_time()
    for _ in range(n):
        with make():
            pass
    return (time.process_time() - start) / n * 1e6


def per_score(lock, n: int) -> float:
    """CPU milliseconds per ``score`` call with ``lock`` as the adapter's RNG lock."""
    torch.manual_seed(0)
    model, x = testing.tiny_mlp(10, 3).eval(), torch.randn(16, 10)
    ctx = replace(testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("saliency", {})), engine="quantus")
    spec, params = METRICS.get("faithfulness_correlation"), {"nr_runs": 20, "subset_size": 3}
    quantus_adapter.GLOBAL_RNG_LOCK = lock
    try:
        start = time.process_time()
        for seed in range(n):
            quantus_adapter.score(spec, params, ctx, seed)
        return (time.process_time() - start) / n * 1e3
    finally:
        quantus_adapter.GLOBAL_RNG_LOCK = GLOBAL_RNG_LOCK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    per_score(GLOBAL_RNG_LOCK, 2)  # warm-up: imports, Quantus' first call
    rows: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        rows.setdefault("empty block, us", []).append(per_block(contextlib.nullcontext, args.blocks))
        rows.setdefault("GLOBAL_RNG_LOCK block, us", []).append(per_block(lambda: GLOBAL_RNG_LOCK, args.blocks))
        rows.setdefault("catch_warnings block, us", []).append(per_block(catch_notice, args.blocks))
        rows.setdefault("ignore_warnings block, us", []).append(per_block(lambda: ignore_warnings(NOTICE),
                                                                          args.blocks))
        rows.setdefault("score without lock, ms", []).append(per_score(contextlib.nullcontext(), args.calls))
        rows.setdefault("score with lock, ms", []).append(per_score(GLOBAL_RNG_LOCK, args.calls))
    for name, values in rows.items():
        print(f"{name:30s} " + "  ".join(f"{v:8.3f}" for v in values))
    OUT.mkdir(exist_ok=True)
    (OUT / "rng_lock.json").write_text(json.dumps({"args": vars(args), "cpu": rows}, indent=1))


if __name__ == "__main__":
    main()
