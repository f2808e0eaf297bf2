"""Integrated Gradients (Sundararajan et al., 2017, "Axiomatic Attribution for Deep Networks")."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import torch
from captum.attr import IntegratedGradients
from captum.attr._utils.approximation_methods import approximation_parameters
from torch import nn

from xaibench.explainers.base import CallRows, Explainer, diagnostics_enabled, summed_gradients_enabled
from xaibench.explainers.inputs import Baseline, GradientView, SummedTargetForward
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation, Modality


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
    bit for bit captum's gradient, without its per-row backward seeds) by :func:`summed_path_attributions`:
    captum's estimator, operation for operation, without its per-call argument handling (the same maps bit for bit).
    """

    requires = frozenset({Capability.GRADIENTS})
    target_gradient_only = True
    batch_tolerance = 1e-4
    positive_params = ("n_steps", "internal_batch_size")
    n_steps: int = 32
    method: Literal["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"] = (
        "gausslegendre"
    )
    baseline: Baseline = 0.0
    internal_batch_size: int | None = None

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """The whole path, ``n_steps`` rows per input, in one forward and backward; with ``internal_batch_size``
        captum forwards about that many rows (at least one path step of every input)."""
        if self.internal_batch_size is None:
            return CallRows(per_input=self.n_steps)
        return CallRows(per_input=1, per_call=self.internal_batch_size)

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view = GradientView.of(model, x)
        with_delta = diagnostics_enabled()
        if summed_gradients_enabled() and not with_delta and self.internal_batch_size is None:
            attributions = summed_path_attributions(SummedTargetForward(view.forward), view.inputs,
                                                    view.baselines(self.baseline), target, self.n_steps, self.method)
            return Explanation(view.to_output(attributions))
        result = IntegratedGradients(view.forward).attribute(
            view.inputs, baselines=view.baselines(self.baseline), target=target, n_steps=self.n_steps,
            method=self.method, internal_batch_size=self.internal_batch_size, return_convergence_delta=with_delta,
        )
        if not with_delta:
            return Explanation(view.to_output(result))
        attributions, delta = result
        return Explanation(view.to_output(attributions), extras={"convergence_delta": delta.detach().abs().cpu().numpy()})


@functools.lru_cache(maxsize=None)
def _quadrature(method: str, n_steps: int) -> tuple[tuple[float, ...], torch.Tensor]:
    """captum's path points ``alphas`` and step weights (``approximation_parameters``), the weights as captum
    multiplies them: float32 ``(n_steps, 1)``. Cached: Gauss-Legendre's nodes cost ~0.6 ms per call (``leggauss``)."""
    step_sizes_func, alphas_func = approximation_parameters(method)
    return tuple(alphas_func(n_steps)), torch.tensor(step_sizes_func(n_steps)).float().view(n_steps, 1)


def summed_path_attributions(forward: SummedTargetForward, inputs: torch.Tensor, baselines: torch.Tensor,
                             target: torch.Tensor, n_steps: int, method: str) -> torch.Tensor:
    """captum's ``IntegratedGradients._attribute`` on one input tensor, with the gradient of the summed targets.

    The same operations in the same order as captum (path ``cat([x' + a (x - x') for a in alphas])``, targets
    repeated per path step, ``grad * step_size`` summed over steps, times ``x - x'``), so the maps are captum's bit
    for bit (``tests/unit/test_metrics_fast.py::test_summed_target_gradients_are_captums_gradients_bit_for_bit``).
    Left out: captum's per-call input formatting, argument expansion and quadrature (about 1 ms of Python per
    call, most of a small tabular model's re-explanation: ``docs/speed.md``).

    Args:
        forward: ``(R, ...), (R,) -> (1,)``, the summed target outputs.
        inputs: ``(N, ...)`` float inputs; ``baselines`` the same shape.
        target: ``(N,)`` class indices.

    Returns:
        ``(N, ...)`` attributions.
    """
    alphas, step_sizes = _quadrature(method, n_steps)
    inputs, n = inputs.detach(), inputs.shape[0]
    difference = inputs - baselines
    path = path_points(baselines, difference, alphas).requires_grad_()
    (grads,) = torch.autograd.grad(torch.unbind(forward(path, torch.cat([target] * n_steps, dim=0))), path)
    scaled = grads.contiguous().view(n_steps, -1) * step_sizes.to(grads.device)
    return torch.sum(scaled.reshape(n_steps, n, *grads.shape[1:]), dim=0) * difference


def path_points(baselines: torch.Tensor, difference: torch.Tensor, alphas: tuple[float, ...]) -> torch.Tensor:
    """captum's path ``cat([x' + a (x - x') for a in alphas])`` ``(len(alphas) * N, ...)`` from ``x - x'``.

    float32 / float64: one broadcast ``x' + alphas * (x - x')`` with the alphas in the inputs' dtype, the same bits
    (torch multiplies a float32 tensor by a Python float in float32, as by a float32 element) in 3 operators instead
    of 3 per path step (96 at 32 steps, each a Python call under the fast engine's pooling dispatch mode); other
    dtypes (computed in a wider type with a Python scalar) keep captum's loop.
    """
    if difference.dtype not in (torch.float32, torch.float64):
        return torch.cat([baselines + alpha * difference for alpha in alphas], dim=0)
    weights = torch.tensor(alphas, dtype=difference.dtype, device=difference.device)
    weights = weights.view(-1, *[1] * difference.dim())
    return (baselines + weights * difference).reshape(-1, *difference.shape[1:])
