"""A misspelt data, weights or image-folder path gets the closest existing one, as a misspelt model file did."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import cli_env
from tests.unit.test_datachecks import PROBE
from xaibench.config.close_paths import closest_path


@pytest.fixture
def files(tmp_path, monkeypatch):
    """tmp_path as the working folder: ``shop.csv``, ``nets.py``, ``netw.pt``, ``data/train.csv``, ``images/``."""
    monkeypatch.chdir(tmp_path)
    for name in ("shop.csv", "nets.py", "netw.pt", "data/train.csv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x\n")
    (tmp_path / "images").mkdir()
    return tmp_path


@pytest.mark.parametrize("given, kind, meant", [
    ("shop.cvs", "file", "shop.csv"), ("Shop.csv", "file", "shop.csv"), ("./shop.csv.bak", "file", "./shop.csv"),
    ("dat/train.csv", "file", "data/train.csv"), ("data/trian.csv", "file", "data/train.csv"),
    ("net.pt", "file", "netw.pt"), ("imges", "folder", "images"), ("imagse", "any", "images"),
    ("zzz.csv", "file", ""), ("imges", "file", ""),  # nothing close; a folder is not a data file
])
def test_the_closest_existing_path_of_the_kind_asked(files, given, kind, meant):
    assert closest_path(given, kind=kind) == meant


def test_a_weights_or_data_file_is_never_matched_to_the_network_code(files):
    """``net.pt`` must not suggest ``nets.py`` (the class's file, not weights); ``net.py`` still finds it."""
    (files / "netw.pt").unlink()
    assert closest_path("net.pt") == ""
    assert closest_path("net.py", suffixes=(".py",)) == "nets.py"


def test_a_missing_file_in_an_empty_folder_has_no_suggestion_and_no_error(tmp_path):
    """A file missing from an empty folder (a fresh tmp folder) raised difflib's ``ValueError: n must be > 0``
    instead of the "file not found" line (tests/unit/test_datasets.py::test_table_file_errors caught it)."""
    assert closest_path(str(tmp_path / "nope.csv")) == ""
    (tmp_path / "empty").mkdir()
    assert closest_path(str(tmp_path / "empty" / "nope.csv")) == "" and closest_path(str(tmp_path / "emty")) == ""


@pytest.mark.parametrize(("args", "message"), [
    (["dataset.path=t.cvs", "dataset.target=label"], "file not found: t.cvs (relative paths start at {cwd}); "
                                                      "did you mean dataset.path=t.csv?"),
    (["dataset.path=t.csv", "dataset.target=label", "model=sklearn_estimator", "model.path=m.skop"],
     "model sklearn_estimator: not found: m.skop (model.path; relative paths start at {cwd}); did you mean "
     "model.path=m.skops?"),
    (["dataset.path=t.csv", "dataset.target=label", "dataset.path=zzz.csv"], "file not found: zzz.csv (relative "
                                                                            "paths start at {cwd})\n"),
])
def test_the_cli_names_the_close_file_before_torch_is_imported(tmp_path, args, message):
    """A misspelt ``dataset.path`` or ``model.path`` said only "file not found" (``model.target`` had its
    did-you-mean): one line, exit 2, torch not imported."""
    rows = "".join(f"{i},{2 * i},{i % 2}\n" for i in range(20))
    (tmp_path / "t.csv").write_text("a,b,label\n" + rows)
    (tmp_path / "m.skops").write_bytes(b"")
    done = subprocess.run([sys.executable, "-c", PROBE, "dataset=csv_table", *args], cwd=tmp_path, env=cli_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["2", "False"], done.stderr
    assert message.format(cwd=tmp_path) in done.stderr and done.stderr.count("\n") == 1
