"""Average pooling, ``Flatten`` and the last ``Linear`` folded into one ``Linear`` for input-gradient re-explanations.

The suite's cnn ends in ``ReLU`` -> ``AvgPool2d`` (2x2 tiles of its 8x8 maps) -> ``Flatten`` -> ``Linear(512, K)``.
Pooling on exact tiles and the linear layer are both linear, so together they are one linear layer on the unpooled
maps, ``W' = upsample(W) / divisor`` (each pooled weight repeated over its window and divided as the pooling
divides). Saliency and IG (re-explained by the fast engine with the gradient of the summed target logits,
:func:`xaibench.explainers.base.summed_gradients`) read the network only through that gradient, and the gradient
that reaches the pooling's input does not depend on the folding, bit for bit:

- the backward seed of the logits is one-hot (``gather`` of the target logit, summed), whatever the logits' values;
- through the layers: ``Linear``'s backward gives the target's weight row (a product with one exact 1, the other
  terms exact zeros), the pooling's backward spreads ``0 + w / divisor`` over the window
  (:func:`~xaibench.metrics.fast._pool_kernels.tiled_avg_pool_backward`, torch's bits); folded, the backward of the
  one ``Linear`` gives row ``t`` of ``W'``, which holds ``0 + w / divisor`` at the same positions;
- the activations below the pooling (hence every ReLU mask and every convolution's backward) are computed as
  before, so the input gradient is the same bits.

Only the logits' values change, by float rounding (a 2,048-term dot product instead of a 4-term pooling sum and a
512-term dot product), and no map reads them. Two more savings of the same kind, also autograd's bits:

- the ``ReLU`` before the pooling joins the folded layer (:class:`_ReluFoldedLinear`); for a one-hot seed its
  backward writes ``W'[t]`` where the ReLU is active in one pass (``threshold_backward`` on the target rows,
  broadcast over IG's path steps, which repeat the targets every ``N`` rows: :func:`_spread`), instead of a
  ``(R, K) x (K, F)`` product and a second pass over its 8 MB result;
- a ``ReLU`` right after a convolution or linear layer runs in place (their backward reads only their inputs), as
  ``nn.ReLU(inplace=True)`` would: an out-of-place ReLU on the cnn's 8 MB maps costs about 3x the in-place one
  (fresh pages written); followed by a ``Conv2d``, the two run as :class:`_ReluConv2d`, whose backward writes the
  ReLU's step into the convolution's fresh input gradient instead of a new block.

What it saves, IG MaxSensitivity on the cnn (one process, 6 interleaved repetitions, load ~9): 253.6 ms without
the folding, 229.8 folded, 208.3 with the one-pass backward, 195.5 with the ReLUs in place (plain Quantus 435.7);
at load ~6 (8 repetitions), 179.7 with the ReLUs in place, 169.9 with :class:`_ReluConv2d` (plain 366.4, fast10's
engine 224.7): ``docs/speed.md``.

Used by the fast engine (:meth:`xaibench.metrics.fast.stability.ChunkedStability._explain_all`) only for explainers
that declare ``Explainer.target_gradient_only`` (saliency, IG) explaining raw logits (``explain_output: logit``:
a softmax or probability wrapper would read the logits' values), on a plain ``nn.Sequential`` without hooks on
the folded modules or on every module, whose last three modules are exactly ``AvgPool2d`` / ``AdaptiveAvgPool2d``,
a default ``Flatten`` and a ``Linear``, in the thread that entered it. The head is folded only for CPU
float32/float64 NCHW maps that the pooling tiles exactly (else the pooling, ``Flatten`` and ``Linear`` run as they
are); the ReLUs in place and :class:`_ReluConv2d` apply to any maps, on any device (checked bit for bit on CPU only).
Anything else runs the modules as they are.

Adaptive pooling to ``1x1`` is torch's ``mean`` over the map, whose backward divides once by ``H * W``: the fold
divides so too (:func:`fold_tiles`), not by ``kh`` then ``kw`` (other bits on 7x7 maps).
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xaibench.metrics.fast._pool_kernels import _POOLS_2D, _dense_cpu, _module_tiles, _nchw, adaptive_output

HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def foldable(network: Any) -> bool:
    """Whether ``network`` is a plain ``nn.Sequential`` ending in 2-d average pooling, ``Flatten()``, ``Linear``
    (those classes themselves: a subclass may override ``forward``), with no hooks on those three modules, none
    registered for every module, and no ``forward`` patched on its instance, its ``Flatten`` or ``Linear`` (the
    pooling's may be the exact kernels', :mod:`~xaibench.metrics.fast._pool_kernels`). Hooks on the network itself
    still run around its call (a forward counter, ``bench_scoring.py``'s clock); they see the folded logits, which
    differ from the unfolded ones by rounding, so a hook that changes the output would move the gradients by as
    much (the suite registers none during re-explanations)."""
    if type(network) is not nn.Sequential or len(network) < 4 or "forward" in vars(network) or _global_hooks():
        return False
    pool, flatten, linear = list(network)[-3:]
    if not (type(pool) in _POOLS_2D and type(flatten) is nn.Flatten and type(linear) is nn.Linear):
        return False
    if (flatten.start_dim, flatten.end_dim) != (1, -1):
        return False
    return not (_hooked(pool) or _altered(flatten) or _altered(linear))  # the pool's forward: the exact kernels


def folded_weight(linear: nn.Linear, maps: tuple[int, ...], kernel: tuple[int, int], divisors: tuple[int, ...]
                  ) -> torch.Tensor | None:
    """``(K, C * H * W)``: ``linear``'s ``(K, C * H/kh * W/kw)`` weight spread over each pooling window and divided
    as the pooling's backward divides (``0 + w / divisor...``), or None if the shapes do not fit.

    Args:
        maps: the pooling's input shape ``(N, C, H, W)``.
    """
    _, channels, height, width = maps
    kh, kw = kernel
    weight = linear.weight.detach()
    if weight.shape[1] != channels * (height // kh) * (width // kw):
        return None
    spread = weight.view(-1, channels, height // kh, 1, width // kw, 1)
    spread = spread.expand(-1, -1, -1, kh, -1, kw).reshape(weight.shape[0], channels * height * width)
    for divisor in divisors:
        spread = spread / divisor
    return spread + 0.0


class _ReluFoldedLinear(torch.autograd.Function):
    """``linear(relu(z).flatten(1), weight, bias)`` whose backward to ``z`` is autograd's (``grad.mm(weight)``, then
    ReLU's ``threshold_backward`` on its output), computed in one pass where the seed allows (:func:`_spread`).
    ``in_place``: ``z`` is a fresh output that nothing saved (a convolution's or linear layer's), so the ReLU
    overwrites it, as ``nn.ReLU(inplace=True)`` would (the same values, no new 4-8 MB block per call).

    Shapes: ``z`` ``(R, C, H, W)``, ``weight`` ``(K, C * H * W)`` (no gradient), ``bias`` ``(K,)``; returns the
    logits ``(R, K)`` and the ReLU's output (``z`` itself when in place).
    """

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, in_place: bool
                ) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.set_materialize_grads(False)
        active = torch.relu_(z) if in_place else torch.relu(z)
        if in_place:
            ctx.mark_dirty(z)
        ctx.save_for_backward(active, weight)
        return F.linear(active.flatten(1), weight, bias), active

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor | None, _grad_active: Any) -> tuple[Any, None, None, None]:
        if grad_output is None:
            return None, None, None, None
        active, weight = ctx.saved_tensors
        spread = _spread(grad_output, weight)
        if spread is None:  # autograd's own operations: Linear's backward, then ReLU's on its output
            spread = grad_output.mm(weight).unsqueeze(0)
        flat = active.view(*spread.shape[:2], -1)  # (copies, R / copies, F), like ``spread``
        return torch.ops.aten.threshold_backward(spread, flat, 0).view(active.shape), None, None, None


class _ReluConv2d(torch.autograd.Function):
    """``conv2d(relu_(z))`` for a fresh ``z`` (a convolution's or linear layer's output): the ReLU in place, and the
    backward is autograd's (``convolution_backward`` for the input only, as autograd asks for it when only the input
    gradient is wanted, then ReLU's ``threshold_backward`` on its output) with the ReLU's step written into the
    convolution's fresh input gradient instead of a new 4 MB block (0.6-0.7 vs 1.0-1.1 ms per 1,024-row call on the
    cnn's first maps).

    Shapes: ``z`` ``(R, C, H, W)``; returns the convolution's output and the ReLU's output (``z`` itself).
    """

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.set_materialize_grads(False)
        active = torch.relu_(z)
        ctx.mark_dirty(z)
        ctx.save_for_backward(active)
        ctx.conv = conv
        return F.conv2d(active, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups), active

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor | None, _grad_active: Any) -> tuple[Any, None]:
        if grad_output is None:
            return None, None
        (active,), conv = ctx.saved_tensors, ctx.conv
        bias = None if conv.bias is None else list(conv.bias.shape)
        grad = torch.ops.aten.convolution_backward(
            grad_output, active, conv.weight, bias, list(conv.stride), list(conv.padding), list(conv.dilation), False,
            [0, 0], conv.groups, [True, False, False])[0]
        return torch.ops.aten.threshold_backward.grad_input(grad, active, 0, grad_input=grad), None


def _spread(grad_output: torch.Tensor, weight: torch.Tensor) -> torch.Tensor | None:
    """``grad_output.mm(weight)`` without the product where that is exact: ``grad_output`` ``(R, K)`` holds one
    exact 1 and otherwise zeros per row (the seed of summed target logits) and ``weight`` is finite, so row ``r`` of
    the product is ``weight[t_r]`` bit for bit. Returned as ``(copies, R / copies, F)``, the target rows of one
    period broadcast over ``copies`` (IG's path rows repeat the targets every ``N`` rows), else None (use ``mm``)."""
    ones = grad_output == 1
    if not (bool(((grad_output == 0) | ones).all()) and bool((ones.sum(dim=1) == 1).all())):
        return None
    if not bool(torch.isfinite(weight).all()):
        return None  # 0 * inf is NaN in the product
    targets = ones.to(torch.int8).argmax(dim=1)
    rows = targets.shape[0]
    period = next(p for p in range(1, rows + 1) if rows % p == 0 and
                  torch.equal(targets.view(-1, p), targets[:p].expand(rows // p, p)))
    return weight.index_select(0, targets[:period]).unsqueeze(0).expand(rows // period, period, weight.shape[1])


class FoldedHead:
    """While entered, ``network``'s forward runs its modules up to the pooling, then one ``Linear`` with
    :func:`folded_weight` where the maps allow it (:func:`fold_tiles`), else the pooling, ``Flatten`` and
    ``Linear`` as they are. A ``ReLU`` right before the pooling joins the folded layer (:class:`_ReluFoldedLinear`:
    its backward and the ``Linear``'s in one pass). ``handled`` counts the folded forwards. Restored on exit.
    Only the thread that entered runs folded: another thread calling the same network meanwhile (a caller's thread
    pool scoring it) may read the logits' values, so it gets the modules as they are."""

    def __init__(self, network: nn.Sequential) -> None:
        self.network = network
        self.handled = 0
        self.relu = _fused_relu(network)
        self.thread: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if threading.get_ident() != self.thread:
            return nn.Sequential.forward(self.network, x)
        *body, pool, flatten, linear = list(self.network)
        if self.relu:
            body = body[:-1]
        previous, skip = None, False
        for index, module in enumerate(body):
            if skip:  # the convolution ran with the ReLU before it
                skip, previous = False, module
                continue
            if _fresh(previous) and _plain_relu(module):
                following = body[index + 1] if index + 1 < len(body) else None
                skip = _plain_conv2d(following) and x.dim() == 4
                x = _ReluConv2d.apply(x, following)[0] if skip else torch.relu_(x)
            else:
                x = module(x)
            previous = module
        tiles = fold_tiles(pool, x)
        if tiles is not None and x.dtype == linear.weight.dtype and linear.weight.device == x.device:
            with torch.no_grad():
                weight = folded_weight(linear, tuple(x.shape), *tiles)
            if weight is not None:
                self.handled += 1
                if self.relu:
                    return _ReluFoldedLinear.apply(x, weight, linear.bias, _fresh(previous))[0]
                return F.linear(x.flatten(1), weight, linear.bias)
        if self.relu:
            x = self.network[-4](x)
        return linear(flatten(pool(x)))

    def __enter__(self) -> "FoldedHead":
        self.thread = threading.get_ident()
        self.network.forward = self.forward
        return self

    def __exit__(self, *exc: Any) -> None:
        vars(self.network).pop("forward", None)


def _fused_relu(network: nn.Sequential) -> bool:
    """Whether the module before the pooling is a plain ``ReLU`` without hooks (it then joins the folded layer)."""
    return _plain_relu(network[-4])


def _plain_relu(module: nn.Module) -> bool:
    return type(module) is nn.ReLU and not _altered(module)


def _fresh(module: nn.Module | None) -> bool:
    """Whether ``module``'s output is a new tensor that its backward does not read (a convolution's or linear
    layer's backward needs their inputs and weights only) and no hook saw: a ReLU may then overwrite it."""
    return type(module) in (nn.Conv1d, nn.Conv2d, nn.Linear) and not _altered(module)


def _plain_conv2d(module: nn.Module | None) -> bool:
    """A ``Conv2d`` whose forward is ``conv2d`` with its own numeric padding (zeros), without hooks."""
    return type(module) is nn.Conv2d and module.padding_mode == "zeros" and not isinstance(module.padding, str) \
        and not _altered(module)


def _hooked(module: nn.Module) -> bool:
    return any(getattr(module, hooks, None) for hooks in HOOKS)


def _altered(module: nn.Module) -> bool:
    """Whether calling ``module`` runs more or other than its class' ``forward``: hooks, or a ``forward`` set on the
    instance (the folding would skip it)."""
    return _hooked(module) or "forward" in vars(module)


def _global_hooks() -> bool:
    """Whether hooks run around every module's call (``nn.modules.module.register_module_forward_hook``...): they
    would see, or change, the outputs of the modules the folding skips."""
    module = nn.modules.module
    return any(getattr(module, f"_global{hooks}", None) for hooks in HOOKS)


def fold_tiles(pool: nn.Module, x: torch.Tensor) -> tuple[tuple[int, int], tuple[int, ...]] | None:
    """``(kernel, divisors)`` of the pooling's backward on ``x`` if ``pool`` tiles it exactly (NCHW, CPU), else
    None: :func:`_module_tiles`, and adaptive pooling to ``1x1``, which torch computes as a ``mean`` whose backward
    divides once, by ``H * W``."""
    if isinstance(pool, nn.AdaptiveAvgPool2d) and torch.is_tensor(x) and _dense_cpu(x) and _nchw(x) and \
            adaptive_output(pool, x) == (1, 1):
        return (x.shape[-2], x.shape[-1]), (x.shape[-2] * x.shape[-1],)
    return _module_tiles(pool, x)


@contextlib.contextmanager
def folded_head(network: Any) -> Iterator[FoldedHead | None]:
    """:class:`FoldedHead` on ``network`` if it is :func:`foldable`, else nothing."""
    if not foldable(network):
        yield None
        return
    with FoldedHead(network) as head:
        yield head
