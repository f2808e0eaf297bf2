"""Integrated Gradients (Sundararajan et al., 2017, "Axiomatic Attribution for Deep Networks")."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from captum.attr import IntegratedGradients
from torch import nn

from xaibench.explainers.base import Explainer, embedding_view, per_token
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation


@EXPLAINERS.register("integrated_gradients")
@dataclass(frozen=True)
class IntegratedGradientsExplainer(Explainer):
    """captum ``IntegratedGradients`` with a zero or constant baseline.

    Records the per-sample completeness (convergence) delta in ``extras["convergence_delta"]``.
    """

    requires = frozenset({Capability.GRADIENTS})
    batch_tolerance = 1e-4
    n_steps: int = 32
    method: Literal["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"] = (
        "gausslegendre"
    )
    baseline: float = 0.0
    internal_batch_size: int | None = None

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        forward, inputs, is_text = embedding_view(model, x)
        baselines = torch.full_like(inputs, self.baseline)
        attributions, delta = IntegratedGradients(forward).attribute(
            inputs, baselines=baselines, target=target, n_steps=self.n_steps, method=self.method,
            internal_batch_size=self.internal_batch_size, return_convergence_delta=True,
        )
        attributions = attributions.detach()
        return Explanation(
            per_token(attributions) if is_text else attributions,
            extras={"convergence_delta": delta.detach().abs().cpu().numpy()},
        )
