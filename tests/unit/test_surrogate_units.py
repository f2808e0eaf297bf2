"""Surrogate rules read in the data's units: thresholds on standardised inputs are mapped back.

The decision-tree surrogate splits the model's inputs, which are z-scores on scikit-learn's sets and standardised
CSV tables; the report used to print ``petal length (cm) <= -0.438``.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier, export_text

from xaibench.data.user.table import CsvTable
from xaibench.registry import DATASETS
from xaibench.report.figures.surrogate_rules import in_data_units, surrogate_rules

NUMBER = re.compile(r"(<=|>) +(-?\d+(?:\.\d+)?)")


def test_scaling_maps_the_models_inputs_back_to_the_raw_features():
    dataset = DATASETS.create("iris", {}).build(0)
    raw = load_iris().data[[int(i.rsplit("-", 1)[1]) for i in dataset.test.ids]]
    mean, std = np.array(dataset.feature_scaling).T
    np.testing.assert_allclose(dataset.test.x.numpy() * std + mean, raw, atol=1e-5)


def test_rules_of_a_tree_on_z_scores_equal_the_same_tree_on_raw_features():
    """Tree splits are midpoints between sorted values, so an affine map per feature moves them exactly."""
    x, y = load_iris(return_X_y=True)
    mean, std = x.mean(axis=0), x.std(axis=0)
    on_z = DecisionTreeClassifier(max_depth=3, random_state=0).fit((x - mean) / std, y)
    on_raw = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
    names = [f"x{i}" for i in range(4)]
    mapped = in_data_units(export_text(on_z, feature_names=names, decimals=3), list(zip(mean, std)))
    reference = export_text(on_raw, feature_names=names, decimals=6)
    assert NUMBER.sub("", mapped) == NUMBER.sub("", reference)  # same structure, features and classes
    got = [float(v) for _, v in NUMBER.findall(mapped)]
    want = [float(v) for _, v in NUMBER.findall(reference)]
    np.testing.assert_allclose(got, want, atol=5e-4 * std.max() + 1e-3)
    assert got != [float(v) for _, v in NUMBER.findall(export_text(on_z, feature_names=names, decimals=3))]


def test_a_standardised_csv_table_and_the_figure_say_which_units(tmp_path):
    frame = pd.DataFrame({"age": np.arange(40, dtype=float) + 20, "kind": ["a", "b"] * 20, "label": [0, 1] * 20})
    frame.to_csv(tmp_path / "t.csv", index=False)
    dataset = CsvTable(path=str(tmp_path / "t.csv"), target="label").build(0)
    assert dataset.feature_names == ("age", "kind=a", "kind=b")
    (age_mean, age_std), onehot_a, onehot_b = dataset.feature_scaling
    assert onehot_a == onehot_b == (0.0, 1.0)
    train_ages = dataset.train.x[:, 0].numpy() * age_std + age_mean
    assert np.allclose(np.sort(train_ages), np.sort(train_ages.round()))  # whole years again
    figure = surrogate_rules("|--- x0 <= 0.000\n|   |--- class: 1\n", 0.95, feature_names=dataset.feature_names,
                             feature_scaling=dataset.feature_scaling)
    texts = [t.get_text() for t in figure.texts]
    assert f"age <= {age_mean:.4g}" in texts[1]
    assert "thresholds in the data's units" in texts[0]
