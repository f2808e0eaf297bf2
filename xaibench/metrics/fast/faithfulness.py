"""Fast Quantus faithfulness metrics: same parameters, perturbations, draws and similarity; chunked forwards.

Each class subclasses the Quantus metric and overrides only ``evaluate_batch``. Quantus' own body is kept step
for step (``quantus/metrics/faithfulness/*.py``, version 0.6) with these changes:

1. the per-sample ``warn_perturbation_caused_no_change`` check (an ``np.allclose`` per sample and step, 40-70% of
   the time; the adapter silences its warning anyway) is not run;
2. every perturbed batch is made first, in Quantus' loop order (so ``np.random`` draws happen in the same order),
   and forwarded through :class:`ChunkedForward` (``chunk_size`` rows per forward, on the model's device);
3. where numpy allows the same draws with less Python overhead, they are made that way: FaithfulnessCorrelation's
   subsets by in-place row shuffles (:func:`random_subsets`), MonotonicityCorrelation's repeats of a step and
   FaithfulnessEstimate's steps in stacked perturbation calls (:func:`stacked_perturbations`);
4. FaithfulnessEstimate and PixelFlipping do not forward again a row their step left unchanged (bit for bit equal to
   the unperturbed input, or to the step before for PixelFlipping's cumulative removal): it takes that row's
   output (:class:`~xaibench.metrics.fast._reuse.ReusingForward`; Quantus forwards it and warns);
5. FaithfulnessEstimate takes the outputs at the unperturbed input from the adapter's constant-output screen,
   which has just forwarded it (``output_screen.ScreenedOutputs``), instead of forwarding ``x`` again (only when
   steps share forwards, ``chunk_size`` above ``N``: one step per forward stays bit for bit Quantus);
6. FaithfulnessEstimate's and PixelFlipping's steps are compared with their reference rows, gathered and given
   their outputs a block of steps at a time (:func:`stacked_blocks`, :func:`cumulative_perturbations`; the same
   chunks and bits as step by step).

Scores equal plain Quantus (``tests/unit/test_metrics_fast.py``, ``test_fast_reuse.py``): the same perturbations,
the same reductions in the same order; only the forward's batch composition differs (float reassociation in
batched kernels, if any).
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np
import quantus

from xaibench.metrics.fast._allocator import keep_freed_memory
from xaibench.metrics.fast._forward import DEFAULT_CHUNK_SIZE, ChunkedForward, chunk_rows, step_chunk
from xaibench.metrics.fast._reuse import ReusingForward
from xaibench.metrics.layout import QuantusModel
from xaibench.metrics.output_screen import ScreenedOutputs


class ChunkedMetric:
    """Mixin: takes ``chunk_size`` (rows per forward) and counts CUDA out-of-memory halvings in ``backoffs``;
    ``screened``: the adapter's constant-output screen's outputs at ``x`` (``output_screen.ScreenedOutputs``).

    ``chunk_size=None`` (``auto``): forwards take ``DEFAULT_CHUNK_SIZE`` rows and the stability metrics size their
    re-explanation calls by the model's activations (``_sizing.py``); ``automatic`` says so."""

    def __init__(self, *args: Any, chunk_size: int | None = DEFAULT_CHUNK_SIZE,
                 screened: ScreenedOutputs | None = None, **kwargs: Any) -> None:
        keep_freed_memory()  # chunk-sized activations: no mmap/munmap per forward (``_allocator.py``)
        self.automatic = chunk_size is None
        self.chunk_size = DEFAULT_CHUNK_SIZE if chunk_size is None else int(chunk_size)
        self.screened = screened
        self.backoffs = 0
        super().__init__(*args, **kwargs)

    def _forward(self, model: Any, targets: np.ndarray | None, reuse: str | None = None,
                 x_first: np.ndarray | None = None, n: int | None = None) -> ChunkedForward:
        """The chunked forward for steps of ``n`` samples (default: ``len(targets)``); ``reuse``
        (``"first"``/``"previous"``) skips rows a step left unchanged (``_reuse.py``), for Quantus-layout models only
        (in the text "tokens" view row ``i`` must be sample ``i``). ``x_first``: the first step's inputs, whose
        outputs are taken from the screen if it forwarded them. Steps of fewer than ``BATCH_INDEPENDENT_ROWS``
        samples are forwarded one at a time (:func:`step_chunk`: Quantus' forwards, its bits; nothing skipped)."""
        chunk = step_chunk(self.chunk_size, len(targets) if n is None else n)
        if reuse is not None and isinstance(getattr(model, "model", None), QuantusModel):
            forward = ReusingForward(model, chunk, targets, reuse)
            if x_first is not None:
                forward.first_outputs = self._screened_outputs(forward.network, x_first, targets)
            return forward
        return ChunkedForward(model, chunk, targets)

    def _screened_outputs(self, network: Any, x: np.ndarray, targets: np.ndarray | None) -> np.ndarray | None:
        """The screen's outputs at ``x`` as the forward gives them (``(N,)`` at ``targets``, else ``(N, K)``), if
        the screen forwarded these inputs through ``network``, the one this metric forwards (the Quantus-layout
        wrapper itself: logits, no softmax layer added)."""
        if self.screened is None:
            return None
        outputs = self.screened.at(network, x)
        if outputs is None or targets is None:
            return outputs
        return outputs[np.arange(len(x)), np.asarray(targets, dtype=np.int64).reshape(-1)]

    def _done(self, forward: ChunkedForward) -> None:
        self.backoffs += forward.backoffs


def _flat(x_batch: np.ndarray, a_batch: np.ndarray) -> tuple[np.ndarray, int]:
    """Quantus' preparation: broadcast ``a`` to ``x``'s shape, flatten per sample; returns ``(a (N, F), N)``."""
    if x_batch.shape != a_batch.shape:
        a_batch = np.broadcast_to(a_batch, x_batch.shape)
    n = a_batch.shape[0]
    return a_batch.reshape(n, -1), n


def _step_slices(a_indices: np.ndarray, step: int) -> Iterator[np.ndarray]:
    n_features = a_indices.shape[1]
    for index in range(math.ceil(n_features / step)):
        yield a_indices[:, index * step:(index + 1) * step]


def _step_sums(a_flat: np.ndarray, order: np.ndarray, steps: list[np.ndarray]) -> np.ndarray:
    """``(N, S)``: per step, the sum of the attributions it perturbs, as Quantus sums them step by step.

    Steps of equal width ``k`` are one gather of the ranked attributions, ``(N, S, k)``, summed over its last
    (contiguous) axis: the same ``k`` numbers in the same order as Quantus' per-step ``a[i, a_ix].sum()``.
    """
    n, width = a_flat.shape[0], steps[0].shape[1] if steps else 0
    if steps and all(step.shape[1] == width for step in steps):
        ranked = np.take_along_axis(a_flat, order[:, :len(steps) * width], axis=1)
        return ranked.reshape(n, len(steps), width).sum(axis=-1)
    return np.stack([a_flat[np.arange(n)[:, None], a_ix].sum(axis=-1) for a_ix in steps], axis=1)


def random_subsets(n: int, n_features: int, subset_size: int) -> np.ndarray:
    """``(n, subset_size)`` feature indices: the draws of Quantus' ``n`` calls of
    ``np.random.choice(n_features, subset_size, replace=False)``, in the same order, on the same global RNG.

    Without ``p``, numpy's legacy ``choice`` is ``permutation(n_features)[:subset_size]``, a Fisher-Yates shuffle of
    ``arange(n_features)``. Shuffling the rows of one ``arange`` tile in place makes exactly those draws and skips
    ``choice``'s per-call argument handling (about 6x cheaper; ``tests/unit/test_metrics_fast.py`` checks the
    indices and the generator's state against ``choice``).

    Returns:
        ``(n, subset_size)`` integer indices, row ``i`` being the ``i``-th ``choice`` call's result.
    """
    if not 0 <= subset_size <= n_features:
        raise ValueError("Cannot take a larger sample than population when 'replace=False'")
    rows = np.tile(np.arange(n_features, dtype=np.intp), (n, 1))
    shuffle = np.random.shuffle
    for row in rows:
        shuffle(row)
    return rows[:, :subset_size]


def repeated_perturbations(perturb_func: Any, x_flat: np.ndarray, indices: np.ndarray, repeats: int
                           ) -> list[np.ndarray]:
    """``repeats`` results of ``perturb_func(arr=x_flat, indices=indices)``, as Quantus' loop makes them.

    Quantus' ``batch_baseline_replacement_by_indices`` with a number or a named baseline works row by row: a named
    baseline is computed per row, and its ``uniform`` draw (made for every named baseline) is one value per row from
    the global RNG. One call on ``repeats`` stacked copies of ``x_flat`` therefore makes the same arrays from the
    same draws in the same order, with one call's overhead (:func:`stacked_perturbations`). Any other function is
    called ``repeats`` times.

    Args:
        perturb_func: the metric's ``functools.partial`` perturbation.
        x_flat: ``(N, F)`` inputs; indices: ``(N, I)`` feature indices to perturb.
        repeats: number of perturbed copies.

    Returns:
        ``repeats`` arrays ``(N, F)`` (views into one array on the stacked path).
    """
    return list(stacked_perturbations(perturb_func, x_flat, [indices] * repeats))


def stacked_perturbations(perturb_func: Any, x_flat: np.ndarray, steps: list[np.ndarray],
                          max_rows: int | None = None) -> Iterator[np.ndarray]:
    """``perturb_func(arr=x_flat, indices=ix)`` for each ``ix`` of ``steps`` in order: the steps of
    :func:`stacked_blocks`, one ``(N, F)`` array (a view into its block) per step."""
    for block in stacked_blocks(perturb_func, x_flat, steps, max_rows):
        yield from block


def stacked_blocks(perturb_func: Any, x_flat: np.ndarray, steps: list[np.ndarray],
                   max_rows: int | None = None) -> Iterator[np.ndarray]:
    """``perturb_func(arr=x_flat, indices=ix)`` for each ``ix`` of ``steps`` in order, as Quantus' loop makes them.

    For a row-wise function (:func:`repeated_perturbations` says why) consecutive steps of equal width are perturbed
    in one call on stacked copies of ``x_flat``, at most ``max_rows`` rows per call (None: no limit), which makes the
    same arrays from the same draws in the same order; any other function is called once per step.

    Args:
        perturb_func: the metric's ``functools.partial`` perturbation.
        x_flat: ``(N, F)`` inputs; steps: ``(N, I)`` feature indices to perturb, one array per step.
        max_rows: rows per stacked call (bounds the memory of one call to about one forward chunk).

    Yields:
        ``(S_b, N, F)`` blocks of consecutive steps (one call's result; ``S_b = 1`` for other functions).
    """
    n = len(x_flat)
    if not _row_wise(perturb_func) or len(steps) < 2:
        for indices in steps:
            yield perturb_func(arr=x_flat, indices=indices)[None]
        return
    per_call = len(steps) if max_rows is None else max(1, max_rows // max(n, 1))
    start = 0
    while start < len(steps):
        stop = start + 1
        while stop < len(steps) and stop - start < per_call and steps[stop].shape == steps[start].shape:
            stop += 1
        block = steps[start:stop]
        if len(block) == 1:
            yield perturb_func(arr=x_flat, indices=block[0])[None]
        else:
            stacked = perturb_func(arr=np.tile(x_flat, (len(block), 1)), indices=np.concatenate(block))
            yield stacked.reshape(len(block), n, -1)
        start = stop


def cumulative_perturbations(perturb_func: Any, x_flat: np.ndarray, steps: list[np.ndarray],
                             max_rows: int | None = None) -> Iterator[np.ndarray]:
    """Quantus' cumulative steps (PixelFlipping): ``x = perturb_func(arr=x, indices=ix)`` for each ``ix`` of
    ``steps`` in order, starting from ``x_flat``, one call per step as Quantus makes them, gathered into
    ``(S_b, N, F)`` blocks of at most ``max_rows`` rows (None: one block) so that they are compared and forwarded
    a block at a time.
    """
    n = len(x_flat)
    per_call = len(steps) if max_rows is None else max(1, max_rows // max(n, 1))
    x = x_flat
    for start in range(0, len(steps), per_call):
        block_steps = steps[start:start + per_call]
        block = None
        for j, indices in enumerate(block_steps):
            x = perturb_func(arr=x, indices=indices)
            if block is None:
                block = np.empty((len(block_steps), *x.shape), dtype=x.dtype)
            block[j] = x
        yield block


def _row_wise(perturb_func: Any) -> bool:
    baseline = getattr(perturb_func, "keywords", {}).get("perturb_baseline")
    return (getattr(perturb_func, "func", None) is quantus.functions.perturb_func.batch_baseline_replacement_by_indices
            and isinstance(baseline, (str, int, float)))


class FastFaithfulnessCorrelation(ChunkedMetric, quantus.FaithfulnessCorrelation):
    """Bhatt et al. 2020, as ``quantus.FaithfulnessCorrelation``; forwards in chunks."""

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> list[float]:
        a_batch, n = _flat(x_batch, a_batch)
        n_features = a_batch.shape[-1]
        subsets = np.empty((self.nr_runs, n, self.subset_size), dtype=np.intp)

        def perturbed() -> Iterator[np.ndarray]:
            yield x_batch
            for run in range(self.nr_runs):
                subsets[run] = random_subsets(n, n_features, self.subset_size)
                yield self.perturb_func(arr=x_batch.reshape(n, -1), indices=subsets[run]).reshape(*x_batch.shape)

        forward = self._forward(model, y_batch)
        preds = forward.run(perturbed())
        self._done(forward)
        pred_deltas = np.ascontiguousarray((preds[0] - preds[1:]).T)  # (N, nr_runs), C order as Quantus stacks
        att_sums = np.ascontiguousarray(a_batch[np.arange(n)[None, :, None], subsets].sum(axis=-1).T)
        return self.similarity_func(a=att_sums, b=pred_deltas, batched=True).tolist()


class FastFaithfulnessEstimate(ChunkedMetric, quantus.FaithfulnessEstimate):
    """Alvarez-Melis & Jaakkola 2018, as ``quantus.FaithfulnessEstimate``; forwards in chunks."""

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> list[float]:
        a_batch, n = _flat(x_batch, a_batch)
        order = np.argsort(-a_batch, axis=1)
        steps = list(_step_slices(order, self.features_in_step))
        x_flat = x_batch.reshape(n, -1)

        def perturbed() -> Iterator[np.ndarray]:  # (S_b, N, ...) blocks: the input, then its perturbed steps
            yield x_batch[None]
            block_rows = chunk_rows(self.chunk_size, x_flat.shape[1])
            for block in stacked_blocks(self.perturb_func, x_flat, steps, block_rows):
                yield block.reshape(len(block), *x_batch.shape)

        forward = self._forward(model, y_batch, reuse="first", x_first=x_batch)
        preds = forward.run_blocks(perturbed())
        self._done(forward)
        pred_deltas = np.ascontiguousarray((preds[0] - preds[1:]).T)  # (N, steps), C order as Quantus stacks
        return self.similarity_func(a=_step_sums(a_batch, order, steps), b=pred_deltas, batched=True).tolist()


class FastPixelFlipping(ChunkedMetric, quantus.PixelFlipping):
    """Bach et al. 2015, as ``quantus.PixelFlipping`` (cumulative removal); forwards in chunks."""

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> list:
        a_batch, n = _flat(x_batch, a_batch)
        steps = list(_step_slices(np.argsort(-a_batch, axis=1), self.features_in_step))
        x_flat = x_batch.reshape(n, -1)

        def perturbed() -> Iterator[np.ndarray]:  # (S_b, N, ...) blocks of cumulative steps
            block_rows = chunk_rows(self.chunk_size, x_flat.shape[1])
            for block in cumulative_perturbations(self.perturb_func, x_flat, steps, block_rows):
                yield block.reshape(len(block), *x_batch.shape)

        forward = self._forward(model, y_batch, reuse="previous")  # cumulative: compare with the step before
        curves = np.ascontiguousarray(forward.run_blocks(perturbed()).swapaxes(0, 1))
        self._done(forward)
        if self.return_auc_per_sample:
            return quantus.helpers.utils.calculate_auc(curves, batched=True).tolist()
        return curves.tolist()


class FastMonotonicityCorrelation(ChunkedMetric, quantus.MonotonicityCorrelation):
    """Nguyen & Martinez 2020, as ``quantus.MonotonicityCorrelation``; forwards in chunks."""

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> list[float]:
        n = x_batch.shape[0]
        a_batch, _ = _flat(x_batch, a_batch)
        steps = list(_step_slices(np.argsort(a_batch, axis=1), self.features_in_step))

        def perturbed() -> Iterator[np.ndarray]:
            yield x_batch
            for a_ix in steps:
                for x_perturbed in repeated_perturbations(self.perturb_func, x_batch.reshape(n, -1), a_ix,
                                                          self.nr_samples):
                    yield x_perturbed.reshape(*x_batch.shape)

        forward = self._forward(model, y_batch)
        preds = forward.run(perturbed())
        self._done(forward)
        y_pred = preds[0]
        inv_pred = np.ones(n)
        inv_pred[np.abs(y_pred) >= self.eps] = 1.0 / np.abs(y_pred)
        inv_pred = inv_pred**2
        variances, atts = [], []
        for index, a_ix in enumerate(steps):
            y_pred_perturbs = np.stack(list(preds[1 + index * self.nr_samples:1 + (index + 1) * self.nr_samples]),
                                       axis=1)
            variances.append(np.mean((y_pred_perturbs - y_pred[:, None]) ** 2, axis=1) * inv_pred)
            atts.append(a_batch[np.arange(n)[:, None], a_ix].sum(axis=1))
        return self.similarity_func(a=np.stack(atts, axis=1), b=np.stack(variances, axis=1), batched=True).tolist()
