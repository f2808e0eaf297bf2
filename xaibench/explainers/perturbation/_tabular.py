"""Numpy prediction functions over a torch model, for the shap and lime libraries (tabular ``(N, F)`` only)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn


TARGET_BATCH = 4096  # rows per forward of target_logit_fn


def target_logit_fn(model: nn.Module, target: int, like: torch.Tensor, batch_size: int = TARGET_BATCH
                    ) -> Callable[[np.ndarray], np.ndarray]:
    """``z (n, F) -> logit_target(z) (n,)`` in float64, evaluated in chunks of ``batch_size`` rows per forward."""

    def predict(z: np.ndarray) -> np.ndarray:
        rows = torch.as_tensor(np.asarray(z), dtype=like.dtype, device=like.device).reshape(-1, like.shape[-1])
        with torch.no_grad():
            out = [model(rows[i : i + batch_size])[:, target] for i in range(0, len(rows), batch_size)]
        return torch.cat(out).double().cpu().numpy()

    return predict
