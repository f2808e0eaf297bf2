"""Average-pooling gradients through torch's channels-last CPU kernel: the same bits in a fraction of the time.

On CPU, torch's ``avg_pool2d_backward`` for an NCHW tensor is a scalar loop: on the suite's cnn (digits, 8x8 maps
pooled 2x2) it took 6.9-7.3 ms of a 23 ms forward + backward over 1,024 rows, more than the second convolution's
backward (3.9 ms), and ~30% of every gradient re-explanation. The same kernel on a channels-last gradient is
vectorised over channels: 0.9-2.1 ms including the layout change of the (4x smaller) pooled gradient
(``_adaptive_avg_pool2d_backward``: 13-15 ms -> 1.7-2.8 ms on the same shapes).

:class:`ChannelsLastPoolGradients` (a ``TorchDispatchMode``, below autograd: the graph is unchanged) routes CPU
float32/float64 average-pooling backward calls with non-overlapping windows (``avg_pool2d``: stride >= kernel in
both dims; adaptive: the output size divides the input size) to that kernel. Each input element then receives at
most one ``grad / divisor``, computed by the same expression in both kernels, so the gradient is bit for bit
torch's whatever the loop order (tested on kernel, stride, padding, ``ceil_mode``, ``count_include_pad``,
``divisor_override`` and adaptive output sizes; overlapping adaptive windows do differ in float64, and are left
to torch). The kernels read only the input's shape and layout, so an uninitialised channels-last tensor stands
in for it (no copy). The gradient leaves in
channels-last layout: elementwise backward ops keep their values in any layout, and a convolution's backward
converts its incoming gradient to its input's layout first, so the operations after it are unchanged.

Used by the fast engine's re-explanations (:func:`pool_gradients`), only for networks that contain
``nn.AvgPool1d``/``nn.AvgPool2d`` on CPU: the mode costs a Python call per operator (~30 per cnn call).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

_AVG_POOL2D_BACKWARD = torch.ops.aten.avg_pool2d_backward.default
_ADAPTIVE_BACKWARD = torch.ops.aten._adaptive_avg_pool2d_backward.default
_EXACT_DTYPES = frozenset({torch.float32, torch.float64})
_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)


def non_overlapping(kernel_size: Sequence[int], stride: Sequence[int]) -> bool:
    """Whether every input element lies in at most one window (``stride`` empty means ``stride = kernel``)."""
    kernel = list(kernel_size) * 2 if len(kernel_size) == 1 else list(kernel_size)
    steps = kernel if len(stride) == 0 else (list(stride) * 2 if len(stride) == 1 else list(stride))
    return all(step >= size for step, size in zip(steps, kernel))


def _eligible(func: Any, args: tuple[Any, ...]) -> bool:
    """A CPU float32/float64 NCHW pooling backward whose windows do not overlap."""
    if func is _AVG_POOL2D_BACKWARD:
        if len(args) != 8 or not non_overlapping(args[2], args[3]):
            return False
    elif func is _ADAPTIVE_BACKWARD:
        if len(args) != 2 or args[0].dim() != 4 or any(
                size % pooled for size, pooled in zip(args[1].shape[-2:], args[0].shape[-2:])):
            return False
    else:
        return False
    grad_output, inputs = args[:2]
    return (inputs.dim() == 4 and inputs.device.type == "cpu" and inputs.dtype in _EXACT_DTYPES
            and grad_output.dtype == inputs.dtype and not inputs.is_contiguous(memory_format=torch.channels_last))


class ChannelsLastPoolGradients(TorchDispatchMode):
    """Run eligible CPU average-pooling backward calls in channels-last layout (same values; module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.rerouted = 0  # calls sent to the channels-last kernel (tests read it)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if not kwargs and _eligible(func, args):
            grad_output, inputs, *rest = args
            stand_in = torch.empty(inputs.shape, dtype=inputs.dtype, memory_format=torch.channels_last)
            self.rerouted += 1
            return func(grad_output.contiguous(memory_format=torch.channels_last), stand_in, *rest)
        return func(*args, **kwargs)


def has_cpu_avg_pool(network: Any) -> bool:
    """Whether ``network`` is an ``nn.Module`` on CPU that contains an average-pooling module."""
    if not isinstance(network, nn.Module):
        return False
    parameter = next(network.parameters(), None)
    on_cpu = parameter is None or parameter.device.type == "cpu"
    return on_cpu and any(isinstance(module, _POOLS) for module in network.modules())


@contextlib.contextmanager
def pool_gradients(network: Any) -> Iterator[ChannelsLastPoolGradients | None]:
    """:class:`ChannelsLastPoolGradients` while re-explaining with ``network`` if it pools on CPU, else nothing."""
    if not has_cpu_avg_pool(network):
        yield None
        return
    with ChannelsLastPoolGradients() as mode:
        yield mode
