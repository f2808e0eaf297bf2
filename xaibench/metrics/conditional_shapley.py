"""Distance to the *conditional* Shapley values under a Gaussian model of the data (XAI-Bench, Liu et al., 2021,
"Synthetic Benchmarks for Scientific Research in Explainable Machine Learning"; Aas et al., 2021, "Explaining
individual predictions when features are dependent").

The value of a coalition ``S`` is the expected output given the features in ``S``:
``v(S) = E[f(X) | X_S = x_S]`` with ``X ~ N(mu, Sigma)`` fitted on the training split (synthetic_tabular is exactly
Gaussian). The conditional law is ``N(mu_R + Sigma_RS Sigma_SS^-1 (x_S - mu_S), Sigma_RR - Sigma_RS Sigma_SS^-1
Sigma_SR)`` for the rest ``R`` (a pseudo-inverse where ``Sigma_SS`` is singular). With ``n_draws: 0``, ``v(S) = f(E[X | x_S])``: exact for an output linear in ``x``
(logreg's logit), a plug-in approximation otherwise; ``n_draws > 0`` averages ``f`` over that many conditional
draws (seeded). All ``2^F`` coalitions are enumerated, so at most ``max_features`` columns.

Marginal (interventional) methods such as Kernel SHAP with a mean baseline ignore the dependence; their distance to
these values grows with the features' correlation (XAI-Bench's finding; experiment ``paper_liu2021``). ``f`` is the
cell's explained output (``explain_output``; with ``softmax`` the probability instead). Two scores:

- ``conditional_shapley_distance``: the relative L2 error ``||a - phi|| / ||phi||`` (scale-free);
- ``conditional_shapley_mse``: XAI-Bench's own GT-Shapley score, ``mean_i (a_i - phi_i)^2`` per sample (their
  ``custom_metrics/shapley.py``, ``mode="mse"``: squared error summed over samples and features over ``N * F``),
  absolute, in the output's squared units.

XAI-Bench computes ``phi`` from the *true* generating Gaussian by Monte Carlo (20,000 conditional draws per
coalition); here the Gaussian is fitted on the training split (any tabular data), so even independent features
give a small nonzero distance from the sample correlations.
"""
from __future__ import annotations

import numpy as np
import torch

from xaibench.explainers.seeding import sample_seeds
from xaibench.metrics._positions import scored_model, target_output
from xaibench.metrics.shapley import coalitions, relative_l2, shapley_from_values
from xaibench.metrics.spec import Family, MetricSpec, register_metric
from xaibench.types import Modality


def conditional_points(x: np.ndarray, mean: np.ndarray, cov: np.ndarray, members: np.ndarray, n_draws: int,
                       rng: np.random.Generator) -> np.ndarray:
    """Points ``(2^F, max(1, n_draws), F)`` whose ``f``-average is ``v(S)`` for each coalition row of ``members``."""
    n_coalitions, f = members.shape
    draws = max(1, n_draws)
    points = np.empty((n_coalitions, draws, f))
    for row, known in enumerate(members):
        rest = ~known
        centre, spread = mean[rest].copy(), cov[np.ix_(rest, rest)]
        if known.any() and rest.any():
            gain = cov[np.ix_(rest, known)] @ np.linalg.pinv(cov[np.ix_(known, known)])  # Sigma_RS Sigma_SS^+
            centre = centre + gain @ (x[known] - mean[known])
            spread = spread - gain @ cov[np.ix_(known, rest)]
        points[row][:, known] = x[known]
        if n_draws > 0 and rest.any():
            values, vectors = np.linalg.eigh((spread + spread.T) / 2)
            root = vectors * np.sqrt(np.clip(values, 0.0, None))  # spread = root @ root.T (PSD, maybe singular)
            points[row][:, rest] = centre + rng.standard_normal((draws, int(rest.sum()))) @ root.T
        else:
            points[row][:, rest] = centre
    return points


def conditional_shapley(ctx, n_draws: int, softmax: bool) -> np.ndarray:
    """Conditional Shapley values ``(N, F)`` of the target output for every sample of ``ctx``."""
    if ctx.train is None or len(ctx.train.x) < 2:
        raise ValueError("conditional_shapley_distance fits the Gaussian on the training split; it needs one")
    train = ctx.train.x.detach().cpu().double().numpy()
    mean, cov = train.mean(axis=0), np.atleast_2d(np.cov(train, rowvar=False))  # (F, F), also for F = 1
    x = ctx.x.detach().cpu().double().numpy()
    members = coalitions(x.shape[1])
    model = scored_model(ctx, softmax)  # the explained output, or the probability with softmax
    phi = np.zeros(x.shape)
    for i, seed in enumerate(sample_seeds(ctx.x, "conditional_shapley")):
        points = conditional_points(x[i], mean, cov, members, n_draws, np.random.default_rng(seed))
        flat = torch.as_tensor(points.reshape(-1, x.shape[1]), dtype=ctx.x.dtype, device=ctx.x.device)
        target = ctx.targets[i].expand(len(flat))
        values = target_output(model, flat, target, softmax).reshape(points.shape[:2]).mean(axis=1)
        phi[i] = shapley_from_values(values, x.shape[1])
    return phi


def _checked_phi(ctx, name: str, n_draws: int, softmax: bool, max_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Attributions and conditional Shapley values, both ``(N, F)``; at most ``max_features`` tabular columns."""
    if ctx.x.dim() != 2 or int(ctx.x.shape[1]) > max_features:
        raise ValueError(f"{name} enumerates 2^F coalitions: {tuple(ctx.x.shape[1:])} features "
                         f"exceed max_features={max_features}")
    phi = conditional_shapley(ctx, n_draws, softmax)
    a = ctx.attributions.detach().cpu().double().reshape(len(ctx.x), -1).numpy()
    return a, phi


def conditional_shapley_distance(ctx, n_draws: int = 0, softmax: bool = False, max_features: int = 12) -> np.ndarray:
    a, phi = _checked_phi(ctx, "conditional_shapley_distance", n_draws, softmax, max_features)
    return relative_l2(a, phi)


def conditional_shapley_mse(ctx, n_draws: int = 0, softmax: bool = False, max_features: int = 12) -> np.ndarray:
    """XAI-Bench's GT-Shapley score per sample, ``mean_i (a_i - phi_i)^2`` ``(N,)``: its mean over the samples is
    their ``shapley`` metric (``mode="mse"``: the squared error summed over samples and features, divided by
    ``N * F``; ``custom_metrics/shapley.py`` in github.com/abacusai/xai-bench)."""
    a, phi = _checked_phi(ctx, "conditional_shapley_mse", n_draws, softmax, max_features)
    return np.mean((a - phi) ** 2, axis=1)


# What both XAI-Bench scores share: ground truth, lower is better, the same parameters, tabular only.
_COMMON = dict(family=Family.GROUND_TRUTH, higher_is_better=False, count_params=("n_draws",),
               defaults={"n_draws": 0, "softmax": False, "max_features": 12}, max_features_param="max_features",
               modalities=frozenset({Modality.TABULAR}))

register_metric(MetricSpec(
    name="conditional_shapley_distance",
    native=conditional_shapley_distance,
    **_COMMON,
    nan_reason="the conditional Shapley values are all zero (the target output ignores every feature)",
    description="XAI-Bench (Liu et al. 2021): relative L2 distance ||a - phi|| / ||phi|| to the conditional Shapley "
                "values phi of the explained output (explain_output; softmax: the class probability), "
                "v(S) = E[f(X) | x_S] under a Gaussian fitted on the training split (n_draws 0: f at the "
                "conditional mean, exact for linear outputs); all 2^F coalitions.",
))

register_metric(MetricSpec(
    name="conditional_shapley_mse",
    native=conditional_shapley_mse,
    **_COMMON,
    description="XAI-Bench's GT-Shapley metric (Liu et al. 2021, their shapley metric, mode mse): mean over the "
                "features of (a_i - phi_i)^2, phi the conditional Shapley values of the explained output as in "
                "conditional_shapley_distance (Gaussian fitted on the training split; 2^F coalitions). Absolute, "
                "in the output's squared units: comparable across cells only for the same model output scale.",
))
