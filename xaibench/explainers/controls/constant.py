"""Constant attribution control: every feature equally important (no information at all)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xaibench.explainers.base import CallRows, Explainer
from xaibench.explainers.inputs import explained_shape
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation, Modality


@EXPLAINERS.register("constant")
@dataclass(frozen=True)
class ConstantExplainer(Explainer):
    """``value`` everywhere, shaped like ``x`` (text: per token ``(N, L)``). Model-free: no forward.

    Metrics that divide by an attribution's spread may return NaN for it: that is a finding about the metric.
    """

    control = True  # a reference point (Explainer.control)
    value: float = 1.0

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """Model-free: no forward at all."""
        return CallRows(per_input=0)

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        return Explanation(torch.full(explained_shape(model, x), self.value, dtype=torch.float32, device=x.device))
