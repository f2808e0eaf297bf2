"""Time of ``xaibench report`` on the quickstart's table: with figures and tables only (``--no-figures``).

Runs the quickstart sweep once in a temporary directory (or uses ``--sweep DIR`` with its ``--store``), then runs
the report verb ``--repeat`` times per variant, interleaved, as a user would (a child process each). Reports wall
time, CPU time (user + system of the child: what the work costs, whatever else runs on the machine) and peak RSS.
Prints a table and writes ``benchmarks/out/report.json``.

    .venv/bin/python benchmarks/bench_report.py [--repeat 3] [--sweep results/runs/quickstart --store results/store]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
VARIANTS = {"tables + figures": [], "tables only": ["--no-figures"]}


def timed(command: list[str], cwd: Path) -> dict:
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{child.stderr.read().decode()[-2000:]}")
    return {"wall_s": seconds, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sweep", help="an existing sweep folder (default: run the quickstart in a temp dir)")
    parser.add_argument("--store", default="results/store", help="its store (with --sweep)")
    parser.add_argument("--out", default=str(OUT / "report.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.sweep:
            sweep, store = Path(args.sweep).resolve(), Path(args.store).resolve()
        else:
            timed([sys.executable, "-m", "xaibench", "-m", "experiment=quickstart"], work)
            sweep, store = work / "results/runs/quickstart", work / "results/store"
        runs = {name: [] for name in VARIANTS}
        for index in range(args.repeat):  # interleaved, so load changes hit both variants alike
            for name, extra in VARIANTS.items():
                command = [sys.executable, "-m", "xaibench", "report", str(sweep), "--out", str(work / f"r{index}"),
                           "--store", str(store), *extra]
                runs[name].append(timed(command, work))
    rows = {name: {k: round(min(r[k] for r in results), 2) for k in results[0]} for name, results in runs.items()}
    print(f"{'variant':<18} {'wall s':>8} {'cpu s':>8} {'peak MB':>8}   (best of {args.repeat})")
    for name, row in rows.items():
        print(f"{name:<18} {row['wall_s']:>8.2f} {row['cpu_s']:>8.2f} {row['peak_rss_mb']:>8.0f}")
    record = {"benchmark": "report", "repeat": args.repeat, "results": rows, "cpus": os.cpu_count(),
              "load_avg": os.getloadavg(), "python": platform.python_version()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
