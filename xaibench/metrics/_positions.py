"""Feature positions shared by the native perturbation metrics (ERASER, OpenXAI, exact Shapley values).

A *position* is what Quantus counts as one (``layout.n_positions``): a tabular feature, a token, a pixel (all
channels together) or a time step (all channels together). Scores per position sum the attributions over
channels; removing a position replaces all its channels by the baseline (text: the model's ``pad_id`` token).
"""
from __future__ import annotations

import numpy as np
import torch

from xaibench.explainers.inputs import pad_id
from xaibench.explainers.output import explained_output
from xaibench.types import Modality


def position_scores(attributions: torch.Tensor, modality: Modality) -> np.ndarray:
    """``(N, P)`` float64 scores: attributions summed over channels for images and series."""
    a = attributions.detach().cpu().double()
    if modality in (Modality.IMAGE, Modality.TIME_SERIES):
        a = a.sum(dim=1)
    return a.reshape(len(a), -1).numpy()


def with_positions(x: torch.Tensor, keep: np.ndarray, modality: Modality, model: torch.nn.Module,
                   baseline: float) -> torch.Tensor:
    """``x`` ``(M, ...)`` with the positions where ``keep (M, P)`` is False replaced by the baseline / pad token."""
    keep_t = torch.as_tensor(keep, device=x.device)
    if modality is Modality.TEXT:
        return torch.where(keep_t, x, torch.full_like(x, pad_id(model)))
    if modality in (Modality.IMAGE, Modality.TIME_SERIES):
        keep_t = keep_t.reshape(len(x), 1, *x.shape[2:])
    else:
        keep_t = keep_t.reshape(x.shape)
    return torch.where(keep_t, x, torch.full_like(x, baseline))


def scored_model(ctx, softmax: bool) -> torch.nn.Module:
    """The model whose target output a native metric reads (:func:`target_output`): with ``softmax`` the raw model,
    whose softmax is the class probability; without it the cell's explained output (``explain_output``: log-odds,
    logit...), the quantity the attributions explain."""
    return ctx.model if softmax else explained_output(ctx.model, ctx.explain_output)


def target_output(model: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor, softmax: bool,
                  chunk: int = 512) -> np.ndarray:
    """The target's probability (``softmax``) or logit for each row ``(M,)``, in chunks of ``chunk`` rows."""
    out = []
    with torch.no_grad():
        for start in range(0, len(x), chunk):
            logits = model(x[start : start + chunk])
            scores = torch.softmax(logits, dim=1) if softmax else logits
            out.append(scores.gather(1, targets[start : start + chunk].reshape(-1, 1).to(scores.device)).squeeze(1))
    return torch.cat(out).double().cpu().numpy()


def top_positions(scores: np.ndarray, k: int, by_magnitude: bool) -> np.ndarray:
    """``(N, P)`` bool: each row's ``k`` highest positions (``by_magnitude``: highest ``|score|``); ties keep the
    lower index first (stable sort)."""
    if not 0 <= k <= scores.shape[1]:
        raise ValueError(f"top-k needs 0 <= k <= {scores.shape[1]} positions, got k={k}")
    key = -np.abs(scores) if by_magnitude else -scores
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    mask = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask
