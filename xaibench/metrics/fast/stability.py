"""Fast Quantus stability metrics: every perturbed input re-explained in a few chunked calls.

Quantus 0.6 (``quantus/metrics/robustness/*.py``) loops over ``nr_samples`` steps and, per step, perturbs the
batch, checks every sample with ``np.allclose`` (a warning the adapter discards), predicts twice to find flipped
labels and re-explains the ``N`` perturbed inputs. Here all ``nr_samples`` perturbations are drawn first, in the
same order; they are re-explained in calls of about ``chunk_size`` forward rows (whole steps; an IG with 32 steps
counts 32 rows per input) with the explainer's convergence
diagnostics off (:func:`xaibench.explainers.base.without_diagnostics`: not part of the map), normalised and
``abs``-ed per step exactly as Quantus' ``explain_batch`` does, and forwarded in chunks for the label checks.
The similarity and its reduction are Quantus' own functions, step by step.

Explainers draw their randomness per sample (``xaibench.explainers.seeding``), so re-explaining in other batches
gives the same maps; the adapter's ``explain_func`` keeps Quantus' global RNG untouched.
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import quantus
from quantus.helpers import asserts, utils

from xaibench.explainers.base import without_diagnostics
from xaibench.metrics.fast._forward import ChunkedForward
from xaibench.metrics.fast.faithfulness import ChunkedMetric


class ChunkedStability(ChunkedMetric):
    """Shared steps of the stability metrics: draw all perturbations, re-explain and predict in chunks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Quantus keeps this flag only inside closures; read it (or the Quantus class' default) here.
        quantus_class = next(c for c in type(self).__mro__ if c.__module__.startswith("quantus."))
        default = inspect.signature(quantus_class.__init__).parameters["return_nan_when_prediction_changes"].default
        self.nan_on_flip = bool(kwargs.get("return_nan_when_prediction_changes", default))
        super().__init__(*args, **kwargs)

    def _perturb_all(self, x_batch: np.ndarray, nr_samples: int) -> list[np.ndarray]:
        n = x_batch.shape[0]
        indices = np.tile(np.arange(0, x_batch[0].size), (n, 1))
        return [self.perturb_func(arr=x_batch.reshape(n, -1), indices=indices).reshape(*x_batch.shape)
                for _ in range(nr_samples)]

    def _explain_all(self, model: Any, steps: list[np.ndarray], y_batch: np.ndarray) -> list[np.ndarray]:
        """Quantus' ``explain_batch`` for each step, the explainer called once per ``chunk_size`` rows."""
        n = len(y_batch)
        rows_per_input = getattr(self.explain_func, "rows_per_input", 1)  # IG's steps: forward rows per input
        per_call = max(1, self.chunk_size // max(n * rows_per_input, 1))
        network = model.get_model() if hasattr(model, "get_model") else model
        maps: list[np.ndarray] = []
        with without_diagnostics():
            for start in range(0, len(steps), per_call):
                group = steps[start:start + per_call]
                x = np.concatenate(group, axis=0)
                if hasattr(model, "shape_input"):
                    x = model.shape_input(x=x, shape=x.shape, channel_first=True, batched=True)
                a = self.explain_func(model=network, inputs=x, targets=np.tile(y_batch, len(group)),
                                      **self.explain_func_kwargs)
                a = utils.expand_attribution_channel(a, x)
                maps.extend(a[i * n:(i + 1) * n] for i in range(len(group)))
        return [self._postprocess(x, a) for x, a in zip(steps, maps)]

    def _postprocess(self, x_batch: np.ndarray, a_batch: np.ndarray) -> np.ndarray:
        asserts.assert_attributions(x_batch=x_batch, a_batch=a_batch)
        if self.normalise:
            a_batch = self.normalise_func(a_batch)
        if self.abs:
            a_batch = np.abs(a_batch)
        return a_batch

    def _changed(self, model: Any, x_batch: np.ndarray, steps: list[np.ndarray], flag: bool) -> list[list[int]]:
        """Per step, the samples whose predicted label the perturbation changed (Quantus' helper, batched)."""
        if not flag:
            return [[] for _ in steps]
        forward = self._forward(model, None)
        outputs = forward.run([x_batch, *steps])
        self._done(forward)
        before = outputs[0].argmax(axis=-1)
        return [np.reshape(np.argwhere(before != out.argmax(axis=-1)), -1).tolist() for out in outputs[1:]]


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
        for step_id, a_perturbed in enumerate(maps):
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
    """Agarwal et al. 2022, as ``quantus.RelativeInputStability``; re-explains in chunks."""

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> np.ndarray:
        steps = self._perturb_all(x_batch, self._nr_samples)
        maps = self._explain_all(model, steps, y_batch)
        changed = self._changed(model, x_batch, steps, self.nan_on_flip)
        ris_batch = np.zeros(shape=[self._nr_samples, x_batch.shape[0]])
        for index, (x_perturbed, a_perturbed) in enumerate(zip(steps, maps)):
            ris_batch[index] = self.relative_input_stability_objective(x_batch, x_perturbed, a_batch, a_perturbed)
            if len(changed[index]) != 0:
                ris_batch[index, changed[index]] = np.nan
        result = np.max(ris_batch, axis=0)
        return [self.aggregate_func(result)] if self.return_aggregate else result


class FastRelativeOutputStability(ChunkedStability, quantus.RelativeOutputStability):
    """Agarwal et al. 2022, as ``quantus.RelativeOutputStability``; re-explains and predicts in chunks."""

    def evaluate_batch(self, model: Any, x_batch: np.ndarray, y_batch: np.ndarray, a_batch: np.ndarray,
                       **kwargs: Any) -> np.ndarray:
        steps = self._perturb_all(x_batch, self._nr_samples)
        maps = self._explain_all(model, steps, y_batch)
        # One step (N rows) per forward, as Quantus: the objective divides by the logit change, which would turn
        # a batched GEMM's float32 reassociation (~6e-8) into ~3e-6 relative differences. Forwards are cheap here.
        forward = ChunkedForward(model, x_batch.shape[0], None)
        outputs = forward.run([x_batch, *steps])
        self._done(forward)
        logits = outputs[0]
        labels = logits.argmax(axis=-1)
        ros_batch = np.zeros(shape=[self._nr_samples, x_batch.shape[0]])
        for index, a_perturbed in enumerate(maps):
            ros_batch[index] = self.relative_output_stability_objective(logits, outputs[1 + index], a_batch,
                                                                        a_perturbed)
            if self.nan_on_flip:
                changed = np.reshape(np.argwhere(labels != outputs[1 + index].argmax(axis=-1)), -1).tolist()
                if changed:
                    ros_batch[index, changed] = np.nan
        result = np.max(ros_batch, axis=0)
        return [self.aggregate_func(result)] if self.return_aggregate else result
