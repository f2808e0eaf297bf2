"""Two sweeps started together on one store (basic and joblib launchers, overlapping cells): ``collect --store`` is
exactly the union of the two sweeps' tables, no row lost or duplicated, and every artefact verifies. (Before the
single-file artefact format, this lost a whole cell in 2 of 2 runs; the test ran twice from fresh stores until
ci21: one run, ~27 CPU-s, already failed on that format every time, and every suite run repeats it.)"""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import FAST_METRICS, cli_env
from tests.reliability._faults import results
from xaibench.engine.store import Store
from xaibench.engine.store_maintenance import verify
from xaibench.results.collect import collect_store
from xaibench.results.schema import ROW_KEY

COMMON = ["-m", "model=mlp", "dataset=iris", "n_samples=4", *FAST_METRICS]
BASIC = [*COMMON, "method=saliency,random", "sweep_id=a"]
JOBLIB = [*COMMON, "method=random,input_x_gradient", "sweep_id=b", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


@pytest.mark.slow
def test_concurrent_sweeps_on_one_store_lose_and_duplicate_nothing(tmp_path):
    store = tmp_path / "store"
    processes = [subprocess.Popen([sys.executable, "-m", "xaibench", *args, f"store_dir={store}"], cwd=tmp_path,
                                  env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for args in (BASIC, JOBLIB)]
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
    tables = [pd.read_parquet(tmp_path / "results" / "runs" / sweep / "table.parquet") for sweep in ("a", "b")]
    union = pd.concat(tables, ignore_index=True).drop_duplicates(ROW_KEY)
    assert len(union.drop_duplicates("cell_key")) == 3  # 4 cells, 1 shared (random)
    stored = collect_store(store)
    assert not stored.duplicated(ROW_KEY).any()
    pd.testing.assert_frame_equal(results(stored), results(union))
    report = verify(Store(store))
    assert report.damaged == [] and report.temp_files == 0 and report.checked["cells"] == 3
