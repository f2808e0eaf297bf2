"""OpenXAI's metrics (Agarwal et al., 2022, "OpenXAI: Towards a Transparent Evaluation of Model Explanations"),
defined as in OpenXAI's ``metrics.py``.

Prediction gap (tabular; any model):

- PGI (``openxai_pgi``): ``E_eps |p(x) - p(x + eps * m_k)|``, ``m_k`` the top-``k`` features by ``|a|``, ``eps ~
  N(0, std^2)``: perturbing the important features should move the prediction (higher is better).
- PGU (``openxai_pgu``): the same on the other features (lower is better).

``p``: the target's softmax probability (OpenXAI's models output probabilities; its binary tasks read one
column). ``k`` as a fraction of the features or a count.

Ground-truth agreement (tabular; any model on a dataset with true coefficients, else LINEAR models). The ground
truth ``g`` ``(N, F)`` (param ``ground_truth``, recorded in every row; ``auto`` picks the first that exists):

- ``generator``: the data generator's true coefficients where the dataset has them (``synthetic_tabular`` with the
  ``linear`` score: ``w`` on the informative features, 0 on the nuisance ones), sign-flipped for class 0 as OpenXAI
  flips its ground truth for the explained prediction (``(2 t - 1) w``). The model's own fit does not enter, so
  any model applies (the data's truth, as with the localisation masks; OpenXAI itself scores only its LR models).
- ``model_coefficients``: on datasets without known coefficients, the linear model's coefficients for the
  explained output: ``W[t]`` for ``explain_output=logit``; otherwise the log-odds direction
  ``W^T (e_t - softmax_{j != t}(z))``, which for two classes is OpenXAI's LR ground truth ``(2 t - 1)(W_1 - W_0)``
  exactly, and for any class count has the ranks and signs of the gradient of log_odds, log_softmax and
  probability alike (they differ from it by positive factors).

The metrics:

- FA: ``|top_k(a) & top_k(g)| / k`` (top by magnitude); SA: the same counting only features whose signs agree;
- RA: share of the ``k`` rank positions holding the same feature; SRA: same feature and same sign;
- RC: Pearson correlation of the dense ranks of ``|a|`` and ``|g|`` (Spearman-like, over all features);
- PRA: share of feature pairs ``(i, j)`` ordered alike by ``|a|`` and ``|g|`` (dense ranks), over all features.

Ties: top-``k`` uses a stable sort (lower feature index first); OpenXAI's ``argsort`` leaves tie order to numpy.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from xaibench.explainers.seeding import generator, sample_seeds
from xaibench.metrics._positions import target_output, top_positions
from xaibench.metrics.spec import Family, MetricSpec, Screen, register_metric
from xaibench.types import Capability, Modality

TABULAR = frozenset({Modality.TABULAR})


# Prediction gaps --------------------------------------------------------------------------------------------
def prediction_gap(ctx, k: int, important: bool, std: float, n_samples: int) -> np.ndarray:
    """``mean_s |p(x) - p(x + eps_s * mask)|`` per sample ``(N,)``; noise drawn per sample from its own seed."""
    x = ctx.x.detach()
    a = ctx.attributions.detach().cpu().double().reshape(len(x), -1).numpy()
    mask = top_positions(a, k, by_magnitude=True)
    mask = mask if important else ~mask
    full = target_output(ctx.model, x, ctx.targets, softmax=True)
    out = []
    for i, seed in enumerate(sample_seeds(x, "openxai_pg")):
        noise = torch.randn((n_samples, x.shape[1]), generator=generator(seed)).to(x.device, x.dtype) * std
        perturbed = x[i] + noise * torch.as_tensor(mask[i], device=x.device, dtype=x.dtype)
        probabilities = target_output(ctx.model, perturbed, ctx.targets[i].expand(n_samples), softmax=True)
        out.append(np.abs(probabilities - full[i]).mean())
    return np.asarray(out)


def openxai_pgi(ctx, k: float | int = 0.25, std: float = 0.1, n_samples: int = 100) -> np.ndarray:
    return prediction_gap(ctx, int(k), True, std, n_samples)


def openxai_pgu(ctx, k: float | int = 0.25, std: float = 0.1, n_samples: int = 100) -> np.ndarray:
    return prediction_gap(ctx, int(k), False, std, n_samples)


# Ground-truth agreement: pure functions on (N, F) arrays ------------------------------------------------------
def feature_agreement(a: np.ndarray, g: np.ndarray, k: int, signed: bool = False) -> np.ndarray:
    """FA (``signed``: SA): share of the top-``k`` features (by magnitude) common to both (with the same sign)."""
    top_a, top_g = top_positions(a, k, True), top_positions(g, k, True)
    common = top_a & top_g
    if signed:
        common &= np.sign(a) == np.sign(g)
    return common.sum(axis=1) / k


def rank_agreement(a: np.ndarray, g: np.ndarray, k: int, signed: bool = False) -> np.ndarray:
    """RA (``signed``: SRA): share of the ``k`` rank positions holding the same feature (with the same sign)."""
    if not 1 <= k <= a.shape[1]:
        raise ValueError(f"top-k needs 1 <= k <= {a.shape[1]} features, got k={k}")
    order_a = np.argsort(-np.abs(a), axis=1, kind="stable")[:, :k]
    order_g = np.argsort(-np.abs(g), axis=1, kind="stable")[:, :k]
    same = order_a == order_g
    if signed:
        same &= np.take_along_axis(np.sign(a), order_a, 1) == np.take_along_axis(np.sign(g), order_g, 1)
    return same.sum(axis=1) / k


def rank_correlation(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """RC: Pearson correlation of the dense ranks of ``|a|`` and ``|g|`` per row (NaN if a side is constant)."""
    ra = rankdata(-np.abs(a), method="dense", axis=1)
    rg = rankdata(-np.abs(g), method="dense", axis=1)
    ra, rg = ra - ra.mean(axis=1, keepdims=True), rg - rg.mean(axis=1, keepdims=True)
    denominator = np.sqrt((ra**2).sum(axis=1) * (rg**2).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, (ra * rg).sum(axis=1) / denominator, np.nan)


def pairwise_rank_agreement(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """PRA: share of feature pairs ``i < j`` with ``rank_a(i) < rank_a(j)`` iff ``rank_g(i) < rank_g(j)``."""
    ra = rankdata(-np.abs(a), method="dense", axis=1)
    rg = rankdata(-np.abs(g), method="dense", axis=1)
    pairs = list(itertools.combinations(range(a.shape[1]), 2))
    agree = sum((ra[:, i] < ra[:, j]) == (rg[:, i] < rg[:, j]) for i, j in pairs)
    return agree / len(pairs)


# Ground truth ------------------------------------------------------------------------------------------------
GROUND_TRUTHS = ("auto", "generator", "model_coefficients")


def resolve_ground_truth(params: dict[str, Any], ctx) -> dict[str, Any]:
    """``ground_truth: auto`` -> ``generator`` where the dataset has true coefficients, else ``model_coefficients``."""
    source = params.get("ground_truth", "auto")
    if source == "auto":
        source = "generator" if ctx.coefficients is not None else "model_coefficients"
    if source == "generator" and ctx.coefficients is None:
        raise ValueError("ground_truth=generator needs a dataset generated by a linear score (synthetic_tabular with "
                         "variant=linear); use ground_truth=model_coefficients or auto")
    return {**params, "ground_truth": source}


def generator_ground_truth(ctx) -> np.ndarray:
    """``(2 t - 1) w`` ``(N, F)``: the generator's class-1 coefficients ``w``, negated where class 0 is explained."""
    w = np.asarray(ctx.coefficients, dtype=np.float64).reshape(-1)
    width = int(np.prod(ctx.x.shape[1:]))
    if w.shape[0] != width:
        raise ValueError(f"the generator has {w.shape[0]} coefficients for {width} features")
    targets = ctx.targets.detach().cpu().numpy().reshape(-1)
    if ctx.n_classes != 2 or not np.isin(targets, (0, 1)).all():
        raise ValueError("generator coefficients define a binary task (class 1 iff x @ w > 0)")
    return (2.0 * targets - 1.0)[:, None] * w[None, :]


def model_ground_truth(ctx) -> np.ndarray:
    """The LINEAR model's coefficients for the explained output ``(N, F)`` (module docstring): ``W[t]`` for the
    logit, ``W^T (e_t - softmax_{j != t}(z))`` for the other outputs; float64."""
    x = ctx.x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = ctx.model(x)
        rows = [torch.autograd.grad(logits[:, k].sum(), x, retain_graph=True)[0].reshape(len(x), -1)
                for k in range(logits.shape[1])]
    coefficients = torch.stack(rows, dim=1).detach().cpu().double()  # (N, K, F): W of each sample
    spread = (coefficients - coefficients[:1]).abs().max().item() if len(coefficients) else 0.0
    if spread > 1e-5 * (1.0 + coefficients.abs().max().item()):
        raise ValueError("ground_truth=model_coefficients needs a linear model (its input gradient differs between "
                         "samples); use ground_truth=generator on a dataset with true coefficients")
    z = logits.detach().cpu().double()
    target = nn.functional.one_hot(ctx.targets.detach().cpu().reshape(-1), z.shape[1]).double()
    if ctx.explain_output == "logit":
        weights = target
    else:
        weights = target - torch.softmax(z.masked_fill(target.bool(), float("-inf")), dim=1)
    return torch.einsum("nk,nkf->nf", weights, coefficients).numpy()


def _arrays(ctx, ground_truth: str) -> tuple[np.ndarray, np.ndarray]:
    a = ctx.attributions.detach().cpu().double().reshape(len(ctx.x), -1).numpy()
    g = generator_ground_truth(ctx) if ground_truth == "generator" else model_ground_truth(ctx)
    return a, g


def openxai_fa(ctx, k: float | int = 0.25, ground_truth: str = "auto") -> np.ndarray:
    return feature_agreement(*_arrays(ctx, ground_truth), int(k))


def openxai_sa(ctx, k: float | int = 0.25, ground_truth: str = "auto") -> np.ndarray:
    return feature_agreement(*_arrays(ctx, ground_truth), int(k), signed=True)


def openxai_ra(ctx, k: float | int = 0.25, ground_truth: str = "auto") -> np.ndarray:
    return rank_agreement(*_arrays(ctx, ground_truth), int(k))


def openxai_sra(ctx, k: float | int = 0.25, ground_truth: str = "auto") -> np.ndarray:
    return rank_agreement(*_arrays(ctx, ground_truth), int(k), signed=True)


def openxai_rc(ctx, ground_truth: str = "auto") -> np.ndarray:
    return rank_correlation(*_arrays(ctx, ground_truth))


def openxai_pra(ctx, ground_truth: str = "auto") -> np.ndarray:
    return pairwise_rank_agreement(*_arrays(ctx, ground_truth))


# Registration -------------------------------------------------------------------------------------------------
# Every metric here ranks features by |a|: a constant (or all-zero) map has no ranking, and the stable sort would
# take its first k columns as its "top k" (on synthetic_tabular, whose informative features come first, a constant
# map beat integrated gradients on RA, 0.50 vs 0.28). Such samples are NaN with the reason.
RANKING = frozenset({Screen.ZERO, Screen.CONSTANT})
_PG = {"k": 0.25, "std": 0.1, "n_samples": 100}
register_metric(MetricSpec(
    name="openxai_pgi", family=Family.FAITHFULNESS, higher_is_better=True, native=openxai_pgi, defaults=_PG,
    modalities=TABULAR, requires=frozenset({Capability.GRADIENTS}), fraction_params=("k",), screens=RANKING,
    description="Agarwal et al. 2022 (OpenXAI PGI): mean |p(x) - p(x + eps)| with Gaussian noise (std) on the "
                "top-k features by |attribution|; p the target's probability.",
))
register_metric(MetricSpec(
    name="openxai_pgu", family=Family.FAITHFULNESS, higher_is_better=False, native=openxai_pgu, defaults=_PG,
    modalities=TABULAR, requires=frozenset({Capability.GRADIENTS}), fraction_params=("k",), screens=RANKING,
    description="Agarwal et al. 2022 (OpenXAI PGU): mean |p(x) - p(x + eps)| with Gaussian noise (std) on the "
                "features outside the top-k by |attribution|; p the target's probability.",
))

_GT = dict(family=Family.GROUND_TRUTH, higher_is_better=True, modalities=TABULAR,
           requires=frozenset({Capability.LINEAR}), coefficient_truth=True, resolve=resolve_ground_truth,
           choices={"ground_truth": GROUND_TRUTHS}, screens=RANKING)
_TOP_K = {"k": 0.25, "ground_truth": "auto"}
_TRUTH = "the ground truth g"
_G = (" g (param ground_truth): the data generator's true coefficients where known (synthetic_tabular, linear; "
      "any model), else a linear model's coefficients for the explained output; sign-flipped for class 0.")
register_metric(MetricSpec(
    name="openxai_fa", native=openxai_fa, defaults=_TOP_K, fraction_params=("k",), **_GT,
    description=f"Krishna et al. 2022 / OpenXAI FA: share of the top-k features (|a|) shared with {_TRUTH}." + _G,
))
register_metric(MetricSpec(
    name="openxai_ra", native=openxai_ra, defaults=_TOP_K, fraction_params=("k",), **_GT,
    description=f"Krishna et al. 2022 / OpenXAI RA: share of the top-k rank positions holding the same feature as "
                f"in {_TRUTH}." + _G,
))
register_metric(MetricSpec(
    name="openxai_sa", native=openxai_sa, defaults=_TOP_K, fraction_params=("k",), **_GT,
    description=f"Krishna et al. 2022 / OpenXAI SA: share of the top-k features shared with {_TRUTH} with the same "
                f"sign." + _G,
))
register_metric(MetricSpec(
    name="openxai_sra", native=openxai_sra, defaults=_TOP_K, fraction_params=("k",), **_GT,
    description=f"Krishna et al. 2022 / OpenXAI SRA: share of the top-k rank positions with the same feature and "
                f"sign as {_TRUTH}." + _G,
))
register_metric(MetricSpec(
    name="openxai_rc", native=openxai_rc, defaults={"ground_truth": "auto"}, **_GT,
    nan_reason="rank correlation undefined: all |attributions| equal",
    description="Krishna et al. 2022 / OpenXAI RC: Pearson correlation of the dense ranks of |a| and of |g|." + _G,
))
register_metric(MetricSpec(
    name="openxai_pra", native=openxai_pra, defaults={"ground_truth": "auto"}, **_GT,
    description="Krishna et al. 2022 / OpenXAI PRA: share of feature pairs ordered alike by |a| and |g|." + _G,
))
