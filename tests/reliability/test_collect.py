"""Collect: conform once after concatenation, and the streaming writer, give exactly the in-memory table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xaibench.engine.store import Store
from xaibench.results.collect import (
    collect_store_report, collect_sweep, load_table, write_collected)
from xaibench.results.schema import COLUMNS, ROW_KEY, conform, sort_rows


def cell_frame(index: int, model: str, method: str, seed: int, metrics: list[str], n: int = 3) -> pd.DataFrame:
    rows = {c: [""] * (len(metrics) * n) for c, d in COLUMNS.items() if d == "string"}
    frame = pd.DataFrame(rows).assign(**{c: 0 for c, d in COLUMNS.items() if d == "int64"},
                                      **{c: 0.0 for c, d in COLUMNS.items() if d == "float64"},
                                      **{c: True for c, d in COLUMNS.items() if d == "bool"})
    frame["metric"] = np.repeat(metrics, n)
    frame["sample_id"] = np.tile([f"s{i}" for i in range(n)], len(metrics))
    frame["model"], frame["dataset"], frame["method"], frame["seed"] = model, "d", method, seed
    frame["cell_key"], frame["status"] = f"{index:032x}", "ok"
    frame["value"] = np.arange(len(frame), dtype=float) + index
    return conform(frame)


CELLS = [  # (model, method, seed, metrics): cells 2 and 3 share a group and score stages (suites differ)
    ("b", "m2", 0, ["x", "y"]), ("a", "m1", 1, ["x"]), ("a", "m1", 0, ["x", "y"]), ("a", "m1", 0, ["y", "z"]),
    ("c", "m1", 0, ["z"]), ("a", "m2", 0, ["x", "y", "z"]),
]


@pytest.fixture
def sweep(tmp_path):
    (tmp_path / "cells").mkdir()
    for index, (model, method, seed, metrics) in enumerate(CELLS):
        cell_frame(index, model, method, seed, metrics).to_parquet(tmp_path / "cells" / f"{index:032x}.parquet")
    return tmp_path


def test_conform_once_gives_the_per_frame_table(sweep):
    frames = [conform(pd.read_parquet(p)) for p in sorted((sweep / "cells").glob("*.parquet"))]
    per_frame = sort_rows(pd.concat(frames, ignore_index=True).drop_duplicates(ROW_KEY, keep="last"))
    table = collect_sweep(sweep)
    assert len(table) == len(per_frame) - 3  # the samples cells 2 and 3 share are kept once
    pd.testing.assert_frame_equal(table, collect_sweep(sweep))


@pytest.mark.parametrize("chunk_rows", [1, 7, 10_000])
@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_streaming_collect_writes_the_same_table(sweep, tmp_path, chunk_rows, suffix):
    out = tmp_path / f"out.{suffix}"
    write_collected(sweep, out, chunk_rows=chunk_rows)
    pd.testing.assert_frame_equal(load_table(out), collect_sweep(sweep))


def test_streaming_collect_of_a_store_skips_and_reports_damaged_cells(tmp_path):
    store = Store(tmp_path / "store")
    for index, (model, method, seed, metrics) in enumerate(CELLS):
        store.put_frame("cells", f"{index:032x}", cell_frame(index, model, method, seed, metrics))
    damaged = store.files("cells")[0]
    damaged.write_bytes(damaged.read_bytes().replace(b"XAIBENCH", b"XAIBENCh", 1))
    in_memory = collect_store_report(tmp_path / "store")
    streamed = write_collected(tmp_path / "store", tmp_path / "all.parquet", store=True, chunk_rows=5)
    assert in_memory.skipped == streamed.skipped == [(str(damaged), "not a format-2 artefact (bad magic)")]
    assert in_memory.n_artefacts == streamed.n_artefacts == 6
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "all.parquet"), in_memory.table)
