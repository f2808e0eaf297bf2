"""Published findings reproduced at a small scale: each ``conf/experiment/paper_*.yaml`` run as a real sweep, and
the paper's qualitative result checked on the table (docs/papers.md)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import xaibench

pytestmark = pytest.mark.slow


def means(table: pd.DataFrame, *by: str) -> pd.Series:
    ok = table[table["status"] == "ok"]
    return ok.groupby(list(by))["value"].mean()


def test_adebayo2018_guided_backprop_survives_cascading_randomisation_the_gradient_does_not(workdir):
    table = xaibench.run(["experiment=paper_adebayo2018", "n_samples=8"], multirun=True)
    table["layer"] = table["params"].map(lambda p: json.loads(p)["layer_index"])
    curve = means(table, "method", "layer").unstack("layer")  # method x layer_index: the per-layer curve
    assert list(curve.columns) == [0, 1, 2]
    np.testing.assert_allclose(curve.loc["sobel"], 1.0, atol=1e-12)  # model-free control: never changes
    assert (curve.loc["guided_backprop"] > curve.loc["saliency"] + 0.2).all(), curve  # at every layer
    assert (curve.loc["saliency"] < 0.4).all(), curve


def test_kindermans2019_the_gradient_is_input_shift_invariant_ixg_and_ig_are_not(workdir):
    table = xaibench.run(["experiment=paper_kindermans2019", "n_samples=8"], multirun=True)
    change = means(table, "method")
    assert change["saliency"] < 1e-4, change  # variant/gradient: rows say saliency with abs false
    assert change["input_x_gradient"] > 0.5 and change["integrated_gradients"] > 0.5, change


def test_yeh2019_the_gradient_has_the_lowest_infidelity_under_gaussian_perturbations(workdir):
    table = xaibench.run(["experiment=paper_yeh2019", "n_samples=8", "dataset=breast_cancer"], multirun=True)
    infidelity = means(table, "method")
    assert infidelity.idxmin() == "saliency", infidelity
    assert infidelity["saliency"] < 0.2 * infidelity.drop("saliency").min(), infidelity


def test_liu2021_kernel_shap_departs_from_conditional_shapley_as_correlation_grows(workdir):
    """XAI-Bench's model (least squares) and score (conditional_shapley_mse): Kernel SHAP's distance to the
    conditional Shapley values rises 0 < 0.5 < 0.9 on every seed, in XAI-Bench's mean squared error and in the
    relative L2 distance, while it stays on the marginal values (docs/papers.md has the 5-seed table; the smallest
    step ratio measured over seeds 0-4 at 8 samples is 1.7)."""
    table = xaibench.run(["experiment=paper_liu2021", "model=least_squares", "dataset.correlation=0.0,0.5,0.9",
                          "n_samples=8", "seed=0,1"], multirun=True)
    assert (table["status"] == "ok").all(), table["message"].unique()
    table["correlation"] = table["dataset_params"].map(lambda p: json.loads(p)["correlation"])
    distance = table.groupby(["metric", "seed", "correlation"])["value"].mean()
    for metric, first_step in (("conditional_shapley_mse", 10.0), ("conditional_shapley_distance", 3.0)):
        score = distance.loc[metric].unstack()  # seeds x correlations
        assert (score[0.5] > first_step * score[0.0]).all() and (score[0.9] > 1.3 * score[0.5]).all(), (metric, score)
    assert (distance.loc["shapley_distance"] < 1e-4).all(), distance  # Kernel SHAP: the marginal values


@pytest.mark.filterwarnings("ignore:An input array is constant")  # an all-tied ranking: NaN on both sides
def test_rong2022_morf_lerf_consistency_is_computed_per_imputation_from_single_percentage_cells(workdir):
    """The ROAD pipeline end to end on synthetic_image (paper_rong2022_noise) and the paper's consistency measure on
    its real table (checked against a direct recomputation). No direction is asserted here: on that set it is not
    robust (docs/papers.md, Rong et al. section); the direction test is the next one, on synthetic_shapes."""
    from scipy.stats import spearmanr

    from xaibench.results.road_consistency import morf_lerf_consistency

    table = xaibench.run(["experiment=paper_rong2022_noise", "n_samples=12", "seed=0",
                          "metrics.road.percentages=[10],[50],[90]",
                          "method=integrated_gradients,saliency,guided_backprop,smoothgrad"], multirun=True)
    assert (table["status"] == "ok").all(), table["message"].unique()
    result = morf_lerf_consistency(table).droplevel(["model", "dataset", "seed", "road_params"])
    assert sorted(result.index) == ["channel_mean_imputation", "noisy_linear_imputation"]
    assert (result["n_methods"] == 4).all()
    assert result["consistency"].between(-1, 1).all(), result

    table["imputation"] = table["params"].map(lambda p: json.loads(p)["perturb_func"])
    table["percentage"] = table["params"].map(lambda p: json.loads(p)["percentages"][0])
    accuracy = means(table, "imputation", "metric", "percentage", "method")
    nli = accuracy.loc["noisy_linear_imputation"]
    for p in (10, 50, 90):  # MoRF with p removed against LeRF with p kept (100 - p least relevant removed)
        morf, lerf = nli.loc[("road", p)], nli.loc[("road_lerf", 100 - p)]
        expected = spearmanr(-morf, lerf[morf.index]).statistic
        np.testing.assert_allclose(result.loc["noisy_linear_imputation", float(p)], expected, equal_nan=True)


@pytest.mark.filterwarnings("ignore:An input array is constant")
def test_rong2022_morf_and_lerf_agree_under_noisy_linear_imputation_not_under_the_channel_mean(workdir):
    """The paper's direction on synthetic_shapes (a flat fill still draws the object's outline): the MoRF/LeRF
    consistency with noisy linear imputation above the channel mean's, on each of two seeds (each trains its own
    model) and by a clear margin pooled. This small config (32 samples, 5 methods, 3 percentages) measured
    noisy-linear minus channel-mean gaps of 1.15, 0.56, 1.29, 0.66, 0.12 on seeds 0..4 (docs/papers.md)."""
    from xaibench.results.road_consistency import morf_lerf_consistency

    table = xaibench.run(["experiment=paper_rong2022", "n_samples=32", "seed=0,1",
                          "metrics.road.percentages=[10],[50],[90]",
                          "method=integrated_gradients,saliency,occlusion,guided_backprop,smoothgrad"], multirun=True)
    assert (table["status"] == "ok").all(), table["message"].unique()
    assert (table["model_accuracy"] > 0.95).all()  # the cnn learns the outlines (0.99-1.00 on seeds 0..4)
    result = morf_lerf_consistency(table)["consistency"].droplevel(["model", "dataset", "road_params"]).unstack()
    gap = result["noisy_linear_imputation"] - result["channel_mean_imputation"]  # per seed
    assert list(gap.index) == [0, 1] and (gap > 0).all(), result
    assert gap.mean() > 0.4, result  # measured 0.85 (seeds 0, 1); 0.76 over seeds 0..4
