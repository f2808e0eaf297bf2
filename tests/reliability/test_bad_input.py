"""A table of bad inputs through the CLI (in process, as ``xaibench.cli.main``; a few as real subprocesses) and
the Python API: each gives exit code 2 (the API: ``UserError``), exactly one line on stderr, no traceback, and
writes nothing (the working directory is byte-for-byte unchanged)."""
from __future__ import annotations

import os
import stat
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import xaibench
from tests.conftest import run_cli
from xaibench.cli import main
from xaibench.errors import UserError

BASE = ["model=mlp", "dataset=iris", "method=saliency", "n_samples=4"]
UNSET = "XAIBENCH_TEST_UNSET_VARIABLE"  # an environment variable the tests that name it unset (run_cli drops it)

# (overrides appended to BASE, expected part of the message); each runs through the CLI and the API.
RUN_CASES = [
    (["model=resnet"], "unknown model 'resnet'; valid: "),
    (["dataset=nope"], "unknown dataset 'nope'"),
    (["method=nope"], "unknown method 'nope'"),
    (["metrics=nope"], "unknown metrics 'nope'"),
    (["logger=nope"], "unknown logger 'nope'"),
    (["experiment=nope"], "unknown experiment 'nope'"),
    (["metrics=null"], "metrics=null leaves the metrics group empty; choose one of: "),
    (["method=null"], "method=null leaves the method group empty"),
    (["+n_sample=10"], "unknown config key 'n_sample'; did you mean 'n_samples'?"),
    (["++n_sample=10"], "unknown config key 'n_sample'; did you mean 'n_samples'?"),
    (["+sed=1"], "unknown config key 'sed'; did you mean 'seed'?"),
    (["+devcie=cpu"], "unknown config key 'devcie'; did you mean 'device'?"),
    (["model.epochs=-1"], "model.epochs must be an integer >= 1, got -1"),
    (["model.epochs=0"], "model.epochs must be an integer >= 1, got 0"),
    (["model.lr=0"], "model.lr must be positive"),
    (["model.lr=-0.1"], "model.lr must be positive"),
    (["model.batch_size=0"], "model.batch_size must be an integer >= 1"),
    (["++model.weight_decay=-1"], "model.weight_decay must be >= 0"),
    (["model.min_accuracy=2"], "model.min_accuracy must be in [0, 1]"),
    (["n_samples=0"], "n_samples must be a positive integer, got 0"),
    (["n_samples=abc"], "n_samples must be an integer"),
    (["n_samples=100000"], "n_samples=100000 exceeds the 45 test samples of dataset iris"),
    (["seed=abc"], "seed must be an integer"),
    (["batch_size=0"], "batch_size must be a positive integer, got 0"),
    (["threads=0"], "threads must be a positive integer"),
    (["strict=maybe"], "strict must be true or false"),
    (["target=regression"], "target must be one of predicted, label"),
    (["device=tpu"], "device"),
    (["sweep_id=../x"], "sweep_id must be a plain name"),
    (["method=saliency,random"], "is a sweep: add -m (multirun)"),
    (["experiment=quickstart"], "this config declares a sweep"),
    (["model.nope=1"], "unknown config key 'model.nope'; model has: "),
    (["+model.nope=1"], "unknown parameter(s) nope"),
    # a torch_module's constructor arguments (kwargs: {}) said only "unknown config key 'model.kwargs.hidden'"
    (["model=torch_module", "model.kwargs.hidden=8"], "unknown config key 'model.kwargs.hidden': model.kwargs holds "
                                                      "no keys yet; add one with a '+': +model.kwargs.hidden=<value>"),
    (["+method.n_steps=3"], "unknown parameter(s) n_steps"),
    (["metrics.faithfulness_correlation.nr_runs=-5"], "'nr_runs' must be a positive integer, got -5"),
    (["+metrics.nope={}"], "unknown metric 'nope'"),
    (["dataset=csv_table"], "no path given; set dataset.path=<file>"),
    (["dataset=csv_table", "dataset.path=missing.csv", "dataset.target=y"], "file not found"),
    (["dataset=npz_arrays", "dataset.path=garbage.npz"], "garbage.npz is not a valid npz file"),
    (["dataset=csv_table", "dataset.path=regression.csv", "dataset.target=price"],
     "the target column 'price' looks continuous"),
    (["dataset=csv_table", "dataset.path=regression.csv", "dataset.target=nope"], "target column 'nope' not in"),
    (["dataset.test_size=2"], "cannot be built with these parameters"),
    (["model=["], "no viable alternative at input '['"),
    (["results_dir=afile"], "results_dir afile/default is not a writable folder: afile is a file, not a folder"),
    (["store_dir=afile"], "store_dir afile/v2 is not a writable folder: afile is a file, not a folder"),
    # rel14: W&B checked its own settings only when the results were logged, after every cell (exit 0, 4 lines)
    (["logger=wandb", "logger.mode=bogus"], "logger.mode must be one of offline, online, disabled, got 'bogus'"),
    (["logger=wandb", "logger.log_cached=maybe"], "logger.log_cached must be true or false, got 'maybe'"),
    (["dataset=synthetic_shapes", "dataset.noise=-0.5"], "dataset synthetic_shapes: noise must be >= 0, got -0.5"),
    (["dataset=synthetic_shapes", "dataset.image_size=6"], "image_size must be in [7, 128]"),
    (["dataset=synthetic_shapes", "dataset.shapes=[disc,disc]"], "each shape may appear once"),
    (["model=least_squares", "explain_output=logit", "model.ridge=-1"], "least_squares: ridge must be >= 0"),
    (["model=least_squares"], "explain_output=log_odds would misread them; set explain_output=logit"),
    (["metrics=ground_truth", "metrics.conditional_shapley_mse.n_draws=-1"],
     "'n_draws' must be a non-negative integer, got -1"),
    (["metrics=ground_truth", "metrics.conditional_shapley_distance.n_draws=1.5"],
     "'n_draws' must be a non-negative integer, got 1.5"),
    # rel19: an empty folder option (results_dir=$OUT with OUT unset) wrote the sweep into the working folder; null,
    # a number or a list ended in a TypeError traceback after files were written
    (["results_dir="], "results_dir is empty (an unset shell variable?); give a folder, e.g. results_dir=results/runs"),
    (["store_dir="], "store_dir is empty (an unset shell variable?); give a folder, e.g. store_dir=results/store"),
    (["results_dir=null"], "results_dir is null; give a folder"),
    (["store_dir=null"], "store_dir is null; give a folder"),
    (["results_dir=[a]"], "results_dir must be a folder path, got ['a']"),
    (["store_dir=123"], "store_dir must be a folder path, got the number 123; quote a folder name made of digits: "
                        "\"store_dir='123'\""),
    (["verbose=abc"], "verbose must be true or false, got 'abc'"),  # ran, quietly
    # rel19: a negative penalty, noise level or margin, a probability above 1: ran as 0 (lime's alpha) or failed in
    # every cell, each under its own cell key
    (["method=lime", "method.alpha=-1"], "method 'lime': alpha must be >= 0, got -1"),
    (["method=smoothgrad", "method.noise_level=-0.1"], "method 'smoothgrad': noise_level must be >= 0, got -0.1"),
    (["method=gradient_shap", "method.stdevs=-1"], "method 'gradient_shap': stdevs must be >= 0, got -1"),
    (["method=deeplift_shap", "method.baseline_std=-1"], "method 'deeplift_shap': baseline_std must be >= 0"),
    (["method=dice", "method.change_probability=1.5"], "method 'dice': change_probability must be in [0, 1], got 1.5"),
    (["method=wachter", "method.confidence=-1"], "method 'wachter': confidence must be >= 0, got -1"),
]
MULTIRUN_CASES = [
    (["hydra/launcher=submitit_slurm_chunked"], "needs Slurm, but sbatch is not on PATH"),
    (["hydra/launcher=nope"], "hydra/launcher"),
    (["method=saliency,nope"], "unknown method 'nope'"),
    (["model.epochs=5,-1"], "model.epochs must be an integer >= 1, got -1"),
]
CLI_ONLY = [
    (["--cfg", "job", "model=mlpp"], "unknown model 'mlpp'"),
    (["--cfg", "job", "+n_sample=3"], "did you mean 'n_samples'?"),
    (["--cfg", "hydra", "+hydra.sweep.sudbir=x"], "unknown config key 'hydra.sweep.sudbir', which Hydra would ignore; "
                                                  "did you mean 'hydra.sweep.subdir'?"),
    (["--config-dir", "x"], "--config-dir/--config-path replace xaibench's configs"),
    (["--bogus"], "unrecognised option(s) --bogus"),
    (["collect", "no/such/sweep"], "no sweep results under no/such/sweep"),
    (["collect", "sweep_bad"], "cell file sweep_bad/cells/0a.parquet is not a readable Parquet file"),
    (["collect", "--store", "nostore"], "store directory nostore does not exist"),
    # Lead (split21 saw it): a folder without v2/ (results, not results/store) printed "(no results)", exit 0, as
    # store verify refuses it
    (["collect", "--store", "emptydir"], "emptydir holds no xaibench store (no v2/ folder); give the store_dir your "
                                         "sweeps used (default results/store)"),
    (["collect", "--store", "store", "-o", "afile/out.parquet"], "cannot write"),
    (["summary", "truncated.parquet"], "table truncated.parquet is not a readable Parquet file"),
    (["summary", "notes.txt"], "notes.txt is not a results table: expected a .parquet or .csv file"),
    (["summary", "other.csv"], "table other.csv is not an xaibench results table (lacks columns: model"),
    (["summary", "other.parquet"], "table other.parquet is not an xaibench results table"),
    (["summary", "fake.parquet"], "table fake.parquet is not a readable Parquet file"),
    (["summary", "missing.parquet"], "results table missing.parquet not found"),
    (["summary", "emptydir"], "no sweep results under emptydir"),
    (["summary", "summary.csv", "-o", "afile/s.parquet"], "cannot write afile"),
    # rel19: an empty table printed "(no results)", exit 0 (report and compare refuse it); a Parquet file with only
    # the columns every reader needs ended in a KeyError traceback (summary, report) or named pandas' KeyError
    (["summary", "table.csv"], "table table.csv holds no rows; run a sweep first"),
    (["summary", "empty.parquet"], "table empty.parquet holds no rows; run a sweep first"),
    (["summary", "readers_only.parquet"], "table readers_only.parquet is not an xaibench results table (lacks "
                                          "columns: model_params, dataset_params, method_params, params, n_samples "
                                          "and 12 more)"),
    (["report", "readers_only.parquet", "--no-figures"], "table readers_only.parquet is not an xaibench results "
                                                         "table (lacks columns: higher_is_better, cell_key)"),
    (["compare", "readers_only.parquet", "readers_only_copy.parquet"], "(lacks columns: higher_is_better, cell_key)"),
    # rel19: collect of a file said "afile/sweep.json is damaged (unreadable: Not a directory)"
    (["collect", "afile"], "afile is a file; collect gathers a sweep folder's cells (e.g. results/runs/<sweep_id>); "
                           "a table file is read by xaibench summary afile"),
    (["store", "verify", "afile"], "store directory afile is a file, not a folder"),
    (["summary", "table.csv", "-o", "table.csv"], "summary -o table.csv is the results table this command reads"),
    (["compare", "table.csv", "table.csv", "--json", "table.csv"], "--json table.csv is the baseline this command"),
    # ci17: --junit is checked like --json; every output is checked before anything is read or written (a --json
    # into a file-as-folder failed after --report was written, exit 2 with a file changed)
    (["compare", "table.csv", "table.csv", "--junit", "table.csv"], "--junit table.csv is the baseline this command"),
    (["compare", "table.csv", "table.csv", "--junit", "afile/out.xml"],
     "--junit afile/out.xml cannot be written: afile is a file, not a folder; choose another path"),
    (["compare", "table.csv", "table.csv", "--junit", "emptydir"], "--junit emptydir is a folder; name a file (e.g. "
                                                                   "--junit emptydir/out.xml)"),
    (["compare", "table.csv", "table.csv", "--report", "r.md", "--junit", "afile/deeper/out.xml"],
     "--junit afile/deeper/out.xml cannot be written: afile is a file, not a folder"),
    (["compare", "table.csv", "table.csv", "--report", "r.md", "--json", "afile/v.json"],
     "--json afile/v.json cannot be written: afile is a file, not a folder"),
    (["compare", "table.csv", "table.csv", "--json", "v.xml", "--junit", "./v.xml"],
     "--junit ./v.xml is the file --json writes too; choose another file"),
    (["store", "verify", "nostore"], "store directory nostore does not exist"),
    (["store", "gc", "store", "--min-age", "-1"], "--min-age must be >= 0"),
    # rel14: a damaged sweep.json (it says whether the sweep finished) was read as "no record": the folder's old
    # table or its cells so far were summarised as if the sweep were complete, without a word
    (["summary", "sweep_truncated"], "sweep_truncated/sweep.json is damaged (not valid JSON: "),
    (["summary", "sweep_list"], "sweep_list/sweep.json is damaged (a JSON list, not an object); it says whether "
                                "the sweep finished, so its table cannot be told complete: rerun the sweep's "
                                "command to rewrite it (stored cells are not recomputed), or delete it"),
    (["collect", "sweep_types", "-o", "t.parquet"], "sweep_types/sweep.json is damaged (expected_cells is '24', "
                                                    "not a count)"),
    (["collect", "sweep_state"], "sweep_state/sweep.json is damaged (state is 3, not one of 'running', 'finished', 'failed')"),
    (["report", "sweep_truncated", "--no-figures"], "sweep_truncated/sweep.json is damaged (not valid JSON"),
    # rel14: a table edited by hand was summarised as if valid: an unknown status dropped its rows, `yes` became
    # True (flipping a lower-is-better metric's ranks), inf with status ok ranked first, and copies counted twice
    (["summary", "edited_status.csv"], "table edited_status.csv: status 'okay' on line 3 is not one of ok, error, "
                                       "not_applicable, nan"),
    (["summary", "edited_direction.csv"], "table edited_direction.csv: higher_is_better is 'yes' on line 2; write "
                                          "True or False"),
    (["summary", "edited_mixed.csv"], "table edited_mixed.csv: metric x has higher_is_better True in 2 rows and "
                                      "False in 1; one metric has one direction"),
    (["summary", "edited_inf.csv"], "table edited_inf.csv: status ok with value inf on line 4; a score that is not a "
                                    "finite number has status nan"),
    (["report", "summary.csv", "--out", "."], "--out .: the report writes its own summary.csv there, which would "
                                             "replace the results table summary.csv it reads; choose another --out"),
    (["report", "edited_copies.parquet", "--no-figures"], "table edited_copies.parquet: 6 rows are exact copies of "
                                                         "others (the first on row 7)"),
]
API_ONLY = [
    (lambda: xaibench.run("model=mlp dataset=nope"), "unknown dataset 'nope'"),
    (lambda: xaibench.run(5), "overrides must be a list of strings"),
    (lambda: xaibench.run(["model=mlp", 3]), "overrides must be strings like 'model=mlp', got 3"),
    (lambda: xaibench.run("model='mlp"), "cannot split the overrides"),
    (lambda: xaibench.load("notes.txt"), "notes.txt is not a results table"),
    (lambda: xaibench.load("truncated.parquet"), "is not a readable Parquet file"),
    (lambda: xaibench.load("other.csv"), "is not an xaibench results table"),
    (lambda: xaibench.load("sweep_bad"), "is not a readable Parquet file"),
    (lambda: xaibench.load("sweep_list"), "sweep_list/sweep.json is damaged (a JSON list, not an object)"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder of bad input files, made once."""
    root = tmp_path_factory.mktemp("bad_inputs")
    (root / "garbage.npz").write_bytes(os.urandom(512))
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60),
                  "price": rng.normal(100, 10, size=60)}).to_csv(root / "regression.csv", index=False)
    (root / "notes.txt").write_text("not a table\n")
    pd.DataFrame({"x": [1, 2]}).to_csv(root / "other.csv", index=False)
    pd.DataFrame({"x": [1, 2]}).to_parquet(root / "other.parquet")
    (root / "fake.parquet").write_text("PAR1 but not really")
    table = pd.DataFrame({c: ["v"] for c in ("model", "dataset", "method", "metric", "sample_id")})
    table.assign(value=[1.0], status=["ok"]).to_parquet(root / "truncated.parquet")
    table.assign(value=[1.0], status=["ok"]).to_parquet(root / "readers_only.parquet")  # only what readers need
    shutil.copy(root / "readers_only.parquet", root / "readers_only_copy.parquet")  # compare refuses a file twice
    (root / "truncated.parquet").write_bytes((root / "truncated.parquet").read_bytes()[:300])
    from xaibench.results.schema import empty_table

    empty_table().to_csv(root / "table.csv", index=False)
    empty_table().to_parquet(root / "empty.parquet")
    (root / "sweep_bad" / "cells").mkdir(parents=True)
    (root / "sweep_bad" / "cells" / "0a.parquet").write_bytes(b"PAR1 damaged")
    (root / "store" / "v2").mkdir(parents=True)  # an (empty) store: its v2/ folder
    (root / "emptydir").mkdir()
    from tests.reliability.test_collect import cell_frame

    for name, record in (("truncated", '{"state": "finished", "expec'), ("list", "[1, 2]"),
                         ("types", '{"state": "finished", "expected_cells": "24"}'), ("state", '{"state": 3}')):
        (root / f"sweep_{name}" / "cells").mkdir(parents=True)  # cells and a table: readable but for the record
        cell_frame(0, "a", "m1", 0, ["x"]).to_parquet(root / f"sweep_{name}" / "cells" / f"{0:032x}.parquet")
        cell_frame(0, "a", "m1", 0, ["x"]).to_parquet(root / f"sweep_{name}" / "table.parquet")
        (root / f"sweep_{name}" / "sweep.json").write_text(record)
    rows = cell_frame(0, "a", "m1", 0, ["x", "y"])  # 6 rows, ok, higher is better
    for name, column, row, value in (("status", "status", 1, "okay"), ("direction", "higher_is_better", 0, "yes"),
                                     ("mixed", "higher_is_better", 2, False), ("inf", "value", 2, "inf")):
        edited = rows.astype({column: object})
        edited.loc[row, column] = value
        edited.to_csv(root / f"edited_{name}.csv", index=False)
    pd.concat([rows, rows]).to_parquet(root / "edited_copies.parquet")
    rows.to_csv(root / "summary.csv", index=False)  # a results table under a name the report writes
    (root / "afile").write_text("a file where a folder should be")
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def indir(inputs, monkeypatch):
    monkeypatch.chdir(inputs)
    monkeypatch.delenv("XAIBENCH_STORE", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no sbatch
    before = snapshot(inputs)
    yield inputs
    assert snapshot(inputs) == before, "a rejected input wrote or changed a file"


def assert_cli_refuses(argv: list[str], expected: str, capfd) -> None:
    capfd.readouterr()
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capfd.readouterr().err
    assert done.value.code == 2, err
    assert err.count("\n") == 1 and err.startswith("xaibench: error: "), err
    assert expected in err and "Traceback" not in err


@pytest.mark.parametrize("overrides, expected", RUN_CASES + [(["-m", *o], e) for o, e in MULTIRUN_CASES])
def test_cli_refuses(indir, capfd, overrides, expected):
    flags = overrides[:1] if overrides[0] == "-m" else []
    assert_cli_refuses([*flags, *BASE, *overrides[len(flags):]], expected, capfd)


@pytest.mark.parametrize("argv, expected", CLI_ONLY)
def test_cli_verbs_and_options_refuse(indir, capfd, argv, expected):
    assert_cli_refuses(argv, expected, capfd)


@pytest.mark.parametrize("overrides, expected", RUN_CASES[::3] + [(["-m", *o], e) for o, e in MULTIRUN_CASES])
def test_api_refuses(indir, capfd, overrides, expected):
    multirun = overrides[0] == "-m"
    with pytest.raises(UserError) as error:
        xaibench.run([*BASE, *overrides[multirun:]], multirun=multirun)
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("call, expected", API_ONLY)
def test_api_calls_refuse(indir, capfd, call, expected):
    with pytest.raises(UserError) as error:
        call()
    assert expected in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("swept, expected", [
    (["n_samples=4,100000"], "n_samples=100000 exceeds the 45 test samples of dataset iris"),
    (["model.epochs=5,-1"], "model.epochs must be an integer >= 1, got -1"),
])
def test_a_bad_value_beyond_the_fully_built_jobs_is_refused_before_any_file(indir, capfd, monkeypatch, swept,
                                                                            expected):
    """reliab11: the pre-flight checked only the first MAX_VALIDATED (2,000) jobs; a bad value in job 2,001 failed
    at run time after files were written. Every job is checked now (beyond the cap its dataset and model builds are
    reused when an earlier job built the same ones), so the bad value in the second job is refused here with the
    cap at 1."""
    from xaibench.config import preflight

    monkeypatch.setattr(preflight, "MAX_VALIDATED", 1)
    assert_cli_refuses(["-m", *BASE, *swept], expected, capfd)


def test_cases_are_many():
    assert len(RUN_CASES) + len(MULTIRUN_CASES) + len(CLI_ONLY) + len(API_ONLY) >= 60


@pytest.mark.slow
def test_real_console_refuses_and_keeps_a_previous_table(tmp_path):
    """Real subprocesses: --cfg validated; Slurm without sbatch refused before the previous table is touched; rel21:
    ``hydra.job.env_copy`` naming an unset variable (Hydra's KeyError traceback, exit 1)."""
    (tmp_path / "results" / "runs" / "default" / "cells").mkdir(parents=True)
    previous = {name: os.urandom(64) for name in ("table.parquet", "summary.parquet", "cells/x.parquet")}
    for name, data in previous.items():
        (tmp_path / "results" / "runs" / "default" / name).write_bytes(data)
    before = snapshot(tmp_path)
    for argv, expected in [(["--cfg", "job", "model=mlpp"], "unknown model 'mlpp'"),
                           (["-m", *BASE, "hydra/launcher=submitit_slurm_chunked"], "sbatch is not on PATH"),
                           (["-m", *BASE, "seed=0,1", f"+hydra.job.env_copy=[{UNSET}]"],
                            f"hydra.job.env_copy names the environment variable '{UNSET}', which is not set here")]:
        done = run_cli(argv, tmp_path, PATH=os.path.dirname(os.sys.executable) + ":/usr/bin:/bin")
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert snapshot(tmp_path) == before
    assert stat.S_ISREG((tmp_path / "results/runs/default/table.parquet").stat().st_mode)


# Bring your own model and arrays (review as a new user) ----------------------------------------------------------
BYO_NETS = '''
from torch import nn


class Net(nn.Module):
    def __init__(self, f=4, k=3):
        super().__init__()
        self.fc = nn.Linear(f, k)

    def forward(self, x):
        return self.fc(x)


class SoftNet(Net):
    def forward(self, x):
        return self.fc(x).softmax(-1)
'''
BYO = ["dataset=iris", "method=saliency", "n_samples=4", "metrics=sparsity"]
BYO_CASES = [  # (overrides, expected part of the one line)
    (["model=torch_module", "model.target=byo_nets.SoftNet", "model.state_dict=net.pt"],
     "forward returns probabilities (every row in [0, 1], summing to 1), not logits; set model.outputs=probabilities"),
    (["model=torch_module", "model.target=byo_nets.Net", "model.state_dict=net.pt", "model.outputs=probabilities"],
     "model.outputs=probabilities, but forward's rows are not probabilities"),
    (["model=torch_module", "model.target=byo_nets.Net", "model.state_dict=net.pt", "model.outputs=proba"],
     "model.outputs must be one of logits, probabilities, got 'proba'"),
    (["model=torch_module", "model.target=byo_nets.SoftNet", "model.state_dict=net.pt", "model.outputs=probabilities",
      "explain_output=logit"], "model torch_module outputs probabilities, which have no logits"),
    (["model=sklearn_estimator", "explain_output=logit"], "model sklearn_estimator outputs probabilities"),
    # a misspelt constructor argument ended in Python's bare "got an unexpected keyword argument 'kk'"
    (["model=torch_module", "model.target=byo_nets.Net", "+model.kwargs.kk=2", "model.state_dict=net2.pt"],
     "got an unexpected keyword argument 'kk'; did you mean model.kwargs.k? (Net takes: f, k)"),
    (["model=sklearn_estimator", "+model.kwargs.n_estimator=5"],
     "unexpected keyword argument 'n_estimator'; did you mean model.kwargs.n_estimators? "
     "(RandomForestClassifier takes: "),
    (["model=torch_module", "model.target=byo_nets.Net", "+model.kwargs.k=2", "model.state_dict=net2.pt"],
     "forward must return class scores (N, 3), got (8, 2) for 8 samples; the dataset has 3 classes"),
    (["model=torch_module", "model.target=byo_nets.Net", "model.state_dict=net.pt", "dataset=csv_table",
      "dataset.path=shop.csv", "dataset.target=bought"],
     "forward fails on inputs of shape (5,) per sample: RuntimeError: mat1 and mat2 shapes cannot be multiplied "
     "(8x5 and 4x3); the dataset gives 5 features (a, b, c, device=desktop, device=mobile): categories are one-hot "
     "encoded, one feature per value (dataset.categorical=ordinal keeps one per column)"),
    (["model=torch_module", "model.target=byo_nets.Net", "model.state_dict=whole.pt"],
     "whole.pt holds a pickled torch.nn.modules.linear.Linear (a whole model saved with torch.save(model)?), which "
     "runs code when loaded; save its weights instead: torch.save(model.state_dict(), path)"),
    (["model=mlp", "dataset=npz_arrays", "dataset.path=halves.npz"],
     "the label array 'y' has fractional values (0.5, 1.5); class labels must be integers or names"),
    (["model=mlp", "dataset=npz_arrays", "dataset.path=onehot.npz"],
     "y has shape (30, 2); give one class label per sample (N,) (one-hot rows? store their argmax)"),
    # the torch-free pre-check said "n_samples=4 exceeds the 0 test samples" / "... the 2 test samples" here
    (["model=mlp", "dataset=csv_table", "dataset.path=shop_split.csv", "dataset.target=bought",
      "dataset.split_column=part"],
     "split_column 'part' must hold only train/test, found 'tset'"),
    (["model=cnn", "dataset=image_folder", "dataset.path=shapes", "dataset.image_size=8"],
     "class folder shapes/empty has no images"),
    (["model=mlp", "dataset=csv_table", "dataset.path=counts.csv", "dataset.target=visits"],
     "the target column 'visits' holds 30 distinct whole numbers (0 to 29, 3 rows per value on average): counts or "
     "measurements would become as many unordered classes; if they are class codes set dataset.task=classification"),
    (["model=mlp", "dataset=csv_table", "dataset.path=counts.csv", "dataset.target=visits", "dataset.task=regression"],
     "task=regression: xaibench benchmarks classifiers; bin the target column 'visits' into classes first"),
    (["model=torch_module", "model.target=byo_nets.py", "model.state_dict=net.pt"],  # was "no attribute 'py'"
     "model.target='byo_nets.py' names no class; write model.target=byo_nets.py:Net (the file and its class), or "
     "model.target=byo_nets.Net with its folder importable"),
    (["model=torch_module", "model.target=byo_nets.net", "model.state_dict=net.pt"],
     "cannot import model.target='byo_nets.net': module 'byo_nets' ("),
    (["model=torch_module", "model.target=byo_nets.net", "model.state_dict=net.pt"],
     "has no 'net'; did you mean model.target=byo_nets.Net?"),
    (["model=torch_module", "model.target=./byo_net.py:Net", "model.state_dict=net.pt"],  # a misspelt file: no hint
     "model.target: file not found: byo_net.py (relative paths start at "),
    (["model=torch_module", "model.target=./byo_net.py:Net", "model.state_dict=net.pt"],
     "; did you mean model.target=./byo_nets.py:Net?"),
    (["model=torch_module", "model.target=byo_net.Net", "model.state_dict=net.pt"],
     "No module named 'byo_net'; did you mean model.target=byo_nets.Net?"),
    (["model=torch_module", "model.state_dict=net.pt"],
     "net.pt holds weights only (not a TorchScript archive); set model.target=<package.module.Class>"),
    (["model=mlp", "dataset=csv_table", "dataset.path=gaps.parquet", "dataset.target=bought"],  # was a TypeError
     "dataset csv_table: the target column 'bought' has 1 missing value(s); drop or fill those rows first"),
    (["model=mlp", "dataset=csv_table", "dataset.path=dated.parquet", "dataset.target=bought"],  # was one-hot dates
     "column(s) signup hold dates or times, which would be encoded as one category per value; convert them to "
     "numbers first (e.g. days since a date: (df['signup'] - df['signup'].min()).dt.days) or leave them out"),
    (["model=cnn", "dataset=image_folder", "dataset.path=broken", "dataset.image_size=8"],
     "dataset image_folder: cannot read image broken/b/3.png (cannot identify image file); replace it with a "
     "readable image or move it out of the class folder"),
]


@pytest.fixture(scope="module")
def byo_inputs(tmp_path_factory) -> Path:
    """A user's folder: a module with two nets, weights files, a table with a category, arrays with bad labels."""
    import torch

    root = tmp_path_factory.mktemp("byo_inputs")
    (root / "byo_nets.py").write_text(BYO_NETS)
    torch.manual_seed(0)
    torch.save({"fc." + k: v for k, v in torch.nn.Linear(4, 3).state_dict().items()}, root / "net.pt")
    torch.save({"fc." + k: v for k, v in torch.nn.Linear(4, 2).state_dict().items()}, root / "net2.pt")
    torch.save(torch.nn.Linear(4, 3), root / "whole.pt")
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30), "c": rng.normal(size=30),
                  "device": rng.choice(["mobile", "desktop"], 30),
                  "bought": rng.choice(["yes", "no"], 30)}).to_csv(root / "shop.csv", index=False)
    np.savez(root / "halves.npz", x=rng.normal(size=(30, 4)), y=np.arange(30) % 2 + 0.5)
    np.savez(root / "onehot.npz", x=rng.normal(size=(30, 4)), y=np.eye(2)[np.arange(30) % 2])
    shop = pd.read_csv(root / "shop.csv")
    shop.assign(part=np.where(np.arange(30) < 20, "train", "tset")).to_csv(root / "shop_split.csv", index=False)
    from PIL import Image

    for folder in ("shapes/full", "shapes/empty"):
        (root / folder).mkdir(parents=True)
    for i in range(6):  # 2 test images if "empty" were not empty: fewer than n_samples=4
        Image.fromarray(rng.integers(0, 255, (8, 8)).astype(np.uint8)).save(root / f"shapes/full/{i}.png")
    for i in range(14):  # 5 test images, one of them unreadable
        (root / "broken" / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8)).astype(np.uint8)).save(root / f"broken/{'ab'[i % 2]}/{i}.png")
    (root / "broken/b/3.png").write_text("not an image")
    pd.DataFrame({"a": rng.normal(size=90), "visits": np.arange(90) % 30}).to_csv(root / "counts.csv", index=False)
    parquet = shop.assign(bought=pd.array(shop["bought"], dtype="string"))  # as pandas' Parquet reader gives text
    parquet.loc[4, "bought"] = pd.NA
    parquet.to_parquet(root / "gaps.parquet")
    shop.assign(signup=pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(30), unit="D")).to_parquet(
        root / "dated.parquet")
    return root


@pytest.fixture
def byo_dir(byo_inputs, monkeypatch):
    monkeypatch.syspath_prepend(str(byo_inputs))
    yield from unchanged_folder(byo_inputs, monkeypatch)


def unchanged_folder(folder, monkeypatch):
    """Run from ``folder`` with its own store; afterwards, assert that no file in it was written or changed."""
    monkeypatch.chdir(folder)
    monkeypatch.setenv("XAIBENCH_STORE", str(folder / "store"))
    before = snapshot(folder)
    yield folder
    assert snapshot(folder) == before, "a rejected input wrote or changed a file"


@pytest.mark.parametrize("overrides, expected", BYO_CASES)
def test_cli_refuses_bring_your_own_mistakes(byo_dir, capfd, overrides, expected):
    assert_cli_refuses([*BYO, *overrides], expected, capfd)
    assert "\x1b" not in capfd.readouterr().err


def test_cli_names_a_multirun_flag_between_overrides(byo_dir, capfd):
    """``xaibench results_dir=x -m method=a,b`` (Hydra reads overrides only before or after -m): say so."""
    assert_cli_refuses(["model=mlp", "-m", *BYO[1:], "method=saliency,random"],
                       "n_samples=4 metrics=sparsity method=saliency,random; put -m/--multirun before (or after) "
                       "all the overrides", capfd)


def _byo_net():
    import torch

    torch.manual_seed(0)
    return torch.nn.Linear(4, 3)


def _x(n: int = 6):
    return np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)


def _forest():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(_x(), [0, 1, 2, 0, 1, 2])


BYO_API_CASES = [  # each raised a TypeError/RuntimeError/ValueError, scored wrongly, or was silently truncated
    (lambda: xaibench.evaluate(_byo_net(), _x(), np.array(list("abcabc")), _x(), metrics=["sparseness"]),
     "y must hold numbers, got dtype <U1; encode class names as 0..K-1"),
    (lambda: xaibench.evaluate(_byo_net(), _x(), [0, 1, 5, 0, 1, 2], _x(), metrics=["sparseness"], target="label"),
     "y holds class 5, but the model returns 3 class scores (classes 0..2)"),
    (lambda: xaibench.evaluate(_byo_net(), _x(), np.arange(6) % 3 + 0.5, _x(), metrics=["sparseness"]),
     "y must be integer class indices 0..2, got non-integer values"),
    (lambda: xaibench.evaluate(_byo_net(), _x(), np.eye(3)[np.arange(6) % 3], _x(), metrics=["sparseness"]),
     "y must be class indices (N,), got shape (6, 3) (one-hot? use argmax)"),
    (lambda: xaibench.evaluate(_byo_net(), np.where(_x() > 1, np.nan, _x()), [0] * 6, _x(), metrics=["sparseness"]),
     "x has NaN or infinite values"),
    (lambda: xaibench.evaluate(_byo_net(), _x(), [0] * 6, np.where(_x() > 1, np.nan, _x()), metrics=["sparseness"]),
     "attributions have NaN or infinite values (samples 1, 4, 5); replace them before scoring"),
    (lambda: xaibench.evaluate(_byo_net(), _x(), [0] * 6, _x(), metrics=["pointing_game"], masks=np.ones((6, 3))),
     "masks have shape (6, 3), expected (6, 4) (shaped like x)"),
    (lambda: xaibench.evaluate(_byo_net(), _x(), [0] * 6, _x(), metrics=["sparseness"], train=(_x(5), [0, 1])),
     "train y has 2 values for 5 samples"),
    (lambda: xaibench.explain(_byo_net(), _x(), method="saliency", targets=[0, 1, 7, 0, 1, 2]),
     "targets holds class 7, but the model returns 3 class scores"),
    (lambda: xaibench.explain(_byo_net(), _x(), method="saliency", targets=[0, 1]), "targets has 2 values for 6 samples"),
    (lambda: xaibench.explain(_byo_net(), _x()[:, :3], method="saliency"),
     "model: forward fails on inputs of shape (3,) per sample"),
    (lambda: xaibench.explain(_forest(), _x()[:, :3], method="feature_ablation"),
     "the scikit-learn model was fitted on 4 features, x has 3 per sample"),
    (lambda: xaibench.explain(_byo_net(), [["a"] * 4] * 6, method="saliency"), "x must hold numbers, got dtype <U1"),
    (lambda: xaibench.explain(_byo_net(), _x(), method="saliency", modality="tabularr"),
     "modality must be one of tabular, time_series, image, text, got 'tabularr'"),
    (lambda: xaibench.explain(_byo_net(), _x().reshape(6, 1, 2, 2), method="saliency", modality="tabular"),
     "x for modality tabular must be (N, F) with at least one sample, got shape (6, 1, 2, 2)"),
    (lambda: xaibench.explain(_byo_net(), _x(), method="saliency", outputs="probs"),
     "outputs must be one of logits, probabilities, got 'probs'"),
    # review24: explain's keyword misspelt went to the method as its parameter, and the line named the method's
    (lambda: xaibench.explain(_byo_net(), _x(), target=[0] * 6),
     "method 'integrated_gradients': unknown parameter(s) target; valid: baseline, internal_batch_size, method, "
     "n_steps; explain's own keyword is targets=, not target="),
]


@pytest.mark.parametrize("call, expected", BYO_API_CASES)
def test_api_refuses_bad_arrays(call, expected):
    with pytest.raises(UserError) as error:
        call()
    assert expected in str(error.value) and "\n" not in str(error.value)


CLASS_AND_COLUMN_CASES = [  # (overrides, expected part of the one line): found by review of bring-your-own
    (["model=sklearn_estimator", "model.path=two_classes.skops", "dataset=csv_table", "dataset.path=diagnoses.csv",
      "dataset.target=diagnosis", "dataset.standardize=false"],
     "model sklearn_estimator: two_classes.skops predicts classes [benign, malignant], dataset csv_table has "
     "[benign, malignant, unclear]: the dataset's label(s) 'unclear' are not classes of the model"),
    (["model=mlp", "dataset=csv_table", "dataset.path=visits.csv", "dataset.target=bought"],
     "one-hot encoding visitor (105 distinct values) would add more than dataset.max_categories=100 features per "
     "column; leave an id or free-text column out with dataset.features=[...]"),
    (["model=mlp", "dataset=csv_table", "dataset.path=visits.csv", "dataset.target=bought",
      "dataset.max_categories=0"], "max_categories must be at least 1, got 0"),
    (["model=mlp", "dataset=npz_arrays", "dataset.path=tokens.npz", "dataset.vocab_key=vocab"],
     "vocab_key names token strings, for modality=text only (got tabular)"),
]


@pytest.fixture(scope="module")
def class_and_column_inputs(tmp_path_factory) -> Path:
    """A table labelled by name with a model that lacks one of its classes; a table with an id-like column."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("class_and_column_inputs")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 4))
    diagnosis = np.array(["benign", "malignant", "unclear"])[np.arange(150) % 3]
    pd.DataFrame(x, columns=list("abcd")).assign(diagnosis=diagnosis).to_csv(root / "diagnoses.csv", index=False)
    two = diagnosis != "unclear"
    sio.dump(LogisticRegression().fit(x[two], diagnosis[two]), root / "two_classes.skops")
    pd.DataFrame({"minutes": x[:, 0], "visitor": [f"v{i:03d}" for i in range(150)],
                  "bought": rng.choice(["yes", "no"], 150)}).to_csv(root / "visits.csv", index=False)
    np.savez(root / "tokens.npz", x=rng.integers(0, 4, (30, 4)), y=np.arange(30) % 2, vocab=np.array(list("abcd")))
    return root


@pytest.mark.parametrize("overrides, expected", CLASS_AND_COLUMN_CASES)
def test_cli_refuses_class_and_column_mistakes(class_and_column_inputs, monkeypatch, capfd, overrides, expected):
    assert_refused_in(class_and_column_inputs, overrides, expected, capfd, monkeypatch)


def assert_refused_in(folder: Path, overrides: list[str], expected: str, capfd, monkeypatch) -> None:
    """The bring-your-own CLI run from ``folder`` (its own store) refuses ``overrides`` with ``expected`` in one
    line, exit 2, and leaves every file in ``folder`` as it was."""
    monkeypatch.chdir(folder)
    monkeypatch.setenv("XAIBENCH_STORE", str(folder / "store"))
    before = snapshot(folder)
    assert_cli_refuses([*BYO[1:], *overrides], expected, capfd)
    assert snapshot(folder) == before, "a rejected input wrote or changed a file"


# Found by review as a researcher bringing their own models (byo6): each was accepted and silently wrong, or failed
# with a message that did not say what to do.
USER_MODEL_CASES = [  # (overrides after BYO[1:], expected part of the one line)
    (["model=sklearn_estimator", "model.path=renamed.skops", "dataset=csv_table", "dataset.path=doses.csv",
      "dataset.target=outcome", "dataset.standardize=false"],
     "model sklearn_estimator: renamed.skops was fitted on columns [age, dose_mg], the dataset's features are "
     "[age, dose]: its column(s) 'dose_mg' are missing; fit it on the dataset's features"),
    (["model=cnn", "dataset=npz_arrays", "dataset.path=photos.npz", "dataset.modality=image"],
     "x has shape (30, 8, 8, 3), channel-last (N, H, W, C) as PIL and numpy write images; store it channel-first "
     "(N, C, H, W): np.savez(..., x=x.transpose(0, 3, 1, 2))"),
    (["model=torch_module", "model.target=torch.nn.Linear", "+model.kwargs.in_features=4",
      "+model.kwargs.out_features=3", "model.state_dict=two_models.pt"],
     "model torch_module: two_models.pt holds several state_dicts (model, ema); save the one to explain alone: "
     "torch.save(checkpoint['model'], path)"),
    (["model=torch_module", "model.target=local_nets.Net", "model.state_dict=two_models.pt"],
     "cannot import model.target='local_nets.Net': No module named 'local_nets'; local_nets is in "),
    (["model=mlp", "dataset=npz_arrays", "dataset.path=soft_masks.npz", "dataset.masks_key=masks",
      "metrics=localisation"],
     "dataset npz_arrays: masks hold values other than 0 and 1 (e.g. 0.05); localisation metrics read every nonzero "
     "value as inside the ground truth: threshold soft masks first (masks > 0.5)"),
    (["model=torch_module", "model.target=torch.nn.Linear", "model.state_dict=~/net.pt"],
     "model.state_dict=~/net.pt: Hydra's override grammar reads '~/net.pt' only quoted; write "
     "'model.state_dict=\"~/net.pt\"'"),
]


@pytest.fixture(scope="module")
def user_model_inputs(tmp_path_factory) -> Path:
    """A model fitted on a DataFrame whose column names differ from the table's; photos stored channel-last."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("user_model_inputs")
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"age": rng.normal(size=40), "dose": rng.normal(size=40)})
    outcome = np.where(table["dose"] > 0, "worse", "better")
    table.assign(outcome=outcome).to_csv(root / "doses.csv", index=False)
    renamed = table.rename(columns={"dose": "dose_mg"})
    sio.dump(LogisticRegression().fit(renamed, outcome), root / "renamed.skops")
    np.savez(root / "photos.npz", x=rng.random((30, 8, 8, 3)), y=np.arange(30) % 2)
    import torch

    (root / "local_nets.py").write_text("from torch.nn import Linear as Net\n")  # not on sys.path
    soft = np.full((30, 6), 0.05)  # a soft mask: a little everywhere, 1 on the object
    soft[:, :2] = 1.0
    np.savez(root / "soft_masks.npz", x=rng.normal(size=(30, 6)), y=np.arange(30) % 2, masks=soft)
    weights = torch.nn.Linear(4, 3).state_dict()
    torch.save({"model": weights, "ema": weights, "step": 10}, root / "two_models.pt")
    return root


@pytest.mark.parametrize("overrides, expected", USER_MODEL_CASES)
def test_cli_refuses_user_model_mistakes(user_model_inputs, monkeypatch, capfd, overrides, expected):
    import sys

    assert_refused_in(user_model_inputs, overrides, expected, capfd, monkeypatch)
    assert "local_nets" not in sys.modules


def _binary_logit_net():
    import torch

    torch.manual_seed(0)
    return torch.nn.Linear(4, 1)  # one logit z for a binary classifier (BCEWithLogitsLoss)


USER_MODEL_API_CASES = [
    (lambda: xaibench.explain(_binary_logit_net(), _x(), method="integrated_gradients"),
     "model: forward must return class scores (N, K >= 2), got (6, 1) for 6 samples; a single binary logit z is the "
     "two-class logits [0, z]: return torch.cat([torch.zeros_like(z), z], dim=1)"),
    (lambda: xaibench.evaluate(_binary_logit_net(), _x(), [0, 1] * 3, _x(), metrics=["sparseness"]),
     "got (6, 1) for 6 samples; a single binary logit z"),
    (lambda: xaibench.explain(_forest_on_frame(), pd.DataFrame(_x(), columns=list("abce")), method="feature_ablation"),
     "the scikit-learn model was fitted on columns [a, b, c, d], x's columns are [a, b, c, e]: its column(s) 'd' "
     "are missing; pass x[model.feature_names_in_]"),
    (lambda: xaibench.explain(_byo_net(), _x()[0], method="saliency", modality="tabular"),
     "x must be a batch (N, ...), got shape (4,): pass x[None] for one sample, x[:, None] for samples of a single "
     "feature"),
    (lambda: xaibench.explain(_byo_net(), ["the film was good", "awful"], method="saliency"),
     "x must hold numbers, got dtype <U17; text: pass token ids (N, L) from your tokenizer, e.g. "
     "tokenizer(texts, padding='max_length', max_length=L)['input_ids']"),
    (lambda: xaibench.explain(_byo_net(), _x().reshape(6, 1, 4), method="saliency"),  # a series' channel axis
     "got (6, 1, 3) for 6 samples; its inputs are (1, 4) per sample (series and images have a channel axis)"),
    (lambda: xaibench.explain(_svc(), _x(), method="feature_ablation"),
     "model must be a torch.nn.Module or a fitted scikit-learn classifier with predict_proba, got SVC; it has only "
     "decision_function: fit SVC with probability=True, or wrap it in sklearn.calibration.CalibratedClassifierCV"),
    (lambda: xaibench.evaluate(_byo_net(), _x(), [0] * 6, _x(), metrics=["pointing_game"], masks=np.abs(_x())),
     "masks hold values other than 0 and 1"),
    (lambda: xaibench.explain(_byo_net(), _x(), method="saliency", device="gpu"),
     "unknown device 'gpu'; valid: auto, cpu, cuda, cuda:N"),
    (lambda: xaibench.explain(_TupleNet(), _x(), method="saliency"),
     "model: forward must return class scores (N, K >= 2), got tuple for 6 samples; wrap the model so that forward "
     "returns the scores tensor itself (e.g. model(x)[0] or model(x)['logits'])"),
]


def _TupleNet():
    import torch

    class TupleNet(torch.nn.Module):  # (logits, features), as many research models return
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x), x

    return TupleNet()


def _forest_on_frame():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(pd.DataFrame(_x(), columns=list("abcd")), [0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize("call, expected", USER_MODEL_API_CASES)
def test_api_refuses_user_model_mistakes(call, expected):
    with pytest.raises(UserError) as error:
        call()
    assert expected in str(error.value) and "\n" not in str(error.value)


def _svc():
    from sklearn.svm import SVC

    return SVC().fit(_x(), [0, 1, 2, 0, 1, 2])  # no predict_proba without probability=True


# Overrides Hydra refuses, in words that lead to the fix (cluster6): Hydra said "Could not override 'n_sample'. To
# append to your config use +n_sample=3" (the fix is n_samples; +n_sample is refused next) and "Error merging
# override hydra.launcher.n_jobs=abc" (no reason).
OVERRIDE_CASES = [
    (["n_sample=3"], "unknown config key 'n_sample'; did you mean 'n_samples'?"),
    (["method=integrated_gradients", "method.n_step=5"], "unknown config key 'method.n_step'; did you mean "
                                                         "'method.n_steps'?"),
    (["method.n_steps=5"], "unknown config key 'method.n_steps'; method has: abs, name"),
    (["-m", "seed=0,1", "model.epoch=3"], "unknown config key 'model.epoch'; did you mean 'model.epochs'?"),
    (["-m", "hydra/launcher=joblib", "hydra.launcher.n_job=2"],
     "unknown config key 'hydra.launcher.n_job'; did you mean 'hydra.launcher.n_jobs'?"),
    (["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=abc"],
     "hydra.launcher.n_jobs=abc: Value 'abc' of type 'str' could not be converted to Integer"),
    (["-m", "hydra/launcher=submitit_local_chunked", "hydra.launcher.cells_per_task=two"],
     "hydra.launcher.cells_per_task=two: Value 'two' of type 'str' could not be converted to Integer"),
    (["-m", "hydra/launcher=slurm", "device=auto"], "the Slurm launcher needs Slurm, but sbatch is not on PATH on "
                                                    "this machine; run from a Slurm login node, or try the sweep here "
                                                    "with hydra/launcher=submitit_local_chunked"),
    (["-m", "hydra.launcher.n_jobs=2"], "unknown config key 'hydra.launcher.n_jobs': the basic launcher takes no "
                                        "settings; choose one that does first, e.g. hydra/launcher=joblib"),
    # rel19: with a '+' Hydra adds any key to its own sections and ignores it: the run went on without the setting
    (["+hydra.bogus=1"], "unknown config key 'hydra.bogus', which Hydra would ignore; hydra has: callbacks, env, "
                         "help, hydra_help, hydra_logging, job, job_logging, launcher, mode, output_subdir"),
    (["+hydra.jbo.chdir=true"], "unknown config key 'hydra.jbo.chdir', which Hydra would ignore; did you mean "
                                "'hydra.job.chdir'?"),
    (["++hydra.job.nmae=x"], "unknown config key 'hydra.job.nmae', which Hydra would ignore; did you mean "
                             "'hydra.job.name'?"),
    (["-m", "hydra/launcher=joblib", "+hydra.launcher.n_job=2"],
     "unknown config key 'hydra.launcher.n_job', which Hydra would ignore; did you mean 'hydra.launcher.n_jobs'?"),
    (["-m", "+hydra.launcher.n_jobs=2"], "unknown config key 'hydra.launcher.n_jobs': the basic launcher takes no "
                                         "settings; choose one that does first, e.g. hydra/launcher=joblib"),
    # rel19: keys into hydra.sweeper.params (null until set) failed in OmegaConf's merge with a traceback, exit 1
    (["-m", "+hydra.sweeper.params.seed='0,1'"],
     "hydra.sweeper.params.seed: hydra.sweeper.params is null, and Hydra cannot set keys inside a null section from "
     "the command line; sweep with the overrides themselves (-m seed=0,1)"),
    (["-m", "hydra.sweeper.params={seed:'0,1'}"], "hydra.sweeper.params is null, and Hydra cannot set keys inside"),
    # rel21: an interpolation to a missing key said "invalid config: Interpolation key 'nope' not found", no key named
    (["seed=${nope}"], "invalid config: seed: Interpolation key 'nope' not found; an interpolation names a key of the "
                       "config (${seed}, ${model.name}) or an environment variable (${oc.env:NAME,default})"),
    (["+method.params.x=${nope}"], "invalid config: method.params.x: Interpolation key 'nope' not found"),
    # rel21: what the user cannot see: "LexerNoViableAltException: seed=１ ^" (pointing at nothing), or "mismatched
    # input '<EOF>' expecting {EQUAL, ...}" for an empty argument
    (["seed=\uff11"], "override 'seed=\uff11': character 6 is FULLWIDTH DIGIT ONE (U+FF11), which Hydra's override "
                      "grammar does not take there; retype it (pasted from a web page or PDF?), or quote the value"),
    (["model=mlp\u00a0"], "override 'model=mlp\\xa0': character 10 is NO-BREAK SPACE (U+00A0)"),
    (["mod\u00e8l=mlp"], "character 4 is LATIN SMALL LETTER E WITH GRAVE (U+00E8), which Hydra's override grammar "
                        "does not take there; config keys are ASCII names: retype the key"),
    ([""], "an empty override '' (a quoted shell variable that is unset?); drop it"),
]


@pytest.mark.parametrize("overrides, expected", OVERRIDE_CASES)
def test_cli_refused_overrides_say_what_to_write(indir, capfd, overrides, expected):
    flags = overrides[:1] if overrides[0] == "-m" else []
    assert_cli_refuses([*flags, *BASE, *overrides[len(flags):]], expected, capfd)


# rel21: values of Hydra's own settings that Hydra accepts and then runs badly. Before: a KeyError traceback
# (env_copy), Hydra's "MissingMandatoryValue ... hydra.job.num" (+hydra.sweep.subdir), exit 1 after the sweep folder
# was claimed (a file as hydra.sweep.dir, max_batch_size=-3, a 300-byte results_dir or sweep_id: a traceback), jobs
# sharing one folder (subdir=a), Hydra's folders in the working folder (dir=), no table (the callback removed), the
# default cell run instead of a rerun (--experimental-rerun), a Hydra log line before ours (hydra.launcher=null).
HYDRA_SETTING_CASES = [
    (["-m", *BASE, "seed=0,1", f"+hydra.job.env_copy=[{UNSET}]"],
     f"hydra.job.env_copy names the environment variable '{UNSET}', which is not set here; set it (export "
     f"{UNSET}=...) or give its value with +hydra.job.env_set.{UNSET}=<value>"),
    (["--cfg", "job", *BASE, f"hydra.job.env_copy=[{UNSET}]"],
     f"hydra.job.env_copy names the environment variable '{UNSET}'"),
    (["-m", *BASE, "seed=0,1", "+hydra.sweep.subdir=a"],
     "+hydra.sweep.subdir=a: hydra.sweep.subdir is already set, and a '+' adds only keys the config lacks; change it "
     "without the '+': hydra.sweep.subdir=a"),
    (["-m", *BASE, "seed=0,1", "hydra/launcher=joblib", "hydra.sweep.subdir=a"],
     "hydra.sweep.subdir='a' is one folder for all 2 jobs of the sweep, whose configs and logs would overwrite each "
     "other; include the job's number, as the default 'hydra.sweep.subdir=jobs/${hydra.job.num}'"),
    (["-m", *BASE, "seed=0,1", "hydra.sweep.subdir="], "hydra.sweep.subdir='' is one folder for all 2 jobs"),
    (["-m", *BASE, "seed=0,1", "hydra/launcher=joblib", "hydra.sweep.dir=afile"],
     "hydra.sweep.dir afile is not a writable folder: afile is a file, not a folder; choose another hydra.sweep.dir="),
    (["-m", *BASE, "seed=0,1", "hydra.sweep.dir="],
     "hydra.sweep.dir is empty (an unset shell variable?): Hydra would write its job configs into the working folder"),
    ([*BASE, "hydra.run.dir=afile/x"], "hydra.run.dir afile/x is not a writable folder: afile is a file, not a folder"),
    ([*BASE, "hydra.run.dir="], "hydra.run.dir is empty (an unset shell variable?)"),
    (["-m", *BASE, "seed=0,1", "hydra.sweeper.max_batch_size=-3"],
     "hydra.sweeper.max_batch_size must be a positive integer (jobs launched at once) or null (all), got -3"),
    (["-m", *BASE, "seed=0,1", "hydra.sweeper.max_batch_size=0"],
     "hydra.sweeper.max_batch_size must be a positive integer"),
    ([*BASE, "hydra.mode=MULTIRUN"],
     "hydra.mode=MULTIRUN but no -m was given; the sweep or single run is chosen by -m/--multirun"),
    (["-m", *BASE, "seed=0,1", "hydra.mode=RUN"], "hydra.mode=RUN but -m was given"),
    (["-m", *BASE, "seed=0,1", "~hydra.callbacks.xaibench_sweep"],
     "hydra.callbacks.xaibench_sweep must stay {_target_: xaibench.sweep.SweepCallback} (it writes the sweep's table "
     "when its jobs end)"),
    (["-m", *BASE, "seed=0,1", "hydra.launcher=null"],
     "no launcher is chosen (hydra.launcher has no _target_: hydra.launcher=null or ~hydra/launcher?); choose one with "
     "hydra/launcher=<name>: basic, joblib"),
    (["-m", *BASE, "seed=0,1", "~hydra/launcher"], "no launcher is chosen"),
    (["-m", *BASE, "seed=0,1", "~hydra/sweeper"], "no sweeper is chosen (hydra.sweeper has no _target_"),
    (["-m", *BASE, "seed=0,1", "hydra.sweeper=null"], "no sweeper is chosen"),
    ([*BASE, "sweep_id=" + "s" * 300], "sweep_id has a folder name of 300 bytes ('ssssssssssssssssssss...ssssssssss'), "
                                       "longer than the 255 this filesystem takes; choose a shorter sweep_id"),
    ([*BASE, "results_dir=" + "r" * 300], "results_dir has a folder name of 300 bytes"),
    ([*BASE, "store_dir=x/" + "s" * 300], "store_dir has a folder name of 300 bytes"),
    (["--experimental-rerun", "job.pickle"], "--experimental-rerun is not supported: rerun the sweep's own command"),
    (["--package", "model", *BASE], "--package model narrows what --cfg shows; add --cfg job (or drop --package)"),
    (["--config-name", "nope", *BASE], "--config-name nope: no nope.yaml in xaibench's configs"),
]


@pytest.mark.parametrize("argv, expected", HYDRA_SETTING_CASES)
def test_cli_refuses_hydra_settings_that_hydra_would_run_badly(indir, capfd, monkeypatch, argv, expected):
    """One line, exit 2, nothing written in the working folder (no results/, outputs/, multirun/, .hydra)."""
    monkeypatch.delenv(UNSET, raising=False)
    assert_cli_refuses(argv, expected, capfd)


def test_env_copy_of_a_variable_unset_since_the_last_run_is_refused(tmp_path, monkeypatch, capfd):
    """rel21: the rerun of a sweep that passed with the variable set loaded its cached plan (no composition, so no
    check) and Hydra's own composition ended in ``KeyError`` (a traceback, exit 1), in a new shell without it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XAIBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("XAIBENCH_NO_PLAN_CACHE", raising=False)
    monkeypatch.setenv(UNSET, "1")
    argv = [*BASE, f"+hydra.job.env_copy=[{UNSET}]"]
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0, capfd.readouterr().err
    monkeypatch.delenv(UNSET)
    before = snapshot(tmp_path)
    assert_cli_refuses(argv, f"hydra.job.env_copy names the environment variable '{UNSET}', which is not set", capfd)
    assert snapshot(tmp_path) == before


def test_hydra_settings_given_on_the_command_line_are_applied(tmp_path, monkeypatch, capfd):
    """rel21: a single run (or a basic-launcher sweep) ran in this process and dropped every ``hydra.*`` setting
    without a word: ``hydra.job.env_set`` (the store went to results/store), ``hydra.run.dir`` (no .hydra there).
    They now run through Hydra, which applies them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XAIBENCH_STORE", "results/store")  # restored after: Hydra's env_set changes it for the job
    with pytest.raises(SystemExit) as done:
        main([*BASE, "+hydra.job.env_set.XAIBENCH_STORE=env_store", "hydra.run.dir=hydra_out"])
    assert done.value.code == 0, capfd.readouterr().err
    assert list((tmp_path / "env_store" / "v2" / "cells").rglob("*.artefact"))  # the cell stored where env_set said
    assert not (tmp_path / "results" / "store").exists()
    assert (tmp_path / "hydra_out" / ".hydra" / "config.yaml").is_file()
    assert len(pd.read_parquet(tmp_path / "results" / "runs" / "default" / "table.parquet")) == 12  # 3 metrics x 4


@pytest.mark.parametrize("setting", ["+hydra.job.env_set.XAIBENCH_STORE=env_store", "hydra.run.dir=hydra_out",
                                     "hydra/launcher=joblib"])
def test_api_refuses_hydra_settings_it_would_drop(tmp_path, monkeypatch, capfd, setting):
    """``xaibench.run`` runs in this process and dropped Hydra's own settings without a word (the cell went to
    results/store, not where ``env_set`` said), where the command line now hands them to Hydra: refused, one line,
    nothing written in the working folder. ``hydra.searchpath`` (read by composition) still runs."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as error:
        xaibench.run([*BASE, setting])
    assert f"does not apply Hydra's own settings ({setting})" in str(error.value) and "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []
    assert "Traceback" not in capfd.readouterr().err
    (tmp_path / "conf").mkdir()
    table = xaibench.run([*BASE, f"hydra.searchpath=[file://{tmp_path / 'conf'}]"])
    assert len(table) == 12  # 3 metrics x 4 samples


# Semicolon CSVs (byo7): a European spreadsheet's `age;minutes;bought` file with decimal commas was read with `,` as
# one column, and with `sep=';'` alone its `41,3` numbers became one-hot text categories without a word.
SEP_CASES = [
    (["dataset.path=semi.csv"], "semi.csv reads as one column 'age;minutes;bought' with sep=',', but its header "
                                "holds ';': set \"dataset.sep=';'\" (and \"dataset.decimal=','\" if its numbers"),
    (["dataset.path=semi.csv", "dataset.sep=';'"], "column(s) age, minutes of semi.csv hold numbers written with a "
                                                    "decimal comma (e.g. '41,3'), which would be read as text "
                                                    "categories: set \"dataset.decimal=','\""),
    (["dataset.path=tabs.csv"], "tabs.csv reads as one column 'age\\tminutes\\tbought' with sep=',', but its header "
                                "holds '\\t': set \"dataset.sep='\\t'\""),
    (["dataset.path=semi.csv", "dataset.sep=';'", "dataset.decimal=';'"], "sep and decimal must be two different "
                                                                          "single characters"),
]


@pytest.fixture
def sep_dir(tmp_path, monkeypatch):
    frame = pd.DataFrame({"age": [41.3, 38.7, 46.4, 41.0] * 5, "minutes": [9.99, 2.49, 0.57, 3.86] * 5,
                          "bought": ["yes", "no"] * 10})
    frame.to_csv(tmp_path / "semi.csv", sep=";", decimal=",", index=False)
    frame.to_csv(tmp_path / "tabs.csv", sep="\t", index=False)
    yield from unchanged_folder(tmp_path, monkeypatch)


@pytest.mark.parametrize("overrides, expected", SEP_CASES)
def test_cli_refuses_a_csv_read_with_the_wrong_separator_or_decimal_mark(sep_dir, capfd, overrides, expected):
    assert_cli_refuses(["model=logreg", "dataset=csv_table", "dataset.target=bought", "method=saliency",
                        "n_samples=2", "metrics=sparsity", *overrides], expected, capfd)


def test_cli_refuses_a_cuda_index_beyond_the_devices_this_machine_shows(tmp_path, monkeypatch, capfd):
    """``device=cuda:2`` on a two-GPU box failed inside the first cell (torch's "invalid device ordinal"), after
    the sweep folder was made; now the pre-flight names the devices (torch.cuda patched: a 2-GPU machine)."""
    import torch

    from xaibench.engine.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XAIBENCH_STORE", str(tmp_path / "store"))
    assert resolve_device("cuda:1") == "cuda:1" and resolve_device("cuda") == "cuda"
    assert_cli_refuses(["model=mlp", "dataset=iris", "method=saliency", "n_samples=2", "metrics=sparsity",
                        "device=cuda:2"], "device=cuda:2 but this machine shows 2 CUDA devices, cuda:0 to cuda:1 "
                                          "(CUDA_VISIBLE_DEVICES=4,5 renumbers them from 0); choose one of those",
                       capfd)
    assert list(tmp_path.iterdir()) == []


# A new user's first mistakes, from following the README (newuser8's review): each was a traceback-free but
# unhelpful line (Hydra's "missing EQUAL at '<EOF>'", "target column None not in the file", a list of 33 methods
# without the close one) or, for collect -o table.xlsx, a Parquet file written under an Excel name with exit 0.
NEW_USER_CASES = [
    (["collect", "--store", "store", "-o", "table.xlsx"],
     "collect -o table.xlsx: unknown extension '.xlsx'; use .parquet or .csv"),
    (["collect", "--store", "store", "-o", "table"], "collect -o table: unknown extension '(none)'"),
    (["frobnicate"], "unknown verb 'frobnicate'; verbs: collect, compare, summary, store, report; a run takes "
                     "overrides such as model=mlp (xaibench --help)"),
    (["reprot", "results/runs/quickstart"], "unknown verb 'reprot'; did you mean 'report'? verbs: "),
    ([*BASE[:2], "method=salency", *BASE[3:]], "unknown method 'salency'; did you mean 'saliency'? valid: "),
    (["-m", "model=mlp,cnnn", *BASE[1:]], "unknown model 'cnnn'; did you mean 'cnn'? valid: "),
    ([*BASE[:1], "dataset=csv_table", "dataset.path=regression.csv", *BASE[2:]],
     "dataset csv_table: no target given; set dataset.target=<label column>; columns: a, b, price"),
]


@pytest.mark.parametrize("argv, expected", NEW_USER_CASES)
def test_cli_refuses_a_new_users_first_mistakes_naming_the_fix(indir, capfd, argv, expected):
    assert_cli_refuses(argv, expected, capfd)


def test_api_names_the_close_method_and_a_missing_target(inputs):
    """The Python API's registries and the table dataset say the same as the CLI's pre-flight."""
    from xaibench.data.user.table import CsvTable

    with pytest.raises(UserError, match=r"unknown metric 'sparsenes'; did you mean 'sparseness'\? valid: "):
        xaibench.evaluate(_byo_net(), _x(), np.zeros(6, dtype=int), np.ones((6, 4), dtype=np.float32),
                          metrics=["sparsenes"])
    with pytest.raises(UserError, match=r"no target given; set dataset.target=<label column>; columns: a, b, price"):
        CsvTable(path=str(inputs / "regression.csv")).build(0)


def test_cli_refuses_cfg_with_multirun_in_one_line(tmp_path, monkeypatch, capfd):
    """``xaibench -m ... hydra/launcher=slurm --cfg hydra`` (checking a Slurm sweep's launcher settings) was Hydra's
    traceback, "Only one of --run, --multirun, --cfg, --info and --shell_completion can be specified"."""
    monkeypatch.chdir(tmp_path)
    assert_cli_refuses(["-m", "model=mlp", "dataset=iris", "method=saliency,random", "hydra/launcher=slurm_cpu",
                        "--cfg", "hydra"], "--cfg shows one job's config and -m launches a sweep: drop -m", capfd)
    assert list(tmp_path.iterdir()) == []



@pytest.fixture
def thousands_dir(tmp_path, monkeypatch):
    frame = pd.DataFrame({"price": ["1 234,5", "12 345,25", "7,5", "980,0"] * 5, "bought": ["yes", "no"] * 10})
    frame.to_csv(tmp_path / "fr.csv", sep=";", index=False)
    frame.assign(price=["1,234.5", "12,345.25", "7.5", "980.0"] * 5).to_csv(tmp_path / "us.csv", index=False)
    yield from unchanged_folder(tmp_path, monkeypatch)


def test_cli_refuses_thousands_separated_numbers_naming_dataset_thousands_and_reads_them_with_it(thousands_dir,
                                                                                                   capfd):
    """byo8: `1,234.5` in a comma file (quoted) and `1 234,5` in a French export were one-hot encoded as text; the
    refusal names the option in the spelling Hydra takes (`' '` for a space), and that spelling reads them."""
    from xaibench.config.preflight import compose_job
    from xaibench.registry import DATASETS

    base = ["model=logreg", "dataset=csv_table", "dataset.target=bought", "method=saliency", "n_samples=2",
            "metrics=sparsity"]
    assert_cli_refuses([*base, "dataset.path=us.csv"], "column(s) price of us.csv hold numbers written with a decimal "
                       "point and commas between thousands (e.g. '1,234.5'), which would be read as text categories: "
                       "set \"dataset.thousands=','\"", capfd)
    french = [*base, "dataset.path=fr.csv", "dataset.sep=';'", "dataset.decimal=','"]
    assert_cli_refuses(french, "set \"dataset.thousands=' '\"", capfd)
    dataset = compose_job([*french, "dataset.thousands=' '"]).dataset
    assert (dataset.sep, dataset.decimal, dataset.thousands) == (";", ",", " ")
    options = {key: dataset[key] for key in ("path", "target", "sep", "decimal", "thousands")}
    data = DATASETS.create("csv_table", {**options, "standardize": False}).build(0)
    assert data.feature_names == ("price",)
    assert set(data.train.x[:, 0].tolist()) == {1234.5, 12345.25, 7.5, 980.0}


def test_cli_preflight_takes_the_thousands_fix_it_names_and_checks_only_the_columns_read_as_numbers(tmp_path,
                                                                                                      monkeypatch):
    """review9: the pre-flight read the file without ``dataset.thousands`` and checked every column, so
    `"dataset.thousands=','"`, the fix its own refusal names, was refused again with the same line, and so was a run
    whose ``dataset.features`` leave the thousands column out; the dataset's ``build`` read both."""
    from xaibench.config.preflight import validate

    base = ["model=logreg", "dataset=csv_table", "dataset.target=bought", "method=saliency", "n_samples=2",
            "metrics=sparsity", "dataset.path=us.csv"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XAIBENCH_STORE", str(tmp_path / "store"))
    pd.DataFrame({"price": ["1,234.5", "12,345.25", "7.5", "980.0"] * 5, "size": [1.0, 2.0] * 10,
                  "bought": ["yes", "no"] * 10}).to_csv("us.csv", index=False)
    (config,) = validate([*base, "dataset.thousands=','"], multirun=False)
    assert config.dataset.thousands == ","
    validate([*base, "dataset.features=[size]"], multirun=False)
    with pytest.raises(UserError, match=r"column\(s\) price of us.csv hold numbers written with a decimal point"):
        validate([*base, "dataset.features=[price,size]"], multirun=False)


# reliab10: argparse's usage errors printed its usage block (3-8 lines) before the error, for every verb and for
# Hydra's own flags; an empty sweep launched nothing and exited 0 silently; a glob sweep was Hydra's traceback.
USAGE_CASES = [
    (["report", "table.csv", "--alpha", "abc"], "report: argument --alpha: invalid float value: 'abc' (see "
                                                "xaibench report --help)"),
    (["report"], "report: the following arguments are required: table"),
    # newuser12: a misspelt layout or format was the only misspelt name without the close one
    (["report", "table.csv", "--layout", "metric,datasets"], "--layout: unknown metric; did you mean 'metrics'? choose "
                                                             "from metrics, datasets, families"),
    (["report", "table.csv", "--format", "mdd"], "--format: unknown mdd; did you mean 'md'? choose from md, latex"),
    (["summary", "table.csv", "--bogus"], "summary: unrecognized arguments: --bogus"),
    (["compare", "table.csv"], "compare: the following arguments are required: current"),
    (["compare", "table.csv", "table.csv", "--report-limit", "many"], "argument --report-limit: invalid int value"),
    (["collect", "sweep_bad", "--store", "store"], "collect: argument --store: not allowed with argument sweep_dir"),
    (["store", "vrfy", "store"], "store: argument action: invalid choice: 'vrfy' (choose from 'verify', 'gc')"),
    (["store", "gc", "store", "--min-age", "1h"], "store: argument --min-age: invalid float value: '1h'"),
    (["--cfg", "nope", *BASE], "argument --cfg/-c: invalid choice: 'nope' (choose from 'job', 'hydra', 'all')"),
    (["--info", "nope"], "argument --info/-i: invalid choice: 'nope'"),
    (["-m", *BASE, "seed=range(0,0)"], "the sweep has no jobs: seed=range(0,0) gives no value"),
    (["-m", *BASE, "method=glob(nothing*)", "seed=0,1"], "the sweep has no jobs: method=glob(nothing*) gives no value"),
    (["-m", *BASE, "seed=range(0,3,0)"], "seed=range(0,3,0): range() arg 3 must not be zero"),  # rel21: a traceback
    # rel14: a misspelt flag got no did-you-mean (verbs did), and a verb named a missing argument instead of it
    (["--verison"], "unrecognised option(s) --verison; did you mean --version? See xaibench --help"),
    (["-m", *BASE, "--multirn"], "unrecognised option(s) --multirn; did you mean --multirun?"),
    (["report", "--help-me"], "report: unrecognized arguments: --help-me; did you mean --help? (see xaibench report "
                              "--help)"),
    (["summary", "table.csv", "--alpah", "0.1"], "summary: unrecognized arguments: --alpah; did you mean --alpha?"),
    (["store", "gc", "store", "--dry-rn"], "store: unrecognized arguments: --dry-rn; did you mean --dry-run?"),
]


@pytest.mark.parametrize("argv, expected", USAGE_CASES)
def test_cli_usage_errors_and_empty_sweeps_are_one_line(indir, capfd, argv, expected):
    assert_cli_refuses(argv, expected, capfd)


def test_a_glob_sweep_over_a_group_expands_to_its_options_as_hydra_does():
    """``method=glob(*_gradients)`` (Hydra's documented glob sweep) crashed the pre-flight with "ConfigLoader is not
    set" (a traceback through the CLI); it now lists the group's options with Hydra's own config loader."""
    from xaibench.config.preflight import expand_sweep

    jobs = expand_sweep(["model=mlp", "method=glob(*_gradients,exclude=expected*)", "seed=0,1"], multirun=True)
    assert [job[1:] for job in jobs] == [["method=integrated_gradients", "seed=0"],
                                         ["method=integrated_gradients", "seed=1"]]


# reliab10: values that passed the pre-flight and then trained a constant model scored `ok` (a 0-wide layer), failed
# every cell at training time (`channels=[0,4]`: error rows, exit 1), named scikit-learn's `random_state` instead of
# `seed`, or named an impossible fix (`use n_samples<=0` for a file without rows).
VALUE_CASES = [
    ([*BASE, "model.hidden=[0]"], "model.hidden must be a list of integers >= 1 (layer widths), got [0]"),
    (["model=cnn", "dataset=digits", "method=saliency", "n_samples=2", "model.channels=[0,4]"],
     "model.channels must be a list of integers >= 1 (layer widths), got [0, 4]"),
    ([*BASE, "seed=-1"], "seed must be an integer in [0, 4294967295], got -1"),
    (["-m", *BASE, "seed=0,4294967296"], "seed must be an integer in [0, 4294967295], got 4294967296"),
    (["model=mlp", "dataset=csv_table", "dataset.path=header_only.csv", "dataset.target=y", "method=saliency",
      "n_samples=2"], "dataset csv_table: header_only.csv gives no test samples (no data rows, or too few for "
                      "dataset.test_size to take one)"),
]


@pytest.fixture
def header_only_dir(tmp_path, monkeypatch):
    (tmp_path / "header_only.csv").write_text("a,b,y\n")
    yield from unchanged_folder(tmp_path, monkeypatch)


@pytest.mark.parametrize("argv, expected", VALUE_CASES)
def test_cli_refuses_layer_widths_seeds_and_files_that_cannot_make_a_cell(header_only_dir, capfd, argv, expected):
    assert_cli_refuses(argv, expected, capfd)


@pytest.mark.parametrize("action", ["verify", "gc"])
def test_store_verbs_refuse_a_folder_that_holds_no_store(indir, capfd, action):
    """reliab10: `xaibench store verify results` (a mistyped store) printed "checked no artefacts; 0 damaged" and
    exited 0, and `gc` on it "removed nothing": a check that checked nothing passed."""
    assert_cli_refuses(["store", action, "emptydir"], "emptydir holds no xaibench store (no v2/ folder); give the "
                       "store_dir your sweeps used", capfd)


from xaibench.results.collect import collect_store, collect_sweep  # noqa: E402

# split21: a file where a folder should be (the folder itself, or one above it) was said not to exist ("store
# directory afile does not exist"), its sweep.json damaged ("Not a directory"), or the place to make the first
# baseline; each line now names the file.
FILE_AS_FOLDER = [
    (["collect", "--store", "afile"], "store directory afile is a file, not a store folder; give the store_dir your "
                                      "sweeps used (default results/store)"),
    (["collect", "--store", "afile/store"], "store directory afile/store does not exist: afile is a file, not a "
                                            "folder"),
    (["collect", "afile/sweep"], "sweep afile/sweep does not exist: afile is a file, not a folder"),
    (["store", "verify", "afile/store"], "store directory afile/store does not exist: afile is a file, not a folder"),
    (["summary", "afile/table.parquet"], "results table afile/table.parquet not found: afile is a file, not a folder"),
    (["report", "afile/sweep", "--no-figures"], "results table afile/sweep not found: afile is a file, not a folder"),
    (["compare", "summary.csv", "afile/sweep"], "current table afile/sweep not found: afile is a file, not a folder"),
]


@pytest.mark.parametrize("argv, expected", FILE_AS_FOLDER)
def test_a_file_where_a_folder_should_be_is_named(indir, capfd, argv, expected):
    assert_cli_refuses(argv, expected, capfd)


@pytest.mark.parametrize("call, expected", [
    (lambda: collect_store("afile"), "store directory afile is a file, not a store folder"),
    (lambda: collect_sweep("afile"), "sweep afile is a file, not a sweep folder"),
    (lambda: collect_sweep("afile/sweep"), "sweep afile/sweep does not exist: afile is a file, not a folder"),
    (lambda: xaibench.load("afile/sweep"), "results table afile/sweep not found: afile is a file, not a folder"),
    (lambda: xaibench.explanations("summary.csv", store="afile"), "store afile is a file, not a store folder; pass "
                                                                  "the store_dir the sweep used"),
])
def test_the_api_names_a_file_given_as_a_folder(indir, call, expected):
    """split21: ``collect_sweep(<a file>)`` said the file's sweep.json was damaged (Not a directory) and
    ``explanations(store=<a file>)`` that the explanations were not in that store."""
    with pytest.raises(UserError) as error:
        call()
    assert expected in str(error.value) and "\n" not in str(error.value)


@pytest.fixture
def report_dir(tmp_path, monkeypatch):
    from tests.unit.report_fixtures import quickstart_like_table

    quickstart_like_table().to_parquet(tmp_path / "table.parquet")
    (tmp_path / "afile").write_text("a file where a folder should be")
    yield from unchanged_folder(tmp_path, monkeypatch)


def test_report_refuses_an_unwritable_out_before_analysing(report_dir, capfd):
    """reliab10: `report ... --out <unwritable>` analysed the table and drew figures first, printing their notes,
    then failed on the first file: several lines, the work thrown away."""
    assert_cli_refuses(["report", "table.parquet", "--out", "afile/report"], "--out afile/report is not a writable "
                       "folder: afile is a file, not a folder; choose another --out", capfd)


def test_compare_names_the_file_in_a_baseline_path_instead_of_offering_to_make_the_baseline_there(report_dir, capfd):
    """split21: it said "baseline table afile/table.parquet not found; make the first baseline with xaibench compare
    afile/table.parquet CURRENT --update-baseline", a path under a file where no baseline can be written."""
    current = Path(__file__).resolve().parents[2] / "results" / "baselines" / "ci" / "table.parquet"  # readable
    assert_cli_refuses(["compare", "afile/table.parquet", str(current)], "baseline table afile/table.parquet not "
                       "found: afile is a file, not a folder", capfd)


@pytest.mark.parametrize("store", ["afile", "afile/store"])
def test_report_refuses_a_file_as_its_store(report_dir, capfd, store):
    """split21: ``report --store <a file>`` wrote the report with a note per gallery that its explanations "are not
    in the store afile", as if the store were merely missing them."""
    expected = ("is a file, not a store folder" if store == "afile" else "does not exist: afile is a file, not a "
                "folder")
    assert_cli_refuses(["report", "table.parquet", "--store", store, "--no-figures"],
                       f"--store {store} {expected}; give the store_dir the sweep ran with", capfd)


def test_report_refuses_a_store_named_on_the_command_line_that_does_not_exist(report_dir, capfd):
    """Lead (split21 saw it): ``report --store nostore`` (a typo) drew the whole report, each gallery noting that
    its explanations were not in the store nostore."""
    assert_cli_refuses(["report", "table.parquet", "--store", "nostore", "--no-figures"],
                       "--store nostore does not exist; give the store_dir the sweep ran with, or leave --store out",
                       capfd)


@pytest.mark.parametrize(("value", "expected"), [("big", "got 'big'"), ("0", "got 0")])
def test_cli_refuses_a_chunk_size_that_is_neither_rows_nor_auto(indir, capfd, value, expected):
    """fast10: ``chunk_size`` is ``auto`` (the default) or a positive number of rows; one line, exit 2."""
    assert_cli_refuses([*BASE, f"chunk_size={value}"],
                       f"chunk_size must be a positive integer (rows) or 'auto', {expected}", capfd)


def test_report_files_lists_every_file_a_report_writes(tmp_path):
    """``commands/report.py`` refuses an --out where the report's own files would replace the table it reads; its
    list of those files must be what ``write_report`` writes (the appendix included)."""
    from tests.unit.report_fixtures import quickstart_like_table
    from xaibench.commands.report import REPORT_FILES
    from xaibench.report.build import FORMATS, analyse, write_report

    from xaibench.report.html_document import Figure

    # with a figure: figures.tex (paper19) is written only then, and was missing from the list
    figure = Figure(png=b"\x89PNG\r\n\x1a\n", caption="Figure: a caption.", key="ranks")
    written = write_report(analyse(quickstart_like_table()), tmp_path, formats=FORMATS, figures=[figure])
    assert sorted(p.name for p in written) == sorted(REPORT_FILES)


# rel24: Hydra settings that passed and then misbehaved. A `hydra.sweep.subdir` with an interpolation that is the same
# for two jobs (`${sweep_id}`) passed (only a subdir without any interpolation was refused): every job's configs and
# logs went into one folder. `xaibench.run` of a sweep whose experiment chooses a launcher (`defaults: [override
# /hydra/launcher: joblib]`) ran its jobs in process without a word.
@pytest.mark.parametrize("argv, expected", [
    (["-m", *BASE, "seed=0,1", "hydra.sweep.subdir=${sweep_id}"],
     "hydra.sweep.subdir='${sweep_id}' is the same folder ('default') for jobs 0 and 1 of the sweep, whose configs and "
     "logs would overwrite each other; include the job's number, e.g. "
     "'hydra.sweep.subdir=${sweep_id}/${hydra.job.num}' (quoted for the shell), or leave it out"),
    (["-m", *BASE[:2], "method=saliency,random", "seed=0,1", "n_samples=4", "hydra/launcher=joblib",
      "hydra.sweep.subdir=out_${seed}"],
     "hydra.sweep.subdir='out_${seed}' is the same folder ('out_0') for jobs 0 and 2"),
    # rev24b: the folder named as Hydra names it (no hydra.* override in it); a key the config lacks, even for one job
    # (Hydra's InterpolationKeyError traceback after the sweep folder was written)
    (["-m", *BASE, "seed=0,1", "hydra.sweep.subdir=${hydra.job.override_dirname}",
      "hydra.job.config.override_dirname.exclude_keys=[seed]", "hydra.job.config.override_dirname.kv_sep=-"],
     "is the same folder ('dataset-iris,method-saliency,model-mlp,n_samples-4') for jobs 0 and 1"),
    (["-m", *BASE, "seed=0", "hydra.sweep.subdir=${seeds}"],
     "hydra.sweep.subdir='${seeds}' refers to 'seeds', which the job's config does not have; use one of its keys"),
])
def test_cli_refuses_a_sweep_subdir_that_is_one_folder_for_several_jobs(indir, capfd, argv, expected):
    assert_cli_refuses(argv, expected, capfd)


@pytest.mark.parametrize("experiment, chosen", [
    ("defaults:\n  - override /hydra/launcher: joblib\n", "chooses Hydra's JoblibLauncher (hydra.launcher)"),
    ("hydra:\n  job:\n    env_set:\n      XAIBENCH_STORE: env_store\n", "sets hydra.job.env_set"),
    ("hydra:\n  sweep:\n    dir: hydra_out\n", "sets hydra.sweep.dir"),
], ids=["launcher", "env_set", "sweep_dir"])
def test_api_refuses_a_launcher_chosen_in_an_experiment_file(tmp_path, monkeypatch, capfd, experiment, chosen):
    """The command line hands such a sweep to Hydra; ``xaibench.run`` ran it in process, dropping the launcher (or
    the environment, the folder) without a word. Refused in one line naming the command that runs it; nothing
    written."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XAIBENCH_STORE", raising=False)
    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "par.yaml").write_text("# @package _global_\n" + experiment)
    overrides = [*BASE, "seed=0,1", f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "experiment=par"]
    with pytest.raises(UserError) as error:
        xaibench.run(overrides, multirun=True)
    message = str(error.value)
    assert message.startswith(f"the sweep's config {chosen}, which xaibench.run does not apply") and "\n" not in message
    assert "run the sweep on the command line, which hands it to Hydra: xaibench -m model=mlp" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf"]
    assert "Traceback" not in capfd.readouterr().err


def test_review24_weights_that_are_no_torch_file_and_outputs_that_are_no_probabilities_say_so(byo_dir, capfd):
    """review24, as a new user: ``model.state_dict=shop.csv`` (the table given as the weights) said "is not a
    weights-only state_dict (IndexError: pop from empty list)", torch's internals; it now says the file is text,
    not what torch.save writes. ``model.outputs=probabilities`` on a logits net said "row sums up to 1.64 from 1",
    read as sums of 1.64; it now says how far the sums are off 1. Each one line, exit 2, nothing written."""
    net = ["model=torch_module", "model.target=byo_nets.Net"]
    assert_cli_refuses([*BYO, *net, "model.state_dict=shop.csv"],
                       "model torch_module: shop.csv is not a file torch.save wrote (it is a text file; torch.save "
                       "writes a zip archive); give the weights file, saved with torch.save(model.state_dict(), path)",
                       capfd)
    assert_cli_refuses([*BYO, *net, "model.state_dict=net.pt", "model.outputs=probabilities"],
                       "model.outputs=probabilities, but forward's rows are not probabilities (values in [", capfd)
    capfd.readouterr()
    with pytest.raises(SystemExit):
        main([*BYO, *net, "model.state_dict=net.pt", "model.outputs=probabilities"])
    err = capfd.readouterr().err
    assert "row sums off 1 by up to " in err and "from 1)" not in err
    # --junit verdict.json wrote JUnit XML into a .json file (the CI's JSON step then failed on it): the flag was
    # mixed up with --json; each output flag refuses the suffix of another's format, naming the flag meant
    baseline = Path(__file__).resolve().parents[2] / "results" / "baselines" / "ci"
    for flag, output, meant in (("--junit", "verdict.json", "--json"), ("--json", "verdict.xml", "--junit"),
                                ("--report", "verdict.json", "--json")):
        assert_cli_refuses(["compare", str(baseline), "shop.csv", flag, output],
                           f"{flag} {output}: {flag} writes ", capfd)
        capfd.readouterr()
        with pytest.raises(SystemExit):
            main(["compare", str(baseline), "shop.csv", flag, output])
        assert capfd.readouterr().err.rstrip().endswith(f"; did you mean {meant} {output}?")


def test_a_setting_of_a_swept_group_that_its_default_lacks_says_where_it_was_checked(indir, capfd):
    """review24, as a new user: ``method=saliency,smoothgrad method.abs=false`` (both take ``abs``) was refused as
    "unknown config key 'method.abs'; method has: baseline, internal_batch_size, ..." — integrated gradients' keys,
    a method not in the sweep: Hydra sets what is not swept on the base config, composed with the default method.
    The line says so and gives the ``++`` that sets it in each job, which the pre-flight then expands into the two
    jobs (a real sweep with it: README's example run by hand, 2 cells ok)."""
    argv = ["-m", "model=mlp", "dataset=iris", "method=saliency,smoothgrad", "method.abs=false", "n_samples=4"]
    assert_cli_refuses(argv, "method.abs=false: Hydra sets what is not swept on the sweep's base config, whose method "
                             "is the default 'integrated_gradients', before it sweeps method=saliency,smoothgrad, and "
                             "'integrated_gradients' has no 'abs'; set it in each job's method with ++method.abs=false",
                       capfd)
    from xaibench.config.preflight.composition import expand_sweep

    fixed = [a for a in argv[1:] if a != "method.abs=false"] + ["++method.abs=false"]
    jobs = expand_sweep(fixed, multirun=True)
    assert [[o for o in job if o.startswith(("method", "++method"))] for job in jobs] == [
        ["method=saliency", "++method.abs=False"], ["method=smoothgrad", "++method.abs=False"]]
    # a typo of a key the default has keeps its "did you mean"
    assert_cli_refuses(["-m", "model=mlp", "dataset=iris", "method=saliency,random", "method.n_step=3"],
                       "unknown config key 'method.n_step'; did you mean 'method.n_steps'?", capfd)


@pytest.mark.parametrize("overrides, expected", [
    (["model.hidden=64"], "model 'mlp': parameter 'hidden' must be a list, got 64; for one item write [64]"),
    (["dataset=csv_table", "dataset.path=shop.csv", "dataset.target=bought", "dataset.missing=mediann"],
     "parameter 'missing' must be one of refuse, mean, median, most_frequent, got 'mediann'; did you mean 'median'?"),
], ids=["list", "choice"])
def test_a_parameter_of_the_wrong_shape_or_a_misspelt_choice_says_what_to_write(byo_dir, capfd, overrides, expected):
    """review24, as a new user: ``model.hidden=64`` said "must be tuple" (Python's type, for a YAML list) and
    ``dataset.missing=mediann`` listed the choices as a Python list with no "did you mean", unlike every other
    misspelt name."""
    base = ["model=mlp", "dataset=iris", "method=saliency", "n_samples=2"]
    names = {o.partition("=")[0] for o in overrides}
    assert_cli_refuses([*[o for o in base if o.partition("=")[0] not in names], *overrides], expected, capfd)


@pytest.mark.parametrize("value, expected", [
    ("dataset.sep=;", "dataset.sep=;: Hydra's override grammar reads ';' only quoted; write 'dataset.sep=\";\"'"),
    ("dataset.path=~/shop.csv", "write 'dataset.path=\"~/shop.csv\"'"),
    ("dataset.features=[age,", "no viable alternative at input '[age,'"),  # a broken list: the general hint
])
def test_a_value_hydra_reads_only_quoted_is_named_with_its_quoting(byo_dir, capfd, value, expected):
    """review24, as a new user: ``dataset.sep=;`` gave Hydra's "LexerNoViableAltException: dataset.sep=; ^" and a
    general hint whose list of characters did not include ';'; the line now names the override and the exact
    quoting (only for plain values: a list or sweep quoted whole would change meaning)."""
    assert_cli_refuses(["model=mlp", "method=saliency", "n_samples=2", "dataset=csv_table", "dataset.path=shop.csv",
                        "dataset.target=bought", value], expected, capfd)


@pytest.mark.parametrize("extra, expected", [
    (["--update-baseline", "--json", "v.json"], "--json with --update-baseline: it writes the baseline, not a "
                                                "verdict, so it would be ignored"),
    (["--update-baseline", "--report", "r.md", "--junit", "v.xml"], "--report, --junit with --update-baseline: "),
    (["--update-baseline", "--allow-missing"], "--allow-missing with --update-baseline"),
    (["--update-baseline", "--previous-baseline", "old"], "--previous-baseline with --update-baseline"),
    (["--command", "xaibench -m experiment=ci"], "--command is recorded only with --update-baseline"),
], ids=["json", "report_junit", "allow_missing", "previous", "command_alone"])
def test_compare_refuses_a_flag_its_mode_would_ignore(indir, capfd, extra, expected):
    """ciuser25, as a CI user: ``compare B C --update-baseline --json v.json`` replaced the baseline, exit 0, and
    wrote no ``v.json`` (nor ``--report``/``--junit``), so the CI step reading it next failed on a missing file;
    ``--command`` without ``--update-baseline`` was ignored. Each is one line, exit 2, nothing written (``indir``)."""
    assert_cli_refuses(["compare", "newbase", "summary.csv", *extra], expected, capfd)
