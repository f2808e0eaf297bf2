"""Randomisation sanity checks (Adebayo et al. 2018): does the explanation depend on what the model learned?

The maps are re-explained through the cell's explainer on copies of the model whose layers Quantus randomises
(``explain_func``). Quantus returns a ``{layer: [N]}`` dict of similarities for (smooth) MPRT; the per-sample
score is the mean over the randomised layers (``reduction: mean_over_layers``; the ``original`` entry, the map
re-explained on the intact model, is left out). Similarity is Spearman rank correlation throughout, so lower =
the explanation changes when the parameters do (good); an edge detector that ignores the model scores exactly 1.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import quantus
import torch

from xaibench.errors import UserError
from xaibench.explainers.seeding import sample_seeds
from xaibench.metrics.functional import mean_over_layers
from xaibench.metrics.spec import Family, MetricSpec, Screen, register_metric
from xaibench.types import Capability

CORRELATION_SCREENS = frozenset({Screen.ZERO, Screen.CONSTANT})
TORCH_LAYERS = frozenset({Capability.GRADIENTS})  # a torch module whose layers Quantus can re-initialise


class SmoothMPRTWithExplainFunc(quantus.SmoothMPRT):
    """Quantus 0.6's SmoothMPRT with two corrections.

    1. Quantus explains the noisy copies with ``quantus.explain`` (its own captum wrapper, which sums channels) and
       ignores the ``explain_func`` it is given; this routes them through ``explain_func``.
    2. Quantus draws fresh noise (global numpy RNG) on every model pass, so the intact and each randomised model
       explain *different* noisy copies: a model-independent control then scores far below 1 (the ``random``
       control "passed" with -0.03 and ranked first). Here copy ``n`` of a sample is drawn from the metric's
       ``seed``, ``n`` and the sample's bytes (``explainers/seeding.sample_seeds``), the same on every pass and
       whatever the batch, so the similarity compares like with like and a control scores exactly 1.

    Same loop otherwise: ``nr_samples - 1`` Gaussian-noised copies (std ``noise_magnitude`` x the input's range)
    plus the clean input, averaged.
    """

    def explain_smooth_batch_numpy(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, std: float,
                                   **kwargs: Any) -> np.ndarray:
        seeds = sample_seeds(torch.from_numpy(np.ascontiguousarray(x_batch)), "smooth_mprt", base=int(self.seed))
        a_batch_smooth = None
        for n in range(self.nr_samples):
            epsilon = np.zeros_like(x_batch) if n == self.nr_samples - 1 else std * np.stack(
                [np.random.default_rng((seed, n)).standard_normal(x_batch.shape[1:]) for seed in seeds])
            a_batch = self.explain_func(model=model, inputs=x_batch + epsilon, targets=y_batch, **kwargs)
            share = a_batch / self.nr_samples
            a_batch_smooth = share if a_batch_smooth is None else a_batch_smooth + share
        return a_batch_smooth


class MPRTAtLayer(quantus.MPRT):
    """Quantus' MPRT keeping ``layer_index``: which point of the cascade the score is read at."""

    def __init__(self, *args: Any, layer_index: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.layer_index = layer_index


def reduce_at_layer(raw: Any, metric: MPRTAtLayer, batch: Any) -> tuple[np.ndarray, list[str]]:
    """The similarity after the first ``layer_index + 1`` layers of the cascade were randomised ``(N,)``; NaN (with
    the reason) when the model has fewer layers."""
    layers = [name for name in raw if name != "original"]
    n = len(batch)
    if metric.layer_index >= len(layers):
        return np.full(n, np.nan), [f"the model has {len(layers)} randomisable layers"] * n
    return np.asarray(raw[layers[metric.layer_index]], dtype=np.float64), [""] * n


def reduce_layers(raw: Any, metric: Any, batch: Any) -> np.ndarray:
    if not isinstance(raw, dict):
        raise TypeError(f"expected Quantus' per-layer dict, got {type(raw).__name__}")
    return mean_over_layers(raw)


def class_count(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """``num_classes: null`` means the dataset's class count."""
    if params.get("num_classes") is None:
        if ctx.n_classes < 2:
            raise UserError("random_logit needs the number of classes (>= 2); set num_classes")
        return {**params, "num_classes": int(ctx.n_classes)}
    return params


# Quantus MPRT's parameters, set explicitly (shared by the averaged metric and its per-layer curve).
_MPRT_DEFAULTS = {"similarity_func": "correlation_spearman", "layer_order": "top_down", "seed": 42,
                  "return_average_correlation": False, "return_last_correlation": False, "skip_layers": False,
                  "abs": True, "normalise": True, "normalise_func": "normalise_by_max_per_sample"}

register_metric(MetricSpec(
    name="mprt",
    family=Family.RANDOMISATION,
    higher_is_better=False,
    quantus_class=quantus.MPRT,
    needs_explain_func=True,
    requires=TORCH_LAYERS,
    defaults=_MPRT_DEFAULTS,
    call_defaults={"softmax": False},
    reduce=reduce_layers,
    reduction="mean_over_layers",
    screens=CORRELATION_SCREENS,
    nan_reason="similarity undefined at some randomised layer: a re-explained map is constant there (e.g. all zero)",
    description="Adebayo et al. 2018: cascading (top-down) parameter randomisation; mean Spearman similarity of "
                "the original and the re-explained maps over the randomised layers.",
))

register_metric(MetricSpec(
    name="smooth_mprt",
    family=Family.RANDOMISATION,
    higher_is_better=False,
    quantus_class=SmoothMPRTWithExplainFunc,
    needs_explain_func=True,
    requires=TORCH_LAYERS,
    pass_attributions=False,  # the reference is the smoothed map of the intact model, computed by Quantus
    defaults={"similarity_func": "correlation_spearman", "layer_order": "bottom_up", "seed": 42, "nr_samples": 10,
              "noise_magnitude": 0.1, "return_average_correlation": False, "return_last_correlation": False,
              "skip_layers": False, "abs": True, "normalise": True, "normalise_func": "normalise_by_max_per_sample"},
    call_defaults={"softmax": False},
    reduce=reduce_layers,
    reduction="mean_over_layers",
    screens=CORRELATION_SCREENS,
    nan_reason="similarity undefined at some randomised layer: a re-explained map is constant there (e.g. all zero)",
    description="Hedstroem et al. 2023: MPRT with explanations averaged over noisy copies of the input "
                "(bottom-up); mean Spearman similarity over the randomised layers. Re-explains through the cell's "
                "explainer (Quantus 0.6 silently uses its own quantus.explain instead), and every model pass "
                "explains the same noisy copies (Quantus redraws them per pass, which let model-free controls "
                "pass).",
))

register_metric(MetricSpec(
    name="efficient_mprt",
    family=Family.RANDOMISATION,
    higher_is_better=True,
    quantus_class=quantus.EfficientMPRT,
    needs_explain_func=True,
    requires=TORCH_LAYERS,
    defaults={"complexity_func": "discrete_entropy", "complexity_func_kwargs": {"n_bins": 16},
              "similarity_func": "correlation_spearman", "layer_order": "bottom_up", "seed": 42,
              "compute_extra_scores": False, "skip_layers": True, "abs": False, "normalise": False,
              "normalise_func": "normalise_by_average_second_moment_estimate"},
    call_defaults={"softmax": True},
    nan_reason="the explanation on the intact model has zero entropy",
    description="Hedstroem et al. 2023 (eMPRT): relative rise in explanation entropy (16-bin histogram, fixed so "
                "a sample's score does not depend on its batch) from the intact to the fully randomised model. "
                "Inherent: any model-independent map (random, sobel) scores exactly 0, so read > 0 as passing "
                "and <= 0 as failing; among failures the order means nothing. Input-multiplied maps (IG, input x "
                "gradient) keep the input's zeros on any model, so on inputs with many exact zeros (digits: 49%) "
                "their entropy cannot rise and they score about 0 too (and fail MPRT: similarity ~0.9).",
))

register_metric(MetricSpec(
    name="random_logit",
    family=Family.RANDOMISATION,
    higher_is_better=False,
    quantus_class=quantus.RandomLogit,
    needs_explain_func=True,
    defaults={"similarity_func": "correlation_spearman", "num_classes": None, "seed": 42, "abs": False,
              "normalise": True, "normalise_func": "normalise_by_max_per_sample"},
    call_defaults={"softmax": False},
    screens=CORRELATION_SCREENS | {Screen.OTHER_CLASS_IS_NEGATION},
    resolve=class_count,
    nan_reason="similarity undefined (a constant map for the other class)",
    description="Sixt et al. 2020: Spearman similarity of the map for the target and for a random other class "
                "(Quantus' default SSIM needs >= 7 features). NaN with the reason on two classes explained as "
                "log-odds, where the other class's output is minus the explained one. Near 1 fails; at or below "
                "about 0 passes, and negative values are not a finer grade of passing (under log_odds they partly "
                "reflect the other class's -p_t z_t term): docs/meaning.md.",
))

register_metric(MetricSpec(
    name="mprt_layer",
    family=Family.RANDOMISATION,
    higher_is_better=False,
    quantus_class=MPRTAtLayer,
    needs_explain_func=True,
    requires=TORCH_LAYERS,
    defaults={**_MPRT_DEFAULTS, "layer_index": 0},
    call_defaults={"softmax": False},
    reduce=reduce_at_layer,
    reduction="at_layer_index",
    screens=CORRELATION_SCREENS,
    nan_reason="similarity undefined at this layer: the re-explained map is constant there (e.g. all zero)",
    description="Adebayo et al. 2018's cascading randomisation curve, one point per cell: Spearman similarity of "
                "the original map and the map after randomising the top layer_index + 1 layers (top_down; 0 = "
                "the output layer only). Sweep layer_index to draw the curve that mprt averages.",
))
