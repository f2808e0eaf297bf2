"""``xaibench report``'s default store: the one the sweep ran with, relative paths taken from where it ran."""
from __future__ import annotations

import pytest

from xaibench.commands.report import sweep_store

DEFAULT = "${oc.env:XAIBENCH_STORE,results/store}"


def sweep_folder(root, store_dir, results_dir="results/runs", sweep_id="quickstart"):
    folder = root / results_dir / sweep_id
    job = folder / "jobs" / "0" / ".hydra"
    job.mkdir(parents=True)
    (job / "config.yaml").write_text(f"sweep_id: {sweep_id}\nresults_dir: {results_dir}\nstore_dir: '{store_dir}'\n")
    return folder


@pytest.mark.parametrize("store_dir, expected", [(DEFAULT, "results/store"), ("my store", "my store")])
def test_a_relative_store_is_where_the_sweep_ran_not_where_the_report_runs(tmp_path, monkeypatch, store_dir,
                                                                             expected):
    """The quickstart's default store is ``results/store`` of the folder it ran in; ``xaibench report
    project/results/runs/quickstart`` from another folder looked in that folder's results/store, found no stored
    explanations and wrote the report without its galleries."""
    monkeypatch.delenv("XAIBENCH_STORE", raising=False)
    folder = sweep_folder(tmp_path / "project", store_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert sweep_store(folder) == str(tmp_path / "project" / expected)


def test_an_absolute_or_environment_store_is_kept_and_an_unknown_layout_is_left_to_the_default(tmp_path,
                                                                                               monkeypatch):
    monkeypatch.setenv("XAIBENCH_STORE", str(tmp_path / "env-store"))
    assert sweep_store(sweep_folder(tmp_path / "a", DEFAULT)) == str(tmp_path / "env-store")
    assert sweep_store(sweep_folder(tmp_path / "b", str(tmp_path / "abs"))) == str(tmp_path / "abs")
    monkeypatch.delenv("XAIBENCH_STORE")
    moved = sweep_folder(tmp_path / "c", DEFAULT)
    renamed = moved.rename(moved.parent / "renamed")  # no longer results_dir/sweep_id: where it ran is unknown
    assert sweep_store(renamed) is None
    assert sweep_store(tmp_path / "c" / "results" / "runs" / "table.parquet") is None
