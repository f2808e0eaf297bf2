"""Where a stability metric's time goes, by torch operator: plain Quantus vs the fast engine, with and without the
fast engine's exact pooling kernels and its folded head.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_stability_ops.py --threads 1
    PYTHONPATH=. .venv/bin/python benchmarks/bench_stability_ops.py --pairs cnn:digits --metric avg_sensitivity

One metric call per engine variant, scored as ``bench_scoring.py`` scores it (same context, parameters, seed),
repeated and interleaved (``quantus``, ``fast``, ``fast, unfolded``, ``fast, torch pooling``). A ``TorchDispatchMode`` below autograd
times every aten operator the call runs, in process CPU time. The operators are grouped: convolution forward and
backward, pooling forward and backward, ReLU forward and backward, linear layers (``addmm``/``mm``), and the
other operators (IG's path and sums, target selection, seeding). "outside operators" is the rest of the call:
Python (Quantus' loop and checks, captum's per-call handling, the adapter, numpy) and the autograd engine between
operators. The timer itself costs a Python call per operator; that cost lands in "outside operators" (plain
Quantus runs many more small operators: captum's per-row backward seeds), so each call is also timed without it
("untimed total", right after the timed call). The
``fast, unfolded`` variant runs the fast engine without its folded pooling + ``Linear`` head
(``metrics/fast/_folded_head.py``: saliency and IG on the cnn), pooling through the exact kernels, as before stab14;
``fast, torch pooling`` also without the exact pooling kernels (torch's own, as before fast10's pooling round).
JSON: per pair, per variant, medians in ms per metric call.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from _common import ROOT, add_common_arguments, apply_device_and_threads, conf_section
from bench_scoring import chunk_argument, context
from xaibench.engine.store import Store
from xaibench.metrics.fast import stability
from xaibench.metrics.fast._allocator import keep_freed_memory
from xaibench.metrics.fast._pool_kernels import ExactPoolKernels
from xaibench.metrics.quantus_adapter import score
from xaibench.registry import METRICS

OUT = ROOT / "benchmarks" / "out" / "stability_ops.json"
GROUPS = {"convolution": "conv forward", "convolution_backward": "conv backward",
          "avg_pool2d": "pool forward", "_adaptive_avg_pool2d": "pool forward",
          "avg_pool2d_backward": "pool backward", "_adaptive_avg_pool2d_backward": "pool backward",
          "relu": "relu forward", "relu_": "relu forward", "threshold_backward": "relu backward", "addmm": "linear", "mm": "linear"}
COLUMNS = ["conv forward", "conv backward", "pool forward", "pool backward", "relu forward", "relu backward",
           "linear", "other operators", "outside operators", "total", "untimed total"]
ORIGINAL_POOL_KERNELS = stability.exact_pool_kernels
ORIGINAL_FOLDED_HEAD = stability.folded_head
_NO_MODE = lambda network: contextlib.nullcontext()  # noqa: E731
MODEL_CORE = ("conv forward", "conv backward", "relu forward", "relu backward", "linear")


class OperatorClock(TorchDispatchMode):
    """Process CPU seconds per operator group, each operator run as torch runs it."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: collections.Counter[str] = collections.Counter()

    def run(self, func, args, kwargs):  # type: ignore[no-untyped-def]
        return func(*args, **(kwargs or {}))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        started = time.process_time()
        try:
            return self.run(func, args, kwargs)
        finally:
            name = func.name().split("::")[-1].split(".")[0]
            self.seconds[GROUPS.get(name, "other operators")] += time.process_time() - started


class ExactPoolingOperatorClock(OperatorClock):
    """The same, each operator run as the fast engine's ``ExactPoolKernels`` runs it (its pooling's own operators
    count as pooling). The engine's own mode is switched off while this one covers the whole call."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels = ExactPoolKernels()

    def run(self, func, args, kwargs):  # type: ignore[no-untyped-def]
        return self.kernels.__torch_dispatch__(func, (), args, kwargs)


def one_call(ctx, spec, params: dict, engine: str, seed: int, clock: OperatorClock,  # type: ignore[no-untyped-def]
             folded: bool = True) -> dict[str, float]:
    stability.folded_head = ORIGINAL_FOLDED_HEAD if folded else _NO_MODE
    try:
        return _one_call(ctx, spec, params, engine, seed, clock)
    finally:
        stability.folded_head = ORIGINAL_FOLDED_HEAD


def _one_call(ctx, spec, params: dict, engine: str, seed: int, clock: OperatorClock  # type: ignore[no-untyped-def]
              ) -> dict[str, float]:
    started = time.process_time()
    with clock:
        score(spec, dict(params), replace(ctx, engine=engine), seed)
    total = time.process_time() - started
    row = {column: 1000 * clock.seconds.get(column, 0.0) for column in COLUMNS[:-3]}
    row["outside operators"] = 1000 * total - sum(row.values())
    row["total"] = 1000 * total
    # The same call without the per-operator timer, the fast engine with its own pooling mode (re-explanations only).
    stability.exact_pool_kernels = ORIGINAL_POOL_KERNELS if isinstance(clock, ExactPoolingOperatorClock) else _NO_MODE
    try:
        started = time.process_time()
        score(spec, dict(params), replace(ctx, engine=engine), seed)
        row["untimed total"] = 1000 * (time.process_time() - started)
    finally:
        stability.exact_pool_kernels = _NO_MODE
    return row


def bench_pair(pair: str, args: argparse.Namespace, store: Store) -> dict[str, dict[str, float]]:
    ctx = context(pair, store, args)
    spec, params = METRICS.get(args.metric), conf_section("metrics", "stability")[args.metric]
    variants = {"quantus": ("quantus", OperatorClock, True), "fast": ("fast", ExactPoolingOperatorClock, True),
                "fast, unfolded": ("fast", ExactPoolingOperatorClock, False),
                "fast, torch pooling": ("fast", OperatorClock, False)}
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    stability.exact_pool_kernels = _NO_MODE  # the clocks run the pooling
    try:
        for repeat in range(args.repeats + 1):  # the first round is untimed (first-call costs)
            for name, (engine, clock, folded) in variants.items():
                row = one_call(ctx, spec, params, engine, args.seed, clock(), folded)
                if repeat:
                    rows[name].append(row)
    finally:
        stability.exact_pool_kernels = ORIGINAL_POOL_KERNELS
    return {name: {column: statistics.median(r[column] for r in runs) for column in COLUMNS}
            for name, runs in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="integrated_gradients", help="conf/method/<name>.yaml")
    parser.add_argument("--metric", default="max_sensitivity", help="a stability metric of conf/metrics/stability.yaml")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--chunk-size", type=chunk_argument, default=None, help="rows, or auto (the default)")
    add_common_arguments(parser, OUT)
    args = parser.parse_args()
    apply_device_and_threads(parser, args)
    keep_freed_memory()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.store or tmp)
        results = {pair: bench_pair(pair, args, store) for pair in args.pairs}
    lines = ["| pair | variant | " + " | ".join(COLUMNS) + " |", "|---|---|" + "---:|" * len(COLUMNS)]
    for pair, variants in results.items():
        lines += [f"| {pair} | {name} | " + " | ".join(f"{row[c]:.1f}" for c in COLUMNS) + " |"
                  for name, row in variants.items()]
    print(f"ms per {args.metric} call ({args.method}), process CPU, medians of {args.repeats} interleaved repetitions")
    print("\n".join(lines))
    for pair, variants in results.items():  # convolutions, ReLUs and linear layers: what no pooling kernel changes
        core, plain = sum(variants["fast"][c] for c in MODEL_CORE), variants["quantus"]["untimed total"]
        print(f"{pair}: convolutions + ReLUs + linear layers in the fast engine {core:.1f} ms; plain Quantus untimed "
              f"{plain:.1f} ms: at most {plain / core:.2f}x for an engine that runs these operators as torch does")
    environment = {"torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
                   "method": args.method, "metric": args.metric, "repeats": args.repeats, "n_samples": args.n_samples,
                   "chunk_size": args.chunk_size or "auto", "seed": args.seed, "clock": "process CPU"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": environment, "ms_per_call": results}, indent=2))
    print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
