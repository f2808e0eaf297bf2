"""Shared fixtures: an isolated working directory (results/ and store inside tmp) and a CLI runner."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Small, fast metric settings for end-to-end sweeps (the values are recorded in params; the code path is real).
FAST_METRICS = [
    "metrics.faithfulness_correlation.nr_runs=5",
    "metrics.max_sensitivity.nr_samples=2",
]


def whole_suite_workers(config: pytest.Config) -> int:
    """Workers for a whole-suite run (plain ``pytest``): one per core, at most 4; none on one core.

    The suite is single-threaded (sweeps pin one torch thread per job), so on a 2-core runner two workers nearly
    halve its wall time. Chosen files or tests (``pytest tests/unit/test_x.py::test_y``) run in this process:
    starting workers would cost more than it saves. ``XAIBENCH_TEST_WORKERS=N`` overrides (0: one process).
    """
    if hasattr(config, "workerinput") or "PYTEST_XDIST_WORKER" in os.environ:
        return 0  # an xdist worker (or a pytest it starts) never starts workers itself: no fork bomb
    if "XAIBENCH_TEST_WORKERS" in os.environ:
        return int(os.environ["XAIBENCH_TEST_WORKERS"])
    if config.args_source is not pytest.Config.ArgsSource.TESTPATHS:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 4) if cores >= 2 else 0


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Distribute a whole-suite run over ``whole_suite_workers`` with pytest-xdist, one file per worker at a time
    (``--dist loadfile``: a module's shared sweep runs once). An explicit ``-n``, ``-p no:xdist``, ``--pdb`` or an
    install without pytest-xdist leaves the run as asked. Runs before xdist's own hook (conftest hooks go first)."""
    if not config.pluginmanager.hasplugin("xdist") or config.getoption("numprocesses", None) is not None:
        return
    if config.getoption("usepdb", False) or config.getoption("collectonly", False):
        return
    workers = whole_suite_workers(config)
    if workers:
        config.option.numprocesses = workers
        if config.option.dist == "no":
            config.option.dist = "loadfile"
            # xdist queues files by their number of tests, most first: the costliest files (a few end-to-end sweeps
            # each) came last and one worker ran them alone at the end. Queue them in the collection's order, which
            # ``pytest_collection_modifyitems`` puts the files with slow tests first in.
            config.option.loadscopereorder = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files holding a ``slow`` test (end-to-end sweeps, seconds to a minute each) run first, each file's tests
    together and in their order, the rest after in the collection's order: a whole-suite run's workers then end
    on small files and finish together (longest jobs first). Same order on every worker (xdist checks it)."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    first_index: dict = {}
    for index, item in enumerate(items):
        first_index.setdefault(item.path, index)
    items.sort(key=lambda item: (item.path not in slow_files, first_index[item.path]))


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """cwd = a fresh temp dir; the store goes to ./results/store (relative, via the default config)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XAIBENCH_STORE", raising=False)
    return tmp_path


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "XAIBENCH_"))}
    env.update({"PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    env.update(extra)
    return env


def run_cli(args: list[str], cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """Run ``python -m xaibench ARGS`` in ``cwd`` as a user would; returns the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "xaibench", *args], cwd=cwd, env=cli_env(**env),
        capture_output=True, text=True, timeout=timeout,
    )


def interrupted_on_call(real, n: int):
    """``real`` wrapped to raise ``KeyboardInterrupt`` (Ctrl-C, a kill) on its ``n``-th call; earlier calls run."""
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    return wrapper
