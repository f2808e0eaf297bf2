"""Kernel SHAP by the shap library (Lundberg & Lee, 2017), for tabular models."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xaibench.explainers.base import CallRows, Explainer, check_tabular
from xaibench.explainers.perturbation._tabular import TARGET_BATCH, target_logit_fn
from xaibench.explainers.seeding import sample_seeds, seeded
from xaibench.metrics.quiet import ignore_warnings
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation, Modality


@EXPLAINERS.register("shap_library")
@dataclass(frozen=True)
class ShapLibraryExplainer(Explainer):
    """``shap.KernelExplainer`` on the target logit, one sample at a time.

    Background: the explainer contract gives no training data, so the background is one row of ``baseline``
    (``0.0`` = the mean of standardised features: Shapley values w.r.t. ``E[x]``; on a linear model
    ``w * (x - baseline)``). ``n_samples`` coalitions (shap's ``nsamples``), evaluated in one forward;
    ``max_features`` keeps only that many non-zero values (shap's ``l1_reg="num_features(k)"``; None: all, no
    regularisation). shap samples from numpy's global RNG: each sample runs under its own seed, so a batch equals
    each sample alone (tolerance 1e-5). Output ``(N, F)``.
    """

    modalities = frozenset({Modality.TABULAR})
    positive_params = ("n_samples", "max_features")
    n_samples: int = 200
    baseline: float = 0.0
    max_features: int | None = None

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """One sample at a time: shap's coalitions (``n_samples``, at most the ``2**F - 2`` that exist; one background
        row) in one prediction call."""
        features = math.prod(input_shape)
        coalitions = min(self.n_samples, 2**features - 2) if features < 62 else self.n_samples
        return CallRows(per_input=0, per_call=min(coalitions, TARGET_BATCH))

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        check_tabular("shap_library", x)
        background = np.full((1, x.shape[1]), self.baseline, dtype=np.float64)
        l1_reg = False if self.max_features is None else f"num_features({self.max_features})"
        rows = []
        for i, seed in enumerate(sample_seeds(x, "shap_library")):
            predict = target_logit_fn(model, int(target[i]), x)
            with seeded(seed, x.device), ignore_warnings(), _quiet("shap"):  # this thread's warnings (quiet.py)
                import shap  # imported here: it pulls in numba, slow to import for sweeps that never use it

                explainer = shap.KernelExplainer(predict, background, link="identity")
                values = explainer.shap_values(
                    x[i : i + 1].detach().double().cpu().numpy(), nsamples=self.n_samples, l1_reg=l1_reg, silent=True,
                )
            rows.append(np.asarray(values, dtype=np.float64).reshape(-1))
        return Explanation(torch.as_tensor(np.stack(rows), dtype=x.dtype, device=x.device))


class _quiet:
    """Silence a library's logger for the duration of a block."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)

    def __enter__(self) -> None:
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *_: object) -> None:
        self.logger.setLevel(self.level)
