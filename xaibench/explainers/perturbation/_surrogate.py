"""Vectorised surrogate-model attribution (captum's ``LimeBase`` estimator, batched).

captum fits one surrogate per sample and draws its coalitions one at a time in Python (54% of Kernel SHAP's
time). Here every sample's coalitions are drawn at once from the sample's own generator, all perturbed inputs of
the batch are forwarded ``rows_per_forward`` rows at a time, and the weighted least squares of every sample are
solved in one batched call. The estimator is captum's: the same coalition distributions, perturbation
``x * z + baseline * (1 - z)``, similarity weights and linear fit with intercept (sklearn's weighted centring,
then a minimum-norm least-squares solve); only the random stream differs (agreement within sampling tolerance,
exact on linear models: ``tests/unit/test_explainers_surrogate.py``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

KERNEL_SHAP_INF_WEIGHT = 1_000_000.0  # captum's weight of the empty and the full coalition


def kernel_shap_coalitions(n_features: int, n_samples: int, generator: torch.Generator) -> torch.Tensor:
    """captum's Kernel SHAP sampling, vectorised: ``(n_samples, M)`` float 0/1 rows.

    Row 0 keeps every feature, row 1 none; each further row draws ``k ~ p(k) = (M - 1) / (k (M - k))`` for
    ``k = 1..M-1`` and keeps ``k`` features uniformly at random (Lundberg & Lee 2017, Shapley kernel by sampling).
    """
    m = n_features
    rows = [torch.ones(1, m), torch.zeros(1, m)]
    n_random = max(0, n_samples - 2)
    if n_random and m > 1:
        k = torch.arange(1, m, dtype=torch.float64)
        probs = (m - 1) / (k * (m - k))
        counts = torch.multinomial(probs, n_random, replacement=True, generator=generator) + 1  # (n,)
        noise = torch.randn(n_random, m, generator=generator)
        ranks = noise.argsort(dim=1).argsort(dim=1)  # 0 = smallest
        rows.append((ranks >= (m - counts)[:, None]).float())
    elif n_random:
        rows.append(torch.ones(n_random, m))
    return torch.cat(rows)[:n_samples]


def kernel_shap_weights(coalitions: torch.Tensor) -> torch.Tensor:
    """``(n, M) -> (n,)``: captum's similarity: ``1e6`` for the empty and the full coalition, 1 otherwise."""
    kept = coalitions.sum(dim=1)
    ends = (kept == 0) | (kept == coalitions.shape[1])
    return torch.where(ends, torch.tensor(KERNEL_SHAP_INF_WEIGHT), torch.tensor(1.0))


def lime_coalitions(n_features: int, n_samples: int, generator: torch.Generator) -> torch.Tensor:
    """captum's LIME sampling: every feature kept with probability 0.5, ``(n_samples, M)``."""
    return (torch.rand(n_samples, n_features, generator=generator) < 0.5).float()


def target_outputs(forward: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, baselines: torch.Tensor,
                   mask: torch.Tensor, coalitions: torch.Tensor, target: torch.Tensor, rows_per_forward: int
                   ) -> torch.Tensor:
    """Target outputs ``(N, n)`` at ``inputs * z + baselines * (1 - z)`` for every sample and coalition.

    Args:
        inputs, baselines: ``(N, ...)``.
        mask: ``(1, ...)`` long, the interpretable feature of each element (0..M-1).
        coalitions: ``(N, n, M)`` 0/1.
        target: ``(N,)`` classes.
        rows_per_forward: perturbed inputs per model call.
    """
    n_inputs, n_coalitions = coalitions.shape[:2]
    flat_mask = mask[0].reshape(-1).to(inputs.device)
    shape = inputs.shape[1:]
    total = n_inputs * n_coalitions
    outputs = []
    for start in range(0, total, rows_per_forward):
        index = torch.arange(start, min(start + rows_per_forward, total), device=inputs.device)
        sample, draw = index // n_coalitions, index % n_coalitions
        z = coalitions.to(inputs.device)[sample, draw][:, flat_mask].reshape(len(index), *shape).to(inputs.dtype)
        perturbed = inputs[sample] * z + baselines[sample] * (1 - z)
        logits = forward(perturbed)
        outputs.append(logits.gather(1, target[sample].reshape(-1, 1)).reshape(-1))
    return torch.cat(outputs).reshape(n_inputs, n_coalitions)


def weighted_least_squares(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Per sample, the coefficients of ``y ~ b + z c`` weighted by ``w`` (sklearn ``LinearRegression``'s fit).

    Args:
        z: ``(N, n, M)`` design; y: ``(N, n)`` targets; w: ``(N, n)`` positive weights.

    Returns:
        ``(N, M)`` coefficients (float64), the minimum-norm solution where the design is rank deficient.
    """
    z, y, w = z.double().cpu(), y.double().cpu(), w.double().cpu()
    total = w.sum(dim=1, keepdim=True)
    z_mean = (w[..., None] * z).sum(dim=1, keepdim=True) / total[..., None]
    y_mean = (w * y).sum(dim=1, keepdim=True) / total
    root = w.sqrt()
    a = (z - z_mean) * root[..., None]
    b = ((y - y_mean) * root)[..., None]
    return torch.linalg.lstsq(a, b, driver="gelsd").solution[..., 0]


def lasso(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, alpha: float) -> torch.Tensor:
    """Per sample, sklearn ``Lasso(alpha)`` with sample weights on float32 data, as captum's ``SkLearnLasso``."""
    from sklearn.linear_model import Lasso

    coefs = []
    for zi, yi, wi in zip(z.float().cpu().numpy(), y.float().cpu().numpy(), w.float().cpu().numpy()):
        coefs.append(Lasso(alpha=alpha).fit(zi, yi, sample_weight=wi).coef_.astype(np.float64))
    return torch.as_tensor(np.stack(coefs))


def binary_cosine_weights(coalitions: torch.Tensor, kernel_width: float) -> torch.Tensor:
    """``(n, M) -> (n,)``: LIME's ``exp(-d^2 / (2 w^2))``, ``d = 1 - sqrt(|z| / M)`` (cosine distance to all-ones)."""
    distance = 1.0 - (coalitions.sum(dim=1).double() / coalitions.shape[1]).sqrt()
    return torch.exp(-(distance**2) / (2 * kernel_width**2))


def spread(coefficients: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(N, M)`` coefficients -> ``(N, ...)`` attributions: every element carries its feature's coefficient."""
    return coefficients[:, mask[0].reshape(-1).cpu()].reshape(len(coefficients), *mask.shape[1:])


def n_features(mask: torch.Tensor) -> int:
    return int(mask.max().item()) + 1 if mask.numel() else 0


__all__ = ["binary_cosine_weights", "kernel_shap_coalitions", "kernel_shap_weights", "lasso", "lime_coalitions",
           "n_features", "spread", "target_outputs", "weighted_least_squares"]
