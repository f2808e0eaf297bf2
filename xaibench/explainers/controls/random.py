"""Random attribution control: a lower bound any real method must beat."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xaibench.explainers.base import Explainer
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation


@EXPLAINERS.register("random")
@dataclass(frozen=True)
class RandomExplainer(Explainer):
    """Uniform noise in [-1, 1) (or [0, 1) with ``positive``), drawn from torch's seeded global RNG.

    Each sample's map is drawn from a generator seeded by the sample's own values, so a batch gives the same
    maps as each sample alone.
    """

    positive: bool = False

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        base_seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        shape = x.shape[1:] if x.dtype.is_floating_point else x.shape[1:]
        maps = []
        for row in x:
            seed = (base_seed + int(torch.as_tensor(row, dtype=torch.float64).abs().sum().item() * 1e6)) % (2**31 - 1)
            noise = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
            maps.append(noise if self.positive else noise * 2 - 1)
        return Explanation(torch.stack(maps).to(x.device))
