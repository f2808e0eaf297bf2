"""``xaibench.evaluate`` / ``xaibench.explain`` on arrays: the sweep's rows and maps, without a sweep."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

import xaibench
from tests.conftest import FAST_METRICS
from xaibench.config.preflight import compose_job
from xaibench.engine.cell import CellSpec
from xaibench.engine.datasets import build_dataset
from xaibench.engine.runner import ResolvedCell
from xaibench.engine.stages import get_explanations, get_model
from xaibench.engine.store import Store
from xaibench.errors import UserError

CELL = ["model=mlp", "dataset=iris", "method=integrated_gradients", "n_samples=6", "seed=3", *FAST_METRICS]
COMPARED = ["sample_id", "metric", "family", "higher_is_better", "value", "status", "message", "params", "target",
            "seed"]


def _stored_artefacts(workdir):
    """The sweep's trained model, test samples and attributions, read back from its store (no recompute)."""
    cell = CellSpec.from_config(compose_job(CELL))
    resolved = ResolvedCell.resolve(cell)
    store = Store(workdir / "results" / "store")
    dataset = build_dataset(resolved.dataset, cell.seed)
    model = get_model(store, resolved.model, dataset, cell)
    explanations = get_explanations(store, resolved.method, model, dataset, cell)
    return cell, model.module, dataset.test.head(cell.n_samples), explanations


def test_evaluate_on_arrays_equals_the_sweeps_rows(workdir):
    table = xaibench.run(CELL)
    cell, module, samples, explanations = _stored_artefacts(workdir)
    rows = xaibench.evaluate(module, samples.x.numpy(), samples.y.numpy(), explanations.attributions.numpy(),
                             metrics=cell.metrics, method="integrated_gradients", seed=3, sample_ids=samples.ids)
    expected = table.sort_values(["metric", "sample_id"]).reset_index(drop=True)[COMPARED]
    got = rows.sort_values(["metric", "sample_id"]).reset_index(drop=True)[COMPARED]
    assert len(got) == 3 * 6 and (got["status"] == "ok").all()
    pd.testing.assert_frame_equal(got, expected)
    assert not (workdir / "results" / "store" / "scores").exists() or len(
        list((workdir / "results" / "store" / "scores").rglob("*.parquet"))) == 3  # evaluate wrote nothing


def test_explain_returns_the_sweeps_attributions(workdir):
    xaibench.run(CELL)
    _, module, samples, explanations = _stored_artefacts(workdir)
    attributions = xaibench.explain(module, samples.x, method="integrated_gradients")
    torch.testing.assert_close(attributions, explanations.attributions, rtol=0, atol=0)


def test_evaluate_statuses_and_store_on_request(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    x = torch.randn(5, 4)
    a = torch.zeros(5, 4)
    a[:3] = torch.randn(3, 4)
    table = xaibench.evaluate(net, x, np.zeros(5), a, metrics=["sparseness", "max_sensitivity", "pointing_game"],
                              store_dir=tmp_path / "store")
    by_metric = table.groupby("metric")["status"].agg(lambda s: sorted(set(s)))
    assert by_metric["sparseness"] == ["nan", "ok"]  # all-zero maps are a status with a reason, not a number
    assert by_metric["max_sensitivity"] == ["not_applicable"]  # re-explains: needs method=
    assert by_metric["pointing_game"] == ["not_applicable"]  # needs masks
    assert len(list((tmp_path / "store").rglob("*.parquet.artefact"))) == 1  # one score stage, one file
    again = xaibench.evaluate(net, x, np.zeros(5), a, metrics=["sparseness"], store_dir=tmp_path / "store")
    pd.testing.assert_series_equal(again["value"], table[table["metric"] == "sparseness"]["value"].reset_index(drop=True))
    with pytest.raises(UserError, match="attributions have shape"):
        xaibench.evaluate(net, x, np.zeros(5), a[:, :2], metrics=["sparseness"])
