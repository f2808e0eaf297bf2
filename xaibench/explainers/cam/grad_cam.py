"""Grad-CAM (Selvaraju et al., 2017, "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization"), captum's ``LayerGradCam`` upsampled onto the input."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import LayerGradCam
from torch import nn

from xaibench.explainers.base import Explainer
from xaibench.explainers.cam._layers import feature_layer, to_input
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation, Modality


@EXPLAINERS.register("grad_cam")
@dataclass(frozen=True)
class GradCamExplainer(Explainer):
    """``ReLU(sum_k alpha_k A^k)`` with ``alpha_k`` the spatial mean of ``d logit_target / d A^k``.

    ``A``: the feature maps of ``layer`` (default: the last conv block's output, see ``cam/_layers.py``). The map
    ``(N, 1, *S)`` is upsampled (bilinear for images, linear for series; captum's ``interpolate``) to the input
    and shared by all its channels: output shaped like ``x``. Needs the CONV capability (the zoo's ``cnn`` and
    ``cnn1d``). Deterministic; batch tolerance 1e-5.
    """

    modalities = frozenset({Modality.IMAGE, Modality.TIME_SERIES})
    requires = frozenset({Capability.GRADIENTS, Capability.CONV})
    layer: str | None = None

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        method = LayerGradCam(model, feature_layer(model, self.layer))
        cam = method.attribute(x.detach(), target=target, relu_attributions=True)
        return Explanation(to_input(cam, x))
