"""Sobel edge-detector control (Adebayo et al., 2018, "Sanity Checks for Saliency Maps", used edge detectors as
the model-independent comparison): an image's edges, whatever the model says."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xaibench.explainers.base import CallRows, Explainer
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation, Modality

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_magnitude(images: torch.Tensor) -> torch.Tensor:
    """Per-channel Sobel gradient magnitude ``sqrt(gx^2 + gy^2)`` of ``(N, C, H, W)`` (replicate padding)."""
    n, c, h, w = images.shape
    kernels = torch.stack([_SOBEL_X, _SOBEL_X.T]).unsqueeze(1).to(images.device, images.dtype)  # (2, 1, 3, 3)
    padded = F.pad(images.reshape(n * c, 1, h, w), (1, 1, 1, 1), mode="replicate")
    grads = F.conv2d(padded, kernels)  # (N*C, 2, H, W)
    return grads.pow(2).sum(dim=1).sqrt().reshape(n, c, h, w)


@EXPLAINERS.register("sobel")
@dataclass(frozen=True)
class SobelExplainer(Explainer):
    """Sobel edge magnitude of each channel, shaped like the image ``(N, C, H, W)``. Model-free: no forward."""

    modalities = frozenset({Modality.IMAGE})
    control = True  # a reference point (Explainer.control)

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """Model-free: no forward at all."""
        return CallRows(per_input=0)

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        if x.dim() != 4:
            raise TypeError(f"sobel explains images (N, C, H, W), got {tuple(x.shape)}")
        return Explanation(sobel_magnitude(x.detach().float()))
