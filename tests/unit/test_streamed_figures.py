"""The W&B sweep run of a streamed sweep draws its table-based figures from ``table.parquet`` one (model, dataset)
range at a time (``report/streamed_figures.py``): what those figures read equals what they read from the whole
table, also when ranges straddle batches and row groups."""
import numpy as np
import pandas as pd

from tests.reliability.test_collect import cell_frame
from xaibench.engine import store
from xaibench.report import explanation_figures, streamed_figures
from xaibench.report.figures import cost_score_points
from xaibench.results.aggregate import summarize
from xaibench.results.collect import write_table
from xaibench.results.schema import conform, sort_rows


def _table() -> pd.DataFrame:
    """3 models x 2 datasets x 3 methods (one a decision tree) x 2 seeds, two dataset parameter variants on one
    dataset, costs with a NaN, an errored cell and cells without explanations (one experiment's seed 0 has none:
    its lowest explained seed is 1; another's decision tree has none at seed 0: its trees' lowest seed is 1)."""
    rng = np.random.default_rng(0)
    base = cell_frame(0, "", "", 0, ["faith_b", "faith_a", "sparsity"], n=4)
    frames, index = [], 0
    for model in ("cnn", "mlp", "logreg"):
        for dataset, params in (("iris", ""), ("wine", '{"n": 1}'), ("wine", '{"n": 2}')):
            for method in ("saliency", "decision_tree", "random"):
                for seed in (1, 0):
                    frame = base.assign(model=model, dataset=dataset, dataset_params=params, method=method, seed=seed,
                                        cell_key=f"{index:032x}")
                    frame["family"] = np.where(frame["metric"] == "sparsity", "complexity", "faithfulness")
                    frame["explain_s"] = rng.random(len(frame)) * 1e-3 + 1 / 3
                    unexplained = ((method == "random" and model == "mlp")
                                   or (model, dataset, seed) == ("logreg", "iris", 0)
                                   or (model, dataset, method, seed) == ("cnn", "iris", "decision_tree", 0))
                    frame["explanation_key"] = "" if unexplained else f"e{index:031x}"  # logreg/iris: seed 1 lowest
                    frame["value"] = rng.normal(size=len(frame))
                    if index % 7 == 3:
                        frame.loc[frame.index[:2], "explain_s"] = np.nan
                    if index == 5:
                        frame = frame.assign(status="error", value=np.nan, message="boom")
                    frames.append(frame)
                    index += 1
    return sort_rows(conform(pd.concat(frames, ignore_index=True)))


def test_ranges_give_the_whole_tables_cost_points_and_experiments(tmp_path, monkeypatch):
    table = _table()
    path = tmp_path / "table.parquet"
    monkeypatch.setattr(streamed_figures, "BATCH_ROWS", 17)  # ranges straddle batches
    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 50)  # and row groups
    write_table(table, path)
    table = pd.read_parquet(path)
    summary = summarize(table)
    metric = streamed_figures.figure_set.cost_metric(summary)
    assert metric == "faith_a"
    ranges = streamed_figures._Ranges(path, metric)

    expected = cost_score_points(table, summary, metric)
    pd.testing.assert_frame_equal(cost_score_points(ranges.costs(), summary, metric), expected, check_exact=True)
    assert len(expected) == 27 and expected["cost"].notna().all()

    for streamed, whole in ((list(ranges.experiments()), explanation_figures.experiments(table)),
                            (list(ranges.experiments(trees=True)),
                             explanation_figures.experiments(explanation_figures.surrogate_rows(table)))):
        assert len(streamed) == len(whole) == 9  # (dataset, its params, model), each at its lowest seed
        for got, want in zip(streamed, whole):
            pd.testing.assert_frame_equal(got, want[got.columns], check_exact=True)


def test_the_w_and_b_sweep_runs_modules_do_not_load_torch():
    """The end of a sweep with ``logger=wandb`` (statistics, figures, the sink) runs in the launching process,
    which a cached sweep or a Slurm/joblib launcher never made load torch: importing it there cost ~200 MB of the
    run's peak (``xaibench.types`` imported torch for its annotations, the sink for ``CellResult``)."""
    import subprocess
    import sys

    modules = ("xaibench.sweep", "xaibench.report.wandb_sink", "xaibench.report.streamed_figures",
               "xaibench.report.build", "xaibench.report.figure_set", "xaibench.report.explanation_figures",
               "xaibench.results.explanations", "xaibench.results.statistics")
    code = f"import sys; import {', '.join(modules)}; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", done.stderr
