"""Your own model files in the keys and in the refusals: an own scikit-learn estimator class (``model.estimator=
./ests.py:Class``) is fingerprinted as an own torch model file is, and a misspelt model file gets a did-you-mean.
"""
from __future__ import annotations

import pytest

from xaibench.engine.cell import CellSpec
from xaibench.engine.runner import run_cell
from xaibench.engine.store import Store
from xaibench.errors import UserError
from xaibench.registry import DATASETS, MODELS

ESTIMATORS = '''
import numpy as np
from sklearn.linear_model import LogisticRegression


class Tilted(LogisticRegression):
    """LogisticRegression whose probabilities are those of the class list ``order``."""

    def predict_proba(self, X):
        return super().predict_proba(X)[:, ORDER]


ORDER = [0, 1, 2]
'''


def test_an_own_estimator_file_is_fingerprinted_and_its_edits_recompute(tmp_path, monkeypatch):
    """The cell was served from the store after ``ests.py`` changed (its key held only the path
    ``./ests.py:Tilted``): the edited model (its classes' probabilities swapped) was never run."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ests.py").write_text(ESTIMATORS)
    store = Store(tmp_path / "store")
    cell = CellSpec(model={"name": "sklearn_estimator", "estimator": "./ests.py:Tilted", "kwargs": {"max_iter": 500}},
                    dataset={"name": "iris"}, method={"name": "feature_ablation"}, metrics={"sparseness": {}},
                    n_samples=3)
    first = run_cell(cell, store)
    assert not first.cached and set(first.rows["status"]) == {"ok"}
    assert run_cell(cell, store).cached  # unchanged file: from the store
    (tmp_path / "ests.py").write_text(ESTIMATORS.replace("ORDER = [0, 1, 2]", "ORDER = [2, 0, 1]"))
    edited = run_cell(cell, store)
    assert not edited.cached  # the old code served the first rows
    assert edited.rows["model_accuracy"].iloc[0] < 0.5 < first.rows["model_accuracy"].iloc[0]
    assert run_cell(cell, store).cached


def test_a_library_estimator_keeps_its_revision():
    """scikit-learn's own classes are identified by the package version: their keys are unchanged."""
    for estimator in ("sklearn.ensemble.RandomForestClassifier", "sklearn.linear_model.LogisticRegression"):
        spec = MODELS.create("sklearn_estimator", {"estimator": estimator})
        assert spec.source_revision() == "forward=log_predict_proba"


NETS = '''
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)
'''


@pytest.mark.parametrize("given, meant", [
    ("./net.py:Net", "./nets.py:Net"), ("net.py:Net", "nets.py:Net"), ("modles/nets.py:Net", "models/nets.py:Net"),
    ("./models/net.py:Net", "./models/nets.py:Net"), ("{root}/modls/nets.py:Net", "{root}/models/nets.py:Net"),
    ("net.Net", "nets.Net"),
])
def test_a_misspelt_model_file_gets_the_closest_one(tmp_path, monkeypatch, given, meant):
    """A misspelt file or folder said only "file not found" (a misspelt class already had its did-you-mean)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "models").mkdir()
    for file in (tmp_path / "nets.py", tmp_path / "models" / "nets.py"):
        file.write_text(NETS)
    iris = DATASETS.create("iris", {}).build(0)
    with pytest.raises(UserError) as refused:
        MODELS.create("torch_module", {"target": given.format(root=tmp_path), "epochs": 1}).build(iris)
    message = str(refused.value)
    assert message.endswith(f"; did you mean model.target={meant.format(root=tmp_path)}?") and "\n" not in message
    spec = MODELS.create("torch_module", {"target": meant.format(root=tmp_path), "epochs": 1})
    assert type(spec.build(iris)).__name__ == "Net"  # what it suggests imports


def test_no_did_you_mean_without_a_close_file_and_not_a_module_for_a_class(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets.py").write_text(NETS)
    iris = DATASETS.create("iris", {}).build(0)
    with pytest.raises(UserError, match=r"file not found: zzz\.py \(relative paths start at [^;]*\)$"):
        MODELS.create("torch_module", {"target": "zzz.py:Net", "epochs": 1}).build(iris)
    with pytest.raises(UserError, match=r"nets\.py has no 'NN'$"):  # was "did you mean model.target=nets.py:nn?"
        MODELS.create("torch_module", {"target": "nets.py:NN", "epochs": 1}).build(iris)
