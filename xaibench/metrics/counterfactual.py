"""Counterfactual quality: native metrics as small pure functions (tested against closed forms).

Counterfactuals come as ``(N, ...)`` (one per sample, the shape of ``x``) or ``(N, K, ...)`` (K per sample);
inputs are flattened to ``(N, F)`` / ``(N, K, F)``. With K > 1 each metric is the mean over the K counterfactuals,
except diversity, which needs K >= 2. References: Wachter et al. 2017 (validity, proximity), Mothilal et al. 2020
(DiCE: sparsity, diversity), Verma et al. 2020 survey (plausibility as distance to the data manifold).
"""
from __future__ import annotations

import numpy as np
import torch

from xaibench.metrics.spec import NON_TEXT, Family, MetricSpec, register_metric


# Pure functions ---------------------------------------------------------------------------------------------
def validity(cf_predictions: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Share of a sample's counterfactuals whose predicted class differs from the original one.

    Args:
        cf_predictions: predicted classes of the counterfactuals ``(N, K)``.
        original: the explained class ``(N,)``.
    """
    return (np.asarray(cf_predictions) != np.asarray(original)[:, None]).mean(axis=1)


def proximity(x: np.ndarray, cf: np.ndarray, p: int) -> np.ndarray:
    """Mean ``L_p`` distance ``(N,)`` between ``x (N, F)`` and its counterfactuals ``cf (N, K, F)``."""
    return np.linalg.norm(cf - x[:, None, :], ord=p, axis=-1).mean(axis=1)


def changed_features(x: np.ndarray, cf: np.ndarray, tolerance: float) -> np.ndarray:
    """Mean number of features ``(N,)`` a counterfactual changes by more than ``tolerance``."""
    return (np.abs(cf - x[:, None, :]) > tolerance).sum(axis=-1).mean(axis=1)


def plausibility(cf: np.ndarray, cf_classes: np.ndarray, train_x: np.ndarray, train_y: np.ndarray) -> np.ndarray:
    """Mean L2 distance ``(N,)`` from each counterfactual to the nearest training sample of its predicted class.

    NaN when the training split has no sample of that class.
    """
    n, k, _ = cf.shape
    out = np.full((n, k), np.nan)
    for label in np.unique(cf_classes):
        pool = train_x[train_y == label]
        if len(pool) == 0:
            continue
        where = cf_classes == label
        distances = torch.cdist(torch.as_tensor(cf[where]), torch.as_tensor(pool)).min(dim=1).values.numpy()
        out[where] = distances
    return out.mean(axis=1)


def diversity(cf: np.ndarray) -> np.ndarray:
    """Mean pairwise L2 distance ``(N,)`` between a sample's K counterfactuals (NaN when K < 2)."""
    n, k, _ = cf.shape
    if k < 2:
        return np.full(n, np.nan)
    pairwise = torch.cdist(torch.as_tensor(cf), torch.as_tensor(cf)).numpy()  # (N, K, K)
    return pairwise.sum(axis=(1, 2)) / (k * (k - 1))


# Context -> arrays ------------------------------------------------------------------------------------------
def _flat(ctx) -> tuple[np.ndarray, np.ndarray]:
    """``x (N, F)`` and ``cf (N, K, F)`` as float64 numpy."""
    if ctx.counterfactuals is None:
        raise ValueError("counterfactual metrics need the method's counterfactuals")
    x = ctx.x.detach().cpu().double().reshape(len(ctx.x), -1).numpy()
    cf = ctx.counterfactuals.detach().cpu()
    if cf.dim() == ctx.x.dim():
        cf = cf.unsqueeze(1)
    if tuple(cf.shape[2:]) != tuple(ctx.x.shape[1:]) or len(cf) != len(ctx.x):
        raise ValueError(f"counterfactuals {tuple(ctx.counterfactuals.shape)} do not match inputs {tuple(ctx.x.shape)}")
    return x, cf.double().reshape(cf.shape[0], cf.shape[1], -1).numpy()


def _cf_predictions(ctx, chunk: int = 256) -> np.ndarray:
    """Predicted classes ``(N, K)`` of the counterfactuals."""
    cf = ctx.counterfactuals
    if cf.dim() == ctx.x.dim():
        cf = cf.unsqueeze(1)
    n, k = cf.shape[:2]
    flat = cf.reshape(n * k, *cf.shape[2:]).to(device=ctx.x.device, dtype=ctx.x.dtype)
    with torch.no_grad():
        predicted = torch.cat([ctx.model(flat[i:i + chunk]).argmax(dim=1) for i in range(0, len(flat), chunk)])
    return predicted.cpu().numpy().reshape(n, k)


def cf_validity(ctx) -> np.ndarray:
    return validity(_cf_predictions(ctx), ctx.targets.detach().cpu().numpy())


def cf_proximity_l1(ctx) -> np.ndarray:
    return proximity(*_flat(ctx), p=1)


def cf_proximity_l2(ctx) -> np.ndarray:
    return proximity(*_flat(ctx), p=2)


def cf_sparsity(ctx, tolerance: float = 1e-6) -> np.ndarray:
    return changed_features(*_flat(ctx), tolerance=tolerance)


def cf_plausibility(ctx) -> np.ndarray:
    if ctx.train is None:
        raise ValueError("cf_plausibility needs the training split")
    _, cf = _flat(ctx)
    train_x = ctx.train.x.detach().cpu().double().reshape(len(ctx.train.x), -1).numpy()
    return plausibility(cf, _cf_predictions(ctx), train_x, ctx.train.y.detach().cpu().numpy())


def cf_diversity(ctx) -> np.ndarray:
    return diversity(_flat(ctx)[1])


def _counterfactual(name: str, native, higher: bool, description: str, **extra) -> MetricSpec:
    return register_metric(MetricSpec(
        name=name, family=Family.COUNTERFACTUAL, higher_is_better=higher, native=native,
        needs_counterfactuals=True, description=description, **extra,
    ))


_counterfactual("cf_validity", cf_validity, True,
                "Wachter et al. 2017: share of counterfactuals the model assigns another class than the original.")
_counterfactual("cf_proximity_l1", cf_proximity_l1, False, "L1 distance from the input to its counterfactual.",
                modalities=NON_TEXT)
_counterfactual("cf_proximity_l2", cf_proximity_l2, False, "L2 distance from the input to its counterfactual.",
                modalities=NON_TEXT)
_counterfactual("cf_sparsity", cf_sparsity, False,
                "Mothilal et al. 2020: number of features (tokens for text) the counterfactual changes.",
                defaults={"tolerance": 1e-6})
_counterfactual("cf_plausibility", cf_plausibility, False,
                "L2 distance from the counterfactual to the nearest training sample of its predicted class.",
                modalities=NON_TEXT, nan_reason="no training sample of the counterfactual's predicted class")
_counterfactual("cf_diversity", cf_diversity, True,
                "Mothilal et al. 2020: mean pairwise L2 distance between a sample's counterfactuals.",
                modalities=NON_TEXT, nan_reason="one counterfactual per sample: diversity needs several")
