"""The constant-output screen (``Screen.CONSTANT_OUTPUT``): does the model's output move at all around a sample?

A model that ignores its input around a sample (dead ReLUs, zeroed weights) makes every perturbation metric
meaningless there; the adapter sets such samples aside before Quantus runs. A sample is constant when the model's
outputs at ``x``, at zero and at ``x`` plus unit-scale noise all lie within ``tolerance * (1 + max |f(x)|)``.

Cost. The probes are forwarded in the cheapest order that gives the same answer: ``x`` and one zero input first
(a Quantus-layout model treats rows independently, so one zero row stands for all; the token view maps row ``i``
to sample ``i`` and gets ``N`` zero rows), then the noisy probe only for the samples whose outputs at ``x`` and
at zero coincide (almost never): the spread over three probes is at least the spread over two, so a sample that
already moves is not constant. ``N + 1`` forward rows instead of ``3N``.

Sharing. Every perturbation metric of a cell screens the same model on the same inputs. Inside
:func:`shared_screens` (the runner opens one per cell) the answer is computed once and reused by the cell's other
metrics. An entry is reused only for the very same module object (held by the entry, so its ``id`` cannot be
recycled), whose parameters and buffers are the same tensors at the same version (an in-place update such as
``copy_`` or an optimiser step bumps the version), in the same train/eval modes, on equal inputs (compared
element by element), the same view (wrapper class, modality, input shape, text tokens), device and tolerance.
The cache lives only as long as the ``with`` block: nothing is shared across cells.

Outputs. The outputs at ``x`` are kept with the answer (:func:`screen_outputs`, :class:`ScreenedOutputs`): the
fast FaithfulnessEstimate's first step is the unperturbed input, whose outputs it then takes from here instead of
forwarding ``x`` again (``metrics/fast/faithfulness.py``).
"""
from __future__ import annotations

import contextlib
import itertools
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from xaibench.metrics.layout import QuantusModel, TokenPresenceModel

TOLERANCE = 1e-6

_SHARED: ContextVar[list["_Entry"] | None] = ContextVar("xaibench_output_screens", default=None)


@contextlib.contextmanager
def shared_screens() -> Iterator[None]:
    """Within this block (one cell), metrics reuse the constant-output screen of the same model and inputs."""
    token = _SHARED.set([])
    try:
        yield
    finally:
        _SHARED.reset(token)


@dataclass(frozen=True, eq=False)
class ScreenedOutputs:
    """The outputs the screen computed at its inputs: ``module`` (the wrapper it forwarded), ``x`` ``(N, ...)``
    and ``outputs`` ``(N, K)``, as the module returned them."""

    module: nn.Module
    x: np.ndarray
    outputs: np.ndarray

    def __repr__(self) -> str:
        return f"ScreenedOutputs({type(self.module).__name__}, x={self.x.shape}, outputs={self.outputs.shape})"

    def take(self, index: np.ndarray) -> "ScreenedOutputs":
        """The same for the samples ``index`` (a row's output does not depend on the other rows' inputs)."""
        return ScreenedOutputs(self.module, self.x[index], self.outputs[index])

    def at(self, network: nn.Module, x: np.ndarray) -> np.ndarray | None:
        """``(N, K)`` outputs if ``network`` is the screened module and ``x`` holds the screened inputs' bits."""
        if network is not self.module or x.shape != self.x.shape or x.dtype != self.x.dtype:
            return None
        a, b = np.ascontiguousarray(x), np.ascontiguousarray(self.x)
        return self.outputs if np.array_equal(a.view(np.uint8), b.view(np.uint8)) else None


def constant_output(batch: Any, tolerance: float = TOLERANCE) -> np.ndarray:
    """``(N,)`` bool: the model's outputs at ``x``, at zero and at ``x`` plus unit-scale noise all coincide.

    Args:
        batch: a ``QuantusBatch`` (its ``model``, Quantus-layout ``x`` ``(N, ...)`` and ``device`` are used).
        tolerance: relative tolerance on the output spread.

    Uses its own generator for the noise: the global RNG that Quantus draws from is untouched. Inside
    :func:`shared_screens` an equal earlier screen's answer is returned (a copy).
    """
    return screen_outputs(batch, tolerance)[0]


def screen_outputs(batch: Any, tolerance: float = TOLERANCE) -> tuple[np.ndarray, ScreenedOutputs | None]:
    """:func:`constant_output`, and the model's outputs at ``x`` (None in the token view, whose rows are tied to
    the samples of its ids)."""
    entries = _SHARED.get()
    if entries is None:
        return _answer(batch.model, batch.x, *_screen(batch.model, batch.x, batch.device, tolerance))
    probe = _Entry.of(batch, tolerance)
    for entry in entries:
        if entry.matches(probe):
            return _answer(batch.model, batch.x, entry.result.copy(), entry.outputs)
    probe.result, probe.outputs = _screen(batch.model, batch.x, batch.device, tolerance)
    entries.append(probe)
    return _answer(batch.model, batch.x, probe.result.copy(), probe.outputs)


def _answer(model: nn.Module, x: np.ndarray, constant: np.ndarray, outputs: np.ndarray
            ) -> tuple[np.ndarray, ScreenedOutputs | None]:
    if not isinstance(model, QuantusModel):
        return constant, None
    return constant, ScreenedOutputs(model, x, outputs)


def _screen(model: nn.Module, x: np.ndarray, device: str, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """``(N,)`` constant flags and the ``(N, K)`` outputs at ``x``."""
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=bool), np.zeros((0, 0), dtype=np.float32)
    zeros = np.zeros((1 if isinstance(model, QuantusModel) else n, *x.shape[1:]), dtype=x.dtype)
    outputs = _forward(model, np.concatenate([x, zeros]), device)
    at_x, at_zero = outputs[:n], np.broadcast_to(outputs[n:], outputs[:n].shape)
    limit = tolerance * (1.0 + np.abs(at_x).max(axis=-1))
    spread = np.abs(at_x - at_zero).max(axis=-1)
    still = np.flatnonzero(spread <= limit)
    if len(still):
        noise = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
        scale = np.abs(x).reshape(n, -1).max(axis=1).reshape(-1, *([1] * (x.ndim - 1))) + 1.0
        noisy = (x + noise * scale)[still]
        subset = model.take(still) if isinstance(model, TokenPresenceModel) else model
        probes = np.stack([at_x[still], at_zero[still], _forward(subset, noisy, device)])  # (3, S, K)
        spread[still] = (probes.max(axis=0) - probes.min(axis=0)).max(axis=-1)
    at_x.setflags(write=False)  # shared with the metrics that take their outputs at x from here
    return spread <= limit, at_x


def _forward(model: nn.Module, x: np.ndarray, device: str) -> np.ndarray:
    """``(M, ...) -> (M, K)`` outputs as float numpy (one forward, no gradients)."""
    with torch.no_grad():
        out = model(torch.as_tensor(x, device=torch.device(device))).detach().cpu().numpy()
    return out.reshape(len(x), -1)


@dataclass(eq=False)
class _Entry:
    """One screened (model, inputs) pair of the current cell, and its answer."""

    module: nn.Module  # the wrapped suite model, held so that its id cannot be reused while the cell runs
    view: tuple  # wrapper class, modality and input shape or pad token, device, tolerance
    state: tuple  # (data pointer, version) of every parameter and buffer, and every submodule's training flag
    tokens: torch.Tensor | None  # the token view's ids (N, L)
    x: np.ndarray  # the probed inputs (N, ...), a copy
    result: np.ndarray | None = None
    outputs: np.ndarray | None = None  # (N, K) the outputs at x

    @classmethod
    def of(cls, batch: Any, tolerance: float) -> "_Entry":
        wrapper = batch.model
        module = getattr(wrapper, "model", wrapper)
        view = (type(wrapper), getattr(wrapper, "modality", None), getattr(wrapper, "native_shape", None),
                getattr(wrapper, "pad_id", None), str(batch.device), float(tolerance), wrapper.training)
        tokens = wrapper.ids if isinstance(wrapper, TokenPresenceModel) else None
        return cls(module, view, _state(module), tokens, np.array(batch.x, copy=True))

    def matches(self, other: "_Entry") -> bool:
        return (self.module is other.module and self.view == other.view and self.state == other.state
                and _same_tokens(self.tokens, other.tokens)
                and self.x.shape == other.x.shape and self.x.dtype == other.x.dtype
                and bool(np.array_equal(self.x, other.x)))


def _state(module: nn.Module) -> tuple:
    tensors = itertools.chain(module.parameters(), module.buffers())
    return (tuple((t.data_ptr(), t._version) for t in tensors), tuple(m.training for m in module.modules()))


def _same_tokens(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(torch.equal(a, b))
