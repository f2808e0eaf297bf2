"""The refusals asked on an untrained instance before training (``engine/applicability.untrained_not_applicable``,
review of byo24) decide only by ``NotApplicable``: a model whose forward cannot run before ``fit`` (a buffer that
``fit`` sets, checked by the forward) is trained and explained as before, not turned into an ``error`` row."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from xaibench import registry
from xaibench.engine.cell import CellSpec
from xaibench.engine.runner import run_cell
from xaibench.engine.store import Store
from xaibench.models.base import ModelSpec
from xaibench.types import Capability, Modality


class Standardised(nn.Module):
    """``(x - mean) / std -> Linear -> nn.ReLU -> Linear``; the statistics are buffers that ``fit`` sets (``fitted``
    1), and the forward refuses to run on unset ones."""

    def __init__(self, n_features: int, n_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.register_buffer("fitted", torch.zeros(()))
        self.inner, self.relu, self.out = nn.Linear(n_features, 8), nn.ReLU(), nn.Linear(8, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fitted:
            raise RuntimeError("Standardised: call fit first (the statistics are not set)")
        return self.out(self.relu(self.inner((x - self.mean) / self.std)))


@dataclass(frozen=True)
class StandardisedSpec(ModelSpec):
    """:class:`Standardised` on tables; ``fit`` sets its statistics, then trains it the suite's way."""

    modalities = frozenset({Modality.TABULAR})
    capabilities = frozenset({Capability.GRADIENTS, Capability.PROBA})
    epochs: int = 2

    def build(self, dataset):
        return Standardised(dataset.input_shape[0], dataset.n_classes)

    def fit(self, module, dataset, seed):
        x = torch.as_tensor(dataset.train.x, dtype=torch.float32)
        module.mean.copy_(x.mean(0))
        module.std.copy_(x.std(0) + 1e-6)
        module.fitted.fill_(1.0)
        return super().fit(module, dataset, seed)


@pytest.fixture
def registered(monkeypatch):
    registry.load_plugins()
    monkeypatch.setattr(registry.MODELS, "_entries", dict(registry.MODELS._entries))  # restored after
    registry.MODELS.register("rev24c_standardised")(StandardisedSpec)


@pytest.mark.parametrize("method", ["deeplift", "guided_backprop"])
def test_a_model_whose_forward_needs_fit_is_still_trained_and_explained(registered, tmp_path, method):
    """The merged runner ran the untrained forward before training and let its RuntimeError end the cell
    (``error``); before byo24 the model was trained first and explained."""
    cell = CellSpec(model={"name": "rev24c_standardised"}, dataset={"name": "iris"}, method={"name": method},
                    metrics={"sparseness": {}}, n_samples=2)
    store = Store(tmp_path / "store")
    result = run_cell(cell, store)
    assert set(result.rows["status"]) == {"ok"}, result.rows["message"].tolist()
    assert len(store.files("models")) == 1
