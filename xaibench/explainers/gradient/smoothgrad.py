"""SmoothGrad (Smilkov et al., 2017, "SmoothGrad: removing noise by adding noise") through captum's NoiseTunnel."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from captum.attr import NoiseTunnel, Saliency
from torch import nn

from xaibench.explainers.base import CallRows, Explainer
from xaibench.explainers.inputs import GradientView
from xaibench.explainers.seeding import seeded
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Explanation, Modality


@EXPLAINERS.register("smoothgrad")
@dataclass(frozen=True)
class SmoothGradExplainer(Explainer):
    """captum ``NoiseTunnel(Saliency)``: gradients averaged over ``n_samples`` noisy copies of each sample.

    Noise is Gaussian with std ``noise_level * (max(x_i) - min(x_i))`` per sample (the paper's noise level; text:
    of the sample's embeddings). ``nt_type``: ``smoothgrad`` (mean gradient), ``smoothgrad_sq`` (mean squared) or
    ``vargrad`` (variance); the last two are also registered under their own names (``smoothgrad_sq.py``,
    ``vargrad.py``). ``abs`` takes the absolute gradient before averaging. Output shaped like ``x`` (text:
    per token). NoiseTunnel draws from torch's global RNG (captum#742), so each sample is explained alone under
    its own seed (``explainers/seeding.py``): a batch equals each sample alone exactly (tolerance 1e-5).
    """

    requires = frozenset({Capability.GRADIENTS})
    positive_params = ("n_samples", "internal_batch_size")
    non_negative_params = ("noise_level",)  # the noise std as a fraction of the input range
    n_samples: int = 25
    noise_level: float = 0.15
    nt_type: Literal["smoothgrad", "smoothgrad_sq", "vargrad"] = "smoothgrad"
    abs: bool = False
    internal_batch_size: int | None = None

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """One sample at a time: its ``n_samples`` noisy copies (``internal_batch_size`` per forward if set)."""
        return CallRows(per_input=0, per_call=min(self.n_samples, self.internal_batch_size or self.n_samples))

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view = GradientView.of(model, x)
        tunnel = NoiseTunnel(Saliency(view.forward))
        maps = []
        for i, seed in enumerate(view.seeds("smoothgrad")):
            sample = view.inputs[i : i + 1]
            stdev = float(self.noise_level * (sample.detach().max() - sample.detach().min()))
            with seeded(seed, sample.device):
                maps.append(tunnel.attribute(
                    sample, nt_type=self.nt_type, nt_samples=self.n_samples, stdevs=stdev, target=target[i : i + 1],
                    nt_samples_batch_size=self.internal_batch_size, abs=self.abs,
                ))
        return Explanation(view.to_output(torch.cat(maps)))
