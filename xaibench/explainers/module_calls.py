"""Which torch operations a forward runs outside given module types: what hook-based methods cannot see.

captum's DeepLIFT, Guided Backpropagation and LRP change the backward pass through *module* hooks (on
``nn.ReLU``, ``nn.MaxPool2d``, ``nn.Linear`` ...). The same operation written functionally (``F.relu(x)``,
``x.relu()``, ``torch.sigmoid(x)``, ``x + skip``) runs no hook, so captum silently falls back to its plain gradient
there: DeepLIFT becomes (partly) gradient x input, guided backprop a plain gradient, LRP another sum. The zoo
builds its nonlinearities as modules; a user's own network often does not. :func:`calls_outside` runs one
forward under a ``TorchFunctionMode`` and counts the operations called while no module of the given types is
running, so the explainers can say so (``NotApplicable``) instead of returning a mislabelled map.
:func:`remembered` runs such a look once per model and method, not once per explain call (a metric's
re-explanations call explain dozens of times per cell).
"""
from __future__ import annotations

import enum
import functools
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TypeVar

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from xaibench.engine.counting import ForwardCounter
from xaibench.models.outputs import TransformedScores

# Reshaping, indexing and casting: they move values without combining them, so every propagation rule passes
# relevance (and DeepLIFT's multipliers) through them unchanged.
LAYOUT_OPS = frozenset({
    "view", "reshape", "flatten", "unflatten", "permute", "transpose", "t", "squeeze", "unsqueeze", "contiguous",
    "movedim", "view_as", "reshape_as", "__getitem__", "to", "float", "double", "half", "type", "clone", "size",
    "dim", "numel", "__get__", "__len__", "detach", "requires_grad_", "type_as", "__format__", "__repr__",
})


# What the engine's forward counter (``engine/counting.py``) counts, restored after the look
_COUNTS = frozenset({"calls", "rows", "largest"})


def op_name(func: Callable) -> str:
    """The operation's base name: ``F.relu``, ``torch.relu_``, ``Tensor.relu`` -> ``relu``; ``F.max_pool2d``
    (``_max_pool2d`` / ``max_pool2d_with_indices``) -> ``max_pool2d``."""
    name = getattr(func, "__name__", type(func).__name__)
    if name.startswith("__") and name.endswith("__"):
        return name
    return name.strip("_").removesuffix("_with_indices")


class _Recorder(TorchFunctionMode):
    """Counts ``op_name``s of the torch functions called while ``counted()`` holds."""

    def __init__(self, counted: Callable[[], bool]) -> None:
        super().__init__()
        self.counted = counted
        self.calls: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's protocol
        if self.counted():
            self.calls[op_name(func)] += 1
        return func(*args, **(kwargs or {}))


def calls_outside(forward: nn.Module, inputs: torch.Tensor, covers: Callable[[nn.Module], bool]) -> Counter[str]:
    """Operations ``forward(inputs)`` runs while no module for which ``covers`` holds is running.

    Operations of the suite's own wrappers (``TransformedScores.prepare``/``transform``: the explained output's
    transform, a declared probability model's log, a float64 model's casts) are the suite's, not the model's, and
    are not counted.

    Args:
        forward: the module captum explains (the model, or wrappers around it).
        inputs: one batch ``(N, ...)`` (one sample is enough: the operations do not depend on the batch size).
        covers: whether a module's own forward is handled by the method (its hooks see what runs inside).

    Returns:
        ``Counter`` of operation names (``relu``, ``add``, ``linear``...) and how often each ran uncovered.
    """
    stack: list[nn.Module] = []
    suite = [0]  # > 0 while a suite wrapper's prepare/transform runs
    handles = []
    modules = list(forward.modules())
    counts = [(module, {k: v for k, v in vars(module).items() if k in _COUNTS}) for module in modules]

    def enter(module: nn.Module, _args: tuple) -> None:
        stack.append(module)

    def leave(_module: nn.Module, _args: tuple, _output: object) -> None:
        stack.pop()  # returns None: the output stays the module's

    def suites_own(step: Callable) -> Callable:
        def run(*args: object) -> object:
            suite[0] += 1
            try:
                return step(*args)
            finally:
                suite[0] -= 1
        return run

    wrappers = [module for module in modules if isinstance(module, TransformedScores)]
    for module in modules:
        # first in, last out: what the module's own pre-hooks and hooks compute (e.g. input_invariance's padding
        # pre-hook) runs inside the module, as the method's hooks see it
        handles += [module.register_forward_pre_hook(enter, prepend=True), module.register_forward_hook(leave)]
    for module in wrappers:  # instance attributes shadow the methods until removed below
        vars(module).update(prepare=suites_own(module.prepare), transform=suites_own(module.transform))
    recorder = _Recorder(lambda: not suite[0] and not any(covers(module) for module in stack))
    try:
        with torch.no_grad(), recorder:
            forward(inputs)
    finally:
        for handle in handles:
            handle.remove()
        for module in wrappers:
            del vars(module)["prepare"], vars(module)["transform"]
        for module, saved in counts:  # this forward is no call of the method's: the table's n_forward stays its own
            vars(module).update(saved)
    return recorder.calls


def reused_modules(forward: nn.Module, inputs: torch.Tensor, covers: Callable[[nn.Module], bool]) -> dict[str, int]:
    """Modules for which ``covers`` holds that ``forward(inputs)`` calls more than once, by ``named_modules`` path
    (``{"net.act": 2}``), in the order they are named.

    captum's DeepLIFT stores one input and output per nonlinearity module, so a module used twice (one
    ``self.act = nn.ReLU()`` applied after every layer) fails inside captum ("A Module ReLU() was detected that does
    not contain some of the input/output attributes"), an error cell rather than a reason.

    Args:
        forward: the module captum explains; inputs: one batch ``(N, ...)`` (one sample is enough).
    """
    named = [(name, module) for name, module in forward.named_modules() if covers(module)]
    if not named:
        return {}
    seen: Counter[str] = Counter()
    counts = [(module, {k: v for k, v in vars(module).items() if k in _COUNTS}) for module in forward.modules()]
    handles = [module.register_forward_pre_hook(lambda _m, _a, name=name: seen.update([name]))
               for name, module in named]
    try:
        with torch.no_grad():
            forward(inputs)
    finally:
        for handle in handles:
            handle.remove()
        for module, saved in counts:  # not a call of the method's: n_forward stays its own
            vars(module).update(saved)
    return {name: seen[name] for name, _ in named if seen[name] > 1}


def described(calls: Counter[str], names: Iterable[str]) -> str:
    """``"relu (2x), max_pool2d"``: the ``names`` among ``calls``, sorted, with counts above one."""
    found = sorted(set(names) & set(calls))
    return ", ".join(f"{name} ({calls[name]}x)" if calls[name] > 1 else name for name in found)


# (look, rule, model fingerprint) -> (weak references to the model's own modules, its result): see remembered
_REMEMBERED: dict[tuple, tuple[tuple[weakref.ref, ...], Counter[str] | dict[str, int]]] = {}
_REMEMBERED_MAX = 64
Looked = TypeVar("Looked", Counter, dict)
_REMEMBERED_LOCK = threading.Lock()


@functools.cache
def _suite_wrappers() -> tuple[type, ...]:
    """The suite's wrapper modules, made afresh around the same model per call (counter, output transform, text and
    Quantus views): known by their type and settings, not their identity. Imported here: they import explainers."""
    from xaibench.explainers.base import EmbeddedForward
    from xaibench.explainers.inputs import TokenForward
    from xaibench.explainers.output_rules import Readout
    from xaibench.metrics.layout import QuantusModel, TokenPresenceModel
    return (ForwardCounter, TransformedScores, EmbeddedForward, TokenForward, Readout, QuantusModel,
            TokenPresenceModel)


def _settings(module: nn.Module) -> tuple:
    """A module's plain settings (``training``, ``ExplainedOutput.kind``, ``QuantusModel.modality`` ...), the forward
    counter's counts left out."""
    return tuple(sorted((name, value) for name, value in vars(module).items()
                        if not name.startswith("_") and name not in _COUNTS
                        and isinstance(value, (str, int, float, bool, tuple, enum.Enum)) and _hashable(value)))


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:  # a tuple holding a list
        return False
    return True


def _fingerprint(forward: nn.Module, inputs: torch.Tensor) -> tuple[tuple, list[nn.Module]]:
    """What decides which operations ``forward(inputs)`` runs, as far as it can be read without running it: each
    module's type, identity (not the suite's wrappers': made afresh per call), plain settings (``training``, a flag
    that picks ``F.relu``), instance ``forward`` and forward (pre-)hooks, the global forward hooks, and the input's
    shape per sample, dtype and device. Returns it and the model's own modules (all but the suite's wrappers)."""
    wrappers = _suite_wrappers()
    parts: list[tuple] = []
    own: list[nn.Module] = []
    for module in forward.modules():
        wrapper = isinstance(module, wrappers)
        if not wrapper:
            own.append(module)
        own_forward = vars(module).get("forward")  # its id: the key must not keep a bound method's module alive
        parts.append((type(module), None if wrapper else id(module), _settings(module),
                      None if own_forward is None else id(own_forward), tuple(module._forward_pre_hooks),
                      tuple(module._forward_hooks)))
    hooks = nn.modules.module
    parts.append((tuple(hooks._global_forward_pre_hooks), tuple(hooks._global_forward_hooks),
                  tuple(inputs.shape[1:]), inputs.dtype, inputs.device))
    return tuple(parts), own


def remembered(look: Callable[[nn.Module, torch.Tensor, Callable[[nn.Module], bool]], Looked], forward: nn.Module,
               inputs: torch.Tensor, covers: Callable[[nn.Module], bool], rule: str) -> Looked:
    """``look(forward, inputs[:1], covers)`` (:func:`calls_outside`, :func:`reused_modules`), run once per look,
    ``rule`` (the name of what ``covers`` tests) and model.

    Remembered while the model's modules live and stay the same objects with the same plain settings (str, number,
    tuple, enum attributes), forward hooks and instance ``forward``s, for inputs of the same shape per sample,
    dtype and device. A forward whose operations depend on something else (a list or dict it holds, the values of
    the sample) is looked at once.

    Args:
        look: a function of this module; forward, inputs, covers: its arguments (``inputs (N, ...)``: its first
            sample runs).
        rule: what ``covers`` tests (the method's name); two rules are never mixed up.

    Returns:
        A copy of what ``look`` returned (a ``Counter`` or ``dict``), the caller's to change.
    """
    fingerprint, own = _fingerprint(forward, inputs)
    key = (look.__name__, rule, fingerprint)
    with _REMEMBERED_LOCK:
        found = _REMEMBERED.get(key)
    if found is not None and len(found[0]) == len(own) and all(ref() is m for ref, m in zip(found[0], own)):
        return type(found[1])(found[1])
    result = look(forward, inputs[:1], covers)
    with _REMEMBERED_LOCK:
        _REMEMBERED.pop(key, None)
        _REMEMBERED[key] = (tuple(weakref.ref(m) for m in own), type(result)(result))
        while len(_REMEMBERED) > _REMEMBERED_MAX:  # the oldest go first
            del _REMEMBERED[next(iter(_REMEMBERED))]
    return result
