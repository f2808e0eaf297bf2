"""Integrated Gradients (Sundararajan et al., 2017, "Axiomatic Attribution for Deep Networks")."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from captum.attr import IntegratedGradients
from torch import nn

from xaibench.explainers.base import Explainer, diagnostics_enabled, rows_per_forward
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
    With ``internal_batch_size`` unset, a caller's :func:`~xaibench.explainers.base.rows_per_forward` (the fast
    engine re-explaining many perturbed inputs in one call) sets the rows per forward (at least one path step of
    every input); only the float summation order over path steps changes. There, without diagnostics, the
    gradient is taken of the summed target outputs (:class:`~xaibench.explainers.inputs.SummedTargetForward`:
    bit for bit captum's gradient, without its per-row backward seeds).
    """

    requires = frozenset({Capability.GRADIENTS})
    batch_tolerance = 1e-4
    positive_params = ("n_steps", "internal_batch_size")
    takes_rows_hint = True
    n_steps: int = 32
    method: Literal["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"] = (
        "gausslegendre"
    )
    baseline: Baseline = 0.0
    internal_batch_size: int | None = None

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view = GradientView.of(model, x)
        with_delta = diagnostics_enabled()
        if rows_per_forward() is not None and not with_delta:  # re-explaining: one backward seed per forward
            forward, target_arg, forward_args = SummedTargetForward(view.forward), None, (target,)
        else:
            forward, target_arg, forward_args = view.forward, target, None
        result = IntegratedGradients(forward).attribute(
            view.inputs, baselines=view.baselines(self.baseline), target=target_arg,
            additional_forward_args=forward_args, n_steps=self.n_steps, method=self.method,
            internal_batch_size=self._rows_per_forward(len(x)), return_convergence_delta=with_delta,
        )
        if not with_delta:
            return Explanation(view.to_output(result))
        attributions, delta = result
        return Explanation(view.to_output(attributions), extras={"convergence_delta": delta.detach().abs().cpu().numpy()})

    def _rows_per_forward(self, n_inputs: int) -> int | None:
        """``internal_batch_size``, else the caller's hint when one forward of every step would exceed it."""
        hint = rows_per_forward()
        if self.internal_batch_size is not None or hint is None or n_inputs * self.n_steps <= hint:
            return self.internal_batch_size
        return max(hint, n_inputs)  # captum: at least one path step of every input per forward
