"""Localisation metrics (datasets with ground-truth masks): does the explanation point at the evidence?

Quantus compares one map per position with a ``(N, 1, ...)`` mask, so attributions are summed over channels and
masks OR-ed over channels first (``channel_reduction: sum``, recorded). Signed maps are kept signed
(``abs: false``): taking |a| would count evidence *against* the class as localised (Quantus PR#338).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import quantus

from xaibench.metrics.layout import to_quantus_masks
from xaibench.metrics.spec import Family, MetricSpec, Screen, register_metric

PER_SAMPLE_MAX = "normalise_by_max_per_sample"
RANKING_SCREENS = frozenset({Screen.ZERO, Screen.CONSTANT, Screen.EMPTY_MASK})


def cap_k_at_smallest_mask(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Top-k can only be perfect when k <= the mask size: cap k at the smallest non-empty mask of the cell."""
    if ctx.masks is None:
        return params
    masks = to_quantus_masks(ctx.masks, ctx.modality)
    sizes = masks.reshape(len(masks), -1).sum(axis=1)
    sizes = sizes[sizes > 0]
    if len(sizes) == 0:
        return params
    return {**params, "k": int(max(1, min(int(params["k"]), int(np.min(sizes)))))}


def _localisation(name: str, quantus_class: type, higher: bool, defaults: dict[str, Any], description: str,
                  **extra: Any) -> MetricSpec:
    return register_metric(MetricSpec(
        name=name,
        family=Family.LOCALISATION,
        higher_is_better=higher,
        quantus_class=quantus_class,
        defaults={**defaults, "normalise_func": PER_SAMPLE_MAX},
        call_defaults={"softmax": False},
        needs_ground_truth=True,
        channel_reduction="sum",
        description=description,
        **{"screens": RANKING_SCREENS, **extra},
    ))


_localisation(
    "pointing_game", quantus.PointingGame, True, {"weighted": False, "abs": False, "normalise": True},
    "Zhang et al. 2018: 1 if the largest attribution lies inside the mask.",
)
_localisation(
    "attribution_localisation", quantus.AttributionLocalisation, True,
    {"weighted": False, "max_size": 1.0, "positive_attributions": True, "abs": False, "normalise": True},
    "Kohlbrenner et al. 2020: share of the positive attribution mass inside the mask.",
    screens=frozenset({Screen.ZERO, Screen.NO_POSITIVE, Screen.EMPTY_MASK}),
)
_localisation(
    "top_k_intersection", quantus.TopKIntersection, True,
    {"k": 0.05, "concept_influence": False, "abs": False, "normalise": True},
    "Theiner et al. 2021: share of the k most relevant positions inside the mask (k capped at the smallest mask).",
    fraction_params=("k",), resolve=cap_k_at_smallest_mask,
)
_localisation(
    "relevance_rank_accuracy", quantus.RelevanceRankAccuracy, True, {"abs": False, "normalise": True},
    "Arras et al. 2022: share of the |mask| most relevant positions inside the mask.",
)
_localisation(
    "localisation_auc", quantus.AUC, True, {"abs": False, "normalise": True},
    "Fawcett 2006: ROC AUC of the attribution as a score for the mask positions.",
)
