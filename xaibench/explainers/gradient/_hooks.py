"""Methods that change the backward pass of ``nn.ReLU`` layers through module hooks (DeepLIFT's Rescale rule,
Guided Backpropagation) cannot do so inside a TorchScript module: its layers are compiled code that runs no
Python hooks, so captum would silently return plain gradients under the method's name."""
from __future__ import annotations

import torch
from torch import nn

from xaibench.errors import NotApplicable


def refuse_scripted(model: nn.Module, method: str) -> None:
    """Raise ``NotApplicable`` when ``model`` holds a TorchScript module (``torch.jit.script``/``trace``, loaded
    with ``torch.jit.load``): ``method`` would not run its hooks there."""
    if any(isinstance(part, torch.jit.ScriptModule) for part in model.modules()):
        raise NotApplicable(f"method {method} changes the gradients of nn.ReLU layers with module hooks, which a "
                            "TorchScript model does not run (it would return plain gradients); give its class as "
                            "model.target (the archive's weights load into it) to explain it with this method")
