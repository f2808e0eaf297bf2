"""SmoothGrad-squared (Hooker et al., 2019, "A Benchmark for Interpretability Methods in Deep Neural Networks"):
the mean squared gradient over noisy copies, through captum's ``NoiseTunnel``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xaibench.explainers.gradient.smoothgrad import SmoothGradExplainer
from xaibench.registry import EXPLAINERS


@EXPLAINERS.register("smoothgrad_sq")
@dataclass(frozen=True)
class SmoothGradSquaredExplainer(SmoothGradExplainer):
    """``E_eps[(d logit_target / d x (x + eps))^2]`` over ``n_samples`` draws ``eps ~ N(0, sigma^2)``.

    ``smoothgrad`` with ``nt_type: smoothgrad_sq`` (same noise and per-sample draws). Non-negative; ``w^2`` for a
    linear model. Output shaped like ``x`` (text: per token, the squares summed over the embedding dimension).
    Batch tolerance 1e-5.
    """

    nt_type: Literal["smoothgrad_sq"] = "smoothgrad_sq"
