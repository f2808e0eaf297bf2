"""xaibench.explanations(): the stored attributions (the ones that were scored), rebuilt inputs, counterfactuals."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import xaibench
from xaibench.errors import UserError

CELLS = ["model=mlp", "dataset=iris", "method=saliency,wachter,decision_tree", "n_samples=5", "sweep_id=ex",
         "metrics=sparsity"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("explanations")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.delenv("XAIBENCH_STORE", raising=False)
        table = xaibench.run(CELLS, multirun=True)
    return root, table


def gini(a: np.ndarray) -> np.ndarray:
    """Quantus Sparseness (Chalasani et al. 2020) in closed form: Gini index of |a| per sample."""
    flat = np.sort(np.abs(a.reshape(len(a), -1)).astype(np.float64) + 1e-7, axis=1)
    n = flat.shape[1]
    weights = 2 * np.arange(1, n + 1) - n - 1
    return (flat * weights).sum(axis=1) / (n * flat.sum(axis=1))


def test_returns_the_attributions_that_were_scored(sweep):
    root, table = sweep
    cells = xaibench.explanations(table, store=root / "results" / "store")
    assert [c.method for c in cells] == ["decision_tree", "saliency", "wachter"]
    for cell in cells:
        assert cell.attributions.shape == cell.inputs.shape == (5, 4) and cell.targets.shape == (5,)
        scored = table[(table["method"] == cell.method) & (table["metric"] == "sparseness")].set_index("sample_id")
        assert list(cell.sample_ids) == list(scored.index)
        np.testing.assert_array_equal(cell.targets, scored["target"].to_numpy())
        np.testing.assert_allclose(gini(cell.attributions), scored["value"].to_numpy(), rtol=1e-5)
        assert cell.feature_names == ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)")


def test_a_loaded_sweep_finds_its_store_from_another_folder_as_the_report_does(sweep, tmp_path, monkeypatch):
    """The README's ``explanations(xaibench.load("results/runs/quickstart"))`` in a notebook in another folder (or
    after a sweep with ``store_dir=``) looked in that folder's results/store: "not in the store"."""
    root, _ = sweep
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XAIBENCH_STORE", raising=False)
    folder = root / "results" / "runs" / "ex"
    for selection in (xaibench.load(folder), folder):
        (cell,) = xaibench.explanations(selection, method="saliency", samples=2)
        assert cell.attributions.shape == (2, 4)
    assert xaibench.load(folder).attrs["xaibench_store"] == str(root / "results" / "store")


def test_rebuilt_inputs_match_the_stored_counterfactuals(sweep):
    """Wachter's attributions are x - x_cf: this holds only if the rebuilt inputs are the explained ones."""
    root, table = sweep
    (cell,) = xaibench.explanations(table, store=root / "results" / "store", method="wachter")
    assert cell.counterfactuals is not None and cell.counterfactuals.shape == cell.inputs.shape
    np.testing.assert_allclose(cell.inputs - cell.counterfactuals, cell.attributions, atol=1e-6)
    assert set(cell.extras) >= {"valid", "distance"}


def test_surrogate_rules_and_fidelity_come_from_the_store(sweep):
    root, table = sweep
    (cell,) = xaibench.explanations(root / "results" / "runs" / "ex", store=root / "results" / "store",
                                    method="decision_tree")
    rules = str(cell.extras["rules"][0])
    assert "class:" in rules and ("x2" in rules or "x3" in rules)
    assert 0.5 < float(cell.extras["fidelity"][0]) <= 1.0
    assert cell.method_params["max_depth"] == 4


def test_sample_selection_keeps_the_requested_order(sweep):
    root, table = sweep
    ids = list(table.loc[table["method"] == "saliency", "sample_id"].drop_duplicates())
    (all_samples,) = xaibench.explanations(table, store=root / "results" / "store", method="saliency")
    (picked,) = xaibench.explanations(table, store=root / "results" / "store", method="saliency",
                                      samples=[ids[3], ids[1]])
    assert picked.sample_ids == (ids[3], ids[1])
    np.testing.assert_array_equal(picked.attributions, all_samples.attributions[[3, 1]])
    np.testing.assert_array_equal(picked.inputs, all_samples.inputs[[3, 1]])
    (first_two,) = xaibench.explanations(table, store=root / "results" / "store", method="saliency", samples=2)
    assert first_two.sample_ids == tuple(ids[:2])


def test_clear_errors(sweep, tmp_path):
    root, table = sweep
    with pytest.raises(UserError, match="not in the store"):
        xaibench.explanations(table, store=tmp_path / "empty")
    with pytest.raises(UserError, match=r"no method lime in this table; its methods: .*saliency"):
        xaibench.explanations(table, store=root / "results" / "store", method="lime")  # a misspelling: named
    with pytest.raises(UserError, match="no explained cell in method=saliency"):
        xaibench.explanations(table.assign(explanation_key=""), store=root / "results" / "store", method="saliency")
    with pytest.raises(UserError, match="unknown column 'colour'"):
        xaibench.explanations(table, store=root / "results" / "store", colour="red")
    with pytest.raises(UserError, match="before results schema 2"):
        xaibench.explanations(table.drop(columns="explanation_key"), store=root / "results" / "store")
    with pytest.raises(UserError, match="were not explained"):
        xaibench.explanations(table, store=root / "results" / "store", method="saliency", samples=["nope"])
    changed = table.assign(dataset_revision="0000")
    with pytest.raises(UserError, match="changed since the sweep"):
        xaibench.explanations(changed, store=root / "results" / "store", method="saliency")
    assert isinstance(table, pd.DataFrame)


def test_report_figures_read_the_store_and_note_what_is_missing(sweep, tmp_path):
    from xaibench.report.figure_set import report_figures

    root, table = sweep
    notes: list[str] = []
    figures = report_figures(table, xaibench.summarize(table), root / "results" / "store", notes)
    assert {"metric_scores", "rank_heatmap", "gallery_iris_mlp", "counterfactuals_iris_mlp_wachter",
            "rules_iris_mlp"} <= set(figures)
    gallery = figures["gallery_iris_mlp"]
    rows = [ax for ax in gallery.axes if ax.get_subplotspec() is not None and ax.get_subplotspec().colspan.start == 0]
    from matplotlib.text import Annotation  # the row's name; a tabular panel also writes its "max |a| = ..." above it

    names = [next(t.get_text() for t in ax.texts if isinstance(t, Annotation)) for ax in rows]
    assert names == ["input", "decision tree", "saliency", "wachter"]
    assert "class:" in figures["rules_iris_mlp"].texts[1].get_text()
    assert "petal" in figures["rules_iris_mlp"].texts[1].get_text()  # x<i> named after the dataset's features
    missing: list[str] = []
    without = report_figures(table, xaibench.summarize(table), tmp_path / "no-store", missing)
    assert not any(name.startswith(("gallery_", "counterfactuals_", "rules_")) for name in without)
    assert any("gallery_iris_mlp" in note and "not in the store" in note for note in missing)


def test_a_csv_tables_inputs_are_rebuilt_from_rows_that_record_its_encoded_columns(tmp_path):
    # The rows of a csv_table with a text column record how it was one-hot encoded (dataset_params'
    # encoded_columns, runner.encoded_columns); rebuilding the inputs passed that to the spec's constructor,
    # which refused it, so `xaibench report` drew no gallery for the bring-your-own CSV example ("unknown
    # parameter(s) encoded_columns") and xaibench.explanations failed on it.
    import json

    from xaibench.results.explanations import _dataset

    rng = np.random.default_rng(0)
    path = tmp_path / "visits.csv"
    pd.DataFrame({"age": rng.normal(40, 9, 40), "device": rng.choice(["mobile", "desktop"], 40),
                  "bought": rng.choice(["yes", "no"], 40)}).to_csv(path, index=False)
    params = {"path": str(path), "target": "bought", "label": "Shop visits",
              "encoded_columns": {"age": ["age"], "device": ["device=desktop", "device=mobile"]}}
    row = pd.Series({"dataset": "csv_table", "dataset_params": json.dumps(params), "seed": 0,
                     "dataset_revision": ""})
    dataset = _dataset(row, {})
    assert dataset.feature_names == ("age", "device=desktop", "device=mobile")
    assert {column: [dataset.feature_names[i] for i in index] for column, index in dataset.feature_groups} == \
        params["encoded_columns"]
