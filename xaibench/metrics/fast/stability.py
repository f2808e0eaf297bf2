"""Fast Quantus stability metrics: every perturbed input re-explained in a few chunked calls.

Quantus 0.6 (``quantus/metrics/robustness/*.py``) loops over ``nr_samples`` steps and, per step, perturbs the
batch, checks every sample with ``np.allclose`` (a warning the adapter discards), predicts twice to find flipped
labels and re-explains the ``N`` perturbed inputs. Here all ``nr_samples`` perturbations are drawn first, in the
same order, into one ``(S, N, ...)`` array, and re-explained in calls of about ``chunk_size`` forward rows
(whole steps, or groups of inputs when one step is larger; an IG with 32 path steps counts 32 rows per
input; with ``chunk_size: auto``, as many rows as the model's activations allow, ``_sizing.py``) with the
explainer's convergence diagnostics off (:func:`xaibench.explainers.base.without_diagnostics`: not part of the
map) and gradients taken of the summed target outputs (:func:`xaibench.explainers.base.summed_gradients`: the
same maps bit for bit, without captum's per-row backward seeds). Quantus' ``explain_batch`` post-processing runs
on all steps at once where it is per sample: the attribution asserts (Quantus' own function re-run on a step that
fails, for its message), the suite's per-sample normalisation, ``abs``; other normalisations run per step. Label
checks are forwarded in chunks. Similarities are Quantus' own functions; the relative-stability objectives (per
sample by construction) run once on all steps.

Explainers draw their randomness per sample (``xaibench.explainers.seeding``), so re-explaining in other batches
gives the same maps; the adapter's ``explain_func`` keeps Quantus' global RNG untouched.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Any

import numpy as np
import quantus
from quantus.helpers import asserts, utils

from xaibench.engine.cell import CHUNK_ELEMENTS
from xaibench.engine.oom import OUT_OF_MEMORY, release_cached_memory
from xaibench.explainers.base import CallRows, forward_rows, summed_gradients, without_diagnostics
from xaibench.metrics.fast._draws import keeping_global_draws
from xaibench.metrics.fast._folded_head import folded_head
from xaibench.metrics.fast._forward import BATCH_INDEPENDENT_ROWS, ChunkedForward, chunk_rows
from xaibench.metrics.fast._pool_kernels import exact_pool_forwards, exact_pool_kernels
from xaibench.metrics.fast._sizing import automatic_rows
from xaibench.metrics.fast.faithfulness import ChunkedMetric
from xaibench.metrics.functional import normalise_by_max_per_sample
from xaibench.metrics.layout import QuantusModel
from xaibench.metrics.stability import RelativeInputStabilityFloored, RelativeOutputStabilityFloored

# Smallest back-propagated forward (rows) that re-explains through the exact pooling kernels (bench_scoring.py, cnn:
# calls of 320-1,024 rows gain or break even; 25-32-row forwards lose 30-40% to the dispatch mode's per-operator cost).
POOL_KERNEL_ROWS = 256
# ``chunk_size: auto`` enlarges re-explanation calls only where every call of the fixed chunk holds at least this many
# inputs: torch's CPU GEMMs give a row other bits in forwards of fewer rows (linear layers below 16 rows, measured on
# torch 2.13), so merging such calls could change a map; from 32 rows on, a row's bits do not depend on its batch.
EXACT_ROWS = 32
PER_SAMPLE_NORMALISATIONS = frozenset({normalise_by_max_per_sample})  # rows independent: all steps in one call


class ChunkedStability(ChunkedMetric):
    """Shared steps of the stability metrics: draw all perturbations, re-explain and predict in chunks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Quantus keeps this flag only inside closures; read it (or the Quantus class' default) here.
        default = _nan_on_flip_default(type(self))
        self.nan_on_flip = bool(kwargs.get("return_nan_when_prediction_changes", default))
        super().__init__(*args, **kwargs)

    def _perturb_all(self, x_batch: np.ndarray, nr_samples: int) -> np.ndarray:
        """``nr_samples`` perturbed copies of ``x_batch`` ``(N, ...)``, in Quantus' draw order: ``(S, N, ...)``."""
        n = x_batch.shape[0]
        indices = np.tile(np.arange(0, x_batch[0].size), (n, 1))
        return np.stack([self.perturb_func(arr=x_batch.reshape(n, -1), indices=indices).reshape(*x_batch.shape)
                         for _ in range(nr_samples)])

    @keeping_global_draws
    def _explain_all(self, model: Any, steps: np.ndarray, y_batch: np.ndarray) -> np.ndarray:
        """Quantus' ``explain_batch`` for each step ``(S, N, ...)``, a few steps per explainer call.

        A call holds as many inputs as the explainer's ``call_rows`` (``Explainer.call_rows``: the rows of its
        largest forward) fit in the chunk (:func:`inputs_per_call`): whole steps while they fit, else a group of
        inputs at a time (at least one input; each input's rows stay in one call, so IG's sum over its path is
        captum's; only for explainers that back-propagate, whose calls keep every activation for the backward: a
        gradient-free one gets at least a whole step, Quantus' composition, because occlusion's and feature
        ablation's differences of outputs turn the rounding of a forward of fewer than ~32 rows, e.g. its
        unperturbed inputs, into 3e-6 relative score differences). A step of 32 inputs x 32 IG path steps is 1,024
        rows with their activations kept for the backward; methods whose forwards do not grow with
        the call (SmoothGrad's per-sample loop, LIME's and Kernel SHAP's perturbation batches, which forward the
        chunk's rows at a time here: ``forward_rows``) take every step at once, within their working memory.
        With ``chunk_size: auto`` the calls are those of the default chunk, enlarged to as many rows as the model's
        activations allow (:func:`~xaibench.metrics.fast._sizing.automatic_rows`: the mlp's 288 elements per row
        give one call for all ten steps, the cnn's 7,242 keep the default) when the default needs several calls and
        each holds at least ``EXACT_ROWS`` inputs (so every forward keeps its rows' bits); the surrogates' forwards
        keep the default chunk's rows.
        A network that average-pools on CPU pools through exact kernels without torch's scalar loops (torch's bits
        and layouts; :mod:`xaibench.metrics.fast._pool_kernels`; :meth:`_pool_kernels` says when); for saliency and
        IG (``target_gradient_only``) a network ending in ReLU, average pooling, ``Flatten`` and ``Linear`` runs that
        tail as one folded layer instead (:mod:`xaibench.metrics.fast._folded_head`: the same input gradients bit for
        bit).
        On CUDA out-of-memory the steps per call are halved, then the inputs per call (and the surrogates' rows per
        forward), and the block is retried (``backoffs``; the maps are the same: explainers draw per sample); one
        input of one step in one-row forwards must fit. An
        explainer marked ``batch_sensitive`` (Wachter: rounding decides its lambda rounds) gets Quantus' own calls,
        one step of the ``N`` inputs each, so its maps are Quantus' bit for bit; so does every explainer when
        ``N < BATCH_INDEPENDENT_ROWS`` (16): a forward of fewer rows rounds a row otherwise than a merged one, and
        occlusion's and feature ablation's differences of outputs (of their ``N`` unperturbed inputs) amplified that
        to 4e-6 relative RIS/ROS differences (tiny mlp, 3-9 samples); IG's path sum, reduced over a wider batch,
        to 1e-6.
        """
        n = len(y_batch)
        network = model.get_model() if hasattr(model, "get_model") else model
        rows = chunk_rows(self.chunk_size, steps[0, 0].size if steps.size else 1)
        cost = getattr(self.explain_func, "call_rows", CallRows())
        per_call, group = self._calls(cost, rows, len(steps), n)
        if self.automatic and per_call < len(steps) and isinstance(network, QuantusModel) and \
                min(group, n % group or group) >= EXACT_ROWS:  # more than one call, each of >= EXACT_ROWS inputs
            per_call, group = self._calls(cost, automatic_rows(network, steps[0, 0]), len(steps), n)
        maps: list[np.ndarray] = []
        start, forward = 0, rows  # the surrogates' rows per forward (``forward_rows``), halved with the calls
        with without_diagnostics(), summed_gradients(), self._pool_kernels(network, per_call * group), \
                self._folded_head(network):
            while start < len(steps):
                block = steps[start:start + per_call]
                try:
                    with forward_rows(forward):
                        parts = [self._explain_block(model, network, block[:, i:i + group], y_batch[i:i + group])
                                 for i in range(0, n, group)]
                except OUT_OF_MEMORY:  # halve what the failed call held: its steps, else its inputs
                    per_call, group = len(block), min(group, n)
                    if per_call == 1 and group == 1 and (forward == 1 or cost.per_input > 0):
                        raise  # one input of one step; only the surrogates' forwards (per_input 0) shrink further
                    release_cached_memory()
                    self.backoffs += 1
                    per_call, group = (per_call // 2, group) if per_call > 1 else (1, max(1, group // 2))
                    forward = max(1, forward // 2)
                    continue
                maps.append(np.concatenate(parts, axis=1))
                start += len(block)
        return self._postprocess(steps, np.concatenate(maps, axis=0))

    def _calls(self, cost: CallRows, rows: int, n_steps: int, n: int) -> tuple[int, int]:
        """``(steps per call, inputs per call of a step)`` for calls of at most ``rows`` model rows
        (:func:`inputs_per_call`): whole steps while they fit, else groups of inputs (explainers that
        back-propagate only: a gradient-free one keeps a whole step); Quantus' calls for batch-sensitive ones and
        for steps of fewer than ``BATCH_INDEPENDENT_ROWS`` inputs (their forwards round otherwise when merged)."""
        if getattr(self.explain_func, "quantus_batches", False) or n < BATCH_INDEPENDENT_ROWS:
            return 1, n  # Quantus' calls exactly: batch-sensitive maps, or steps too small to merge bit for bit
        inputs = inputs_per_call(cost, rows, n_steps * n)
        if not getattr(self.explain_func, "backpropagates", True):  # keep a step's inputs together, as Quantus does
            inputs = max(inputs, n)
        return (max(1, inputs // n), n) if inputs >= n else (1, inputs)

    def _pool_kernels(self, network: Any, inputs: int) -> contextlib.AbstractContextManager:
        """The exact pooling kernels for calls of ``inputs`` inputs where they pay (the same bits either way).

        Their dispatch mode costs a Python call per operator. An explainer that back-propagates gets them around
        the whole call (the backward's pooling too) only for a forward of at least ``POOL_KERNEL_ROWS`` rows (IG,
        saliency): per-sample loops (SmoothGrad, GradientSHAP) and Wachter's many small Adam steps run faster on
        torch's kernels. One that does not (occlusion, LIME, Kernel SHAP) gets them inside the network's forwards
        only (:func:`exact_pool_forwards`), not around its own many small operators."""
        cost = getattr(self.explain_func, "call_rows", CallRows())
        if not getattr(self.explain_func, "backpropagates", True):
            return exact_pool_forwards(network)
        if cost.largest_forward(inputs) >= POOL_KERNEL_ROWS:
            return exact_pool_kernels(network)
        return contextlib.nullcontext()

    def _folded_head(self, network: Any) -> contextlib.AbstractContextManager:
        """The network's pooling, ``Flatten`` and last ``Linear`` folded into one ``Linear`` while re-explaining,
        for explainers that read only the summed target logits' input gradient (``target_gradient_only``: saliency,
        IG; the same gradient bits, :mod:`~xaibench.metrics.fast._folded_head`), else nothing."""
        if not getattr(self.explain_func, "target_gradient_only", False):
            return contextlib.nullcontext()
        return folded_head(network.model if isinstance(network, QuantusModel) else network)

    def _explain_block(self, model: Any, network: Any, block: np.ndarray, y_batch: np.ndarray) -> np.ndarray:
        """One explainer call on ``block`` ``(s, g, ...)`` (``g`` inputs of ``s`` steps): maps ``(s, g, ...)``."""
        x = block.reshape(-1, *block.shape[2:])
        if hasattr(model, "shape_input"):
            x = model.shape_input(x=x, shape=x.shape, channel_first=True, batched=True)
        a = self.explain_func(model=network, inputs=x, targets=np.tile(y_batch, len(block)), **self.explain_func_kwargs)
        a = utils.expand_attribution_channel(a, x)
        return a.reshape(len(block), len(y_batch), *a.shape[1:])

    def _postprocess(self, steps: np.ndarray, maps: np.ndarray) -> np.ndarray:
        """``explain_batch``'s asserts, normalisation and ``abs`` on every step ``(S, N, ...)``."""
        _assert_attributions(steps, maps)
        if self.normalise:
            if _normalisation(self.normalise_func) in PER_SAMPLE_NORMALISATIONS:
                maps = self.normalise_func(maps.reshape(-1, *maps.shape[2:])).reshape(maps.shape)
            else:
                maps = np.stack([self.normalise_func(a) for a in maps])
        if self.abs:
            maps = np.abs(maps)
        return maps

    def _changed(self, model: Any, x_batch: np.ndarray, steps: np.ndarray, flag: bool) -> list[list[int]]:
        """Per step, the samples whose predicted label the perturbation changed (Quantus' helper, batched)."""
        if not flag:
            return [[] for _ in steps]
        forward = self._forward(model, None, n=len(x_batch))
        outputs = forward.run([x_batch, *steps])
        self._done(forward)
        before = outputs[0].argmax(axis=-1)
        return [np.reshape(np.argwhere(before != out.argmax(axis=-1)), -1).tolist() for out in outputs[1:]]


def inputs_per_call(cost: CallRows, rows: int, total: int) -> int:
    """Inputs one re-explanation call may hold (at least one, at most ``total``): as many as keep the call's
    largest forward within ``rows`` (``cost.per_input`` rows each; the fixed ``cost.per_call`` part does not depend
    on the split) and its other working memory within ``CHUNK_ELEMENTS`` (``cost.elements_per_input`` each)."""
    inputs = total
    if cost.per_input > 0:
        inputs = min(inputs, rows // cost.per_input)
    if cost.elements_per_input > 0:
        inputs = min(inputs, CHUNK_ELEMENTS // cost.elements_per_input)
    return max(1, inputs)


@functools.lru_cache(maxsize=None)
def _nan_on_flip_default(metric_class: type) -> bool:
    """The Quantus class' default ``return_nan_when_prediction_changes`` (read once per class)."""
    quantus_class = next(c for c in metric_class.__mro__ if c.__module__.startswith("quantus."))
    return bool(inspect.signature(quantus_class.__init__).parameters["return_nan_when_prediction_changes"].default)


def _normalisation(func: Any) -> Any:
    """The function behind Quantus' ``functools.partial`` (set when ``normalise_func_kwargs`` are given)."""
    while isinstance(func, functools.partial):
        func = func.func
    return func


def _assert_attributions(steps: np.ndarray, maps: np.ndarray) -> None:
    """``quantus.helpers.asserts.assert_attributions`` on every step ``(S, N, ...)``, the value checks vectorised.

    The shape checks are the same for every step: Quantus' function runs on the first step. A later step that
    fails a value check (all zero, all one, one value, all negative) is re-checked by Quantus' function, which
    raises its own message; the first failing step raises, as in Quantus' loop.
    """
    asserts.assert_attributions(x_batch=steps[0], a_batch=maps[0])
    flat = maps.reshape(len(maps), -1)
    uniform = np.ones(len(flat), dtype=bool) if flat.shape[1] <= 1 else ~np.any(flat != flat[:, :1], axis=1)
    bad = np.all(flat == 0, axis=1) | np.all(flat == 1.0, axis=1) | uniform | np.all(flat < 0.0, axis=1)
    for index in np.flatnonzero(bad):
        asserts.assert_attributions(x_batch=steps[index], a_batch=maps[index])


def _stacked(batch: np.ndarray, n_steps: int) -> np.ndarray:
    """``(N, ...)`` repeated for every step, flattened to ``(S * N, ...)`` (row ``s * N + i`` is sample ``i``)."""
    return np.broadcast_to(batch, (n_steps, *batch.shape)).reshape(-1, *batch.shape[1:])


class _Sensitivity(ChunkedStability):
    """MaxSensitivity / AvgSensitivity body (Yeh et al. 2019): ``||a(x') - a(x)|| / ||a(x)||`` per step."""

    def _similarities(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray
                      ) -> np.ndarray:
        n = x_batch.shape[0]
        a_batch = a_batch.reshape(n, -1)
        steps = self._perturb_all(x_batch, self.nr_samples)
        changed = self._changed(model, x_batch, steps, self.nan_on_flip)
        maps = self._explain_all(model, steps, y_batch)
        similarities = np.zeros((n, self.nr_samples)) * np.nan
        for step_id, a_perturbed in enumerate(maps):  # Quantus' similarity and norms, step by step
            sensitivities = self.similarity_func(a=a_batch, b=a_perturbed.reshape(n, -1))
            similarities[:, step_id] = self.norm_numerator(a=sensitivities) / self.norm_denominator(a=a_batch)
            similarities[changed[step_id], step_id] = np.nan
        return similarities


class FastMaxSensitivity(_Sensitivity, quantus.MaxSensitivity):
    """Yeh et al. 2019, as ``quantus.MaxSensitivity``; re-explains in chunks."""

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> np.ndarray:
        return self.max_func(self._similarities(model, x_batch, y_batch, a_batch), axis=1)


class FastAvgSensitivity(_Sensitivity, quantus.AvgSensitivity):
    """Yeh et al. 2019, as ``quantus.AvgSensitivity``; re-explains in chunks."""

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> np.ndarray:
        return self.mean_func(self._similarities(model, x_batch, y_batch, a_batch), axis=1)


class FastLocalLipschitzEstimate(ChunkedStability, quantus.LocalLipschitzEstimate):
    """Alvarez-Melis & Jaakkola 2018, as ``quantus.LocalLipschitzEstimate``; re-explains in chunks."""

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> np.ndarray:
        n = x_batch.shape[0]
        a_batch = a_batch.reshape(n, -1)
        steps = self._perturb_all(x_batch, self.nr_samples)
        changed = self._changed(model, x_batch, steps, self.nan_on_flip)
        maps = self._explain_all(model, steps, y_batch)
        similarities = np.zeros((n, self.nr_samples)) * np.nan
        for step_id, (x_perturbed, a_perturbed) in enumerate(zip(steps, maps)):
            similarities[:, step_id] = self.similarity_func(
                a=a_batch, b=a_perturbed.reshape(n, -1), c=x_batch.reshape(n, -1), d=x_perturbed.reshape(n, -1),
                norm_numerator=self.norm_numerator, norm_denominator=self.norm_denominator,
            )
            similarities[changed[step_id], step_id] = np.nan
        return self.max_func(similarities, axis=1)


class FastRelativeInputStability(ChunkedStability, quantus.RelativeInputStability):
    """Agarwal et al. 2022, as ``quantus.RelativeInputStability``; re-explains in chunks.

    The objective is per sample (Quantus' and :class:`RelativeInputStabilityFloored`'s): it runs once on all steps
    stacked to ``(S * N, ...)``.
    """

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> np.ndarray:
        s, n = self._nr_samples, x_batch.shape[0]
        steps = self._perturb_all(x_batch, s)
        maps = self._explain_all(model, steps, y_batch)
        changed = self._changed(model, x_batch, steps, self.nan_on_flip)
        ris_batch = self.relative_input_stability_objective(
            _stacked(x_batch, s), steps.reshape(s * n, *x_batch.shape[1:]), _stacked(a_batch, s),
            maps.reshape(s * n, *maps.shape[2:])).reshape(s, n)
        for index, flipped in enumerate(changed):
            if len(flipped) != 0:
                ris_batch[index, flipped] = np.nan
        result = np.max(ris_batch, axis=0)
        return [self.aggregate_func(result)] if self.return_aggregate else result


class FastRelativeOutputStability(ChunkedStability, quantus.RelativeOutputStability):
    """Agarwal et al. 2022, as ``quantus.RelativeOutputStability``; re-explains and predicts in chunks.

    The objective is per sample: it runs once on all steps stacked to ``(S * N, ...)``.
    """

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> np.ndarray:
        s, n = self._nr_samples, x_batch.shape[0]
        steps = self._perturb_all(x_batch, s)
        maps = self._explain_all(model, steps, y_batch)
        # One step (N rows) per forward, as Quantus: the objective divides by the logit change, which would turn
        # a batched GEMM's float32 reassociation (~6e-8) into ~3e-6 relative differences. Forwards are cheap here.
        forward = ChunkedForward(model, n, None)
        outputs = forward.run([x_batch, *steps])
        self._done(forward)
        logits, perturbed = outputs[0], outputs[1:]
        ros_batch = self.relative_output_stability_objective(
            _stacked(logits, s), perturbed.reshape(s * n, -1), _stacked(a_batch, s),
            maps.reshape(s * n, *maps.shape[2:])).reshape(s, n)
        if self.nan_on_flip:
            ros_batch[perturbed.argmax(axis=-1) != logits.argmax(axis=-1)[None, :]] = np.nan
        result = np.max(ros_batch, axis=0)
        return [self.aggregate_func(result)] if self.return_aggregate else result


class FastRelativeInputStabilityFloored(FastRelativeInputStability, RelativeInputStabilityFloored):
    """The suite's floored RIS (:class:`RelativeInputStabilityFloored`), re-explained in chunks."""


class FastRelativeOutputStabilityFloored(FastRelativeOutputStability, RelativeOutputStabilityFloored):
    """The suite's floored ROS (:class:`RelativeOutputStabilityFloored`), re-explained in chunks."""
