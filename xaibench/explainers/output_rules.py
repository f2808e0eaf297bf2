"""How the propagation methods (DeepLIFT, DeepLIFT-SHAP, LRP) pass through the explained-output transform.

Both methods propagate through the model's layers with their own rules, but ``explain_output`` (``output.py``)
puts a non-linear function of *all* logits on top, written with tensor operations that have no rule: captum then
backpropagates plain gradients through it, which breaks the methods' defining property (DeepLIFT's
summation-to-delta, LRP's conservation; LRP's relevance even summed to 0 for every non-logit output, because the
gradient of a softmax-type output sums to 0 over the logits). The suite instead declares one rule for the
transform, turns it into per-logit weights, and lets captum apply its rules from the logits down (``readout``).

Every non-logit output is an elementwise function of the target's log-odds ``l_t = z_t - log sum_{j != t} e^{z_j}``:
``log_odds = l_t``, ``log_softmax = log sigmoid(l_t)``, ``probability = sigmoid(l_t)``. The declared rules:

- **DeepLIFT (Rescale rule on the transform's decomposition).** ``l_t`` is computed as ``exp`` (elementwise) ->
  sum over the competitors (linear) -> ``log`` (elementwise) -> subtracted from ``z_t`` (linear), then the
  elementwise ``phi`` (identity, ``log sigmoid`` or ``sigmoid``). The Rescale rule gives each elementwise step the
  multiplier ``delta out / delta in`` against the reference (Shrikumar et al. 2017, sec. 3.5.1), so the logit
  multipliers ``m_k`` (:func:`deeplift_multipliers`) satisfy ``sum_k m_k (z_k - z'_k) = T(z) - T(z')`` exactly,
  and DeepLIFT's attributions sum to ``f(x) - f(baseline)`` of the explained output.
- **LRP (relevance passes the elementwise steps; soft-min over class contrasts).** The explained value
  ``R = T(z)`` is the relevance of ``l_t`` (an elementwise activation passes relevance on unchanged, as LRP does
  for ReLU). ``l_t = -log sum_{c != t} e^{-(z_t - z_c)}`` is a soft-min over the class contrasts
  ``d_c = z_t - z_c``; it shares ``R`` among them in proportion to the soft-min weights
  ``s_c = softmax_{c != t}(z)_c`` (the LSE's own weights). Each contrast ``d_c`` is a linear unit of the last
  layer (weights ``w_t - w_c``); LRP-0 through it equals giving logit ``t`` relevance ``R_c z_t / d_c`` and logit
  ``c`` relevance ``-R_c z_c / d_c``, so the logit relevances (:func:`lrp_logit_relevance`) sum to ``R``, and on
  a network without biases the input relevances sum to the explained output exactly. For two classes this is
  LRP of ``z_t - z_other`` scaled to ``T``. The layer rule (epsilon / gamma / alpha1_beta0) then applies to each
  logit's share from the logit layer down (for the non-epsilon rules the logit layer is ruled per logit, not per
  contrast).

``logit`` needs no rule: the methods run on the model as before.
"""
from __future__ import annotations

import torch
from torch import nn

from xaibench.explainers.base import EmbeddedForward
from xaibench.explainers.output import ExplainedOutput

TINY = 1e-12  # below this |delta| a secant is replaced by the derivative (the Rescale rule's own fallback)


def split_output(model: nn.Module) -> tuple[nn.Module, str]:
    """``(the logit-level model, explain_output)`` behind ``model`` (an :class:`ExplainedOutput`, possibly inside an
    :class:`EmbeddedForward`); ``(model, "logit")`` for a model that returns logits.

    The transform must be on top: wrappers go *under* it (the engine's forward counter:
    ``explained_output(ForwardCounter(model), kind)``). One found deeper (``ForwardCounter(ExplainedOutput(m))``)
    raises ``TypeError`` instead of being read as a logit model: captum would then backpropagate plain gradients
    through the transform, silently skipping the declared rule (as the sweep's stored maps once did).
    """
    if isinstance(model, ExplainedOutput):
        return model.model, model.kind
    if isinstance(model, EmbeddedForward) and isinstance(model.model, ExplainedOutput):
        return EmbeddedForward(model.model.model), model.model.kind
    buried = [type(m).__name__ for m in model.modules() if isinstance(m, ExplainedOutput)]
    if buried:
        raise TypeError(f"{type(model).__name__} wraps the explained-output transform ({buried[0]}): the output rules "
                        "of DeepLIFT/LRP need it on top; wrap the model first, then apply explained_output()")
    return model, "logit"


class Readout(nn.Module):
    """``x -> sum_k weights_k * model(x)_k`` ``(N, 1)``: the logits read out with per-sample weights ``(N, K)``.

    A function with no layers of its own (captum's rules apply to ``model``'s layers only); the weights travel as
    ``additional_forward_args`` so captum expands them with the batch. ``unit_value``: the output's value is 1
    (its gradient unchanged), so captum's LRP, which scales its normalised relevance by the output, returns LRP with
    relevance ``weights`` at the logits.
    """

    def __init__(self, model: nn.Module, unit_value: bool = False) -> None:
        super().__init__()
        self.model = model
        self.unit_value = unit_value

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        out = (logits * weights.to(logits.dtype)).sum(dim=-1, keepdim=True)
        return out - out.detach() + 1.0 if self.unit_value else out


def _target_mask(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.one_hot(target.reshape(-1).to(logits.device), logits.shape[-1]).bool()


def log_odds_value(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``l_t = z_t - logsumexp_{j != t} z_j`` ``(N,)`` in float64 (``z`` ``(N, K)``, ``K >= 2``)."""
    z = z.double()
    mask = _target_mask(z, target)
    return z[mask] - torch.logsumexp(z.masked_fill(mask, float("-inf")), dim=-1)


def _phi(kind: str, value: torch.Tensor) -> torch.Tensor:
    """The elementwise function of the log-odds that ``kind`` explains."""
    if kind == "log_odds":
        return value
    if kind == "log_softmax":
        return nn.functional.logsigmoid(value)
    if kind == "probability":
        return torch.sigmoid(value)
    raise ValueError(f"no output rule for explain_output {kind!r}")


def _phi_slope(kind: str, value: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Rescale multiplier of ``phi``: ``(phi(l) - phi(l')) / (l - l')``, the derivative where ``l ~ l'``."""
    delta = value - reference
    derivative = {"log_odds": torch.ones_like(value), "log_softmax": torch.sigmoid(-value),
                  "probability": torch.sigmoid(value) * torch.sigmoid(-value)}[kind]
    secant = (_phi(kind, value) - _phi(kind, reference)) / torch.where(delta.abs() < TINY, 1.0, delta)
    return torch.where(delta.abs() < TINY, derivative, secant)


def explained_value(kind: str, z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``T(z)`` ``(N,)`` float64 for ``kind`` through the log-odds (``phi(l_t)``; ``logit``: ``z_t``)."""
    if kind == "logit":
        return z.double()[_target_mask(z, target)]
    return _phi(kind, log_odds_value(z, target))


def deeplift_multipliers(kind: str, z: torch.Tensor, z_ref: torch.Tensor, target: torch.Tensor, *,
                         centred: bool = False) -> torch.Tensor:
    """DeepLIFT multipliers ``m`` ``(N, K)`` float64 of the output with respect to the logits (Rescale rule on
    ``exp -> sum -> log -> phi``, module docstring): ``sum_k m_k (z_k - z'_k) = T(z) - T(z')`` exactly.

    ``centred``: multipliers that also sum to 0 over the classes, for a model whose output is a ``log_softmax`` (or a
    ``softmax`` the suite takes the log of: ``z = log p``). ``T`` does not change when a constant is added to all
    logits, so the rule runs on ``z - mean(z)`` against ``z' - mean(z')`` and its multipliers are centred; they still
    sum to ``T(z) - T(z')`` over ``z - z'``. captum crosses the final normalisation with its gradient, whose Jacobian
    ``I - 1 p^T`` leaves multipliers summing to 0 as they are: the map sums to the change of the explained output
    exactly (Shrikumar et al. 2017, sec. 3.6: contributions to the layer before a final softmax, mean over the
    classes subtracted). Uncentred, it was off by ``sum_k m_k`` times ``delta logsumexp(z) - p . delta z``.

    Args:
        z, z_ref: logits at the input and at the reference ``(N, K)``.
        target: explained classes ``(N,)``.
    """
    if centred:
        z, z_ref = z.double(), z_ref.double()
        multipliers = deeplift_multipliers(kind, z - z.mean(-1, keepdim=True), z_ref - z_ref.mean(-1, keepdim=True),
                                           target)
        return multipliers - multipliers.mean(-1, keepdim=True)
    z, z_ref = z.double(), z_ref.double()
    mask = _target_mask(z, target)
    competitors, competitors_ref = z.masked_fill(mask, float("-inf")), z_ref.masked_fill(mask, float("-inf"))
    shift = torch.maximum(competitors.amax(-1), competitors_ref.amax(-1))
    a = torch.exp(z - shift[:, None]).masked_fill(mask, 0.0)  # e^{z_j - c}, competitors only
    a_ref = torch.exp(z_ref - shift[:, None]).masked_fill(mask, 0.0)
    dz = z - z_ref
    # exp: (e^{z} - e^{z'}) / (z - z') = e^{z'} expm1(dz) / dz
    exp_slope = torch.where(dz.abs() < TINY, a, a_ref * torch.expm1(dz) / torch.where(dz.abs() < TINY, 1.0, dz))
    total, total_ref = a.sum(-1), a_ref.sum(-1)
    ratio = (total - total_ref) / total_ref
    # log: (log S - log S') / (S - S'), with log S from the logits (logsumexp): S itself underflows against S' once
    # the competitors fell ~37 nats below the reference (a confident prediction), and log1p(r) of r = -1 + 1e-17,
    # which rounds to -1, was -inf: the multipliers, hence the map, were inf/NaN.
    log_change = (torch.logsumexp(competitors - shift[:, None], dim=-1)
                  - torch.logsumexp(competitors_ref - shift[:, None], dim=-1))
    log_slope = torch.where(ratio.abs() < TINY, 1.0 / total_ref,
                            log_change / torch.where(ratio.abs() < TINY, 1.0, total - total_ref))
    multipliers = (-log_slope[:, None] * exp_slope).masked_fill(mask, 1.0)  # of l_t
    value, reference = log_odds_value(z, target), log_odds_value(z_ref, target)
    return multipliers * _phi_slope(kind, value, reference)[:, None]


def lrp_logit_relevance(kind: str, z: torch.Tensor, target: torch.Tensor, epsilon: float = 1e-9) -> torch.Tensor:
    """Relevance ``(N, K)`` float64 of each logit for the explained output ``T(z)`` (module docstring): the soft-min
    over the class contrasts ``d_c = z_t - z_c`` shares ``T(z)`` by ``softmax_{c != t}(z)``, and LRP through each
    contrast unit gives logit ``t`` ``R_c z_t / d_c`` and logit ``c`` ``-R_c z_c / d_c``. Rows sum to ``T(z)``
    (up to ``epsilon``, the contrast units' stabiliser, as the epsilon rule's)."""
    z = z.double()
    mask = _target_mask(z, target)
    value = explained_value(kind, z, target)
    shares = torch.softmax(z.masked_fill(mask, float("-inf")), dim=-1) * value[:, None]  # R_c, 0 at t
    contrast = z[mask][:, None] - z
    sign = torch.where(contrast >= 0, 1.0, -1.0)
    per_unit = (shares / (contrast + sign * epsilon)).masked_fill(mask, 0.0)  # R_c / d_c
    relevance = -per_unit * z
    relevance[mask] = (per_unit * z[mask][:, None]).sum(-1)
    return relevance
