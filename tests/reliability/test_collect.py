"""Collect: conform once after concatenation, and the streaming writer, give exactly the in-memory table."""
from __future__ import annotations

import json
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


# Streaming summaries and the Arrow path ---------------------------------------------------------------------
from xaibench.results.aggregate import _ranks, summarize  # noqa: E402
from xaibench.results.collect import _unique_rows, summarize_file  # noqa: E402

STATS_CELLS = [  # (model, method, seed): 2 models x 2 methods x 3 seeds, some NaN rows, one shared group
    (model, method, seed) for model in ("a", "b") for method in ("m1", "m2") for seed in (0, 1, 2)]


@pytest.fixture
def stats_sweep(tmp_path):
    """Cells with several seeds (two-way bootstrap), NaN rows, and a variant (another n_samples)."""
    (tmp_path / "cells").mkdir()
    rng = np.random.default_rng(1)
    for index, (model, method, seed) in enumerate(STATS_CELLS):
        frame = cell_frame(index, model, method, seed, ["x", "y", "z"], n=5)
        frame["value"] = rng.normal(size=len(frame))
        nan = rng.random(len(frame)) < 0.15
        frame.loc[nan, "value"], frame.loc[nan, "status"] = np.nan, "nan"
        frame["n_samples"] = 5 if index % 4 else 6  # two configurations of some (model, method) pairs
        frame.to_parquet(tmp_path / "cells" / f"{index:032x}.parquet")
    return tmp_path


@pytest.mark.parametrize("chunk_rows", [1, 40, 10_000])
def test_streamed_summary_equals_the_summary_of_the_whole_table(stats_sweep, tmp_path, chunk_rows):
    table = collect_sweep(stats_sweep)
    expected = summarize(table)
    assert (expected["n_seeds"] == 3).any() and (expected["variant"] != "").any() and expected["ci_low"].notna().all()
    # ranks on the samples a group's competitors all scored, as the report's (the NaN rows make them differ from
    # ranks of the means in some groups): the streamed summaries below rank the same at every chunk size
    from xaibench.results.statistics import shared_sample_ranks
    report = shared_sample_ranks(table, expected)
    pd.testing.assert_series_equal(expected["rank"], report["rank"])
    assert (report["shared_n"] < report["group_n"]).any()
    assert not _ranks(expected).equals(expected["rank"])  # ranked on the means, some groups order otherwise
    collected = write_collected(stats_sweep, tmp_path / "t.parquet", chunk_rows=chunk_rows, summarize=True)
    assert collected.n_rows == len(table)
    pd.testing.assert_frame_equal(collected.summary, expected, check_exact=True)
    pd.testing.assert_frame_equal(write_collected(stats_sweep, None, chunk_rows=chunk_rows, summarize=True).summary,
                                  expected, check_exact=True)
    pd.testing.assert_frame_equal(summarize_file(tmp_path / "t.parquet", chunk_rows=chunk_rows), expected,
                                  check_exact=True)


def test_streamed_summary_cuts_the_same_chunks_whatever_the_row_groups(stats_sweep, tmp_path, monkeypatch, capsys):
    """``summarize_file`` summarises chunks of whole blocks cut at the rows, not at the file's batches: a table in
    row groups that cut blocks (``collect -o``'s 65,536-row groups, read in 20,000-row batches and a short last
    one) gives the chunks a row group per collect chunk gives, and the same summary file. Cut at the batches, the
    short batches made extra small chunks (390 instead of 333 at 10,000 cells, ~8% more CPU: ~30 ms a chunk)."""
    from xaibench.cli import main
    from xaibench.results import aggregate

    table = collect_sweep(stats_sweep)
    expected = summarize(table)
    write_collected(stats_sweep, tmp_path / "per_chunk.parquet", chunk_rows=40, same_bytes=False)  # a block each
    (tmp_path / "cut.parquet").write_bytes(parquet_bytes(table, 120))  # row groups cutting blocks: 120, 60 rows
    assert pq.ParquetFile(tmp_path / "per_chunk.parquet").metadata.num_row_groups == 4
    added, add = [], aggregate.Summarizer.add
    monkeypatch.setattr(aggregate.Summarizer, "add", lambda self, chunk: (added.append(len(chunk)), add(self, chunk)))
    chunks, written = {}, {}
    for layout in ("per_chunk", "cut"):
        added.clear()
        pd.testing.assert_frame_equal(summarize_file(tmp_path / f"{layout}.parquet", chunk_rows=100), expected,
                                      check_exact=True)
        chunks[layout] = list(added)
        with pytest.raises(SystemExit) as exited:
            main(["summary", str(tmp_path / f"{layout}.parquet"), "-o", str(tmp_path / f"{layout}.csv")])
        assert exited.value.code == 0
        written[layout] = (tmp_path / f"{layout}.csv").read_bytes()
    assert len(table) == 180 and chunks["per_chunk"] == chunks["cut"] == [90, 90]  # blocks of 45 rows, two a chunk
    assert written["per_chunk"] == written["cut"]


def test_streamed_summary_frees_each_chunks_arrow_rows_before_the_next_is_read(stats_sweep, tmp_path, monkeypatch):
    """No Arrow chunk of ``summarize_file`` outlives its conversion to pandas: when the next chunk's rows are read
    and cut, every earlier chunk is gone. The loop's name, enumerate's reused tuple and the cutter's whole table
    held the previous chunk through the next one's read and conversion (~15 MB on each chunk's peak: summary of
    1,000 cells 183.7 -> 167-169 MB, docs/speed.md, mem22)."""
    import weakref

    from xaibench.results.collect import summarize_stream

    table = collect_sweep(stats_sweep)
    write_collected(stats_sweep, tmp_path / "t.parquet", chunk_rows=40)
    chunks, alive_at_cut = [], []
    new_blocks, block_cut = summarize_stream._new_blocks, summarize_stream._block_cut

    def noted(chunk, seen):
        chunks.append(weakref.ref(chunk))
        return new_blocks(chunk, seen)

    def cut(rows, chunk_rows):
        alive_at_cut.append(sum(ref() is not None for ref in chunks))
        return block_cut(rows, chunk_rows)

    monkeypatch.setattr(summarize_stream, "_new_blocks", noted)
    monkeypatch.setattr(summarize_stream, "_block_cut", cut)
    pd.testing.assert_frame_equal(summarize_file(tmp_path / "t.parquet", chunk_rows=40), summarize(table),
                                  check_exact=True)
    assert len(chunks) == 4 and len(alive_at_cut) >= len(chunks) - 1  # 180 rows in blocks of 45: a block a chunk
    assert alive_at_cut == [0] * len(alive_at_cut)
    assert all(ref() is None for ref in chunks)


def test_the_summary_holds_no_whole_parquet_footer_while_its_table_streams(stats_sweep, tmp_path, monkeypatch, capsys):
    """While ``xaibench summary t.parquet`` summarises the chunks of a table of several row groups, no parsed
    footer of more than one row group is alive: pyarrow keeps the whole ``FileMetaData`` (37 KB a row group of
    the results schema: 3.6 MB at 10,000 cells) while any row group is read, and the command (its
    ``read_metadata``) and ``summarize_file`` (its ``ParquetFile``) each held one through the read (mem24)."""
    import gc

    from xaibench.cli import main
    from xaibench.results import aggregate

    table = collect_sweep(stats_sweep)
    (tmp_path / "t.parquet").write_bytes(parquet_bytes(table, 40))  # 5 row groups cutting blocks
    assert pq.ParquetFile(tmp_path / "t.parquet").metadata.num_row_groups == 5
    footers, add = [], aggregate.Summarizer.add

    def noted(self, chunk):
        gc.collect()
        footers.append(sorted(o.num_row_groups for o in gc.get_objects() if type(o) is pq.FileMetaData))
        return add(self, chunk)

    streamed = collect_module.summarize_file
    monkeypatch.setattr(aggregate.Summarizer, "add", noted)
    monkeypatch.setattr(collect_module, "summarize_file",  # the command's, in chunks of a block (45 rows)
                        lambda path, pieces=False: streamed(path, chunk_rows=50, pieces=pieces))
    with pytest.raises(SystemExit) as exited:
        main(["summary", str(tmp_path / "t.parquet"), "-o", str(tmp_path / "s.parquet")])
    assert exited.value.code == 0
    assert len(footers) == 4 and all(footers[:3]), footers  # a row group being read at each but the last chunk
    assert all(max(counts, default=1) == 1 for counts in footers), footers
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "s.parquet"), summarize(table), check_exact=True,
                                  check_column_type=False)


def test_a_streamed_chunk_holds_no_rows_of_the_batch_the_chunk_before_it_ended_in(stats_sweep, tmp_path):
    """A chunk that begins inside a batch (the rest of the one the last cut straddled) begins with a copy of that
    rest, not a view: pandas keeps a chunk's texts as Arrow, and a view keeps its whole batch, so each chunk held
    the previous chunk's last rows, up to a batch (5,000 rows, ~5 MB at 10,000 cells). The chunks' rows and the
    summary are the same."""
    from xaibench.results.collect import summarize_stream

    table = collect_sweep(stats_sweep)
    batches = [pa.RecordBatch.from_pandas(table.iloc[start:start + 35], preserve_index=False)  # as a reader's
               for start in range(0, len(table), 35)]
    arrow = pa.Table.from_batches(batches)
    chunks = list(summarize_stream._block_chunks(iter(batches), 100))
    assert [len(chunk) for chunk in chunks] == [90, 90]  # blocks of 45 rows; batches of 35 cut inside them
    assert pa.concat_tables(chunks).equals(arrow)
    for before, chunk in zip(chunks, chunks[1:]):
        for name in chunk.column_names:
            first, last = chunk[name].chunk(0), before[name].chunk(before[name].num_chunks - 1)
            shared = {b.address for b in first.buffers() if b} & {b.address for b in last.buffers() if b}
            assert first.offset == 0 and not shared, name
    path = tmp_path / "t.parquet"
    path.write_bytes(parquet_bytes(table, 1000))
    pd.testing.assert_frame_equal(summarize_file(path, chunk_rows=100), summarize(table), check_exact=True)


def test_summary_of_an_unsorted_table_is_not_streamed_but_still_right(stats_sweep, tmp_path, capsys):
    from xaibench.cli import main

    table = collect_sweep(stats_sweep)
    table.sample(frac=1, random_state=0).to_parquet(tmp_path / "shuffled.parquet")
    assert summarize_file(tmp_path / "shuffled.parquet", chunk_rows=7) is None
    with pytest.raises(SystemExit) as done:
        main(["summary", str(tmp_path / "shuffled.parquet"), "-o", str(tmp_path / "s.parquet")])
    assert done.value.code == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "s.parquet"), summarize(table), check_column_type=False)


def test_arrow_duplicate_removal_equals_pandas():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": pd.array(rng.choice(["x", "y", "", None], 300), dtype="string"),
                          "b": rng.integers(0, 3, 300), "c": pd.array(rng.choice(["p", "q"], 300), dtype="string")})
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    for keys in (["a"], ["a", "b"], ["c", "b", "a"]):
        for last in (True, False):
            expected = frame.drop_duplicates(keys, keep="last" if last else "first").reset_index(drop=True)
            pd.testing.assert_frame_equal(_unique_rows(table, keys, last=last).to_pandas(), expected)


def test_cells_of_other_dtypes_are_conformed_as_pandas_conform_does(sweep, tmp_path):
    """A cell file whose columns have other types (ints for floats, nulls in strings) goes through conform."""
    expected = collect_sweep(sweep)
    odd = pd.read_parquet(sorted((sweep / "cells").glob("*.parquet"))[0]).astype(object)
    odd["value"] = odd["value"].astype(int)  # whole numbers stored as int64
    odd["message"] = None
    odd.to_parquet(sorted((sweep / "cells").glob("*.parquet"))[0])
    table = collect_sweep(sweep)
    assert table.dtypes.equals(expected.dtypes)
    assert table["message"].isna().sum() == len(odd) and (table["value"] == expected["value"]).all()


# The end of a sweep, streamed -------------------------------------------------------------------------------
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from xaibench import sweep as sweep_module  # noqa: E402
from xaibench.engine.store import frame_to_parquet_bytes  # noqa: E402
from xaibench.results import collect as collect_module, manifest  # noqa: E402
from xaibench.results.collect import streaming as collect_streaming  # noqa: E402  (write_collected reads its sizes)


def running(folder, expected_cells: int) -> None:
    """The folder as a running sweep that expects ``expected_cells`` and has written its cells."""
    (folder / "cells").rename(folder / "written")
    manifest.begin(folder, expected_cells)
    (folder / "written").rename(folder / "cells")


def parquet_bytes(frame: pd.DataFrame, row_group_rows: int) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, row_group_size=row_group_rows)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize("chunk_rows, row_group_rows", [(None, None), (40, 7), (1, 100)])
def test_finish_sweep_streams_the_files_the_in_memory_finish_writes(stats_sweep, monkeypatch, capsys, chunk_rows,
                                                                    row_group_rows):
    """Chunks cut between blocks and row groups cut anywhere (several of each, one shorter at the end) give the
    bytes ``write_table`` gives for the whole table; the summary file is the whole table's summary's."""
    table = collect_sweep(stats_sweep)
    if chunk_rows:
        monkeypatch.setattr(collect_streaming, "CHUNK_ROWS", chunk_rows)
    if row_group_rows:
        monkeypatch.setattr(collect_streaming, "ROW_GROUP_ROWS", row_group_rows)
    running(stats_sweep, len(STATS_CELLS))
    assert sweep_module.finish_sweep(stats_sweep) is None  # streamed: nothing held to return
    expected = parquet_bytes(table, row_group_rows) if row_group_rows else frame_to_parquet_bytes(table)
    assert (stats_sweep / "table.parquet").read_bytes() == expected
    assert pq.ParquetFile(stats_sweep / "table.parquet").metadata.num_row_groups == (
        -(-len(table) // row_group_rows) if row_group_rows else 1)
    assert (stats_sweep / "summary.parquet").read_bytes() == frame_to_parquet_bytes(summarize(table))
    assert manifest.read_state(stats_sweep).finished and sweep_module.exit_code() == 0
    assert f"{len(STATS_CELLS)} cells ({len(STATS_CELLS)} ok); {len(table)} rows" in capsys.readouterr().out


@pytest.mark.parametrize("row_group_rows", [None, 7])
def test_collect_o_writes_the_row_groups_and_bytes_write_table_gives(sweep, tmp_path, monkeypatch, capsys,
                                                                     row_group_rows):
    """``xaibench collect SWEEP -o t.parquet`` cuts ``ROW_GROUP_ROWS``-row row groups across its ~20,000-row chunks
    (here 1-row chunks), as ``finish_sweep`` and ``write_table`` do: the same bytes as the whole table written in
    memory. It wrote a row group per chunk before (332 at 10,000 cells: a footer every reader parses whole)."""
    from xaibench.cli import main

    table = collect_sweep(sweep)
    monkeypatch.setattr(collect_streaming, "CHUNK_ROWS", 1)
    if row_group_rows:
        monkeypatch.setattr(collect_streaming, "ROW_GROUP_ROWS", row_group_rows)
    out = tmp_path / "t.parquet"
    with pytest.raises(SystemExit) as exited:
        main(["collect", str(sweep), "-o", str(out), "--no-summary"])
    assert exited.value.code == 0
    expected = parquet_bytes(table, row_group_rows) if row_group_rows else frame_to_parquet_bytes(table)
    assert out.read_bytes() == expected
    assert pq.ParquetFile(out).metadata.num_row_groups == (-(-len(table) // row_group_rows) if row_group_rows else 1)
    pd.testing.assert_frame_equal(load_table(out), table)


def test_the_same_bytes_writer_holds_one_row_group_not_two(monkeypatch):
    """Each row group is written holding its own rows plus at most the chunk that straddles it (Arrow's
    allocated bytes, an exact count): the former writer kept the previous row group's table alive while the next
    one filled (two row groups, 3.0 GB at 10,000 cells instead of 1.7 GB)."""
    frame = pd.concat([cell_frame(i, "a", "m", 0, ["x", "y"], n=50) for i in range(12)], ignore_index=True)
    whole, held, sizes, row_group_rows = collect_module._frame_table(frame), [], [], 350
    write = pq.ParquetWriter.write_table

    def observed(self, table, row_group_size=None):
        held.append(pa.total_allocated_bytes() - baseline)
        return write(self, table, row_group_size)

    def fed():  # chunks of 100 rows, each in its own buffers, made when the writer asks
        for start in range(0, len(frame), 100):
            before = pa.total_allocated_bytes()
            chunk = whole.take(np.arange(start, start + 100))  # a copy
            sizes.append(pa.total_allocated_bytes() - before)
            yield chunk
            del chunk

    monkeypatch.setattr(pq.ParquetWriter, "write_table", observed)
    sink = pa.BufferOutputStream()
    baseline = pa.total_allocated_bytes()
    collect_module._write_parquet(sink, fed(), row_group_rows)
    assert len(held) == -(-len(frame) // row_group_rows) == 4
    chunk_bytes = max(sizes)
    # The row group's 3.5 chunks, the straddling chunk, and per-column buffers that do not shrink with these tiny
    # chunks (schema v4's two columns took it from 4.94 to 5.09 chunks); two row groups would be 7 chunks or more.
    assert max(held) <= (row_group_rows // 100 + 3) * chunk_bytes < 2 * row_group_rows // 100 * chunk_bytes
    assert pq.read_table(pa.BufferReader(sink.getvalue())).num_rows == len(frame)


def test_a_streamed_finish_short_of_cells_keeps_the_previous_table(stats_sweep, capsys):
    (stats_sweep / "table.parquet").write_bytes(b"previous")
    running(stats_sweep, len(STATS_CELLS) + 1)  # one job could not write its cell
    sweep_module.finish_sweep(stats_sweep, echo=False)
    assert sweep_module.exit_code() == 1
    err = capsys.readouterr().err  # said once, not a silent exit code
    assert err.count("\n") == 1 and f"incomplete ({len(STATS_CELLS)} of {len(STATS_CELLS) + 1} cells written)" in err
    assert sorted(p.name for p in stats_sweep.iterdir()) == ["cells", "sweep.json", "table.parquet"]  # no temp file
    assert (stats_sweep / "table.parquet").read_bytes() == b"previous" and not manifest.read_state(stats_sweep).finished


def test_a_streamed_finish_reports_the_first_errors_and_sets_the_exit_code(stats_sweep, capsys):
    path = sorted((stats_sweep / "cells").glob("*.parquet"))[1]
    frame = pd.read_parquet(path)
    frame.loc[frame["metric"] == "y", ["status", "message"]] = ["error", "boom"]
    frame.to_parquet(path)
    running(stats_sweep, len(STATS_CELLS))
    sweep_module.finish_sweep(stats_sweep)
    captured = capsys.readouterr()
    assert sweep_module.exit_code() == 1 and "  error: boom" in captured.err
    assert f"{len(STATS_CELLS)} cells (1 error, {len(STATS_CELLS) - 1} ok)" in captured.out
    # Read later: the record and the summary say how many cells failed and what retries them (before: sweep.json
    # said only "finished", and summary showed ERROR in the table with no count and no next step).
    assert json.loads((stats_sweep / "sweep.json").read_text())["cell_statuses"] == {"error": 1,
                                                                                      "ok": len(STATS_CELLS) - 1}
    from xaibench.cli import main

    with pytest.raises(SystemExit) as done:
        main(["summary", str(stats_sweep)])
    assert done.value.code == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"1 of {len(STATS_CELLS)} cells ended in error (not stored); rerun the sweep's command to retry them (stored "
        f"cells are not recomputed)")


def test_cells_without_footer_statistics_are_ordered_by_their_first_row(sweep, tmp_path):
    """The streaming collect orders cells by the group in their footers' statistics; a file without them is
    read instead (same table)."""
    expected = collect_sweep(sweep)
    for path in sorted((sweep / "cells").glob("*.parquet"))[::2]:
        pq.write_table(pq.read_table(path), path, write_statistics=False)
    write_collected(sweep, tmp_path / "t.parquet", chunk_rows=7)
    pd.testing.assert_frame_equal(load_table(tmp_path / "t.parquet"), expected)

    # The plan, held while the table streams, keeps each cell's path as text and one string per distinct group
    # name, from footers and first rows alike (a Path and a name string per cell were ~0.5 KB: 7.6 MB at 10k cells).
    from xaibench.results.collect import _shared_groups, _sweep_items

    items = _shared_groups(_sweep_items(sweep))
    assert len(items) == len(CELLS) and all(type(path) is str for _, path, _ in items)
    names = {}
    for group, _, _ in items:
        for name in group[:3]:
            assert names.setdefault(name, name) is name


def test_every_writer_cuts_the_same_row_groups_so_a_table_has_one_set_of_bytes():
    """The in-memory writers (pandas, Arrow) and the streamed one cut a table of more than ``ROW_GROUP_ROWS``
    rows into the same row groups of 65,536 rows (the streamed writer's memory is one row group): same bytes,
    whatever the chunks, and the same frame read back."""
    from xaibench.engine.store import ROW_GROUP_ROWS, table_to_parquet_bytes

    frame = cell_frame(0, "a", "m", 0, ["x", "y"], n=ROW_GROUP_ROWS // 2 + 50)  # 65,636 rows
    whole = collect_module._frame_table(frame)
    in_memory = frame_to_parquet_bytes(frame)
    assert table_to_parquet_bytes(pa.Table.from_pandas(frame, preserve_index=False)) == in_memory
    for chunk_rows in (10_000, 65_536, 70_000):
        sink = pa.BufferOutputStream()
        chunks = (whole.slice(start, chunk_rows) for start in range(0, whole.num_rows, chunk_rows))
        collect_module._write_parquet(sink, chunks, ROW_GROUP_ROWS)
        assert sink.getvalue().to_pybytes() == in_memory
    metadata = pq.ParquetFile(pa.BufferReader(in_memory)).metadata
    assert ROW_GROUP_ROWS == 65_536 and [metadata.row_group(i).num_rows for i in range(2)] == [65_536, 100]
    pd.testing.assert_frame_equal(pd.read_parquet(pa.BufferReader(in_memory)), frame)


@pytest.mark.parametrize("name", ["table.parquet", "table.csv"])
def test_summary_and_report_of_a_git_lfs_pointer_name_the_fix(tmp_path, capsys, name):
    """A checkout without Git LFS leaves a pointer where the table was: every verb that reads a table (not only
    compare) says so and how to fetch it, in one line, exit 2, instead of "not a readable Parquet file"."""
    from xaibench.cli import main

    pointer = tmp_path / name
    pointer.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 81231\n")
    for argv in (["summary", str(pointer)], ["report", str(pointer), "--out", str(tmp_path / "r")]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        err = capsys.readouterr().err
        assert done.value.code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"table {pointer} is a Git LFS pointer, not the table: fetch it with git lfs pull" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_collect_store_records_the_role_of_control_cells_stored_before_roles_were_recorded(tmp_path):
    """reliab11: a sweep that reuses a `random` cell stored before rows recorded roles stamps `"role": "control"`
    on its rows (engine/stamp.py); `collect --store` returned them without it, so the two tables of the same cells
    differed and a table could mix the control's rows with and without its role. Both store paths (in memory and
    streamed) now record it; a user method's rows are left as they are."""
    import json

    store = Store(tmp_path / "store")
    old = cell_frame(0, "a", "random", 0, ["x"]).assign(method_params='{"positive": false}')
    user = cell_frame(1, "a", "noise", 0, ["x"]).assign(method_params='{"positive": false}')
    fresh = cell_frame(2, "b", "random", 0, ["x"]).assign(method_params='{"role": "control"}')
    for index, frame in enumerate((old, user, fresh)):
        store.put_frame("cells", f"{index:032x}", conform(frame))
    expected = {"random": {json.dumps({"positive": False, "role": "control"}, sort_keys=True),
                           '{"role": "control"}'}, "noise": {'{"positive": false}'}}
    in_memory = collect_store_report(tmp_path / "store").table
    write_collected(tmp_path / "store", tmp_path / "out.parquet", store=True, chunk_rows=1)
    for table in (in_memory, load_table(tmp_path / "out.parquet")):
        assert {m: set(rows["method_params"]) for m, rows in table.groupby("method")} == expected
    pd.testing.assert_frame_equal(load_table(tmp_path / "out.parquet"), in_memory)


def test_collect_and_summary_stream_arrow_on_the_streaming_pool_and_restore_the_default(stats_sweep, tmp_path,
                                                                                       monkeypatch):
    """The streamed collect and ``summarize_file`` allocate Arrow from jemalloc (the system pool without it:
    mimalloc kept freed chunks' pages, memory.streaming_arrow_memory), the same table and summary; the default pool
    is back after, and a pool the user chose with ``ARROW_DEFAULT_MEMORY_POOL`` is kept."""
    from xaibench.results import aggregate, memory

    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    default, streaming = pa.default_memory_pool().backend_name, memory._streaming_pool().backend_name
    assert streaming in ("jemalloc", "system") and streaming != default
    expected = summarize(collect_sweep(stats_sweep))
    seen = []
    add = aggregate.Summarizer.add
    monkeypatch.setattr(aggregate.Summarizer, "add",
                        lambda self, frame: seen.append(pa.default_memory_pool().backend_name) or add(self, frame))
    collected = write_collected(stats_sweep, tmp_path / "t.parquet", chunk_rows=40, summarize=True)
    assert len(seen) > 1 and set(seen) == {streaming} and pa.default_memory_pool().backend_name == default
    pd.testing.assert_frame_equal(collected.summary, expected, check_exact=True)
    seen.clear()
    pd.testing.assert_frame_equal(summarize_file(tmp_path / "t.parquet", chunk_rows=40), expected, check_exact=True)
    assert len(seen) > 1 and set(seen) == {streaming} and pa.default_memory_pool().backend_name == default
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", default)
    seen.clear()
    summarize_file(tmp_path / "t.parquet", chunk_rows=40)
    assert set(seen) == {default}
