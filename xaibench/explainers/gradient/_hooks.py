"""Methods that change the backward pass of nonlinearities through module hooks (DeepLIFT's Rescale rule, Guided
Backpropagation) see only nonlinearities that are modules, run in Python:

- inside a TorchScript module no Python hook runs (its layers are compiled code);
- a nonlinearity called as a function (``F.relu(x)``, ``x.relu()``, ``torch.sigmoid(x)``, ``F.max_pool2d``) has no
  module to hook.

Either way captum silently returns plain gradients there under the method's name, so such a model is refused with
``NotApplicable`` (the row says why and what to change).
"""
from __future__ import annotations

import torch
from captum.attr._core.deep_lift import SUPPORTED_NON_LINEAR
from torch import nn

from xaibench.errors import NotApplicable
from xaibench.explainers.module_calls import described, remembered_look, reused

# The functions whose module captum's DeepLIFT has a Rescale (or max-pool) rule for (``SUPPORTED_NON_LINEAR``, looked
# up by exact type). Softmax is left out: captum's rule for ``nn.Softmax`` centres the multipliers over the whole
# tensor, batch included (a sample's map depends on the others), so a module is no better advice than the gradient.
DEEPLIFT_FUNCTIONS = frozenset({"relu", "elu", "leaky_relu", "sigmoid", "tanh", "softplus", "max_pool1d", "max_pool2d",
                                "max_pool3d"})


def refuse_scripted(model: nn.Module, method: str) -> None:
    """Raise ``NotApplicable`` when ``model`` holds a TorchScript module (``torch.jit.script``/``trace``, loaded
    with ``torch.jit.load``): ``method`` would not run its hooks there."""
    if any(isinstance(part, torch.jit.ScriptModule) for part in model.modules()):
        raise NotApplicable(f"method {method} changes the gradients of nn.ReLU layers with module hooks, which a "
                            "TorchScript model does not run (it would return plain gradients); give its class as "
                            "model.target (the archive's weights load into it) to explain it with this method")


def _deeplift_covers(module: nn.Module) -> bool:
    """Whether captum's DeepLIFT has a rule for ``module`` (looked up by exact type, as captum does)."""
    return type(module) in SUPPORTED_NON_LINEAR


def refuse_functional_deeplift(forward: nn.Module, inputs: torch.Tensor, method: str) -> None:
    """Raise ``NotApplicable`` when ``forward(inputs)`` calls a nonlinearity DeepLIFT has a rule for (ReLU, ELU,
    LeakyReLU, Sigmoid, Tanh, Softplus, MaxPool1-3d) as a function rather than through its module, or calls one
    such module twice (captum would raise mid-call: ``module_calls.reused``)."""
    calls, uses = remembered_look(forward, inputs, _deeplift_covers, "deeplift")
    reused(forward, uses, _deeplift_covers, method)
    found = described(calls, DEEPLIFT_FUNCTIONS)
    if found:
        raise NotApplicable(
            f"method {method} applies its rules to nonlinearities that are modules (nn.ReLU, nn.Sigmoid, "
            f"nn.MaxPool2d, ...), but this model's forward calls {found} as functions (F.relu, x.relu(), ...), where "
            "captum would use plain gradients; build them as modules (e.g. self.relu1 = nn.ReLU(), one per use) to "
            "explain it with this method")


def refuse_functional_relu(forward: nn.Module, inputs: torch.Tensor, method: str) -> None:
    """Raise ``NotApplicable`` when ``forward(inputs)`` calls ReLU as a function (``F.relu``, ``x.relu()``,
    ``torch.relu``) outside an ``nn.ReLU`` module: guided backpropagation would leave its gradient unchanged."""
    calls, _ = remembered_look(forward, inputs, lambda m: isinstance(m, nn.ReLU), "guided_backprop")
    if calls["relu"]:
        times = f" ({calls['relu']}x)" if calls["relu"] > 1 else ""
        raise NotApplicable(
            f"method {method} changes the gradients of nn.ReLU modules, but this model's forward calls relu{times} as "
            "a function (F.relu, x.relu(), ...), whose gradient would pass unchanged (a plain gradient under this "
            "method's name); build it as a module (nn.ReLU()) to explain it with this method")
