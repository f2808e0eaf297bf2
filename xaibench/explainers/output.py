"""The explained output: which function of the model's class scores an attribution explains (``explain_output``).

A classifier returns logits ``z (N, K)``; an explanation of "class t" attributes one scalar per sample to the
input features. Four scalars are in use, and they do not mean the same thing:

- ``log_odds`` (the default): ``log(p_t / (1 - p_t)) = z_t - logsumexp_{j != t} z_j``, the class against its
  competitors. Evidence for t is what raises ``z_t`` more than the other classes, which is what a reader means by
  "the evidence for the predicted class"; unlike the probabilities it does not saturate (binary: ``z_t - z_other``).
- ``log_softmax``: ``log p_t = z_t - logsumexp(z)``, the log-likelihood; the same contrast, but its gradient
  scales with ``1 - p_t ~ e^-margin``: on an over-confident model (breast_cancer MLP margins of 60-90) gradient
  maps underflow float32 and ratio metrics return NaN.
- ``logit``: the raw score ``z_t`` alone. Removing an object can raise ``z_t`` while raising the other logits
  more (the class still loses), so signed logit attributions may mark the object as negative evidence: on
  ``synthetic_image`` a CNN's IG scores localisation AUC 0.39 on logits, 0.96 on log-probabilities.
- ``probability``: ``p_t = softmax(z)_t``; bounded, so it saturates: in float32 ``p_t`` is exactly 1 once the
  margin exceeds ~17, and perturbation methods then see no change at all. Sums over features are changes in
  probability (what the faithfulness metrics with ``softmax: true`` measure).

The choice is a cell-level config key (in the explanation and cell keys) and a row column (``explain_output``).
Explainers see the model through :func:`explained_output`, and so does every re-explanation a metric makes
(``metrics/quantus_adapter.make_explain_func``). Metrics that query the model themselves declare their own output
in their params (Quantus' ``softmax``); see docs/meaning.md.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from xaibench.explainers.output_kinds import DEFAULT_EXPLAIN_OUTPUT, EXPLAIN_OUTPUTS
from xaibench.models.outputs import TransformedScores

__all__ = ["DEFAULT_EXPLAIN_OUTPUT", "EXPLAIN_OUTPUTS", "ExplainedOutput", "explained_output"]

PAIRWISE_MAX_CLASSES = 256  # up to this many classes the (N, K, K) exact form is used (memory 8 K^2 bytes/row)


def log_sum_exp_of_others(logits: torch.Tensor) -> torch.Tensor:
    """``r_k = logsumexp_{j != k}(z_j - z_k)`` ``(N, K)`` in float64 (``log((1 - p_k) / p_k)``)."""
    z = logits.double()
    if z.shape[-1] > PAIRWISE_MAX_CLASSES:
        log_p = torch.log_softmax(z, dim=-1)
        return torch.log1p(-log_p.exp().clamp(max=1 - 1e-16)) - log_p
    gaps = z.unsqueeze(-2) - z.unsqueeze(-1)  # [..., k, j] = z_j - z_k
    eye = torch.eye(z.shape[-1], dtype=torch.bool, device=z.device)
    return torch.logsumexp(gaps.masked_fill(eye, float("-inf")), dim=-1)


def log_odds(logits: torch.Tensor) -> torch.Tensor:
    """``log(p_k / (1 - p_k)) = z_k - logsumexp_{j != k} z_j`` ``(N, K)``: the class against its competitors.

    Its gradient ``grad z_k - sum_{j != k} softmax_{j != k}(z)_j grad z_j`` weighs the competitors by a
    distribution that sums to 1, so it never saturates (binary: ``z_k - z_other``).
    """
    return (-log_sum_exp_of_others(logits)).to(logits.dtype)


def confident_log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """``log softmax(z)`` ``(N, K)`` that stays informative for confident predictions.

    ``torch.log_softmax`` in float32 returns exactly 0 for the top class once its margin exceeds ~17
    (``1 + e^-17`` rounds to 1), so perturbation methods see no change. Here ``log p_k = -softplus(r_k)`` in float64
    (:func:`log_sum_exp_of_others`): ``-e^-margin`` survives the cast back to float32 down to margins of ~100.
    Gradients still scale with ``e^-margin``: for margins beyond ~80 they underflow float32 (use ``log_odds``).
    """
    return (-torch.nn.functional.softplus(log_sum_exp_of_others(logits), threshold=50.0)).to(logits.dtype)


_TRANSFORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "log_odds": log_odds,
    "log_softmax": confident_log_softmax,
    "probability": lambda logits: torch.softmax(logits.double(), dim=-1).to(logits.dtype),
}


class ExplainedOutput(TransformedScores):
    """``model`` with its class scores ``(N, K)`` replaced by ``log_softmax``, log-odds or ``softmax`` of them.

    Transparent otherwise (:class:`~xaibench.models.outputs.TransformedScores`): ``embed``, ``pad_id``,
    ``attention_maps``... are the model's own, ``forward_embedded`` and ``forward_with_attention`` are transformed
    like ``forward``, and methods the model lacks stay absent, so input-kind detection is unchanged.
    """

    def __init__(self, model: nn.Module, kind: str) -> None:
        if kind not in _TRANSFORMS:
            raise ValueError(f"explain_output must be one of {', '.join(EXPLAIN_OUTPUTS)}, got {kind!r}")
        super().__init__(model)
        self.kind = kind

    def transform(self, logits: torch.Tensor) -> torch.Tensor:
        return _TRANSFORMS[self.kind](logits)


def explained_output(model: nn.Module, kind: str) -> nn.Module:
    """The module an explainer should see for ``kind``: ``model`` itself for ``logit``, else a wrapper."""
    if kind == "logit":
        return model
    return ExplainedOutput(model, kind)
