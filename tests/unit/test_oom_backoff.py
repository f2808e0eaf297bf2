"""CUDA out-of-memory backoff in every chunked stage, faked on the CPU: a model that raises torch's
``OutOfMemoryError`` above a number of rows, as a full GPU would. Each stage halves and retries, gives what it
gives without the limit, and the halvings reach the rows' ``oom_backoffs`` column (schema v4), not ``params``.
(The fast metrics' forward chunks: ``test_metrics_fast.py::test_chunks_halve_on_out_of_memory...``.)"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from xaibench.metrics import testing
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.types import Modality


def limit_rows(module: torch.nn.Module, limit: int, *, grad_only: bool = False):
    """Make ``module`` raise CUDA's out-of-memory error on a forward of more than ``limit`` rows."""
    def hook(_module, inputs):
        if len(inputs[0]) > limit and (torch.is_grad_enabled() or not grad_only):
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
    return module.register_forward_pre_hook(hook)


def test_stability_re_explanations_halve_steps_then_inputs_and_score_as_quantus():
    """IG (4 path steps) on 20 inputs: 3 perturbation steps of 80 rows in one call at this chunk. With room for
    32 rows the calls shrink to one step, then to 10 and 5 inputs per call, and the scores are plain Quantus's.
    (20 inputs: steps of fewer than 16 get Quantus' calls from the start, one step each.)"""
    from xaibench.metrics.quantus_adapter import score

    torch.manual_seed(0)
    model, x = testing.tiny_mlp(10, 3).eval(), torch.randn(20, 10)
    ctx = testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("integrated_gradients", {"n_steps": 4}))
    spec, params = METRICS.get("max_sensitivity"), {"nr_samples": 3}
    plain = score(spec, params, replace(ctx, engine="quantus"), 1234)
    handle = limit_rows(model, 32, grad_only=True)  # the re-explanations (forwards without gradients fit)
    try:
        fast = score(spec, params, replace(ctx, engine="fast", chunk_size=10_000), 1234)
    finally:
        handle.remove()
    np.testing.assert_allclose(fast.values, plain.values, rtol=1e-6, atol=1e-6)
    assert fast.backoffs == 3  # 3 steps per call -> 1 step (80 rows) -> 10 inputs (40) -> 5 (20), kept for the rest
    assert "chunk_backoffs" not in fast.params and fast.params == plain.params  # a run note, not a parameter


def test_stability_re_explanations_with_lime_halve_its_forwards_too_and_score_as_quantus():
    """LIME's forwards do not grow with the call's inputs: the fast engine gives it every step at once and lets it
    forward the chunk's rows (64 of the 60 inputs x 16 perturbations here). With room for 12 rows the calls shrink
    to one step, then half its inputs twice, and LIME's forwards with them (32, 16, 8 rows)."""
    from xaibench.metrics.quantus_adapter import score

    torch.manual_seed(0)
    model, x = testing.tiny_mlp(10, 3).eval(), torch.randn(20, 10)
    ctx = testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("lime", {"n_samples": 16}))
    spec, params = METRICS.get("max_sensitivity"), {"nr_samples": 3}
    plain = score(spec, params, replace(ctx, engine="quantus"), 1234)
    handle = limit_rows(model, 12)
    try:
        fast = score(spec, params, replace(ctx, engine="fast", chunk_size=64), 1234)
    finally:
        handle.remove()
    np.testing.assert_allclose(fast.values, plain.values, rtol=1e-6, atol=1e-6)
    assert fast.backoffs == 3


def test_explanation_batches_halve_and_give_the_same_maps_and_forward_counts():
    from xaibench.engine.stages import explain_arrays

    torch.manual_seed(0)
    model, x = testing.tiny_mlp(6, 3).eval(), torch.randn(7, 6)
    explainer = EXPLAINERS.create("integrated_gradients", {"n_steps": 4})
    free = explain_arrays(explainer, model, x, None, modality=Modality.TABULAR, seed=3, batch_size=8)
    handle = limit_rows(model, 8, grad_only=True)  # 2 samples x 4 path steps
    try:
        capped = explain_arrays(explainer, model, x, None, modality=Modality.TABULAR, seed=3, batch_size=8)
    finally:
        handle.remove()
    assert free.backoffs == 0 and capped.backoffs == 2  # 8 -> 4 -> 2 samples per call
    torch.testing.assert_close(capped.attributions, free.attributions, rtol=1e-6, atol=1e-7)
    assert capped.n_forward == free.n_forward  # failed attempts are not counted


def test_one_row_that_does_not_fit_is_an_error_not_a_loop():
    from xaibench.engine.stages import explain_arrays

    model = testing.tiny_mlp(6, 3).eval()
    handle = limit_rows(model, 0, grad_only=True)
    try:
        with pytest.raises(torch.OutOfMemoryError):
            explain_arrays(EXPLAINERS.create("saliency", {}), model, torch.randn(3, 6), None,
                           modality=Modality.TABULAR, seed=0, batch_size=4)
    finally:
        handle.remove()


def test_rows_record_the_halvings_of_their_stages_and_a_reused_stage_keeps_its_count(tmp_path, monkeypatch):
    """A sweep's rows: the explanation stage's halvings (stored with the stage) plus the score stage's."""
    from xaibench.engine.cell import CellSpec
    from xaibench.engine.runner import run_cell
    from xaibench.engine.store import Store

    saliency = type(EXPLAINERS.create("saliency", {}))
    explain = saliency.explain

    def at_most_two(self, model, x, target):
        if len(x) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return explain(self, model, x, target)

    monkeypatch.setattr(saliency, "explain", at_most_two)
    store = Store(tmp_path)
    cell = CellSpec(model={"name": "logreg"}, dataset={"name": "iris"}, method={"name": "saliency"},
                    metrics={"sparseness": {}}, n_samples=4, batch_size=4)
    rows = run_cell(cell, store).rows
    assert set(rows["status"]) == {"ok"} and set(rows["oom_backoffs"]) == {1}
    later = run_cell(replace(cell, metrics={"complexity": {}}), store).rows  # explanations reused from the store
    assert set(later["oom_backoffs"]) == {1} and "chunk_backoffs" not in later["params"].iat[0]


def test_halving_batches_retry_the_failed_batch_halved_keep_the_size_and_the_order():
    from xaibench.engine.oom import halving_batches

    calls = []

    def compute(start, stop):
        calls.append((start, stop))
        if stop - start > 3:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return list(range(start, stop))

    parts, backoffs = halving_batches(compute, 10, 8)
    assert sum(parts, []) == list(range(10)) and backoffs == 2
    assert calls == [(0, 8), (0, 4), (0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
