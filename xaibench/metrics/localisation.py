"""Localisation metrics (datasets with ground-truth masks): does the explanation point at the evidence?

Quantus compares one map per position with a ``(N, 1, ...)`` mask, so attributions are summed over channels and
masks OR-ed over channels first (``channel_reduction: sum``, recorded).

Sign handling is a declared parameter of every localisation metric, ``sign`` (recorded in each row's params; it
sets Quantus' ``abs``, which may not be given directly):

- ``signed`` (default of the ranking metrics): positions are ranked by their signed attribution, so evidence
  *against* the explained class ranks below "no evidence". The metric asks "does the evidence *for* the class lie
  on the object?", which is what a mask of the object means on synthetic_image/timeseries/text.
- ``absolute``: ``|a|`` (Quantus ``abs: true``): relevance in either direction counts as localised (Quantus
  PR#338 is why it is not the default). On synthetic_tabular, where informative features can push against the
  predicted class for a given sample, this is the reading "does it mark the features the label depends on?".
- ``positive`` (default of ``attribution_localisation``, Kohlbrenner et al.'s definition): negative attributions
  are set to 0 before the metric, so only positive mass counts.

What sign means also depends on what was explained: attributions of the raw logit can mark the object as
negative evidence (see ``explainers/output.py``); the default ``explain_output: log_softmax`` does not.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import quantus

from xaibench.metrics.layout import to_quantus_masks
from xaibench.metrics.spec import Family, MetricSpec, Screen, register_metric

PER_SAMPLE_MAX = "normalise_by_max_per_sample"
RANKING_SCREENS = frozenset({Screen.ZERO, Screen.CONSTANT, Screen.EMPTY_MASK})
SIGNS = ("signed", "absolute", "positive")


def apply_sign(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """``sign`` -> Quantus ``abs`` (``positive`` clips negatives in the adapter, and for attribution_localisation
    also sets Quantus' ``positive_attributions``)."""
    out = {**params, "abs": params["sign"] == "absolute"}
    if "positive_attributions" in out:
        out["positive_attributions"] = params["sign"] == "positive"
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
    "pointing_game", quantus.PointingGame, True, {"weighted": False, "sign": "signed", "normalise": True},
    "Zhang et al. 2018: 1 if the largest (signed) attribution lies inside the mask.",
)
_localisation(
    "attribution_localisation", quantus.AttributionLocalisation, True,
    {"weighted": False, "max_size": 1.0, "positive_attributions": True, "sign": "positive", "normalise": True},
    "Kohlbrenner et al. 2020: share of the positive attribution mass inside the mask (sign: positive; absolute "
    "counts |a|).",
    screens=frozenset({Screen.ZERO, Screen.NO_POSITIVE, Screen.EMPTY_MASK}),
)
_localisation(
    "top_k_intersection", quantus.TopKIntersection, True,
    {"k": 0.05, "concept_influence": False, "sign": "signed", "normalise": True},
    "Theiner et al. 2021: share of the k highest (signed) positions inside the mask (k capped at the smallest mask).",
    fraction_params=("k",), resolve=cap_k_at_smallest_mask,
)
_localisation(
    "relevance_rank_accuracy", quantus.RelevanceRankAccuracy, True, {"sign": "signed", "normalise": True},
    "Arras et al. 2022: share of the |mask| highest (signed) positions inside the mask.",
)
_localisation(
    "localisation_auc", quantus.AUC, True, {"sign": "signed", "normalise": True},
    "Fawcett 2006: ROC AUC of the (signed) attribution as a score for the mask positions.",
)
