"""The caller's model left as it was: ``xaibench.explain``/``evaluate`` move it to a device, switch it to eval mode
and explainers may toggle which parameters need gradients; :func:`left_as_it_was` undoes all of it afterwards.

Restoring is cheaper than copying (a copy doubles a large model's memory for the whole call) and keeps the
caller's parameter objects, so an optimiser holding them is unaffected. Each parameter gets back its original
tensor (the very storage, on its original device: a move to another device made a new tensor and left the original
one in place), its ``requires_grad`` and its ``.grad``, and its place in its module (``Module.to`` replaces the
parameter object on a move between incompatible tensor kinds, e.g. to ``meta``); each buffer gets back its original
tensor, each submodule its ``training`` flag. Values the block changed in place on the original storage are not
undone (nothing in the suite writes into weights; Quantus' randomisation metrics perturb deep copies).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn


@contextmanager
def left_as_it_was(model: Any) -> Iterator[None]:
    """Restore ``model``'s devices, training flags, ``requires_grad`` and gradients when the block ends (also on
    error); anything that is not an ``nn.Module`` (a scikit-learn model) passes through untouched."""
    if not isinstance(model, nn.Module):
        yield
        return
    modes = [(module, module.training) for module in model.modules()]
    parameters = [(owner, name, p, p.data, p.requires_grad, p.grad) for owner in model.modules()
                  for name, p in owner._parameters.items() if p is not None]
    buffers = [(owner, name, tensor) for owner in model.modules() for name, tensor in owner._buffers.items()
               if tensor is not None]
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
        for owner, name, parameter, data, requires_grad, grad in parameters:
            owner._parameters[name] = parameter  # a move between incompatible kinds (meta) replaced the object
            parameter.data = data
            parameter.requires_grad_(requires_grad)
            parameter.grad = grad
        for owner, name, tensor in buffers:
            owner._buffers[name] = tensor
