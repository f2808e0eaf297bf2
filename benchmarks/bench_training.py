"""Train every zoo model on its default dataset from a cold store; print a table and write JSON.

Usage::

    .venv/bin/python benchmarks/bench_training.py                     # CPU, 2 threads: each zoo model, default data
    .venv/bin/python benchmarks/bench_training.py --pairs quickstart  # the models the README quickstart trains
    .venv/bin/python benchmarks/bench_training.py --pairs all         # every zoo model x every compatible dataset
    .venv/bin/python benchmarks/bench_training.py --device cuda       # when a GPU is available
    .venv/bin/python benchmarks/bench_training.py --pair vit:synthetic_shapes --set epochs=30 --seeds 0 1 2
                                                                      # a recipe (model overrides) on chosen pairs

Each row goes through the engine's own ``get_model`` (seeded build, deterministic fit, checkpoint into a fresh
temporary store), so the seconds are what a sweep pays for a cold model. Accuracies are on the test split and are
compared with each model's ``min_accuracy`` (rows below it would be flagged ``underfit`` in results).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from omegaconf import OmegaConf

from xaibench.engine.cell import CellSpec
from xaibench.engine.datasets import build_dataset
from xaibench.engine.seeding import derive_seed, seed_everything
from xaibench.engine.stages import get_model
from xaibench.engine.store import Store
from xaibench.models.training import TRAINING_THREADS, accuracy
from xaibench.registry import DATASETS, MODELS

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "training.json"
ZOO = ("logreg", "mlp", "cnn", "cnn1d", "vit", "text_transformer")
DEFAULT_DATASET = {
    "logreg": "breast_cancer",
    "mlp": "breast_cancer",
    "cnn": "digits",
    "cnn1d": "synthetic_timeseries",
    "vit": "synthetic_image",
    "text_transformer": "synthetic_text",
}
QUICKSTART = (("mlp", "breast_cancer"), ("mlp", "digits"), ("cnn", "digits"))  # conf/experiment/quickstart.yaml
BUILTIN_DATASETS = ("breast_cancer", "wine", "iris", "digits", "synthetic_tabular", "synthetic_image",
                    "synthetic_timeseries", "synthetic_text")


def conf_section(group: str, name: str) -> dict:
    """The option's parameters exactly as ``conf/<group>/<name>.yaml`` gives them (what a sweep would use)."""
    return dict(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / group / f"{name}.yaml"), resolve=True))


def pairs(which: str) -> list[tuple[str, str]]:
    if which == "default":
        return [(m, DEFAULT_DATASET[m]) for m in ZOO]
    if which == "quickstart":
        return list(QUICKSTART)
    out = []
    for model in ZOO:
        modalities = MODELS.get(model).modalities
        out += [(model, d) for d in BUILTIN_DATASETS if DATASETS.get(d).modality in modalities]
    return out


def train_one(model: str, dataset: str, device: str, seed: int, overrides: dict | None = None) -> dict:
    """One cold model; ``overrides``: model parameters over its config (``model.epochs=30`` on a command line)."""
    model_cfg, dataset_cfg = {**conf_section("model", model), **(overrides or {})}, conf_section("dataset", dataset)
    cell = CellSpec(model=dict(model_cfg), dataset=conf_section("dataset", dataset),
                    method={"name": "-"}, metrics={}, seed=seed, device=device)
    spec = MODELS.create(model_cfg.pop("name"), model_cfg)
    data = build_dataset(DATASETS.create(dataset_cfg.pop("name"), dataset_cfg), seed)
    with tempfile.TemporaryDirectory() as store_dir:
        started, cpu = time.perf_counter(), time.process_time()
        module, acc = train_cold(Store(store_dir), spec, data, cell, device)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    majority = float(torch.bincount(data.test.y).max()) / len(data.test)
    return {"model": model, "dataset": dataset, "seed": seed, "overrides": overrides or {},
            "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "test_accuracy": round(acc, 4),
            "train_accuracy": round(accuracy(module, data.train), 4), "majority_rate": round(majority, 4),
            "min_accuracy": spec.min_accuracy, "underfit": acc < spec.min_accuracy or acc <= majority < 1,
            "params": sum(p.numel() for p in module.parameters()), "n_train": len(data.train),
            "epochs": spec.epochs}


def train_cold(store: Store, spec, data, cell: CellSpec, device: str):  # type: ignore[no-untyped-def]
    """CPU: the engine's own ``get_model`` on an empty store. Other devices: the same steps (seeded build, fit,
    accuracy, checkpoint) with the module moved to ``device`` first (the training loop follows the module)."""
    if device == "cpu":
        trained = get_model(store, spec, data, cell)
        return trained.module, trained.accuracy
    key = cell.model_key(data.revision)
    seed_everything(derive_seed(key))
    module = spec.fit(spec.build(data).to(device), data, derive_seed(key, "fit")).eval()
    acc = accuracy(module, data.test)
    store.put("models", key, "pt", spec.save(module.cpu()), meta={"accuracy": acc, "model": spec.name})
    return module, acc


def warm_up(device: str) -> float:
    """Pay the process's one-off costs (lazy imports on the first optimiser step, CUDA context) untimed per row."""
    started = time.perf_counter()
    module = torch.nn.Linear(4, 2).to(device)
    optimiser = torch.optim.Adam(module.parameters())
    module(torch.zeros(8, 4, device=device)).sum().backward()
    optimiser.step()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch CPU threads outside the training loop, which pins its own (TRAINING_THREADS)")
    parser.add_argument("--pairs", choices=("default", "quickstart", "all"), default="default",
                        help="default: each zoo model on its default dataset; quickstart: the quickstart's models; "
                             "all: every zoo model on every compatible built-in dataset")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="split/training seeds (one row each)")
    parser.add_argument("--pair", action="append", default=[], metavar="MODEL:DATASET",
                        help="train these pairs instead of --pairs (repeatable)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a model parameter over its config, VALUE as YAML (repeatable): --set epochs=30")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is visible")
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    warmup = warm_up(args.device)
    chosen = [tuple(p.split(":", 1)) for p in args.pair] or pairs(args.pairs)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    rows = [train_one(m, d, args.device, seed, overrides) for m, d in chosen for seed in args.seeds]
    print_table(rows)
    total = sum(r["seconds"] for r in rows)
    print(f"\ntotal {total:.1f} s training on {args.device} ({args.threads} CPU threads, training loop pinned to "
          f"{TRAINING_THREADS}), plus {warmup:.1f} s "
          "one-off process warm-up (first optimiser step: lazy imports)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "pairs": args.pairs, "device": args.device, "threads": args.threads, "training_threads": TRAINING_THREADS,
        "seeds": args.seeds, "overrides": overrides,
        "total_seconds": round(total, 3), "warmup_seconds": round(warmup, 3),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # before / after: contention
        "torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(), "rows": rows,
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


def print_table(rows: list[dict]) -> None:
    header = (f"{'model':<17} {'dataset':<27} {'seed':>4} {'seconds':>8} {'cpu s':>7} {'train acc':>9} "
              f"{'test acc':>9} {'min acc':>8} {'params':>8}  flag")
    print(header)
    print("-" * len(header))
    for r in rows:
        flag = "underfit" if r["underfit"] else ""
        print(f"{r['model']:<17} {r['dataset']:<27} {r['seed']:>4} {r['seconds']:>8.2f} {r['cpu_seconds']:>7.2f} "
              f"{r['train_accuracy']:>9.3f} {r['test_accuracy']:>9.3f} {r['min_accuracy']:>8.2f} {r['params']:>8}  "
              f"{flag}")


if __name__ == "__main__":
    sys.exit(main())
