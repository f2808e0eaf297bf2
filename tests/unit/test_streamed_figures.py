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


def test_a_summary_given_as_a_function_is_made_after_the_ranges_pass_and_let_go_before_the_explanation_figures(
        tmp_path, monkeypatch):
    """The W&B run of a streamed sweep hands ``iter_streamed_figures`` a function that makes the drawn summary rows:
    the pass over the table's ranges runs before they exist and the galleries, counterfactuals and surrogate rules
    (which read no summary row) after they are gone, so neither phase runs on top of them (they set the run's
    peak at 10,000 cells); the figures are those drawn from the frame itself."""
    import gc
    import weakref

    from matplotlib.figure import Figure

    table = _table()
    path = tmp_path / "table.parquet"
    write_table(table, path)
    summary = summarize(pd.read_parquet(path))
    metric = streamed_figures.figure_set.cost_metric(summary)
    events, made = [], []
    ranges = streamed_figures._Ranges
    monkeypatch.setattr(streamed_figures, "_Ranges", lambda *args: events.append(("ranges", len(made))) or ranges(*args))

    def drawn() -> pd.DataFrame:
        frame = summary.copy()
        made.append(weakref.ref(frame))
        return frame

    def explanation_items(kind):
        def items(table, store, notes, groups):
            gc.collect()  # as log_sweep does after each figure (a drawn figure's artists may form cycles)
            events.append((kind, [ref() is None for ref in made]))
            figure = Figure()
            yield kind, figure
        return items

    for kind in ("gallery_items", "counterfactual_items", "surrogate_items"):
        monkeypatch.setattr(explanation_figures, kind, explanation_items(kind))
    lazily = [name for name, _ in streamed_figures.iter_streamed_figures(path, drawn, tmp_path, cost_metric=metric)]
    assert events == [("ranges", 0), ("gallery_items", [True]), ("counterfactual_items", [True]),
                      ("surrogate_items", [True])]
    assert lazily == [name for name, _ in streamed_figures.iter_streamed_figures(path, summary, tmp_path)]
    assert lazily[-3:] == ["gallery_items", "counterfactual_items", "surrogate_items"] and len(lazily) > 3
