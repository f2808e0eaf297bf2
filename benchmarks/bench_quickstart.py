"""Wall time and peak memory of the quickstart sweep, cold (empty store) and warm (everything cached).

Runs ``xaibench -m experiment=quickstart`` as a user would, in a temporary directory: once cold, then warm reruns
(``--repeats``, interleaved with warm reruns whose plan is not cached but whose cells' pre-flight checks are
remembered, as after editing a config; whose plan and checks are not, only the composition, as after editing the
code; and with nothing cached, ``XAIBENCH_NO_PLAN_CACHE=1``), and reports per kind
the wall time, CPU time (the median run, and the range), the peak RSS of the sweep process and how many cells
were computed vs cached. Prints a table and
writes ``benchmarks/out/quickstart.json``.

    .venv/bin/python benchmarks/bench_quickstart.py [--device cuda] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def run_once(workdir: Path, extra: list[str], **env: str) -> dict:
    """One sweep in a child process; its own rusage (via wait4) gives its peak RSS."""
    log = workdir / "stdout.txt"
    started = time.perf_counter()
    with open(log, "w") as out:
        child = subprocess.Popen([sys.executable, "-m", "xaibench", "-m", "experiment=quickstart", *extra],
                                 cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1",
                                      "XAIBENCH_CACHE": str(workdir / "cache"), **env})  # cold: no cached plan
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    text = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"quickstart failed:\n{text[-2000:]}")
    lines = text.splitlines()
    return {
        "seconds": round(seconds, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),  # the machines are shared: CPU time is the stable figure
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cells_computed": sum(" computed " in line for line in lines),
        "cells_cached": sum(" cached " in line for line in lines),
        "cells_not_applicable": sum(" skipped " in line for line in lines),
    }


def forget_code(cache: Path) -> None:
    """What editing the package's code invalidates: the plans and the remembered checks, not the compositions."""
    for path in (cache / "plans").glob("*.pickle"):
        if not path.name.startswith("composed-"):
            path.unlink()
    shutil.rmtree(cache / "verdicts", ignore_errors=True)


def median_run(runs: list[dict]) -> dict:
    """The run with the median CPU time, with the range of CPU times over all of them."""
    middle = sorted(runs, key=lambda r: r["cpu_s"])[len(runs) // 2]
    return {**middle, "cpu_s_range": [min(r["cpu_s"] for r in runs), max(r["cpu_s"] for r in runs)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="warm reruns of each kind, interleaved (median)")
    args = parser.parse_args()
    extra = [f"device={args.device}", f"threads={args.threads}"]
    with tempfile.TemporaryDirectory() as tmp:
        cold = run_once(Path(tmp), extra)
        warm, new_plan, code_edited, cold_plan = [], [], [], []
        for _ in range(args.repeats):  # interleaved; "new plan": after editing a config, "code edited": the code
            warm.append(run_once(Path(tmp), extra))
            shutil.rmtree(Path(tmp) / "cache" / "plans")
            new_plan.append(run_once(Path(tmp), extra))
            forget_code(Path(tmp) / "cache")
            code_edited.append(run_once(Path(tmp), extra))
            cold_plan.append(run_once(Path(tmp), extra, XAIBENCH_NO_PLAN_CACHE="1"))
    results = {"cold": cold, "warm": median_run(warm), "warm, new plan": median_run(new_plan),
               "warm, code edited": median_run(code_edited), "warm, cold plan": median_run(cold_plan)}
    print(f"{'run':<18}{'seconds':>9}{'CPU s':>8}{'peak RSS MB':>13}{'computed':>10}{'cached':>8}{'n/a':>6}")
    for name, r in results.items():
        print(f"{name:<18}{r['seconds']:>9.2f}{r['cpu_s']:>8.2f}{r['peak_rss_mb']:>13.1f}{r['cells_computed']:>10}"
              f"{r['cells_cached']:>8}{r['cells_not_applicable']:>6}")
    OUT.mkdir(exist_ok=True)
    record = {"device": args.device, "threads": args.threads, "cpus": os.cpu_count(),
              "machine": platform.machine(), "python": platform.python_version(), **results}
    (OUT / "quickstart.json").write_text(json.dumps(record, indent=2))
    print(f"-> {OUT / 'quickstart.json'}")


if __name__ == "__main__":
    main()
