"""Summary statistics: bootstrap CI, ranks that respect each metric's declared direction, NaN rates."""
import numpy as np
import pandas as pd
import pytest

from xaibench.results.aggregate import bootstrap_ci, summarize


def rows(method, metric, values, higher=True, status=None):
    n = len(values)
    return pd.DataFrame({
        "model": "m", "dataset": "d", "method": method, "metric": metric, "family": "f",
        "higher_is_better": higher, "sample_id": [f"s{i}" for i in range(n)], "value": values,
        "status": status or ["ok"] * n, "message": [""] * n,
    })


def test_bootstrap_ci_of_constant_is_the_constant():
    assert bootstrap_ci(np.full(10, 0.3)) == pytest.approx((0.3, 0.3))


def test_bootstrap_ci_brackets_mean_and_matches_normal_approximation():
    values = np.random.default_rng(0).normal(1.0, 1.0, size=400)
    low, high = bootstrap_ci(values, n_boot=4000)
    half = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert low < values.mean() < high
    assert high - low == pytest.approx(2 * half, rel=0.1)
    assert bootstrap_ci(values, n_boot=4000) == (low, high)  # deterministic


def test_ranks_follow_declared_direction():
    table = pd.concat([
        rows("a", "faith", [0.9, 0.8]), rows("b", "faith", [0.1, 0.2]),
        rows("a", "sens", [0.9, 0.8], higher=False), rows("b", "sens", [0.1, 0.2], higher=False),
    ])
    summary = summarize(table).set_index(["method", "metric"])
    assert summary.loc[("a", "faith"), "rank"] == 1 and summary.loc[("b", "faith"), "rank"] == 2
    assert summary.loc[("a", "sens"), "rank"] == 2 and summary.loc[("b", "sens"), "rank"] == 1
    assert summary.loc[("a", "faith"), "mean"] == pytest.approx(0.85)
    assert summary.loc[("a", "faith"), "std"] == pytest.approx(np.std([0.9, 0.8], ddof=1))


def test_nan_rate_and_status():
    table = rows("a", "faith", [0.5, np.nan, np.nan, 0.7], status=["ok", "nan", "nan", "ok"])
    summary = summarize(table).iloc[0]
    assert summary["n"] == 2 and summary["nan_rate"] == 0.5 and summary["mean"] == pytest.approx(0.6)
    assert summary["status"] == "ok"


def test_ranks_stay_within_comparison_groups():
    """Two datasets of one registry name (different paths/revisions) and two model variants are ranked apart."""
    def group(dataset_params, model_params, revision, a, b):
        frame = pd.concat([rows("ig", "faith", a), rows("sal", "faith", b)])
        return frame.assign(dataset="csv_table", dataset_params=dataset_params, model_params=model_params,
                            dataset_revision=revision, method_params="{}", params="{}", n_samples=2,
                            model_revision="")
    table = pd.concat([
        group('{"path": "a.csv"}', "{}", "ra", [0.9, 0.9], [0.1, 0.1]),
        group('{"path": "b.csv"}', "{}", "rb", [0.3, 0.3], [0.5, 0.5]),
        group('{"path": "a.csv"}', '{"hidden": [4]}', "ra", [0.7, 0.7], [0.8, 0.8]),
    ])
    summary = summarize(table)
    assert sorted(summary["rank"].tolist()) == [1, 1, 1, 2, 2, 2]
    assert summary["comparison"].nunique() == 3
    by = summary.set_index(["comparison", "method"])["rank"]
    for comparison in summary["comparison"].unique():
        assert sorted(by.loc[comparison].tolist()) == [1, 2]
