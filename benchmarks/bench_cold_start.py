"""CPU seconds a fresh process pays per CLI step, this checkout vs another commit, interleaved rounds.

Each round runs, for each checkout, in a fresh temporary folder and fresh processes: the quickstart cold (empty
store, results and plan cache), the same sweep warm, ``xaibench summary``, ``xaibench report`` (tables,
statistics, figures, galleries) and ``xaibench compare`` (the sweep's table against a copy of it: every value
agrees) on its table, and ``python -c "import xaibench.cli"``. CPU time is the children's rusage (user + system)
of each process; the heavy imports each step left loaded are listed (e.g. ``torch._dynamo``, which
torch.optim.Adam and ``torch.use_deterministic_algorithms`` pulled into a cold sweep). Prints medians per step
and checkout, and writes ``benchmarks/out/cold_start.json``.

    .venv/bin/python benchmarks/bench_cold_start.py --before main~3 [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
HEAVY = ("torch", "torch._dynamo", "torch._inductor", "sklearn", "sklearn.model_selection", "scipy.stats", "quantus",
         "captum", "matplotlib.pyplot")
# Runs the CLI as ``python -m xaibench`` does and, at exit, writes the heavy modules loaded to $BENCH_MODULES.
PROBE = ("import atexit, json, os, runpy, sys\n"
         f"atexit.register(lambda: open(os.environ['BENCH_MODULES'], 'w').write(json.dumps([m for m in {HEAVY!r} "
         "if m in sys.modules])))\n"
         "sys.argv = ['xaibench', *sys.argv[1:]]\n"
         "runpy.run_module('xaibench', run_name='__main__')\n")


def timed(args: list[str], cwd: Path, code: Path, **env: str) -> tuple[float, list[str]]:
    """CPU seconds of one fresh ``python <args>`` with ``code`` first on its path, and the heavy modules it loaded."""
    modules = cwd / "modules.json"
    modules.unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, env={**os.environ, "PYTHONPATH": str(code), "BENCH_MODULES": str(modules),
                                          **env})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{args} failed:\n{done.stderr[-2000:]}")
    loaded = json.loads(modules.read_text()) if modules.exists() else []
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, loaded


def one_round(code: Path, work: Path) -> dict[str, tuple[float, list[str]]]:
    """Every step once, for the checkout at ``code``, in the empty folder ``work``."""
    cache = {"XAIBENCH_CACHE": str(work / "cache")}
    steps = {
        "quickstart cold": timed(["-c", PROBE, "-m", "experiment=quickstart"], work, code, **cache),
        "quickstart warm": timed(["-c", PROBE, "-m", "experiment=quickstart"], work, code, **cache),
        "summary": timed(["-c", PROBE, "summary", "results/runs/quickstart"], work, code),
        "report": timed(["-c", PROBE, "report", "results/runs/quickstart"], work, code),
    }
    shutil.copy(work / "results/runs/quickstart/table.parquet", work / "copy.parquet")
    steps["compare (all agree)"] = timed(["-c", PROBE, "compare", "results/runs/quickstart", "copy.parquet"], work,
                                         code)
    steps["import xaibench.cli"] = timed(["-c", "import xaibench.cli"], work, code)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="main", help="git commit to compare with (default: main)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
        checkouts = {"now": ROOT, f"before ({args.before})": before}
        cpu: dict[str, dict[str, list[float]]] = {}
        loaded: dict[str, dict[str, list[str]]] = {}
        for round_ in range(args.rounds):
            order = list(checkouts) if round_ % 2 == 0 else list(reversed(checkouts))  # interleaved, alternating
            for name in order:
                work = Path(tmp) / f"{name.split()[0]}-{round_}"
                work.mkdir()
                for step, (seconds, modules) in one_round(checkouts[name], work).items():
                    cpu.setdefault(step, {}).setdefault(name, []).append(round(seconds, 2))
                    loaded.setdefault(step, {})[name] = modules
                shutil.rmtree(work)
                print(f"round {round_ + 1} {name}: done (load {os.getloadavg()[0]:.1f})", flush=True)
    now, old = checkouts
    print(f"{'step':<22}{'now CPU s':>10}{'before':>9}{'ratio':>7}  heavy modules loaded now / before")
    for step, runs in cpu.items():
        a, b = statistics.median(runs[now]), statistics.median(runs[old])
        print(f"{step:<22}{a:>10.2f}{b:>9.2f}{a / b:>7.2f}  {loaded[step][now]} / {loaded[step][old]}")
    OUT.mkdir(exist_ok=True)
    record = {"before": args.before, "rounds": args.rounds, "cpus": os.cpu_count(), "cpu_s": cpu, "loaded": loaded}
    (OUT / "cold_start.json").write_text(json.dumps(record, indent=2))
    print(f"-> {OUT / 'cold_start.json'}")


if __name__ == "__main__":
    main()
