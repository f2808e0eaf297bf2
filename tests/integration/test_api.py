"""The Python API (same code path as the CLI): caching, resume granularity, determinism, strict mode, W&B."""
from __future__ import annotations

import glob

import pandas as pd
import pytest
import torch

import xaibench
from tests.conftest import FAST_METRICS
from xaibench.engine import stages
from xaibench.errors import UserError
from xaibench.models.base import ModelSpec
from xaibench.results.schema import MEASUREMENT_COLUMNS, RESULT_COLUMNS

CELLS = ["model=mlp", "dataset=iris,breast_cancer", "method=saliency,random", "n_samples=5", *FAST_METRICS]


class Counter:
    def __init__(self, wrapped=None):
        self.calls, self.wrapped = 0, wrapped

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.wrapped(*args, **kwargs) if self.wrapped else None


def test_rerun_makes_no_model_forward_and_returns_the_same_table(workdir):
    first = xaibench.run(CELLS, multirun=True)
    assert len(first.drop_duplicates("cell_key")) == 4
    forwards = Counter()
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *a: forwards())
    try:
        second = xaibench.run(CELLS, multirun=True)
    finally:
        handle.remove()
    assert forwards.calls == 0
    # The memory peak and time describe the run that wrote the rows (they are not in the shared store).
    pd.testing.assert_frame_equal(first.drop(columns=list(MEASUREMENT_COLUMNS)),
                                  second.drop(columns=list(MEASUREMENT_COLUMNS)))


def test_adding_a_metric_computes_only_that_metric(workdir, monkeypatch):
    xaibench.run([*CELLS, "~metrics.max_sensitivity"], multirun=True)
    fits = Counter(ModelSpec.fit)
    explains = Counter(stages._explain)
    scores = Counter(stages._score_frame)
    monkeypatch.setattr(ModelSpec, "fit", lambda self, *a: fits(self, *a))
    monkeypatch.setattr(stages, "_explain", explains)
    monkeypatch.setattr(stages, "_score_frame", scores)
    table = xaibench.run(CELLS, multirun=True)
    assert fits.calls == 0 and explains.calls == 0
    assert scores.calls == 4  # one new metric x four cells
    assert set(table["metric"]) == {"faithfulness_correlation", "sparseness", "max_sensitivity"}
    assert (table["status"] == "ok").all()


def test_same_config_same_table_bit_for_bit_from_fresh_stores(tmp_path, monkeypatch):
    tables = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        tables.append(xaibench.run(["model=cnn", "dataset=digits", "method=integrated_gradients", "n_samples=6",
                                    *FAST_METRICS]))
    pd.testing.assert_frame_equal(tables[0][list(RESULT_COLUMNS)], tables[1][list(RESULT_COLUMNS)], check_exact=True)
    assert (tables[0]["model_accuracy"] > 0.9).all()


def test_a_new_release_recomputes_but_redraws_nothing(tmp_path, monkeypatch):
    """The package version is in every stage key (a release may compute differently, so the store is not
    reused) but not in any seed: the same code under another version number gives the same trained model and the
    same stochastic explanations and scores."""
    import xaibench.engine.cell as cell_module

    tables = []
    for version in ("1.0", "2.0"):
        monkeypatch.setattr(cell_module, "__version__", version)
        monkeypatch.chdir(tmp_path)
        tables.append(xaibench.run(["model=mlp", "dataset=iris", "method=smoothgrad", "n_samples=4",
                                    f"store_dir={tmp_path}/store", *FAST_METRICS]))
    assert set(tables[0]["cell_key"]).isdisjoint(tables[1]["cell_key"])  # not served from the first store
    values = ["metric", "sample_id", "target", "value", "status", "model_accuracy"]
    pd.testing.assert_frame_equal(tables[0][values], tables[1][values], check_exact=True)


def test_strict_reraises_the_original_error(workdir, monkeypatch):
    def broken(*args, **kwargs):
        raise FloatingPointError("explainer exploded")

    monkeypatch.setattr(stages, "_explain", broken)
    table = xaibench.run(["model=mlp", "dataset=iris", "method=saliency", "n_samples=4", *FAST_METRICS])
    assert set(table["status"]) == {"error"}
    assert table["message"].str.startswith("FloatingPointError: explainer exploded").all()
    with pytest.raises(FloatingPointError, match="explainer exploded"):
        xaibench.run(["model=mlp", "dataset=iris", "method=saliency", "n_samples=4", "strict=true", *FAST_METRICS])


def test_user_errors_raise_before_any_compute(workdir):
    for overrides, message in [
        (["model=nope"], "unknown model 'nope'"),
        (["method.n_steps=many"], "parameter 'n_steps' must be int"),
        (["method.bogus=1"], "bogus"),
        (["n_samples=abc"], "n_samples must be an integer"),
        (["metrics.sparseness.bogus=1"], "unknown config key 'metrics.sparseness.bogus'; metrics.sparseness has: "),
        (["+metrics.sparseness.bogus=1"], "metric 'sparseness': unknown parameter(s) bogus"),
        (["device=tpu"], "unknown device 'tpu'"),
    ]:
        with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
            xaibench.run(overrides)
    assert list(workdir.iterdir()) == []


def test_wandb_failure_never_loses_results(workdir, monkeypatch, capsys):
    import xaibench.report.wandb_sink as sink

    monkeypatch.setattr(sink, "log_cell", lambda *a: (_ for _ in ()).throw(ConnectionError("wandb down")))
    table = xaibench.run(["model=mlp", "dataset=iris", "method=random", "n_samples=4", "logger=wandb", *FAST_METRICS])
    assert (table["status"] == "ok").all() and len(table) == 12
    assert "W&B logging failed (ConnectionError: wandb down)" in capsys.readouterr().err


def test_collect_and_summary_verbs(workdir, capsys):
    from xaibench.cli import main

    xaibench.run(["model=mlp", "dataset=iris", "method=saliency,random", "n_samples=4", *FAST_METRICS],
                 multirun=True)
    with pytest.raises(SystemExit) as done:
        main(["collect", "results/runs/default", "-o", "out.csv"])
    assert done.value.code == 0
    csv = xaibench.load("out.csv")
    assert len(csv) == 24 and set(csv["method"]) == {"saliency", "random"}
    with pytest.raises(SystemExit):
        main(["collect", "--store", "results/store", "-o", "all.parquet"])
    assert len(pd.read_parquet("all.parquet")) == 24
    with pytest.raises(SystemExit) as done:
        main(["summary", "results/runs/default"])
    assert done.value.code == 0 and "sparseness ↑" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["collect", "no/such/sweep"])
    assert done.value.code == 2


def test_seeds_of_a_built_in_dataset_are_pooled_as_replicates(workdir):
    """Each seed splits the data differently; the rows' dataset revision is the data's, not the split's, so the
    summary pools the seeds (two-way bootstrap) instead of reporting one variant per seed."""
    table = xaibench.run(["model=logreg", "dataset=iris", "method=saliency,random", "n_samples=4", "seed=0,1",
                          *FAST_METRICS], multirun=True)
    assert table["dataset_revision"].nunique() == 1 and set(table["seed"]) == {0, 1}
    summary = xaibench.summarize(table)
    assert (summary["n_seeds"] == 2).all() and (summary["variant"].fillna("") == "").all()
    assert len(summary) == 2 * table["metric"].nunique()
