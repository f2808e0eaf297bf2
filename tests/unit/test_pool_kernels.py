"""Average pooling under ``ExactPoolKernels`` is torch's own, bit for bit and layout for layout.

The mode computes NCHW pooling on exact tiles itself and sends channels-last backward calls to torch's vectorised
kernel. Everything else runs as torch runs it. References are torch's outputs and gradients, computed without the
mode on the same tensors. Signed zeros, NaN, infinities and subnormals are planted in the inputs and gradients.
"""
from __future__ import annotations

import contextlib
import itertools

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from xaibench.metrics.fast._pool_kernels import (
    ExactPoolKernels,
    ExactPoolModules,
    exact_pool_kernels,
    has_cpu_avg_pool,
)

SPECIAL = [-0.0, 0.0, float("nan"), float("inf"), -float("inf"), 1e-42, -1e-45, 3.5]


def _planted(shape, dtype, memory_format=torch.contiguous_format, seed=0) -> torch.Tensor:
    torch.manual_seed(seed)
    x = torch.randn(shape, dtype=dtype) * 100
    x.view(-1)[:len(SPECIAL)] = torch.tensor(SPECIAL, dtype=dtype)
    x[-1, -1] = -0.0  # a whole window of negative zeros
    return x.contiguous(memory_format=memory_format)


def _run(pool, x: torch.Tensor, weights: torch.Tensor, mode: ExactPoolKernels | None):
    """``pool(x)`` and the gradient of ``sum(pool(x) * weights)`` w.r.t. ``x``, with or without the mode."""
    x = x.detach().clone(memory_format=torch.preserve_format).requires_grad_()
    with mode if mode is not None else torch.enable_grad():
        output = pool(x)
        (grad,) = torch.autograd.grad((output * weights).sum(), x)
    return output.detach(), grad


def _assert_same(got: torch.Tensor, want: torch.Tensor) -> None:
    """Same dtype, shape, strides, NaN positions, signs and values (NaN payloads aside)."""
    assert (got.dtype, got.shape, got.stride()) == (want.dtype, want.shape, want.stride())
    assert torch.equal(got.isnan(), want.isnan()) and torch.equal(got.signbit(), want.signbit())
    assert torch.equal(got.nan_to_num(nan=7.0), want.nan_to_num(nan=7.0))


def _handled_with_torchs_bits(pool, x: torch.Tensor) -> int:
    """Run ``pool`` forward and backward with and without the mode, assert torch's bits and layouts in both, and
    return how many pooling operators the mode computed itself."""
    weights = _planted(pool(x).shape, x.dtype, seed=1)
    mode = ExactPoolKernels()
    (out, grad), (want_out, want_grad) = _run(pool, x, weights, mode), _run(pool, x, weights, None)
    _assert_same(out, want_out)
    _assert_same(grad, want_grad)
    return mode.handled


TILES = [((2, 2), None), ((4, 4), None), ((3, 3), 5), ((1, 2), None), ((2, 3), 2)]  # kernel = stride, divisor


@pytest.mark.parametrize(("dtype", "tile"), list(itertools.product((torch.float32, torch.float64), TILES)))
def test_nchw_pooling_on_exact_tiles_is_torchs_forward_and_backward(dtype, tile):
    kernel, divisor = tile
    x = _planted((3, 5, 12, 12), dtype)
    plain = lambda t: F.avg_pool2d(t, kernel, divisor_override=divisor)  # noqa: E731
    flagged = lambda t: F.avg_pool2d(t, kernel, kernel, 0, True, False, divisor)  # noqa: E731 - flags change nothing
    assert _handled_with_torchs_bits(plain, x) == 2  # forward and backward
    assert _handled_with_torchs_bits(flagged, x) == 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("output_size", [(4, 4), (1, 3), (2, 6), (12, 1)])
def test_nchw_adaptive_pooling_on_exact_tiles_is_torchs_forward_and_backward(dtype, output_size):
    x = _planted((3, 5, 12, 12), dtype)
    assert _handled_with_torchs_bits(lambda t: F.adaptive_avg_pool2d(t, output_size), x) == 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("pool", [
    lambda t: F.avg_pool2d(t, 2), lambda t: F.avg_pool2d(t, (3, 2), (3, 3), 1, True, False, 5),
    lambda t: F.avg_pool2d(t, 2, padding=1, ceil_mode=True), lambda t: F.adaptive_avg_pool2d(t, (4, 3)),
])
def test_channels_last_backward_through_torchs_vectorised_kernel_is_torchs(dtype, pool):
    """Channels-last maps (a cnn fed channels-last inputs) get their gradient from ``Flatten`` NCHW: the backward
    runs torch's channels-last kernel instead of the scalar loop; the forward is torch's (already vectorised)."""
    assert _handled_with_torchs_bits(pool, _planted((3, 5, 8, 9), dtype, torch.channels_last)) == 1


@pytest.mark.parametrize(("pool", "x"), [
    (lambda t: F.avg_pool2d(t, 3, 2), _planted((2, 4, 9, 9), torch.float64)),  # overlapping windows
    (lambda t: F.avg_pool2d(t, 3, 2), _planted((2, 4, 9, 9), torch.float64, torch.channels_last)),
    (lambda t: F.avg_pool2d(t, 2, padding=1), _planted((2, 4, 8, 8), torch.float32)),  # padded NCHW
    (lambda t: F.avg_pool2d(t, 3), _planted((2, 4, 8, 8), torch.float32)),  # sides not multiples of the kernel
    (lambda t: F.adaptive_avg_pool2d(t, 4), _planted((2, 4, 7, 9), torch.float64, torch.channels_last)),
    (lambda t: F.avg_pool2d(t, 2), _planted((2, 4, 8, 8), torch.bfloat16)),  # reduced precision
])
def test_other_pooling_is_left_to_torch(pool, x):
    assert _handled_with_torchs_bits(pool, x) == 0


def test_a_cnn_gives_torchs_logits_and_input_gradients():
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 3))
    x = _planted((6, 1, 8, 8), torch.float32).clamp(-5, 5).nan_to_num(0.0)
    assert _handled_with_torchs_bits(cnn, x) == 2


def test_the_mode_is_used_only_for_networks_that_average_pool_on_cpu():
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(18, 3))
    assert has_cpu_avg_pool(cnn) and has_cpu_avg_pool(nn.Sequential(nn.Conv1d(1, 2, 3), nn.AdaptiveAvgPool1d(2)))
    assert not has_cpu_avg_pool(nn.Sequential(nn.Linear(4, 3), nn.ReLU()))
    assert not has_cpu_avg_pool(lambda t: t)  # a plain forward function: no modules to look at
    with exact_pool_kernels(nn.Linear(4, 3)) as mode:
        assert mode is None
    with exact_pool_kernels(cnn) as pools:  # only 2-d pooling modules: patched, no dispatch mode
        assert isinstance(pools, ExactPoolModules) and "forward" in vars(cnn[2])
    assert "forward" not in vars(cnn[2])  # restored
    with exact_pool_kernels(nn.Sequential(nn.Conv1d(1, 2, 3), nn.AdaptiveAvgPool1d(2))) as mode:
        assert isinstance(mode, ExactPoolKernels)  # 1-d pooling runs as 2-d inside torch: the mode catches it
    x = torch.randn(2, 1, 8, 8)
    want = cnn(x)
    with exact_pool_kernels(cnn) as outer, exact_pool_kernels(cnn) as inner:  # nested: already patched, the mode
        assert isinstance(outer, ExactPoolModules) and isinstance(inner, ExactPoolKernels)
        assert torch.equal(cnn(x), want) and outer.handled == 1
    assert "forward" not in vars(cnn[2])


def _module_run(module: nn.Module, x: torch.Tensor, weights: torch.Tensor, patched: bool):
    """``module(x)`` and the gradient of ``sum(module(x) * weights)``, with its forward patched or not."""
    x = x.detach().clone(memory_format=torch.preserve_format).requires_grad_()
    with ExactPoolModules(module) if patched else contextlib.nullcontext() as pools:
        output = module(x)
        (grad,) = torch.autograd.grad((output * weights).sum(), x)
    return output.detach(), grad, (pools.handled if patched else 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("module", "handled"), [
    (nn.AvgPool2d(2), 1), (nn.AvgPool2d((3, 3), divisor_override=5), 1), (nn.AvgPool2d(2, ceil_mode=True), 1),
    (nn.AdaptiveAvgPool2d(4), 1), (nn.AdaptiveAvgPool2d((None, 3)), 1),
    (nn.AvgPool2d(3, 2), 0), (nn.AvgPool2d(2, padding=1), 0), (nn.AdaptiveAvgPool2d(5), 0),  # left to torch
    (nn.AdaptiveAvgPool2d(1), 0),  # torch's mean: its own sum, one division by H * W (not / kh / kw)
])
def test_patched_pooling_modules_are_torchs_forward_and_backward(dtype, module, handled):
    """``ExactPoolModules`` (one autograd node per pooling module, no dispatch mode): torch's outputs, gradients,
    strides, signed zeros and NaN on exact NCHW tiles; overlapping, padded and non-dividing windows go to torch."""
    x = _planted((3, 5, 12, 12), dtype)
    weights = _planted(module(x).shape, dtype, seed=1)
    out, grad, count = _module_run(module, x, weights, patched=True)
    want_out, want_grad, _ = _module_run(module, x, weights, patched=False)
    _assert_same(out, want_out)
    _assert_same(grad, want_grad)
    assert count == handled and "forward" not in vars(module)


def test_patched_pooling_leaves_channels_last_and_reduced_precision_to_torch():
    for x in (_planted((2, 4, 8, 8), torch.float32, torch.channels_last), _planted((2, 4, 8, 8), torch.bfloat16)):
        weights = _planted((2, 4, 4, 4), x.dtype, seed=1)
        out, grad, count = _module_run(nn.AvgPool2d(2), x, weights, patched=True)
        want_out, want_grad, _ = _module_run(nn.AvgPool2d(2), x, weights, patched=False)
        _assert_same(out, want_out)
        _assert_same(grad, want_grad)
        assert count == 0
