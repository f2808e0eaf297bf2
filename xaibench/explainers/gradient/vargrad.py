"""VarGrad (Adebayo et al., 2018, "Local Explanation Methods for Deep Neural Networks Lack Sensitivity to Parameter
Values"): the variance of the gradient over noisy copies, through captum's ``NoiseTunnel``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xaibench.explainers.gradient.smoothgrad import SmoothGradExplainer
from xaibench.registry import EXPLAINERS


@EXPLAINERS.register("vargrad")
@dataclass(frozen=True)
class VarGradExplainer(SmoothGradExplainer):
    """``Var_eps[d logit_target / d x (x + eps)]`` over ``n_samples`` draws ``eps ~ N(0, sigma^2)``.

    ``smoothgrad`` with ``nt_type: vargrad`` (same noise: ``sigma = noise_level * (max(x_i) - min(x_i))``, the
    same per-sample draws, so ``vargrad = smoothgrad_sq - smoothgrad^2`` exactly). Non-negative; zero for a
    model with a constant gradient (linear). Output shaped like ``x`` (text: per token). Batch tolerance 1e-5.
    """

    nt_type: Literal["vargrad"] = "vargrad"
