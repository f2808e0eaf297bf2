"""Grad-CAM++ (Chattopadhay et al., 2018, "Grad-CAM++: Generalized Gradient-based Visual Explanations for Deep
Convolutional Networks"); captum has no implementation, so it is written here on torch."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xaibench.explainers.base import Explainer
from xaibench.explainers.cam._layers import activations_and_gradients, feature_layer, relu_weighted_sum, spatial_dims, to_input
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation, Modality


def grad_cam_pp_weights(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The paper's closed-form weights (eq. 19, exponential output): ``(N, K)``.

    ``alpha_ij^k = g^2 / (2 g^2 + sum_ab A_ab^k g^3)`` (0 where ``g = 0``), ``w_k = sum_ij alpha_ij^k ReLU(g_ij^k)``,
    with ``g = d logit_target / d A``.
    """
    dims = spatial_dims(a)
    g2, g3 = g.pow(2), g.pow(3)
    sums = a.sum(dim=dims, keepdim=True)
    denominator = 2 * g2 + sums * g3
    alpha = torch.where(denominator != 0, g2 / torch.where(denominator != 0, denominator, torch.ones_like(denominator)),
                        torch.zeros_like(g2))
    return (alpha * g.clamp(min=0)).sum(dim=dims)


@EXPLAINERS.register("grad_cam_pp")
@dataclass(frozen=True)
class GradCamPPExplainer(Explainer):
    """``ReLU(sum_k w_k A^k)`` with Grad-CAM++'s pixel-weighted positive gradients as ``w_k``.

    Same layer choice and upsampling as ``grad_cam`` (``cam/_layers.py``); output shaped like ``x``. Needs the
    CONV capability. Deterministic; batch tolerance 1e-5.
    """

    modalities = frozenset({Modality.IMAGE, Modality.TIME_SERIES})
    requires = frozenset({Capability.GRADIENTS, Capability.CONV})
    layer: str | None = None

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        a, g = activations_and_gradients(model, feature_layer(model, self.layer), x, target)
        return Explanation(to_input(relu_weighted_sum(grad_cam_pp_weights(a, g), a), x))
