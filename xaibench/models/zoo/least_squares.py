"""Linear least-squares classifier: one linear layer fitted in closed form to one-hot class indicators.

XAI-Bench's ``lr`` model (Liu et al., 2021, "Synthetic Benchmarks for Scientific Research in Explainable Machine
Learning"; scikit-learn's ``LinearRegression`` in both its regression and classification modes). For Gaussian
features and a label that depends on ``x`` only through ``w @ x``, the least-squares coefficients are
``Sigma^-1 Cov(x, y)``, proportional to ``w`` (Brillinger, 1982, "A Generalized Linear Model with 'Gaussian'
Regressor Variables"): the fitted model is the generating score up to scale and sampling noise at every feature
correlation. A gradient-trained logistic regression stopped after a few epochs is not: it is pulled towards
``Cov(x, y) = Sigma w`` and spreads weight over columns correlated with the informative ones.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from xaibench.errors import UserError
from xaibench.models.base import ModelSpec
from xaibench.registry import MODELS
from xaibench.types import Capability, Dataset, Modality


def least_squares_fit(x: torch.Tensor, y: torch.Tensor, n_classes: int, ridge: float) -> tuple[torch.Tensor,
                                                                                                 torch.Tensor]:
    """Weights ``(K, F)`` and bias ``(K,)`` minimising ``||[x 1] B - onehot(y)||^2 + ridge ||W||^2`` (float64).

    Args:
        x: training inputs ``(N, F)``.
        y: class indices ``(N,)``.
        n_classes: ``K``.
        ridge: L2 penalty on the weights (not the bias); 0 is ordinary least squares (minimum-norm if singular).
    """
    design = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], dim=1)  # (N, F + 1)
    targets = nn.functional.one_hot(y.long(), n_classes).double()  # (N, K)
    gram = design.T @ design
    penalty = torch.eye(design.shape[1], dtype=torch.float64) * ridge
    penalty[-1, -1] = 0.0
    solution = torch.linalg.pinv(gram + penalty) @ (design.T @ targets)  # (F + 1, K)
    return solution[:-1].T.contiguous(), solution[-1].contiguous()


@MODELS.register("least_squares")
@dataclass(frozen=True)
class LeastSquares(ModelSpec):
    """``Flatten -> Linear(F, K)`` fitted in closed form (``epochs``, ``lr``, ``batch_size`` are unused).

    The outputs are the fitted class indicators (about 0..1), not logits (``logit_outputs = False``): only
    ``explain_output: logit``, the linear score itself, is accepted (``log_odds``, ``log_softmax`` and
    ``probability`` would treat the scores as logits, which they are not). Deterministic: no training randomness.

    Attributes:
        ridge: L2 penalty on the weights (0: ordinary least squares, as XAI-Bench).
    """

    modalities = frozenset({Modality.TABULAR, Modality.IMAGE, Modality.TIME_SERIES})
    capabilities = frozenset({Capability.GRADIENTS, Capability.PROBA, Capability.LRP, Capability.LINEAR})
    logit_outputs = False
    ridge: float = 0.0

    def build(self, dataset: Dataset) -> nn.Module:
        if self.ridge < 0:
            raise UserError(f"least_squares: ridge must be >= 0, got {self.ridge}")
        return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(dataset.input_shape), dataset.n_classes))

    def fit(self, module: nn.Module, dataset: Dataset, seed: int) -> nn.Module:
        x = dataset.train.x.reshape(len(dataset.train), -1).cpu()
        weight, bias = least_squares_fit(x, dataset.train.y.cpu(), dataset.n_classes, self.ridge)
        linear = module[1]
        with torch.no_grad():
            linear.weight.copy_(weight.to(linear.weight))  # dtype and device of the layer
            linear.bias.copy_(bias.to(linear.bias))
        return module
