"""Small 2-D convolutional network for images ``(N, C, H, W)``."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from xaibench.models.base import ModelSpec
from xaibench.registry import MODELS
from xaibench.types import Capability, Dataset, Modality


@MODELS.register("cnn")
@dataclass(frozen=True)
class CNN(ModelSpec):
    """Two 3x3 conv blocks, adaptive average pooling to 4x4, then a linear classifier."""

    modalities = frozenset({Modality.IMAGE})
    capabilities = frozenset({Capability.GRADIENTS, Capability.PROBA, Capability.CONV, Capability.LRP})
    channels: tuple[int, ...] = (16, 32)
    epochs: int = 15
    lr: float = 5e-3

    def build(self, dataset: Dataset) -> nn.Module:
        in_channels = dataset.input_shape[0]
        layers: list[nn.Module] = []
        for out_channels in self.channels:
            layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]
            in_channels = out_channels
        layers += [nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(in_channels * 16, dataset.n_classes)]
        return nn.Sequential(*layers)
