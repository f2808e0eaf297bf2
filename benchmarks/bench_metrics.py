"""Cost of every registered metric on the quickstart cells; print a table and write JSON.

Usage::

    .venv/bin/python benchmarks/bench_metrics.py                        # CPU, mlp/breast_cancer + cnn/digits, IG
    .venv/bin/python benchmarks/bench_metrics.py --device cuda          # when a GPU is available
    .venv/bin/python benchmarks/bench_metrics.py --suite default --metrics sparseness pixel_flipping

Models are trained (or loaded) through the engine's own ``get_model`` into a temporary store (``--store`` keeps
them between runs); the cell's explanations come from ``conf/method/<method>.yaml`` (integrated gradients by
default), predicted targets, as the runner makes them. Each metric is scored with its parameters from
``conf/metrics/<suite>.yaml`` through ``quantus_adapter.score`` exactly as the runner calls it (one call for the
cell's samples, seeded from a key). ``s/sample`` is wall time over samples; ``fwd/sample`` counts the samples
(rows) that went through the model's forward, every copy included (MPRT's randomised ones), per scored sample:
one re-explanation with 32-step IG costs 32; ``calls/sample`` counts forward calls (batched) per sample.
Metrics not applicable to the cell (no masks, no counterfactuals, modality) are listed, not run.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

from _common import ROOT, add_common_arguments, apply_device_and_threads, conf_section, create, sync
from xaibench.engine.applicability import metric_not_applicable
from xaibench.engine.cell import CellSpec
from xaibench.engine.datasets import build_dataset
from xaibench.engine.seeding import derive_seed, seed_everything
from xaibench.engine.stages import get_model
from xaibench.engine.store import Store
from xaibench.metrics.quantus_adapter import ScoreContext, score
from xaibench.registry import DATASETS, EXPLAINERS, METRICS, MODELS

OUT = ROOT / "benchmarks" / "out" / "metrics.json"
MARK = "_xaibench_bench_count"  # deep copies (MPRT's randomised models) keep the mark


class ForwardTally:
    """Counts forwards of every module carrying ``MARK`` through a global forward hook."""

    def __init__(self) -> None:
        self.calls = 0
        self.rows = 0
        self._handle = None

    def __enter__(self) -> "ForwardTally":
        def hook(module, inputs, output):  # type: ignore[no-untyped-def]
            if getattr(module, MARK, False):
                self.calls += 1
                first = inputs[0] if inputs else None
                self.rows += int(first.shape[0]) if hasattr(first, "shape") and first.dim() > 0 else 1

        self._handle = torch.nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        self._handle.remove()


def bench_pair(pair: str, suite: dict, store: Store, args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    model_name, dataset_name = pair.split(":")
    model_spec = create(MODELS, "model", model_name)
    dataset_spec = create(DATASETS, "dataset", dataset_name)
    explainer = create(EXPLAINERS, "method", args.method)
    data = build_dataset(dataset_spec, args.seed)
    cell = CellSpec(model=conf_section("model", model_name), dataset=conf_section("dataset", dataset_name),
                    method=conf_section("method", args.method), metrics=suite, seed=args.seed, device=args.device)
    trained = get_model(store, model_spec, data, cell)
    module = trained.module.to(args.device).eval()
    setattr(module, MARK, True)
    samples = data.test.head(args.n_samples)
    x = samples.x.to(args.device)
    with torch.no_grad():
        targets = module(x).argmax(dim=1)
    seed_everything(derive_seed("bench-metrics", pair, args.seed))
    attributions = explainer.explain(module, x, targets).attributions.detach()
    ctx = ScoreContext(model=module, modality=data.modality, x=x, targets=targets, attributions=attributions,
                       explainer=explainer, masks=None if samples.masks is None else samples.masks.to(args.device),
                       counterfactuals=None, train=data.train, n_classes=data.n_classes, device=args.device)
    rows, skipped = [], []
    for name, params in suite.items():
        spec = METRICS.get(name)
        reason = metric_not_applicable(spec, dataset_spec, has_counterfactuals=False)
        if reason:
            skipped.append({"metric": name, "model": model_name, "dataset": dataset_name, "reason": reason})
            continue
        seed = derive_seed("bench-metrics", pair, name, args.seed)
        with ForwardTally() as tally:
            sync(args.device)
            started = time.perf_counter()
            result = score(spec, dict(params or {}), ctx, seed)
            sync(args.device)
            seconds = time.perf_counter() - started
        n = len(x)
        statuses = Counter(result.status)
        row = {"metric": name, "family": spec.family, "model": model_name, "dataset": dataset_name,
               "seconds": round(seconds, 4), "s_per_sample": round(seconds / n, 5),
               "forwards_per_sample": round(tally.rows / n, 1), "calls_per_sample": round(tally.calls / n, 2),
               "ok": statuses.get("ok", 0), "nan": statuses.get("nan", 0), "accuracy": round(trained.accuracy, 4)}
        rows.append(row)
        print(f"  {model_name:>4} {dataset_name:<14} {name:<28} {row['s_per_sample']:>9.4f} s/sample "
              f"{row['forwards_per_sample']:>8.2f} fwd/sample  ok={row['ok']} nan={row['nan']}",
              file=sys.stderr, flush=True)
    return rows, skipped


def table(rows: list[dict]) -> str:
    lines = ["| metric | family | model | dataset | s/sample | fwd/sample | calls/sample | ok/nan | s (cell) |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["model"], r["dataset"], r["family"], r["metric"])):
        lines.append(f"| {r['metric']} | {r['family']} | {r['model']} | {r['dataset']} | {r['s_per_sample']:.4f} | "
                     f"{r['forwards_per_sample']:.0f} | {r['calls_per_sample']:.2f} | {r['ok']}/{r['nan']} | "
                     f"{r['seconds']:.2f} |")
    for key in sorted({(r["model"], r["dataset"]) for r in rows}):
        total = sum(r["seconds"] for r in rows if (r["model"], r["dataset"]) == key)
        lines.append(f"| **suite total** | | {key[0]} | {key[1]} | | | | | {total:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="integrated_gradients", help="conf/method/<name>.yaml")
    parser.add_argument("--suite", default="full", help="conf/metrics/<suite>.yaml")
    parser.add_argument("--metrics", nargs="+", default=None, help="a subset of the suite")
    add_common_arguments(parser, OUT)
    args = parser.parse_args()
    apply_device_and_threads(parser, args)
    suite = conf_section("metrics", args.suite)
    if args.metrics:
        unknown = sorted(set(args.metrics) - set(suite))
        if unknown:
            parser.error(f"not in suite {args.suite}: {', '.join(unknown)}")
        suite = {k: v for k, v in suite.items() if k in args.metrics}
    rows, skipped = [], []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.store or tmp)
        for pair in args.pairs:
            pair_rows, pair_skipped = bench_pair(pair, suite, store, args)
            rows += pair_rows
            skipped += pair_skipped
    print(table(rows))
    for key in sorted({(s["model"], s["dataset"]) for s in skipped}):
        names = sorted(s["metric"] for s in skipped if (s["model"], s["dataset"]) == key)
        print(f"\nnot applicable on {key[0]}/{key[1]}: " + ", ".join(names))
    environment = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
                   "python": platform.python_version(), "machine": platform.machine(),
                   "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
                   "n_samples": args.n_samples, "method": args.method, "suite": args.suite, "seed": args.seed}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": environment, "results": rows, "not_applicable": skipped}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
