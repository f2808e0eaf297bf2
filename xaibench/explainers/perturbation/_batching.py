"""Shared checks and call sizes (:class:`~xaibench.explainers.base.CallRows`) of the batched perturbation methods."""
from __future__ import annotations

import math

from xaibench.errors import UserError
from xaibench.explainers.base import CallRows
from xaibench.types import Modality


def check_perturbations_per_eval(method: str, value: int) -> None:
    """captum's default (one forward per perturbation, pitfalls.md) is never allowed: require at least 2."""
    if value < 2:
        raise UserError(
            f"method {method!r}: perturbations_per_eval must be >= 2 (1 runs one model forward per perturbation); "
            f"got {value}"
        )


def feature_count(modality: Modality, shape: tuple[int, ...], patch_size: int = 1) -> int:
    """Interpretable features ``M`` of one sample ``shape`` (as ``PerturbationView.feature_mask`` groups them):
    tabular columns, image ``patch_size`` squares (channels together), series windows of ``patch_size`` steps,
    text tokens."""
    if modality is Modality.IMAGE and len(shape) == 3:
        return math.ceil(shape[1] / patch_size) * math.ceil(shape[2] / patch_size)
    if modality is Modality.TIME_SERIES and len(shape) == 2:
        return math.ceil(shape[1] / patch_size)
    if modality is Modality.TEXT:
        return shape[0]
    return math.prod(shape)


def window_count(modality: Modality, shape: tuple[int, ...], window: int, stride: int) -> int:
    """Occlusion windows of one sample ``shape`` (``PerturbationView.window``; captum slides each window by
    ``stride`` while it fits): tabular one per feature."""
    def positions(side: int) -> int:
        return (side - min(window, side)) // stride + 1

    if modality is Modality.IMAGE and len(shape) == 3:
        return positions(shape[1]) * positions(shape[2])
    if modality is Modality.TIME_SERIES and len(shape) == 2:
        return positions(shape[1])
    if modality is Modality.TEXT:
        return positions(shape[0])
    return math.prod(shape)


def perturbation_rows(perturbations_per_eval: int, perturbations: int) -> CallRows:
    """captum's ablation methods forward ``perturbations_per_eval`` perturbations of every input of the batch
    together (``N x k`` rows), ``k`` at most the number of perturbations."""
    return CallRows(per_input=min(perturbations_per_eval, perturbations))


def surrogate_rows(perturbations_per_eval: int, n_samples: int, n_features: int) -> CallRows:
    """The vectorised surrogates (``_surrogate.py``) forward ``perturbations_per_eval`` rows across the batch;
    each input holds its ``(n_samples, M)`` coalitions and, in the least squares, float64 copies of them (counted
    as 8 float32 elements per coalition entry)."""
    return CallRows(per_input=0, per_call=perturbations_per_eval, elements_per_input=8 * n_samples * n_features)
