"""The cost-vs-faithfulness figure's cost per point is the median over the point's cells (seeds) of each cell's
cost: a sweep's first cell pays one-off start-up costs, and the mean over rows drew that method as the slowest."""
import pandas as pd
import pytest

from xaibench.report import figure_set
from xaibench.report.figures import cost_score_points
from xaibench.results.aggregate import summarize
from xaibench.results.schema import COLUMNS, conform


def _table() -> pd.DataFrame:
    """integrated gradients and kernel shap on one setting, 3 seeds x 4 samples each, one metric; IG's seed-0 cell
    (the sweep's first) timed 21 ms a sample, its other cells 0.8 ms; Kernel SHAP 2.4 ms in every cell (the
    timings of a real 3-seed breast_cancer / mlp sweep)."""
    rows = []
    for method, costs in (("integrated_gradients", [0.021, 0.0008, 0.0009]), ("kernel_shap", [0.0024, 0.0023,
                                                                                              0.0025])):
        for seed, cost in enumerate(costs):
            for sample in range(4):
                rows.append({"model": "mlp", "dataset": "breast_cancer", "method": method, "seed": seed,
                             "cell_key": f"{method}-{seed}", "sample_id": f"s{sample}", "status": "ok",
                             "metric": "faithfulness_correlation", "family": "faithfulness",
                             "higher_is_better": True, "value": 0.9 + 0.01 * sample + 0.001 * seed,
                             "explain_s": cost})
    frame = pd.DataFrame(rows)
    defaults = {"string": "", "int64": 0, "float64": 0.0, "bool": True}
    return conform(frame.assign(**{c: defaults[d] for c, d in COLUMNS.items() if c not in frame and d in defaults}))


def test_a_points_cost_is_the_median_over_its_cells_not_the_mean_over_rows():
    table = _table()
    points = cost_score_points(table, summarize(table), "faithfulness_correlation")
    cost = dict(zip(points["method"], points["cost"]))
    assert cost["integrated_gradients"] == pytest.approx(0.0009)  # median of 0.021, 0.0008, 0.0009 (mean: 0.0076)
    assert cost["kernel_shap"] == pytest.approx(0.0024)
    assert cost["integrated_gradients"] < cost["kernel_shap"]  # the mean drew IG 3x slower than Kernel SHAP


def test_cells_count_once_whatever_their_rows():
    # a cell with more scored rows does not weigh more: two cells of 0.001 (1 row each) and one of 0.003 (5 rows)
    table = _table()
    table = table[table["method"] == "kernel_shap"].copy()
    table["explain_s"] = table["seed"].map({0: 0.001, 1: 0.001, 2: 0.003})
    table = pd.concat([table[table["seed"] < 2].groupby("seed").head(1), table[table["seed"] == 2]])
    points = cost_score_points(table, summarize(table), "faithfulness_correlation")
    assert points["cost"].tolist() == pytest.approx([0.001])  # the row mean was (0.001 * 2 + 0.003 * 4) / 6


def test_the_caption_says_the_cost_is_a_median_over_cells():
    assert "median over a setting's cells" in figure_set.caption("cost_vs_faithfulness")
