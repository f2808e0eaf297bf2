"""Small pure functions around Quantus: normalisers, curve reductions, degenerate-sample checks.

Each is tested against a closed form or numpy (tests/unit/test_metrics_closed_form.py). Configs name the
normaliser (``normalise_func: normalise_by_max_per_sample``); the adapter looks names up here before Quantus.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def normalise_by_max_per_sample(a: np.ndarray, **_: Any) -> np.ndarray:
    """Divide each sample by its own max absolute value (all-zero samples stay zero).

    Quantus' default ``normalise_by_max`` divides by the max over the *whole batch*, so a sample's score would
    depend on which other samples share its batch. Shapes: ``(N, ...) -> (N, ...)``; a 1-D array is one sample.
    """
    a = np.asarray(a)
    if a.ndim <= 1:
        peak = np.max(np.abs(a)) if a.size else 0.0
        return a / peak if peak > 0 else a.copy()
    peak = np.max(np.abs(a.reshape(a.shape[0], -1)), axis=1).reshape(-1, *([1] * (a.ndim - 1)))
    return np.divide(a, peak, out=np.zeros_like(a, dtype=np.result_type(a, np.float32)), where=peak > 0)


def euclidean_distance(u: np.ndarray, v: np.ndarray, **_: Any) -> float:
    """L2 distance of two flat vectors, callable by ``scipy.spatial.distance.cdist``.

    Quantus' Sufficiency calls ``cdist(a, a, distance_func, V=None)``; scipy's named metrics other than
    ``seuclidean`` reject ``V``, a callable takes it and ignores it.
    """
    return float(np.sqrt(np.sum((np.asarray(u, dtype=np.float64) - np.asarray(v, dtype=np.float64)) ** 2)))


def mse_optimally_scaled(a: np.ndarray, b: np.ndarray, batched: bool = False, **_: Any) -> np.ndarray:
    """Infidelity's squared error after the optimal rescaling of the attribution terms (Yeh et al. 2019).

    ``mean_k (a_k - beta b_k)^2`` with ``beta = sum_k a_k b_k / sum_k b_k^2`` (0 where every ``b_k`` is 0): the
    error of the best multiple of the explanation, so a map's arbitrary scale (a random map's noise, a Sobel map's
    gradient magnitudes) does not decide it. Yeh et al. call infidelity meaningful only at this scale; captum's
    ``normalize=True`` is the same. Quantus' ``mse`` is the unscaled error.

    Args:
        a: output changes ``(N, K)`` (``(K,)`` when not ``batched``).
        b: attribution-weighted perturbations, the same shape.

    Returns:
        ``(N,)`` (a float when not ``batched``).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    power = np.sum(b * b, axis=-1, keepdims=True)
    beta = np.divide(np.sum(a * b, axis=-1, keepdims=True), power, out=np.zeros_like(power), where=power > 0)
    return np.mean((a - beta * b) ** 2, axis=-1)


def curve_auc(curves: np.ndarray) -> np.ndarray:
    """Trapezoidal area under each curve ``(N, S)`` drawn over the unit interval (S points, spacing 1/(S-1)).

    The x axis is the fraction of the perturbation schedule done, so the area is comparable across inputs with
    different numbers of steps (64 pixels vs 30 features). One point: the point itself.
    """
    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim != 2:
        raise ValueError(f"curves must be (N, steps), got shape {curves.shape}")
    steps = curves.shape[1]
    if steps == 1:
        return curves[:, 0].copy()
    dx = 1.0 / (steps - 1)
    return dx * (curves[:, 1:] + curves[:, :-1]).sum(axis=1) / 2.0


def curve_mean(curves: np.ndarray) -> np.ndarray:
    """Mean of each curve ``(N, S) -> (N,)``: AOPC for output-drop curves (Samek et al., 2016)."""
    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim != 2:
        raise ValueError(f"curves must be (N, steps), got shape {curves.shape}")
    return curves.mean(axis=1)


def fixed_value_imputation(arr: np.ndarray, indices: np.ndarray, value: float = 0.0, **_: Any) -> np.ndarray:
    """ROAD's naive baseline (Rong et al. 2022): the removed positions (flat ``indices`` of ``arr``) set to ``value``.

    The imputed region keeps the shape of what was removed, which the model may read as class evidence.
    """
    out = np.array(arr, copy=True)
    out.reshape(-1)[np.asarray(indices, dtype=np.int64)] = value
    return out


def channel_mean_imputation(arr: np.ndarray, indices: np.ndarray, **_: Any) -> np.ndarray:
    """ROAD's fixed-value baseline as Rong et al. 2022 ran it (their ``ChannelMeanImputer``): each removed position
    (flat ``indices`` of ``arr (C, H, W)``) set to the mean of its channel over the whole original image.

    Unlike a constant 0 (which on digits is the background colour, so removing by it hides the mask), the mean
    differs from both ink and background, so the imputed region shows the removed shape.
    """
    arr = np.asarray(arr)
    means = np.broadcast_to(arr.reshape(arr.shape[0], -1).mean(axis=1).reshape((-1,) + (1,) * (arr.ndim - 1)),
                            arr.shape)
    flat = np.asarray(indices, dtype=np.int64)
    out = np.array(arr, copy=True)
    out.reshape(-1)[flat] = means.reshape(-1)[flat]
    return out


def mean_over_layers(per_layer: dict[str, list[float]], skip: tuple[str, ...] = ("original",)) -> np.ndarray:
    """Mean over randomised layers of per-layer per-sample similarities (MPRT's ``{layer: [N]}`` dict).

    The ``original`` entry (the map re-explained on the intact model) is not a randomised layer and is skipped;
    Quantus' own ``return_average_correlation`` tries to skip it under the key ``orig`` and so averages it in.
    """
    layers = [np.asarray(v, dtype=np.float64) for k, v in per_layer.items() if k not in skip]
    if not layers:
        raise ValueError("no randomised layer in the per-layer scores")
    return np.mean(np.stack(layers, axis=0), axis=0)


def is_all_zero(a: np.ndarray) -> np.ndarray:
    """``(N, ...) -> (N,)`` bool: the sample's attribution is zero everywhere."""
    flat = np.asarray(a).reshape(len(a), -1)
    return ~np.any(flat != 0, axis=1)


def is_constant(a: np.ndarray) -> np.ndarray:
    """``(N, ...) -> (N,)`` bool: every entry of the sample equals its first entry (zero maps included)."""
    flat = np.asarray(a).reshape(len(a), -1)
    return np.all(flat == flat[:, :1], axis=1)


def has_no_positive(a: np.ndarray) -> np.ndarray:
    """``(N, ...) -> (N,)`` bool: no entry is strictly positive."""
    flat = np.asarray(a).reshape(len(a), -1)
    return ~np.any(flat > 0, axis=1)


def nearest_divisor(n: int, target: float) -> int:
    """The divisor of ``n`` closest to ``target`` (ties: the smaller), at least 1."""
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    return min(divisors, key=lambda d: (abs(d - target), d))


class CorrelationDiagnostics:
    """A batched similarity function that remembers which rows had a constant side.

    Quantus' correlation metrics return NaN when the attribution sums or the model outputs do not vary over the
    perturbations; wrapping the ``similarity_func`` tells the adapter which of the two it was, without changing
    a single value (the wrapped function computes the result).
    """

    def __init__(self, func: Any) -> None:
        self.func = func
        self.__name__ = getattr(func, "__name__", "similarity")
        self.a_constant: np.ndarray | None = None
        self.b_constant: np.ndarray | None = None

    def __call__(self, a: np.ndarray, b: np.ndarray, batched: bool = False, **kwargs: Any) -> Any:
        if batched:
            self.a_constant = is_constant(np.asarray(a))
            self.b_constant = is_constant(np.asarray(b))
        return self.func(a=a, b=b, batched=batched, **kwargs)

    def reason(self, row: int) -> str:
        if self.a_constant is None or self.b_constant is None:
            return "correlation undefined"
        a_const, b_const = bool(self.a_constant[row]), bool(self.b_constant[row])
        if a_const and b_const:
            return "correlation undefined: constant model output and constant attribution sums over the perturbations"
        if b_const:
            return "correlation undefined: constant model output under the perturbations"
        if a_const:
            return "correlation undefined: constant attribution sums over the perturbations"
        return "correlation undefined"
