"""Speed of every registered explanation method on the quickstart models; print a table and write JSON.

Usage::

    .venv/bin/python benchmarks/bench_explainers.py                       # CPU, quickstart models, 32 samples
    .venv/bin/python benchmarks/bench_explainers.py --device cuda         # when a GPU is available
    .venv/bin/python benchmarks/bench_explainers.py --pairs vit:digits text_transformer:synthetic_text
    .venv/bin/python benchmarks/bench_explainers.py --methods saliency kernel_shap --threads 1

Models are trained (or loaded) through the engine's own ``get_model`` into a temporary store (``--store`` keeps
them between runs). Each method is configured by ``conf/method/<name>.yaml`` and called the way the runner calls
it: one ``explain(ForwardCounter(model), x, target)`` per batch of ``--batch-size`` samples, predicted targets,
after seeding from the stage key. A warm-up call on one sample is not timed. ``forwards/sample`` counts model
calls (``rows/sample``: rows through the model), as recorded in every result row's ``n_forward``. Methods that
are not applicable to a (model, dataset) pair (declared applicability) are listed, not run.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from _common import ROOT, add_common_arguments, apply_device_and_threads, conf_section, create, sync
from xaibench.engine.applicability import cell_not_applicable
from xaibench.engine.cell import CellSpec
from xaibench.engine.counting import ForwardCounter
from xaibench.engine.datasets import build_dataset
from xaibench.engine.seeding import derive_seed, seed_everything
from xaibench.engine.stages import get_model
from xaibench.engine.store import Store
from xaibench.registry import DATASETS, EXPLAINERS, MODELS

OUT = ROOT / "benchmarks" / "out" / "explainers.json"


def bench_method(name: str, module: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, batch_size: int,
                 device: str, seed: int) -> dict:
    explainer = create(EXPLAINERS, "method", name)
    seed_everything(seed)
    explainer.explain(ForwardCounter(module), x[:1], target[:1])  # warm-up (lazy imports, kernels)
    seed_everything(seed)
    counter = ForwardCounter(module)
    sync(device)
    started = time.perf_counter()
    for i in range(0, len(x), batch_size):
        explanation = explainer.explain(counter, x[i : i + batch_size], target[i : i + batch_size])
    sync(device)
    seconds = time.perf_counter() - started
    finite = bool(torch.isfinite(explanation.attributions).all())
    n = len(x)
    return {"method": name, "seconds": round(seconds, 4), "samples_per_s": round(n / seconds, 2),
            "forwards_per_sample": round(counter.calls / n, 2), "rows_per_sample": round(counter.rows / n, 1),
            "finite": finite}


def bench_pair(pair: str, methods: list[str], store: Store, args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    model_name, dataset_name = pair.split(":")
    model_spec = create(MODELS, "model", model_name)
    dataset_spec = create(DATASETS, "dataset", dataset_name)
    data = build_dataset(dataset_spec, args.seed)
    cell = CellSpec(model=conf_section("model", model_name), dataset=conf_section("dataset", dataset_name),
                    method={"name": "-"}, metrics={}, seed=args.seed, device=args.device)
    trained = get_model(store, model_spec, data, cell)
    module = trained.module.to(args.device).eval()
    x = data.test.x[: args.n_samples].to(args.device)
    with torch.no_grad():
        target = module(x).argmax(dim=1)
    rows, skipped = [], []
    for name in methods:
        reason = cell_not_applicable(model_spec, dataset_spec, create(EXPLAINERS, "method", name))
        if reason:
            skipped.append({"method": name, "model": model_name, "dataset": dataset_name, "reason": reason})
            continue
        row = bench_method(name, module, x, target, args.batch_size, args.device, derive_seed("bench", pair, name, args.seed))
        rows.append({**row, "model": model_name, "dataset": dataset_name, "accuracy": round(trained.accuracy, 4)})
        print(f"  {model_name:>6} {dataset_name:<14} {name:<22} {row['samples_per_s']:>10.2f}/s "
              f"{row['forwards_per_sample']:>9.2f} fwd/sample", file=sys.stderr, flush=True)
    return rows, skipped


def table(rows: list[dict]) -> str:
    lines = ["| method | model | dataset | samples/s | forwards/sample | rows/sample | s (total) |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["model"], r["dataset"], -r["samples_per_s"])):
        lines.append(f"| {r['method']} | {r['model']} | {r['dataset']} | {r['samples_per_s']:.2f} | "
                     f"{r['forwards_per_sample']:.2f} | {r['rows_per_sample']:.1f} | {r['seconds']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=None, help="default: every registered method")
    parser.add_argument("--batch-size", type=int, default=64)
    add_common_arguments(parser, OUT)
    args = parser.parse_args()
    apply_device_and_threads(parser, args)
    methods = args.methods or EXPLAINERS.names()
    rows, skipped = [], []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.store or tmp)
        for pair in args.pairs:
            pair_rows, pair_skipped = bench_pair(pair, methods, store, args)
            rows += pair_rows
            skipped += pair_skipped
    print(table(rows))
    if skipped:
        print("\nnot applicable: " + ", ".join(f"{s['method']} on {s['model']}/{s['dataset']}" for s in skipped))
    environment = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
                   "python": platform.python_version(), "machine": platform.machine(),
                   "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
                   "n_samples": args.n_samples, "batch_size": args.batch_size, "seed": args.seed}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": environment, "results": rows, "not_applicable": skipped}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
