"""Random attribution control: a lower bound any real method must beat."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xaibench.explainers.base import CallRows, Explainer
from xaibench.explainers.inputs import explained_shape
from xaibench.explainers.seeding import control_seeds, generator
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation, Modality


@EXPLAINERS.register("random")
@dataclass(frozen=True)
class RandomExplainer(Explainer):
    """Uniform noise in [-1, 1) (or [0, 1) with ``positive``), shaped like ``x`` (text: per token ``(N, L)``).

    Each sample's map comes from a generator seeded by the cell's ``seed`` and the sample's own values only
    (``explainers/seeding.control_seeds``), so a batch gives the same maps as each sample alone, and re-explaining
    the sample on any model, under any torch RNG state, gives the same map: MPRT scores it exactly 1 (it fails the
    sanity check, as a control must). Model-free: no forward. Text: a sample is its token ids; re-explanations
    receive token embeddings (what Quantus passes), which the metrics' ``explain_func`` maps back to the ids, so
    the re-explained map is the stored one on text too, and embeddings that drift between machines change nothing.
    """

    control = True  # a reference point (Explainer.control)
    positive: bool = False

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """Model-free: no forward at all."""
        return CallRows(per_input=0)

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        shape = explained_shape(model, x)[1:]
        maps = [torch.rand(shape, generator=generator(seed)) for seed in control_seeds(x, "random")]
        noise = torch.stack(maps).to(x.device)
        return Explanation(noise if self.positive else noise * 2 - 1)
