"""Vectorised Kernel SHAP / LIME vs captum's ``KernelShap`` / ``Lime`` (one sample at a time), CPU time.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_surrogates.py                  # cnn/digits + mlp/breast_cancer
    PYTHONPATH=. .venv/bin/python benchmarks/bench_surrogates.py --device cuda

The reference is exactly what the suite ran before (captum per sample under the sample's seed, same features,
baselines, kernel, surrogate, ``n_samples`` and ``perturbations_per_eval`` from ``conf/method/*.yaml``).
Interleaved repetitions (captum, ours, ...), median process CPU time (wall time after a synchronise on CUDA).
``max |diff| / scale``: the largest attribution difference over the largest captum attribution (sampling noise:
the two draw different coalitions).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from captum._utils.models.linear_model import SkLearnLasso, SkLearnLinearRegression
from captum.attr import KernelShap, Lime

from _common import ROOT, add_common_arguments, apply_device_and_threads, conf_section, create, sync
from xaibench.engine.cell import CellSpec
from xaibench.engine.datasets import build_dataset
from xaibench.engine.stages import get_model
from xaibench.engine.store import Store
from xaibench.explainers.inputs import PerturbationView
from xaibench.explainers.perturbation.lime import binary_cosine_kernel
from xaibench.explainers.seeding import seeded
from xaibench.registry import DATASETS, EXPLAINERS, MODELS

OUT = ROOT / "benchmarks" / "out" / "surrogates.json"


def captum_reference(explainer, model, x, target) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """The previous implementation: captum, one sample at a time under its seed."""
    view = PerturbationView.of(model, x, explainer.baseline)
    mask = view.feature_mask(explainer.patch_size)
    if explainer.name == "kernel_shap":
        method = KernelShap(view.forward)
    else:
        surrogate = SkLearnLasso(alpha=explainer.alpha) if explainer.alpha > 0 else SkLearnLinearRegression()
        method = Lime(view.forward, interpretable_model=surrogate,
                      similarity_func=binary_cosine_kernel(explainer.kernel_width))
    maps = []
    with torch.no_grad():
        for i, seed in enumerate(view.seeds(explainer.name)):
            with seeded(seed, x.device):
                maps.append(method.attribute(view.inputs[i:i + 1], baselines=view.baselines[i:i + 1],
                                             target=target[i:i + 1], feature_mask=mask, n_samples=explainer.n_samples,
                                             perturbations_per_eval=explainer.perturbations_per_eval))
    return view.to_output(torch.cat(maps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    add_common_arguments(parser, OUT)
    args = parser.parse_args()
    apply_device_and_threads(parser, args)
    clock = (lambda: (sync(args.device), time.perf_counter())[1]) if args.device.startswith("cuda") else time.process_time
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.store or tmp)
        for pair in args.pairs:
            model_name, dataset_name = pair.split(":")
            data = build_dataset(create(DATASETS, "dataset", dataset_name), args.seed)
            cell = CellSpec(model=conf_section("model", model_name), dataset=conf_section("dataset", dataset_name),
                            method={"name": "lime"}, metrics={}, seed=args.seed, device=args.device)
            module = get_model(store, create(MODELS, "model", model_name), data, cell).module.to(args.device).eval()
            x = data.test.head(args.n_samples).x.to(args.device)
            with torch.no_grad():
                target = module(x).argmax(dim=1)
            for method in ("kernel_shap", "lime"):
                explainer = create(EXPLAINERS, "method", method)
                times = {"captum": [], "xaibench": []}
                for _ in range(args.repeats):
                    torch.manual_seed(0)
                    started = clock()
                    reference = captum_reference(explainer, module, x, target)
                    times["captum"].append(clock() - started)
                    torch.manual_seed(0)
                    started = clock()
                    ours = explainer.explain(module, x, target).attributions
                    times["xaibench"].append(clock() - started)
                median = {k: statistics.median(v) for k, v in times.items()}
                scale = float(reference.abs().max()) or 1.0
                row = {"model": model_name, "dataset": dataset_name, "method": method,
                       "ms_per_sample_captum": 1000 * median["captum"] / len(x),
                       "ms_per_sample_xaibench": 1000 * median["xaibench"] / len(x),
                       "speedup": median["captum"] / median["xaibench"],
                       "max_abs_diff_over_scale": float((ours - reference).abs().max()) / scale}
                rows.append(row)
                print(f"  {pair:<20} {method:<12} {row['speedup']:5.2f}x", file=sys.stderr, flush=True)
    print("| model | dataset | method | ms/sample captum | ms/sample xaibench | speedup | max abs diff / scale |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['dataset']} | {r['method']} | {r['ms_per_sample_captum']:.1f} | "
              f"{r['ms_per_sample_xaibench']:.1f} | {r['speedup']:.2f}x | {r['max_abs_diff_over_scale']:.3f} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    environment = {"device": args.device, "n_samples": args.n_samples, "repeats": args.repeats,
                   "threads": torch.get_num_threads(), "clock": "wall" if args.device.startswith("cuda") else "process CPU"}
    out.write_text(json.dumps({"environment": environment, "results": rows}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
