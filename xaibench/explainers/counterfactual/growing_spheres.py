"""Growing Spheres (Laugel et al., 2018, "Comparison-Based Inverse Classification for Interpretability in Machine
Learning"): a model-agnostic counterfactual search by sampling in growing spherical layers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from xaibench.explainers.base import DENSE_MODALITIES, CallRows, Explainer
from xaibench.explainers.counterfactual._common import check_dense, counterfactual_explanation
from xaibench.explainers.seeding import generator, sample_seeds
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation, Modality

_MAX_HALVINGS = 30
_SELECTION_CHUNK = 256


def sample_layer(centre: torch.Tensor, inner: float, outer: float, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` points ``(n, d)`` uniform in the spherical layer ``inner <= ||p - centre|| <= outer`` around ``(d,)``."""
    d = centre.numel()
    directions = torch.randn((n, d), generator=gen, dtype=torch.float64)
    directions = directions / directions.norm(dim=1, keepdim=True)
    u = torch.rand((n, 1), generator=gen, dtype=torch.float64)
    ratio = (inner / outer) ** d  # radius^d uniform in [inner^d, outer^d], computed without overflow
    radius = outer * (ratio + u * (1 - ratio)) ** (1.0 / d)
    return centre[None, :] + (radius * directions).to(centre.device, centre.dtype)


@EXPLAINERS.register("growing_spheres")
@dataclass(frozen=True)
class GrowingSpheresExplainer(Explainer):
    """Closest point with a different prediction found by sampling ``n_samples`` points per spherical layer.

    The initial radius ``eta`` is halved until the ball around ``x`` holds no point of another class; then layers
    ``[a, a + eta]`` grow outwards (at most ``max_layers``) until one does, and the closest such point is kept.
    ``sparsify``: Laugel et al.'s feature selection, which moves the coordinates with the smallest change back to
    ``x`` while the prediction stays flipped (all candidates evaluated in a few batched forwards). Only the
    model's predictions are used. Sampling uses a CPU generator seeded per sample, so a batch equals each sample
    alone exactly. Returns ``counterfactuals`` (``x`` itself where none was found, ``valid = 0``), attributions
    ``x - x'`` and extras ``valid``, ``distance`` (L2), ``radius`` (outer radius of the successful layer).
    """

    counterfactual: ClassVar[bool] = True

    modalities = DENSE_MODALITIES
    positive_params = ("n_samples", "eta", "max_layers")
    n_samples: int = 500
    eta: float = 1.0
    max_layers: int = 50
    sparsify: bool = True

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """The batch's predictions, then per sample one spherical layer of ``n_samples`` points per forward."""
        return CallRows(per_input=1, per_call=self.n_samples)

    @torch.no_grad()
    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        check_dense("growing_spheres", x)
        x = x.detach()
        predicted = model(x).argmax(dim=1)
        results, valid, radii = [], [], []
        for i, seed in enumerate(sample_seeds(x, "growing_spheres")):
            flat = x[i].reshape(-1)

            def is_enemy(points: torch.Tensor, label: int = int(predicted[i])) -> torch.Tensor:
                return model(points.reshape(-1, *x.shape[1:])).argmax(dim=1) != label

            enemy, radius = self._search(flat, is_enemy, generator(seed))
            if enemy is not None and self.sparsify:
                enemy = self._select_features(flat, enemy, is_enemy)
            results.append(flat if enemy is None else enemy)
            valid.append(enemy is not None)
            radii.append(radius)
        counterfactuals = torch.stack(results).reshape(x.shape)
        return counterfactual_explanation(
            x, counterfactuals, torch.tensor(valid, device=x.device), radius=torch.tensor(radii, dtype=torch.float64),
        )

    def _search(self, flat: torch.Tensor, is_enemy, gen: torch.Generator) -> tuple[torch.Tensor | None, float]:
        eta = self.eta
        for _ in range(_MAX_HALVINGS):
            if not is_enemy(sample_layer(flat, 0.0, eta, self.n_samples, gen)).any():
                break
            eta /= 2
        inner = eta
        for _ in range(self.max_layers):
            outer = inner + eta
            points = sample_layer(flat, inner, outer, self.n_samples, gen)
            hits = is_enemy(points)
            if hits.any():
                enemies = points[hits]
                return enemies[(enemies - flat).norm(dim=1).argmin()], outer
            inner = outer
        return None, inner

    def _select_features(self, flat: torch.Tensor, enemy: torch.Tensor, is_enemy) -> torch.Tensor:
        """Greedy feature selection: reset the k smallest changes for the largest k that keeps an enemy."""
        order = (enemy - flat).abs().argsort()
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(order), device=order.device)
        best = enemy
        for start in range(1, len(order) + 1, _SELECTION_CHUNK):
            ks = torch.arange(start, min(start + _SELECTION_CHUNK, len(order) + 1), device=flat.device)
            reset = rank[None, :] < ks[:, None]
            candidates = torch.where(reset, flat[None, :], enemy[None, :])
            hits = is_enemy(candidates)
            if not hits.all():
                first_miss = int((~hits).nonzero()[0])
                return candidates[first_miss - 1] if first_miss > 0 else best
            best = candidates[-1]
        return best
