"""Average pooling on CPU without torch's scalar loops: the same bits and layouts in a fraction of the time.

On CPU, torch's average pooling has a vectorised kernel only when the input and the gradient are both
channels-last. Everything else goes through a scalar loop over every output (forward) or every input element
(backward). In the fast engine's IG re-explanations on the suite's cnn (digits, 8x8 maps pooled 2x2; 1,024 rows
per call), the pooling forward took about 3.5 ms and its backward about 4.1 ms of a ~25 ms forward + backward. The
second convolution's forward and backward together took 7-8 ms. When the maps are channels-last (digits arrive with
channels-last strides), the backward's gradient still comes NCHW from ``Flatten``, and that mixed case took 7-9 ms.

:class:`ExactPoolKernels` is a ``TorchDispatchMode``. It sits below autograd, so the graph is unchanged, and
handles CPU float32/float64 4-d tensors:

- NCHW input, windows that tile the map exactly (``avg_pool2d``: stride = kernel, no padding, sides divisible by
  the kernel; adaptive: the output size divides the input size):
  - the forward adds the window's strided views in torch's order, ``((0 + x00) + x01) + ...``, then divides as
    torch does (``/ divisor``; adaptive ``/ kh / kw``);
  - the backward spreads ``0 + grad / divisor`` (adaptive ``0 + grad / kh / kw``) with one ``index_select``.
- channels-last input, windows that do not overlap (``avg_pool2d``: stride >= kernel; adaptive: the output size
  divides the input size): the backward runs torch's channels-last kernel on the gradient made channels-last.
  Its result is channels-last, as torch's own is for that input.

In every handled case each output or input element gets torch's expression, with the same operands in the same
order, and the results have torch's layout. So values, signed zeros, NaN and infinities are torch's bit for bit, and
the operations after them run as before (``tests/unit/test_pool_kernels.py``). Overlapping windows and other
layouts, dtypes and devices are left to torch (overlapping adaptive windows do differ in float64 between the
kernels).

Used by the fast engine's re-explanations (:func:`exact_pool_kernels`), only for networks that contain an average
pooling module on CPU. The mode costs a Python call per operator: about 30 per cnn call, 1,500 per metric. So when
every pooling module of the network is 2-d, the same NCHW tile kernels run through the modules instead
(:class:`ExactPoolModules`: each ``AvgPool2d`` / ``AdaptiveAvgPool2d`` forwards through one autograd node whose
backward is :func:`tiled_avg_pool_backward`), with no mode: IG MaxSensitivity on the cnn 234 -> 220 ms per call,
the same bits. Channels-last maps and anything else those modules see go to torch there.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

_AVG_POOL2D = torch.ops.aten.avg_pool2d.default
_AVG_POOL2D_BACKWARD = torch.ops.aten.avg_pool2d_backward.default
_ADAPTIVE = torch.ops.aten._adaptive_avg_pool2d.default
_ADAPTIVE_BACKWARD = torch.ops.aten._adaptive_avg_pool2d_backward.default
_EXACT_DTYPES = frozenset({torch.float32, torch.float64})
_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
_POOLS_2D = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)
_CHANNELS_LAST = torch.channels_last


def _pair(values: int | Sequence[int], default: Sequence[int]) -> list[int]:
    """torch's ``int[2]`` argument: empty means ``default``, one value means both dims."""
    values = [values] if isinstance(values, int) else list(values) or list(default)
    return values * 2 if len(values) == 1 else values


def _dense_cpu(*tensors: torch.Tensor) -> bool:
    return all(t.dim() == 4 and t.device.type == "cpu" and t.dtype in _EXACT_DTYPES for t in tensors) and \
        len({t.dtype for t in tensors}) == 1


def _nchw(tensor: torch.Tensor) -> bool:
    """NCHW-contiguous and not also channels-last (a one-channel map can be both; torch then may pick either)."""
    return tensor.is_contiguous() and not tensor.is_contiguous(memory_format=_CHANNELS_LAST)


def _channels_last(tensor: torch.Tensor) -> bool:
    return tensor.is_contiguous(memory_format=_CHANNELS_LAST) and not tensor.is_contiguous()


def _tiling(shape: Sequence[int], kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int]
            ) -> tuple[int, int] | None:
    """``(kh, kw)`` if the windows tile the ``(..., H, W)`` map exactly (stride = kernel, no padding), else None."""
    kernel = _pair(kernel_size, ())
    if _pair(stride, kernel) != kernel or any(_pair(padding, (0,))) or any(s % k for s, k in zip(shape[-2:], kernel)):
        return None
    return kernel[0], kernel[1]


def _divisors(kernel: tuple[int, int], divisor_override: int | None) -> tuple[int, ...]:
    """``avg_pool2d``'s one division: by ``divisor_override`` or the window size."""
    return (divisor_override if divisor_override is not None else kernel[0] * kernel[1],)


def tiled_avg_pool(x: torch.Tensor, kernel: tuple[int, int], divisors: tuple[int, ...]) -> torch.Tensor:
    """torch's NCHW average pooling on exact tiles: ``sum = 0; sum += x[ih, iw]`` in window order, then the
    divisions in order (``avg_pool2d``: ``/ divisor``; adaptive: ``/ kh / kw``).

    Args:
        x: ``(N, C, H, W)``; ``H``, ``W`` multiples of ``kernel``.

    Returns:
        ``(N, C, H / kh, W / kw)``, NCHW-contiguous.
    """
    kh, kw = kernel
    total = x[..., 0::kh, 0::kw] + 0.0  # the kernel's sum starts at 0: turns -0.0 into +0.0
    for i, j in itertools.product(range(kh), range(kw)):
        if i or j:
            total += x[..., i::kh, j::kw]
    for divisor in divisors:
        total = total / divisor
    return total.contiguous()


@functools.lru_cache(maxsize=64)
def _window_index(height: int, width: int, kh: int, kw: int) -> torch.Tensor:
    """For each input position ``h * W + w``, its window ``(h // kh) * (W / kw) + w // kw``: ``(H * W,)``."""
    rows = torch.arange(height).div(kh, rounding_mode="floor").mul(width // kw)
    return (rows[:, None] + torch.arange(width).div(kw, rounding_mode="floor")[None, :]).reshape(-1)


def tiled_avg_pool_backward(grad_output: torch.Tensor, shape: Sequence[int], kernel: tuple[int, int],
                            divisors: tuple[int, ...]) -> torch.Tensor:
    """torch's NCHW average-pooling backward on exact tiles: each input element gets ``0 + grad / divisors...``.

    Args:
        grad_output: ``(N, C, H / kh, W / kw)``.
        shape: the input's ``(N, C, H, W)``.

    Returns:
        ``(N, C, H, W)``, NCHW-contiguous.
    """
    n, c, height, width = shape
    spread = grad_output
    for divisor in divisors:
        spread = spread / divisor
    spread = (spread + 0.0).reshape(n * c, -1)  # the kernel adds to a zeroed gradient
    return torch.index_select(spread, 1, _window_index(height, width, *kernel)).view(n, c, height, width)


_FORWARD_DEFAULTS = ([], [0], False, True, None)  # avg_pool2d's stride, padding, ceil_mode, count_include_pad, divisor


def _forward(args: tuple[Any, ...]) -> torch.Tensor | None:
    """``avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor)``, or None."""
    if not 2 <= len(args) <= 7:
        return None
    x, kernel_size, stride, padding, _, _, divisor_override = (*args, *_FORWARD_DEFAULTS[len(args) - 2:])
    if not (torch.is_tensor(x) and _dense_cpu(x) and _nchw(x)):
        return None
    kernel = _tiling(x.shape, kernel_size, stride, padding)
    return None if kernel is None else tiled_avg_pool(x, kernel, _divisors(kernel, divisor_override))


def _backward(args: tuple[Any, ...]) -> torch.Tensor | None:
    """``avg_pool2d_backward(grad, input, kernel_size, stride, padding, ceil, count_include_pad, divisor)`` or None."""
    if len(args) != 8 or not _dense_cpu(args[0], args[1]):
        return None
    grad_output, x, kernel_size, stride, padding, *_, divisor_override = args
    if _nchw(x) and _nchw(grad_output):
        kernel = _tiling(x.shape, kernel_size, stride, padding)
        return None if kernel is None else tiled_avg_pool_backward(grad_output, x.shape, kernel,
                                                                   _divisors(kernel, divisor_override))
    kernel = _pair(kernel_size, ())
    if _channels_last(x) and all(s >= k for s, k in zip(_pair(stride, kernel), kernel)):
        return _AVG_POOL2D_BACKWARD(grad_output.contiguous(memory_format=_CHANNELS_LAST), x, *args[2:])
    return None


def _adaptive_tiles(shape: Sequence[int], output_size: Sequence[int]) -> tuple[int, int] | None:
    """``(kh, kw)`` if the adaptive windows tile the map exactly (the output size divides the input size)."""
    sizes, pooled = list(shape[-2:]), list(output_size)[-2:]
    if len(pooled) != 2 or any(p <= 0 or s % p for s, p in zip(sizes, pooled)):
        return None
    return sizes[0] // pooled[0], sizes[1] // pooled[1]


def _adaptive_forward(args: tuple[Any, ...]) -> torch.Tensor | None:
    """``_adaptive_avg_pool2d(input, output_size)`` on NCHW exact tiles (``sum / kh / kw``), or None."""
    if len(args) != 2 or not torch.is_tensor(args[0]) or not (_dense_cpu(args[0]) and _nchw(args[0])):
        return None
    kernel = _adaptive_tiles(args[0].shape, args[1])
    return None if kernel is None else tiled_avg_pool(args[0], kernel, kernel)


def _adaptive_backward(args: tuple[Any, ...]) -> torch.Tensor | None:
    """``_adaptive_avg_pool2d_backward(grad, input)`` on exact tiles, or None: NCHW by ``0 + grad / kh / kw``,
    channels-last by torch's vectorised kernel."""
    if len(args) != 2 or not _dense_cpu(*args):
        return None
    grad_output, x = args
    kernel = _adaptive_tiles(x.shape, grad_output.shape)
    if kernel is None:
        return None
    if _nchw(x) and _nchw(grad_output):
        return tiled_avg_pool_backward(grad_output, x.shape, kernel, kernel)
    if _channels_last(x):
        return _ADAPTIVE_BACKWARD(grad_output.contiguous(memory_format=_CHANNELS_LAST), x)
    return None


_HANDLERS = {_AVG_POOL2D: _forward, _AVG_POOL2D_BACKWARD: _backward, _ADAPTIVE: _adaptive_forward,
             _ADAPTIVE_BACKWARD: _adaptive_backward}


class ExactPoolKernels(TorchDispatchMode):
    """Average pooling on CPU through vectorised operations with torch's bits and layouts (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.handled = 0  # calls computed here instead of by torch's scalar loop (tests read it)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        handler = _HANDLERS.get(func)
        result = handler(args) if handler is not None and not kwargs else None
        if result is None:
            return func(*args, **(kwargs or {}))
        self.handled += 1
        return result


def has_cpu_avg_pool(network: Any) -> bool:
    """Whether ``network`` is an ``nn.Module`` on CPU that contains an average-pooling module."""
    if not isinstance(network, nn.Module):
        return False
    parameter = next(network.parameters(), None)
    on_cpu = parameter is None or parameter.device.type == "cpu"
    return on_cpu and any(isinstance(module, _POOLS) for module in network.modules())


class _TiledAvgPool(torch.autograd.Function):
    """torch's NCHW average pooling on exact tiles as one autograd node: :func:`tiled_avg_pool` forward,
    :func:`tiled_avg_pool_backward` backward (torch's bits; its backward returns NCHW whatever the gradient's
    layout, as torch's kernel does for an NCHW input)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, kernel: tuple[int, int], divisors: tuple[int, ...]) -> torch.Tensor:
        ctx.shape, ctx.kernel, ctx.divisors = tuple(x.shape), kernel, divisors
        return tiled_avg_pool(x, kernel, divisors)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return tiled_avg_pool_backward(grad_output, ctx.shape, ctx.kernel, ctx.divisors), None, None


def _module_tiles(module: nn.Module, x: torch.Tensor) -> tuple[tuple[int, int], tuple[int, ...]] | None:
    """``(kernel, divisors)`` if ``module`` (``AvgPool2d`` / ``AdaptiveAvgPool2d``) pools ``x`` on exact NCHW
    tiles on CPU, else None (torch pools it). Adaptive pooling to ``1x1`` is left to torch: torch computes it as
    ``x.mean((-1, -2), keepdim=True)``, whose sum and backward (``grad / (H * W)``, one division) are not the tile
    kernels' (``/ kh / kw``: other bits for a 7x7 map)."""
    if not (torch.is_tensor(x) and _dense_cpu(x) and _nchw(x)):
        return None
    if isinstance(module, nn.AvgPool2d):
        kernel = _tiling(x.shape, module.kernel_size, module.stride, module.padding)
        return None if kernel is None else (kernel, _divisors(kernel, module.divisor_override))
    pooled = adaptive_output(module, x)
    if pooled == (1, 1):  # torch pools to 1x1 with ``mean`` (its own sum and one division): left to torch
        return None
    kernel = _adaptive_tiles(x.shape, pooled)
    return None if kernel is None else (kernel, kernel)


def adaptive_output(module: nn.AdaptiveAvgPool2d, x: torch.Tensor) -> tuple[int, int]:
    """The ``(h, w)`` an ``AdaptiveAvgPool2d`` pools ``x`` ``(..., H, W)`` to (``None``: that side kept)."""
    sizes = module.output_size if isinstance(module.output_size, tuple) else (module.output_size,) * 2
    return tuple(s if s is not None else full for s, full in zip(sizes, x.shape[-2:]))  # type: ignore[return-value]


class ExactPoolModules:
    """While entered, the network's ``AvgPool2d`` / ``AdaptiveAvgPool2d`` modules pool exact NCHW tiles on CPU
    through :class:`_TiledAvgPool` (forward and backward), other inputs through torch; restored on exit.

    The same bits as :class:`ExactPoolKernels` without a dispatch mode: no Python call per aten operator of the
    whole explainer call (IG's ~570 per metric call on the cnn), one per pooling forward and backward. ``handled``
    counts the pooling forwards it computed.
    """

    def __init__(self, network: nn.Module) -> None:
        self.pools = [m for m in network.modules() if isinstance(m, _POOLS_2D)]
        self.handled = 0

    def _forward(self, module: nn.Module) -> Any:
        torch_forward = type(module).forward.__get__(module)

        def forward(x: torch.Tensor) -> torch.Tensor:
            tiles = _module_tiles(module, x)
            if tiles is None:
                return torch_forward(x)
            self.handled += 1
            return _TiledAvgPool.apply(x, *tiles)

        return forward

    @staticmethod
    def applies_to(network: nn.Module) -> bool:
        """Whether every average-pooling module of ``network`` is 2-d and runs its class' own ``forward`` (none
        already patched on the instance, e.g. by an enclosing ``ExactPoolModules`` or the user)."""
        pools = [m for m in network.modules() if isinstance(m, _POOLS)]
        return all(isinstance(m, _POOLS_2D) and "forward" not in vars(m) for m in pools)

    def __enter__(self) -> "ExactPoolModules":
        for module in self.pools:
            module.forward = self._forward(module)
        return self

    def __exit__(self, *exc: Any) -> None:
        for module in self.pools:
            vars(module).pop("forward", None)


@contextlib.contextmanager
def exact_pool_kernels(network: Any) -> Iterator[ExactPoolModules | ExactPoolKernels | None]:
    """The exact pooling kernels while re-explaining with ``network`` if it pools on CPU, else nothing: through its
    pooling modules (:class:`ExactPoolModules`) when they are all 2-d and unpatched, else the dispatch mode
    (:class:`ExactPoolKernels`, which also catches 1-d pooling: torch computes it as 2-d)."""
    if not has_cpu_avg_pool(network):
        yield None
        return
    if ExactPoolModules.applies_to(network):
        with ExactPoolModules(network) as pools:
            yield pools
        return
    with ExactPoolKernels() as mode:
        yield mode


@contextlib.contextmanager
def exact_pool_forwards(network: Any) -> Iterator[ExactPoolKernels | None]:
    """:class:`ExactPoolKernels` inside each forward of ``network`` only (forward hooks), if it pools on CPU.

    For explainers that do not back-propagate (occlusion, LIME, Kernel SHAP): the mode's per-operator Python call
    is then paid on the network's few operators only, not on all of the explainer's own (captum's masks, the
    surrogates' indexing), which made :func:`exact_pool_kernels` around the whole call slower than torch.
    """
    if not has_cpu_avg_pool(network):
        yield None
        return
    mode = ExactPoolKernels()

    def enter(_module: nn.Module, _args: Any) -> None:
        mode.__enter__()

    def leave(_module: nn.Module, _args: Any, _output: Any) -> None:
        mode.__exit__(None, None, None)

    handles = [network.register_forward_pre_hook(enter), network.register_forward_hook(leave, always_call=True)]
    try:
        yield mode
    finally:
        for handle in handles:
            handle.remove()
