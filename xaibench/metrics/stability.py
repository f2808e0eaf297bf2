"""Stability / robustness metrics: do small input perturbations change the explanation?

Every one re-explains perturbed inputs through the cell's own explainer adapter (``explain_func``: batched, on the
cell's device). Noise is uniform in [-0.1, 0.1] for all of them (Quantus' defaults differ: +-0.2, one-sided
[0.02, 0.2], Gaussian 0.1), except the Lipschitz estimate, whose definition is Gaussian.
"""
from __future__ import annotations

from typing import Any

import quantus

from xaibench.metrics.spec import IMAGE_ONLY, Family, MetricSpec, Screen, register_metric

UNIFORM_NOISE = {"lower_bound": -0.1, "upper_bound": 0.1}


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
    description="Yeh et al. 2019: max over noisy inputs of ||a(x') - a(x)|| / ||a(x)|| (normalised by the "
                "attribution, not the input: Quantus#288).",
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
    description="Yeh et al. 2019: mean over noisy inputs of ||a(x') - a(x)|| / ||a(x)||.",
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
    quantus_class=quantus.RelativeInputStability,
    needs_explain_func=True,
    defaults={"nr_samples": 10, "perturb_func": "batch_uniform_noise", "perturb_func_kwargs": UNIFORM_NOISE,
              "eps_min": 1e-6, "abs": False, "normalise": False,
              "normalise_func": "normalise_by_average_second_moment_estimate",
              "return_nan_when_prediction_changes": True},
    call_defaults={"softmax": False},
    description="Agarwal et al. 2022: max relative change of the explanation over the relative change of the "
                "input, over perturbations that keep the prediction (a flip makes the sample NaN).",
))

register_metric(MetricSpec(
    name="relative_output_stability",
    family=Family.STABILITY,
    higher_is_better=False,
    quantus_class=quantus.RelativeOutputStability,
    needs_explain_func=True,
    defaults={"nr_samples": 10, "perturb_func": "batch_uniform_noise", "perturb_func_kwargs": UNIFORM_NOISE,
              "eps_min": 1e-6, "abs": False, "normalise": False,
              "normalise_func": "normalise_by_average_second_moment_estimate",
              "return_nan_when_prediction_changes": True},
    call_defaults={"softmax": False},
    screens=frozenset({Screen.ZERO, Screen.CONSTANT_OUTPUT}),
    description="Agarwal et al. 2022: max relative change of the explanation over the change of the logits, over "
                "perturbations that keep the prediction (a flip makes the sample NaN).",
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
