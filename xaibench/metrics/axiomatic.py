"""Axiomatic properties of explanations (Quantus' "axiomatic" category).

Input invariance (Kindermans et al., 2019, "The (Un)reliability of Saliency Methods"): a network ``f2`` built
from ``f`` by absorbing a constant input shift ``c`` into the first layer's bias (``b2 = b - W c``) computes
the same function of ``x + c`` as ``f`` of ``x``; an input-invariant method explains ``f2`` at ``x + c`` exactly
as it explains ``f`` at ``x``. Gradients are invariant; input x gradient, zero-baseline integrated gradients,
DeepLIFT with a zero reference and LRP-z are not (their reference is fixed in input space).
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xaibench.explainers.output import explained_output
from xaibench.metrics.spec import NON_TEXT, Family, MetricSpec, register_metric
from xaibench.types import Capability

_FIRST_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _first_layer(model: nn.Module) -> nn.Module:
    """The first Linear/Conv layer in depth-first registration order (forward order for sequential models; the
    shift check in ``input_invariance`` catches models where it is not)."""
    first = next((m for m in model.modules() if isinstance(m, _FIRST_LAYERS)), None)
    if first is None:
        raise ValueError("input_invariance needs a model whose first weighted layer is nn.Linear / nn.Conv1d / "
                         "nn.Conv2d")
    return first


def _pad_with(layer: nn.Module, value: float) -> None:
    """A zero-padded conv seen by ``x + c`` must pad with ``c`` to compute what it computed on ``x``: its padding
    moves into a forward pre-hook padding with ``value`` (the module stays the same conv layer for hooks)."""
    if isinstance(layer, nn.Linear) or all(p == 0 for p in layer.padding):
        return
    if isinstance(layer.padding, str) or layer.padding_mode != "zeros":
        raise ValueError(f"input_invariance: cannot absorb a shift into a conv with padding {layer.padding!r} "
                         f"({layer.padding_mode})")
    pads = tuple(int(p) for p in reversed(layer.padding) for _ in range(2))  # F.pad order: last dim first
    layer.padding = (0,) * len(layer.padding)
    layer.register_forward_pre_hook(lambda _module, inputs: (F.pad(inputs[0], pads, value=value), *inputs[1:]))


def shifted_model(model: nn.Module, shift: float) -> nn.Module:
    """A copy ``f2`` of ``model`` with ``f2(x + shift) == f(x)``: the shift absorbed in the first layer's bias."""
    f2 = copy.deepcopy(model).eval()
    layer = _first_layer(f2)
    with torch.no_grad():
        absorbed = layer.weight.sum(dim=tuple(range(1, layer.weight.dim()))) * shift  # (out,)
        if layer.bias is None:
            layer.bias = nn.Parameter(torch.zeros_like(absorbed))
        layer.bias -= absorbed
    _pad_with(layer, shift)
    return f2


def relative_l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``||a - b||_1 / ||a||_1`` per sample ``(N,)`` (NaN where ``a`` is all zero)."""
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    norm = np.abs(a).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm > 0, np.abs(a - b).sum(axis=1) / norm, np.nan)


def input_invariance(ctx, shift: float = 1.0, tolerance: float = 1e-4) -> np.ndarray:
    """Relative L1 change ``(N,)`` of the explanation when the input and the first-layer bias are shifted."""
    if ctx.explainer is None:
        raise ValueError("input_invariance re-explains the shifted model: it needs the cell's explainer")
    model = ctx.model.eval()
    f2 = shifted_model(model, shift)
    x = ctx.x.detach()
    with torch.no_grad():
        gap = (f2(x + shift) - model(x)).abs().max().item()
        scale = 1.0 + model(x).abs().max().item()
    if gap > tolerance * scale:
        raise ValueError(f"input_invariance: the shifted model differs from the original by {gap:.2e}; the first "
                         f"weighted layer is not where the input enters")
    explained = explained_output(f2, ctx.explain_output)  # the output the stored attributions explain
    shifted = ctx.explainer.explain(explained, x + shift, ctx.targets).attributions.detach().cpu().double().numpy()
    return relative_l1(ctx.attributions.detach().cpu().double().numpy(), shifted)


register_metric(MetricSpec(
    name="input_invariance",
    family=Family.AXIOMATIC,
    higher_is_better=False,
    native=input_invariance,
    needs_explain_func=True,
    requires=frozenset({Capability.GRADIENTS}),  # a torch module whose first layer can be edited
    defaults={"shift": 1.0, "tolerance": 1e-4},
    modalities=NON_TEXT,
    nan_reason="all-zero attribution: the relative change is undefined",
    description="Kindermans et al. 2019: relative L1 change ||a(f, x) - a(f2, x + c)||_1 / ||a(f, x)||_1 of the "
                "explanation when a constant shift c is added to the input and absorbed in the first layer's bias "
                "(0 = input-invariant). Stochastic methods redraw their noise for x + c, which adds Monte Carlo error.",
))
