"""Faithfulness metrics: does removing what the explanation calls important change the prediction?

Every parameter Quantus defaults inconsistently is set here (and mirrored in ``conf/metrics/*.yaml``):
``abs``, ``normalise`` (per sample: ``normalise_by_max_per_sample``), ``softmax``, the baseline (``0.0``: the
training mean of standardised tabular data, black for images in [0, 1]) and step/subset sizes as fractions of the
feature positions. Text reaches the index-perturbation metrics as per-token presence (``text_view: tokens``): a
removed token is replaced by the pad token, whole tokens at a time. Metrics whose Quantus output is a curve
are reduced to one number per sample by a named function of ``functional.py`` (recorded as ``reduction`` in the
row's params).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import quantus
from quantus.helpers import utils as quantus_utils

from xaibench.errors import UserError
from xaibench.metrics.functional import curve_auc, curve_mean
from xaibench.metrics.spec import ALL_MODALITIES, IMAGE_ONLY, Family, MetricSpec, Screen, register_metric

PER_SAMPLE_MAX = "normalise_by_max_per_sample"
# Perturbation metrics: a zero map, a constant map (no ranking) or a model that ignores its input is degenerate.
PERTURBATION_SCREENS = frozenset({Screen.ZERO, Screen.CONSTANT, Screen.CONSTANT_OUTPUT})


class ROADPerSample(quantus.ROAD):
    """Quantus' ROAD without its post-processing, which averages the curves over samples into one dict, and with
    Rong et al.'s two orders: ``morf`` (most relevant removed first, Quantus' only order) or ``lerf`` (least
    relevant first: the same loop over the negated map)."""

    def __init__(self, *args: Any, order: str = "morf", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if order not in ("morf", "lerf"):
            raise UserError(f"road: order must be morf or lerf, got {order!r}")
        self.order = order

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> Any:
        a_batch = -a_batch if self.order == "lerf" else a_batch
        return super().evaluate_batch(model=model, x_batch=x_batch, y_batch=y_batch, a_batch=a_batch, **kwargs)

    def custom_postprocess(self, **kwargs: Any) -> None:
        return None


class SufficiencyWithNeighbours(quantus.Sufficiency):
    """Quantus' Sufficiency that also records how many other samples fall within the distance threshold.

    With no neighbour Quantus divides 0 by infinity and reports 0, which is not a score: the adapter marks it.
    """

    neighbour_counts: np.ndarray | None = None

    def evaluate_batch(self, i_batch: np.ndarray, a_sim_vector_batch: np.ndarray, y_pred_classes: np.ndarray,
                       **kwargs: Any) -> Any:
        n = y_pred_classes.shape[0]
        self.neighbour_counts = (a_sim_vector_batch * (1 - np.eye(n))).sum(axis=-1)
        return super().evaluate_batch(i_batch=i_batch, a_sim_vector_batch=a_sim_vector_batch,
                                      y_pred_classes=y_pred_classes, **kwargs)


def curve_not_auc(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """The suite reduces the curve itself (``auc_unit_interval``); Quantus' own dx=1 AUC would be reduced twice."""
    if params.get("return_auc_per_sample"):
        raise UserError("pixel_flipping: return_auc_per_sample must stay false; the suite reports the area under "
                        "the curve over the fraction removed (reduction: auc_unit_interval)")
    return params


def reduce_curve_auc(raw: Any, metric: Any, batch: Any) -> np.ndarray:
    return curve_auc(np.asarray(raw, dtype=np.float64))


def reduce_curve_mean(raw: Any, metric: Any, batch: Any) -> np.ndarray:
    return curve_mean(np.asarray(raw, dtype=np.float64))


def reduce_road(raw: Any, metric: Any, batch: Any) -> np.ndarray:
    """``[(N, P) 0/1 'still the target class' per percentage]`` -> fraction of percentages still correct."""
    return curve_mean(np.concatenate([np.asarray(part, dtype=np.float64) for part in raw], axis=0))


def reduce_irof(raw: Any, metric: Any, batch: Any) -> np.ndarray:
    """IROF's area over the curve grows with the number of superpixels; divide by it to get a value in [0, 1]."""
    counts = np.array([
        len(np.unique(quantus_utils.get_superpixel_segments(
            img=np.moveaxis(x, 0, -1).astype("double"), segmentation_method=metric.segmentation_method)))
        for x in batch.x
    ], dtype=np.float64)
    return np.asarray(raw, dtype=np.float64) / counts


NO_NEIGHBOUR = "no other sample's explanation within the distance threshold"
EVERY_NEIGHBOUR = ("every other sample's explanation is within the distance threshold: the score is the batch's "
                   "share of this prediction whatever the map")


def reduce_sufficiency(raw: Any, metric: SufficiencyWithNeighbours, batch: Any) -> tuple[np.ndarray, list[str]]:
    """Quantus' per-sample sufficiency ``(N,)``, NaN with the reason where the explanation picks no neighbourhood.

    Dasgupta et al. ask whether the samples that share an explanation share the prediction. Quantus' threshold is
    a share of the batch's largest explanation distance, so one far pair widens every neighbourhood: with no
    neighbour Quantus reports 0, and with every other sample a neighbour the score is the batch's share of the
    sample's prediction, the same for any map within reach of all the others (IG on a breast_cancer MLP: median
    neighbourhood 94% of the batch, saliency 100%). Neither says anything about the explanation.
    """
    values = np.asarray(raw, dtype=np.float64).copy()
    counts = np.asarray(metric.neighbour_counts)
    lonely = counts == 0
    crowded = (counts == len(values) - 1) & (len(values) > 2)
    values[lonely | crowded] = np.nan
    reasons = [NO_NEIGHBOUR if x else EVERY_NEIGHBOUR if c else "" for x, c in zip(lonely, crowded)]
    return values, reasons


register_metric(MetricSpec(
    name="faithfulness_correlation",
    family=Family.FAITHFULNESS,
    higher_is_better=True,
    quantus_class=quantus.FaithfulnessCorrelation,
    defaults={"similarity_func": "correlation_pearson", "nr_runs": 50, "subset_size": 0.25,
              "perturb_func": "batch_baseline_replacement_by_indices", "perturb_baseline": 0.0,
              "abs": False, "normalise": True, "normalise_func": PER_SAMPLE_MAX},
    call_defaults={"softmax": False},
    modalities=ALL_MODALITIES,
    text_view="tokens",
    fraction_params=("subset_size",),
    screens=PERTURBATION_SCREENS,
    correlation_diagnostics=True,
    description="Bhatt et al. 2020: Pearson correlation of attribution sums and output drops over random subsets.",
))

register_metric(MetricSpec(
    name="faithfulness_estimate",
    family=Family.FAITHFULNESS,
    higher_is_better=True,
    quantus_class=quantus.FaithfulnessEstimate,
    defaults={"similarity_func": "correlation_pearson", "features_in_step": 0.05,
              "perturb_func": "batch_baseline_replacement_by_indices", "perturb_baseline": 0.0,
              "abs": False, "normalise": True, "normalise_func": PER_SAMPLE_MAX},
    call_defaults={"softmax": False},
    modalities=ALL_MODALITIES,
    text_view="tokens",
    divisor_params=("features_in_step",),
    screens=PERTURBATION_SCREENS,
    correlation_diagnostics=True,
    description="Alvarez-Melis & Jaakkola 2018: correlation of attribution sums and output drops, feature groups "
                "removed one at a time in attribution order.",
))

register_metric(MetricSpec(
    name="pixel_flipping",
    family=Family.FAITHFULNESS,
    higher_is_better=False,
    quantus_class=quantus.PixelFlipping,
    defaults={"features_in_step": 0.05, "perturb_func": "batch_baseline_replacement_by_indices",
              "perturb_baseline": 0.0, "abs": False, "normalise": True, "normalise_func": PER_SAMPLE_MAX,
              "return_auc_per_sample": False},
    call_defaults={"softmax": True},
    modalities=ALL_MODALITIES,
    text_view="tokens",
    divisor_params=("features_in_step",),
    reduce=reduce_curve_auc,
    reduction="auc_unit_interval",
    resolve=curve_not_auc,
    screens=PERTURBATION_SCREENS,
    description="Bach et al. 2015: target probability as features are removed most-relevant first; the area "
                "under that curve over the fraction removed (lower = more faithful).",
))

register_metric(MetricSpec(
    name="region_perturbation",
    family=Family.FAITHFULNESS,
    higher_is_better=True,
    quantus_class=quantus.RegionPerturbation,
    defaults={"patch_size": 2, "order": "morf", "regions_evaluation": 16,
              "perturb_func": "batch_baseline_replacement_by_indices", "perturb_baseline": 0.0,
              "abs": False, "normalise": True, "normalise_func": PER_SAMPLE_MAX},
    call_defaults={"softmax": True},
    modalities=IMAGE_ONLY,
    reduce=reduce_curve_mean,
    reduction="aopc",
    screens=PERTURBATION_SCREENS,
    description="Samek et al. 2016: AOPC, the mean drop of the target probability as patches are removed "
                "most-relevant first (higher = more faithful; Quantus declares 'lower' for the raw curve).",
))

register_metric(MetricSpec(
    name="monotonicity_correlation",
    family=Family.FAITHFULNESS,
    higher_is_better=True,
    quantus_class=quantus.MonotonicityCorrelation,
    defaults={"similarity_func": "correlation_spearman", "eps": 1e-5, "nr_samples": 10, "features_in_step": 0.05,
              "perturb_func": "batch_baseline_replacement_by_indices", "perturb_baseline": "uniform",
              "abs": True, "normalise": True, "normalise_func": PER_SAMPLE_MAX},
    # Logits, not Quantus' softmax: a float32 softmax saturates to exactly 1.0 for confident predictions, the
    # output variance is then constant and the correlation undefined (20 of 32 breast-cancer samples).
    call_defaults={"softmax": False},
    modalities=ALL_MODALITIES,
    text_view="tokens",
    divisor_params=("features_in_step",),
    screens=PERTURBATION_SCREENS,
    correlation_diagnostics=True,
    description="Nguyen & Martinez 2020: Spearman correlation of |attribution| and the output variance when "
                "that feature group is replaced by uniform noise.",
))

register_metric(MetricSpec(
    name="infidelity",
    family=Family.FAITHFULNESS,
    higher_is_better=False,
    quantus_class=quantus.Infidelity,
    defaults={"loss_func": "mse_optimally_scaled", "perturb_patch_sizes": [2], "n_perturb_samples": 1,
              "perturb_func": "batch_baseline_replacement_by_indices", "perturb_baseline": 0.0,
              "abs": False, "normalise": False, "normalise_func": PER_SAMPLE_MAX},
    call_defaults={"softmax": False},
    modalities=IMAGE_ONLY,
    screens=PERTURBATION_SCREENS,
    explained_output_values=True,
    description="Yeh et al. 2019 (square removal): squared error between attribution-weighted perturbations and "
                "drops of the explained output (explain_output; Quantus: the logit), after the optimal rescaling "
                "of the map (loss_func: mse_optimally_scaled; mse is Quantus' unscaled error). With a constant "
                "baseline repeats are identical, hence one perturbation sample.",
))

register_metric(MetricSpec(
    name="sufficiency",
    family=Family.FAITHFULNESS,
    higher_is_better=True,
    quantus_class=SufficiencyWithNeighbours,
    defaults={"threshold": 0.6, "distance_func": "euclidean_distance", "abs": True, "normalise": True,
              "normalise_func": "normalise_by_max"},
    call_defaults={"softmax": True},
    modalities=ALL_MODALITIES,
    reduce=reduce_sufficiency,
    batch_relational=True,
    description="Dasgupta et al. 2022: share of samples with a similar explanation (distance <= threshold of the "
                "max) that get the same prediction; NaN with the reason where that is no other sample or every "
                "other one (then the score is the batch's share of the prediction, whatever the map; chance level "
                "for every map is that share). Euclidean, not Quantus' seuclidean: that divides by each "
                "feature's variance over the batch, which is zero wherever every map is zero (IG on a constant "
                "background). The normaliser also scales the distance matrix, so it stays Quantus' batch max.",
))

ROAD_DEFAULTS = {"percentages": [5, 15, 25, 35, 45, 55, 65, 75, 85, 95], "noise": 0.01,
                 "perturb_func": "noisy_linear_imputation", "abs": False, "normalise": True,
                 "normalise_func": PER_SAMPLE_MAX}

register_metric(MetricSpec(
    name="road",
    family=Family.FAITHFULNESS,
    higher_is_better=False,
    quantus_class=ROADPerSample,
    defaults={**ROAD_DEFAULTS, "order": "morf"},
    call_defaults={"softmax": True},
    modalities=IMAGE_ONLY,
    reduce=reduce_road,
    reduction="mean_over_percentages",
    screens=PERTURBATION_SCREENS,
    choices={"order": ("morf",)},
    description="Rong et al. 2022: share of removal percentages (most relevant first, MoRF; noisy linear "
                "imputation) at which the model still predicts the target (lower = more faithful). perturb_func "
                "channel_mean_imputation is the fixed-value baseline ROAD argues against, as the paper ran it "
                "(fixed_value_imputation sets 0, which on digits is the background and hides the removed shape).",
))

register_metric(MetricSpec(
    name="road_lerf",
    family=Family.FAITHFULNESS,
    higher_is_better=True,
    quantus_class=ROADPerSample,
    defaults={**ROAD_DEFAULTS, "order": "lerf"},
    call_defaults={"softmax": True},
    modalities=IMAGE_ONLY,
    reduce=reduce_road,
    reduction="mean_over_percentages",
    screens=PERTURBATION_SCREENS,
    choices={"order": ("lerf",)},
    description="Rong et al. 2022, LeRF order: share of removal percentages (least relevant first; noisy linear "
                "imputation) at which the model still predicts the target (higher = more faithful). With a "
                "faithful imputation MoRF and LeRF rank methods alike; with a fixed value they need not "
                "(xaibench.results.road_consistency measures it). Alone it favours scattered maps (a random map's "
                "removals impute from intact neighbours): read it with road (docs/meaning.md).",
))

register_metric(MetricSpec(
    name="irof",
    family=Family.FAITHFULNESS,
    higher_is_better=True,
    quantus_class=quantus.IROF,
    defaults={"segmentation_method": "slic", "perturb_func": "baseline_replacement_by_mask",
              "perturb_baseline": "mean", "abs": False, "normalise": True, "normalise_func": PER_SAMPLE_MAX},
    call_defaults={"softmax": True},
    modalities=IMAGE_ONLY,
    reduce=reduce_irof,
    reduction="aoc_per_segment",
    screens=PERTURBATION_SCREENS,
    nan_reason="target probability is zero on the unperturbed input",
    description="Rieger & Hansen 2020: area over the curve of the relative target probability as superpixels are "
                "removed most-relevant first, divided by the number of superpixels.",
))

register_metric(MetricSpec(
    name="selectivity",
    family=Family.FAITHFULNESS,
    higher_is_better=False,
    quantus_class=quantus.Selectivity,
    defaults={"patch_size": 2, "perturb_func": "batch_baseline_replacement_by_indices", "perturb_baseline": 0.0,
              "abs": False, "normalise": True, "normalise_func": PER_SAMPLE_MAX},
    call_defaults={"softmax": True},
    modalities=IMAGE_ONLY,
    reduce=reduce_curve_auc,
    reduction="auc_unit_interval",
    screens=PERTURBATION_SCREENS,
    description="Montavon et al. 2018: target probability as patches are removed most-relevant first; the area "
                "under that curve over the fraction removed (lower = more faithful).",
))
