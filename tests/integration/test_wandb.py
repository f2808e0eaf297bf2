"""W&B offline files read back: per cell config, summary (mean/CI/NaN rate), rows table and gallery image; the
sweep-level summary run with its tables and figures; cached cells not re-logged; failures never lose a row."""
from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import xaibench
from xaibench.results.schema import MEASUREMENT_COLUMNS
from xaibench import sweep
from xaibench.sweep import finishing, wandb_run
from xaibench.report.wandb_reader import read_offline_run

pytestmark = pytest.mark.slow

CELLS = ["model=mlp", "dataset=iris", "method=saliency,random", "n_samples=4", "metrics=sparsity", "logger=wandb",
         "sweep_id=wb"]


def offline_runs(root: Path) -> list:
    return [read_offline_run(path) for path in sorted(glob.glob(str(root / "results/runs/wb/wandb/offline-run-*")))]


def assert_real_png(path: Path) -> None:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert image.format == "PNG" and pixels.shape[1] >= 400
    assert pixels.std() > 10, "the image is blank"


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    root = tmp_path_factory.mktemp("wandb")
    home = root / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("HOME", str(home))
        for variable in [v for v in os.environ if v.startswith(("WANDB_", "XAIBENCH_"))]:
            patch.delenv(variable)
        table = xaibench.run(CELLS, multirun=True)
        files = glob.glob(str(root / "results/runs/wb/wandb/offline-run-*/run-*.wandb"))
        finished = {path: _ends_with_exit(path) for path in files}  # read at once, as a user would
        runs = offline_runs(root)
    return root, table, runs, finished


def _ends_with_exit(path: str) -> bool:
    """The run file, read at once (no wait), ends with the run's ``exit`` record: W&B has written all of it."""
    from google.protobuf.message import DecodeError

    from xaibench.report.wandb_reader import iter_records

    try:
        records = list(iter_records(path))
    except DecodeError:  # a record cut where W&B has not written yet
        return False
    return bool(records) and records[-1].WhichOneof("record_type") == "exit"


def test_each_cell_run_holds_config_summary_rows_and_gallery(logged):
    root, table, runs, _ = logged
    cells = {run.name: run for run in runs if run.job_type == "cell"}
    assert sorted(cells) == ["mlp-iris-random-s0", "mlp-iris-saliency-s0"]
    summary = xaibench.summarize(table)
    for method in ("saliency", "random"):
        run = cells[f"mlp-iris-{method}-s0"]
        rows = table[table["method"] == method]
        assert run.group == "wb" and run.config["cell_key"] == rows["cell_key"].iloc[0]
        assert run.config["method"]["name"] == method and run.config["n_samples"] == 4
        for _, expected in summary[summary["method"] == method].iterrows():
            for field in ("mean", "ci_low", "ci_high", "nan_rate"):
                assert run.summary[f"{expected['metric']}/{field}"] == pytest.approx(expected[field], rel=1e-12)
            assert run.summary[f"{expected['metric']}/n"] == 4
        logged_rows = pd.DataFrame(run.tables["rows"]["data"], columns=run.tables["rows"]["columns"])
        assert len(logged_rows) == len(rows) == 12
        assert sorted(logged_rows["value"].round(12)) == sorted(rows["value"].round(12))
        assert_real_png(run.images["gallery"])


def test_one_sweep_run_holds_summary_ranks_and_figures(logged):
    root, table, runs, _ = logged
    (run,) = [r for r in runs if r.job_type == "sweep"]
    assert run.name == "wb-summary" and run.group == "wb" and run.summary["n_cells"] == 2
    summary = pd.DataFrame(run.tables["summary"]["data"], columns=run.tables["summary"]["columns"])
    assert len(summary) == len(xaibench.summarize(table)) == 6
    assert set(zip(summary["method"], summary["role"])) == {("saliency", ""), ("random", "control")}  # by role
    ranks = pd.DataFrame(run.tables["ranks"]["data"], columns=run.tables["ranks"]["columns"])
    # the random control is a reference row, never ranked: saliency is ranked alone, and average ranks (groups where
    # two methods compete) and their heatmap have nothing to show
    assert set(ranks["method"]) == {"saliency"} and set(ranks["rank"]) == {1}
    assert "average_ranks" not in run.tables and "figures/rank_heatmap" not in run.images
    assert {"figures/metric_scores", "figures/gallery_iris_mlp"} <= set(run.images)
    assert "figures/cd_all" not in run.images  # two methods: no Friedman test, so no CD diagram (Demšar 2006)
    for path in run.images.values():
        assert_real_png(path)


def test_every_run_is_complete_when_run_returns(logged):
    """``xaibench.run`` returns once W&B has written its runs (``wandb_sink.wait_for_runs``): each run file read
    at once, without waiting, ends with its ``exit`` record (``run.finish()`` alone returned before W&B's service
    wrote the records; half the files read at once held only their header)."""
    _, _, runs, finished = logged
    assert len(finished) == len(runs) == 3 and all(finished.values()), finished


def test_offline_files_stay_under_the_sweep_folder(logged):
    root, _, _, _ = logged
    home = root / "home"
    assert not [p for p in home.rglob("*") if "wandb" in str(p.relative_to(home)).lower()]
    assert not (root / "wandb").exists()
    # W&B's cache, data, config and artifact folders are inside <sweep>/wandb/: a data/ beside the sweep's own files
    # looked like dataset files
    sweep = root / "results/runs/wb"
    assert not {"cache", "data", "config", "artifacts"} & {p.name for p in sweep.iterdir()}
    assert (sweep / "wandb" / "cache").is_dir()


def test_cached_cells_are_not_relogged_and_the_user_is_told(logged, monkeypatch, capsys):
    root, table, runs, _ = logged
    monkeypatch.chdir(root)
    monkeypatch.setenv("HOME", str(root / "home"))
    again = xaibench.run(CELLS, multirun=True)
    assert "2 cells were cached and not re-logged; add logger.log_cached=true to log them" in capsys.readouterr().out
    assert len(offline_runs(root)) == len(runs)
    measured = ["sweep_id", *MEASUREMENT_COLUMNS]  # a cached cell reports no memory peak of its own
    pd.testing.assert_frame_equal(again.drop(columns=measured), table.drop(columns=measured))
    xaibench.run([*CELLS[:2], "method=saliency", *CELLS[3:], "logger.log_cached=true"])
    names = [run.name for run in offline_runs(root)]
    assert names.count("mlp-iris-saliency-s0") == 2 and names.count("wb-summary") == 2


def test_a_sweep_computed_without_wandb_gets_its_summary_run_on_the_first_wandb_rerun(workdir, monkeypatch, capsys):
    """The README's order (the quickstart, then the same sweep with ``logger=wandb``) logged no W&B run at all:
    every cell was cached, so the summary run was skipped as "logged when its cells were", which it never was."""
    monkeypatch.setenv("HOME", str(workdir))
    plain = [c for c in CELLS if c != "logger=wandb"]
    xaibench.run(plain, multirun=True)
    xaibench.run(CELLS, multirun=True)
    out = capsys.readouterr().out
    assert "2 cells were cached and not re-logged" in out
    assert [(run.name, run.job_type) for run in offline_runs(workdir)] == [("wb-summary", "sweep")]
    runs = (workdir / "results/runs/wb/wandb").resolve()  # the sweep said where its runs went, and how to upload
    assert f"W&B (offline): runs in {runs}; upload them with: wandb sync {runs}/offline-run-*\n" in out
    xaibench.run(CELLS, multirun=True)  # nothing new now: no second summary run
    assert len(offline_runs(workdir)) == 1


def test_a_wandb_failure_never_fails_a_cell_or_loses_a_row(workdir, monkeypatch, capsys):
    import wandb

    def broken(*args, **kwargs):
        raise ConnectionError("wandb is down")

    monkeypatch.setattr(wandb, "init", broken)
    table = xaibench.run(CELLS, multirun=True)
    assert (table["status"] == "ok").all() and len(table) == 24
    assert sweep.exit_code() == 0
    err = capsys.readouterr().err
    assert err.count("W&B logging failed (ConnectionError: wandb is down)") == 2
    assert "W&B sweep logging failed (ConnectionError: wandb is down)" in err
    assert len(pd.read_parquet(workdir / "results/runs/wb/table.parquet")) == 24


def test_the_sweep_run_counts_the_cells_the_console_counts(tmp_path, monkeypatch, capsys):
    """``n_cells`` in the W&B sweep run is what the end of the sweep prints: every cell the sweep wrote, with its
    failed and not-applicable cells, each seed a cell, and a cell whose suite is a subset of another's (it keeps
    no row of its own in the table); ``table["cell_key"].nunique()`` said 4 of these 5 cells."""
    from omegaconf import OmegaConf

    from tests.reliability.test_collect import cell_frame
    from xaibench.results import manifest

    monkeypatch.setenv("HOME", str(tmp_path))
    for variable in [v for v in os.environ if v.startswith(("WANDB_", "XAIBENCH_"))]:
        monkeypatch.delenv(variable)
    folder = tmp_path / "runs" / "wbc"
    failed = cell_frame(3, "b", "m1", 0, ["x", "y"]).assign(status="error", message="boom", value=np.nan)
    not_applicable = cell_frame(4, "b", "m2", 0, ["x", "y"], n=1).assign(status="not_applicable", sample_id="",
                                                                         value=np.nan, message="needs images")
    cells = [cell_frame(0, "a", "m1", 0, ["x", "y"]), cell_frame(1, "a", "m1", 0, ["y"]),  # 1: a subset of 0
             cell_frame(2, "a", "m1", 1, ["x", "y"]), failed, not_applicable]
    manifest.begin(folder, len(cells))  # a running sweep (it sets earlier cell files aside), then its cells
    (folder / "cells").mkdir()
    for frame in cells:
        frame.to_parquet(folder / "cells" / f"{frame['cell_key'].iloc[0]}.parquet")
    cfg = OmegaConf.create({"logger": {"name": "wandb", "mode": "offline", "project": "t"}, "sweep_id": "wbc",
                            "results_dir": str(tmp_path / "runs"), "store_dir": str(tmp_path / "store")})
    sweep.finish_sweep(folder, cfg=cfg)  # streamed from the cell files, as a launcher's callback ends a sweep
    out = capsys.readouterr()
    assert "5 cells (1 error, 1 not_applicable, 3 ok)" in out.out, out.err
    table = pd.read_parquet(folder / "table.parquet")
    assert table["cell_key"].nunique() == 4  # cell 1's rows are cell 0's
    (path,) = glob.glob(str(folder / "wandb" / "offline-run-*"))
    run = read_offline_run(path)
    assert run.job_type == "sweep" and run.config["n_rows"] == len(table)
    assert run.summary["n_cells"] == run.config["n_cells"] == 5
    assert [run.summary[f"cells/{s}"] for s in ("ok", "error", "not_applicable")] == [3, 1, 1]
    logged = pd.DataFrame(run.tables["summary"]["data"], columns=run.tables["summary"]["columns"])
    summary = pd.read_parquet(folder / "summary.parquet")  # the error row's missing rank logged as null
    assert len(logged) == len(summary) and logged["rank"].isna().sum() == summary["rank"].isna().sum() > 0
    assert "W&B sweep logging failed" not in out.err


def test_logged_rows_carry_the_stage_devices_and_halvings(logged):
    """Schema v4's measurement columns reach W&B with the rest of the row (the sink logs every column)."""
    _, table, runs, _ = logged
    for run in (r for r in runs if r.job_type == "cell"):
        logged_rows = pd.DataFrame(run.tables["rows"]["data"], columns=run.tables["rows"]["columns"])
        scored = logged_rows[logged_rows["status"] == "ok"]
        assert len(scored) and set(scored["model_device"]) == {"cpu"} and set(scored["explain_device"]) == {"cpu"}
        assert set(logged_rows["oom_backoffs"]) == {0}
    assert set(table.loc[table["status"] == "ok", "model_device"]) == {"cpu"}


def test_a_streamed_sweeps_run_draws_the_whole_tables_figures(logged, monkeypatch):
    """The sweep run of a streamed sweep (``finish_sweep`` without the rows in memory) draws its figures from
    ``table.parquet`` one (model, dataset) range at a time: the figures of the whole table, same names, same order,
    the same pixels for those drawn from the table's rows (ranges cut across batches here)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from xaibench.report import streamed_figures
    from xaibench.report.build import analyse
    from xaibench.report.figure_set import analysed_figures

    root, _, _, _ = logged
    path, store = root / "results/runs/wb/table.parquet", root / "results/store"
    table = pd.read_parquet(path)
    analysis = analyse(table)
    whole = analysed_figures(table, analysis, store)
    monkeypatch.setattr(streamed_figures, "BATCH_ROWS", 5)
    ranks = analysis.ranks[analysis.ranks["by"] == "metric"]
    streamed = streamed_figures.streamed_figures(path, analysis.summary, store, ranks=ranks, friedman=analysis.friedman,
                                                 agreement=analysis.agreement)

    def pixels(figure) -> np.ndarray:
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())

    assert list(streamed) == list(whole) and "gallery_iris_mlp" in streamed
    for name in [n for n in whole if n.startswith(("gallery_", "counterfactuals_", "rules_", "cost_"))]:
        assert np.array_equal(pixels(streamed[name]), pixels(whole[name])), name  # drawn from the table's rows


def test_a_summary_longer_than_wandb_keeps_is_cut_and_logged_whole_as_a_file(logged, tmp_path, monkeypatch, capsys):
    """W&B writes only the first ``Table.MAX_ROWS`` rows of a logged table to the run's file, yet held every row
    in memory for the table's artifact (120,000 summary rows at 10,000 cells): a longer table is logged as those
    first rows (its table artifact holds them too), the run's summary records the table's length and what was
    kept, one warning line says so, and the run logs ``summary.parquet`` (every row) as its artifact
    ``<sweep>-summary``, byte for byte. A table that fits logs no such file (the small sweeps' run is unchanged)."""
    import base64
    import hashlib

    import wandb
    from omegaconf import OmegaConf

    from xaibench.report import wandb_sink

    _, table, _, _ = logged
    summary = xaibench.summarize(table)
    folder = tmp_path / "cut"
    folder.mkdir()
    summary.to_parquet(folder / "summary.parquet")
    monkeypatch.setattr(wandb.Table, "MAX_ROWS", 2)
    cfg = OmegaConf.create({"sweep_id": "cut", "results_dir": str(tmp_path), "logger": {"mode": "offline"}})
    wandb_sink.log_sweep(folder, table, summary, cfg)
    run = read_offline_run(glob.glob(str(folder / "wandb/offline-run-*"))[0])
    assert run.summary["summary/rows"] == len(summary) > 2 and run.summary["summary/rows_logged"] == 2
    assert len(run.tables["summary"]["data"]) == 2  # what W&B itself shows
    logged_rows = pd.DataFrame(run.tables["summary"]["data"], columns=run.tables["summary"]["columns"])
    assert logged_rows["method"].tolist() == summary["method"].head(2).tolist()
    err = capsys.readouterr().err
    assert f"the W&B run's summary table holds the first 2 of its {len(summary):,} rows" in err
    assert str(folder / "summary.parquet") in err and "artifact cut-summary" in err
    md5 = base64.b64encode(hashlib.md5((folder / "summary.parquet").read_bytes()).digest()).decode()
    files = [entry for entry in _artifact_digests(run) if entry[0] == "results"]
    assert files == [("results", "summary.parquet", md5, (folder / "summary.parquet").stat().st_size)]
    assert run.summary["summary/artifact"] == "cut-summary:latest/summary.parquet"
    from xaibench.report.wandb_reader import iter_records

    (path,) = run.path.glob("run-*.wandb")
    staged = {entry.path: entry.local_path for record in iter_records(path)
              if record.WhichOneof("record_type") == "artifact" for entry in record.artifact.manifest.contents}
    assert Path(staged["summary.parquet"]).read_bytes() == (folder / "summary.parquet").read_bytes()
    for name in ("summary.table.json", "ranks.table.json"):  # W&B's table artifacts: the rows shown, no more
        assert len(json.loads(Path(staged[name]).read_text())["data"]) == 2

    monkeypatch.setattr(wandb.Table, "MAX_ROWS", 10_000)  # every table fits: no file artifact, no warning
    cfg = OmegaConf.create({"sweep_id": "fits", "results_dir": str(tmp_path), "logger": {"mode": "offline"}})
    (tmp_path / "fits").mkdir()
    summary.to_parquet(tmp_path / "fits" / "summary.parquet")
    wandb_sink.log_sweep(tmp_path / "fits", table, summary, cfg)
    run = read_offline_run(glob.glob(str(tmp_path / "fits/wandb/offline-run-*"))[0])
    assert [entry for entry in _artifact_digests(run) if entry[0] == "results"] == []
    assert "summary/artifact" not in run.summary and "warning" not in capsys.readouterr().err


def test_a_run_file_is_read_once_wandb_has_written_its_exit_record(tmp_path):
    """``run.finish()`` returns before W&B's core writes the run's records (half the runs read at once held only
    the file header): the reader waits for the ``exit`` record, then reads the whole run."""
    import threading

    import wandb

    settings = wandb.Settings(silent=True, console="off")
    run = wandb.init(mode="offline", project="t", dir=str(tmp_path), settings=settings)
    run.summary["answer"] = 42
    run.finish()
    wandb.teardown()  # the service writes everything before it stops
    (written,) = glob.glob(str(tmp_path / "wandb/offline-run-*/run-*.wandb"))
    whole = Path(written).read_bytes()
    late = tmp_path / "late"
    late.mkdir()
    (late / Path(written).name).write_bytes(whole[:7])  # what a reader found right after finish(): the header
    timer = threading.Timer(0.3, lambda: (late / Path(written).name).write_bytes(whole))
    timer.start()
    try:
        assert read_offline_run(late).summary["answer"] == 42
    finally:
        timer.join()
    (late / Path(written).name).write_bytes(whole[:7])  # a run killed before it finished: read as it is
    assert read_offline_run(late, wait_s=0.1).summary == {}


def _logged_values(run) -> dict:
    """What a sweep run logged, without what differs between any two runs (file paths, artifact ids)."""
    out = {}
    for key, value in run.logged.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ("path", "artifact_path", "_latest_artifact_path")}
        out[key] = value
    return out


def _artifact_digests(run) -> list:
    """The run's table artifacts: (type, file name, digest, size) of each file (what ``wandb sync`` uploads)."""
    from xaibench.report.wandb_reader import iter_records

    (path,) = run.path.glob("run-*.wandb")
    return sorted((record.artifact.type, entry.path, entry.digest, entry.size) for record in iter_records(path)
                  if record.WhichOneof("record_type") == "artifact" for entry in record.artifact.manifest.contents)


def test_the_streamed_sweep_run_logs_what_the_whole_frames_run_logged(logged, tmp_path, monkeypatch):
    """The sweep run builds its tables a slice at a time with one string per distinct text, and draws, logs and
    clears its figures one at a time; the run it writes holds what the former one did (``wandb.Table(dataframe=)``
    of the whole frame, every figure drawn first): the same table files and table artifacts (digests), the same
    table metadata (rows, columns, hash) and the same images (hashes), in the same order."""
    import wandb
    from omegaconf import OmegaConf

    from xaibench.report import streamed_figures, wandb_sink
    from xaibench.report.build import rank_statistics

    root, table, _, _ = logged
    path, store = root / "results/runs/wb/table.parquet", root / "results/store"
    summary = xaibench.summarize(table)
    summary.loc[summary.index[summary["rank"].notna()][0], "rank"] = pd.NA  # a method's missing rank (an error
    # row's; the control's 3 rows have none: a reference is never ranked) and a missing CI, logged as null
    summary.loc[2, ["ci_low", "ci_high"]] = np.nan
    ranks, friedman, agreement = rank_statistics(summary)
    by_metric = ranks[ranks["by"] == "metric"]
    monkeypatch.setattr(wandb_sink, "_SLICE", 4)  # slices of 4 rows: 6 summary rows in two
    runs = {}
    for how in ("former", "streamed"):
        with monkeypatch.context() as patch:
            if how == "former":
                patch.setattr(wandb_sink, "_table", lambda frame: wandb.Table(dataframe=wandb_sink._plain(frame)))
                figures = streamed_figures.streamed_figures(path, summary, store, ranks=by_metric, friedman=friedman,
                                                            agreement=agreement)
            else:
                figures = streamed_figures.iter_streamed_figures(path, summary, store, ranks=by_metric,
                                                                 friedman=friedman, agreement=agreement)
            cfg = OmegaConf.create({"sweep_id": how, "results_dir": str(tmp_path), "logger": {"mode": "offline"}})
            directory = wandb_sink.log_sweep(tmp_path / how, None, summary, cfg, figures, ranks,
                                             cells=pd.Series({"a": "ok", "b": "error"}), n_rows=len(table))
            runs[how] = read_offline_run(Path(directory).parent)
    former, streamed = runs["former"], runs["streamed"]
    assert list(streamed.logged) == list(former.logged) and "figures/gallery_iris_mlp" in streamed.logged
    assert _logged_values(streamed) == _logged_values(former)
    assert streamed.tables == former.tables and len(streamed.tables["summary"]["data"]) == len(summary) == 6
    logged_summary = pd.DataFrame(streamed.tables["summary"]["data"], columns=streamed.tables["summary"]["columns"])
    assert logged_summary["rank"].isna().sum() == 4 and logged_summary["ci_low"].isna().sum() == 1
    # summary and ranks (saliency and a control: no average ranks, a control is never ranked)
    assert _artifact_digests(streamed) == _artifact_digests(former) and len(_artifact_digests(former)) == 2


def test_the_end_of_a_streamed_sweep_logs_from_the_summary_pieces_what_the_whole_summary_logged(logged, tmp_path,
                                                                                                monkeypatch):
    """``finish_sweep``'s W&B run of a streamed sweep holds neither the table nor the whole summary: the rank
    statistics read their columns of the summary, the figures the columns they draw, the tables the summary's
    first parts (``wandb_sink._head``). Its run holds what the run logged from the whole summary frame did: the
    same values, tables, images and artifact digests, also when the tables are cut (``Table.MAX_ROWS`` = 2: the
    summary's artifact)."""
    import shutil
    import types

    import wandb
    from omegaconf import OmegaConf

    from xaibench.report import wandb_sink
    from xaibench.report.build import rank_statistics
    from xaibench.report.streamed_figures import iter_streamed_figures
    from xaibench.results.collect import write_collected

    root, table, _, _ = logged
    folder, store = tmp_path / "wb", root / "results/store"
    shutil.copytree(root / "results/runs/wb", folder, ignore=shutil.ignore_patterns("wandb*"))
    pieces = write_collected(folder, None, summarize=True, pieces=True).pieces
    whole = pieces.frame()
    assert whole.equals(pd.read_parquet(folder / "summary.parquet"))
    monkeypatch.setattr(wandb.Table, "MAX_ROWS", 2)
    statuses = finishing._cell_statuses(table)

    def config(how: str):
        return OmegaConf.create({"sweep_id": "wb", "results_dir": str(tmp_path), "store_dir": str(store),
                                 "logger": {"name": "wandb", "mode": "offline", "dir": str(tmp_path / how)}})

    ranks, friedman, agreement = rank_statistics(whole)  # the former run: the whole summary frame
    figures = iter_streamed_figures(folder / "table.parquet", whole, store, ranks=ranks[ranks["by"] == "metric"],
                                    friedman=friedman, agreement=agreement)
    wandb_sink.log_sweep(folder, None, whole, config("former"), figures, ranks, cells=statuses, n_rows=len(table))
    wandb_run._log_sweep(config("pieces"), folder, pieces, statuses, n_rows=len(table))
    former, streamed = (read_offline_run(glob.glob(str(tmp_path / how / "wandb/offline-run-*"))[0])
                        for how in ("former", "pieces"))
    assert list(streamed.logged) == list(former.logged) and any(k.startswith("figures/") for k in streamed.logged)
    assert _logged_values(streamed) == _logged_values(former) and streamed.tables == former.tables
    assert streamed.summary["summary/rows"] == len(whole) > 2 == streamed.summary["summary/rows_logged"]
    assert _artifact_digests(streamed) == _artifact_digests(former)
    assert any(entry[:2] == ("results", "summary.parquet") for entry in _artifact_digests(streamed))

    parts = types.SimpleNamespace(pieces=lambda: iter([whole.iloc[:2], whole.iloc[2:3], whole.iloc[3:]]))
    for limit in (1, 2, 3, 4, 100):  # the first rows across parts, and every row counted
        head, n_rows = wandb_sink._head(parts, limit)
        assert head.reset_index(drop=True).equals(whole.head(limit)) and n_rows == len(whole)
        ranked = whole[whole["rank"].notna()]
        head, n_rows = wandb_sink._head(parts, limit, ranked=True)
        expected = ranked[wandb_sink._rank_columns(ranked)].head(limit).reset_index(drop=True)
        assert head.reset_index(drop=True).equals(expected) and n_rows == len(ranked)
