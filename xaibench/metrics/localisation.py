"""Localisation metrics (datasets with ground-truth masks): does the explanation point at the evidence?

Quantus compares one map per position with a ``(N, 1, ...)`` mask, so attributions are summed over channels and
masks OR-ed over channels first (``channel_reduction: sum``, recorded).

Sign handling is a declared parameter of every localisation metric, ``sign`` (it sets Quantus' ``abs``, which may
not be given directly; the resolved value is recorded in each row's params):

- ``signed``: positions are ranked by their signed attribution, so evidence *against* the explained class ranks
  below "no evidence". The question is "does the evidence *for* the class lie on the object?", which is what an
  object mask means (synthetic_image, synthetic_timeseries, synthetic_text).
- ``absolute``: ``|a|``: relevance in either direction counts as localised. The question is "does it mark the
  features the label depends on?", which is what a tabular mask means: on synthetic_tabular an informative feature
  pushes *against* the predicted class in about half the samples (``w_i x_i < 0``), and signed ranking would cap
  even the exact contributions ``w * x`` at a localisation AUC near 0.65.
- ``positive`` (Kohlbrenner et al.'s definition of attribution localisation): negative attributions are set to
  0, so only positive mass counts.
- ``auto`` (the default): ``absolute`` on tabular data, else ``signed`` (``positive`` for attribution_localisation).

What "for the class" means depends on what was explained: attributions of the raw logit can mark the object as
negative evidence (``explainers/output.py``); the default ``explain_output: log_odds`` does not.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import quantus

from xaibench.metrics.layout import to_quantus_masks
from xaibench.metrics.spec import Family, MetricSpec, Screen, register_metric
from xaibench.types import Modality

PER_SAMPLE_MAX = "normalise_by_max_per_sample"
RANKING_SCREENS = frozenset({Screen.ZERO, Screen.CONSTANT, Screen.EMPTY_MASK})
SIGNS = ("auto", "signed", "absolute", "positive")


def apply_sign(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Resolve ``sign: auto`` for the data, then set Quantus' ``abs`` from it (``positive`` clips negatives in the
    adapter, and for attribution_localisation also sets Quantus' ``positive_attributions``)."""
    sign = params["sign"]
    mass = "positive_attributions" in params  # attribution_localisation counts mass, it does not rank
    if sign == "auto":
        sign = "absolute" if ctx.modality is Modality.TABULAR else ("positive" if mass else "signed")
    out = {**params, "sign": sign, "abs": sign == "absolute"}
    if mass:
        out["positive_attributions"] = sign == "positive"
    return out


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
                  *, resolve: Any = None, **extra: Any) -> MetricSpec:
    def resolve_all(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        params = apply_sign(params, ctx)
        return resolve(params, ctx) if resolve is not None else params

    return register_metric(MetricSpec(
        name=name,
        family=Family.LOCALISATION,
        higher_is_better=higher,
        quantus_class=quantus_class,
        defaults={**defaults, "normalise_func": PER_SAMPLE_MAX},
        call_defaults={"softmax": False},
        needs_ground_truth=True,
        channel_reduction="sum",
        choices={"sign": SIGNS},
        adapter_only=("sign",),
        resolve=resolve_all,
        description=description,
        **{"screens": RANKING_SCREENS, **extra},
    ))


_localisation(
    "pointing_game", quantus.PointingGame, True, {"weighted": False, "sign": "auto", "normalise": True},
    "Zhang et al. 2018: 1 if the largest (per `sign`) attribution lies inside the mask.",
)
_localisation(
    "attribution_localisation", quantus.AttributionLocalisation, True,
    {"weighted": False, "max_size": 1.0, "positive_attributions": True, "sign": "auto", "normalise": True},
    "Kohlbrenner et al. 2020: share of the positive attribution mass inside the mask (per `sign`: positive; "
    "absolute counts |a|).",
    screens=frozenset({Screen.ZERO, Screen.NO_POSITIVE, Screen.EMPTY_MASK}),
)
_localisation(
    "top_k_intersection", quantus.TopKIntersection, True,
    {"k": 0.05, "concept_influence": False, "sign": "auto", "normalise": True},
    "Theiner et al. 2021: share of the k highest (per `sign`) positions inside the mask (k capped at the smallest mask).",
    fraction_params=("k",), resolve=cap_k_at_smallest_mask,
)
_localisation(
    "relevance_rank_accuracy", quantus.RelevanceRankAccuracy, True, {"sign": "auto", "normalise": True},
    "Arras et al. 2022: share of the |mask| highest (per `sign`) positions inside the mask.",
)
_localisation(
    "localisation_auc", quantus.AUC, True, {"sign": "auto", "normalise": True},
    "Fawcett 2006: ROC AUC of the (per `sign`) attribution as a score for the mask positions.",
)
