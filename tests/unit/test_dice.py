"""DiCE-style diverse counterfactuals: valid (the prediction flips), several per sample, diverse, sparse."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import xaibench
from xaibench.explainers.counterfactual.dice import select_diverse, undo_unneeded_changes
from xaibench.registry import EXPLAINERS


def test_greedy_selection_trades_diversity_against_proximity():
    x = torch.zeros(2)
    valid = torch.tensor([[1.0, 0.0], [1.1, 0.0], [0.0, 1.2], [3.0, 3.0]])
    # closest first; then the best (distance to the chosen - weight * distance to x):
    # [0, 1.2]: 1.562 - 1.2 w; [3, 3]: 3.606 - 4.243 w; [1.1, 0]: 0.1 - 1.1 w
    assert select_diverse(x, valid, 2, proximity_weight=1.0).tolist() == [0, 2]
    assert select_diverse(x, valid, 2, proximity_weight=0.0).tolist() == [0, 3]  # pure diversity: farthest
    assert select_diverse(x, valid[:1].repeat(3, 1), 3, 0.5).tolist() == [0]  # duplicates add nothing


def test_unneeded_changes_are_undone():
    x = torch.zeros(3)
    candidates = torch.tensor([[2.0, 0.3, -0.2]])
    kept = undo_unneeded_changes(x, candidates, lambda p: p[:, 0] > 1.0)  # only feature 0 decides
    assert kept.tolist() == [[2.0, 0.0, 0.0]]


def test_counterfactuals_flip_a_linear_model_and_differ_from_each_other():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3).eval()
    x = torch.randn(4, 5)
    explanation = EXPLAINERS.create("dice", {"n_samples": 300}).explain(model, x, torch.zeros(4, dtype=torch.long))
    cf = explanation.counterfactuals
    assert cf.shape == (4, 4, 5)
    with torch.no_grad():
        flipped = model(cf.reshape(-1, 5)).argmax(1).reshape(4, 4) != model(x).argmax(1)[:, None]
    assert flipped.all()
    np.testing.assert_array_equal(explanation.extras["valid"], 1.0)
    assert all(len(torch.unique(cf[i], dim=0)) == 4 for i in range(4))


@pytest.mark.slow
def test_cf_diversity_measures_something_for_dice_and_not_for_single_counterfactuals(workdir):
    table = xaibench.run(["model=mlp", "dataset=iris", "method=dice,growing_spheres", "metrics=counterfactual",
                          "n_samples=8"], multirun=True)
    rows = table.set_index(["method", "metric"])
    dice_validity = rows.loc[("dice", "cf_validity"), "value"]
    np.testing.assert_array_equal(dice_validity, 1.0)  # every counterfactual flips the prediction
    diversity = rows.loc[("dice", "cf_diversity"), "value"].to_numpy()
    assert np.isfinite(diversity).all() and (diversity > 0).all()
    assert set(rows.loc[("growing_spheres", "cf_diversity"), "status"]) == {"nan"}
