"""A real CUDA out-of-memory backoff in each chunked stage: it halves, retries, records it, and gives the same.

A tabular MLP with a wide hidden layer (``--hidden`` units: 512 KiB of activations per row at 2**17) is run
twice, uncapped, then with the process capped by ``torch.cuda.set_per_process_memory_fraction`` to about
``--cap-mib``, so that the first chunks run out of memory:

- ``forward chunks``: FaithfulnessCorrelation's perturbed forwards (chunks of 1,024 rows = 512 MiB);
- ``re-explanations``: MaxSensitivity with saliency (32 perturbation steps x 32 inputs in one call of 1,024 rows
  with their backward);
- ``explanation stage``: saliency on 1,024 inputs in one batch (``explain_arrays``, the sweep's explanation stage).

Each capped run must report halvings (``ScoreResult.backoffs`` / ``ExplanationRecord.backoffs``: the rows'
``oom_backoffs`` column) and give the uncapped numbers (FaithfulnessCorrelation 1e-6 absolute; the others 1e-5
relative: another batch split is another float summation order). On CPU there is no cap (plumbing check only,
a narrower layer: backoffs 0, the same numbers). Prints a table, writes JSON.

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

from xaibench.engine.stages import explain_arrays
from xaibench.metrics import testing
from xaibench.metrics.quantus_adapter import score
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.types import Modality

FAITHFULNESS = {"similarity_func": "correlation_pearson", "nr_runs": 64, "subset_size": 16, "abs": False,
                "perturb_func": "batch_baseline_replacement_by_indices", "perturb_baseline": 0.0, "normalise": True,
                "normalise_func": "normalise_by_max_per_sample"}
SENSITIVITY = {"nr_samples": 32}
FEATURES, N, N_EXPLAINED = 64, 32, 1024


def run_stages(model: nn.Module, x: torch.Tensor, wide: torch.Tensor, device: str, chunk_size: int) -> dict:
    """Each stage's numbers and halvings: ``{stage: (values, backoffs)}``."""
    saliency = EXPLAINERS.create("saliency")
    ctx = testing.context(model, Modality.TABULAR, x, saliency, n_classes=2)
    ctx.device, ctx.chunk_size = device, chunk_size
    out = {}
    for stage, metric, params in (("forward chunks", "faithfulness_correlation", FAITHFULNESS),
                                  ("re-explanations", "max_sensitivity", SENSITIVITY)):
        result = score(METRICS.get(metric), dict(params), ctx, seed=0)
        out[stage] = (result.values, result.backoffs)
    record = explain_arrays(saliency, model, wide, None, modality=Modality.TABULAR, seed=0,
                            batch_size=len(wide), device=device)
    out["explanation stage"] = (record.attributions.numpy().reshape(-1), record.backoffs)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--hidden", type=int, default=None, help="default: 2**17 on CUDA, 2**10 on CPU")
    parser.add_argument("--cap-mib", type=int, default=384)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--out", default="benchmarks/out/gpu/oom_backoff.json")
    args = parser.parse_args()
    capped = args.device.startswith("cuda")
    hidden = args.hidden or (2**17 if capped else 2**10)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, 2)).to(args.device).eval()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(N, FEATURES, generator=generator).to(args.device)
    wide = torch.randn(N_EXPLAINED, FEATURES, generator=generator).to(args.device)
    free = run_stages(model, x, wide, args.device, args.chunk_size)
    if capped:
        total = torch.cuda.get_device_properties(torch.device(args.device)).total_memory
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(args.cap_mib * 2**20 / total, torch.device(args.device))
    limited = run_stages(model, x, wide, args.device, args.chunk_size)
    rows, ok = [], True
    print("| stage | device | cap MiB | backoffs (capped / uncapped) | max abs diff | max rel diff |")
    print("|---|---|---:|---:|---:|---:|")
    for stage, (values, backoffs) in limited.items():
        reference, free_backoffs = free[stage]
        diff = np.abs(values - reference)
        abs_diff = float(np.nanmax(diff))
        rel_diff = float(np.nanmax(diff / np.maximum(np.abs(reference), 1e-12)))
        same = abs_diff <= 1e-6 if stage == "forward chunks" else bool(np.allclose(values, reference, rtol=1e-5,
                                                                                    atol=1e-7, equal_nan=True))
        halved = backoffs > 0 if capped else backoffs == 0
        ok = ok and same and halved and free_backoffs == 0
        rows.append({"stage": stage, "backoffs": int(backoffs), "uncapped_backoffs": int(free_backoffs),
                     "max_abs_diff": abs_diff, "max_rel_diff": rel_diff, "same": same})
        print(f"| {stage} | {args.device} | {args.cap_mib if capped else '-'} | {backoffs} / {free_backoffs} "
              f"| {abs_diff:.1e} | {rel_diff:.1e} |")
    report = {"device": args.device, "capped": capped, "cap_mib": args.cap_mib if capped else None,
              "hidden": hidden, "chunk_size": args.chunk_size, "stages": rows, "ok": ok,
              "gpu": torch.cuda.get_device_name(0) if capped else None}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print("OK" if ok else "FAILED: expected halvings on a capped GPU (none uncapped) and the same numbers",
          file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
