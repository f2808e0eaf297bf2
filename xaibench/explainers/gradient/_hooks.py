"""Methods that change the backward pass of nonlinearities through module hooks (DeepLIFT's Rescale rule, Guided
Backpropagation) see only nonlinearities that are modules, run in Python:

- inside a TorchScript module no Python hook runs (its layers are compiled code);
- a nonlinearity called as a function (``F.relu(x)``, ``x.relu()``, ``torch.sigmoid(x)``, ``F.max_pool2d``) has no
  module to hook;
- DeepLIFT has no rule at all for operations that mix input-dependent values other than by a sum (``nn.LayerNorm``,
  ``nn.GLU``, attention's ``q @ k^T`` and ``softmax(.) @ v``, ``x * y``), module or not;
- nor for maths on activations that no torch module with a DeepLIFT rule computes (``torch.exp(h)``, ``h ** 2``,
  ``torch.sqrt``, ``torch.log``, ``h.clamp(-1, 1)``, ``h.max(dim=1)``, ``h.std()``, a softmax inside the network).

Each way captum silently returns plain gradients there under the method's name, so such a model is refused with
``NotApplicable`` (the row says why and what to change).
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR, nonlinear
from torch import nn

from xaibench.errors import NotApplicable
from xaibench.explainers.module_calls import (
    AT_THE_OUTPUT, NORMALISER_MODULES, OUTPUT_NORMALISERS, PRODUCTS_COUNTED, RELU_SPELLINGS, described,
    remembered_look, reused,
)

# Elementwise nonlinearities captum's DeepLIFT has no rule for (not in ``SUPPORTED_NON_LINEAR``): captum would cross
# them with their gradient. DeepLIFT's Rescale rule (Shrikumar et al., 2017, section 3.5.1: multiplier
# ``(f(x) - f(x')) / (x - x')``) is defined for any elementwise nonlinearity, and captum's ``nonlinear`` computes it
# for any such module: :func:`rescale_elementwise` applies it to these too (the zoo's ``vit`` and
# ``text_transformer`` hold ``nn.GELU``).
RESCALED_MODULES = (nn.GELU, nn.SiLU, nn.Mish, nn.CELU, nn.SELU, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.ReLU6,
                    nn.LogSigmoid, nn.Softsign, nn.Tanhshrink, nn.Softshrink, nn.Hardshrink, nn.Threshold, nn.PReLU,
                    nn.RReLU)

# The functions whose module DeepLIFT has a rule for (captum's ``SUPPORTED_NON_LINEAR``, looked up by exact type, and
# ``RESCALED_MODULES``; ``hardtanh``: ``nn.Hardtanh``, ``nn.ReLU6``), and ReLU spelt otherwise (``x.clamp(min=0)``).
# Softmax is left out: captum's rule for ``nn.Softmax`` centres the multipliers over the whole tensor, batch
# included (a sample's map depends on the others), so a module is no better advice than the gradient.
DEEPLIFT_FUNCTIONS = frozenset({"relu", "elu", "leaky_relu", "sigmoid", "tanh", "softplus", "max_pool1d", "max_pool2d",
                                "max_pool3d", "gelu", "silu", "mish", "celu", "selu", "hardswish", "hardsigmoid",
                                "hardtanh", "relu6", "log_sigmoid", "softsign", "tanhshrink", "softshrink",
                                "hardshrink", "threshold", "prelu", "rrelu"}) | RELU_SPELLINGS
_RELUS = frozenset({"relu"}) | RELU_SPELLINGS

# The module to build instead of each function of DEEPLIFT_FUNCTIONS (named in the refusal)
MODULE_OF = {"relu": "nn.ReLU", **{spelling: "nn.ReLU" for spelling in RELU_SPELLINGS}, "elu": "nn.ELU",
             "leaky_relu": "nn.LeakyReLU", "sigmoid": "nn.Sigmoid", "tanh": "nn.Tanh", "softplus": "nn.Softplus",
             "max_pool1d": "nn.MaxPool1d", "max_pool2d": "nn.MaxPool2d", "max_pool3d": "nn.MaxPool3d",
             "gelu": "nn.GELU", "silu": "nn.SiLU", "mish": "nn.Mish", "celu": "nn.CELU", "selu": "nn.SELU",
             "hardswish": "nn.Hardswish", "hardsigmoid": "nn.Hardsigmoid", "hardtanh": "nn.Hardtanh",
             "relu6": "nn.ReLU6", "log_sigmoid": "nn.LogSigmoid", "softsign": "nn.Softsign",
             "tanhshrink": "nn.Tanhshrink", "softshrink": "nn.Softshrink", "hardshrink": "nn.Hardshrink",
             "threshold": "nn.Threshold", "prelu": "nn.PReLU", "rrelu": "nn.RReLU"}

# Maths on activations for which torch has no module DeepLIFT has a rule for: elementwise functions (``exp``, ``log``,
# ``sqrt``, ``x ** p``, ``abs``, ``sin`` ...), clamps at bounds other than ``min=0`` (``nn.Hardtanh`` where both are
# set), maxima, minima and selections over values (``x.max(dim)``, ``torch.maximum(a, b)``, ``topk``), statistics
# (``std``, ``var``, ``norm``, ``logsumexp``, ``prod``) and a normalisation over a dim (``softmax`` inside the
# network: captum's ``nn.Softmax`` rule does not sum to the output change either, off by 0.6 where the change was
# 0.09 on a ``Linear -> nn.Softmax -> Linear`` net). captum crosses them with their gradient. Refused only where they
# compute on a value that depends on the input (``module_calls._Recorder.on_input``): ``torch.exp(self.log_scale)``
# or fixed positional codes are constants to DeepLIFT. A ``softmax``/``log_softmax`` whose result is the model's
# output is not refused (``AT_THE_OUTPUT``): the suite's output rules make DeepLIFT exact through it
# (``output_rules.deeplift_multipliers(centred=True)``).
DEEPLIFT_NO_MODULE = frozenset({
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "pow", "__pow__", "__rpow__",
    "float_power", "square", "reciprocal", "abs", "__abs__", "sign", "sgn", "sin", "cos", "tan", "sinh", "cosh",
    "asinh", "atan", "arctan", "atan2", "erf", "erfc", "erfinv", "logit", "xlogy", "round", "floor", "ceil",
    "clamp", "clamp_min", "clamp_max", "clip", "maximum", "minimum", "max", "min", "amax", "amin", "fmax", "fmin",
    "topk", "sort", "cummax", "cummin", "std", "var", "std_mean", "var_mean", "norm", "vector_norm", "logsumexp",
    "logcumsumexp", "prod", "cumprod", "softmin", "log_softmax", "softmax"})
# What the refusal calls them, and the module where one exists
_NO_MODULE_NAMES = {"__pow__": "pow", "__rpow__": "pow", "__abs__": "abs", "clip": "clamp"}
_NO_MODULE_ADVICE = {"clamp": "nn.Hardtanh(min, max) for a clamp with both bounds",
                     "clamp_min": "nn.Threshold(min, min) for clamp_min"}

# What DeepLIFT has no rule for, module or not: operations that combine several input-dependent values other than
# by a sum (normalisations by the input's own statistics, GLU's gate, attention, products of two such tensors:
# ``module_calls.PRODUCTS_COUNTED``). captum crosses them with their gradient at the input, as if linear: the map
# there is gradient x (input - baseline), not the Rescale rule's multipliers, and no longer sums to
# ``f(x) - f(baseline)`` (``tests/unit/test_byo_deeplift_mixing_ops.py`` checks what captum computes on each).
DEEPLIFT_UNRULED = frozenset({"layer_norm", "group_norm", "instance_norm", "rms_norm", "normalize", "glu",
                              "scaled_dot_product_attention", "multi_head_attention_forward",
                              "transformer_encoder_layer_fwd"}) | PRODUCTS_COUNTED

_RESCALE_LOCK = threading.Lock()
_RESCALE_USERS = [0]  # DeepLIFT calls under way (threads) that need the rules of RESCALED_MODULES
_RESCALE_ADDED: list[type] = []


@contextmanager
def rescale_elementwise() -> Iterator[None]:
    """Within the block, captum's DeepLIFT (and DeepLIFT-SHAP) applies the Rescale rule to ``RESCALED_MODULES`` too:
    their entries are added to captum's ``SUPPORTED_NON_LINEAR`` on entering (the first of concurrent blocks) and
    removed on leaving (the last), so captum used outside the suite is left as it ships."""
    with _RESCALE_LOCK:
        if not _RESCALE_USERS[0]:
            _RESCALE_ADDED[:] = [kind for kind in RESCALED_MODULES if kind not in SUPPORTED_NON_LINEAR]
            SUPPORTED_NON_LINEAR.update({kind: nonlinear for kind in _RESCALE_ADDED})
        _RESCALE_USERS[0] += 1
    try:
        yield
    finally:
        with _RESCALE_LOCK:
            _RESCALE_USERS[0] -= 1
            if not _RESCALE_USERS[0]:
                for kind in _RESCALE_ADDED:
                    SUPPORTED_NON_LINEAR.pop(kind, None)


def refuse_scripted(model: nn.Module, method: str) -> None:
    """Raise ``NotApplicable`` when ``model`` holds a TorchScript module (``torch.jit.script``/``trace``, loaded
    with ``torch.jit.load``): ``method`` would not run its hooks there."""
    if any(isinstance(part, torch.jit.ScriptModule) for part in model.modules()):
        raise NotApplicable(f"method {method} changes the gradients of nn.ReLU layers with module hooks, which a "
                            "TorchScript model does not run (it would return plain gradients); give its class as "
                            "model.target (the archive's weights load into it) to explain it with this method")


def _deeplift_covers(module: nn.Module) -> bool:
    """Whether DeepLIFT has a rule for ``module`` (looked up by exact type, as captum does): captum's own, or the
    Rescale rule of :func:`rescale_elementwise`."""
    return type(module) in SUPPORTED_NON_LINEAR or type(module) in RESCALED_MODULES


def refuse_functional_deeplift(forward: nn.Module, inputs: torch.Tensor, method: str) -> str:
    """Raise ``NotApplicable`` when ``forward(inputs)`` calls a nonlinearity DeepLIFT has a rule for (ReLU, ELU,
    LeakyReLU, Sigmoid, Tanh, Softplus, MaxPool1-3d; GELU, SiLU... of ``RESCALED_MODULES``) as a function rather than
    through its module (ReLU spelt ``x.clamp(min=0)``, ``torch.where(x > 0, x, 0)`` too), or calls one such module
    twice (captum would raise mid-call: ``module_calls.reused``), or computes what no DeepLIFT rule crosses
    (``DEEPLIFT_UNRULED``: ``nn.LayerNorm``, ``nn.GLU``, attention products ``q @ k^T``, ``softmax(.) @ v``, ``x * y``
    of two input-dependent tensors; ``DEEPLIFT_NO_MODULE``: ``torch.exp(h)``, ``h ** 2``, a softmax inside the
    network...).

    A softmax returned as the model's output, not through the suite's log (``outputs=probabilities``), is refused
    too: its probabilities would be explained as logits, and no rule crosses it exactly.

    Returns:
        ``"log_softmax"`` when the model's output is one (a softmax through the suite's log included), else ``""``:
        for the output rules (:func:`output_normaliser`).
    """
    computed: Counter[str] = Counter()
    calls, uses = remembered_look(forward, inputs, _deeplift_covers, "deeplift", computed)
    reused(forward, uses, _deeplift_covers, method)
    found = described(calls, DEEPLIFT_FUNCTIONS)
    if found:
        modules = ", ".join(sorted({MODULE_OF[name] + "()" for name in DEEPLIFT_FUNCTIONS & set(calls)}))
        raise NotApplicable(
            f"method {method} applies its rules to nonlinearities that are modules (nn.ReLU, nn.Sigmoid, nn.GELU, "
            f"nn.MaxPool2d, ...), but this model's forward calls {found} as functions (F.relu, x.relu(), "
            "x.clamp(min=0), F.gelu, ...), where captum would use plain gradients; build them as modules "
            f"({modules}, one per use) to explain it with this method")
    unruled = described(calls, DEEPLIFT_UNRULED)
    if unruled:
        raise NotApplicable(
            f"method {method} has rules for elementwise nonlinearities, max-pooling and a softmax as the output, but "
            f"this model's forward computes {unruled} (nn.LayerNorm, GLU, attention; (x, y): a product of two tensors "
            "that both depend on the input), which no DeepLIFT rule crosses: captum would use their gradient there, "
            "so the map would be partly gradient x input, not DeepLIFT's, and would not sum to f(x) - f(baseline); "
            "integrated_gradients does, on any differentiable model")
    no_module: Counter[str] = Counter()
    for name in DEEPLIFT_NO_MODULE & set(computed):
        no_module[_NO_MODULE_NAMES.get(name, name)] += computed[name]
    if no_module:
        advised = [_NO_MODULE_ADVICE[name] for name in sorted(set(no_module) & _NO_MODULE_ADVICE.keys())]
        advice = f" (build {'; '.join(advised)})" if advised else ""
        raise NotApplicable(
            f"method {method} has rules for nonlinearity modules (nn.ReLU, nn.GELU, ...), but this model's forward "
            f"computes {described(no_module, no_module)} on activations as functions{advice}, where captum would use "
            "their gradient: the map would not sum to f(x) - f(baseline) (no torch module brings a rule for exp, "
            "log, sqrt, pow...; a softmax counts inside the network only); integrated_gradients does")
    if computed[NORMALISER_MODULES["softmax"]]:
        raise NotApplicable(
            f"method {method} has no rule that crosses a softmax inside the network: this model's forward applies "
            "nn.Softmax to activations before other layers, where captum's nn.Softmax rule (elementwise secants "
            "less their mean) does not sum to f(x) - f(baseline) (off by 0.6 where the change was 0.09 on Linear -> "
            "nn.Softmax -> Linear); integrated_gradients does. A softmax as the model's output is fine")
    normaliser = output_normaliser(computed)
    if normaliser == "softmax":
        raise NotApplicable(
            f"method {method} explains this model's outputs as logits, but its forward returns a softmax "
            "(probabilities), which captum would cross with its gradient: the map would not sum to the change of "
            "the explained output; declare the model's outputs as probabilities (model.outputs=probabilities, "
            "outputs='probabilities' in Python: explained through log p, exactly) or return the logits")
    return normaliser


def output_normaliser(computed: Counter[str]) -> str:
    """``"log_softmax"`` when the look found the model's output to be a log_softmax of input-dependent values (or a
    softmax whose log the suite takes: ``outputs=probabilities``), ``"softmax"`` for a softmax returned as it is
    (refused: its probabilities would be read as logits), else ``""`` (``computed``:
    ``module_calls.calls_outside``'s ``on_input``)."""
    found = [name for name in sorted(OUTPUT_NORMALISERS)
             if computed[AT_THE_OUTPUT.format(name)] or computed[AT_THE_OUTPUT.format(NORMALISER_MODULES[name])]]
    return found[0] if found else ""


def refuse_functional_relu(forward: nn.Module, inputs: torch.Tensor, method: str) -> None:
    """Raise ``NotApplicable`` when ``forward(inputs)`` calls ReLU as a function (``F.relu``, ``x.relu()``,
    ``torch.relu``, or spelt ``x.clamp(min=0)``, ``torch.maximum(x, zeros)``... : ``module_calls.relu_spelling``)
    outside an ``nn.ReLU`` module: guided backpropagation would leave its gradient unchanged."""
    calls, _ = remembered_look(forward, inputs, lambda m: isinstance(m, nn.ReLU), "guided_backprop")
    found = described(calls, _RELUS)
    if found:
        raise NotApplicable(
            f"method {method} changes the gradients of nn.ReLU modules, but this model's forward calls {found} as "
            "a function (F.relu, x.relu(), x.clamp(min=0), ...), whose gradient would pass unchanged (a plain "
            "gradient under this method's name); build it as a module (nn.ReLU()) to explain it with this method")
