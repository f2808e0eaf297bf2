"""The fast scoring engine vs plain Quantus, per metric: CPU time, forward share, speedup, max score difference.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_scoring.py --threads 1      # CPU, cnn/digits + mlp/breast_cancer
    PYTHONPATH=. .venv/bin/python benchmarks/bench_scoring.py --device cuda      # on a GPU box (wall time there)
    PYTHONPATH=. .venv/bin/python benchmarks/bench_scoring.py --method saliency --metrics max_sensitivity
    PYTHONPATH=. .venv/bin/python benchmarks/bench_scoring.py --method lime --before   # + the previous call sizing
    PYTHONPATH=. .venv/bin/python benchmarks/bench_scoring.py --method occlusion --before-chunk 1024  # auto vs 1024

Both engines score the same attributions (``conf/method/<method>.yaml``, predicted targets) with the same
parameters (``conf/metrics/faithfulness.yaml`` + ``stability.yaml``) and the same seed, through
``quantus_adapter.score`` as the runner calls it; only ``engine`` differs. Repetitions are interleaved
(quantus, fast, quantus, fast, ...) and timed in process CPU time (the machines are shared; wall time swings):
the median over repetitions is reported, with the range of the per-pair ratios (``speedup_min``/``speedup_max``).
Each call is one metric alone in its cell: it pays the adapter's constant-output screen itself (a sweep cell's
metrics share one screen), for both engines; one untimed pair per metric comes first (``--warmup``). glibc's
malloc thresholds are set before anything is timed, as the fast engine sets them on first use
(``metrics/fast/_allocator.py``), so both engines run with the same allocator.
On CUDA, CPU time misses GPU work: wall time (after a synchronise) is used instead. ``fwd share`` is the share of
the metric's time spent inside the model's forward (a forward hook pair on the model). ``max |diff|`` is the
largest absolute score difference between the engines. The JSON's top-level ``speedup`` maps ``model:dataset``
to ``{metric: median speedup}``; ``results`` has one row per pair and metric. ``--cell`` also times the metrics
together as a sweep cell scores them (one shared screen per engine): ``cell_speedup`` maps ``model:dataset`` to
the median ratio of the cell's CPU time.

``--breakdown`` also splits each engine's call (exclusive CPU time, medians over the repetitions, ms per call) into
the model's forwards inside the metric, the screen's forward (outside it), the metric's own ``evaluate_batch`` code
(perturbations, bookkeeping, Quantus' per-step loop and checks), the similarity function (the adapter's
``CorrelationDiagnostics`` around Quantus'), the rest of Quantus' ``__call__`` (``general_preprocess``: wrapping,
asserts, normalisation; batching) and the adapter (parameters, layout, the screen's Python, statuses); JSON key
``breakdown`` per row.

``--before-fold`` times, interleaved, the fast engine without its folded pooling + ``Linear`` head (saliency and IG on
the cnn; ``metrics/fast/_folded_head.py``) as ``fast_before`` (JSON keys ``*_before``, ``bitwise_equal_to_before``).
``--before-chunk 1024`` times, interleaved, the fast engine as it was before ``chunk_size: auto``: a fixed chunk of
1,024 rows, captum's per-step IG path and the pooling dispatch mode around the whole call (JSON keys ``*_before``; ``bitwise_equal_to_before`` says whether its scores
have the same bits as the fast engine's now). ``--chunk-size`` is ``auto`` (the config default) unless given.

Stability metrics with a gradient method (saliency, IG, SmoothGrad) also time the **model floor**, interleaved with
the engines: the model's forward + summed-target backward to the input over the rows the fast engine re-explains
(``nr_samples x N x rows per input``, e.g. 10 x 32 x 32 IG path steps), in the fast engine's call sizes, and nothing
else, with torch's kernels (what plain Quantus runs) and with the fast engine's exact pooling kernels
(``metrics/fast/_pool_kernels.py``: torch's bits without its scalar loops; JSON keys ``*_fast_kernels``).
``speedup_ceiling = quantus / floor`` with the fast engine's floor (its exact pooling kernels and, for saliency and
IG, its folded head: the model work it runs itself, less than torch's), the bound on its speedup while it runs that
work (larger calls do not make a row cheaper: ``bench_gradient_rows.py``); ``speedup_ceiling_torch_kernels`` is
Quantus / the floor with torch's kernels and the unfolded network (the printed "ceiling" before: the folded
head runs below that floor, so the measured speedup read above its "ceiling"); ``fast_over_fast_kernel_floor``
is how close the fast engine runs to the model work it does itself.

``--pairs resnet_like:digits`` (or ``resnet_like_avg``): a user's own ResNet-like ``nn.Module`` instead of a
registered model (:func:`own_model`; random weights). The folded head applies to a plain ``nn.Sequential`` only, so
these run unfolded (at their model floor already: ``docs/speed.md``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from _common import ROOT, add_common_arguments, apply_device_and_threads, conf_section, create, sync
from xaibench.engine.applicability import metric_not_applicable
from xaibench.engine.cell import CellSpec
from xaibench.engine.datasets import build_dataset
from xaibench.engine.seeding import derive_seed, seed_everything
from xaibench.engine.stages import get_model
from xaibench.engine.store import Store
from xaibench.explainers.base import CallRows
from xaibench.metrics.fast import FAST_CLASSES
from xaibench.metrics.fast._allocator import keep_freed_memory
from xaibench.metrics.fast._forward import chunk_rows
from xaibench.metrics.fast._folded_head import folded_head
from xaibench.metrics.fast._pool_kernels import exact_pool_kernels
from xaibench.metrics.fast._sizing import automatic_rows
from xaibench.metrics.output_screen import shared_screens
from xaibench.metrics.quantus_adapter import ScoreContext, score
from xaibench.metrics.testing import ResNetLike
from xaibench.registry import DATASETS, EXPLAINERS, METRICS, MODELS
from xaibench.types import Capability

OUT = ROOT / "benchmarks" / "out" / "scoring.json"
OWN_MODELS = ("resnet_like", "resnet_like_avg")  # --pairs resnet_like:digits: a user's own nn.Module (own_model)


class Breakdown:
    """Exclusive CPU time of scoring calls by where it is spent (``--breakdown``), through class-level wrappers on
    ``evaluate_batch`` (both engines' classes), Quantus' ``Metric.__call__`` and the adapter's similarity wrapper."""

    PARTS = ("forward_metric", "forward_screen", "evaluate_batch_own", "similarity", "quantus_call_rest", "adapter")

    def __init__(self, classes: list[type], forward: "ForwardClock", clock) -> None:  # type: ignore[no-untyped-def]
        import quantus

        from xaibench.metrics.functional import CorrelationDiagnostics

        self.forward, self.clock = forward, clock
        self.targets = [(cls, "evaluate_batch") for cls in classes] + [
            (quantus.metrics.base.Metric, "__call__"), (CorrelationDiagnostics, "__call__")]
        self.seconds: dict[str, float] = {}
        self.forward_in_evaluate = 0.0

    def _wrap(self, cls: type, name: str) -> None:
        original = cls.__dict__[name]
        label = "evaluate_batch" if name == "evaluate_batch" else cls.__name__

        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            started, forwarded = self.clock(), self.forward.seconds
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + self.clock() - started
                if label == "evaluate_batch":
                    self.forward_in_evaluate += self.forward.seconds - forwarded

        setattr(cls, name, timed)
        self._originals.append((cls, name, original))

    def __enter__(self) -> "Breakdown":
        self._originals: list = []
        for cls, name in self.targets:
            if name in cls.__dict__:
                self._wrap(cls, name)
        return self

    def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        for cls, name, original in self._originals:
            setattr(cls, name, original)

    def parts(self, total: float) -> dict[str, float]:
        """Seconds per part of one call that took ``total`` seconds (they sum to ``total``)."""
        evaluate, call = self.seconds.get("evaluate_batch", 0.0), self.seconds.get("Metric", 0.0)
        similarity = self.seconds.get("CorrelationDiagnostics", 0.0)
        screen = self.forward.seconds - self.forward_in_evaluate
        return {"forward_metric": self.forward_in_evaluate, "forward_screen": screen,
                "evaluate_batch_own": evaluate - self.forward_in_evaluate - similarity, "similarity": similarity,
                "quantus_call_rest": call - evaluate,
                "adapter": total - call - screen}


class ForwardClock:
    """Time spent inside ``module``'s forward (outermost calls only)."""

    def __init__(self, module: torch.nn.Module, clock) -> None:  # type: ignore[no-untyped-def]
        self.module, self.clock, self.seconds, self._depth, self._start = module, clock, 0.0, 0, 0.0

    def __enter__(self) -> "ForwardClock":
        def pre(module, inputs):  # type: ignore[no-untyped-def]
            if self._depth == 0:
                self._start = self.clock()
            self._depth += 1

        def post(module, inputs, output):  # type: ignore[no-untyped-def]
            self._depth -= 1
            if self._depth == 0:
                self.seconds += self.clock() - self._start

        self._handles = [self.module.register_forward_pre_hook(pre), self.module.register_forward_hook(post)]
        return self

    def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        for handle in self._handles:
            handle.remove()


@contextlib.contextmanager
def previous_call_sizing():
    """The fast engine as it sized re-explanation calls before ``Explainer.call_rows`` (``--before``): every
    explainer counted ``n_steps or n_samples or 1`` forward rows per input, every call on a network that
    average-pools on CPU ran through the exact pooling kernels (``metrics/fast/_pool_kernels.py``), and LIME and
    Kernel SHAP forwarded ``perturbations_per_eval`` rows at a time."""
    from xaibench.metrics import quantus_adapter
    from xaibench.metrics.fast import stability

    make = quantus_adapter.make_explain_func

    def legacy(explainer, *args, **kwargs):  # type: ignore[no-untyped-def]
        func = make(explainer, *args, **kwargs)
        func.call_rows = CallRows(per_input=max(1, int(getattr(explainer, "n_steps", 0)
                                                       or getattr(explainer, "n_samples", 0) or 1)))
        return func

    pool_kernels, forward_rows = stability.ChunkedStability._pool_kernels, stability.forward_rows
    quantus_adapter.make_explain_func = legacy
    stability.ChunkedStability._pool_kernels = lambda self, network, inputs: exact_pool_kernels(network)
    stability.forward_rows = lambda rows: contextlib.nullcontext()
    try:
        yield
    finally:
        quantus_adapter.make_explain_func = make
        stability.ChunkedStability._pool_kernels = pool_kernels
        stability.forward_rows = forward_rows


def _engine(engine: str, ctx: ScoreContext, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """(the context to score with, context manager) of a benchmarked engine: ``fast_before`` is the fast engine
    with a fixed ``chunk_size`` (``--before-chunk``), else with :func:`previous_call_sizing` (``--before``)."""
    if engine != "fast_before":
        return replace(ctx, engine=engine), contextlib.nullcontext()
    if args.before_fold:
        return replace(ctx, engine="fast"), unfolded()
    if args.before_chunk is not None:
        return replace(ctx, engine="fast", chunk_size=args.before_chunk), before_auto()
    return replace(ctx, engine="fast"), previous_call_sizing()


@contextlib.contextmanager
def before_auto():
    """The fast engine's re-explanations as before ``chunk_size: auto`` (``--before-chunk``; the chunk is set by the
    caller): captum's path with one ``x' + a (x - x')`` per IG path step (before ``path_points``) and the exact
    pooling kernels as a dispatch mode around the whole call (before ``ExactPoolModules``)."""
    from xaibench.explainers.gradient import integrated_gradients
    from xaibench.metrics.fast import stability
    from xaibench.metrics.fast._pool_kernels import ExactPoolKernels, has_cpu_avg_pool

    broadcast, pooling = integrated_gradients.path_points, stability.exact_pool_kernels
    integrated_gradients.path_points = lambda baselines, difference, alphas: torch.cat(
        [baselines + alpha * difference for alpha in alphas], dim=0)
    stability.exact_pool_kernels = lambda network: ExactPoolKernels() if has_cpu_avg_pool(network) \
        else contextlib.nullcontext()
    try:
        yield
    finally:
        integrated_gradients.path_points, stability.exact_pool_kernels = broadcast, pooling


@contextlib.contextmanager
def unfolded():
    """The fast engine's re-explanations without the folded head (``--before-fold``): saliency and IG on the cnn
    run its pooling (through the exact kernels), ``Flatten`` and ``Linear`` as they are (``metrics/fast/_folded_head.py``)."""
    from xaibench.metrics.fast import stability

    folded = stability.folded_head
    stability.folded_head = lambda network: contextlib.nullcontext()
    try:
        yield
    finally:
        stability.folded_head = folded


def chunk_argument(value: str) -> int | None:
    """``--chunk-size``: ``auto`` (the config default, None) or a positive number of rows."""
    if value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"a positive number of rows or 'auto', got {value!r}")
    return int(value)


def _clock(device: str):  # type: ignore[no-untyped-def]
    """Process CPU time on a CPU; wall time after a synchronise on CUDA (CPU time misses GPU work)."""
    return (lambda: (sync(device), time.perf_counter())[1]) if device.startswith("cuda") else time.process_time


def own_model(name: str, data, seed: int) -> torch.nn.Module:  # type: ignore[no-untyped-def]
    """A user's own ResNet-like CNN (``xaibench.metrics.testing.ResNetLike``: an ``nn.Module`` with a ``forward``,
    not an ``nn.Sequential``), 16 channels, random weights (the timings do not depend on them): ``resnet_like``
    ends in ``F.relu -> F.adaptive_avg_pool2d(x, 1) -> torch.flatten -> Linear``, ``resnet_like_avg`` in
    ``relu -> F.avg_pool2d(x, 2) -> reshape(N, -1) -> Linear`` (square images with even sides)."""
    channels, side = data.input_shape[0], data.input_shape[1]
    head = {"resnet_like": "functional", "resnet_like_avg": "avg_pool"}[name]
    return ResNetLike(channels=channels, width=16, n_classes=data.n_classes, head=head, side=side, seed=seed)


def context(pair: str, store: Store, args: argparse.Namespace) -> ScoreContext:
    model_name, dataset_name = pair.split(":")
    data = build_dataset(create(DATASETS, "dataset", dataset_name), args.seed)
    if model_name in OWN_MODELS:
        module = own_model(model_name, data, args.seed).to(args.device).eval()
    else:
        cell = CellSpec(model=conf_section("model", model_name), dataset=conf_section("dataset", dataset_name),
                        method=conf_section("method", args.method), metrics={}, seed=args.seed, device=args.device)
        module = get_model(store, create(MODELS, "model", model_name), data, cell).module.to(args.device).eval()
    explainer = create(EXPLAINERS, "method", args.method)
    samples = data.test.head(args.n_samples)
    x = samples.x.to(args.device)
    with torch.no_grad():
        targets = module(x).argmax(dim=1)
    seed_everything(derive_seed("bench-scoring", pair, args.seed))
    attributions = explainer.explain(module, x, targets).attributions.detach()
    return ScoreContext(model=module, modality=data.modality, x=x, targets=targets, attributions=attributions,
                        explainer=explainer, train=data.train, n_classes=data.n_classes, device=args.device,
                        chunk_size=args.chunk_size)


def model_floor(ctx: ScoreContext, params: dict, fast_kernels: bool = False) -> Callable[[], None] | None:
    """The model's forward + backward over the rows a stability metric re-explains, in the fast engine's calls.

    ``fast_kernels``: with the fast engine's exact pooling kernels (``metrics/fast/_pool_kernels.py``: the same
    bits) and, for explainers that read only the input gradient (saliency, IG), its folded head
    (``metrics/fast/_folded_head.py``: the same gradients), i.e. the model work the fast engine itself runs;
    without, torch's kernels, what plain Quantus runs.

    ``nr_samples x N x per_input`` rows (``Explainer.call_rows``: IG's ``n_steps``, saliency's 1), ``ctx.x``
    repeated with small noise, in calls of about ``chunk_size`` rows as
    ``ChunkedStability._explain_all`` makes them (whole steps, or groups of inputs when a step is larger than the
    chunk); gradients of the summed target logits w.r.t. the input only. None unless the metric re-explains
    (``nr_samples``) with a gradient method on dense float inputs.
    """
    cost = ctx.explainer.call_rows(ctx.modality, tuple(ctx.x.shape[1:]))
    if "nr_samples" not in params or Capability.GRADIENTS not in ctx.explainer.requires \
            or not ctx.x.dtype.is_floating_point or cost.per_input == 0 or cost.per_call \
            or getattr(ctx.explainer, "batch_sensitive", False):
        return None  # batched gradient methods only (saliency, IG, ...): not per-sample loops or Wachter's search
    n = len(ctx.x)
    per_input = cost.per_input
    rows = chunk_rows(ctx.chunk_size, ctx.x[0].numel()) if ctx.chunk_size is not None else \
        automatic_rows(ctx.model, ctx.x[0].cpu().numpy())  # ``auto``: the native layout has the same activations
    step = n * per_input  # whole steps, else groups of inputs
    per_call = step * max(1, rows // step) if step <= rows else per_input * max(1, rows // per_input)
    total = int(params["nr_samples"]) * n * per_input
    generator = torch.Generator().manual_seed(0)
    inputs = ctx.x.repeat(total // n, *[1] * (ctx.x.dim() - 1))
    inputs = inputs + 0.05 * torch.randn(inputs.shape, generator=generator).to(inputs.device)
    targets = ctx.targets.repeat(total // n).reshape(-1, 1)
    folds = bool(getattr(ctx.explainer, "target_gradient_only", False))

    def run() -> None:
        with exact_pool_kernels(ctx.model) if fast_kernels else contextlib.nullcontext(), \
                folded_head(ctx.model) if fast_kernels and folds else contextlib.nullcontext():
            for start in range(0, total, per_call):
                x = inputs[start:start + per_call].detach().requires_grad_(True)
                torch.autograd.grad(ctx.model(x).gather(1, targets[start:start + per_call]).sum(), x)

    return run


def bench_metric(ctx: ScoreContext, name: str, params: dict, seed: int, args: argparse.Namespace,
                 floor: Callable[[], None] | None = None, fast_floor: Callable[[], None] | None = None) -> dict:
    clock = _clock(args.device)
    spec = METRICS.get(name)
    engines = ("quantus", "fast_before", "fast") if args.before or args.before_chunk or args.before_fold else \
        ("quantus", "fast")
    times: dict[str, list[float]] = {e: [] for e in engines}
    floor_times: list[float] = []
    fast_floor_times: list[float] = []
    shares: dict[str, list[float]] = {e: [] for e in engines}
    parts: dict[str, list[dict[str, float]]] = {e: [] for e in engines}
    classes = [c for c in (spec.quantus_class, FAST_CLASSES.get(spec.quantus_class)) if c is not None]
    values: dict[str, np.ndarray] = {}
    for _ in range(args.warmup):  # untimed: first-call costs (lazy imports, first primitives) land on neither engine
        for engine in engines:
            scored, variant = _engine(engine, ctx, args)
            with variant:
                score(spec, dict(params), scored, seed)
    for _ in range(args.repeats):
        for engine in engines:
            scored, variant = _engine(engine, ctx, args)
            with variant, ForwardClock(ctx.model, clock) as forward, \
                    (Breakdown(classes, forward, clock) if args.breakdown else contextlib.nullcontext()) as split:
                started = clock()
                result = score(spec, dict(params), scored, seed)
                seconds = clock() - started
            if split is not None:
                parts[engine].append(split.parts(seconds))
            times[engine].append(seconds)
            shares[engine].append(forward.seconds / seconds if seconds > 0 else 0.0)
            values[engine] = result.values
        if floor is not None:
            started = clock()
            floor()
            floor_times.append(clock() - started)
        if fast_floor is not None:
            started = clock()
            fast_floor()
            fast_floor_times.append(clock() - started)
    n = len(ctx.x)
    median = {e: statistics.median(t) for e, t in times.items()}
    diff = np.abs(values["fast"] - values["quantus"])
    paired = [q / f for q, f in zip(times["quantus"], times["fast"]) if f > 0]  # one ratio per interleaved pair
    breakdown = {engine: {part: 1000 * statistics.median(p[part] for p in rows) for part in Breakdown.PARTS}
                 for engine, rows in parts.items() if rows}
    floor_row = {} if not floor_times else {
        "ms_per_sample_model_floor": 1000 * statistics.median(floor_times) / n, "seconds_model_floor": floor_times,
        "speedup_ceiling": median["quantus"] / statistics.median(floor_times),
        "speedup_ceiling_torch_kernels": median["quantus"] / statistics.median(floor_times),
        "fast_over_floor": median["fast"] / statistics.median(floor_times)}
    if fast_floor_times:  # the model work with the fast engine's kernels and folded head (same bits): what it runs
        floor_row.update({
            "ms_per_sample_model_floor_fast_kernels": 1000 * statistics.median(fast_floor_times) / n,
            "seconds_model_floor_fast_kernels": fast_floor_times,
            "speedup_ceiling": median["quantus"] / statistics.median(fast_floor_times),
            "speedup_ceiling_fast_kernels": median["quantus"] / statistics.median(fast_floor_times),
            "fast_over_fast_kernel_floor": median["fast"] / statistics.median(fast_floor_times)})
    before_row = {} if "fast_before" not in times else {
        "ms_per_sample_fast_before": 1000 * statistics.median(times["fast_before"]) / n,
        "seconds_fast_before": times["fast_before"],
        "speedup_before": median["quantus"] / median["fast_before"],
        "speedup_before_min": min(q / f for q, f in zip(times["quantus"], times["fast_before"]) if f > 0),
        "speedup_before_max": max(q / f for q, f in zip(times["quantus"], times["fast_before"]) if f > 0),
        "speedup_over_before": median["fast_before"] / median["fast"],
        "max_abs_diff_before": float(np.nanmax(np.abs(values["fast_before"] - values["quantus"])))
        if np.isfinite(values["fast_before"] - values["quantus"]).any() else 0.0,
        "bitwise_equal_to_before": values["fast_before"].tobytes() == values["fast"].tobytes()}
    return {**floor_row, **before_row, **({"breakdown": breakdown} if breakdown else {}), "metric": name,
            "ms_per_sample_quantus": 1000 * median["quantus"] / n,
            "ms_per_sample_fast": 1000 * median["fast"] / n, "speedup": median["quantus"] / median["fast"],
            "speedup_min": min(paired, default=0.0), "speedup_max": max(paired, default=0.0),
            "forward_share_fast_min": min(shares["fast"]), "forward_share_fast_max": max(shares["fast"]),
            "seconds_quantus": times["quantus"], "seconds_fast": times["fast"],
            "forward_share_quantus": statistics.median(shares["quantus"]),
            "forward_share_fast": statistics.median(shares["fast"]),
            "max_abs_diff": float(np.nanmax(diff)) if np.isfinite(diff).any() else 0.0,
            "nan_mismatch": int((np.isnan(values["fast"]) != np.isnan(values["quantus"])).sum())}


def bench_cell(ctx: ScoreContext, names: list[str], suite: dict, pair: str, args: argparse.Namespace) -> dict:
    """The metrics ``names`` scored one after the other as a sweep cell scores them (one shared constant-output
    screen per cell and engine); CPU time of the whole cell per engine, interleaved repetitions."""
    clock = _clock(args.device)
    times: dict[str, list[float]] = {"quantus": [], "fast": []}
    for repeat in range(args.warmup + args.repeats):
        for engine in ("quantus", "fast"):
            started = clock()
            with shared_screens():
                for name in names:
                    score(METRICS.get(name), dict(suite[name]), replace(ctx, engine=engine),
                          derive_seed("bench-scoring", pair, name))
            if repeat >= args.warmup:
                times[engine].append(clock() - started)
    paired = [q / f for q, f in zip(times["quantus"], times["fast"]) if f > 0]
    median = {e: statistics.median(t) for e, t in times.items()}
    return {"metrics": names, "seconds_quantus": times["quantus"], "seconds_fast": times["fast"],
            "speedup": median["quantus"] / median["fast"], "speedup_min": min(paired, default=0.0),
            "speedup_max": max(paired, default=0.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="integrated_gradients", help="conf/method/<name>.yaml")
    parser.add_argument("--metrics", nargs="+", default=None, help="default: every metric with a fast class")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions per engine")
    parser.add_argument("--warmup", type=int, default=1, help="untimed pairs before the timed repetitions")
    parser.add_argument("--cell", action="store_true",
                        help="also time the metrics together as one sweep cell (one shared screen per engine)")
    parser.add_argument("--breakdown", action="store_true",
                        help="split each call's CPU time: forwards, the metric's code, Quantus, the adapter")
    parser.add_argument("--before", action="store_true",
                        help="also time the fast engine with its previous call sizing (before Explainer.call_rows), "
                             "interleaved: JSON keys *_before, speedup_over_before")
    parser.add_argument("--before-chunk", type=int, default=None,
                        help="the before variant is the fast engine as before chunk_size auto: this fixed chunk_size "
                             "(1024), captum's per-step IG path, the pooling dispatch mode; interleaved; JSON keys "
                             "*_before, bitwise_equal_to_before")
    parser.add_argument("--before-fold", action="store_true",
                        help="the before variant is the fast engine without its folded pooling + Linear head "
                             "(saliency, IG); interleaved; JSON keys *_before, bitwise_equal_to_before")
    parser.add_argument("--chunk-size", type=chunk_argument, default=None,
                        help="rows per forward / re-explanation call, or auto (the config default)")
    add_common_arguments(parser, OUT)
    args = parser.parse_args()
    apply_device_and_threads(parser, args)
    malloc_tuned = keep_freed_memory()  # what the fast engine does on first use; set here so both engines share it
    stability = conf_section("metrics", "stability")
    suite = {**conf_section("metrics", "faithfulness"), **stability}
    names = args.metrics or [n for n in suite if METRICS.get(n).quantus_class in FAST_CLASSES]
    rows, cells = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.store or tmp)
        for pair in args.pairs:
            ctx = context(pair, store, args)
            model_name, dataset_name = pair.split(":")
            for name in names:
                spec = METRICS.get(name)
                if metric_not_applicable(spec, create(DATASETS, "dataset", dataset_name), has_counterfactuals=False):
                    continue
                floor = model_floor(ctx, suite[name]) if name in stability else None
                fast_floor = model_floor(ctx, suite[name], fast_kernels=True) if name in stability else None
                row = {"model": model_name, "dataset": dataset_name, "method": args.method,
                       **bench_metric(ctx, name, suite[name], derive_seed("bench-scoring", pair, name), args, floor,
                                      fast_floor)}
                rows.append(row)
                ceiling = f"  ceiling {row['speedup_ceiling']:.2f}x" if "speedup_ceiling" in row else ""
                if "speedup_before" in row:
                    ceiling += (f"  before {row['speedup_before']:.2f}x (max|diff| {row['max_abs_diff_before']:.1e}; "
                                f"{'bitwise' if row['bitwise_equal_to_before'] else 'NOT bitwise'} = before)")
                print(f"  {pair:<20} {name:<28} {row['speedup']:5.2f}x  fwd {row['forward_share_fast']:.0%} "
                      f"(was {row['forward_share_quantus']:.0%})  max|diff| {row['max_abs_diff']:.1e}{ceiling}",
                      file=sys.stderr, flush=True)
            if args.cell:
                applicable = [r["metric"] for r in rows if f"{r['model']}:{r['dataset']}" == pair]
                cells[pair] = bench_cell(ctx, applicable, suite, pair, args)
                print(f"  {pair:<20} {'cell (shared screen)':<28} {cells[pair]['speedup']:5.2f}x", file=sys.stderr,
                      flush=True)
    lines = ["| model | dataset | metric | ms/sample quantus | ms/sample fast | speedup (pairs min-max) "
             "| fwd share quantus -> fast (min-max) | max abs diff |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['dataset']} | {r['metric']} | {r['ms_per_sample_quantus']:.2f} | "
                     f"{r['ms_per_sample_fast']:.2f} | {r['speedup']:.2f}x ({r['speedup_min']:.2f}-"
                     f"{r['speedup_max']:.2f}) | {r['forward_share_quantus']:.0%} -> {r['forward_share_fast']:.0%} "
                     f"({r['forward_share_fast_min']:.0%}-{r['forward_share_fast_max']:.0%}) | "
                     f"{r['max_abs_diff']:.1e} |")
    for pair, cell in cells.items():
        lines.append(f"| {pair.replace(':', ' | ')} | cell: {' + '.join(cell['metrics'])} | | | {cell['speedup']:.2f}x "
                     f"({cell['speedup_min']:.2f}-{cell['speedup_max']:.2f}) | | |")
    before = [r for r in rows if "speedup_before" in r]
    if before:
        lines += ["", "| model | dataset | method | metric | speedup before (pairs) | speedup now (pairs) "
                  "| now / before | max abs diff before / now | now = before bit for bit |",
                  "|---|---|---|---|---:|---:|---:|---:|---|"]
        lines += [f"| {r['model']} | {r['dataset']} | {r['method']} | {r['metric']} | {r['speedup_before']:.2f}x "
                  f"({r['speedup_before_min']:.2f}-{r['speedup_before_max']:.2f}) | {r['speedup']:.2f}x "
                  f"({r['speedup_min']:.2f}-{r['speedup_max']:.2f}) | {r['speedup_over_before']:.2f}x | "
                  f"{r['max_abs_diff_before']:.1e} / {r['max_abs_diff']:.1e} | "
                  f"{'yes' if r['bitwise_equal_to_before'] else 'no'} |" for r in before]
    split = [r for r in rows if "breakdown" in r]
    if split:
        lines += ["", "| model | dataset | metric | engine | " + " | ".join(Breakdown.PARTS) + " (ms per call) |",
                  "|---|---|---|---|" + "---:|" * len(Breakdown.PARTS)]
        lines += [f"| {r['model']} | {r['dataset']} | {r['metric']} | {engine} | "
                  + " | ".join(f"{r['breakdown'][engine][part]:.2f}" for part in Breakdown.PARTS) + " |"
                  for r in split for engine in ("quantus", "fast")]
    floors = [r for r in rows if "speedup_ceiling" in r]
    if floors:
        lines += ["", "| model | dataset | metric | ms/sample quantus | ms/sample fast | ms/sample model floor "
                  "(torch / fast kernels) | speedup | ceiling (quantus / fast engine's floor; torch's) "
                  "| fast / floor (torch / fast kernels) |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['model']} | {r['dataset']} | {r['metric']} | {r['ms_per_sample_quantus']:.2f} | "
                  f"{r['ms_per_sample_fast']:.2f} | {r['ms_per_sample_model_floor']:.2f} / "
                  f"{r['ms_per_sample_model_floor_fast_kernels']:.2f} | {r['speedup']:.2f}x | "
                  f"{r['speedup_ceiling']:.2f}x; {r['speedup_ceiling_torch_kernels']:.2f}x | "
                  f"{r['fast_over_floor']:.2f} / {r['fast_over_fast_kernel_floor']:.2f} |"
                  for r in floors]
    print("\n".join(lines))
    environment = {"device": args.device, "clock": "wall" if args.device.startswith("cuda") else "process CPU",
                   "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
                   "n_samples": args.n_samples, "method": args.method, "repeats": args.repeats,
                   "chunk_size": args.chunk_size or "auto", "seed": args.seed, "warmup": args.warmup,
                   "before": args.before, "before_chunk": args.before_chunk, "before_fold": args.before_fold,
                   "malloc_tuned": malloc_tuned,
                   "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    speedup = {f"{r['model']}:{r['dataset']}": {} for r in rows}  # {pair: {metric: median speedup}}
    for r in rows:
        speedup[f"{r['model']}:{r['dataset']}"][r["metric"]] = r["speedup"]
    out.write_text(json.dumps({"environment": environment, "speedup": speedup, "results": rows,
                               "cell_speedup": {pair: cell["speedup"] for pair, cell in cells.items()},
                               "cells": cells}, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
