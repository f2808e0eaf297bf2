"""Integrated Gradients (Sundararajan et al., 2017, "Axiomatic Attribution for Deep Networks")."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from captum.attr import IntegratedGradients
from torch import nn

from xaibench.explainers.base import Explainer, diagnostics_enabled, summed_gradients_enabled
from xaibench.explainers.inputs import Baseline, GradientView, SummedTargetForward
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation


@EXPLAINERS.register("integrated_gradients")
@dataclass(frozen=True)
class IntegratedGradientsExplainer(Explainer):
    """captum ``IntegratedGradients`` from a chosen baseline to ``x``.

    Attributions ``(x - x') * mean_alpha grad f(x' + alpha (x - x'))`` shaped like ``x`` (text: per token, from the
    pad-token embeddings). ``baseline``: a constant, ``"mean"`` or ``"uniform"`` (see ``explainers/inputs.py``).
    Records the per-sample completeness error ``|sum(attr) - (f(x) - f(x'))|`` in ``extras["convergence_delta"]``.
    Deterministic; batch tolerance 1e-4 (``n_steps`` x batch rows through one forward: float reassociation).
    Under :func:`~xaibench.explainers.base.summed_gradients` without diagnostics (the fast engine re-explaining),
    the gradient is taken of the summed target outputs (:class:`~xaibench.explainers.inputs.SummedTargetForward`:
    bit for bit captum's gradient, without its per-row backward seeds).
    """

    requires = frozenset({Capability.GRADIENTS})
    batch_tolerance = 1e-4
    positive_params = ("n_steps", "internal_batch_size")
    n_steps: int = 32
    method: Literal["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"] = (
        "gausslegendre"
    )
    baseline: Baseline = 0.0
    internal_batch_size: int | None = None

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view = GradientView.of(model, x)
        with_delta = diagnostics_enabled()
        if summed_gradients_enabled() and not with_delta:  # one backward seed per forward
            forward, target_arg, forward_args = SummedTargetForward(view.forward), None, (target,)
        else:
            forward, target_arg, forward_args = view.forward, target, None
        result = IntegratedGradients(forward).attribute(
            view.inputs, baselines=view.baselines(self.baseline), target=target_arg,
            additional_forward_args=forward_args, n_steps=self.n_steps, method=self.method,
            internal_batch_size=self.internal_batch_size, return_convergence_delta=with_delta,
        )
        if not with_delta:
            return Explanation(view.to_output(result))
        attributions, delta = result
        return Explanation(view.to_output(attributions), extras={"convergence_delta": delta.detach().abs().cpu().numpy()})
