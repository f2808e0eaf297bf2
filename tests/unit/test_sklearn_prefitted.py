"""Pre-fitted scikit-learn models from a file: skops (safe) or pickle/joblib behind trusted=true; never refitted."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier

import xaibench
from tests.conftest import FAST_METRICS
from xaibench.errors import UserError
from xaibench.registry import DATASETS, MODELS


def _fitted_forest(path):
    data = DATASETS.create("iris").build(0)
    forest = RandomForestClassifier(n_estimators=7, random_state=1).fit(data.train.x.numpy(), data.train.y.numpy())
    sio.dump(forest, path)
    return data, forest


def test_skops_forest_is_loaded_and_explained_without_refitting(workdir):
    data, forest = _fitted_forest(workdir / "forest.skops")
    spec = MODELS.create("sklearn_estimator", {"path": "forest.skops", "kwargs": {"n_estimators": 100}})
    module = spec.fit(spec.build(data), data, seed=123)
    x = data.test.x.numpy().astype(np.float64)
    np.testing.assert_allclose(module(data.test.x).softmax(-1).numpy(), forest.predict_proba(x), atol=1e-6)
    assert len(module.estimator.estimators_) == 7  # the file's forest, not a refit with the config's kwargs
    table = xaibench.run(["model=sklearn_estimator", "model.path=forest.skops", "dataset=iris",
                          "method=feature_ablation", "n_samples=4", "metrics=default", *FAST_METRICS])
    assert set(table["status"]) <= {"ok", "nan"} and table["model_accuracy"].iloc[0] == pytest.approx(
        (forest.predict(x) == data.test.y.numpy()).mean())


def test_pickle_needs_trusted_and_mismatches_are_refused(tmp_path):
    data, forest = _fitted_forest(tmp_path / "forest.skops")
    (tmp_path / "forest.pkl").write_bytes(pickle.dumps(forest))
    with pytest.raises(UserError, match="pickle/joblib file, which runs code when loaded; .*model.trusted=true"):
        MODELS.create("sklearn_estimator", {"path": str(tmp_path / "forest.pkl")}).build(data)
    trusted = MODELS.create("sklearn_estimator", {"path": str(tmp_path / "forest.pkl"), "trusted": True}).build(data)
    assert len(trusted.estimator.estimators_) == 7
    wine = DATASETS.create("wine").build(0)
    with pytest.raises(UserError, match="fitted on 4 features, dataset wine has 13"):
        MODELS.create("sklearn_estimator", {"path": str(tmp_path / "forest.skops")}).build(wine)
