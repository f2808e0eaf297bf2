"""Methods that read their applicability off the model's forward (DeepLIFT, DeepLIFT-SHAP, guided backprop) are asked
on an untrained instance of the model, before the model stage: a cell they cannot explain is ``not_applicable``
without a model trained for nothing (``engine/applicability.untrained_not_applicable``). Before, the model was
trained (and stored), then the explain stage refused it.
"""
from __future__ import annotations

import sys

import pytest
import torch

from xaibench.engine.cell import CellSpec
from xaibench.engine.runner import run_cell
from xaibench.engine.store import Store
from xaibench.registry import EXPLAINERS

NETS = '''
import torch
import torch.nn.functional as F
from torch import nn

FITS = []  # forwards in train mode: the model stage training it


class Net(nn.Module):
    """4 iris features -> 8 -> 3 classes; ``activation``: ``module`` (nn.ReLU), ``relu`` (F.relu) or ``exp``."""

    def __init__(self, activation="module"):
        super().__init__()
        self.inner, self.relu, self.out = nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)
        self.activation = activation

    def forward(self, x):
        if self.training:
            FITS.append(len(x))
        h = self.inner(x)
        h = {"module": self.relu, "relu": F.relu, "exp": lambda v: torch.exp(-v)}[self.activation](h)
        return self.out(h)
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "byo24_nets.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("byo24_nets", None)


def cell(activation: str, method: str) -> CellSpec:
    params = {"n_baselines": 2} if method == "deeplift_shap" else {}
    return CellSpec(model={"name": "torch_module", "target": "byo24_nets.Net", "kwargs": {"activation": activation},
                           "epochs": 1}, dataset={"name": "iris"}, method={"name": method, **params},
                    metrics={"sparseness": {}}, n_samples=2)


@pytest.mark.parametrize("activation, method, named", [("relu", "deeplift", "calls relu as functions"),
                                                      ("exp", "deeplift", "computes exp on activations"),
                                                      ("exp", "deeplift_shap", "computes exp on activations"),
                                                      ("relu", "guided_backprop", "calls relu as a function")])
def test_a_cell_the_method_cannot_explain_is_not_applicable_without_training(project, activation, method, named):
    """The old runner trained the model (one epoch here, stored under ``models``) before the explain stage refused
    it (or, for ``exp``, explained it with gradients)."""
    import byo24_nets

    store = Store(project / "store")
    result = run_cell(cell(activation, method), store)
    assert set(result.rows["status"]) == {"not_applicable"}
    assert result.rows["message"].str.contains(named).all()
    assert byo24_nets.FITS == [] and store.files("models") == []  # never trained, nothing stored
    assert run_cell(cell(activation, method), store).cached  # the not_applicable cell is stored


def test_a_model_the_method_can_explain_is_trained_and_explained(project):
    """The module form: the check passes on the untrained instance, and the model stage trains as before."""
    import byo24_nets

    store = Store(project / "store")
    result = run_cell(cell("module", "deeplift"), store)
    assert set(result.rows["status"]) == {"ok"}
    assert sum(byo24_nets.FITS) > 0 and len(store.files("models")) == 1


def test_other_methods_build_nothing_before_training():
    """``build`` runs only for a method with ``refuse_model``: saliency's cells cost no extra model."""
    from xaibench.engine.applicability import untrained_not_applicable

    def build():
        raise AssertionError("built")

    assert untrained_not_applicable(EXPLAINERS.create("saliency", {}), build, torch.zeros(1, 4)) is None
    assert hasattr(EXPLAINERS.create("deeplift", {}), "refuse_model")
