"""Fast Quantus faithfulness metrics: same parameters, perturbations, draws and similarity; chunked forwards.

Each class subclasses the Quantus metric and overrides only ``evaluate_batch``. Quantus' own body is kept step
for step (``quantus/metrics/faithfulness/*.py``, version 0.6) with two changes:

1. the per-sample ``warn_perturbation_caused_no_change`` check (an ``np.allclose`` per sample and step, 40-70% of
   the time; the adapter silences its warning anyway) is not run;
2. every perturbed batch is made first, in Quantus' loop order (so ``np.random`` draws happen in the same order),
   and forwarded through :class:`ChunkedForward` (``chunk_size`` rows per forward, on the model's device).

Scores equal plain Quantus (``tests/unit/test_metrics_fast.py``): the same perturbations, the same reductions in
the same order; only the forward's batch composition differs (float reassociation in batched kernels, if any).
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np
import quantus

from xaibench.metrics.fast._forward import DEFAULT_CHUNK_SIZE, ChunkedForward


class ChunkedMetric:
    """Mixin: takes ``chunk_size`` (rows per forward) and counts CUDA out-of-memory halvings in ``backoffs``."""

    def __init__(self, *args: Any, chunk_size: int = DEFAULT_CHUNK_SIZE, **kwargs: Any) -> None:
        self.chunk_size = int(chunk_size)
        self.backoffs = 0
        super().__init__(*args, **kwargs)

    def _forward(self, model: Any, targets: np.ndarray | None) -> ChunkedForward:
        return ChunkedForward(model, self.chunk_size, targets)

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


class FastFaithfulnessCorrelation(ChunkedMetric, quantus.FaithfulnessCorrelation):
    """Bhatt et al. 2020, as ``quantus.FaithfulnessCorrelation``; forwards in chunks."""

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> list[float]:
        a_batch, n = _flat(x_batch, a_batch)
        n_features = a_batch.shape[-1]
        subsets: list[np.ndarray] = []

        def perturbed() -> Iterator[np.ndarray]:
            yield x_batch
            for _ in range(self.nr_runs):
                a_ix = np.stack([np.random.choice(n_features, self.subset_size, replace=False) for _ in range(n)])
                subsets.append(a_ix)
                yield self.perturb_func(arr=x_batch.reshape(n, -1), indices=a_ix).reshape(*x_batch.shape)

        forward = self._forward(model, y_batch)
        preds = forward.run(perturbed())
        self._done(forward)
        pred_deltas = np.stack([preds[0] - p for p in preds[1:]], axis=1)
        att_sums = np.stack([a_batch[np.arange(n)[:, None], a_ix].sum(axis=-1) for a_ix in subsets], axis=1)
        return self.similarity_func(a=att_sums, b=pred_deltas, batched=True).tolist()


class FastFaithfulnessEstimate(ChunkedMetric, quantus.FaithfulnessEstimate):
    """Alvarez-Melis & Jaakkola 2018, as ``quantus.FaithfulnessEstimate``; forwards in chunks."""

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> list[float]:
        a_batch, n = _flat(x_batch, a_batch)
        steps = list(_step_slices(np.argsort(-a_batch, axis=1), self.features_in_step))

        def perturbed() -> Iterator[np.ndarray]:
            yield x_batch
            for a_ix in steps:
                yield self.perturb_func(arr=x_batch.reshape(n, -1), indices=a_ix).reshape(*x_batch.shape)

        forward = self._forward(model, y_batch)
        preds = forward.run(perturbed())
        self._done(forward)
        pred_deltas = np.stack([preds[0] - p for p in preds[1:]], axis=1)
        att_sums = np.stack([a_batch[np.arange(n)[:, None], a_ix].sum(axis=-1) for a_ix in steps], axis=1)
        return self.similarity_func(a=att_sums, b=pred_deltas, batched=True).tolist()


class FastPixelFlipping(ChunkedMetric, quantus.PixelFlipping):
    """Bach et al. 2015, as ``quantus.PixelFlipping`` (cumulative removal); forwards in chunks."""

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> list:
        a_batch, n = _flat(x_batch, a_batch)
        steps = _step_slices(np.argsort(-a_batch, axis=1), self.features_in_step)

        def perturbed() -> Iterator[np.ndarray]:
            x_perturbed = x_batch.copy()
            for a_ix in steps:
                x_perturbed = self.perturb_func(arr=x_perturbed.reshape(n, -1), indices=a_ix)
                x_perturbed = x_perturbed.reshape(*x_batch.shape)
                yield x_perturbed

        forward = self._forward(model, y_batch)
        curves = np.stack(list(forward.run(perturbed())), axis=1)
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
                for _ in range(self.nr_samples):
                    yield self.perturb_func(arr=x_batch.reshape(n, -1), indices=a_ix).reshape(*x_batch.shape)

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
