"""Progress inside long cells: nothing for quick stages, a status line on stderr once a stage takes a while."""
from __future__ import annotations

import io
import time

import xaibench
from tests.conftest import FAST_METRICS
from xaibench.report import progress as progress_module
from xaibench.report.progress import Progress


def _wait_for_output(stream: io.StringIO, seconds: float = 10.0) -> str:
    deadline = time.monotonic() + seconds
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    return stream.getvalue()


def test_quick_stage_prints_nothing_and_a_long_one_reports_its_count(monkeypatch):
    monkeypatch.setattr(progress_module, "_enabled", True)  # a quiet run earlier in this process may have set it
    quiet = io.StringIO()
    with Progress("explaining with saliency", total=4, unit="sample", delay=60, stream=quiet) as progress:
        progress.update(4)
    assert quiet.getvalue() == ""
    log = io.StringIO()
    with Progress("explaining with kernel_shap", total=32, unit="sample", delay=0, stream=log) as progress:
        progress.update(8)
        assert _wait_for_output(log).startswith("  explaining with kernel_shap: ")
    assert "/32 samples" in log.getvalue() and log.getvalue().endswith("\n")  # not a terminal: whole lines


def test_a_slow_cell_reports_progress_on_stderr_and_progress_false_silences_it(workdir, monkeypatch, capfd):
    monkeypatch.setattr(progress_module, "DELAY_S", 0.0)
    xaibench.run(["model=logreg", "dataset=iris", "method=saliency", "n_samples=4", *FAST_METRICS], echo=True)
    err = capfd.readouterr().err
    assert "explaining with saliency: " in err and "scoring saliency: " in err
    xaibench.run(["model=logreg", "dataset=iris", "method=random", "n_samples=4", *FAST_METRICS])  # echo=False
    assert "explaining with" not in capfd.readouterr().err
