"""Rows a perturbation left unchanged are not forwarded again (``xaibench/metrics/fast/_reuse.py``); glibc keeps
the chunked forwards' memory (``_allocator.py``).

FaithfulnessEstimate compares every step with the unperturbed input, PixelFlipping (cumulative) with the step
before; an unchanged row gets its reference row's output. Scores stay plain Quantus' (1e-6; bit for bit when
every forward is one Quantus step, ``chunk_size`` at most ``N``, where nothing is skipped).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from xaibench.metrics import testing
from xaibench.metrics.fast import _allocator
from xaibench.metrics.fast._forward import ChunkedForward
from xaibench.metrics.fast._reuse import ReusingForward, same_rows
from xaibench.metrics.quantus_adapter import score
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.types import Modality


# Samples of the metric-level tests: steps of fewer than 16 (``BATCH_INDEPENDENT_ROWS``) are forwarded one at a time,
# Quantus' forwards, where nothing is skipped.
N_REUSE = 20


class _QuantusLike:
    """What the chunked forwards take from Quantus' model wrapper: the network to call and its device."""

    def __init__(self, network: nn.Module) -> None:
        self.network, self.device = network, "cpu"

    def get_softmax_arg_model(self) -> nn.Module:
        return self.network


class _Rows(nn.Module):
    """A linear layer that records the rows of every call; above ``limit`` rows it raises CUDA's out-of-memory."""

    def __init__(self, limit: int = 10**9) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear, self.limit, self.calls = nn.Linear(6, 3), limit, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        self.calls.append(len(x))
        return self.linear(x)


def _steps(cumulative: bool) -> list[np.ndarray]:
    """Six steps of 4 samples: some rows equal the first step's (or the previous step's) row."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    steps, current = [x], x
    for i in range(5):
        nxt = (current if cumulative else x).copy()
        nxt[i % 4, i] = 0.0  # one sample changes per step
        nxt[(i + 1) % 4, :] = rng.normal(size=6) if i % 2 else nxt[(i + 1) % 4]
        steps.append(nxt)
        current = nxt
    return steps


@pytest.mark.parametrize("targets", [None, np.array([0, 2, 1, 1])])
@pytest.mark.parametrize("reuse", ["first", "previous"])
def test_unchanged_rows_are_not_forwarded_and_get_their_reference_rows_output(reuse, targets):
    steps = _steps(cumulative=reuse == "previous")
    reference = [steps[0]] * len(steps) if reuse == "first" else [steps[0], *steps[:-1]]
    unchanged = sum(int(same_rows(s, r).sum()) for s, r in zip(steps[1:], reference[1:]))
    assert 0 < unchanged < 20
    network = _Rows()
    got = ReusingForward(_QuantusLike(network), 1024, targets, reuse=reuse).run(iter(steps))
    assert network.calls == [24 - unchanged]
    expected = ChunkedForward(_QuantusLike(network), 1024, targets).run(iter(steps))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    for i in range(1, len(steps)):  # an unchanged row's output is its reference row's output, exactly
        ref = 0 if reuse == "first" else i - 1
        same = same_rows(steps[i], steps[ref])
        np.testing.assert_array_equal(got[i][same], got[ref][same])


def test_with_one_step_per_forward_every_row_is_forwarded():
    network = _Rows()
    ReusingForward(_QuantusLike(network), 4, None, reuse="first").run(iter(_steps(cumulative=False)))
    assert network.calls == [4] * 6


def test_reusing_forwards_halve_on_out_of_memory_with_the_same_outputs():
    steps = _steps(cumulative=False)
    forward = ReusingForward(_QuantusLike(_Rows(limit=6)), 24, np.array([0, 1, 2, 0]), reuse="first")
    got = forward.run(iter(steps))
    assert forward.backoffs >= 1 and forward.reused_rows > 0
    expected = ChunkedForward(_QuantusLike(_Rows()), 1024, np.array([0, 1, 2, 0])).run(iter(steps))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_same_rows_compares_bits():
    a = np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]], dtype=np.float32)
    b = np.array([[-0.0, 1.0], [np.nan, 2.0], [1.0, 1.0 + 1e-7]], dtype=np.float32)
    np.testing.assert_array_equal(same_rows(a, b), [False, True, False])
    assert not same_rows(a, a.astype(np.float64)).any()


def _zero_background_context(modality: Modality, method: str):
    torch.manual_seed(0)
    explainer = EXPLAINERS.create(method, {"n_steps": 4} if method == "integrated_gradients" else {})
    if modality is Modality.IMAGE:
        model, (x, _, _) = testing.tiny_cnn(2), testing.bar_images(N_REUSE)
        x = torch.where(x > 0.5, x, torch.zeros_like(x))  # black background: baseline 0 changes nothing there
    else:
        model, x = testing.tiny_mlp(10, 3), torch.randn(N_REUSE, 10)
        x[:, ::2] = 0.0
    return testing.context(model.eval(), modality, x, explainer)


@pytest.mark.parametrize("name", ["faithfulness_estimate", "pixel_flipping"])
@pytest.mark.parametrize(("modality", "method"), [(Modality.IMAGE, "integrated_gradients"),
                                                  (Modality.TABULAR, "saliency")])
def test_fast_metrics_skip_unchanged_rows_and_equal_plain_quantus(name, modality, method):
    ctx = _zero_background_context(modality, method)
    rows: dict[str, int] = {}

    def scored(engine: str, chunk: int):
        calls: list[int] = []
        hook = ctx.model.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
        try:
            result = score(METRICS.get(name), {}, replace(ctx, engine=engine, chunk_size=chunk), 5)
        finally:
            hook.remove()
        rows[f"{engine}{chunk}"] = sum(calls)
        return result

    plain = scored("quantus", 1024)
    for chunk in (1024, 40):
        fast = scored("fast", chunk)
        assert fast.status == plain.status and np.isfinite(fast.values).all()
        np.testing.assert_allclose(fast.values, plain.values, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(scored("fast", N_REUSE).values, plain.values)  # one Quantus step per forward
    assert rows["fast1024"] < rows["quantus1024"] and rows["fast40"] == rows["fast1024"]
    assert rows[f"fast{N_REUSE}"] == rows["quantus1024"]


def test_the_allocator_is_tuned_once_on_glibc_and_the_user_can_opt_out(monkeypatch):
    glibc = _allocator.os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    assert _allocator._apply() is glibc
    for variable, value in (("XAIBENCH_MALLOC_TUNING", "0"), ("MALLOC_TRIM_THRESHOLD_", "1000000")):
        with monkeypatch.context() as patched:
            patched.setenv(variable, value)
            assert _allocator._apply() is False
    monkeypatch.setattr(_allocator, "_done", [])
    monkeypatch.setattr(_allocator, "_apply", lambda: True)
    assert _allocator.keep_freed_memory() and _allocator._done == [True]
    monkeypatch.setattr(_allocator, "_apply", lambda: pytest.fail("applied twice"))
    assert _allocator.keep_freed_memory()


@pytest.mark.parametrize("reuse", ["first", "previous"])
@pytest.mark.parametrize("chunk", [5, 9, 24])
def test_blocks_of_steps_give_the_outputs_and_forwards_of_step_by_step(reuse, chunk):
    """Steps compared, gathered and resolved a block at a time (``run_blocks``, as stacked perturbation calls make
    them): the same forwards (row counts) and the same output bits as one step at a time, for any block split."""
    steps = _steps(cumulative=reuse == "previous")
    targets = np.array([0, 2, 1, 1])
    one_by_one, network = ReusingForward(_QuantusLike(_Rows()), chunk, targets, reuse=reuse), None
    network = one_by_one.network
    expected = one_by_one.run(iter(steps))
    for sizes in ([6], [1, 5], [2, 3, 1], [4, 2]):
        blocks = np.split(np.stack(steps), np.cumsum(sizes)[:-1])
        forward = ReusingForward(_QuantusLike(_Rows()), chunk, targets, reuse=reuse)
        got = forward.run_blocks(iter(blocks))
        np.testing.assert_array_equal(got, expected)
        assert forward.network.calls == network.calls and forward.reused_rows == one_by_one.reused_rows > 0


@pytest.mark.parametrize("targets", [None, np.array([0, 2, 1, 1])])
def test_known_first_outputs_are_not_forwarded_again(targets):
    """``first_outputs`` (the screen's outputs at x): the first step's rows are not forwarded; with one step per
    forward (``chunk_size <= N``) they are ignored, so the forwards stay Quantus' own."""
    steps = _steps(cumulative=False)
    reference = ReusingForward(_QuantusLike(_Rows()), 1024, targets, reuse="first")
    expected = reference.run(iter(steps))
    known = expected[0] + 0.0  # the first step's outputs, as another forward gave them
    forward = ReusingForward(_QuantusLike(_Rows()), 1024, targets, reuse="first", first_outputs=known)
    got = forward.run_blocks(iter([np.stack(steps[:1]), np.stack(steps[1:])]))
    assert sum(forward.network.calls) == sum(reference.network.calls) - 4
    np.testing.assert_array_equal(got[0], known)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    step_wise = ReusingForward(_QuantusLike(_Rows()), 4, targets, reuse="first", first_outputs=known * 0.0)
    np.testing.assert_array_equal(step_wise.run(iter(steps)),
                                  ChunkedForward(_QuantusLike(_Rows()), 4, targets).run(iter(steps)))
    assert step_wise.network.calls == [4] * 6


@pytest.mark.parametrize("zero_sample", [False, True])
def test_fast_faithfulness_estimate_takes_the_outputs_at_x_from_the_screen(monkeypatch, zero_sample):
    """The screen has just forwarded x: the fast FaithfulnessEstimate does not forward it again (N fewer rows; the
    kept samples' rows when the adapter sets a sample aside) and still equals plain Quantus."""
    from xaibench.metrics.fast.faithfulness import ChunkedMetric

    ctx = _zero_background_context(Modality.IMAGE, "saliency")
    if zero_sample:  # an all-zero map: set aside before Quantus, so the metric sees samples 1..19
        ctx = replace(ctx, attributions=torch.cat([torch.zeros_like(ctx.attributions[:1]), ctx.attributions[1:]]))
    kept = len(ctx.x) - int(zero_sample)

    def scored(engine: str, chunk: int = 1024):
        calls: list[int] = []
        hook = ctx.model.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
        try:
            result = score(METRICS.get("faithfulness_estimate"), {}, replace(ctx, engine=engine, chunk_size=chunk), 5)
        finally:
            hook.remove()
        return result, sum(calls)

    plain, _ = scored("quantus")
    fast, rows = scored("fast")
    with monkeypatch.context() as patched:
        patched.setattr(ChunkedMetric, "_screened_outputs", lambda *args: None)
        forwarded, rows_forwarding_x = scored("fast")
    assert rows == rows_forwarding_x - kept and fast.status == plain.status
    np.testing.assert_allclose(fast.values, plain.values, rtol=1e-6, atol=1e-6)  # float rounding: other batches
    np.testing.assert_allclose(forwarded.values, plain.values, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(scored("fast", kept)[0].values, plain.values)  # one Quantus step per forward
