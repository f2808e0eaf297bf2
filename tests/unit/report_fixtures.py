"""A quickstart-like results table made by hand (full schema), whose best cells, ties and warnings are known.

Setting 1, ``mlp`` (accuracy 0.95) on ``csv_table`` labelled ``diabetes``; setting 2, an underfit ``tiny`` model
(accuracy 0.10) on ``digits``. Methods ``ig``, ``saliency`` and the ``random`` control; 8 samples each, the same
noise for every method so orderings are exact.

=========  ===========================  =================================  ==============================
metric     diabetes / mlp               digits / tiny                      notes
=========  ===========================  =================================  ==============================
faith ↑    ig .90 best                  ig .60 best, saliency .59 tie      saliency within ig's CI on digits
sens ↓     saliency .10 best (2 NaN)    ig .20 best                        NaN rate 25% on saliency/diabetes
mprt ↑     saliency .30 best,           ig .50 best                        random, a control, is not bold
           random .90 (control: c)                                         (a reference row): warning c
=========  ===========================  =================================  ==============================
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from xaibench.results.schema import COLUMNS, conform

FAMILY = {"faith": ("faithfulness", True), "sens": ("stability", False), "mprt": ("randomisation", True)}
MEANS = {
    ("mlp", "csv_table"): {"faith": {"ig": 0.90, "saliency": 0.50, "random": 0.00},
                           "sens": {"ig": 0.30, "saliency": 0.10, "random": 1.50},
                           "mprt": {"ig": 0.20, "saliency": 0.30, "random": 0.90}},
    ("tiny", "digits"): {"faith": {"ig": 0.60, "saliency": 0.59, "random": 0.00},
                         "sens": {"ig": 0.20, "saliency": 0.40, "random": 1.40},
                         "mprt": {"ig": 0.50, "saliency": 0.40, "random": 0.30}},
}
N = 8
NOISE = np.random.default_rng(0).normal(0.0, 0.02, N)


def _defaults() -> dict:
    values = {"string": "", "int64": 0, "float64": np.nan, "bool": False}
    return {c: values[d] for c, d in COLUMNS.items()}


def quickstart_like_table() -> pd.DataFrame:
    frames = []
    for (model, dataset), metrics in MEANS.items():
        for metric, methods in metrics.items():
            family, higher = FAMILY[metric]
            for method, mean in methods.items():
                values = mean + NOISE
                status = ["ok"] * N
                if (model, metric, method) == ("mlp", "sens", "saliency"):
                    values[:2], status[:2] = np.nan, ["nan", "nan"]
                frames.append(pd.DataFrame({
                    **_defaults(), "schema_version": 1, "model": model, "dataset": dataset, "method": method,
                    "metric": metric, "family": family, "higher_is_better": higher,
                    "sample_id": [f"s{i}" for i in range(N)], "target": 0, "seed": 0, "value": values,
                    "status": status, "params": "{}", "method_params": "{}", "model_params": "{}",
                    "dataset_params": '{"path": "d.csv"}' if dataset == "csv_table" else "{}", "n_samples": N,
                    "model_accuracy": 0.95 if model == "mlp" else 0.10,
                    "model_flag": "underfit" if model == "tiny" else "",
                    "cell_key": f"{model}-{dataset}-{method}",
                }))
    table = conform(pd.concat(frames, ignore_index=True))
    return table.assign(dataset_label=np.where(table["dataset"] == "csv_table", "diabetes", ""),
                        model_label="")
