"""Distance to the exact Shapley values of the model (Shapley, 1953; as a ground truth for attributions:
Lundberg & Lee, 2017; XAI-Bench, Liu et al., 2021), computed by enumerating all ``2^F`` coalitions.

Player ``i``'s value ``phi_i = sum_{S not containing i} |S|! (F - |S| - 1)! / F! [v(S + i) - v(S)]`` with

- ``value_function: baseline``: ``v(S) = f(x_S, b)``, absent features set to the constant ``baseline`` (what
  Kernel SHAP, occlusion and integrated gradients with that baseline approximate; standardised data: ``0.0`` is
  the training mean);
- ``value_function: marginal``: ``v(S) = mean_z f(x_S, z_{not S})`` over the first ``n_background`` training rows
  (interventional SHAP, as shap's explainers with a background set).

``f`` is the cell's explained output for the target (``explain_output``: logit, log-odds...; ``softmax``: the
class probability instead). Exact enumeration is only possible for few features:
tabular data with at most ``max_features`` columns (synthetic_tabular has 10 by default); wider tables get
``not_applicable`` rows, decided from the data's shape before anything runs (``engine/applicability.py``). The score is the relative L2 error ``||a - phi|| / ||phi||`` (0: exactly the Shapley values).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from xaibench.metrics._positions import scored_model, target_output
from xaibench.metrics.spec import Family, MetricSpec, register_metric
from xaibench.types import Modality


def coalitions(n_features: int) -> np.ndarray:
    """All ``2^F`` coalitions as a bool matrix ``(2^F, F)``; row ``s`` holds feature ``i`` iff bit ``i`` of ``s``."""
    index = np.arange(2**n_features)[:, None]
    return (index >> np.arange(n_features)[None, :]) & 1 == 1


def shapley_from_values(values: np.ndarray, n_features: int) -> np.ndarray:
    """Exact Shapley values ``(F,)`` from the value of every coalition ``values (2^F,)`` (bit-indexed)."""
    members = coalitions(n_features)
    sizes = members.sum(axis=1)
    weights = np.array([math.factorial(s) * math.factorial(n_features - s - 1) / math.factorial(n_features)
                        if s < n_features else 0.0 for s in sizes])
    phi = np.zeros(n_features)
    for i in range(n_features):
        without = ~members[:, i]
        phi[i] = np.sum(weights[without] * (values[np.flatnonzero(without) | (1 << i)] - values[without]))
    return phi


def exact_shapley(ctx, value_function: str, baseline: float, n_background: int, softmax: bool) -> np.ndarray:
    """Exact Shapley values ``(N, F)`` of the target output for every sample of ``ctx``."""
    x = ctx.x.detach()
    n, f = x.shape
    members = torch.as_tensor(coalitions(f), device=x.device)  # (2^F, F)
    if value_function == "baseline":
        background = torch.full((1, f), float(baseline), dtype=x.dtype, device=x.device)
    else:
        if ctx.train is None or len(ctx.train.x) == 0:
            raise ValueError("shapley_distance with value_function=marginal needs the training split")
        background = ctx.train.x[:n_background].to(x.device, x.dtype).reshape(-1, f)
    model = scored_model(ctx, softmax)  # the explained output, or the probability with softmax
    phi = np.zeros((n, f))
    for i in range(n):
        mixed = torch.where(members[:, None, :], x[i][None, None, :], background[None, :, :])  # (2^F, B, F)
        target = ctx.targets[i].expand(mixed.shape[0] * mixed.shape[1])
        values = target_output(model, mixed.reshape(-1, f), target, softmax).reshape(mixed.shape[:2]).mean(axis=1)
        phi[i] = shapley_from_values(values, f)
    return phi


def relative_l2(a: np.ndarray, reference: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(reference, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm > 0, np.linalg.norm(a - reference, axis=1) / norm, np.nan)


def shapley_distance(ctx, value_function: str = "baseline", baseline: float = 0.0, n_background: int = 32,
                     softmax: bool = False, max_features: int = 12) -> np.ndarray:
    if value_function not in ("baseline", "marginal"):
        raise ValueError(f"shapley_distance: value_function must be baseline or marginal, got {value_function!r}")
    n_features = int(ctx.x.shape[1])
    if ctx.x.dim() != 2 or n_features > max_features:
        raise ValueError(f"shapley_distance enumerates 2^F coalitions: {n_features} features exceed max_features="
                         f"{max_features} (raise it at 2^F forwards per sample, or use fewer features)")
    phi = exact_shapley(ctx, value_function, baseline, n_background, softmax)
    a = ctx.attributions.detach().cpu().double().reshape(len(ctx.x), -1).numpy()
    return relative_l2(a, phi)


register_metric(MetricSpec(
    name="shapley_distance",
    family=Family.GROUND_TRUTH,
    higher_is_better=False,
    native=shapley_distance,
    defaults={"value_function": "baseline", "baseline": 0.0, "n_background": 32, "softmax": False,
              "max_features": 12},
    max_features_param="max_features",
    modalities=frozenset({Modality.TABULAR}),
    choices={"value_function": ("baseline", "marginal")},
    nan_reason="the exact Shapley values are all zero (the target output ignores every feature)",
    description="Relative L2 distance ||a - phi|| / ||phi|| to the exact Shapley values phi of the cell's explained "
                "output (explain_output; softmax: the class probability), all 2^F coalitions enumerated (baseline "
                "or marginal value function; at most max_features).",
))
