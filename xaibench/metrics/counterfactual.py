"""Counterfactual quality: native metrics as small pure functions (tested against closed forms).

Counterfactuals come as ``(N, ...)`` (one per sample, the shape of ``x``) or ``(N, K, ...)`` (K per sample);
inputs are flattened to ``(N, F)`` / ``(N, K, F)``. A counterfactual is *valid* when the model's predicted class
for it differs from its predicted class for ``x`` (what every counterfactual method here searches for; with
``target=label`` the explained class may be another one). Validity is the share of valid counterfactuals; the
quality metrics (proximity, sparsity, plausibility, diversity) are the mean over a sample's *valid* counterfactuals
only, as DiCE (Mothilal et al. 2020) and CARLA (Pawelczyk et al. 2021) report them, and NaN with the reason where a
sample has none (diversity: fewer than two). Averaged over every slot, a method that fails and returns ``x`` itself
(DiCE's empty slots, a search that never flips) would score a perfect proximity and sparsity of 0.
References: Wachter et al. 2017 (validity, proximity), Mothilal et al. 2020 (DiCE: sparsity, diversity), Verma et
al. 2020 survey (plausibility as distance to the data manifold).
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


def valid_mean(values: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """Mean ``(N,)`` of ``values (N, K)`` over the entries where ``valid (N, K)`` holds (all when None); NaN for a
    row without a valid entry."""
    values = np.asarray(values, dtype=np.float64)
    if valid is None:
        return values.mean(axis=1)
    valid = np.asarray(valid, dtype=bool)
    counts = valid.sum(axis=1)
    sums = np.where(valid, values, 0.0).sum(axis=1)
    return np.divide(sums, counts, out=np.full(len(values), np.nan), where=counts > 0)


def proximity(x: np.ndarray, cf: np.ndarray, p: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Mean ``L_p`` distance ``(N,)`` between ``x (N, F)`` and its counterfactuals ``cf (N, K, F)`` (the valid ones,
    ``valid (N, K)``, when given)."""
    return valid_mean(np.linalg.norm(cf - x[:, None, :], ord=p, axis=-1), valid)


def changed_features(x: np.ndarray, cf: np.ndarray, tolerance: float, valid: np.ndarray | None = None) -> np.ndarray:
    """Mean number of features ``(N,)`` a (valid) counterfactual changes by more than ``tolerance``."""
    return valid_mean((np.abs(cf - x[:, None, :]) > tolerance).sum(axis=-1), valid)


def plausibility(cf: np.ndarray, cf_classes: np.ndarray, train_x: np.ndarray, train_y: np.ndarray,
                 valid: np.ndarray | None = None) -> np.ndarray:
    """Mean L2 distance ``(N,)`` from each (valid) counterfactual to the nearest training sample of its predicted
    class.

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
    if valid is None:
        return out.mean(axis=1)
    return valid_mean(out, valid)  # NaN (no training sample of a valid counterfactual's class) stays NaN


def diversity(cf: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Mean pairwise L2 distance ``(N,)`` between a sample's (valid) counterfactuals (NaN when fewer than 2)."""
    n, k, _ = cf.shape
    mask = np.ones((n, k), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    pairwise = torch.cdist(torch.as_tensor(cf), torch.as_tensor(cf)).numpy()  # (N, K, K)
    pairs = mask[:, :, None] & mask[:, None, :]
    counts = mask.sum(axis=1)
    sums = np.where(pairs, pairwise, 0.0).sum(axis=(1, 2))
    return np.divide(sums, counts * (counts - 1), out=np.full(n, np.nan), where=counts >= 2)


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


def _cf_predictions(ctx) -> np.ndarray:
    """Predicted classes ``(N, K)`` of the counterfactuals."""
    cf = ctx.counterfactuals
    if cf.dim() == ctx.x.dim():
        cf = cf.unsqueeze(1)
    n, k = cf.shape[:2]
    flat = cf.reshape(n * k, *cf.shape[2:]).to(device=ctx.x.device, dtype=ctx.x.dtype)
    return _classes(ctx.model, flat).reshape(n, k)


def _predicted(ctx) -> np.ndarray:
    """The model's predicted class ``(N,)`` for ``x``: what a counterfactual must change."""
    return _classes(ctx.model, ctx.x)


def _classes(model, inputs: torch.Tensor, chunk: int = 256) -> np.ndarray:
    """The model's predicted class ``(M,)`` for each row of ``inputs (M, ...)``, ``chunk`` rows per forward."""
    with torch.no_grad():
        return torch.cat([model(inputs[i:i + chunk]).argmax(dim=1) for i in range(0, len(inputs), chunk)]).cpu().numpy()


def _valid(ctx) -> tuple[np.ndarray, np.ndarray]:
    """Predicted classes ``(N, K)`` of the counterfactuals and whether each is valid ``(N, K)``."""
    classes = _cf_predictions(ctx)
    return classes, classes != _predicted(ctx)[:, None]


def _reasons(valid: np.ndarray, needed: int = 1) -> list[str]:
    """The reason for each sample that has fewer than ``needed`` valid counterfactuals (``valid (N, K)``), else ''."""
    what = "no valid counterfactual" if needed == 1 else f"fewer than {needed} valid counterfactuals"
    return [f"{what} (the prediction did not flip): nothing to measure" if c < needed else ""
            for c in valid.sum(axis=1)]


def _over_valid(ctx, measure) -> tuple[np.ndarray, list[str]]:
    """``measure(x (N, F), cf (N, K, F), valid (N, K)) -> (N,)`` over each sample's valid counterfactuals, and the
    reason for each sample without one."""
    x, cf = _flat(ctx)
    valid = _valid(ctx)[1]
    return measure(x, cf, valid), _reasons(valid)


def cf_validity(ctx) -> np.ndarray:
    return validity(_cf_predictions(ctx), _predicted(ctx))


def cf_proximity_l1(ctx) -> tuple[np.ndarray, list[str]]:
    return _over_valid(ctx, lambda x, cf, valid: proximity(x, cf, p=1, valid=valid))


def cf_proximity_l2(ctx) -> tuple[np.ndarray, list[str]]:
    return _over_valid(ctx, lambda x, cf, valid: proximity(x, cf, p=2, valid=valid))


def cf_sparsity(ctx, tolerance: float = 1e-6) -> tuple[np.ndarray, list[str]]:
    return _over_valid(ctx, lambda x, cf, valid: changed_features(x, cf, tolerance=tolerance, valid=valid))


def cf_plausibility(ctx) -> tuple[np.ndarray, list[str]]:
    if ctx.train is None:
        raise ValueError("cf_plausibility needs the training split")
    _, cf = _flat(ctx)
    classes, valid = _valid(ctx)
    train_x = ctx.train.x.detach().cpu().double().reshape(len(ctx.train.x), -1).numpy()
    values = plausibility(cf, classes, train_x, ctx.train.y.detach().cpu().numpy(), valid=valid)
    return values, [r or ("" if np.isfinite(v) else "no training sample of the counterfactual's predicted class")
                    for v, r in zip(values, _reasons(valid))]


def cf_diversity(ctx) -> tuple[np.ndarray, list[str]]:
    _, cf = _flat(ctx)
    valid = _valid(ctx)[1]
    if cf.shape[1] < 2:
        return diversity(cf, valid), ["one counterfactual per sample: diversity needs several"] * len(cf)
    return diversity(cf, valid), _reasons(valid, needed=2)


def _counterfactual(name: str, native, higher: bool, description: str, **extra) -> MetricSpec:
    return register_metric(MetricSpec(
        name=name, family=Family.COUNTERFACTUAL, higher_is_better=higher, native=native,
        needs_counterfactuals=True, description=description, **extra,
    ))


_counterfactual("cf_validity", cf_validity, True,
                "Wachter et al. 2017: share of counterfactuals the model assigns another class than it assigns "
                "the input.")
_counterfactual("cf_proximity_l1", cf_proximity_l1, False,
                "L1 distance from the input to its valid counterfactuals (mean; NaN without one).",
                modalities=NON_TEXT)
_counterfactual("cf_proximity_l2", cf_proximity_l2, False,
                "L2 distance from the input to its valid counterfactuals (mean; NaN without one).",
                modalities=NON_TEXT)
_counterfactual("cf_sparsity", cf_sparsity, False,
                "Mothilal et al. 2020: number of features (tokens for text) a valid counterfactual changes (mean; "
                "NaN without one).",
                defaults={"tolerance": 1e-6})
_counterfactual("cf_plausibility", cf_plausibility, False,
                "L2 distance from a valid counterfactual to the nearest training sample of its predicted class "
                "(mean; NaN without one).",
                modalities=NON_TEXT)
_counterfactual("cf_diversity", cf_diversity, True,
                "Mothilal et al. 2020: mean pairwise L2 distance between a sample's valid counterfactuals (NaN "
                "with fewer than two).",
                modalities=NON_TEXT)
