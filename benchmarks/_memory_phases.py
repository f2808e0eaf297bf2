"""Peak resident memory per phase of collect / summary / the end of a sweep (``bench_collect.py --profile``).

A thread samples ``VmRSS`` every few milliseconds and charges each sample to the innermost phase running: the
functions below are wrapped (module attributes replaced) so that entering one pushes its name. Reported per phase:
the peak RSS seen while it ran and how far that peak is above the RSS when it was first entered. The sampling
misses spikes shorter than the interval; ``VmHWM`` (the process's true peak) is reported next to it.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

INTERVAL_S = 0.002


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


class PhaseSampler:
    """Samples RSS in a thread; ``wrap(owner, name, label)`` charges the time inside ``owner.name`` to ``label``."""

    def __init__(self) -> None:
        self.stack: list[str] = ["other"]
        self.peak: dict[str, float] = {}
        self.entry: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.order: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def start(self) -> PhaseSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss, label = _rss_mb(), self.stack[-1]
            if rss > self.peak.get(label, 0.0):
                self.peak[label] = rss
            time.sleep(INTERVAL_S)

    def wrap(self, owner: object, name: str, label: str) -> None:
        inner: Callable = getattr(owner, name)
        sampler = self

        def wrapped(*args, **kwargs):
            if label not in sampler.entry:
                sampler.entry[label] = _rss_mb()
                sampler.order.append(label)
            sampler.calls[label] = sampler.calls.get(label, 0) + 1
            sampler.stack.append(label)
            try:
                result = inner(*args, **kwargs)
                if hasattr(result, "__next__"):  # a generator: charge each step to this phase too
                    return sampler._steps(result, label)
                return result
            finally:
                sampler.stack.pop()
                rss = _rss_mb()
                if rss > sampler.peak.get(label, 0.0):
                    sampler.peak[label] = rss

        setattr(owner, name, wrapped)

    def _steps(self, iterator, label: str):
        while True:
            self.stack.append(label)
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                self.stack.pop()
            yield item

    def report(self) -> list[dict]:
        labels = self.order + [label for label in self.peak if label not in self.order]
        return [{"phase": label, "calls": self.calls.get(label, 0), "entry_rss_mb": round(self.entry.get(label, 0), 1),
                 "peak_rss_mb": round(self.peak.get(label, 0), 1)} for label in labels]


def instrument(wandb: bool = False) -> PhaseSampler:
    """Wrap the phases of collect, the summary and the end of a sweep (``wandb``: and of the W&B sweep run; its
    modules import torch, so only then); start sampling."""
    import pyarrow.parquet as pq

    from xaibench.sweep import finishing, launching
    from xaibench.report import console
    from xaibench.results import aggregate, collect

    sampler = PhaseSampler()
    phases = [
            (collect.plan, "combine", "read+combine chunk"),
            (collect.streaming, "_summary_input", "chunk to pandas (summary input)"),
            (pq.ParquetWriter, "write_table", "write table row group"),
            (aggregate.summarizer, "partial_summary", "summary: chunk statistics"),
            (aggregate.Summarizer, "add", "summary: add chunk"),
            (aggregate.intervals.Intervals, "_run", "summary: bootstrap block"),
            (aggregate.Summarizer, "result", "summary: result (concat, labels, ranks)"),
            (aggregate.Summarizer, "finish", "summary: finish (CIs, labels, ranks)"),
            (finishing._Tally, "add", "end of sweep: cell tally"),
            (finishing, "write_table", "write summary.parquet"),
            (finishing, "write_pieces", "write summary.parquet"),
            (collect, "write_pieces", "write summary file"),
            (collect.streaming, "release_memory", "release memory"),
            (collect.summarize_stream, "release_memory", "release memory"),
            (console, "summary_blocks", "print summary"),
            (finishing, "summary_blocks", "print summary")]
    if wandb:
        from xaibench.report import build, figure_set, wandb_sink

        import wandb

        from xaibench.report import explanation_figures, streamed_figures
        from xaibench.results import aggregate as _aggregate

        phases += [(launching, "load_table", "W&B: read the table back"), (build, "analyse", "W&B: statistics"),
                   (figure_set, "analysed_figures", "W&B: figures"), (wandb_sink, "log_sweep", "W&B: log the run"),
                   (_aggregate.SummaryPieces, "frame", "W&B: the whole summary"),
                   (build, "rank_statistics", "W&B: rank statistics"),
                   (streamed_figures, "streamed_figures", "W&B: figures (streamed)"),
                   (streamed_figures, "iter_streamed_figures", "W&B: figures (streamed)"),
                   (figure_set, "summary_figures", "W&B: summary figures"),
                   (figure_set, "metric_scores", "W&B: figures: metric scores"),
                   (wandb_sink, "_table", "W&B: build a table"),
                   (streamed_figures, "_Ranges", "W&B: figures: ranges pass"),
                   (explanation_figures, "gallery_items", "W&B: figures: galleries"),
                   (wandb, "init", "W&B: wandb.init"),
                   (wandb_sink, "_log_table", "W&B: log a table"),
                   (wandb_sink, "_to_image", "W&B: figure to image"),
                   (wandb.Run, "finish", "W&B: run.finish")]
    for owner, name, label in phases:
        sampler.wrap(owner, name, label)
    return sampler.start()


def peak_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
