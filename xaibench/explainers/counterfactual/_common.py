"""Shared pieces of the counterfactual methods: the contrast class, distances, the explanation record."""
from __future__ import annotations

import numpy as np
import torch

from xaibench.types import Explanation


def check_dense(method: str, x: torch.Tensor) -> None:
    if not x.dtype.is_floating_point:
        raise TypeError(f"{method} searches counterfactuals in a continuous input space; got {x.dtype} inputs")


def runner_up(logits: torch.Tensor) -> torch.Tensor:
    """The most likely class other than the predicted one, ``(N,)``."""
    predicted = logits.argmax(dim=1, keepdim=True)
    return logits.scatter(1, predicted, float("-inf")).argmax(dim=1)


def l2_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).flatten(1).norm(dim=1)


def counterfactual_explanation(x: torch.Tensor, counterfactuals: torch.Tensor, valid: torch.Tensor,
                               **extras: torch.Tensor) -> Explanation:
    """Attributions ``x - x_cf``; extras ``valid`` (1.0 if the prediction flipped), ``distance`` (L2) and more."""
    record = {"valid": valid.float(), "distance": l2_distance(x, counterfactuals), **extras}
    return Explanation(
        attributions=(x - counterfactuals).detach(),
        counterfactuals=counterfactuals.detach(),
        extras={k: v.detach().double().cpu().numpy().astype(np.float64) for k, v in record.items()},
    )
