"""Cost of the CI regression check: the ``experiment=ci`` sweep cold, then ``xaibench compare`` on its table.

The budget (issue: under 3 minutes cold on 2 CPU cores) is about wall time on an idle machine; on a shared one,
CPU time (user + sys of the child, from ``wait4``) is the figure that does not depend on the neighbours. Prints a
table (and the slowest cells) and writes ``benchmarks/out/ci.json``.

``--other-cpu`` emulates another machine: ATen, MKL and oneDNN kernels capped below this CPU's best instruction
set (AVX2 instead of AVX-512), so floating-point results differ as they do between machines; the sweep is then
compared with the committed baseline under the default policy (should pass) and the strict one (should not).

``--large COPIES,...`` measures ``xaibench compare`` alone on large tables instead: the committed baseline copied
COPIES times as distinct units (each copy another ``dataset_params``, as a sweep over many datasets), against
itself with every value moved by cross-machine drift (x (1 + N(0, 1e-3))); ``--large 605`` is 640k rows.
Writes ``benchmarks/out/ci_large.json``. With ``--junit`` each size is compared ``--rounds`` times with and without
``--junit compare.xml`` (interleaved: CPU time of each process), and ``to_junit`` is timed alone in this process
(CPU time, best of 3); the report's size and testcase count are recorded.

    .venv/bin/python benchmarks/bench_ci.py [--threads N] [--other-cpu]
    .venv/bin/python benchmarks/bench_ci.py --large 4,16,64 [--junit [--rounds 2]]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "out"
# Caps (not requests): on a CPU without AVX-512 they change nothing, and the comparison shows 0 differences.
OTHER_CPU = {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2"}
CELL_LINE = re.compile(r"^\[job \d+\] (?P<cell>.+?) \(seed \d+\): (?P<status>\S+)\s+(?P<seconds>[\d.]+)s")


def timed(command: list[str], cwd: Path, env: dict | None = None) -> tuple[dict, str]:
    """Run ``command``; wall seconds, CPU seconds and peak RSS of the child (its own rusage), and its output."""
    log = cwd / "log.txt"
    started = time.perf_counter()
    with open(log, "w") as out:
        child = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    return {"exit_code": os.waitstatus_to_exitcode(status), "wall_s": round(wall, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}, \
        log.read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--other-cpu", action="store_true", help="emulate another CPU (see the module docstring)")
    parser.add_argument("--large", metavar="COPIES,...", help="time compare alone on the baseline copied COPIES times")
    parser.add_argument("--junit", action="store_true", help="with --large: also time --junit (see the docstring)")
    parser.add_argument("--rounds", type=int, default=2, help="with --large --junit: interleaved rounds")
    args = parser.parse_args()
    if args.large:
        large([int(n) for n in args.large.split(",")], args.rounds if args.junit else 0)
        return
    xaibench = [sys.executable, "-m", "xaibench"]
    policies = ("default", "strict") if args.other_cpu else ("default",)
    verdicts = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sweep, text = timed([*xaibench, "-m", "experiment=ci", f"threads={args.threads}", f"store_dir={work}/store",
                             f"results_dir={work}/runs"], work, OTHER_CPU if args.other_cpu else None)
        if sweep["exit_code"] != 0:
            raise SystemExit(f"the ci sweep failed:\n{text[-2000:]}")
        cells = [m.groupdict() for m in map(CELL_LINE.match, text.splitlines()) if m]
        for policy in policies:
            compare, text = timed([*xaibench, "compare", str(ROOT / "results/baselines/ci"), f"{work}/runs/ci",
                                   "--quiet", "--policy", policy], work)
            verdicts[policy] = text.strip().splitlines()[-1] if text.strip() else ""
    print(f"{'step':<22}{'wall s':>8}{'CPU s':>8}{'peak RSS MB':>13}{'exit':>6}")
    for name, r in (("ci sweep (cold)", sweep), ("compare vs baseline", compare)):
        print(f"{name:<22}{r['wall_s']:>8.1f}{r['cpu_s']:>8.1f}{r['peak_rss_mb']:>13.1f}{r['exit_code']:>6}")
    for policy, line in verdicts.items():
        print(f"--policy {policy}: {line}")
    print("slowest cells (wall s, includes training the model on first use):")
    for cell in sorted(cells, key=lambda c: -float(c["seconds"]))[:5]:
        print(f"  {float(cell['seconds']):6.2f}  {cell['cell']}")
    OUT.mkdir(exist_ok=True)
    record = {"threads": args.threads, "other_cpu": OTHER_CPU if args.other_cpu else {}, "cpus": os.cpu_count(),
              "load_avg_1m": os.getloadavg()[0], "machine": platform.machine(), "python": platform.python_version(),
              "sweep": sweep, "compare": compare, "verdicts": verdicts, "cells": cells}
    name = "ci_other_cpu.json" if args.other_cpu else "ci.json"
    (OUT / name).write_text(json.dumps(record, indent=2))
    print(f"-> {OUT / name}")


def large(copies: list[int], junit_rounds: int = 0) -> None:
    """``xaibench compare`` on the committed baseline copied ``n`` times (distinct units), against itself with
    cross-machine drift: wall and CPU seconds, peak RSS, CPU milliseconds per row; with ``junit_rounds``, also with
    ``--junit`` (``junit_runs``: the JUnit report's cost, size and testcases)."""
    import numpy as np
    import pandas as pd

    base = pd.read_parquet(ROOT / "results" / "baselines" / "ci" / "table.parquet")
    params = [json.loads(text or "{}") for text in base["dataset_params"]]
    runs, junit_runs = [], []
    command = [sys.executable, "-m", "xaibench", "compare", "baseline.parquet", "current.parquet", "--quiet",
               "--report", "compare.md", "--json", "compare.json"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n in copies:
            copies_ = [base.assign(dataset_params=[json.dumps({**p, "copy": i}, sort_keys=True) for p in params])
                       for i in range(n)]
            table = pd.concat(copies_, ignore_index=True)
            drift = np.random.default_rng(0).normal(0.0, 1e-3, len(table))
            table.to_parquet(work / "baseline.parquet", index=False)
            table.assign(value=table["value"] * (1 + drift)).to_parquet(work / "current.parquet", index=False)
            run, text = timed(command, work)
            per_row = round(1000 * run["cpu_s"] / len(table), 3)
            runs.append({"copies": n, "rows": len(table), **run, "cpu_ms_per_row": per_row,
                         "verdict": text.strip().splitlines()[0] if text.strip() else ""})
            if junit_rounds:
                junit_runs.append(_junit_cost(command, work, n, len(table), junit_rounds))
    print(f"{'rows':>9}{'wall s':>9}{'CPU s':>9}{'CPU ms/row':>12}{'peak RSS MB':>13}{'exit':>6}")
    for r in runs:
        print(f"{r['rows']:>9}{r['wall_s']:>9.1f}{r['cpu_s']:>9.1f}{r['cpu_ms_per_row']:>12.3f}"
              f"{r['peak_rss_mb']:>13.1f}{r['exit_code']:>6}")
    if junit_runs:
        print(f"{'rows':>9}{'testcases':>11}{'XML MB':>8}{'to_junit CPU s':>16}"
              f"{'compare CPU s (without / with --junit)':>40}")
        for r in junit_runs:
            pairs = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(r["cpu_s_without"], r["cpu_s_with"]))
            print(f"{r['rows']:>9}{r['testcases']:>11}{r['xml_bytes'] / 1e6:>8.1f}{r['to_junit_cpu_s']:>16.2f}"
                  f"{pairs:>40}")
    OUT.mkdir(exist_ok=True)
    record = {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "python": platform.python_version(),
              "runs": runs, "junit_runs": junit_runs}
    (OUT / "ci_large.json").write_text(json.dumps(record, indent=2))
    print(f"-> {OUT / 'ci_large.json'}")


def _junit_cost(command: list[str], work: Path, copies: int, rows: int, rounds: int) -> dict:
    """compare with and without ``--junit`` (interleaved, ``rounds`` each), then ``to_junit`` alone in process."""
    import xml.etree.ElementTree as ET

    from xaibench.results.compare import compare_tables, load_policy
    from xaibench.results.compare.junit import to_junit
    from xaibench.results.compare.tables import load_results

    without, with_, rss = [], [], {"without": [], "with": []}
    for _ in range(rounds):
        run = timed(command, work)[0]
        without.append(run["cpu_s"])
        rss["without"].append(run["peak_rss_mb"])
        run = timed([*command, "--junit", "compare.xml"], work)[0]
        with_.append(run["cpu_s"])
        rss["with"].append(run["peak_rss_mb"])
    xml = (work / "compare.xml").read_bytes()
    comparison = compare_tables(load_results(work / "baseline.parquet", "baseline", compared_only=True),
                                load_results(work / "current.parquet", "current", compared_only=True),
                                load_policy("default"))
    times = []
    for _ in range(3):
        started = time.process_time()
        to_junit(comparison, baseline="baseline.parquet", current="current.parquet")
        times.append(time.process_time() - started)
    root = ET.fromstring(xml)
    return {"copies": copies, "rows": rows, "testcases": int(root.get("tests")), "skipped": int(root.get("skipped")),
            "xml_bytes": len(xml), "to_junit_cpu_s": round(min(times), 3), "cpu_s_without": without,
            "cpu_s_with": with_, "peak_rss_mb": rss}


if __name__ == "__main__":
    main()
