"""Sanity checks reproduce Adebayo et al. 2018: under cascading parameter randomisation, gradient maps change
substantially while an edge detector, which never looks at the model, does not change at all."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from xaibench.explainers.base import Explainer
from xaibench.metrics import testing
from xaibench.metrics.quantus_adapter import score
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.types import Explanation, Modality, Status


@dataclasses.dataclass(frozen=True)
class LocalEdges(Explainer):
    """A sobel-like control defined here: |horizontal| + |vertical| finite differences of the image. No model."""

    name = "local_edges"

    def explain(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        dx = torch.zeros_like(x)
        dy = torch.zeros_like(x)
        dx[..., :, 1:] = x[..., :, 1:] - x[..., :, :-1]
        dy[..., 1:, :] = x[..., 1:, :] - x[..., :-1, :]
        return Explanation((dx.abs() + dy.abs()).detach())


@pytest.fixture(scope="module")
def trained():
    x, y, _ = testing.bar_images(300, size=12, seed=0)
    model = testing.train(testing.tiny_cnn(2), x[:250], y[:250], steps=200, lr=0.01, seed=0)
    with torch.no_grad():
        assert (model(x[250:]).argmax(1) == y[250:]).float().mean() > 0.95
    return model, x[250:282]


def _controls():
    controls = [LocalEdges()]
    if "sobel" in EXPLAINERS:
        controls.append(EXPLAINERS.create("sobel"))
    return controls


def _mprt(model, x, explainer):
    ctx = testing.context(model, Modality.IMAGE, x, explainer, n_classes=2)
    result = score(METRICS.get("mprt"), {}, ctx, seed=0)
    assert result.status == [Status.OK.value] * len(x), result.message
    assert result.params["layer_order"] == "top_down" and result.params["reduction"] == "mean_over_layers"
    return result.values


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_gradient_maps_change_substantially_under_cascading_randomisation(trained, method):
    model, x = trained
    similarity = _mprt(model, x, EXPLAINERS.create(method))
    assert similarity.mean() < 0.7  # Spearman similarity to the trained model's map, averaged over layers
    assert similarity.max() < 0.95  # every sample's map changed


def test_model_independent_controls_do_not_change_at_all(trained):
    model, x = trained
    for control in _controls():
        np.testing.assert_array_equal(_mprt(model, x, control), 1.0)
        ctx = testing.context(model, Modality.IMAGE, x, control, n_classes=2)
        emprt = score(METRICS.get("efficient_mprt"), {}, ctx, seed=0).values
        np.testing.assert_array_equal(emprt, 0.0)  # no rise in explanation entropy either


def test_saliency_is_the_most_parameter_dependent(trained):
    model, x = trained
    saliency = _mprt(model, x, EXPLAINERS.create("saliency"))
    integrated = _mprt(model, x, EXPLAINERS.create("integrated_gradients"))
    edges = _mprt(model, x, LocalEdges())
    assert saliency.mean() < integrated.mean() < edges.mean() == 1.0
