"""Expected Gradients (Erion et al., 2021, "Improving performance of deep learning models with axiomatic
attribution priors and expected gradients"): an alias of ``gradient_shap``, documented here.

captum's ``GradientShap`` *is* the Expected Gradients estimator: ``(x - x') * grad f(x' + alpha (x - x'))``
averaged over references ``x'`` and ``alpha ~ U(0, 1)`` (with ``stdevs = 0``). The only difference is where the
references come from: Erion et al. draw them from the training data; explainers here see no training data, so
references are ``baseline + baseline_std * N(0, I)`` (standardised tabular data with the defaults: the
features' marginal means and variances, without their correlations).
"""
from __future__ import annotations

from dataclasses import dataclass

from xaibench.explainers.gradient.gradient_shap import GradientShapExplainer
from xaibench.registry import EXPLAINERS


@EXPLAINERS.register("expected_gradients")
@dataclass(frozen=True)
class ExpectedGradientsExplainer(GradientShapExplainer):
    """Alias of ``gradient_shap`` (same class, same parameters, same per-sample draws: identical maps).

    Registered under the name readers of Erion et al. (and LATEC) look for; the references are Gaussian around
    ``baseline`` (see the module docstring), not training samples. Batch tolerance 1e-5.
    """
