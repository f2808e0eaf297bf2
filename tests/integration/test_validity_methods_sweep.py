"""The methods and peer metrics of issue 12 through the real runner: rows, declared not_applicable cells, and
the closed forms a trained logistic regression gives (integrated gradients and LRP-0 are its exact Shapley values
from a zero baseline; Guided Backprop is its gradient, i.e. its coefficients)."""
from __future__ import annotations

import json

import pytest

import xaibench


@pytest.mark.slow
def test_new_methods_and_peer_metrics_on_a_trained_logistic_regression(workdir):
    table = xaibench.run([
        "model=logreg", "dataset=synthetic_tabular", "method=integrated_gradients,lrp,guided_backprop,grad_cam",
        "dataset.variant=additive,linear",  # additive: no generator coefficients, OpenXAI's truth is the model's
        "explain_output=logit",  # the closed forms below are the logit's
        "n_samples=6", "metrics=ground_truth", "+metrics.input_invariance={}",
        "+metrics.captum_infidelity={n_perturb_samples: 10}", "+metrics.eraser_comprehensiveness={}",
    ], multirun=True)
    openxai = table[table["metric"].str.startswith("openxai_") & (table["status"] == "ok")]
    truth = openxai["params"].map(lambda p: json.loads(p)["ground_truth"])
    linear_data = openxai["dataset_params"].str.contains('"linear"')
    assert (truth[linear_data] == "generator").all() and (truth[~linear_data] == "model_coefficients").all()
    assert linear_data.any() and (~linear_data).any()
    table = table[~table["dataset_params"].str.contains('"linear"')]
    cam = table[table["method"] == "grad_cam"]
    assert (cam["status"] == "not_applicable").all() and cam["message"].str.contains("does not handle tabular").all()
    ok = table[table["method"] != "grad_cam"]
    assert (ok["status"] == "ok").all(), ok.loc[ok["status"] != "ok", ["method", "metric", "message"]]
    value = ok.groupby(["method", "metric"])["value"].max()
    assert value["integrated_gradients", "shapley_distance"] < 1e-4
    assert value["lrp", "shapley_distance"] < 1e-4
    for metric in ("openxai_fa", "openxai_ra", "openxai_sa", "openxai_sra", "openxai_rc", "openxai_pra"):
        assert ok.groupby(["method", "metric"])["value"].min()["guided_backprop", metric] == pytest.approx(1.0)
    assert value["guided_backprop", "input_invariance"] < 1e-5
    assert ok.groupby(["method", "metric"])["value"].min()["integrated_gradients", "input_invariance"] > 0.01
