"""Multinomial logistic regression as a torch model (one linear layer): gradients, exact linear attributions."""
from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from xaibench.models.base import ModelSpec
from xaibench.registry import MODELS
from xaibench.types import Capability, Dataset, Modality


@MODELS.register("logreg")
@dataclass(frozen=True)
class LogisticRegression(ModelSpec):
    """``Flatten -> Linear(F, K)`` trained with cross-entropy (softmax regression); ``weight_decay`` is the L2 term."""

    modalities = frozenset({Modality.TABULAR, Modality.IMAGE, Modality.TIME_SERIES})
    capabilities = frozenset({Capability.GRADIENTS, Capability.PROBA, Capability.LRP, Capability.LINEAR})
    epochs: int = 100  # conf/model/logreg.yaml: converged on the bundled sets (as scikit-learn's)
    lr: float = 2e-2

    def build(self, dataset: Dataset) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(dataset.input_shape), dataset.n_classes))
