"""CPU time and peak memory of ``xaibench collect`` (table + summary) on 1,000 and 10,000 cells; print + JSON.

Usage::

    .venv/bin/python benchmarks/bench_collect.py                          # 1,000 cells, 3 repetitions
    .venv/bin/python benchmarks/bench_collect.py --cells 1000 10000 --repeats 2

The cells (20 metrics x 32 samples, 640 rows each: 640k rows for 1,000 cells, 6.4M for 10,000) are written as
a sweep writes them, once, into a cache folder (``benchmarks/_synthetic_cells.py``): a sweep folder of cell
files and a store of format-2 artefacts. Each variant then runs the CLI's own code (``xaibench.cli.main``) in a
fresh process, which reports its CPU time (``time.process_time``: every thread, imports included) and its peak
resident memory (``VmHWM``); repetitions are interleaved (A B C A B C ...) and min/median/max are reported:

- ``imports``: a process that only imports what ``collect`` imports (the floor under every variant);
- ``collect_sweep``: ``xaibench collect <sweep> -o table.parquet`` (writes the table, prints the summary);
- ``collect_store``: ``xaibench collect --store <store> -o table.parquet`` (SHA-256 check of every artefact);
- ``summary``: ``xaibench summary table.parquet`` (the summary of the collected table file);
- ``summary_csv``: ``xaibench summary table.parquet -o summary.csv`` (also writes the summary as CSV);
- ``collect_sweep_streamed``: ``xaibench collect <sweep> -o table.parquet --no-summary`` (the table only);
- ``finish_sweep``: the end of a sweep (``xaibench.sweep.finish_sweep(<sweep>)``: ``table.parquet`` and
  ``summary.parquet`` written into the sweep folder, the summary printed), as a Hydra sweep's callback runs it;
- ``finish_sweep_wandb``: the same with ``logger=wandb`` (offline): also the sweep's W&B summary run (summary and
  rank tables, the report's statistics and figures).

``--first-of 10000`` measures smaller sizes on the first cells (table order) of the 10,000-cell grid instead of
their own grid: the same rows, fewer of them (``_synthetic_cells.first_cells``; the grids differ in their parameter
texts, so their chunks differ in size).

Each worker first sets Arrow's allocator as the command line does (``memory.configure_arrow_allocator``: jemalloc,
freed pages returned at once), before pyarrow loads. ``--arrow-pool mimalloc jemalloc`` runs every variant once
per Arrow memory pool (``ARROW_DEFAULT_MEMORY_POOL``, which is then kept; rows ``variant@pool``, interleaved).

``--profile`` adds each phase's peak RSS (``benchmarks/_memory_phases.py``) to the printout and the JSON.

``--before /work/main`` also runs another checkout's code on the same cells (``before:...`` rows, interleaved),
for sizes up to ``--before-max`` cells (the former ``finish_sweep`` held the whole table: 2.5 GB at 1,000 cells).

Before anything is reported for a size up to ``--check-max`` cells, the collected table and its summary are
checked equal to the former implementation's (every cell read with pandas and conformed, concatenated,
deduplicated and sorted with pandas; ``summarize`` of that table), and ``finish_sweep``'s files byte for byte
equal to ``write_table`` of that table and of its summary.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "collect.json"
VARIANTS = ("imports", "collect_sweep", "collect_store", "summary", "summary_csv", "collect_sweep_streamed",
            "finish_sweep", "finish_sweep_wandb")


def arguments(variant: str, folder: Path, out: Path) -> list[str]:
    """The CLI's arguments for ``variant`` (cells in ``folder``, outputs in ``out``)."""
    return {
        "collect_sweep": ["collect", str(folder / "sweep"), "-o", str(out / "sweep_table.parquet")],
        "collect_store": ["collect", "--store", str(folder / "store"), "-o", str(out / "store_table.parquet")],
        "collect_sweep_streamed": ["collect", str(folder / "sweep"), "-o", str(out / "streamed_table.parquet")],
        "summary": ["summary", str(out / "sweep_table.parquet")],
        "summary_csv": ["summary", str(out / "sweep_table.parquet"), "-o", str(out / "summary.csv")],
        "finish_sweep": ["finish-sweep", str(folder / "sweep")],
        "finish_sweep_wandb": ["finish-sweep", str(folder / "sweep"), "wandb", str(out / "wandb")],
    }.get(variant, [])


def worker(argv: list[str]) -> dict:
    """Run the CLI with ``argv`` in this (fresh) process, output discarded; return CPU seconds and peak RSS."""
    started, cpu = time.perf_counter(), time.process_time()
    try:  # what ``xaibench`` does first as a process: Arrow's allocator, chosen before pyarrow loads
        from xaibench.results.memory import configure_arrow_allocator
    except ImportError:  # a --before checkout without it
        pass
    else:
        configure_arrow_allocator(argv[0] if argv else None)
    from xaibench.cli import main  # noqa: E402 - imports are part of what a user pays
    import xaibench.commands.collect  # noqa: F401
    import xaibench.report.console  # noqa: F401
    import xaibench.results.aggregate  # noqa: F401
    import xaibench.results.collect  # noqa: F401

    sampler = None
    if os.environ.get("XAIBENCH_BENCH_PROFILE"):  # --profile: peak RSS per phase (benchmarks/_memory_phases.py)
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from _memory_phases import instrument

        sampler = instrument(wandb="wandb" in argv)
    code = 0
    if argv[:1] == ["finish-sweep"]:  # the end of a sweep, as Hydra's callback runs it
        from xaibench import sweep

        cfg = _wandb_config(Path(argv[1]), Path(argv[3])) if argv[2:3] == ["wandb"] else None
        with _discarded_stdout():
            sweep.finish_sweep(Path(argv[1]), cfg=cfg)
        code = sweep.exit_code()
    elif argv:
        with _discarded_stdout():
            try:
                main(argv)
            except SystemExit as exit_:
                code = exit_.code or 0
    measured = {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
                "peak_rss_mb": peak_rss_mb(), "exit_code": code}
    written = ([Path(argv[1]) / name for name in ("table.parquet", "summary.parquet")]
               if argv[:1] == ["finish-sweep"] else [Path(argv[-1])] if argv[-2:-1] == ["-o"] else [])
    if written:  # what it wrote, to compare with another checkout's (--before) and between runs
        import hashlib

        measured["sha256"] = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in written}
    if sampler is not None:
        sampler.stop()
        measured["phases"] = sampler.report()
    return measured


@contextlib.contextmanager
def _discarded_stdout():  # -> Iterator[None]
    """What the command prints goes to ``os.devnull``, as to a terminal or a log file: written and gone. (An
    ``io.StringIO`` kept it: the summary printed at 10,000 cells is 24 million characters, ~48 MB held in the
    measured process, ~5 MB at 1,000 cells: the benchmark's own memory, counted as the command's until mem10.)"""
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        yield


def _wandb_config(folder: Path, runs: Path):  # -> DictConfig
    """The config a sweep with ``logger=wandb`` (offline, runs under ``runs``) hands ``finish_sweep``."""
    import shutil

    from omegaconf import OmegaConf

    shutil.rmtree(runs, ignore_errors=True)  # one offline run per repetition, not an accumulating folder
    return OmegaConf.create({"sweep_id": folder.name, "results_dir": str(folder.parent), "store_dir": str(runs / "store"),
                             "logger": {**OmegaConf.to_container(OmegaConf.load(ROOT / "conf/logger/wandb.yaml")),
                                        "dir": str(runs)}})


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``: reset by exec, unlike ``ru_maxrss``, which would count the
    parent's memory at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(variant: str, folder: Path, out: Path, code: Path = ROOT, profile: bool = False) -> dict:
    """``variant`` in a fresh process, importing xaibench from ``code`` (this checkout, or ``--before``'s); a
    ``variant@pool`` runs with ``ARROW_DEFAULT_MEMORY_POOL=pool``."""
    variant, _, pool = variant.partition("@")
    if code != ROOT:
        out = out / "before"
        out.mkdir(exist_ok=True)
    argv = arguments(variant, folder, out)
    if variant.endswith("_streamed"):  # the table only (the former code streamed only this way)
        argv += ["--no-summary"]
    done = subprocess.run([sys.executable, __file__, "--worker", *argv], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(code), "PATH": "/usr/bin:/bin", "HOME": str(out),
                               **({"XAIBENCH_BENCH_PROFILE": "1"} if profile else {}),
                               **({"ARROW_DEFAULT_MEMORY_POOL": pool} if pool else {})})
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["exit_code"]:
        raise RuntimeError(f"{variant} exited {result['exit_code']}: {done.stderr[-500:]}")
    return result


def check_against_former(folder: Path, out: Path, finished: bool) -> None:
    """The streamed table and summary equal the former pandas implementation's (exactly); with ``finished``,
    ``finish_sweep``'s files have the bytes ``write_table`` gives for them."""
    import pandas as pd

    from xaibench.engine.store import frame_to_parquet_bytes
    from xaibench.results.aggregate import summarize
    from xaibench.results.collect import SAMPLE_IDENTITY, sweep_cell_files
    from xaibench.results.schema import ROW_KEY, conform, sort_rows

    frames = [conform(pd.read_parquet(p)) for p in sweep_cell_files(folder / "sweep")]
    table = pd.concat(frames, ignore_index=True).drop_duplicates(subset=ROW_KEY, keep="last")
    table = sort_rows(table.drop_duplicates(subset=SAMPLE_IDENTITY, keep="first"))
    del frames
    pd.testing.assert_frame_equal(pd.read_parquet(out / "sweep_table.parquet"), table, check_exact=True)
    from xaibench.results.collect import write_collected

    streamed = write_collected(folder / "sweep", None, summarize=True, chunk_rows=20_000).summary
    summary = summarize(table)
    pd.testing.assert_frame_equal(streamed, summary, check_exact=True)
    if finished:  # this checkout's finish last (a --before run may have written the files since)
        from xaibench import sweep

        sweep.finish_sweep(folder / "sweep", echo=False)
        assert (folder / "sweep" / "table.parquet").read_bytes() == frame_to_parquet_bytes(table)
        assert (folder / "sweep" / "summary.parquet").read_bytes() == frame_to_parquet_bytes(summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check-max", type=int, default=1000, help="check against the former code up to this")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--before", type=Path, help="another checkout (e.g. main): its collect/summary, interleaved")
    parser.add_argument("--before-max", type=int, default=1000, help="run --before's code up to this many cells")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--first-of", type=int,
                        help="sizes below this use the first cells (table order) of this size's grid: the same rows")
    parser.add_argument("--profile", action="store_true",
                        help="also report peak RSS per phase (sampled; adds a little CPU): benchmarks/_memory_phases.py")
    parser.add_argument("--arrow-pool", nargs="+", choices=("mimalloc", "jemalloc", "system"),
                        help="run every variant once per Arrow memory pool (ARROW_DEFAULT_MEMORY_POOL)")
    parser.add_argument("--worker", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker)))
        return
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # not in workers: their PYTHONPATH picks the code
    from _synthetic_cells import cached_cells, first_cells

    measured = []
    for n_cells in args.cells:
        same_grid = args.first_of and n_cells < args.first_of
        folder = first_cells(n_cells, args.first_of) if same_grid else cached_cells(n_cells)
        out = folder / "out"
        out.mkdir(exist_ok=True)
        before_code = args.before and n_cells <= args.before_max
        codes = {"": ROOT, **({"before:": args.before.resolve()} if before_code else {})}
        variants = [f"{v}@{pool}" for v in args.variants for pool in args.arrow_pool] if args.arrow_pool \
            else args.variants
        before = [v for v in variants if not v.startswith("imports")]
        runs = {prefix + v: [] for prefix in codes for v in (variants if not prefix else before)}
        for _ in range(args.repeats):  # interleaved repetitions
            for name in runs:
                prefix, _, variant = name.rpartition(":")
                runs[name].append(run_variant(variant, folder, out, codes[prefix + ":" if prefix else ""],
                                              profile=args.profile))
        if n_cells <= args.check_max and "collect_sweep" in args.variants:
            check_against_former(folder, out, finished="finish_sweep" in args.variants)
        rows = _rows(out / "sweep_table.parquet")
        for variant, samples in runs.items():
            measured.append({"cells": n_cells, "rows": rows, "variant": variant, "repeats": len(samples),
                             "grid": f"first {n_cells} of {args.first_of}" if same_grid else f"{n_cells}",
                             **{f"{k}_{f.__name__}": f(s[k] for s in samples)
                                for k in ("cpu_seconds", "seconds", "peak_rss_mb")
                                for f in (min, statistics.median, max)},
                             **({"phases": samples[-1]["phases"]} if "phases" in samples[-1] else {}),
                             **({"sha256": sorted({json.dumps(x["sha256"]) for x in samples})}
                                if "sha256" in samples[-1] else {})})
    _report(measured, Path(args.out))


def _rows(table: Path) -> int | None:
    import pyarrow.parquet as pq

    return pq.ParquetFile(table).metadata.num_rows if table.is_file() else None


def _report(measured: list[dict], out: Path) -> None:
    print(f"{'cells':>6} {'rows':>8}  {'variant':<30} {'CPU s (min-max)':>16} {'wall s':>7} {'peak RSS MB':>16}")
    for row in measured:
        cpu = f"{row['cpu_seconds_min']:.1f}-{row['cpu_seconds_max']:.1f}"
        rss = f"{row['peak_rss_mb_min']:.0f}-{row['peak_rss_mb_max']:.0f}"
        print(f"{row['cells']:>6} {row['rows'] or 0:>8}  {row['variant']:<30} {cpu:>16} {row['seconds_median']:7.1f} "
              f"{rss:>16}")
    files: dict[tuple, set] = {}  # (cells, variant without checkout and pool) -> the hashes of what it wrote
    for row in measured:
        if "sha256" in row:
            key = (row["cells"], row["variant"].rpartition(":")[2].partition("@")[0])  # across checkouts and pools
            files.setdefault(key, set()).update(row["sha256"])
    for (cells, variant), hashes in files.items():
        names = " and ".join(json.loads(next(iter(hashes))))
        print(f"{cells} cells: {variant}'s {names} "
              f"{'identical in every run' if len(hashes) == 1 else 'DIFFER between runs or checkouts'}: "
              + "; ".join(f"{name} {digest[:12]}" for name, digest in json.loads(next(iter(hashes))).items()))
    for row in measured:
        for phase in row.get("phases", []):
            print(f"{'':>16}{row['variant'] + ': ' + phase['phase']:<60} x{phase['calls']:<5} entry "
                  f"{phase['entry_rss_mb']:6.0f} MB  peak {phase['peak_rss_mb']:6.0f} MB")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"python": platform.python_version(), "machine": platform.machine(),
                               "results": measured}, indent=1))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
