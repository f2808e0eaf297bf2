"""Forward+backward cost per row of a suite model vs rows per call: what re-explaining with a gradient method costs.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_gradient_rows.py --threads 1
    PYTHONPATH=. .venv/bin/python benchmarks/bench_gradient_rows.py --pairs cnn:digits --batches 256 1024 4096

One "row" is what saliency / Integrated Gradients re-explanations run per explained input per path step: a forward
of the model, the target logits summed, and a backward to the input (``torch.autograd.grad`` w.r.t. the input
only, as the fast engine's summed-target gradients do). ``total_rows`` rows are run in calls of ``batch`` rows,
for every batch size in turn, repeated (interleaved over batch sizes and variants), timed in process CPU time; the
table gives the median microseconds per row and the range over repetitions. Variants: ``input-grad`` (what both
engines run), ``frozen-params`` (parameters ``requires_grad_(False)`` during the call), ``channels-last`` (image
models: model and input in ``torch.channels_last``). The models are built untrained (``ModelSpec.build``): the
cost of a row does not depend on the weights. If the cost per row does not fall with larger calls, batching more
perturbations x path steps per call cannot make a gradient re-explanation cheaper than plain Quantus's
``N x n_steps``-row calls (``docs/speed.md``, stability).
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from _common import ROOT, add_common_arguments, apply_device_and_threads, create, sync
from xaibench.engine.datasets import build_dataset
from xaibench.registry import DATASETS, MODELS

OUT = ROOT / "benchmarks" / "out" / "gradient_rows.json"
VARIANTS = ("input-grad", "frozen-params", "channels-last")


def sample_rows(module: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor, total: int
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """``total`` rows drawn from the dataset's inputs (cycled, small noise so no two rows are equal)."""
    index = torch.arange(total) % len(x)
    generator = torch.Generator().manual_seed(0)
    return x[index] + 0.05 * torch.randn((total, *x.shape[1:]), generator=generator), targets[index]


def run_rows(module: torch.nn.Module, rows: torch.Tensor, targets: torch.Tensor, batch: int, channels_last: bool
             ) -> None:
    """Forward + summed-target backward to the input over ``rows`` in calls of ``batch`` rows."""
    for start in range(0, len(rows), batch):
        x = rows[start:start + batch]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = x.detach().requires_grad_(True)
        output = module(x).gather(1, targets[start:start + batch].reshape(-1, 1)).sum()
        torch.autograd.grad(output, x)


def bench_pair(pair: str, args: argparse.Namespace) -> list[dict]:
    model_name, dataset_name = pair.split(":")
    data = build_dataset(create(DATASETS, "dataset", dataset_name), args.seed)
    torch.manual_seed(args.seed)
    module = create(MODELS, "model", model_name).build(data).to(args.device).eval()
    x = data.test.x.to(args.device)
    with torch.no_grad():
        targets = module(x).argmax(dim=1)
    rows, row_targets = sample_rows(module, x, targets, args.total_rows)
    variants = [v for v in VARIANTS if v != "channels-last" or x.dim() == 4]
    modules = {"input-grad": module, "frozen-params": copy.deepcopy(module).requires_grad_(False),
               "channels-last": copy.deepcopy(module).to(memory_format=torch.channels_last)}
    clock = (lambda: (sync(args.device), time.perf_counter())[1]) if args.device.startswith("cuda") else time.process_time
    times: dict[tuple[int, str], list[float]] = {(b, v): [] for b in args.batches for v in variants}
    for variant in variants:  # warm-up: allocator, oneDNN primitive caches
        run_rows(modules[variant], rows[:max(args.batches)], row_targets, max(args.batches), variant == "channels-last")
    for _ in range(args.repeats):
        for batch in args.batches:
            for variant in variants:
                started = clock()
                run_rows(modules[variant], rows, row_targets, batch, variant == "channels-last")
                times[(batch, variant)].append((clock() - started) / len(rows) * 1e6)
    out = []
    for (batch, variant), values in times.items():
        out.append({"model": model_name, "dataset": dataset_name, "input_shape": list(x.shape[1:]), "batch": batch,
                    "variant": variant, "us_per_row": statistics.median(values), "us_per_row_min": min(values),
                    "us_per_row_max": max(values), "samples_us_per_row": values})
        print(f"  {pair:<20} {variant:<14} batch {batch:>6}: {out[-1]['us_per_row']:7.2f} us/row "
              f"({min(values):.2f}-{max(values):.2f})", file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", nargs="+", type=int, default=[32, 128, 256, 512, 1024, 2048, 4096, 16384])
    parser.add_argument("--total-rows", type=int, default=16384, help="rows per timed pass (one pass per batch size)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repetitions")
    add_common_arguments(parser, OUT)
    args = parser.parse_args()
    apply_device_and_threads(parser, args)
    rows = [row for pair in args.pairs for row in bench_pair(pair, args)]
    lines = ["| model | dataset | variant | " + " | ".join(f"{b} rows" for b in args.batches) + " |",
             "|---|---|---|" + "---:|" * len(args.batches)]
    for key in dict.fromkeys((r["model"], r["dataset"], r["variant"]) for r in rows):
        cells = {r["batch"]: r for r in rows if (r["model"], r["dataset"], r["variant"]) == key}
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(
            f"{cells[b]['us_per_row']:.1f} ({cells[b]['us_per_row_min']:.1f}-{cells[b]['us_per_row_max']:.1f})"
            for b in args.batches) + " |")
    print("us per row (forward + backward to the input), median (range over repetitions)")
    print("\n".join(lines))
    environment = {"device": args.device, "clock": "wall" if args.device.startswith("cuda") else "process CPU",
                   "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
                   "repeats": args.repeats, "total_rows": args.total_rows, "seed": args.seed}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": environment, "results": rows}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
