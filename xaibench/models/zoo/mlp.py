"""Multi-layer perceptron for tabular inputs (and flattened images / series)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from xaibench.models.base import ModelSpec
from xaibench.registry import MODELS
from xaibench.types import Capability, Dataset, Modality


@MODELS.register("mlp")
@dataclass(frozen=True)
class MLP(ModelSpec):
    """``Flatten -> [Linear -> ReLU] * len(hidden) -> Linear``. ReLU as modules so DeepLIFT can hook them."""

    modalities = frozenset({Modality.TABULAR, Modality.IMAGE, Modality.TIME_SERIES})
    capabilities = frozenset({Capability.GRADIENTS, Capability.PROBA, Capability.LRP})
    hidden: tuple[int, ...] = (64, 64)

    def build(self, dataset: Dataset) -> nn.Module:
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(dataset.input_shape)
        for size in self.hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, dataset.n_classes))
        return nn.Sequential(*layers)
