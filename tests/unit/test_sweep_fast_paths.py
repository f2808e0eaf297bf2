"""The warm-sweep fast paths give exactly what the paths they replace give (docs/speed.md: sweep overhead).

Each test runs the fast path and the reference path on the same input and compares values or bytes: stored cells
read in one pass vs one by one; the table combined from memory vs read back from the cell files; configs composed
once per group selection vs job by job; the CLI's own parse vs Hydra's; a pickled plan vs the composed one.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from hydra._internal.utils import get_args_parser
from omegaconf import OmegaConf

from xaibench import sweep
from xaibench.cli import _hydra_args
from xaibench.config import plan as plan_module
from xaibench.config.preflight import compose_job, compose_jobs, expand_sweep, validate
from xaibench.engine import stamp
from xaibench.engine.cell import CellSpec
from xaibench.engine.stamp import shared_rows, stamp_rows
from xaibench.engine.store import Store, frame_to_parquet_bytes
from xaibench.errors import UserError
from xaibench.results.collect import SUMMARY_NAME, SWEEP_CELLS, TABLE_NAME, write_table
from xaibench.results.schema import COLUMNS, conform, frame_of, is_conformed
from xaibench.sweep import launching, progress_line

METRICS = ("faith", "sens")


class _FixedNow(datetime):
    @classmethod
    def now(cls, tz=None):  # noqa: ANN001 - datetime's signature
        return datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture
def fixed_now(monkeypatch):
    """Both paths stamp unscored rows with "now": the same second for both."""
    monkeypatch.setattr(stamp, "datetime", _FixedNow)


def job_config(tmp_path, model: str, dataset: str, seed: int, **extra):
    return OmegaConf.create({
        "model": {"name": model, "label": extra.pop("model_label", None)}, "dataset": {"name": dataset},
        "method": {"name": "saliency"}, "metrics": {m: {} for m in METRICS}, "seed": seed, "n_samples": 3,
        "device": extra.pop("device", "cpu"), "sweep_id": "t", "results_dir": str(tmp_path / "runs"),
        "store_dir": str(tmp_path / "store"), "progress": False, **extra})


def cell_rows(cell: CellSpec, applicable: bool) -> pd.DataFrame:
    """Rows as a cell artefact holds them: 3 scored samples per metric, or one not_applicable row per metric."""
    values = {"string": "", "int64": 0, "float64": np.nan, "bool": False}
    rows = []
    for metric in METRICS:
        samples = [f"s{i}" for i in range(3)] if applicable else [""]
        for i, sample in enumerate(samples):
            rows.append({**{c: values[d] for c, d in COLUMNS.items()}, "schema_version": 2, "cell_key": cell.key,
                         "model": cell.model_name, "dataset": cell.dataset_name, "method": "saliency",
                         "metric": metric, "family": "faithfulness", "higher_is_better": metric == "faith",
                         "sample_id": sample, "seed": cell.seed, "n_samples": 3,
                         "value": 0.1 * i + cell.seed if applicable else np.nan,
                         "status": "ok" if applicable else "not_applicable", "model_accuracy": 0.9,
                         "device": "cpu" if applicable else "", "created_at": "2026-01-01T00:00:00+00:00"})
    return shared_rows(pd.DataFrame(rows))


@pytest.fixture
def stored_sweep(tmp_path):
    """Five jobs: four stored cells (one not applicable, one with a display label, one device=auto) and a miss."""
    configs = [job_config(tmp_path, "mlp", "iris", 0), job_config(tmp_path, "mlp", "iris", 1, model_label="MLP"),
               job_config(tmp_path, "cnn", "iris", 0), job_config(tmp_path, "logreg", "wine", 0, device="auto"),
               job_config(tmp_path, "logreg", "wine", 5)]
    cells = [CellSpec.from_config(cfg) for cfg in configs]
    store = Store(tmp_path / "store")
    for cell in cells[:4]:
        store.put_frame("cells", cell.key, cell_rows(cell, applicable=cell.model_name != "cnn"))
    return configs, cells


def test_stored_cells_in_one_pass_equal_stored_cell_one_by_one(stored_sweep, fixed_now):
    configs, cells = stored_sweep
    batch = sweep.stored_cells(configs, cells)
    assert sorted(batch) == [0, 1, 2, 3]  # the fifth job's cell is not stored
    for index in batch:
        alone = sweep.stored_cell(cells[index], configs[index])
        pd.testing.assert_frame_equal(batch[index].rows, alone.rows, check_exact=True)
        assert batch[index].parquet == frame_to_parquet_bytes(alone.rows)  # the cell file's bytes, as written before
        assert batch[index].cached and batch[index].key == cells[index].key
    assert set(batch[1].rows["model_label"]) == {"MLP"} and set(batch[0].rows["model_label"]) == {"mlp"}
    assert set(batch[2].rows["device"]) == {""}  # not_applicable rows: nothing ran (test_stage_device.py)
    assert set(batch[3].rows["device"]) == {"cpu"}  # scored rows keep their stage's


def test_a_control_cell_stored_before_rows_recorded_roles_is_read_with_its_role(tmp_path):
    """roles10: controls are known by the role their rows record; a ``random`` cell stored before roles were
    recorded, reused next to freshly computed cells that record theirs, would have made a table in which the
    built-in control had no role. Reused rows of a built-in control get the role fresh rows record (sorted JSON)."""
    config = job_config(tmp_path, "mlp", "iris", 0, method={"name": "random"})
    cell = CellSpec.from_config(config)
    old = shared_rows(cell_rows(cell, applicable=True).assign(method="random", method_params='{"positive": false}'))
    Store(tmp_path / "store").put_frame("cells", cell.key, old)
    expected = json.dumps({"positive": False, "role": "control"}, sort_keys=True)  # as runner._RowFactory writes
    assert set(sweep.stored_cell(cell, config).rows["method_params"]) == {expected}
    assert set(sweep.stored_cells([config], [cell])[0].rows["method_params"]) == {expected}
    user = old.assign(method="noise", method_params='{"positive": false}')  # no built-in: left as it was
    assert set(stamp_rows(user, sweep_id="t", device="cpu", model_label="m", dataset_label="d", ran=False)
               ["method_params"]) == {'{"positive": false}'}


def test_a_damaged_artefact_is_left_to_the_per_cell_path(stored_sweep):
    configs, cells = stored_sweep
    path = Store(configs[0].store_dir).path("cells", cells[0].key, "parquet")
    path.write_bytes(path.read_bytes()[:-3] + b"xyz")
    assert sorted(sweep.stored_cells(configs, cells)) == [1, 2, 3]


def test_the_table_combined_from_memory_is_the_one_read_back_from_cell_files(stored_sweep, tmp_path, fixed_now):
    configs, cells = stored_sweep
    results = sweep.stored_cells(configs, cells)
    written = {}
    for name in ("from_files", "from_memory"):
        folder = tmp_path / name
        for result in [*results.values(), results[0]]:  # a key written twice: the last write counts, as on disk
            write_table(result.rows, folder / SWEEP_CELLS / f"{result.key}.parquet")
        cells_in_memory = {result.key: result.rows for result in results.values()}
        sweep.finish_sweep(folder, echo=False, cells=cells_in_memory if name == "from_memory" else None)
        written[name] = [(folder / file).read_bytes() for file in (TABLE_NAME, SUMMARY_NAME)]
    assert written["from_files"] == written["from_memory"]


def test_conform_of_a_conformed_frame_is_the_full_conform(stored_sweep):
    configs, cells = stored_sweep
    frame = Store(configs[0].store_dir).get_frame("cells", cells[0].key)
    assert is_conformed(frame) and not is_conformed(frame.astype({"sweep_id": object}))
    full = frame.astype(object)  # every column cast back, as conform does for a frame read from a CSV
    pd.testing.assert_frame_equal(conform(frame), conform(full), check_exact=True)


def test_composing_each_selection_once_gives_hydras_configs():
    jobs = expand_sweep(["model=logreg,mlp", "seed=0,1", "n_samples=4", "metrics.faithfulness_correlation.nr_runs=5",
                         "+extra=1", "dataset.label=Iris"], multirun=True)
    fast, reference = compose_jobs(jobs), [compose_job(job) for job in jobs]
    for a, b in zip(fast, reference):
        assert OmegaConf.to_container(a) == OmegaConf.to_container(b)
        assert OmegaConf.is_struct(a) and OmegaConf.is_struct(b)
    assert [cfg.seed for cfg in fast] == [0, 1, 0, 1] and fast[0].model.name != fast[2].model.name
    ordered = [["model=logreg", "metrics.max_sensitivity.nr_samples=2", "~metrics.max_sensitivity"]]  # in line order
    assert OmegaConf.to_container(compose_jobs(ordered)[0]) == OmegaConf.to_container(compose_job(ordered[0]))
    with pytest.raises(UserError) as fast_error:
        compose_jobs([["model=logreg", "seed=0", "no_such_key=1"]])
    with pytest.raises(UserError) as reference_error:
        compose_job(["model=logreg", "seed=0", "no_such_key=1"])
    assert str(fast_error.value) == str(reference_error.value)


@pytest.mark.parametrize("argv", [[], ["-m"], ["-m", "a=1", "b=2"], ["a=1", "--multirun"], ["a=1", "-m", "b=2"],
                                  ["+x=1", "~y", "seed=-1"], ["-m", "-m"], ["--cfg", "job", "a=1"], ["a=1", "--info"],
                                  ["-m", "--config-name", "x"], [""]])
def test_the_clis_own_parse_is_hydras(argv):
    assert _hydra_args(argv) == get_args_parser().parse_known_args(argv)


def test_a_cached_plan_gives_the_composed_configs_without_composing(tmp_path, monkeypatch):
    monkeypatch.setenv("XAIBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("XAIBENCH_NO_PLAN_CACHE", raising=False)
    overrides = ["model=logreg", "dataset=iris", "method=saliency", "n_samples=4", f"results_dir={tmp_path}"]

    def composing_only(overrides, *, multirun, config_name, **_):  # the pre-flight without its data/model checks
        return [compose_job(overrides, config_name)]

    monkeypatch.setattr("xaibench.config.preflight.validate", composing_only)
    first = plan_module.make_plan(overrides, multirun=False)

    def no_composing(*args, **kwargs):
        raise AssertionError("a cached plan composes nothing")

    monkeypatch.setattr("xaibench.config.preflight.validate", no_composing)
    again = plan_module.make_plan(overrides, multirun=False)
    assert again.in_process == first.in_process
    assert [OmegaConf.to_container(c) for c in again.configs] == [OmegaConf.to_container(c) for c in first.configs]
    assert OmegaConf.is_struct(again.configs[0])
    (path,) = [p for p in plan_module.cache_dir().glob("*.pickle") if not p.name.startswith("composed-")]
    path.write_bytes(b"not a pickle")  # damaged: recomputed, never trusted
    with pytest.raises(AssertionError, match="composes nothing"):
        plan_module.make_plan(overrides, multirun=False)


def test_the_sweep_callback_is_made_on_first_use_and_pickles_by_name():
    callback = sweep.SweepCallback
    assert callback is sweep.SweepCallback and callback.__module__ == "xaibench.sweep"
    assert isinstance(pickle.loads(pickle.dumps(callback())), callback)


def test_a_frame_made_in_the_schemas_dtypes_is_the_conformed_object_frame():
    values = {"string": "x", "int64": 3, "float64": 0.5, "bool": True}
    columns = {c: values[d] for c, d in COLUMNS.items()}
    columns.update(sample_id=["a", "b", None], value=np.array([0.1, np.nan, -0.0]), target=np.array([0, 1, 2]),
                   status=["ok", "nan", "ok"], seed=np.int64(7), model_accuracy=float("nan"))
    made = frame_of(columns, 3)
    reference = conform(pd.DataFrame({c: columns[c] for c in COLUMNS}, index=range(3)))
    pd.testing.assert_frame_equal(made, reference, check_exact=True)
    assert is_conformed(made) and frame_to_parquet_bytes(made) == frame_to_parquet_bytes(reference)
    with pytest.raises(ValueError, match="lacks columns: seed"):
        frame_of({c: v for c, v in columns.items() if c != "seed"}, 3)


@pytest.mark.parametrize(("launcher", "lose_it", "refusal"), [
    ("slurm_cpu", lambda monkeypatch, path: monkeypatch.setenv("PATH", path), "needs Slurm, but sbatch is not on PATH"),
    ("ray_cpu", lambda monkeypatch, path: monkeypatch.setitem(sys.modules, "ray", None),
     "needs Ray, which cannot be imported here"),
])
def test_a_cached_plan_still_refuses_a_launcher_that_can_no_longer_start(launcher, lose_it, refusal, tmp_path,
                                                                         monkeypatch):
    """Two identical runs, the launcher gone in between (sbatch off PATH, Ray uninstalled): the second run loads
    its plan from the cache and is still refused by the pre-flight, i.e. before the CLI touches any file."""
    monkeypatch.setenv("XAIBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("XAIBENCH_NO_PLAN_CACHE", raising=False)
    path = os.environ["PATH"]
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "sbatch").write_text("#!/bin/sh\nexit 0\n")
    (fake_bin / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{path}")
    overrides = ["model=logreg", "dataset=iris", "method=saliency,random", "n_samples=4", f"hydra/launcher={launcher}",
                 f"results_dir={tmp_path}"]

    def composing_only(overrides, *, multirun, config_name, **_):  # the pre-flight without its data/model checks
        return compose_jobs(expand_sweep(overrides, multirun=multirun, config_name=config_name), config_name)

    monkeypatch.setattr("xaibench.config.preflight.validate", composing_only)
    first = plan_module.make_plan(overrides, multirun=True)
    assert not first.in_process and first.launch.launcher.endswith(("SlurmLauncher", "RayLauncher"))

    def no_composing(*args, **kwargs):
        raise AssertionError("the plan is cached")

    monkeypatch.setattr("xaibench.config.preflight.validate", no_composing)
    again = plan_module.make_plan(overrides, multirun=True)  # cached, the launcher still there: accepted
    assert again.launch.launcher == first.launch.launcher and len(again.configs) == 2
    lose_it(monkeypatch, path)
    with pytest.raises(UserError, match=refusal):
        plan_module.make_plan(overrides, multirun=True)


def test_cells_checked_before_skip_the_checks_that_import_torch_and_bad_input_is_still_refused(tmp_path, monkeypatch):
    """A plan that is not cached (a config or the code was edited) re-checks only cells it has not seen pass under
    this code: with both cells known, validating imports none of torch, captum, Quantus, scikit-learn."""
    monkeypatch.setenv("XAIBENCH_CACHE", str(tmp_path / "cache"))
    for name in ("XAIBENCH_NO_PLAN_CACHE", "XAIBENCH_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    sweep = ["model=logreg", "dataset=iris,wine", "method=saliency", "n_samples=4", f"results_dir={tmp_path}"]
    validate(sweep, multirun=True, remember_checks=True)
    (path,) = (tmp_path / "cache" / "verdicts").glob("*.txt")
    assert len(path.read_text().split()) == 2  # one line per cell that passed
    code = ("import sys; from xaibench.config.preflight import validate; "
            "validate(sys.argv[1:], multirun=True, remember_checks=True); "
            "print(sorted(m for m in ('torch', 'captum', 'quantus', 'sklearn') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, *sweep], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
    fixed = [o for o in sweep if not o.startswith("n_samples")]
    for bad, message in ((["n_samples=1000"], "n_samples=1000 exceeds the"), (["n_samples=4", "+n_sample=3"],
                         "unknown config key 'n_sample'"), (["n_samples=4", "metrics.max_sensitivity.nr_samples=x"],
                         "max_sensitivity"), (["n_samples=4", "threads=0"], "threads must be a positive integer")):
        for _ in range(2):  # passes only are remembered: refused again
            with pytest.raises(UserError, match=message):
                validate(fixed + bad, multirun=True, remember_checks=True)
    assert len(path.read_text().split()) == 2


def test_the_sweeper_launches_every_job_unless_told_which_of_this_sweep_are_pending(monkeypatch):
    monkeypatch.setattr(launching, "_pending", None)
    assert sweep.pending_jobs(3) == [0, 1, 2]  # not started by the CLI: everything, as BasicSweeper
    monkeypatch.setattr(launching, "_pending", (4, [1, 3]))
    assert sweep.pending_jobs(4) == [1, 3]
    assert sweep.pending_jobs(5) == [0, 1, 2, 3, 4]  # another expansion than the pre-flight's: launch all


def test_after_a_code_edit_the_composed_jobs_are_checked_again_not_composed(tmp_path, monkeypatch):
    monkeypatch.setenv("XAIBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("XAIBENCH_NO_PLAN_CACHE", raising=False)
    overrides = ["model=logreg", "dataset=iris", "method=saliency,random", "n_samples=4", f"results_dir={tmp_path}"]
    first = plan_module.make_plan(overrides, multirun=True)
    real_key = plan_module.plan_key

    def edited_code(*args, composition=False, **kwargs):  # the package's code changed, not the configs
        return real_key(*args, composition=composition, **kwargs) + ("" if composition else "edited")

    def no_composing(*args, **kwargs):
        raise AssertionError("the composition is cached")

    monkeypatch.setattr(plan_module, "plan_key", edited_code)
    for name in ("expand_sweep", "compose_jobs", "compose_job"):
        monkeypatch.setattr(f"xaibench.config.preflight.{name}", no_composing)
    checked = []
    monkeypatch.setattr("xaibench.config.preflight.validate_config",
                        lambda cfg, **kwargs: checked.append(cfg.method.name))
    again = plan_module.make_plan(overrides, multirun=True)
    assert checked == ["saliency", "random"]  # every job checked again by the (edited) code
    assert [OmegaConf.to_container(c) for c in again.configs] == [OmegaConf.to_container(c) for c in first.configs]
    assert again.in_process == first.in_process and again.launch == first.launch

    def edited_check(cfg, **kwargs):
        raise UserError("refused by the edited check")

    monkeypatch.setattr(plan_module, "plan_key", lambda *a, composition=False, **k: real_key(
        *a, composition=composition, **k) + ("" if composition else "edited again"))
    monkeypatch.setattr("xaibench.config.preflight.validate_config", edited_check)
    with pytest.raises(UserError, match="refused by the edited check"):
        plan_module.make_plan(overrides, multirun=True)


def test_a_sweep_too_large_to_hold_is_streamed_and_its_stored_cells_read_in_batches(stored_sweep, tmp_path,
                                                                                     fixed_now, monkeypatch):
    """The in-process launcher keeps a sweep's rows for its end only up to ``IN_MEMORY_ROWS`` and reads stored
    cells ``STORED_BATCH`` jobs at a time (memory flat in the number of cells): the same table, files and bytes
    as holding everything."""
    configs = stored_sweep[0][:4]  # every cell stored: nothing is computed

    def run(name: str, **kwargs):
        jobs = [OmegaConf.merge(cfg, {"results_dir": str(tmp_path / name)}) for cfg in configs]
        table = sweep.run_configs(jobs, multirun=True, echo=False, **kwargs)
        folder = tmp_path / name / "t"
        return table, [(folder / file).read_bytes() for file in (TABLE_NAME, SUMMARY_NAME)]

    held_table, held_files = run("held")
    finished, batches = [], []
    finish, stored = launching.finish_sweep, launching.stored_cells
    monkeypatch.setattr(launching, "finish_sweep", lambda folder, **kw: finished.append(kw["cells"]) or finish(folder, **kw))
    monkeypatch.setattr(launching, "stored_cells", lambda c, *a: batches.append(len(c)) or stored(c, *a))
    monkeypatch.setattr(launching, "IN_MEMORY_ROWS", 5)
    monkeypatch.setattr(launching, "STORED_BATCH", 3)
    streamed_table, streamed_files = run("streamed")
    assert finished == [None] and batches == [3, 1]  # finished from the cell files; stored cells read 3 + 1
    assert streamed_files == held_files
    pd.testing.assert_frame_equal(streamed_table, held_table, check_exact=True)
    assert sweep.run_configs(configs, multirun=True, echo=False, table=False) is None  # the CLI: nothing returned


def test_the_cell_line_names_a_variant_as_the_report_does(tmp_path):
    """review9: ``method=saliency,variant/gradient`` printed two ``mlp x iris x saliency (seed 0)`` lines (one per
    variant) while the summary and report say ``saliency (abs=False)``; the line now carries the same label."""
    from xaibench.engine.cell_result import CellResult

    lines = {}
    for params in ({"abs": True}, {"abs": False}):
        cell = CellSpec.from_config(job_config(tmp_path, "mlp", "iris", 0, method={"name": "saliency", **params}))
        rows = cell_rows(cell, applicable=True).assign(method_params=json.dumps(params))
        lines[params["abs"]] = progress_line._progress_line(cell, CellResult(cell.key, rows, True, 0.5), "job 3")
    assert lines[True].startswith("[job 3] mlp x iris x saliency (seed 0): ok ")
    assert lines[False].startswith("[job 3] mlp x iris x saliency (abs=False) (seed 0): ok ")
    assert lines[False].endswith("0.50s cached; 2 metrics x 3 samples")


def test_the_cell_line_gives_a_not_applicable_reason_whole(tmp_path):
    """newuser18: DeepLIFT on a model calling ``F.relu`` printed ``... nn.MaxPool2d, ...), but this`` (cut at 120
    characters): neither the functions nor the fix, and the console summary shows only ``n/a``. A reason up to 400
    characters is printed whole; a longer one is cut at a word and says so."""
    from xaibench.engine.cell_result import CellResult

    reason = ("method deeplift applies its rules to nonlinearities that are modules (nn.ReLU, nn.Sigmoid, "
              "nn.MaxPool2d, ...), but this model's forward calls max_pool2d, relu as functions (F.relu, x.relu(), "
              "...), where captum would use plain gradients; build them as modules (e.g. self.relu1 = nn.ReLU(), "
              "one per use) to explain it with this method")
    cell = CellSpec.from_config(job_config(tmp_path, "mlp", "iris", 0))
    rows = cell_rows(cell, applicable=False).assign(message=reason)
    line = progress_line._progress_line(cell, CellResult(cell.key, rows, False, 0.5), "job 0")
    assert line.endswith(f"not_applicable   0.50s skipped; {reason}")

    long_reason = "word " * 100 + "end\nsecond line"
    line = progress_line._progress_line(cell, CellResult(cell.key, rows.assign(message=long_reason), False, 0.5), "")
    detail = line.split("skipped; ", 1)[1]
    assert detail == ("word " * 80).rstrip() + " ... (the rows' message holds all of it)"
