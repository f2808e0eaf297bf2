"""Regressions found by reviewing the suite as a new user: each was a real way to get a wrong or lost result."""
from __future__ import annotations

import glob
import os

import pandas as pd
import pytest

import xaibench
from tests.conftest import FAST_METRICS
from xaibench.config.preflight import validate
from xaibench.engine import runner, stages
from xaibench.errors import UserError
from xaibench.results.schema import RESULT_COLUMNS

ONE = ["model=mlp", "dataset=iris", "method=saliency", "n_samples=4", *FAST_METRICS]


@pytest.mark.parametrize("overrides, message", [
    (["experiment=quickstart"], "this config declares a sweep (model=mlp,cnn"),
    (["model=vit", "dataset=synthetic_image", "model.patch_size=5"], "not divisible by patch_size 5"),
    (["dataset.test_size=2"], "dataset breast_cancer cannot be built with these parameters"),
    (["sweep_id=../../etc"], "sweep_id must be a plain name"),
    (["strict=maybe"], "strict must be true or false"),
    (["metrics.faithfulness_correlation.nr_runs=abc"], "'nr_runs' must be a positive integer, got 'abc'"),
    (["metrics.faithfulness_correlation.nr_runs=-5"], "'nr_runs' must be a positive integer, got -5"),
    (["metrics.faithfulness_correlation.subset_size=2.5"], "must be a fraction in (0, 1] or a positive integer"),
    (["metrics.max_sensitivity.lower_bound=abc"], "'lower_bound' must be a number"),
    (["++metrics.max_sensitivity.similarity_func=nope"], "unknown function 'nope'"),
])
def test_bad_input_is_caught_before_any_compute(workdir, overrides, message):
    with pytest.raises(UserError) as error:
        xaibench.run(overrides)
    assert message in str(error.value)
    assert list(workdir.iterdir()) == []


def test_cuda_is_not_required_on_a_slurm_submit_node(workdir, monkeypatch):
    (workdir / "bin").mkdir()
    (workdir / "bin" / "sbatch").write_text("#!/bin/sh\n")  # a submit node has Slurm's client tools
    (workdir / "bin" / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{workdir / 'bin'}:{os.environ['PATH']}")
    configs = validate(["model=mlp", "dataset=iris", "device=cuda",
                        "hydra/launcher=submitit_slurm_chunked"], multirun=True)
    assert configs[0].device == "cuda"
    with pytest.raises(UserError, match="no CUDA device is visible"):
        validate(["model=mlp", "dataset=iris", "device=cuda"], multirun=True)


def test_summary_separates_parameter_variants_instead_of_pooling_them(workdir):
    table = xaibench.run(["model=mlp", "dataset=iris", "method=integrated_gradients", "method.n_steps=2,64",
                          "n_samples=4", *FAST_METRICS], multirun=True)
    summary = xaibench.summarize(table)
    faith = summary[summary["metric"] == "faithfulness_correlation"]
    assert sorted(faith["variant"]) == ["method.n_steps=2", "method.n_steps=64"]
    assert (faith["n"] == 4).all() and sorted(faith["rank"]) == [1, 2]


def test_collect_store_counts_each_scored_sample_once(workdir):
    xaibench.run([*ONE, "~metrics.max_sensitivity"])
    xaibench.run(ONE)  # a second cell (other suite) sharing two score stages with the first
    from xaibench.results.collect import collect_store

    table = collect_store("results/store")
    assert len(table) == 3 * 4
    assert not table.duplicated(["metric", "sample_id"]).any()


def test_reused_score_stages_keep_the_provenance_that_computed_them(workdir, monkeypatch):
    first = xaibench.run([*ONE, "~metrics.max_sensitivity"])
    later = {**runner.provenance(), "git_sha": "later-commit"}
    monkeypatch.setattr(runner, "provenance", lambda: later)
    monkeypatch.setattr(stages, "provenance", lambda: later)
    table = xaibench.run(ONE)
    shas = {metric: set(group) for metric, group in table.groupby("metric")["git_sha"]}
    assert shas["max_sensitivity"] == {"later-commit"}
    assert shas["sparseness"] == set(first["git_sha"]) != {"later-commit"}


def test_an_interrupted_sweep_keeps_the_previous_table_but_never_passes_it_off_as_current(workdir, monkeypatch):
    first = xaibench.run(ONE)
    table = workdir / "results/runs/default/table.parquet"
    before = table.read_bytes()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_compute", killed)
    with pytest.raises(KeyboardInterrupt):
        xaibench.run([*ONE, "method=random"])
    assert table.read_bytes() == before  # never deleted before a new table is complete
    partial = xaibench.load("results/runs/default")  # but the folder says the last run did not finish
    assert partial.attrs["xaibench_partial"] == "0 of 1 cells; the sweep did not finish" and partial.empty
    monkeypatch.undo()
    again = xaibench.run(ONE)
    pd.testing.assert_frame_equal(again[list(RESULT_COLUMNS)], first[list(RESULT_COLUMNS)])
    assert "xaibench_partial" not in xaibench.load("results/runs/default").attrs


def test_summary_of_a_csv_table(workdir, capsys):
    from xaibench.cli import main

    xaibench.run(ONE)
    with pytest.raises(SystemExit):
        main(["collect", "results/runs/default", "-o", "t.csv"])
    with pytest.raises(SystemExit) as done:
        main(["summary", "t.csv"])
    assert done.value.code == 0
    pd.testing.assert_frame_equal(xaibench.summarize(xaibench.load("t.csv")),
                                  xaibench.summarize(xaibench.load("results/runs/default")), check_dtype=False)


def test_rerunning_a_cached_sweep_does_not_duplicate_wandb_runs(workdir):
    args = [*ONE, "logger=wandb", f"logger.dir={workdir / 'wb'}"]
    xaibench.run(args)
    xaibench.run(args)
    from xaibench.report.wandb_reader import read_offline_run

    runs = [read_offline_run(p) for p in glob.glob(str(workdir / "wb" / "wandb" / "offline-run-*"))]
    assert sorted(r.job_type for r in runs) == ["cell", "sweep"]  # neither the cell nor the sweep run twice


def test_n_forward_counts_samples_through_the_model_and_ignores_batch_size(workdir):
    ig = ["model=mlp", "dataset=iris", "method=integrated_gradients", "method.n_steps=8", "n_samples=4",
          *FAST_METRICS]
    small = xaibench.run([*ig, "batch_size=1"])
    large = xaibench.run([*ig, "batch_size=64", "store_dir=other"])
    # 8 interpolation steps + the 2 end points captum forwards for the convergence delta, per sample
    assert set(small["n_forward"]) == set(large["n_forward"]) == {10.0}
