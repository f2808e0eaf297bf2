"""Opt-in pytest plugin: each test's CPU seconds, its subprocesses included, for finding what makes the suite slow.

``--durations`` gives wall seconds, which on a shared machine swing 2-5x with the load and leave out nothing a
test waits for; this records CPU time (user + system) of the pytest process and of every child it waited for
(``python -m xaibench`` sweeps, their launcher workers), setup and teardown included (a module fixture's sweep is
charged to the first test that uses it). Use it on chosen files, in one process::

    PYTHONPATH=. .venv/bin/python -m pytest -p tests.cpu_times --cpu-times=cpu.jsonl tests/integration/test_x.py

Each finished test appends one JSON line ``[nodeid, cpu_s, wall_s]`` to the file as it goes (a run stopped early
keeps what it measured); the end of the run prints the 15 costliest tests and the total.
"""
from __future__ import annotations

import json
import resource
import time

import pytest


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of all the children it has waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cpu-times", metavar="PATH", default=None,
                     help="append each test's [nodeid, cpu_s, wall_s] (subprocesses included) to PATH as JSON lines")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("cpu_times")
    if path:
        config.pluginmanager.register(CpuTimes(path), "xaibench-cpu-times")


class CpuTimes:
    def __init__(self, path: str):
        self.path = path
        self.rows: list[tuple[str, float, float]] = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem):
        cpu, wall = cpu_seconds(), time.perf_counter()
        yield
        row = (item.nodeid, round(cpu_seconds() - cpu, 3), round(time.perf_counter() - wall, 3))
        self.rows.append(row)
        with open(self.path, "a") as out:
            out.write(json.dumps(row) + "\n")

    def pytest_terminal_summary(self, terminalreporter) -> None:
        total = sum(cpu for _, cpu, _ in self.rows)
        terminalreporter.write_sep("=", f"CPU seconds, subprocesses included ({len(self.rows)} tests, {total:.1f} s)")
        for nodeid, cpu, wall in sorted(self.rows, key=lambda row: -row[1])[:15]:
            terminalreporter.write_line(f"{cpu:8.1f} cpu {wall:8.1f} wall  {nodeid}")
