"""A real CUDA out-of-memory backoff: the fast engine halves its chunk, retries, records it, and scores the same.

A tabular MLP with a wide hidden layer (``--hidden`` units: 512 KiB of activations per row at 2**17) is scored
with FaithfulnessCorrelation (chunks of 1,024 rows = 512 MiB) twice: uncapped, then with the process capped by
``torch.cuda.set_per_process_memory_fraction`` to about ``--cap-mib``, so that the first chunks run out of memory.
The capped run must record ``chunk_backoffs`` > 0 in its params and give the uncapped scores (1e-6). On CPU there
is no cap (plumbing check only: backoffs 0, the same scores). Prints a table, writes JSON.

    python3 benchmarks/gpu/oom_backoff.py --device cuda --out benchmarks/out/gpu/oom_backoff.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xaibench.metrics import testing
from xaibench.metrics.quantus_adapter import score
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.types import Modality

PARAMS = {"similarity_func": "correlation_pearson", "nr_runs": 64, "subset_size": 16, "abs": False,
          "perturb_func": "batch_baseline_replacement_by_indices", "perturb_baseline": 0.0, "normalise": True,
          "normalise_func": "normalise_by_max_per_sample"}


def scored(model: nn.Module, x: torch.Tensor, device: str, chunk_size: int) -> tuple[np.ndarray, dict]:
    ctx = testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("saliency"), n_classes=2)
    ctx.device, ctx.chunk_size = device, chunk_size
    result = score(METRICS.get("faithfulness_correlation"), dict(PARAMS), ctx, seed=0)
    return result.values, result.params


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--hidden", type=int, default=2**17)
    parser.add_argument("--cap-mib", type=int, default=384)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--out", default="benchmarks/out/gpu/oom_backoff.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    features, n = 64, 32
    model = nn.Sequential(nn.Linear(features, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 2)).to(args.device).eval()
    x = torch.randn(n, features, generator=torch.Generator().manual_seed(1)).to(args.device)
    free_values, free_params = scored(model, x, args.device, args.chunk_size)
    capped = args.device.startswith("cuda")
    if capped:
        total = torch.cuda.get_device_properties(torch.device(args.device)).total_memory
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(args.cap_mib * 2**20 / total, torch.device(args.device))
    capped_values, capped_params = scored(model, x, args.device, args.chunk_size)
    backoffs = int(capped_params.get("chunk_backoffs", 0))
    diff = float(np.nanmax(np.abs(free_values - capped_values)))
    report = {"device": args.device, "capped": capped, "cap_mib": args.cap_mib if capped else None,
              "hidden": args.hidden, "chunk_size": args.chunk_size, "chunk_backoffs": backoffs,
              "uncapped_backoffs": int(free_params.get("chunk_backoffs", 0)), "max_abs_diff": diff,
              "gpu": torch.cuda.get_device_name(0) if capped else None}
    print("| device | cap MiB | chunk | backoffs (capped / uncapped) | max abs diff |\n|---|---:|---:|---:|---:|")
    print(f"| {args.device} | {report['cap_mib']} | {args.chunk_size} | {backoffs} / {report['uncapped_backoffs']} "
          f"| {diff:.1e} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    ok = diff <= 1e-6 and (backoffs > 0 if capped else backoffs == 0)
    print("OK" if ok else "FAILED: expected backoffs on a capped GPU and equal scores", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
