"""ERASER comprehensiveness and sufficiency (DeYoung et al., 2020, "ERASER: A Benchmark to Evaluate Rationalized
NLP Models"), AOPC over removal bins, defined as ferret's ``AOPC_Comprehensiveness_Evaluation`` /
``AOPC_Sufficiency_Evaluation`` (Attanasio et al., 2023; ``ferret/evaluators/faithfulness_measures.py``) compute
them with these NON-default arguments: ``remove_first_last=False``, ``only_pos=False``,
``removal_args={"based_on": "perc", "thresholds": bins, "remove_tokens": False}``, the removed tokens replaced by
``baseline`` (text: the pad token) where ferret writes its tokenizer's mask token. ferret's defaults differ in four
ways: thresholds 10%, 20%, ..., 100%; ``remove_tokens=True`` (removed tokens are deleted and the sequence
shortened: the suite's models take fixed-length inputs); ``only_pos=True`` (only positively scored tokens enter a
rationale); ``remove_first_last=True`` (the first and last tokens, [CLS] / [SEP], are neither ranked nor removed).
``bins: [0.1, 0.2, ..., 1.0]`` gives ferret's thresholds; the other three defaults have no counterpart here.

For each bin ``q`` in ``bins`` the rationale ``r_q`` is the ``floor(q * P)`` highest-scoring positions (signed
scores; P positions, see ``_positions.py``):

- comprehensiveness ``= mean_q [p(y | x) - p(y | x without r_q)]`` (higher: the rationale was needed);
- sufficiency ``= mean_q [p(y | x) - p(y | r_q only)]`` (lower: the rationale alone suffices).

``p`` is the target's softmax probability (``softmax: false``: the cell's explained output, ``explain_output``,
instead). Like ferret, bins with no position (``floor(q P) = 0``) and bins repeating the previous bin's rationale
are skipped (``skip_repeated_bins: false`` averages over every bin, an empty bin counting 0 for
comprehensiveness, as ERASER's scripts average over all thresholds). Remaining differences from ferret with the
arguments above: ferret decodes the perturbed ids to text and re-tokenises them; its bin size is ``int(q * P)``
(here ``floor(q * P + 1e-9)``: equal unless float rounding puts ``q * P`` just below an integer); when no bin holds
a token it returns 0 (comprehensiveness) / 1 (sufficiency), here NaN; ties in the scores are ordered by numpy's
default argsort there, lower position first here. ``tests/unit/test_metrics_peer_definitions.py`` checks the
equality against a transcription of ferret's loop.
"""
from __future__ import annotations

import math

import numpy as np

from xaibench.metrics._positions import position_scores, scored_model, target_output, top_positions, with_positions
from xaibench.metrics.spec import ALL_MODALITIES, Family, MetricSpec, Screen, register_metric

BINS = (0.01, 0.05, 0.1, 0.2, 0.5)


def bin_sizes(n_positions: int, bins, skip_repeated: bool) -> list[int]:
    """Positions per bin ``floor(q * P)``; like ferret, drop empty bins and bins equal to the previous one."""
    if not bins or any(not 0 < q <= 1 for q in bins):
        raise ValueError(f"ERASER bins must be fractions in (0, 1], got {list(bins)}")
    sizes = [int(math.floor(q * n_positions + 1e-9)) for q in bins]
    if not skip_repeated:
        return sizes
    kept: list[int] = []
    for size in sizes:
        if size > 0 and (not kept or size != kept[-1]):
            kept.append(size)
    return kept


def aopc(ctx, keep_rationale: bool, bins, baseline: float, skip_repeated_bins: bool, softmax: bool) -> np.ndarray:
    """``mean_q [p(x) - p(x')]`` per sample ``(N,)``: ``x'`` keeps (sufficiency) or drops (comprehensiveness)
    each bin's rationale."""
    scores = position_scores(ctx.attributions, ctx.modality)
    n, positions = scores.shape
    sizes = bin_sizes(positions, bins, skip_repeated_bins)
    if not sizes:
        return np.full(n, np.nan)
    model = scored_model(ctx, softmax)
    full = target_output(model, ctx.x, ctx.targets, softmax)
    keeps = [top_positions(scores, size, by_magnitude=False) for size in sizes]  # each (N, P)
    keeps = [keep if keep_rationale else ~keep for keep in keeps]
    x = ctx.x.repeat(len(sizes), *([1] * (ctx.x.dim() - 1)))  # bin-major: (B * N, ...)
    perturbed = with_positions(x, np.concatenate(keeps), ctx.modality, ctx.model, baseline)
    reduced = target_output(model, perturbed, ctx.targets.repeat(len(sizes)), softmax).reshape(len(sizes), n)
    return (full[None, :] - reduced).mean(axis=0)


def eraser_comprehensiveness(ctx, bins=BINS, baseline: float = 0.0, skip_repeated_bins: bool = True,
                             softmax: bool = True) -> np.ndarray:
    return aopc(ctx, False, bins, baseline, skip_repeated_bins, softmax)


def eraser_sufficiency(ctx, bins=BINS, baseline: float = 0.0, skip_repeated_bins: bool = True,
                       softmax: bool = True) -> np.ndarray:
    return aopc(ctx, True, bins, baseline, skip_repeated_bins, softmax)


_DEFAULTS = {"bins": list(BINS), "baseline": 0.0, "skip_repeated_bins": True, "softmax": True}
_NO_BIN = "no removal bin holds a position (too few positions for the bins)"

register_metric(MetricSpec(
    name="eraser_comprehensiveness",
    family=Family.FAITHFULNESS,
    higher_is_better=True,
    native=eraser_comprehensiveness,
    defaults=_DEFAULTS,
    modalities=ALL_MODALITIES,
    nan_reason=_NO_BIN,
    screens=frozenset({Screen.ZERO, Screen.CONSTANT}),  # top positions of a tied map: its first positions
    description="DeYoung et al. 2020 (ERASER): AOPC of p(y|x) - p(y|x without the top floor(q P) positions) over "
                "bins q = 1/5/10/20/50%; removed positions -> baseline (text: pad token). Equals ferret with "
                "non-default arguments (thresholds = bins, only_pos=False, remove_tokens=False, "
                "remove_first_last=False), not ferret's defaults.",
))

register_metric(MetricSpec(
    name="eraser_sufficiency",
    family=Family.FAITHFULNESS,
    higher_is_better=False,
    native=eraser_sufficiency,
    defaults=_DEFAULTS,
    modalities=ALL_MODALITIES,
    nan_reason=_NO_BIN,
    screens=frozenset({Screen.ZERO, Screen.CONSTANT}),  # top positions of a tied map: its first positions
    description="DeYoung et al. 2020 (ERASER): AOPC of p(y|x) - p(y|only the top floor(q P) positions) over bins "
                "q = 1/5/10/20/50%; other positions -> baseline (text: pad token). Equals ferret with non-default "
                "arguments (thresholds = bins, only_pos=False, remove_tokens=False, remove_first_last=False), not "
                "ferret's defaults.",
))
