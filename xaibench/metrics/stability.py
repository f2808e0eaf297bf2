"""Stability / robustness metrics: do small input perturbations change the explanation?

Every one re-explains perturbed inputs through the cell's own explainer adapter (``explain_func``: batched, on the
cell's device). Noise is uniform in [-0.1, 0.1] for all of them (Quantus' defaults differ: +-0.2, one-sided
[0.02, 0.2], Gaussian 0.1), except the Lipschitz estimate, whose definition is Gaussian.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import quantus

from xaibench.metrics.spec import IMAGE_ONLY, Family, MetricSpec, Screen, register_metric

UNIFORM_NOISE = {"lower_bound": -0.1, "upper_bound": 0.1}


def relative_change(before: np.ndarray, after: np.ndarray, relative_floor: float, eps_min: float) -> np.ndarray:
    """Per-sample norm of the element-wise relative change ``(before - after) / max(|before|, floor)``.

    Agarwal et al. 2022 divide element-wise by ``before``; Quantus 0.6 floors a divisor that is exactly zero at
    ``eps_min`` (1e-6), so one exact zero (a black pixel; an IG/input-x-gradient attribution there) contributes
    ``|change| * 1e6``. Here the floor is ``relative_floor`` times the sample's mean ``|before|`` (at least
    ``eps_min``): scale-free, and exact zeros weigh like small values. ``relative_floor = 0`` is Quantus' rule.

    Args:
        before, after: ``(N, ...)``.

    Returns:
        ``(N,)`` Frobenius norms over all non-batch axes.
    """
    n = len(before)
    flat_before, flat_after = before.reshape(n, -1), after.reshape(n, -1)
    if relative_floor > 0:
        floor = np.maximum(relative_floor * np.abs(flat_before).mean(axis=1, keepdims=True), eps_min)
        divisor = np.maximum(np.abs(flat_before), floor)
    else:
        divisor = flat_before + (flat_before == 0) * eps_min
    return np.linalg.norm((flat_before - flat_after) / divisor, axis=1)


# 1 / float32's machine epsilon. By the triangle inequality a relative change ||a(x') - a(x)|| / ||a(x)|| above it
# means ||a(x)|| < ~2^-23 ||a(x')||: the map at x is below the rounding unit of the maps around it.
NUMERICALLY_ZERO_RATIO = 2.0 ** 23
NUMERICALLY_ZERO = ("the map at x and a re-explained map differ in norm by more than float32 resolution (relative "
                    "change > 2^23, or a norm that underflows): the map at x is numerically zero next to it, or the "
                    "re-explanation blew up; the relative change has no value, as for an all-zero map")


def numerically_zero(e_x: np.ndarray, e_xs: np.ndarray) -> np.ndarray:
    """``(N,)`` True where the map at ``x`` is numerically zero next to its re-explanation at ``x'``.

    The rule of the sensitivities (:func:`reduce_sensitivity`): ``||a(x') - a(x)|| > 2^23 ||a(x)||`` (one map is
    below the other's float32 rounding unit), or a norm that is not finite (a map that underflows, or a
    re-explanation that blew up). Norms in float64, so a float32 map of 1e-30 is seen as the 1e-30 it is.

    Args:
        e_x, e_xs: maps at ``x`` and at the perturbed ``x'``, ``(N, ...)``.
    """
    n = len(e_x)
    before = e_x.reshape(n, -1).astype(np.float64)
    with np.errstate(all="ignore"):
        norm = np.linalg.norm(before, axis=1)
        change = np.linalg.norm(before - e_xs.reshape(n, -1).astype(np.float64), axis=1)
        return ~np.isfinite(norm) | ~np.isfinite(change) | (change > NUMERICALLY_ZERO_RATIO * norm)


def mark_numerically_zero(values: np.ndarray, e_x: np.ndarray, e_xs: np.ndarray) -> np.ndarray:
    """``values`` ``(N,)`` of a relative-stability objective with ``+inf`` where :func:`numerically_zero`.

    Agarwal et al.'s ratios divide element-wise by ``a(x)``; the floor (:func:`relative_change`) scales with the
    map, so a map at ``x`` of 1e-30 next to a re-explanation of 1e-3 still gives 1e6-1e29 (DeepLIFT of a saturated
    ``log_softmax`` on breast_cancer: RIS mean 1.1e6, ROS 1.1e7). ``+inf`` survives Quantus' max over the
    perturbations (a flipped one, NaN, still wins) and :func:`reduce_relative_stability` makes it NaN with the
    reason.
    """
    values = np.asarray(values, dtype=np.float64).copy()
    values[numerically_zero(e_x, e_xs)] = np.inf
    return values


class RelativeInputStabilityFloored(quantus.RelativeInputStability):
    """Quantus' RIS with :func:`relative_change`'s per-sample floor for the element-wise divisions."""

    def __init__(self, *args: Any, relative_floor: float = 0.5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.relative_floor = relative_floor

    def relative_input_stability_objective(self, x: np.ndarray, xs: np.ndarray, e_x: np.ndarray,
                                           e_xs: np.ndarray) -> np.ndarray:
        numerator = relative_change(e_x, e_xs, self.relative_floor, self._eps_min)
        denominator = relative_change(x, xs, self.relative_floor, self._eps_min)
        return mark_numerically_zero(numerator / np.maximum(denominator, self._eps_min), e_x, e_xs)


class RelativeOutputStabilityFloored(quantus.RelativeOutputStability):
    """Quantus' ROS with :func:`relative_change`'s per-sample floor for the attribution's element-wise division."""

    def __init__(self, *args: Any, relative_floor: float = 0.5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.relative_floor = relative_floor

    def relative_output_stability_objective(self, h_x: np.ndarray, h_xs: np.ndarray, e_x: np.ndarray,
                                            e_xs: np.ndarray) -> np.ndarray:
        numerator = relative_change(e_x, e_xs, self.relative_floor, self._eps_min)
        denominator = np.linalg.norm(h_x - h_xs, axis=-1)
        return mark_numerically_zero(numerator / np.maximum(denominator, self._eps_min), e_x, e_xs)


def reduce_sensitivity(raw: Any, metric: Any, batch: Any) -> tuple[np.ndarray, list[str]]:
    """Quantus' per-sample sensitivities ``(N,)``, with those of a numerically zero map set to NaN with the reason.

    Yeh et al.'s sensitivity divided by ``||a(x)||`` (Quantus) is unbounded as the map at ``x`` vanishes: LRP and
    DeepLIFT of a saturated output (``explain_output=log_softmax`` or ``probability`` on breast_cancer) gave medians
    of 1e8-1e11 and single samples of 2e21, and maps whose float32 norm underflows gave inf or NaN without a
    reason. One such sample decides a method's mean, CI and rank. Above ``NUMERICALLY_ZERO_RATIO`` the two maps
    differ in scale by more than float32 resolves: the map at ``x`` is numerically zero next to a re-explanation
    (it then carries no more information than an all-zero map, which is screened: ``all-zero attribution``), or
    the explainer blew up on a perturbed input (a defect to fix in the explainer, as DeepLIFT's log-odds rule
    was). Either way the ratio has no meaningful value: NaN with the reason, counted in the summary's
    ``nan_rate``. Finite values up to ``NUMERICALLY_ZERO_RATIO`` keep Quantus' definition.
    """
    values = np.asarray(raw, dtype=np.float64).reshape(-1).copy()
    flips = bool(getattr(metric, "return_nan_when_prediction_changes", False))
    zero = (values > NUMERICALLY_ZERO_RATIO) | (np.isinf(values) if flips else ~np.isfinite(values))
    values[zero] = np.nan
    return values, [NUMERICALLY_ZERO if z else "" for z in zero]


def reduce_relative_stability(raw: Any, metric: Any, batch: Any) -> tuple[np.ndarray, list[str]]:
    """RIS/ROS per sample ``(N,)``: a sample whose map at ``x`` was numerically zero next to a re-explanation on
    some perturbation (``+inf`` from :func:`mark_numerically_zero`) is NaN with :data:`NUMERICALLY_ZERO`, as in
    the sensitivities; a flipped prediction stays Quantus' NaN. Finite values are Agarwal et al.'s, unchanged."""
    values = np.asarray(raw, dtype=np.float64).reshape(-1).copy()
    zero = np.isposinf(values)
    values[zero] = np.nan
    return values, [NUMERICALLY_ZERO if z else "" for z in zero]


def continuity_steps(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Fewest changes to ``nr_steps`` so that Quantus' translations stay inside the image.

    Quantus shifts by ``-W + k * ((2W + 1) // nr_steps)`` for ``k = 1..nr_steps``; a shift of ``W`` leaves an
    all-black image whose explanation is all zero for the whole batch, which Quantus rejects.
    """
    width = int(ctx.x.shape[-1])
    steps = max(1, min(int(params["nr_steps"]), 2 * width + 1))
    while steps > 1 and -width + steps * ((2 * width + 1) // steps) >= width:
        steps -= 1
    return {**params, "nr_steps": steps}


register_metric(MetricSpec(
    name="max_sensitivity",
    family=Family.STABILITY,
    higher_is_better=False,
    quantus_class=quantus.MaxSensitivity,
    needs_explain_func=True,
    defaults={"nr_samples": 10, "perturb_func": "batch_uniform_noise", "lower_bound": 0.1, "upper_bound": None,
              "similarity_func": "difference", "norm_numerator": "fro_norm", "norm_denominator": "fro_norm",
              "abs": False, "normalise": False, "normalise_func": "normalise_by_max_per_sample",
              "return_nan_when_prediction_changes": False},
    call_defaults={"softmax": False},
    reduce=reduce_sensitivity,
    description="Yeh et al. 2019: max over noisy inputs of ||a(x') - a(x)|| / ||a(x)|| (normalised by the "
                "attribution, not the input: Quantus#288). A map at x that is numerically zero (ratio > 2^23) is "
                "NaN with the reason, as an all-zero map is.",
))

register_metric(MetricSpec(
    name="avg_sensitivity",
    family=Family.STABILITY,
    higher_is_better=False,
    quantus_class=quantus.AvgSensitivity,
    needs_explain_func=True,
    defaults={"nr_samples": 10, "perturb_func": "batch_uniform_noise", "lower_bound": 0.1, "upper_bound": None,
              "similarity_func": "difference", "norm_numerator": "fro_norm", "norm_denominator": "fro_norm",
              "abs": False, "normalise": False, "normalise_func": "normalise_by_max_per_sample",
              "return_nan_when_prediction_changes": False},
    call_defaults={"softmax": False},
    reduce=reduce_sensitivity,
    description="Yeh et al. 2019: mean over noisy inputs of ||a(x') - a(x)|| / ||a(x)||. A map at x that is "
                "numerically zero (ratio > 2^23) is NaN with the reason, as an all-zero map is.",
))

register_metric(MetricSpec(
    name="local_lipschitz_estimate",
    family=Family.STABILITY,
    higher_is_better=False,
    quantus_class=quantus.LocalLipschitzEstimate,
    needs_explain_func=True,
    defaults={"nr_samples": 10, "perturb_func": "batch_gaussian_noise", "perturb_mean": 0.0, "perturb_std": 0.1,
              "similarity_func": "lipschitz_constant", "norm_numerator": "distance_euclidean",
              "norm_denominator": "distance_euclidean", "abs": False, "normalise": True,
              "normalise_func": "normalise_by_max_per_sample", "return_nan_when_prediction_changes": False},
    call_defaults={"softmax": False},
    description="Alvarez-Melis & Jaakkola 2018: max over Gaussian-noised inputs of ||a(x') - a(x)|| / ||x' - x|| "
                "(maps normalised per sample so methods of different scale compare).",
))

register_metric(MetricSpec(
    name="relative_input_stability",
    family=Family.STABILITY,
    higher_is_better=False,
    quantus_class=RelativeInputStabilityFloored,
    needs_explain_func=True,
    defaults={"nr_samples": 10, "perturb_func": "batch_uniform_noise", "perturb_func_kwargs": UNIFORM_NOISE,
              "eps_min": 1e-6, "relative_floor": 0.5, "abs": False, "normalise": False,
              "normalise_func": "normalise_by_average_second_moment_estimate",
              "return_nan_when_prediction_changes": True},
    call_defaults={"softmax": False},
    reduce=reduce_relative_stability,
    description="Agarwal et al. 2022: max relative change of the explanation over the relative change of the "
                "input, over perturbations that keep the prediction (a flip makes the sample NaN). Element-wise "
                "relative changes divide by |value| floored at relative_floor x the sample's mean |value| "
                "(Quantus floors exact zeros at 1e-6, which on inputs with black pixels let a random map beat IG "
                "4000-fold: IG is exactly 0 where x is, and both sides blow up by 1e6). Inherent: a map that is "
                "0 where the input is 0 still pays for every change there. A map at x that is numerically zero "
                "next to a re-explanation (||a(x') - a(x)|| > 2^23 ||a(x)||) is NaN with the reason, as in "
                "max_sensitivity.",
))

register_metric(MetricSpec(
    name="relative_output_stability",
    family=Family.STABILITY,
    higher_is_better=False,
    quantus_class=RelativeOutputStabilityFloored,
    needs_explain_func=True,
    defaults={"nr_samples": 10, "perturb_func": "batch_uniform_noise", "perturb_func_kwargs": UNIFORM_NOISE,
              "eps_min": 1e-6, "relative_floor": 0.5, "abs": False, "normalise": False,
              "normalise_func": "normalise_by_average_second_moment_estimate",
              "return_nan_when_prediction_changes": True},
    call_defaults={"softmax": False},
    screens=frozenset({Screen.ZERO, Screen.CONSTANT_OUTPUT}),
    reduce=reduce_relative_stability,
    description="Agarwal et al. 2022: max relative change of the explanation over the change of the logits, over "
                "perturbations that keep the prediction (a flip makes the sample NaN). The explanation's "
                "element-wise relative change divides by |a| floored at relative_floor x the sample's mean |a| "
                "(Quantus' 1e-6 floor at exact zeros made IG, exactly 0 on black pixels, 1e4-fold worse than "
                "a random map). A map at x that is numerically zero next to a re-explanation "
                "(||a(x') - a(x)|| > 2^23 ||a(x)||) is NaN with the reason, as in max_sensitivity.",
))

register_metric(MetricSpec(
    name="continuity",
    family=Family.STABILITY,
    higher_is_better=False,
    quantus_class=quantus.Continuity,
    needs_explain_func=True,
    defaults={"nr_steps": 8, "perturb_func": "batched_translation", "perturb_baseline": "black",
              "abs": True, "normalise": True, "normalise_func": "normalise_by_max_per_sample",
              "return_nan_when_prediction_changes": False},
    call_defaults={"softmax": False},
    modalities=IMAGE_ONLY,
    resolve=continuity_steps,
    # Quantus 0.6 translates with batched_translation(x, "black", ...) whatever perturb_func says: recorded as such.
    description="Montavon et al. 2018: max over horizontal translations of ||a(x') - a(x)||_1 / ||x' - x||_2.",
))
