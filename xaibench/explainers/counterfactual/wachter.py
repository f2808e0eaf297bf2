"""Gradient-based counterfactuals (Wachter, Mittelstadt & Russell, 2017, "Counterfactual Explanations without
Opening the Black Box")."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar
from typing import Literal

import torch
from torch import nn

from xaibench.explainers.base import DENSE_MODALITIES, CallRows, Explainer
from xaibench.explainers.counterfactual._common import check_dense, counterfactual_explanation, runner_up
from xaibench.models.adam import FunctionalAdam
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation, Modality


def margin_hinge(logits: torch.Tensor, contrast: torch.Tensor, confidence: float) -> torch.Tensor:
    """``max(0, confidence - (z_c - max_{j != c} z_j))`` per sample: zero once class ``c`` wins by ``confidence``."""
    chosen = logits.gather(1, contrast[:, None]).squeeze(1)
    others = logits.scatter(1, contrast[:, None], float("-inf")).amax(dim=1)
    return (confidence - (chosen - others)).clamp(min=0)


def cosine_annealed_lrs(lr: float, n_steps: int) -> list[float]:
    """The ``lr`` of each of ``n_steps`` optimiser steps under ``CosineAnnealingLR(T_max=n_steps, eta_min=0)``.

    Computed as torch's scheduler updates it, step by step (its recursive form, not the closed form), so the floats
    are the scheduler's bit for bit; without building a ``torch.optim.Optimizer`` (which imports ``torch._dynamo``,
    ~2 CPU-s per fresh process).
    """
    lrs, eta_min = [lr], 0.0
    for epoch in range(1, n_steps):
        lrs.append((1 + math.cos(math.pi * epoch / n_steps)) / (1 + math.cos(math.pi * (epoch - 1) / n_steps))
                   * (lrs[-1] - eta_min) + eta_min)
    return lrs


@EXPLAINERS.register("wachter")
@dataclass(frozen=True)
class WachterExplainer(Explainer):
    """Minimise ``lambda * loss(f(x'), y') + d(x, x')`` with Adam, raising ``lambda`` until ``x'`` is valid.

    ``y'`` is the runner-up class (most likely class other than the prediction). ``loss`` is the hinge on the
    logit margin of ``y'`` (Carlini & Wagner's choice, so the minimiser lies just past the boundary, at margin
    ``confidence``); ``d`` is the L2 (or L1, Wachter's) distance. For each sample ``lambda`` starts at
    ``lambda_init`` and is multiplied by ``lambda_factor`` after every round of ``n_steps`` Adam steps (cosine-
    annealed ``lr``) that ends without ``argmax f(x') == y'``, at most ``n_lambdas`` rounds: ``lambda`` is the
    validity/proximity trade-off. On a linear model the result is the projection onto the boundary plus
    ``confidence / ||w_y' - w_y||`` (tested). Returns ``counterfactuals``, attributions ``x - x'`` and extras
    ``valid``, ``distance`` (L2), ``lambda``. Samples are optimised independently (Adam is elementwise); batch
    tolerance 1e-4 (float reassociation in batched forwards, amplified over the optimisation).
    """

    counterfactual: ClassVar[bool] = True

    modalities = DENSE_MODALITIES
    requires = frozenset({Capability.GRADIENTS})
    batch_tolerance = 1e-4
    batch_sensitive = True  # a margin a hair either side of ``confidence`` decides another lambda round
    positive_params = ("n_steps", "lr", "lambda_init", "lambda_factor", "n_lambdas")
    non_negative_params = ("confidence",)  # the margin the counterfactual's class wins by
    n_steps: int = 200
    lr: float = 0.05
    lambda_init: float = 1.0
    lambda_factor: float = 4.0
    n_lambdas: int = 8
    confidence: float = 0.1
    distance: Literal["l2", "l1"] = "l2"

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """Adam moves the batch's counterfactuals together: one row per input per step (``n_steps`` steps per lambda
        round, one after the other)."""
        return CallRows(per_input=1)

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        check_dense("wachter", x)
        x = x.detach()
        with torch.no_grad():
            contrast = runner_up(model(x))
        counterfactuals, current = x.clone(), x.clone()
        found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        lam = torch.full((len(x),), self.lambda_init, dtype=x.dtype, device=x.device)
        for _ in range(self.n_lambdas):
            active = (~found).nonzero().squeeze(1)
            if active.numel() == 0:
                break
            z = self._optimise(model, x[active], current[active], contrast[active], lam[active])
            with torch.no_grad():
                valid = model(z).argmax(dim=1) == contrast[active]
            current[active] = z
            counterfactuals[active[valid]] = z[valid]
            found[active[valid]] = True
            lam[active[~valid]] *= self.lambda_factor
        counterfactuals[~found] = current[~found]  # best effort, flagged valid = 0
        return counterfactual_explanation(x, counterfactuals, found, **{"lambda": lam})

    def _optimise(self, model: nn.Module, x: torch.Tensor, start: torch.Tensor, contrast: torch.Tensor,
                  lam: torch.Tensor) -> torch.Tensor:
        z = start.clone().requires_grad_(True)
        optimiser = FunctionalAdam([z], lr=self.lr)  # torch.optim.Adam's steps bit for bit, no torch._dynamo import
        with torch.enable_grad():
            for lr in cosine_annealed_lrs(self.lr, self.n_steps):
                optimiser.lr = lr
                optimiser.zero_grad()
                loss = lam * margin_hinge(model(z), contrast, self.confidence) + self._distance(z, x)
                loss.sum().backward()
                optimiser.step()
        return z.detach()

    def _distance(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        diff = (z - x).flatten(1)
        if self.distance == "l1":
            return diff.abs().sum(dim=1)
        return (diff.pow(2).sum(dim=1) + 1e-12).sqrt()
