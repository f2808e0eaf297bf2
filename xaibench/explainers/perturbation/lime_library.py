"""LIME by the lime library (Ribeiro et al., 2016), ``LimeTabularExplainer``, for tabular models."""
from __future__ import annotations

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


@EXPLAINERS.register("lime_library")
@dataclass(frozen=True)
class LimeLibraryExplainer(Explainer):
    """``lime.lime_tabular.LimeTabularExplainer`` in regression mode on the target logit, one sample at a time.

    The contract gives no training data, and the suite's tabular features are standardised, so the explainer is
    built on statistics mean 0, std 1 (training rows ``+1`` and ``-1``): perturbations are ``N(0, I)`` (around the
    sample with ``sample_around_instance``), continuous features are not discretised, all features are kept
    (``feature_selection="none"``). Output: the ridge surrogate's coefficients ``(N, F)`` (per standard deviation).
    ``kernel_width`` None: lime's ``0.75 * sqrt(F)``. lime is non-deterministic across calls even with
    ``random_state`` (lime#231): each sample gets a fresh explainer with ``random_state`` = its seed, under numpy's
    global RNG seeded the same way; the contract test measures 0 difference (tolerance 1e-5).
    """

    modalities = frozenset({Modality.TABULAR})
    positive_params = ("n_samples", "kernel_width")
    n_samples: int = 500
    kernel_width: float | None = None
    sample_around_instance: bool = False

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """One sample at a time: lime's ``n_samples`` perturbations in one prediction call."""
        return CallRows(per_input=0, per_call=min(self.n_samples, TARGET_BATCH))

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        check_tabular("lime_library", x)
        n_features = x.shape[1]
        stats_rows = np.vstack([np.ones(n_features), -np.ones(n_features)])
        rows = []
        for i, seed in enumerate(sample_seeds(x, "lime_library")):
            with seeded(seed, x.device), ignore_warnings():  # this thread's warnings only (quiet.py)
                from lime import lime_tabular  # lazy: only sweeps using this method pay its import

                explainer = lime_tabular.LimeTabularExplainer(
                    stats_rows, mode="regression", discretize_continuous=False, kernel_width=self.kernel_width,
                    sample_around_instance=self.sample_around_instance, feature_selection="none", random_state=seed,
                )
                explanation = explainer.explain_instance(
                    x[i].detach().double().cpu().numpy(), target_logit_fn(model, int(target[i]), x),
                    num_features=n_features, num_samples=self.n_samples,
                )
            weights = np.zeros(n_features)
            for feature, weight in explanation.local_exp[1]:
                weights[feature] = weight
            rows.append(weights)
        return Explanation(torch.as_tensor(np.stack(rows), dtype=x.dtype, device=x.device))
