"""Infidelity as captum defines it (Yeh et al., 2019, "On the (In)fidelity and Sensitivity of Explanations").

``INFD(a, f, x) = E_I[(I . a - (f(x) - f(x - I)))^2]`` with Gaussian perturbations ``I ~ N(0, noise_std^2 I)``,
estimated by ``captum.metrics.infidelity`` from ``n_perturb_samples`` draws per sample. With ``normalize`` (as in
Yeh et al.'s experiments and captum's ``normalize=True``) the attribution is first rescaled by the optimal
``beta = E[(I . a) df] / E[(I . a)^2]``, so the score ignores the explanation's scale and the sign of ``beta``.

This is *not* the suite's ``infidelity`` metric (Quantus' square-removal variant on images) and not BEExAI's
"infidelity" (a completeness gap): it is registered under its own name, ``captum_infidelity``.
"""
from __future__ import annotations

import numpy as np
import torch
from captum.metrics import infidelity as captum_infidelity_fn

from xaibench.explainers.seeding import generator, sample_seeds
from xaibench.metrics._positions import scored_model
from xaibench.metrics.spec import Family, MetricSpec, register_metric
from xaibench.types import Modality

MODALITIES = frozenset({Modality.TABULAR, Modality.TIME_SERIES, Modality.IMAGE})


def gaussian_perturbation(noise_std: float, seed: int):
    """captum ``perturb_func``: ``inputs (S, ...) -> (I, inputs - I)`` with ``I ~ N(0, noise_std^2)`` drawn from ``seed``."""

    def perturb(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn(inputs.shape, generator=generator(seed)).to(inputs.device, inputs.dtype) * noise_std
        return noise, inputs - noise

    return perturb


def output_function(model: torch.nn.Module, softmax: bool):
    """``model``'s outputs (``softmax=False``) or the softmax of them (``model`` then returns raw logits)."""
    if not softmax:
        return model
    return lambda inputs: torch.softmax(model(inputs), dim=1)


def captum_infidelity(ctx, noise_std: float = 0.1, n_perturb_samples: int = 100, normalize: bool = True,
                      softmax: bool = False) -> np.ndarray:
    """Per-sample infidelity ``(N,)``; each sample draws its perturbations from its own seed (batch-independent)."""
    forward = output_function(scored_model(ctx, softmax), softmax)  # what was explained, or the probability
    x = ctx.x.detach().float()
    attributions = ctx.attributions.detach().to(x.device, x.dtype)
    values = []
    for i, seed in enumerate(sample_seeds(x, "captum_infidelity")):
        with torch.no_grad():
            value = captum_infidelity_fn(
                forward, gaussian_perturbation(noise_std, seed), x[i : i + 1], attributions[i : i + 1],
                target=ctx.targets[i : i + 1], n_perturb_samples=n_perturb_samples, normalize=normalize,
            )
        values.append(float(value.reshape(-1)[0]))
    return np.asarray(values, dtype=np.float64)


register_metric(MetricSpec(
    name="captum_infidelity",
    family=Family.FAITHFULNESS,
    higher_is_better=False,
    native=captum_infidelity,
    defaults={"noise_std": 0.1, "n_perturb_samples": 100, "normalize": True, "softmax": False},
    modalities=MODALITIES,
    nan_reason="all-zero attribution: the optimal rescaling (normalize) is undefined",
    description="Yeh et al. 2019, captum's definition: E[(I.a - (f(x) - f(x - I)))^2] over Gaussian perturbations "
                "I ~ N(0, noise_std^2) of every feature, attributions optimally rescaled (normalize); f the cell's "
                "explained output (explain_output; softmax: the probability). Not Quantus' square-removal 'infidelity'.",
))
