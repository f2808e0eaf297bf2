"""End-to-end: real Hydra multiruns through the console entry point, as a user runs them."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import FAST_METRICS, cli_env, run_cli
from xaibench import sweep as sweep_module
from xaibench.cli import main
from xaibench.results import manifest
from xaibench.results.collect import PARTIAL, load_table
from xaibench.results.schema import MEASUREMENT_COLUMNS, RESULT_COLUMNS, ROW_KEY, SCHEMA_VERSION

SWEEP = ["-m", "model=cnn,mlp", "dataset=digits,breast_cancer", "method=saliency,integrated_gradients,random",
         "n_samples=6", "sweep_id=t", *FAST_METRICS]
pytestmark = pytest.mark.slow


def table_of(root: Path, sweep_id: str = "t") -> pd.DataFrame:
    return pd.read_parquet(root / "results" / "runs" / sweep_id / "table.parquet")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sweep run once, uninterrupted, in a fresh directory: (root, first run, second run)."""
    root = tmp_path_factory.mktemp("reference")
    first = run_cli(SWEEP, root)
    assert first.returncode == 0, first.stderr[-3000:]
    table = table_of(root)
    second = run_cli(SWEEP, root)
    assert second.returncode == 0, second.stderr[-3000:]
    return root, first, table, second


def test_multirun_gives_one_table_with_every_cell(reference):
    root, first, table, _ = reference
    cells = table.drop_duplicates("cell_key")
    assert len(cells) == 12
    status = {key: set(group) for key, group in table.groupby(["model", "dataset"])["status"]}
    assert status[("cnn", "breast_cancer")] == {"not_applicable"}
    assert status[("cnn", "digits")] == status[("mlp", "digits")] == status[("mlp", "breast_cancer")] == {"ok"}
    ok = table[table["status"] == "ok"]
    assert ok.groupby("cell_key").size().eq(3 * 6).all()  # 3 metrics x 6 samples per applicable cell
    assert table["value"][table["status"] == "ok"].notna().all()
    assert set(table["schema_version"]) == {SCHEMA_VERSION} and set(table["sweep_id"]) == {"t"}
    assert "12 cells (3 not_applicable, 9 ok)" in first.stdout
    assert (root / "results" / "runs" / "t" / "summary.parquet").is_file()


def test_second_run_computes_nothing_and_gives_the_identical_table(reference):
    root, first, table, second = reference
    assert second.stdout.count(" cached;") == 9 and " computed " not in second.stdout
    # Identical results; the measurement columns (memory peak, time, device) describe each run, not the result.
    pd.testing.assert_frame_equal(table_of(root).drop(columns=list(MEASUREMENT_COLUMNS)),
                                  table.drop(columns=list(MEASUREMENT_COLUMNS)))


def test_joblib_and_submitit_launchers_give_the_same_results(reference, tmp_path):
    root, _, table, _ = reference
    small = ["-m", "model=mlp", "dataset=breast_cancer", "method=saliency,random", "n_samples=6", "sweep_id=t",
             *FAST_METRICS]
    expected = table[(table["model"] == "mlp") & (table["dataset"] == "breast_cancer")
                     & table["method"].isin(["saliency", "random"])]
    # hydra.job.chdir=true (older Hydra templates set it) moved joblib's jobs into jobs/<n>: cells were written there
    for launcher in (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.job.chdir=true"],
                     ["hydra/launcher=submitit_local"]):
        folder = tmp_path / launcher[0].split("=")[1]
        folder.mkdir()
        done = run_cli(small + launcher, folder)
        assert done.returncode == 0, done.stderr[-3000:]
        got = table_of(folder)
        pd.testing.assert_frame_equal(
            got[list(RESULT_COLUMNS)].reset_index(drop=True), expected[list(RESULT_COLUMNS)].reset_index(drop=True))
    logs = tmp_path / "submitit_local" / "results" / "runs" / "t" / ".submitit"
    assert len(list(logs.glob("*/*_log.out"))) == 2 and not (logs / "%j").exists()  # was left, empty


def test_joblib_launches_only_the_cells_the_store_lacks(reference, tmp_path):
    """Stored cells need no launcher job: the CLI writes them from the store, joblib gets the rest (keeping their
    job numbers and folders); with every cell stored, Hydra launches nothing. Same table as the reference."""
    root, _, table, _ = reference
    shutil.copytree(root / "results" / "store", tmp_path / "results" / "store")  # saliency and random are stored
    small = ["-m", "model=mlp", "dataset=breast_cancer", "method=saliency,random,input_x_gradient", "n_samples=6",
             "sweep_id=t", *FAST_METRICS, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    done = run_cli(small, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"^\[job 0\] .* saliency .* cached", done.stdout, re.M)
    assert re.search(r"^\[job 2\] .* input_x_gradient .* computed", done.stdout, re.M)
    jobs = tmp_path / "results" / "runs" / "t" / "jobs"
    launched = sorted(int(path.parent.parent.name) for path in jobs.glob("*/.hydra/hydra.yaml"))  # Hydra's own files
    assert launched == [2] and all((jobs / str(n) / ".hydra" / "config.yaml").is_file() for n in range(3))
    got = table_of(tmp_path)
    expected = table[(table["model"] == "mlp") & (table["dataset"] == "breast_cancer")
                     & table["method"].isin(["saliency", "random"])]
    pd.testing.assert_frame_equal(got.loc[got["method"] != "input_x_gradient", list(RESULT_COLUMNS)]
                                  .reset_index(drop=True), expected[list(RESULT_COLUMNS)].reset_index(drop=True))
    shutil.rmtree(jobs)
    again = run_cli(small, tmp_path)  # every cell stored: nothing for Hydra to launch
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count(" cached;") == 3 and not list(jobs.glob("*/.hydra/hydra.yaml"))
    pd.testing.assert_frame_equal(table_of(tmp_path)[list(RESULT_COLUMNS)], got[list(RESULT_COLUMNS)])


def test_chunked_submitit_runs_several_cells_per_task_with_the_same_results(reference, tmp_path):
    """submitit's local executor standing in for Slurm: 3 cells, 2 per task -> 2 tasks, identical rows."""
    root, _, table, _ = reference
    small = ["-m", "model=mlp", "dataset=breast_cancer", "method=saliency,random,integrated_gradients",
             "n_samples=6", "sweep_id=t", *FAST_METRICS]
    done = run_cli(small + ["hydra/launcher=submitit_local_chunked", "hydra.launcher.cells_per_task=2"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = table[(table["model"] == "mlp") & (table["dataset"] == "breast_cancer")]
    got = table_of(tmp_path)
    pd.testing.assert_frame_equal(
        got[list(RESULT_COLUMNS)].reset_index(drop=True), expected[list(RESULT_COLUMNS)].reset_index(drop=True))
    results = list((tmp_path / "results" / "runs" / "t").rglob("*_result.pkl"))
    assert len(results) == 2  # one per task, not one per cell
    logs = tmp_path / "results" / "runs" / "t" / ".submitit"
    assert sorted(p.name for p in logs.iterdir()) == sorted(p.parent.name for p in results)  # no literal ".submitit/%j"


def test_slurm_preset_on_a_faked_slurm_runs_cells_in_array_tasks(reference, tmp_path):
    """``hydra/launcher=slurm_cpu`` through fake sbatch/sacct/srun on PATH (tests/integration/fake_slurm)."""
    root, _, table, _ = reference
    small = ["-m", "model=mlp", "dataset=breast_cancer", "method=saliency,random,integrated_gradients",
             "n_samples=6", "sweep_id=t", *FAST_METRICS]
    fake = Path(__file__).parent / "fake_slurm"
    done = run_cli(small + ["hydra/launcher=slurm_cpu", "hydra.launcher.cells_per_task=2"], tmp_path,
                   PATH=f"{fake}{os.pathsep}{os.environ['PATH']}", FAKE_SLURM_DIR=str(tmp_path / "slurm_state"))
    assert done.returncode == 0, done.stderr[-3000:]
    expected = table[(table["model"] == "mlp") & (table["dataset"] == "breast_cancer")]
    pd.testing.assert_frame_equal(table_of(tmp_path)[list(RESULT_COLUMNS)].reset_index(drop=True),
                                  expected[list(RESULT_COLUMNS)].reset_index(drop=True))
    tasks = sorted(p.name for p in (tmp_path / "slurm_state").glob("[0-9]*"))
    assert tasks == ["1000_0", "1000_1"]  # one array job, two tasks for three cells
    logs = tmp_path / "results" / "runs" / "t" / "slurm"
    assert (logs / "1000_0" / "1000_0_0_log.out").is_file()  # per-task logs beside the sweep
    recorded = json.loads((tmp_path / "results" / "runs" / "t" / "slurm_arrays.json").read_text())
    assert [(a["job"], a["tasks"], a["cells"], a["collected"]) for a in recorded] == [("1000", 2, 3, True)]


def test_sigkill_midway_then_rerun_matches_uninterrupted(reference, tmp_path):
    root, _, table, _ = reference
    process = subprocess.Popen([sys.executable, "-m", "xaibench", *SWEEP], cwd=tmp_path, env=cli_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    cells = tmp_path / "results" / "store" / "v2" / "cells"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(cells.glob("*/*.artefact"))) < 2 and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the sweep finished before it could be killed; make it longer"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "results" / "runs" / "t" / "table.parquet").exists()
    partial = load_table(tmp_path / "results" / "runs" / "t").attrs[PARTIAL]  # what `xaibench summary` prints
    assert re.fullmatch(r"\d+ of 12 cells; the sweep did not finish", partial), partial
    rerun = run_cli(SWEEP, tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert " cached;" in rerun.stdout  # the cells finished before the kill were not recomputed
    got = table_of(tmp_path)
    assert not got.duplicated(ROW_KEY).any()
    pd.testing.assert_frame_equal(got[list(RESULT_COLUMNS)], table[list(RESULT_COLUMNS)])


BOOM = '''
from dataclasses import dataclass
from xaibench.explainers.base import Explainer
from xaibench.registry import EXPLAINERS

@EXPLAINERS.register("boom")
@dataclass(frozen=True)
class Boom(Explainer):
    """Fails at explanation time, like a method hitting a bug or running out of memory."""
    def explain(self, model, x, target):
        raise RuntimeError("boom: deliberate failure")
'''


def test_failing_cell_is_recorded_sweep_continues_exit_code_1(tmp_path):
    plugin = tmp_path / "plugin"
    (plugin / "conf" / "method").mkdir(parents=True)
    (plugin / "boom_plugin.py").write_text(BOOM)
    (plugin / "conf" / "method" / "boom.yaml").write_text("name: boom\n")
    args = ["-m", "model=mlp", "dataset=iris", "method=boom,saliency", "n_samples=4", "sweep_id=t",
            f"hydra.searchpath=[file://{plugin / 'conf'}]", *FAST_METRICS]
    done = run_cli(args, tmp_path, XAIBENCH_PLUGINS="boom_plugin", PYTHONPATH=str(plugin))
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    table = table_of(tmp_path)
    boom = table[table["method"] == "boom"]
    assert set(boom["status"]) == {"error"} and len(boom) == 3  # one row per metric
    assert boom["message"].str.contains("RuntimeError: boom: deliberate failure").all()
    assert set(table.loc[table["method"] == "saliency", "status"]) == {"ok"}
    assert "error: RuntimeError: boom" in done.stderr


EFFECTIVE_COMPLEXITY = "  eps: 0.05\n  abs: true\n  normalise: true\n  normalise_func: normalise_by_max_per_sample\n" \
                       "  softmax: false\n"  # conf/metrics/sparsity.yaml's parameters for it


def test_jobs_whose_suite_is_a_subset_of_another_complete_with_one_copy_of_each_row(tmp_path, monkeypatch, capfd):
    """Jobs differing only in their metric suite, one a subset of another: the subset cells' rows are all shared
    samples (kept once, under the first cell's key), yet those cells ran and the sweep is complete (exit 0, table,
    summary). Two spellings of the same subset ({} and the explicit defaults: two cell keys, the same rows) make
    one cell lose all its rows whatever the order of the keys. The streamed finish writes the same bytes."""
    conf = tmp_path / "myconf" / "metrics"
    conf.mkdir(parents=True)
    (conf / "ec_explicit.yaml").write_text("effective_complexity:\n" + EFFECTIVE_COMPLEXITY)
    (conf / "ec_defaults.yaml").write_text("effective_complexity: {}\n")
    args = ["-m", "model=logreg", "dataset=iris", "method=saliency", "metrics=sparsity,ec_explicit,ec_defaults",
            "n_samples=4", "sweep_id=t", f"hydra.searchpath=[file://{tmp_path / 'myconf'}]"]
    monkeypatch.chdir(tmp_path)
    capfd.readouterr()
    with pytest.raises(SystemExit) as done:
        main(args)  # the console entry in this process (a subprocess only added ~8 CPU-s of imports)
    out = capfd.readouterr()
    assert done.value.code == 0, out.out[-2000:] + out.err[-2000:]
    assert "3 cells (3 ok); 12 rows" in out.out
    folder = tmp_path / "results" / "runs" / "t"
    written = {path.stem for path in (folder / "cells").glob("*.parquet")}
    table = pd.read_parquet(folder / "table.parquet")
    assert len(written) == 3 and set(table["cell_key"]) < written  # a cell kept no row of its own
    assert len(table) == 12 and not table.duplicated(["metric", "sample_id"]).any()
    assert set(table["metric"]) == {"complexity", "effective_complexity", "sparseness"}
    assert set(table["status"]) == {"ok"} and table["value"].notna().all()
    assert manifest.read_state(folder).finished and (folder / "summary.parquet").is_file()
    # The same folder finished by a launcher's callback (cell files streamed): the same bytes, complete.
    expected = (folder / "table.parquet").read_bytes()
    (folder / "table.parquet").unlink()
    (folder / "cells").rename(folder / "written")
    manifest.begin(folder, 3)
    (folder / "written").rename(folder / "cells")
    sweep_module.finish_sweep(folder, echo=False)
    assert sweep_module.exit_code() == 0 and manifest.read_state(folder).finished
    assert (folder / "table.parquet").read_bytes() == expected


def test_single_run_prints_a_summary(workdir, capfd):
    """The console entry in this process (a subprocess only added ~8 CPU-s of imports; the console's own process is
    run by test_multirun_gives_one_table_with_every_cell, test_readme_quickstart and the docs examples)."""
    capfd.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["model=mlp", "dataset=iris", "method=random", "n_samples=4", *FAST_METRICS])
    out = capfd.readouterr()
    assert done.value.code == 0, out.err[-3000:]
    assert "faithfulness_correlation ↑" in out.out and "max_sensitivity ↓" in out.out
    assert "\n1 cell (1 ok); 12 rows" in out.out


@pytest.mark.parametrize("args, expected", [  # the whole table of bad inputs: tests/reliability/test_bad_input.py
    (["model=resnet"], "unknown model 'resnet'; valid: "),
    (["-m", "method=saliency,nope"], "unknown method 'nope'; valid: "),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, expected):
    done = run_cli(args, tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("xaibench: error: ") and expected in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


SQUARE = '''
from dataclasses import dataclass
from xaibench.explainers.base import Explainer
from xaibench.types import Explanation
from xaibench.registry import EXPLAINERS

@EXPLAINERS.register("square")
@dataclass(frozen=True)
class Square(Explainer):
    """A user's method under development: |x| ** POWER."""
    def explain(self, model, x, target):
        return Explanation(x.abs() ** POWER)
'''


@pytest.mark.slow
def test_an_edited_plugin_method_is_computed_again_not_read_from_the_store(tmp_path):
    """A warm store used to serve the old code's explanations after a plugin was edited (its key held only its
    name and parameters). Now the plugin's file is in its stage keys and the cells' keys; the built-in method's
    stages are still read from the store."""
    plugin = tmp_path / "plugin"
    (plugin / "conf" / "method").mkdir(parents=True)
    (plugin / "conf" / "method" / "square.yaml").write_text("name: square\n")
    source = plugin / "square_plugin.py"
    args = ["-m", "model=logreg", "dataset=iris", "method=square,saliency", "metrics=sparsity", "n_samples=4",
            "sweep_id=t", f"hydra.searchpath=[file://{plugin / 'conf'}]"]

    def sweep(power: int) -> tuple[subprocess.CompletedProcess, pd.DataFrame]:
        source.write_text(SQUARE.replace("POWER", str(power)))
        done = run_cli(args, tmp_path, XAIBENCH_PLUGINS="square_plugin", PYTHONPATH=str(plugin))
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        table = table_of(tmp_path).sort_values(["method", "metric", "sample_id"])
        return done, table.set_index(["method", "metric", "sample_id"])["value"]

    _, first = sweep(1)
    again, same = sweep(1)
    assert again.stdout.count(" cached") == 2  # unchanged code: both cells from the store
    pd.testing.assert_series_equal(same, first)
    edited, second = sweep(4)
    assert re.search(r"square \(seed 0\): ok .* computed 3 new metrics; 3 metrics", edited.stdout)
    assert re.search(r"saliency \(seed 0\): ok .* computed 0 new metrics, 3 cached", edited.stdout)
    changed = (second - first).abs()
    assert (changed.loc["square"] > 1e-6).any()  # the new code's maps: sparser
    assert (changed.loc["saliency"] == 0).all()
