"""ROAD (Rong et al. 2022): the imputations' defining equations, and the MoRF/LeRF consistency analysis on tables
whose answer is known (xaibench/results/road_consistency.py)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from quantus.functions.perturb_func import noisy_linear_imputation

from xaibench.errors import UserError
from xaibench.metrics.functional import channel_mean_imputation
from xaibench.results.road_consistency import morf_lerf_consistency, rank_agreement

# Rong et al.'s neighbour weights: 1/6 for the four edge neighbours, 1/12 for the four diagonal ones.
WEIGHTS = {(dy, dx): (1 / 12 if dy and dx else 1 / 6) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx}


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 6, 9)])
def test_noisy_linear_imputation_solves_the_papers_neighbour_average_equations(shape):
    """Without noise every imputed pixel is the weighted mean of its in-image neighbours (imputed ones included),
    per channel, and kept pixels are untouched: Rong et al.'s Eq. for noisy linear imputation, which Quantus'
    function (adapted from their code) must solve on non-square and multi-channel images too."""
    rng = np.random.default_rng(0)
    c, h, w = shape
    x = rng.random(shape)
    removed = np.sort(rng.choice(h * w, size=h * w // 3, replace=False))
    out = noisy_linear_imputation(x, removed, noise=0.0)
    kept = np.setdiff1d(np.arange(h * w), removed)
    np.testing.assert_array_equal(out.reshape(c, -1)[:, kept], x.reshape(c, -1)[:, kept])
    for flat in removed:
        i, j = divmod(int(flat), w)
        inside = [(dy, dx) for dy, dx in WEIGHTS if 0 <= i + dy < h and 0 <= j + dx < w]
        total = sum(WEIGHTS[o] for o in inside)
        average = sum(WEIGHTS[(dy, dx)] * out[:, i + dy, j + dx] for dy, dx in inside) / total
        np.testing.assert_allclose(out[:, i, j], average, rtol=1e-9, atol=1e-12)


def test_channel_mean_imputation_sets_removed_pixels_to_their_channels_image_mean():
    x = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    removed = np.array([0, 5, 12 + 7])  # two pixels of channel 0, one of channel 1 (flat over (C, H, W))
    out = channel_mean_imputation(x, removed)
    expected = x.copy()
    expected.reshape(-1)[[0, 5]] = x[0].mean()
    expected.reshape(-1)[19] = x[1].mean()
    np.testing.assert_array_equal(out, expected)
    assert out is not x and x[0, 0, 0] == 0.0  # the input is not modified


def road_table(morf: dict, lerf: dict, imputation: str = "noisy_linear_imputation") -> pd.DataFrame:
    """Rows as a single-percentage ROAD sweep writes them: ``{percentage: {method: accuracy}}`` per order; each
    accuracy is spread over 4 samples (values 0/1)."""
    rows = []
    for metric, order, curves in (("road", "morf", morf), ("road_lerf", "lerf", lerf)):
        for percentage, accuracies in curves.items():
            params = json.dumps({"percentages": [percentage], "perturb_func": imputation, "order": order,
                                 "abs": False})
            for method, accuracy in accuracies.items():
                hits = round(accuracy * 4)
                for sample in range(4):
                    rows.append({"model": "cnn", "dataset": "digits", "seed": 0, "method": method, "metric": metric,
                                 "status": "ok", "params": params, "value": float(sample < hits)})
    return pd.DataFrame(rows)


def test_consistency_pairs_morf_removing_p_with_lerf_keeping_p_and_averages_spearman():
    # MoRF: lower accuracy = better. At 25% removed a > b > c > d; at 75% b > a > c > d.
    morf = {25: {"a": 0.0, "b": 0.25, "c": 0.5, "d": 0.75}, 75: {"a": 0.25, "b": 0.0, "c": 0.5, "d": 0.75}}
    # LeRF at 75% removed keeps the top 25% (pairs with MoRF 25%): same order a > b > c > d -> +1.
    # LeRF at 25% removed keeps the top 75% (pairs with MoRF 75%): d > a > c > b, against b > a > c > d.
    lerf = {75: {"a": 1.0, "b": 0.75, "c": 0.5, "d": 0.25}, 25: {"a": 0.75, "b": 0.25, "c": 0.5, "d": 1.0}}
    result = morf_lerf_consistency(road_table(morf, lerf)).iloc[0]
    assert result[25.0] == pytest.approx(1.0)
    assert result[75.0] == pytest.approx(-0.8)  # ranks (2,1,3,4) vs (2,4,3,1): 1 - 6*18/(4*15)
    assert result["consistency"] == pytest.approx(0.1)
    assert result["n_methods"] == 4


def test_rank_agreement_uses_average_ranks_for_ties_and_is_nan_when_an_order_ties_everything():
    morf = pd.Series({"a": 0.0, "b": 0.0, "c": 0.5})
    assert rank_agreement(morf, pd.Series({"a": 1.0, "b": 0.9, "c": 0.0})) == pytest.approx(np.sqrt(3) / 2)
    assert np.isnan(rank_agreement(morf, pd.Series({"a": 1.0, "b": 1.0, "c": 1.0})))


def test_consistency_refuses_cells_that_scored_several_percentages_at_once():
    table = road_table({25: {"a": 0.0, "b": 0.5, "c": 1.0}}, {75: {"a": 1.0, "b": 0.5, "c": 0.0}})
    table["params"] = table["params"].str.replace('"percentages": [25]', '"percentages": [25, 75]')
    with pytest.raises(UserError, match="one removal percentage per cell"):
        morf_lerf_consistency(table)


def test_consistency_keeps_imputations_and_other_varied_params_apart():
    morf = {50: {"a": 0.0, "b": 0.25, "c": 0.5}}
    agree, disagree = {50: {"a": 1.0, "b": 0.75, "c": 0.5}}, {50: {"a": 0.5, "b": 0.75, "c": 1.0}}
    table = pd.concat([road_table(morf, agree), road_table(morf, disagree, "channel_mean_imputation")])
    result = morf_lerf_consistency(table)["consistency"].droplevel(["model", "dataset", "seed", "road_params"])
    assert result.to_dict() == {"channel_mean_imputation": -1.0, "noisy_linear_imputation": 1.0}
