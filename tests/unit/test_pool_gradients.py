"""Average-pooling gradients through the channels-last kernel are torch's own, bit for bit (fast re-explanations).

``ChannelsLastPoolGradients`` reroutes non-overlapping CPU average-pooling backward calls; everything else runs as
torch runs it. References are torch's gradients computed without the mode on the same tensors.
"""
from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from xaibench.metrics.fast._pool_gradients import ChannelsLastPoolGradients, has_cpu_avg_pool, pool_gradients


def _gradient(pool, x: torch.Tensor, weights: torch.Tensor, mode: ChannelsLastPoolGradients | None) -> torch.Tensor:
    x = x.detach().requires_grad_()
    if mode is None:
        return torch.autograd.grad((pool(x) * weights).sum(), x)[0]
    with mode:
        return torch.autograd.grad((pool(x) * weights).sum(), x)[0]


def _assert_bits_equal(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert torch.equal(got, want) and torch.equal(got.signbit(), want.signbit())


POOLS = [  # (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override): all non-overlapping
    ((2, 2), None, 0, False, True, None), ((2, 2), None, 1, True, False, None), ((3, 2), (3, 3), 1, False, True, 5),
    ((1, 3), (2, 3), 0, True, True, None), ((4, 4), (5, 4), 2, True, False, 3), ((2, 2), (2, 2), 1, False, True, None),
]


@pytest.mark.parametrize(("dtype", "pool"), list(itertools.product((torch.float32, torch.float64), POOLS)))
def test_non_overlapping_avg_pool_gradients_are_torchs_bit_for_bit(dtype, pool):
    kernel, stride, padding, ceil_mode, count_include_pad, divisor = pool
    torch.manual_seed(0)
    for shape in ((3, 5, 8, 8), (2, 4, 7, 9)):
        x = torch.randn(shape, dtype=dtype)
        call = lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil_mode, count_include_pad, divisor)  # noqa: E731
        weights = torch.randn_like(call(x))
        weights.view(-1)[0] = -0.0 * weights.view(-1)[0].sign()  # a signed zero travels through too
        mode = ChannelsLastPoolGradients()
        _assert_bits_equal(_gradient(call, x, weights, mode), _gradient(call, x, weights, None))
        assert mode.rerouted == 1


@pytest.mark.parametrize("output_size", [(4, 4), (1, 3), (2, 9)])
def test_divisible_adaptive_pool_gradients_are_torchs_bit_for_bit(output_size):
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(3, 5, 8, 9 if output_size[1] != 4 else 8, dtype=dtype)
        weights = torch.randn(3, 5, *output_size, dtype=dtype)
        mode = ChannelsLastPoolGradients()
        pool = lambda t: F.adaptive_avg_pool2d(t, output_size)  # noqa: E731
        _assert_bits_equal(_gradient(pool, x, weights, mode), _gradient(pool, x, weights, None))
        assert mode.rerouted == 1


@pytest.mark.parametrize(("pool", "x"), [
    (lambda t: F.avg_pool2d(t, 3, 2), torch.randn(2, 4, 9, 9, dtype=torch.float64)),  # overlapping windows
    (lambda t: F.adaptive_avg_pool2d(t, 4), torch.randn(2, 4, 7, 9, dtype=torch.float64)),  # overlapping, differ
    (lambda t: F.avg_pool2d(t, 2), torch.randn(2, 4, 8, 8, dtype=torch.bfloat16)),  # reduced precision
    (lambda t: F.avg_pool2d(t, 2), torch.randn(2, 4, 8, 8).contiguous(memory_format=torch.channels_last)),
])
def test_other_pooling_gradients_are_left_to_torch(pool, x):
    mode = ChannelsLastPoolGradients()
    weights = torch.randn_like(pool(x))
    _assert_bits_equal(_gradient(pool, x, weights, mode), _gradient(pool, x, weights, None))
    assert mode.rerouted == 0


def test_the_mode_is_used_only_for_networks_that_average_pool_on_cpu():
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(18, 3))
    assert has_cpu_avg_pool(cnn) and has_cpu_avg_pool(nn.Sequential(nn.Conv1d(1, 2, 3), nn.AdaptiveAvgPool1d(2)))
    assert not has_cpu_avg_pool(nn.Sequential(nn.Linear(4, 3), nn.ReLU()))
    assert not has_cpu_avg_pool(lambda t: t)  # a plain forward function: no modules to look at
    with pool_gradients(nn.Linear(4, 3)) as mode:
        assert mode is None
    with pool_gradients(cnn) as mode:
        assert isinstance(mode, ChannelsLastPoolGradients)
