"""How fast the CLI reports errors in the user's data (missing file, absent column, too many samples).

Each case runs ``xaibench ...`` in a child process as a user would and records its wall and CPU (user + sys) time
and exit code; cases are interleaved over ``--repeats`` rounds. Compare two checkouts by running the script with
each on ``PYTHONPATH`` (``--label`` names the run). Prints a table, writes ``benchmarks/out/cli_errors-<label>.json``.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_cli_errors.py --label branch
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
CASES = {
    "missing file": ["dataset=csv_table", "dataset.path=missing.csv", "dataset.target=label"],
    "absent column": ["dataset=csv_table", "dataset.path=t.csv", "dataset.target=y"],
    "too many samples": ["dataset=csv_table", "dataset.path=t.csv", "dataset.target=label", "n_samples=50"],
}


def run_case(args: list[str], cwd: Path) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "xaibench", *args], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--label", default="current")
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {c: {"wall_s": [], "cpu_s": [], "exit": []} for c in CASES}
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        (cwd / "t.csv").write_text("a,b,label\n" + "".join(f"{i},{2 * i},{i % 2}\n" for i in range(20)))
        for _ in range(args.repeats):
            for case, case_args in CASES.items():
                wall, cpu, code = run_case(case_args, cwd)
                for key, value in (("wall_s", wall), ("cpu_s", cpu), ("exit", code)):
                    results[case][key].append(value)
    print(f"{'case':<18} {'wall s (median)':>16} {'cpu s (median)':>15} {'exit':>5}   [{args.label}]")
    summary = {}
    for case, values in results.items():
        summary[case] = {k: statistics.median(v) for k, v in values.items()}
        print(f"{case:<18} {summary[case]['wall_s']:>16.2f} {summary[case]['cpu_s']:>15.2f} "
              f"{int(summary[case]['exit']):>5}")
    OUT.mkdir(exist_ok=True)
    payload = {"label": args.label, "repeats": args.repeats, "cpus": os.cpu_count(), "median": summary,
               "runs": results}
    (OUT / f"cli_errors-{args.label}.json").write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
