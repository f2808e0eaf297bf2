"""Errors in the user's data files are reported before torch is imported (one line, exit code 2)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import cli_env

PROBE = """
import sys
from xaibench.cli import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    print(done.code, "torch" in sys.modules)
"""


@pytest.mark.parametrize(("args", "message"), [
    (["dataset.path=missing.csv", "dataset.target=label"], "file not found: missing.csv"),
    (["dataset.path=t.csv", "dataset.target=y"], "target column 'y' not in the file; columns: a, b, label"),
    (["dataset.path=t.csv", "dataset.target=label", "dataset.features=[a,zz]"], r"feature column(s) zz not in"),
    (["dataset.path=t.csv", "dataset.target=label", "n_samples=50"], "n_samples=50 exceeds the 6 test samples"),
    (["dataset.path=t.csv", "dataset.target=label", "dataset.split_column=part", "n_samples=6"],
     "n_samples=6 exceeds the 5 test samples"),
    (["dataset.path=t.csv", "dataset.target=label", "model=sklearn_estimator", "model.path=nope.skops"],
     "model sklearn_estimator: not found: nope.skops (model.path"),
])
def test_data_errors_come_before_torch_is_imported(tmp_path, args, message):
    rows = "".join(f"{i},{2 * i},{i % 2},{'test' if i < 5 else 'train'}\n" for i in range(20))
    (tmp_path / "t.csv").write_text("a,b,label,part\n" + rows)
    done = subprocess.run([sys.executable, "-c", PROBE, "dataset=csv_table", *args], cwd=tmp_path, env=cli_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["2", "False"], done.stderr
    assert message in done.stderr and done.stderr.count("\n") == 1
