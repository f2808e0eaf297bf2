"""Cost of silencing Quantus per thread (``metrics/quiet.py``) against the process-wide ``redirect_stdout`` +
``catch_warnings`` it replaced, single-threaded.

Two measures, CPU time of this process (the machine is shared), in interleaved repetitions:

- the block alone: ``--blocks`` empty blocks of each kind;
- a real Quantus call: ``call_quantus``'s metric call (pixel flipping, faithfulness estimate on a 10-feature mlp,
  ``--samples`` samples) ``--calls`` times inside each kind of block.

Prints a table and writes ``benchmarks/out/quiet.json``.

    .venv/bin/python benchmarks/bench_quiet.py [--blocks 20000] [--calls 40] [--repeats 3]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from xaibench.metrics import testing
from xaibench.metrics.quantus_adapter import build_batch, metric_class_for, quantus_kwargs, resolve_params
from xaibench.metrics.quiet import quiet
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.types import Modality

OUT = Path(__file__).resolve().parent / "out"


@contextlib.contextmanager
def process_wide():
    """What ``call_quantus`` did before: process-wide state swapped and restored."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def blocks(kind, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        with kind():
            pass
    return time.process_time() - start


def calls(kind, jobs, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        for metric, batch, call in jobs:
            with kind():
                metric(model=batch.model, x_batch=batch.x.copy(), y_batch=batch.y.copy(), a_batch=batch.a.copy(),
                       channel_first=True, device="cpu", batch_size=len(batch), **call)
    return time.process_time() - start


def quantus_jobs(samples: int):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model, x = testing.tiny_mlp(10, 3).eval(), torch.randn(samples, 10)
    ctx = replace(testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("saliency", {})), engine="quantus")
    jobs = []
    for name in ("pixel_flipping", "faithfulness_estimate"):
        spec = METRICS.get(name)
        resolved = resolve_params(spec, {}, ctx)
        batch = build_batch(spec, resolved, ctx)
        init, call = quantus_kwargs(spec, resolved)
        metric_class, _ = metric_class_for(spec, batch)
        with quiet():
            metric = metric_class(**init, return_aggregate=False, disable_warnings=True, display_progressbar=False)
        jobs.append((metric, batch, call))
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20000)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    jobs = quantus_jobs(args.samples)
    kinds = {"process-wide (before)": process_wide, "per thread (quiet)": quiet}
    results = {name: {"block_us": [], "call_ms": []} for name in kinds}
    calls(quiet, jobs, 2)  # warm up
    for _ in range(args.repeats):
        for name, kind in kinds.items():
            results[name]["block_us"].append(1e6 * blocks(kind, args.blocks) / args.blocks)
            results[name]["call_ms"].append(1e3 * calls(kind, jobs, args.calls) / (args.calls * len(jobs)))
    print(f"{'':24} {'block (us, CPU)':>22} {'Quantus call (ms, CPU)':>26}")
    for name, r in results.items():
        print(f"{name:24} {min(r['block_us']):>10.1f} - {max(r['block_us']):<9.1f} "
              f"{min(r['call_ms']):>12.2f} - {max(r['call_ms']):<10.2f}")
    OUT.mkdir(exist_ok=True)
    (OUT / "quiet.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=1))


if __name__ == "__main__":
    main()
