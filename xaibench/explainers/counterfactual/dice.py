"""Diverse counterfactuals, DiCE's model-agnostic random variant (Mothilal et al., 2020, "Explaining Machine
Learning Classifiers through Diverse Counterfactual Explanations"), written on torch.

DiCE asks for several counterfactuals per sample that are each valid and close to the input, and different from
one another. Its random method samples candidates that change a few features at random, keeps those that flip
the prediction, and returns ``total_CFs`` of them. Here the choice among the valid candidates is explicit:
a greedy maximisation of DiCE's objective (proximity to ``x`` traded against the distance to the counterfactuals
already chosen), after DiCE's post-hoc sparsity step (changes that are not needed to keep the flip are undone).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from xaibench.explainers.base import CallRows, Explainer
from xaibench.explainers.counterfactual._common import check_dense
from xaibench.explainers.seeding import generator, sample_seeds
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation, Modality


def sample_candidates(x: torch.Tensor, n: int, change_probability: float, scale: float,
                      gen: torch.Generator) -> torch.Tensor:
    """``n`` candidates ``(n, F)`` around ``x (F,)``: each feature is redrawn with ``change_probability`` (at least
    one per candidate) as ``x_i + scale * N(0, 1)``; the others keep their value."""
    f = x.numel()
    changed = torch.rand((n, f), generator=gen) < change_probability
    changed[torch.arange(n), torch.randint(0, f, (n,), generator=gen)] = True
    noise = scale * torch.randn((n, f), generator=gen, dtype=torch.float64)
    candidates = x.double()[None, :] + torch.where(changed, noise, torch.zeros_like(noise))
    return candidates.to(x.dtype)


def undo_unneeded_changes(x: torch.Tensor, candidates: torch.Tensor, is_valid) -> torch.Tensor:
    """DiCE's post-hoc sparsity: per candidate, reset changed features to ``x`` (smallest change first) while the
    candidate stays valid. One batched forward per feature position. ``candidates (n, F)``, ``x (F,)``."""
    out = candidates.clone()
    order = (out - x[None, :]).abs().argsort(dim=1)  # smallest change first
    rows = torch.arange(len(out))
    for step in range(x.numel()):
        column = order[:, step]
        trial = out.clone()
        trial[rows, column] = x[column]
        keep = is_valid(trial)
        out[keep] = trial[keep]
    return out


def select_diverse(x: torch.Tensor, valid: torch.Tensor, k: int, proximity_weight: float) -> torch.Tensor:
    """Greedy DiCE objective: indices of up to ``k`` rows of ``valid (m, F)``.

    First the closest to ``x``; then, each time, the candidate maximising ``min distance to the chosen ones -
    proximity_weight * distance to x`` (DiCE trades diversity against proximity with such weights).
    """
    if len(valid) == 0:
        return torch.empty(0, dtype=torch.long)
    to_x = (valid - x[None, :]).norm(dim=1).double()
    chosen = [int(to_x.argmin())]
    nearest = (valid - valid[chosen[0]][None, :]).norm(dim=1).double()
    while len(chosen) < min(k, len(valid)):
        gain = nearest - proximity_weight * to_x
        gain[chosen] = float("-inf")
        best = int(gain.argmax())
        if nearest[best] <= 0:  # only duplicates left
            break
        chosen.append(best)
        nearest = torch.minimum(nearest, (valid - valid[best][None, :]).norm(dim=1).double())
    return torch.tensor(chosen, dtype=torch.long)


@EXPLAINERS.register("dice")
@dataclass(frozen=True)
class DiceExplainer(Explainer):
    """``n_counterfactuals`` diverse counterfactuals per sample (tabular ``(N, F)``); model-agnostic.

    Per sample: ``n_samples`` random candidates (:func:`sample_candidates`; ``scale`` doubles, at most
    ``max_rounds`` times, while fewer than ``n_counterfactuals`` flip the prediction), unneeded changes undone
    (``sparsify``), then :func:`select_diverse`. A counterfactual is valid when the model's predicted class differs
    from its prediction for ``x``. Where fewer are found, the remaining slots hold ``x`` itself (invalid: visible
    in ``cf_validity``). Returns ``counterfactuals (N, K, F)``, attributions ``x - mean_k x_cf_k`` (the average
    change, shaped like ``x``) and extras ``valid`` (share of valid slots), ``distance`` (mean L2 to ``x``),
    ``n_found``. Sampling uses a CPU generator seeded per sample: a batch equals each sample alone exactly.
    """

    counterfactual: ClassVar[bool] = True

    modalities = frozenset({Modality.TABULAR})
    positive_params = ("n_counterfactuals", "n_samples", "scale", "max_rounds")
    non_negative_params = ("proximity_weight",)
    fraction_params = ("change_probability",)
    n_counterfactuals: int = 4
    n_samples: int = 1000
    change_probability: float = 0.3
    scale: float = 1.0
    max_rounds: int = 4
    proximity_weight: float = 0.5
    sparsify: bool = True

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """The batch's predictions, then per sample its ``n_samples`` candidates per forward."""
        return CallRows(per_input=1, per_call=self.n_samples)

    @torch.no_grad()
    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        check_dense("dice", x)
        if x.dim() != 2:
            raise TypeError(f"dice explains tabular inputs (N, F), got {tuple(x.shape)}")
        x = x.detach()
        predicted = model(x).argmax(dim=1)
        sets, found = [], []
        for i, seed in enumerate(sample_seeds(x, "dice")):
            chosen = self._counterfactuals(model, x[i], int(predicted[i]), generator(seed))
            found.append(len(chosen))
            padding = x[i][None, :].expand(self.n_counterfactuals - len(chosen), -1)
            sets.append(torch.cat([chosen, padding]))
        counterfactuals = torch.stack(sets)  # (N, K, F)
        n_found = torch.tensor(found, dtype=torch.float64)
        distance = (counterfactuals - x[:, None, :]).norm(dim=2).double().mean(dim=1).cpu()
        extras = {"valid": n_found / self.n_counterfactuals, "distance": distance, "n_found": n_found}
        return Explanation(
            attributions=(x - counterfactuals.mean(dim=1)).detach(),
            counterfactuals=counterfactuals.detach(),
            extras={k: v.numpy().astype(np.float64) for k, v in extras.items()},
        )

    def _counterfactuals(self, model: nn.Module, x: torch.Tensor, label: int, gen: torch.Generator) -> torch.Tensor:
        def is_valid(points: torch.Tensor) -> torch.Tensor:
            return model(points).argmax(dim=1).cpu() != label

        scale, valid = self.scale, x[None, :0].new_empty((0, x.numel()))
        for _ in range(self.max_rounds):
            candidates = sample_candidates(x.cpu(), self.n_samples, self.change_probability, scale, gen).to(x.device)
            hits = candidates[is_valid(candidates).to(x.device)]
            valid = torch.cat([valid, hits])
            if len(valid) >= self.n_counterfactuals:
                break
            scale *= 2
        if len(valid) and self.sparsify:
            valid = undo_unneeded_changes(x, valid, lambda p: is_valid(p).to(x.device))
        return valid[select_diverse(x, valid, self.n_counterfactuals, self.proximity_weight).to(x.device)]
