"""Which torch operations a forward runs outside given module types: what hook-based methods cannot see.

captum's DeepLIFT, Guided Backpropagation and LRP change the backward pass through *module* hooks (on
``nn.ReLU``, ``nn.MaxPool2d``, ``nn.Linear`` ...). The same operation written functionally (``F.relu(x)``,
``x.relu()``, ``torch.sigmoid(x)``, ``x + skip``) runs no hook, so captum silently falls back to its plain gradient
there: DeepLIFT becomes (partly) gradient x input, guided backprop a plain gradient, LRP another sum. The zoo
builds its nonlinearities as modules; a user's own network often does not. :func:`calls_outside` runs one
forward under a ``TorchFunctionMode`` and counts the operations called while no module of the given types is
running, so the explainers can say so (``NotApplicable``) instead of returning a mislabelled map.
:func:`remembered_look` runs that look once per model and method, not once per explain call (a metric's
re-explanations call explain dozens of times per cell).
"""
from __future__ import annotations

import enum
import functools
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from xaibench.engine.counting import ForwardCounter
from xaibench.errors import NotApplicable
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


# ReLU written without ``relu``: what :func:`relu_spelling` recognises, under the names the look records them by
# (a method that rules ReLUs is told which spelling to rewrite as ``nn.ReLU()``).
RELU_SPELLINGS = frozenset({"clamp(min=0)", "clamp_min(0)", "maximum(x, 0)", "where(x > 0, x, 0)",
                            "threshold(x, 0, 0)", "x * (x > 0)"})


def _zero(value: object) -> bool:
    """Whether ``value`` is the number 0 or a tensor of zeros (``torch.zeros_like(x)``)."""
    if isinstance(value, torch.Tensor):
        return value.numel() > 0 and not value.is_complex() and not bool(value.any())
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def _floating(value: object) -> bool:
    """Whether ``value`` is a floating-point tensor: an activation (an integer tensor, ``(lengths - 1).clamp(min=0)``
    indexing the last token, carries no gradient, so no method's rule is missed there)."""
    return isinstance(value, torch.Tensor) and value.is_floating_point()


# The sign tests ``x > 0`` / ``x >= 0`` (``torch.gt``, ``Tensor.ge``...) whose masks :func:`relu_spelling` follows
_SIGN_TESTS = frozenset({"gt", "ge"})


def _sign_test_of(mask: object, x: object, sign_tests: Mapping[int, tuple[torch.Tensor, torch.Tensor]]) -> bool:
    """Whether the forward made ``mask`` as ``x > 0`` (or ``x >= 0``) of this very tensor ``x``: a mask from
    elsewhere (an attention or padding mask) that only equals ``x > 0`` on the look's values, e.g. all True over
    softmax probabilities, is not (the look would otherwise refuse DeepLIFT on a model with no ReLU)."""
    made = sign_tests.get(id(mask))
    return made is not None and made[0] is mask and made[1] is x


def relu_spelling(name: str, args: tuple, kwargs: dict,
                  sign_tests: Mapping[int, tuple[torch.Tensor, torch.Tensor]] | None = None) -> str:
    """The name in :data:`RELU_SPELLINGS` of a call ``name(*args, **kwargs)`` on a floating-point ``x`` that computes
    ``max(x, 0)`` elementwise without calling ``relu`` (``x.clamp(min=0)``, ``torch.clamp(x, 0)``, ``x.clamp_min(0)``,
    ``torch.maximum(x, zeros)``, ``torch.where(x > 0, x, 0)``, ``F.threshold(x, 0, 0)``, ``x * (x > 0)``); "" for
    any other call. ``sign_tests``: the masks ``x > 0`` the forward made so far, ``{id(mask): (mask, x)}``
    (``where``/``mul`` count only with a mask made from their own ``x``). Zeros are read from the call's values (one
    sample's): a tensor that only happens to be zero on it is not told apart."""
    def arg(i: int, key: str) -> object:
        return kwargs[key] if key in kwargs else (args[i] if len(args) > i else None)

    tests = sign_tests or {}
    if name == "clamp" and _floating(arg(0, "input")) and _zero(arg(1, "min")) and arg(2, "max") is None:
        return "clamp(min=0)"
    if name == "clamp_min" and _floating(arg(0, "input")) and _zero(arg(1, "min")):
        return "clamp_min(0)"
    if name in ("maximum", "max", "fmax") and len(args) == 2 and all(isinstance(a, torch.Tensor) for a in args) \
            and (_zero(args[0]) != _zero(args[1])) and _floating(args[1] if _zero(args[0]) else args[0]):
        return "maximum(x, 0)"
    if name == "where" and len(args) == 3 and _floating(args[1]) and _zero(args[2]) \
            and _sign_test_of(args[0], args[1], tests):
        return "where(x > 0, x, 0)"
    if name == "threshold" and _floating(arg(0, "input")) and _zero(arg(1, "threshold")) and _zero(arg(2, "value")):
        return "threshold(x, 0, 0)"
    if name == "mul" and len(args) == 2 and any(_floating(x) and _sign_test_of(mask, x, tests)
                                                 for mask, x in (args, args[::-1])):
        return "x * (x > 0)"
    return ""


SPELLED_OPS = frozenset({"clamp", "clamp_min", "maximum", "max", "fmax", "where", "threshold", "mul"})


def relu_input(name: str, args: tuple, kwargs: dict) -> object:
    """The activation ``x`` of a ReLU call ``name(*args, **kwargs)`` (``F.relu``, or a spelling
    :func:`relu_spelling` named): the input that is not the zero (``maximum``), not the mask (``x * (x > 0)``)."""
    if name == "where":
        return args[1]
    if name in ("maximum", "max", "fmax"):
        return args[1] if _zero(args[0]) else args[0]
    if name == "mul":
        return args[0] if _floating(args[0]) and not _floating(args[1]) else args[1]
    return kwargs["input"] if "input" in kwargs else args[0]


def remember_sign_test(name: str, args: tuple, result: object,
                       sign_tests: dict[int, tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Record ``result`` in ``sign_tests`` when the call made it as ``x > 0`` / ``x >= 0`` (for
    :func:`relu_spelling`'s ``where`` and ``mul``), holding both tensors so their ids stay theirs."""
    if name in _SIGN_TESTS and len(args) == 2 and isinstance(args[0], torch.Tensor) and _zero(args[1]) \
            and isinstance(result, torch.Tensor):
        sign_tests[id(result)] = (result, args[0])


# Operations that multiply (or divide) their operands: where two of them depend on the input, the operation is no
# linear map of it (``q @ k^T``, ``softmax(.) @ v``, a gate ``a * sigmoid(b)``, ``x / x.norm()``); recorded as
# ``"matmul(x, y)"``...: see :data:`PRODUCT_SPELLING`.
PRODUCT_OPS = frozenset({"mul", "__mul__", "__rmul__", "__imul__", "matmul", "__matmul__", "__rmatmul__", "bmm", "mm",
                         "einsum", "div", "__truediv__", "__rtruediv__", "__itruediv__", "true_divide", "linear",
                         "bilinear", "baddbmm", "addbmm", "addmm", "outer", "inner", "dot", "tensordot", "kron"})
PRODUCT_SPELLING = "{}(x, y)"  # how a product of two input-dependent tensors is counted: "matmul(x, y)"
_DUNDER_PRODUCTS = {"__mul__": "mul", "__rmul__": "mul", "__imul__": "mul", "__matmul__": "matmul",
                    "__rmatmul__": "matmul", "__truediv__": "div", "__rtruediv__": "div", "__itruediv__": "div",
                    "true_divide": "div"}
# The names products of two input-dependent tensors are counted under ("matmul(x, y)", "mul(x, y)" ...)
PRODUCTS_COUNTED = frozenset(PRODUCT_SPELLING.format(_DUNDER_PRODUCTS.get(op, op)) for op in PRODUCT_OPS)
# Operations whose result takes only the shape, dtype or device of their input, not its values
_FRESH_OPS = frozenset({"zeros_like", "ones_like", "full_like", "empty_like", "rand_like", "randn_like", "randint_like",
                        "new_zeros", "new_ones", "new_full", "new_empty", "new_tensor"})


def _tensors_in(value: object) -> Iterator[torch.Tensor]:
    """The tensors in a call's argument or result: itself, or those in a (nested) tuple, list or dict."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors_in(item)


# Normalisations over the classes that a classifier may end in: a call of these whose result reaches the forward's
# output through layout operations only (no operation combines it with anything) is recorded in ``on_input`` as
# ``"softmax at the output"`` (:data:`AT_THE_OUTPUT`), one whose result the forward computes on as ``"softmax"``.
# Computed inside a module (not counted: ``nn.Softmax`` for DeepLIFT), they are recorded under the module's name.
OUTPUT_NORMALISERS = frozenset({"softmax", "log_softmax"})
AT_THE_OUTPUT = "{} at the output"
NORMALISER_MODULES = {"softmax": "nn.Softmax", "log_softmax": "nn.LogSoftmax"}
# A softmax at the output whose log the suite takes (``models/outputs.LogProbabilities`` of a model declared
# ``outputs=probabilities``): the forward looked at returns ``log p``, a log_softmax
_LOGGED = {"softmax": "log_softmax", "nn.Softmax": "nn.LogSoftmax"}


class _Recorder(TorchFunctionMode):
    """Counts ``op_name``s of the torch functions called while ``counted()`` holds; a ReLU spelt another way
    (:func:`relu_spelling`) is counted under that spelling, a product of two floating-point tensors that both depend
    on ``inputs`` (:data:`PRODUCT_OPS`) as ``"matmul(x, y)"``. What depends on the inputs: floating-point results of
    operations on them, but for ``zeros_like`` & co; a boolean or integer mask (``x > 0``, a padding mask) and what is
    made of it (``mask.float()``) do not, so ``x * mask`` stays a product with a constant, as captum's gradient and
    DeepLIFT both treat it.

    ``on_input`` counts the same names, for the counted calls with a floating-point operand that depends on the
    inputs (``torch.exp(h)``, not ``torch.exp(self.log_scale)``), a normalisation of :data:`OUTPUT_NORMALISERS` whose
    result is the forward's output under :data:`AT_THE_OUTPUT` (known once :meth:`finish` ran: a softmax the forward
    computes nothing on and does not return, kept aside, is not counted; one whose log the suite takes is
    ``"log_softmax at the output"``, what the forward then returns); one computed inside
    a covered module under the module's name (:data:`NORMALISER_MODULES`: ``"nn.Softmax"``). ``in_suite``: whether
    the suite's own wrapper code runs (its operations on the output, a probability model's log, do not compute on
    it as the model would)."""

    def __init__(self, counted: Callable[[], bool], inputs: torch.Tensor,
                 in_suite: Callable[[], bool] = lambda: False) -> None:
        super().__init__()
        self.counted = counted
        self.in_suite = in_suite
        self.calls: Counter[str] = Counter()
        self.on_input: Counter[str] = Counter()
        self.sign_tests: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # relu_spelling's; held for the look
        self.derived: dict[int, torch.Tensor] = {id(inputs): inputs}  # what depends on the inputs; held for the look
        # results of OUTPUT_NORMALISERS calls (and layout views of them) nothing has computed on yet:
        # {id(tensor): (tensor, index of the call)}, and {index: name} of the calls not computed on
        self.open_ends: dict[int, tuple[torch.Tensor, int]] = {}
        self.unused: dict[int, str] = {}
        self.logged: set[int] = set()  # the calls whose result the suite took the log of
        self.normalisations = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's protocol
        name, kwargs = op_name(func), kwargs or {}
        tensors = list(_tensors_in((args, kwargs)))
        operands = [t for t in tensors if self.derived.get(id(t)) is t]
        spelt = ""
        counted = self.counted()
        if counted:
            spelt = relu_spelling(name, args, kwargs, self.sign_tests) if name in SPELLED_OPS else ""
            if not spelt and name in PRODUCT_OPS and sum(t.is_floating_point() for t in operands) > 1:
                spelt = PRODUCT_SPELLING.format(_DUNDER_PRODUCTS.get(name, name))
            self.calls[spelt or name] += 1
            if any(t.is_floating_point() for t in operands):
                self.on_input[spelt or name] += 1
        ends = {self.open_ends[id(t)][1] for t in tensors if self.open_ends.get(id(t), (None,))[0] is t}
        if ends and name not in LAYOUT_OPS and not self.in_suite():
            for index in ends:
                self.unused.pop(index, None)  # computed on: inside the network
            ends = set()
        elif ends and name == "log":  # the suite's log of a probability model's output
            self.logged.update(ends)
        result = func(*args, **kwargs)
        remember_sign_test(name, args, result, self.sign_tests)
        if operands and name not in _FRESH_OPS:  # floating results only: a mask (x > 0, padding) is no multiplier
            self.derived.update((id(t), t) for t in _tensors_in(result) if t.is_floating_point())
        if name in OUTPUT_NORMALISERS and any(t.is_floating_point() for t in operands) and not self.in_suite():
            label = name if counted else NORMALISER_MODULES[name]
            if not counted:
                self.on_input[label] += 1
            self.normalisations += 1
            ends = {self.normalisations}
            self.unused[self.normalisations] = label
        for index in ends & set(self.unused):  # the normaliser's result, or a view of it
            self.open_ends.update((id(t), (t, index)) for t in _tensors_in(result))
        return result

    def finish(self, output: object) -> None:
        """Move the normalisations whose results nothing computed on and the forward returned (``output``, possibly
        through layout steps and the suite's log) to their :data:`AT_THE_OUTPUT` names; drop those it neither
        computed on nor returned (kept aside: no output depends on them)."""
        returned = {end[1] for t in _tensors_in(output) if (end := self.open_ends.get(id(t))) and end[0] is t}
        for index, name in self.unused.items():
            self.on_input[name] -= 1
            if index in returned:
                self.on_input[AT_THE_OUTPUT.format(_LOGGED.get(name, name) if index in self.logged else name)] += 1
        self.on_input = +self.on_input  # drops the zeros
        self.unused.clear()


def calls_outside(forward: nn.Module, inputs: torch.Tensor, covers: Callable[[nn.Module], bool],
                  uses: Counter[nn.Module] | None = None, on_input: Counter[str] | None = None) -> Counter[str]:
    """Operations ``forward(inputs)`` runs while no module for which ``covers`` holds is running.

    The forward is a look, not a step (:func:`_looking`): the model's mode, batch-norm statistics, the global RNG
    and the engine's forward counts are left as they were. Operations of the suite's own wrappers
    (``TransformedScores.prepare``/``transform``: the explained output's transform, a declared probability model's
    log, a float64 model's casts) are the suite's, not the model's, and are not counted.

    Args:
        forward: the module captum explains (the model, or wrappers around it).
        inputs: one batch ``(N, ...)`` (one sample is enough: the operations do not depend on the batch size).
        covers: whether a module's own forward is handled by the method (its hooks see what runs inside).
        uses: if given, filled with how often each module was called in that forward (:func:`reused`).
        on_input: if given, filled with the uncovered operations that computed on a value depending on the inputs
            (``_Recorder.on_input``: ``exp`` of an activation, not of a parameter; ``softmax at the output``).

    Returns:
        ``Counter`` of operation names (``relu``, ``add``, ``linear``...) and how often each ran uncovered.
    """
    stack: list[nn.Module] = []
    suite = [0]  # > 0 while a suite wrapper's prepare/transform runs
    handles = []
    modules = list(forward.modules())

    def enter(module: nn.Module, _args: tuple) -> None:
        stack.append(module)
        if uses is not None:
            uses[module] += 1

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
    recorder = _Recorder(lambda: not suite[0] and not any(covers(module) for module in stack), inputs,
                         lambda: bool(suite[0]))
    try:
        with _looking(forward, inputs), recorder:
            output = forward(inputs)
        recorder.finish(output)
    finally:
        for handle in handles:
            handle.remove()
        for module in wrappers:
            del vars(module)["prepare"], vars(module)["transform"]
    if on_input is not None:
        on_input.update(recorder.on_input)
    return recorder.calls


@contextmanager
def _looking(forward: nn.Module, inputs: torch.Tensor) -> Iterator[None]:
    """Run a block as a look at ``forward``, not a step of it: in eval mode (no batch-norm statistics moved, nor a
    one-sample batch refused; no dropout draws), under ``no_grad``, on a forked torch RNG (the model's own draws),
    with each module's training flag and the engine's forward counts (``engine/counting.py``: the table's
    ``n_forward`` stays the method's own) put back after."""
    modules = list(forward.modules())
    saved = [(module, module.training, {k: v for k, v in vars(module).items() if k in _COUNTS}) for module in modules]
    cuda = [inputs.device.index if inputs.device.index is not None else torch.cuda.current_device()] \
        if inputs.is_cuda else []
    try:
        forward.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=cuda):
            yield
    finally:
        for module, training, counts in saved:
            module.training = training
            vars(module).update(counts)


def described(calls: Counter[str], names: Iterable[str]) -> str:
    """``"relu (2x), max_pool2d"``: the ``names`` among ``calls``, sorted, with counts above one."""
    found = sorted(set(names) & set(calls))
    return ", ".join(f"{name} ({calls[name]}x)" if calls[name] > 1 else name for name in found)


def _own_name(forward: nn.Module, name: str) -> str:
    """``name`` (a ``named_modules`` path of ``forward``) as the user's model names it: without the path through the
    suite's own wrappers (``ForwardCounter``, the explained output...), e.g. ``block.1``, not ``model.model.block.1``."""
    if not name:
        return type(forward).__name__
    parts, module, cut = name.split("."), forward, 0
    for i, part in enumerate(parts):
        if type(module).__module__.startswith("xaibench."):
            cut = i + 1
        module = getattr(module, part)
    return ".".join(parts[cut:]) or name


def reused(forward: nn.Module, uses: Counter[nn.Module], kinds: Callable[[nn.Module], bool], method: str) -> None:
    """Raise ``NotApplicable`` where a module for which ``kinds`` holds was called more than once (``uses`` of
    :func:`calls_outside`): captum's DeepLIFT and LRP keep one set of activations per module, and raise a
    ``RuntimeError`` mid-call on a module used twice (one ``self.pool`` after every convolution)."""
    if not any(n > 1 and kinds(module) for module, n in uses.items()):
        return  # the usual case: no module's names to work out (this runs on every explain call)
    names = {module: _own_name(forward, name) for name, module in forward.named_modules()}
    twice = sorted(f"{names[module]} (nn.{type(module).__name__})" for module, n in uses.items()
                   if n > 1 and kinds(module))
    if twice:
        raise NotApplicable(f"method {method} keeps one state per module, but this model's forward calls "
                            f"{', '.join(twice)} twice each or more; give each use its own module (self.pool1 = "
                            f"nn.MaxPool2d(2), self.pool2 = nn.MaxPool2d(2), ...) to explain it with this method")


# (rule, model fingerprint) -> (weak references to the model's own modules, the calls, the uses by position in
# ``forward.modules()``, the calls on input-dependent values): see remembered_look
_REMEMBERED: dict[tuple, tuple[tuple[weakref.ref, ...], Counter[str], Counter[int], Counter[str]]] = {}
_REMEMBERED_MAX = 64
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


def _fingerprint(modules: list[nn.Module], inputs: torch.Tensor) -> tuple[tuple, list[nn.Module]]:
    """What decides which operations a forward through ``modules`` (``forward.modules()``) runs on ``inputs``, as far as it can be read without running it: each
    module's type, identity (not the suite's wrappers': made afresh per call), plain settings (``training``, a flag
    that picks ``F.relu``), instance ``forward`` and forward (pre-)hooks, the global forward hooks, and the input's
    shape per sample, dtype and device. Returns it and the model's own modules (all but the suite's wrappers)."""
    wrappers = _suite_wrappers()
    parts: list[tuple] = []
    own: list[nn.Module] = []
    for module in modules:
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


def remembered_look(forward: nn.Module, inputs: torch.Tensor, covers: Callable[[nn.Module], bool], rule: str,
                    on_input: Counter[str] | None = None) -> tuple[Counter[str], Counter[nn.Module]]:
    """``calls_outside(forward, inputs[:1], covers, uses)``, run once per ``rule`` (the name of what ``covers``
    tests) and model: ``(calls, uses)``.

    Remembered while the model's modules live and stay the same objects with the same plain settings (str, number,
    tuple, enum attributes), forward hooks and instance ``forward``s, for inputs of the same shape per sample,
    dtype and device. A forward whose operations depend on something else (a list or dict it holds, the values of
    the sample) is looked at once.

    Args:
        forward, inputs, covers: as for :func:`calls_outside` (``inputs (N, ...)``: its first sample runs).
        rule: what ``covers`` tests (the method's name); two rules are never mixed up.
        on_input: if given, filled as by :func:`calls_outside` (remembered too).

    Returns:
        New ``Counter``s, the caller's to change: the operations run outside covered modules, and how often each
        module of ``forward`` was called (for :func:`reused`).
    """
    modules = list(forward.modules())
    fingerprint, own = _fingerprint(modules, inputs)
    key = (rule, fingerprint)
    with _REMEMBERED_LOCK:
        found = _REMEMBERED.get(key)
    if found is not None and len(found[0]) == len(own) and all(ref() is m for ref, m in zip(found[0], own)):
        if on_input is not None:
            on_input.update(found[3])
        return Counter(found[1]), Counter({modules[i]: n for i, n in found[2].items()})
    uses: Counter[nn.Module] = Counter()
    computed: Counter[str] = Counter()
    calls = calls_outside(forward, inputs[:1], covers, uses, computed)
    if on_input is not None:
        on_input.update(computed)
    position = {id(module): i for i, module in enumerate(modules)}  # positions, not modules: nothing kept alive
    by_position = Counter({position[id(module)]: n for module, n in uses.items() if id(module) in position})
    with _REMEMBERED_LOCK:
        _REMEMBERED.pop(key, None)
        _REMEMBERED[key] = (tuple(weakref.ref(m) for m in own), Counter(calls), by_position, computed)
        while len(_REMEMBERED) > _REMEMBERED_MAX:  # the oldest go first
            del _REMEMBERED[next(iter(_REMEMBERED))]
    return calls, uses
