"""Input x Gradient (Shrikumar et al., 2016, "Not Just a Black Box"; Ancona et al., 2018)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import InputXGradient
from torch import nn

from xaibench.explainers.base import Explainer
from xaibench.explainers.inputs import GradientView
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation


@EXPLAINERS.register("input_x_gradient")
@dataclass(frozen=True)
class InputXGradientExplainer(Explainer):
    """captum ``InputXGradient``: ``x * d logit_target / d x`` shaped like ``x``.

    Text: embedding times gradient, summed over the embedding dimension ``(N, L)``. Deterministic; batch
    tolerance 1e-5 (float reassociation only).
    """

    requires = frozenset({Capability.GRADIENTS})

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view = GradientView.of(model, x)
        attributions = InputXGradient(view.forward).attribute(view.inputs, target=target)
        return Explanation(view.to_output(attributions))
