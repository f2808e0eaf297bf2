"""Occlusion (Zeiler & Fergus, 2014, "Visualizing and Understanding Convolutional Networks") through captum."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import Occlusion
from torch import nn

from xaibench.explainers.base import CallRows, Explainer
from xaibench.explainers.perturbation._batching import perturbation_rows, window_count
from xaibench.explainers.inputs import Baseline, PerturbationView
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation, Modality


@EXPLAINERS.register("occlusion")
@dataclass(frozen=True)
class OcclusionExplainer(Explainer):
    """captum ``Occlusion``: the drop in the target logit when a sliding window is set to ``baseline``.

    Windows: image ``window`` x ``window`` squares over all channels, series ``window`` steps over all channels,
    text ``window`` tokens (replaced by ``pad_id``), tabular one feature at a time (features have no
    neighbourhood); moved by ``stride``. Each element gets the mean change over the windows covering it.
    ``perturbations_per_eval`` windows per forward. Deterministic; batch tolerance 1e-5.
    """

    positive_params = ("window", "stride", "perturbations_per_eval")
    unused_params = {Modality.TABULAR: ("window", "stride")}
    window: int = 2
    stride: int = 1
    baseline: Baseline = 0.0
    perturbations_per_eval: int = 64

    def call_rows(self, modality: Modality, input_shape: tuple[int, ...]) -> CallRows:
        """``perturbations_per_eval`` windows (at most all of them) of every input per forward."""
        return perturbation_rows(self.perturbations_per_eval,
                                 window_count(modality, input_shape, self.window, self.stride))

    @torch.no_grad()
    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        view = PerturbationView.of(model, x, self.baseline)
        shapes, strides = view.window(self.window, self.stride)
        attributions = Occlusion(view.forward).attribute(
            view.inputs, sliding_window_shapes=shapes, strides=strides, baselines=view.baselines, target=target,
            perturbations_per_eval=self.perturbations_per_eval,
        )
        return Explanation(view.to_output(attributions))
