"""Where CAM methods read feature maps, and how a map over them goes back onto the input.

The CONV capability (``xaibench.types``) promises ``nn.Conv1d`` / ``nn.Conv2d`` layers whose outputs keep the
input's spatial layout (time steps / rows and columns, possibly downsampled). The default layer is the last conv
layer's *block output*: the conv, or the activation module right after it in the same ``nn.Sequential`` (Grad-CAM
reads rectified feature maps, as in the paper's VGG ``conv5_3``-after-ReLU).
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from captum.attr import LayerAttribution
from torch import nn

from xaibench.errors import NotApplicable

_CONVS = (nn.Conv1d, nn.Conv2d)
_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid)


def feature_layer(model: nn.Module, name: str | None = None) -> nn.Module:
    """The module whose output the CAM weights: ``name`` (a ``named_modules`` path, wrappers' prefixes allowed) or
    the last conv block's output."""
    if name is not None:
        for path, module in model.named_modules():
            if path == name or path.endswith("." + name):
                return module
        raise ValueError(f"no layer named {name!r} in {type(model).__name__}")
    last = None
    for last in conv_blocks(model):
        pass
    if last is None:
        raise NotApplicable("CAM methods need a model with nn.Conv1d / nn.Conv2d layers (CONV capability); this one "
                            "has none (a TorchScript model's layers are compiled: give its class as model.target)")
    return last


def conv_blocks(module: nn.Module) -> Iterator[nn.Module]:
    """Each conv layer's block output (the conv, or the activation module right after it), in registration
    (depth-first) order, which is forward order for sequential models."""
    children = list(module.children())
    for i, child in enumerate(children):
        if isinstance(child, _CONVS):
            following = children[i + 1] if i + 1 < len(children) else None
            yield following if isinstance(following, _ACTIVATIONS) else child
        else:
            yield from conv_blocks(child)


def to_input(cam: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Feature-map relevance ``(N, 1, *S)`` -> ``x``'s layout ``(N, C, *S_x)``: (bi)linear upsampling, channels
    sharing one value."""
    if cam.dim() != x.dim():
        raise ValueError(f"feature maps {tuple(cam.shape)} do not match inputs {tuple(x.shape)}: not a conv layout")
    return upsample(cam, tuple(x.shape[2:])).expand_as(x).detach().contiguous()


def upsample(maps: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """``(B, K, *S) -> (B, K, *size)``: linear (series) or bilinear (images) interpolation, captum's helper."""
    mode = "linear" if maps.dim() == 3 else "bilinear"
    return LayerAttribution.interpolate(maps, size, interpolate_mode=mode)


def activations_and_gradients(model: nn.Module, layer: nn.Module, x: torch.Tensor, target: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's output ``A (N, K, *S)`` and ``d logit_target / d A`` (same shape), from one forward/backward."""
    store: dict[str, torch.Tensor] = {}

    def keep(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        store["a"] = output

    handle = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model(x.detach())
            if "a" not in store:
                raise ValueError("the CAM layer was not used by the forward")
            selected = logits.gather(1, target.reshape(-1, 1).to(logits.device)).sum()
            gradients = torch.autograd.grad(selected, store["a"])[0]
    finally:
        handle.remove()
    return store["a"].detach(), gradients.detach()


def spatial_dims(a: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(2, a.dim()))


def relu_weighted_sum(weights: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``ReLU(sum_k w_k A^k)``: weights ``(N, K)``, maps ``(N, K, *S)`` -> ``(N, 1, *S)``."""
    shaped = weights.reshape(*weights.shape, *([1] * (a.dim() - 2)))
    return F.relu((shaped * a).sum(dim=1, keepdim=True))
