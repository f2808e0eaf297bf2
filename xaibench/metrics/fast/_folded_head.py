"""Average pooling, ``Flatten`` and the last ``Linear`` folded into one ``Linear`` for input-gradient re-explanations.

The suite's cnn ends in ``AvgPool2d`` (2x2 tiles of its 8x8 maps) -> ``Flatten`` -> ``Linear(512, K)``. Pooling on
exact tiles and the linear layer are both linear, so together they are one linear layer on the unpooled maps,
``W' = upsample(W) / divisor`` (each pooled weight repeated over its window and divided as the pooling divides).
Saliency and IG (re-explained by the fast engine with the gradient of the summed target logits,
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
512-term dot product), and no map reads them. What it saves, per 1,024-row IG call on the cnn: the pooling's
forward and backward (about 4 ms) and the layout copies around them; the folded ``Linear`` costs about as much as
the old one. IG stability on the cnn: see ``docs/speed.md``.

Used by the fast engine (:meth:`xaibench.metrics.fast.stability.ChunkedStability._explain_all`) only for explainers
that declare ``Explainer.target_gradient_only`` (saliency, IG) explaining raw logits (``explain_output: logit``:
a softmax or probability wrapper would read the logits' values), on a plain ``nn.Sequential`` without hooks on
the folded modules, whose last three modules are a 2-d average pooling, a default ``Flatten`` and a ``Linear``, on
CPU float32/float64 NCHW maps that the pooling tiles exactly. Anything else runs the modules as they are.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xaibench.metrics.fast._pool_kernels import _POOLS_2D, _module_tiles

HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def foldable(network: Any) -> bool:
    """Whether ``network`` is a plain ``nn.Sequential`` ending in 2-d average pooling, ``Flatten()``, ``Linear``,
    with no hooks on those three modules and no ``forward`` patched on its instance (hooks on the network itself
    still run around its call, e.g. a forward counter)."""
    if type(network) is not nn.Sequential or len(network) < 4 or "forward" in vars(network):
        return False
    pool, flatten, linear = list(network)[-3:]
    if not (isinstance(pool, _POOLS_2D) and type(flatten) is nn.Flatten and type(linear) is nn.Linear):
        return False
    if (flatten.start_dim, flatten.end_dim) != (1, -1):
        return False
    return not any(getattr(m, hooks, None) for m in (pool, flatten, linear) for hooks in HOOKS)


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


class FoldedHead:
    """While entered, ``network``'s forward runs its modules up to the pooling, then one ``Linear`` with
    :func:`folded_weight` where the maps allow it (:func:`_module_tiles`), else the pooling, ``Flatten`` and
    ``Linear`` as they are. ``handled`` counts the folded forwards. Restored on exit."""

    def __init__(self, network: nn.Sequential) -> None:
        self.network = network
        self.handled = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *body, pool, flatten, linear = list(self.network)
        for module in body:
            x = module(x)
        tiles = _module_tiles(pool, x)
        if tiles is not None and x.dtype == linear.weight.dtype and linear.weight.device == x.device:
            with torch.no_grad():
                weight = folded_weight(linear, tuple(x.shape), *tiles)
            if weight is not None:
                self.handled += 1
                return F.linear(x.flatten(1), weight, linear.bias)
        return linear(flatten(pool(x)))

    def __enter__(self) -> "FoldedHead":
        self.network.forward = self.forward
        return self

    def __exit__(self, *exc: Any) -> None:
        vars(self.network).pop("forward", None)


@contextlib.contextmanager
def folded_head(network: Any) -> Iterator[FoldedHead | None]:
    """:class:`FoldedHead` on ``network`` if it is :func:`foldable`, else nothing."""
    if not foldable(network):
        yield None
        return
    with FoldedHead(network) as head:
        yield head
