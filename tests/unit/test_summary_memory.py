"""The summary's memory stays flat in the table's size and its output is unchanged: bootstrap values spilled to
disk, chunk summaries merged and concatenated a column at a time, a long console summary formatted in blocks."""
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from tests.unit.test_aggregate import rows
from xaibench.results.aggregate import summarize


def test_bootstrap_values_spilled_to_disk_give_the_same_summary_bit_for_bit(monkeypatch):
    """Values waiting for their bootstrap block go to a temporary file beyond ``SPILL_BYTES`` (memory flat in
    the table's size); read back, they give the same CIs, streamed in chunks or whole, for one and several seeds
    and for shapes that fill blocks (``BLOCK`` = 3 here) and shapes that wait to the end."""
    from xaibench.results import aggregate

    rng = np.random.default_rng(0)
    frames = []
    for method in ("a", "b", "c", "d"):
        for seed in (0, 1):
            for metric in ("faith", "sens", "rob"):
                n = int(rng.integers(3, 6))  # samples differ per group: several shapes
                frames.append(rows(method, metric, rng.normal(size=n)).assign(seed=seed))
    table = pd.concat(frames, ignore_index=True)
    table.loc[table.index % 7 == 3, ["value", "status"]] = [np.nan, "nan"]
    single = table[table["seed"] == 0]
    monkeypatch.setattr(aggregate.intervals, "BLOCK", 3)
    expected = {name: summarize(frame) for name, frame in (("seeds", table), ("single", single))}
    monkeypatch.setattr(aggregate.intervals, "SPILL_BYTES", 0)
    spilled = aggregate.Summarizer()
    for method in "abcd":  # streamed: one (model, dataset, method) block per chunk
        spilled.add(table[table["method"] == method])
    assert spilled.intervals.spill is not None and spilled.intervals.held == 0
    pd.testing.assert_frame_equal(spilled.result(), expected["seeds"], check_exact=True)
    pd.testing.assert_frame_equal(summarize(single), expected["single"], check_exact=True)
    assert expected["seeds"]["ci_low"].notna().all() and (expected["seeds"]["n_seeds"] == 2).all()


def test_merging_chunk_summaries_on_the_way_gives_the_same_summary(monkeypatch):
    """The streamed summary concatenates its chunk summaries every ``MERGE`` chunks and puts them in a temporary
    file until the end (memory); the result is the one summary of the whole table."""
    from xaibench.results import aggregate

    table = pd.concat([rows(method, metric, np.arange(4.0) * i) for i, method in enumerate("abcdefg")
                       for metric in ("faith", "sens")], ignore_index=True)
    expected = summarize(table)
    monkeypatch.setattr(aggregate.summarizer, "MERGE", 2)
    streamed = aggregate.Summarizer()
    for method in "abcdefg":
        streamed.add(table[table["method"] == method])
    assert streamed.merged.count == 3 and len(streamed.parts) == 1  # [ab, cd, ef] in the file, g held
    pd.testing.assert_frame_equal(streamed.result(), expected, check_exact=True)


@pytest.mark.parametrize("block_rows", [1, 7, 50])
def test_a_long_console_summary_is_formatted_in_blocks_with_the_whole_tables_text(monkeypatch, block_rows):
    """One line per metric, more than ``TALL_ROWS`` lines: formatted a first-level block at a time (memory), the
    text is pandas' ``to_string`` of the whole frame: same widths, the same blanked repeats, one header; also
    where a level is blank in a whole block (the variant of most datasets)."""
    from xaibench.report import console

    rng = np.random.default_rng(0)
    n = 300
    names = ["dataset", "model", "method", "variant", "family", "metric"]
    datasets = np.sort(rng.choice(["iris", "wine", "breast_cancer", "d"], n))
    frame = pd.DataFrame({
        "dataset": datasets, "model": rng.choice(["mlp (acc 0.97)", "cnn", "logreg (acc 0.50, UNDERFIT)"], n),
        "method": rng.choice(["saliency", "ig", "random"], n),
        "variant": np.where(datasets == "wine", rng.choice(["method.n=1", "method.n=22"], n), ""),
        "family": rng.choice(["faith", "rob"], n), "metric": rng.choice(["pf ↑", "faithfulness_correlation ↓", "x"], n),
        "cell": rng.choice(["0.1 [0.0, 0.2] #1", "nan", "n/a", "-0.123456 [1, 2] #12 seeds=5"], n)})
    tall = frame.sort_values(names).set_index(names)["cell"].rename("mean [95% CI] #rank").to_frame()
    monkeypatch.setattr(console, "TALL_ROWS", block_rows)
    blocks = list(console._tall_blocks(tall))
    assert len(blocks) > 1 and "\n".join(blocks) == tall.to_string()
    table = pd.concat([rows(method, f"metric{k}", np.arange(3.0) + k) for method in ("a", "b") for k in range(8)])
    summary = summarize(table)
    text = console.format_summary(summary)
    monkeypatch.setattr(console, "TALL_ROWS", 10**9)
    assert text == console.format_summary(summary) and text.count("\n") > 16  # one line per metric


def test_the_chunk_summaries_are_concatenated_a_column_at_a_time_as_pd_concat_does():
    """``_concat_releasing`` (the summary is not held twice) gives ``pd.concat``'s frame: values, dtypes (nullable
    ones with missing values too), index and column index; the parts are emptied on the way."""
    from xaibench.results.aggregate import _concat_releasing

    def part(k: int) -> pd.DataFrame:
        return pd.DataFrame({"model": pd.array([f"m{k}", "x"], dtype="string"), "label": ["a", ""],
                             "n": [k, 2], "mean": [0.5, np.nan], "flag": [True, False],
                             "rank": pd.array([1, None], dtype="Int64"), "message": ["", f"boom {k}"]})

    expected = pd.concat([part(k) for k in range(3)], ignore_index=True)
    parts = [part(k) for k in range(3)]
    pd.testing.assert_frame_equal(_concat_releasing(parts), expected, check_exact=True, check_column_type=True)
    assert all(p.shape[1] == 0 for p in parts)


@pytest.mark.parametrize("groups", [1, 2, 255, 257, 513, 700])
def test_bootstrap_bounds_made_a_few_hundred_groups_at_a_time_equal_the_whole_blocks_bit_for_bit(groups):
    """``mean_intervals`` never holds a block's ``(G, n_boot)`` resampled means (memory flat in the block): its
    bounds are ``percentile_interval`` of ``bootstrap_means`` / ``crossed_means`` of the whole block, bit for bit,
    for one seed, for complete and gappy two-way blocks mixed, for resamples that draw nothing (NaN), and for a
    block whose last piece would be one row (numpy multiplies a single row with gemv)."""
    from threadpoolctl import threadpool_limits

    from xaibench.results.bootstrap import bootstrap_means, crossed_means, mean_intervals, percentile_interval

    rng = np.random.default_rng(groups)
    seeds, samples = 3, 40
    grid = rng.normal(size=(groups, seeds * samples))
    grid[rng.random(grid.shape) < 0.6] = np.nan
    grid[rng.random(groups) < 0.4] = rng.normal(size=seeds * samples)  # complete groups between gappy ones
    sparse = np.full((groups, 3 * 4), np.nan)  # each seed scored one sample: some resamples draw none
    sparse[:, 0], sparse[:, 5], sparse[:, 11] = 1.0, rng.normal(size=groups), 2.0
    cases = [(rng.normal(size=(groups, 32)), 1, 0, bootstrap_means), (grid, seeds, samples, crossed_means),
             (sparse, 3, 4, crossed_means)]
    with threadpool_limits(1, "blas"):  # as the summary runs it
        for values, n_seeds, n_samples, means in cases:
            args = (n_seeds, n_samples) if n_seeds > 1 else ()
            whole = percentile_interval(means(values, *args, n_boot=200, seed=3), 0.9)
            pieces = mean_intervals(values, n_seeds=n_seeds, n_samples=n_samples, n_boot=200, level=0.9, seed=3)
            for expected, got in zip(whole, pieces):
                assert np.array_equal(expected.view(np.int64), got.view(np.int64))
    assert np.isnan(crossed_means(sparse, 3, 4, n_boot=200, seed=3)).any()  # the NaN (nanquantile) path ran


def _pieces_table() -> pd.DataFrame:
    """Three datasets x three methods x eight metrics (one line per metric), a method with two parameter sets
    in different datasets (competitor labels depend on the whole table), a control (``random``) ranked first
    somewhere (a warning line), variants and NaN rows; sorted as a streamed table is."""
    rng = np.random.default_rng(0)
    frames = []
    for dataset in ("wine", "iris", "b"):
        for method in ("saliency", "random", "ig"):
            for k in range(8):
                for n_samples in (4, 5) if (dataset, method) == ("b", "saliency") else (4,):  # variants
                    values = rng.normal(size=4) + (3.0 if method == "random" and k == 0 else 0.0)
                    frame = rows(method, f"metric{k}", values).assign(dataset=dataset, n_samples=n_samples,
                                                                      dataset_label=dataset.upper())
                    frame["method_params"] = '{"n_steps": 8}' if method == "ig" and dataset == "iris" else "{}"
                    frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table.loc[table.index % 11 == 3, ["value", "status"]] = [np.nan, "nan"]
    return table.sort_values(["model", "dataset", "method"], kind="stable", ignore_index=True)


def _streamed(table: pd.DataFrame):
    from xaibench.results import aggregate

    summarizer = aggregate.Summarizer()
    for _, chunk in table.groupby(["model", "dataset", "method"], sort=True):  # a block per chunk
        summarizer.add(chunk)
    return summarizer.finish()


def test_a_summary_handed_out_in_pieces_is_the_whole_summary_and_prints_its_text(monkeypatch):
    """``Summarizer.finish`` keeps the summary in its temporary file: its pieces (two chunks' configurations
    each) carry the whole summary's CIs, competitor labels (``ig (n_steps=None)`` and ``ig (n_steps=8)``: the whole table's) and ranks
    (comparison groups span pieces), and the console prints them a dataset at a time with the whole table's
    text, warning line included, without the frame."""
    from xaibench.report import console
    from xaibench.results import aggregate

    table = _pieces_table()
    whole = summarize(table)
    monkeypatch.setattr(aggregate.summarizer, "MERGE", 2)
    monkeypatch.setattr(console, "TALL_ROWS", 10)  # the streamed layout, not the whole frame's
    pieces = _streamed(table)
    assert len(list(pieces.pieces())) > 3 and pieces.n_rows == len(whole)
    pd.testing.assert_frame_equal(pieces.frame(), whole, check_exact=True)
    assert {"ig (n_steps=None)", "ig (n_steps=8)"} <= set(whole["competitor"]) and (whole["variant"] != "").any()
    text = "\n".join(console.summary_blocks(whole))
    assert "WARNING: a control matches or beats the best method" in text
    monkeypatch.setattr(console, "summary_blocks", lambda frame: pytest.fail("formatted the whole frame"),
                        raising=True)
    assert "\n".join(console._piece_blocks(pieces)) == text
    pieces.close()


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_a_summary_written_in_pieces_has_write_tables_bytes(tmp_path, monkeypatch, suffix):
    """``collect.write_pieces`` writes the pieces with the whole frame's Arrow schema, in the whole file's row
    groups (3 rows here), or as CSV with one header: the bytes ``write_table`` gives for the whole summary. A piece
    whose columns infer another Arrow type (``family`` all missing in one block) falls back to the whole frame."""
    from xaibench.engine import store
    from xaibench.results import aggregate
    from xaibench.results.collect import write_pieces, write_table

    from xaibench.results.collect import writing as collect  # write_pieces falls back on its write_table

    monkeypatch.setattr(aggregate.summarizer, "MERGE", 1)
    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 3)
    table = _pieces_table()
    whole = []
    monkeypatch.setattr(collect, "write_table", lambda frame, path: whole.append(len(frame)) or write_table(frame, path))
    pieces = _streamed(table)
    expected = write_table(summarize(table), tmp_path / f"whole.{suffix}").read_bytes()
    assert write_pieces(pieces, tmp_path / f"pieces.{suffix}").read_bytes() == expected and not whole
    gappy = table.assign(family=table["family"].where(table["method"] != "ig", None))
    expected = write_table(summarize(gappy), tmp_path / f"whole.{suffix}").read_bytes()
    assert write_pieces(_streamed(gappy), tmp_path / f"pieces.{suffix}").read_bytes() == expected and not whole

    class OtherTypes:  # a piece whose column infers another Arrow type: the whole frame is written
        n_rows = len(summarize(table))

        def pieces(self):
            first, second = _streamed(table).frame().iloc[:5], _streamed(table).frame().iloc[5:]
            return iter([first, second.assign(message=np.nan)])

        def frame(self):
            return pd.concat(list(self.pieces()), ignore_index=True)

    expected = write_table(OtherTypes().frame(), tmp_path / f"whole.{suffix}").read_bytes()
    assert write_pieces(OtherTypes(), tmp_path / f"pieces.{suffix}").read_bytes() == expected
    assert whole == ([] if suffix == "csv" else [OtherTypes.n_rows])  # Parquet: the whole frame, its Arrow schema


@pytest.mark.parametrize("missing", ["one block", "every block"])
def test_a_family_missing_in_whole_blocks_is_typed_alike_streamed_or_whole(missing):
    """A (model, dataset, method) block whose ``family`` is all missing summarised alone inferred an object
    column (pandas 3: the rest infer ``str``), so the streamed summary's family column was object and the
    whole one's str; both are now the text dtype, also when every block lacks it."""
    from xaibench.results import aggregate

    table = _pieces_table()
    keep = (table["method"] != "ig") if missing == "one block" else np.zeros(len(table), dtype=bool)
    gappy = table.assign(family=table["family"].astype("string").where(keep, pd.NA))
    whole, streamed = summarize(gappy), _streamed(gappy)
    assert whole["family"].dtype == aggregate._TEXT == pd.Series(["x"]).dtype
    assert all(piece["family"].dtype == aggregate._TEXT for piece in _streamed(gappy).pieces())
    pd.testing.assert_frame_equal(streamed.frame(), whole, check_exact=True)
    assert whole["family"].isna().sum() == ((whole["method"] == "ig").sum() if missing == "one block" else len(whole))


def test_release_memory_hands_freed_heap_pages_back():
    """``memory.release_memory`` returns freed pages inside glibc's heap (which ``free`` keeps: only the top of
    the heap is trimmed on its own), and the streamed collect calls it every ``EVERY_CHUNKS`` chunks."""
    import os

    from xaibench.results.memory import _malloc_trim, release_memory

    if _malloc_trim() is None:
        pytest.skip("not glibc: nothing to trim")

    def resident_mb() -> float:
        with open(f"/proc/{os.getpid()}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    blocks = [bytearray(100_000) for _ in range(1_500)]  # 150 MB of heap blocks (below the mmap threshold)
    for block in blocks:
        block[::4096] = b"x" * len(block[::4096])  # touched: resident
    pinned, blocks = blocks[-1], None  # freed, but the last block keeps the heap's top in place
    before = resident_mb()
    release_memory()
    assert before - resident_mb() > 100
    del pinned


def test_arrow_memory_freed_inside_releasable_arrow_memory_goes_back_and_the_pool_is_restored(tmp_path, monkeypatch):
    """Inside ``memory.releasable_arrow_memory`` Arrow allocates from the system pool, whose freed pages
    ``release_memory`` hands back even while a few live buffers remain (pyarrow's mimalloc pool kept ~60 MB that
    a few buffers pinned after the W&B run's pass over a 10,000-cell table); the previous pool comes back on exit,
    and the end of a sweep logs its W&B summary run inside it."""
    import os

    import pyarrow as pa
    from omegaconf import OmegaConf

    from xaibench import sweep
    from xaibench.results import memory
    from xaibench.sweep import wandb_run

    if memory._malloc_trim() is None:
        pytest.skip("not glibc: nothing to trim")

    def resident_mb() -> float:
        with open(f"/proc/{os.getpid()}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    before_pool = pa.default_memory_pool().backend_name
    with memory.releasable_arrow_memory():
        assert pa.default_memory_pool().backend_name == "system"
        arrays = [pa.array(np.arange(12_500, dtype=np.int64) + i) for i in range(1_500)]  # 150 MB of 100 kB buffers
        kept, arrays = arrays[::100], None  # 15 live buffers scattered among the freed ones
        before = resident_mb()
        memory.release_memory()
        assert before - resident_mb() > 100
        assert [int(a[0].as_py()) for a in kept[:2]] == [0, 100]
    assert pa.default_memory_pool().backend_name == before_pool

    seen = []
    monkeypatch.setattr(wandb_run, "_log_summary_run",
                        lambda *args, **kwargs: seen.append(pa.default_memory_pool().backend_name))
    cfg = OmegaConf.create({"logger": {"name": "wandb"}})
    wandb_run._log_sweep(cfg, tmp_path, pd.DataFrame(), pd.Series(["ok"], index=["cell"]))
    assert seen == ["system"] and pa.default_memory_pool().backend_name == before_pool
    assert (tmp_path / sweep.WANDB_SUMMARY).is_file()


def _settings_chunks(n_settings: int) -> Iterator[pd.DataFrame]:
    """``n_settings`` (model, dataset) settings of 4 methods x 25 metrics x 2 seeds x 3 samples (the same samples
    in every setting, one NaN score per method: shared-sample ranks), a setting per chunk, in a streamed table's
    order; each chunk made when asked for (chunks taken from one large frame would leave pandas' references to them
    in that frame: memory of the test's own)."""
    rng = np.random.default_rng(0)
    methods, metrics = ["a", "b", "c", "random"], [f"metric{k:02d}" for k in range(25)]
    n = len(methods) * len(metrics) * 2 * 3
    for model in range(n_settings):
        status = np.full(n, "ok", dtype=object)
        status[np.arange(len(methods)) * (n // len(methods)) + 3] = "nan"
        values = np.where(status == "ok", rng.normal(size=n), np.nan)
        yield pd.DataFrame({
            "model": f"model{model:03d}", "dataset": "d", "method": np.repeat(methods, n // len(methods)),
            "metric": np.tile(np.repeat(metrics, 6), len(methods)), "family": "f", "higher_is_better": True,
            "sample_id": np.tile(["s0", "s1", "s2"], n // 3), "value": values, "status": status, "message": "",
            "seed": np.tile(np.repeat([0, 1], 3), n // 6)})


def _held_bytes(n_settings: int) -> tuple[int, int]:
    """What a streamed summary of ``_settings_chunks(n_settings)`` holds in memory (tracemalloc: Python objects
    and numpy arrays) after its last chunk, and the most it holds above its start while it finishes and its pieces
    are read."""
    import gc
    import tracemalloc

    from xaibench.results import aggregate

    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        summarizer = aggregate.Summarizer(n_boot=50)
        for chunk in _settings_chunks(n_settings):
            summarizer.add(chunk)
            del chunk
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - start
        tracemalloc.reset_peak()
        pieces = summarizer.finish()
        for piece in pieces.pieces():
            del piece
        peak = tracemalloc.get_traced_memory()[1] - start
        pieces.close()
    finally:
        tracemalloc.stop()
    return held, peak


def test_what_a_streamed_summary_holds_does_not_grow_with_its_settings(monkeypatch):
    """mem17: the streamed summary held every row's rank keys (25 bytes), bootstrap group ids (8), CI bounds and
    ranks (24, and the arrays they were gathered in) and every comparison id's code to its end, and bootstrapped a
    shape's groups a whole block at a time: state that grew with the settings (120,000 summary rows at 10,000
    cells). Now a setting's rank keys go to a temporary file once it is complete, the CIs and ranks to
    ``RowColumns``, the bootstrap streams a chunk at a time. 40 settings (4,000 summary rows) hold about what 10
    (1,000) hold: the old code held 327 KB more after the last chunk and peaked 790 KB higher while finishing, this
    one 32 and 79 KB (one set entry and a few spilled-piece records per setting). Bounded buffers are made small
    (``SPILL_BYTES``: waiting bootstrap values; ``RANK_ROWS``; ``WINDOW``; ``MERGE`` = 1 puts every chunk's summary
    in the file at once). The summary is unchanged (equal to ``summarize`` of the whole table)."""
    from xaibench.results import aggregate, row_columns

    monkeypatch.setattr(aggregate.intervals, "SPILL_BYTES", 0)
    monkeypatch.setattr(aggregate.summarizer, "MERGE", 1)
    monkeypatch.setattr(aggregate.ranks, "RANK_ROWS", 64)
    monkeypatch.setattr(row_columns, "WINDOW", 64)
    _held_bytes(2)  # imports and caches made on first use
    small, large = _held_bytes(10), _held_bytes(40)
    assert large[0] - small[0] < 100_000, (small, large)  # held after the last chunk
    assert large[1] - small[1] < 250_000, (small, large)  # peak while finishing and reading the pieces
    table = pd.concat(list(_settings_chunks(12)), ignore_index=True)
    whole = summarize(table)
    streamed = aggregate.Summarizer()
    for _, chunk in table.groupby(["model", "dataset"], sort=True):
        streamed.add(chunk)
    pd.testing.assert_frame_equal(streamed.result(), whole, check_exact=True)
    assert whole["rank"].notna().any() and whole["rank"].isna().any() and whole["ci_low"].notna().all()


def test_the_summarys_end_releases_memory_after_each_bootstrap_shape_and_before_its_pieces(monkeypatch):
    """``Summarizer.finish`` hands freed memory back (``release_memory``) after each shape's bootstrap and once
    more before the pieces are written: on glibc the end of a 10,000-cell summary kept its bootstrap's freed pages
    resident (153 -> 203 MB across ``finish``, against 141 -> 175 at 1,000 cells; with the releases 154 -> 152 and
    142 -> 140: docs/speed.md, mem19). The summary is unchanged."""
    from xaibench.results import aggregate

    rng = np.random.default_rng(1)
    frames = [rows(method, metric, rng.normal(size=n)).assign(seed=seed)  # three shapes: a grid, 5 and 3 samples
              for method in ("a", "b") for metric, seed, n in (("faith", 0, 4), ("faith", 1, 4), ("sens", 0, 5),
                                                               ("rob", 0, 3))]
    table = pd.concat(frames, ignore_index=True)
    expected = summarize(table)
    calls = []
    for module in (aggregate.summarizer, aggregate.intervals):  # finish, and after each bootstrap shape
        monkeypatch.setattr(module, "release_memory", lambda: calls.append("release"))
    streamed = aggregate.Summarizer()
    for method in "ab":
        streamed.add(table[table["method"] == method])
    shapes = len(streamed.intervals.waiting)
    assert shapes == 3
    pd.testing.assert_frame_equal(streamed.result(), expected, check_exact=True)
    assert len(calls) == shapes + 1


def _summary_table(path) -> None:
    """A small results table (2 methods x 2 seeds x 2 metrics x 3 samples), sorted as ``collect -o`` writes it."""
    from tests.reliability.test_collect import cell_frame
    from xaibench.engine.store import frame_to_parquet_bytes
    from xaibench.results.schema import sort_rows

    cells = [(method, seed) for method in ("m1", "m2") for seed in (0, 1)]
    frames = [cell_frame(index, "a", method, seed, ["x", "y"]) for index, (method, seed) in enumerate(cells)]
    path.write_bytes(frame_to_parquet_bytes(sort_rows(pd.concat(frames, ignore_index=True))))


def test_the_command_line_runs_arrow_on_jemalloc_returning_freed_pages_at_once(tmp_path):
    """``xaibench summary`` run as a process sets Arrow's default pool to jemalloc with no decay before pyarrow
    loads (``memory.configure_arrow_allocator``): the summary's memory between chunks no longer creeps with the
    chunks (10,000 cells: 194 -> 216 MB before, 162 -> 167 after; docs/speed.md, mem21). A pool the user chose is
    kept, and the summary file has the bytes the in-process summary (pyarrow's default pools) writes."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from xaibench.cli import main

    _summary_table(tmp_path / "t.parquet")
    with pytest.raises(SystemExit) as exited:
        main(["summary", str(tmp_path / "t.parquet"), "-o", str(tmp_path / "in_process.csv")])
    assert exited.value.code == 0
    script = ("import atexit, sys\n"
              "def pools():\n"
              "    import pyarrow as pa\n"
              "    print('POOL', pa.default_memory_pool().backend_name, flush=True)\n"
              "    pa.jemalloc_memory_pool().print_stats()\n"
              "atexit.register(pools)\n"
              f"sys.argv = ['xaibench', 'summary', {str(tmp_path / 't.parquet')!r}, '-o', sys.argv[1]]\n"
              "from xaibench.cli import main\n"
              "main()\n")
    env = {k: v for k, v in os.environ.items() if k not in ("ARROW_DEFAULT_MEMORY_POOL", "JE_ARROW_MALLOC_CONF")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    seen = {}
    for name, chosen in (("default", {}), ("chosen", {"ARROW_DEFAULT_MEMORY_POOL": "system"})):
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path / f"{name}.csv")], env={**env, **chosen},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        decay = [line.split()[:2] for line in done.stderr.splitlines() if "decay_ms:" in line and "opt." in line]
        seen[name] = (done.stdout.split("POOL ")[1].split()[0], decay)
        assert (tmp_path / f"{name}.csv").read_bytes() == (tmp_path / "in_process.csv").read_bytes()
    no_decay = [["opt.dirty_decay_ms:", "0"], ["opt.muzzy_decay_ms:", "0"]]
    assert seen == {"default": ("jemalloc", no_decay), "chosen": ("system", no_decay)}


def test_configure_arrow_allocator_keeps_a_users_setting_and_does_nothing_once_pyarrow_is_loaded(monkeypatch):
    """Arrow reads both settings once, when pyarrow loads: afterwards the environment is left as it is; before, a
    value the user set is kept and only the missing one is set: no decay for ``summary``, 100 ms for other verbs
    (``collect -o``: the same peak for less CPU)."""
    import os
    import sys

    from xaibench.results import memory

    monkeypatch.setattr(memory.sys, "platform", "linux")
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    monkeypatch.setenv("JE_ARROW_MALLOC_CONF", "unset below")  # recorded: restored (removed) after the test
    monkeypatch.delenv("JE_ARROW_MALLOC_CONF")
    import pyarrow  # noqa: F401 - loaded: too late to choose its allocator

    memory.configure_arrow_allocator("summary")
    assert "JE_ARROW_MALLOC_CONF" not in os.environ
    monkeypatch.delitem(sys.modules, "pyarrow")
    seen = {}
    for verb in ("summary", "collect", None):
        os.environ.pop("JE_ARROW_MALLOC_CONF", None)
        memory.configure_arrow_allocator(verb)
        seen[verb] = os.environ["JE_ARROW_MALLOC_CONF"]
    assert os.environ["ARROW_DEFAULT_MEMORY_POOL"] == "system"
    assert seen == {"summary": "dirty_decay_ms:0,muzzy_decay_ms:0", "collect": "dirty_decay_ms:100,muzzy_decay_ms:0",
                    None: "dirty_decay_ms:100,muzzy_decay_ms:0"}


def test_configure_arrow_allocator_sets_nothing_for_a_pyarrow_built_without_jemalloc(tmp_path, monkeypatch):
    """A pyarrow without jemalloc (its ``arrow/util/config.h`` lacks ``ARROW_JEMALLOC``) gets no
    ``ARROW_DEFAULT_MEMORY_POOL=jemalloc``: Arrow would print "Unsupported backend 'jemalloc'" at each start, fall
    back to mimalloc, and the streams (which keep a chosen pool) would lose their system-pool fallback; the
    installed pyarrow (built with jemalloc) still gets it."""
    import importlib
    import os
    import sys

    from xaibench.results import memory

    monkeypatch.setattr(memory.sys, "platform", "linux")
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "x")  # recorded: restored (removed) after the test
    monkeypatch.setenv("JE_ARROW_MALLOC_CONF", "x")
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
    monkeypatch.delenv("JE_ARROW_MALLOC_CONF")
    monkeypatch.delitem(sys.modules, "pyarrow")
    memory.configure_arrow_allocator("summary")
    assert os.environ.pop("ARROW_DEFAULT_MEMORY_POOL") == "jemalloc"  # the installed pyarrow has jemalloc
    os.environ.pop("JE_ARROW_MALLOC_CONF")
    header = tmp_path / "pyarrow" / "include" / "arrow" / "util" / "config.h"
    header.parent.mkdir(parents=True)
    (tmp_path / "pyarrow" / "__init__.py").write_text("")
    header.write_text("#define ARROW_VERSION_STRING \"26.0.1\"\n#define ARROW_MIMALLOC\n/* #undef ARROW_JEMALLOC */\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    memory.configure_arrow_allocator("summary")
    assert "ARROW_DEFAULT_MEMORY_POOL" not in os.environ and "JE_ARROW_MALLOC_CONF" not in os.environ
