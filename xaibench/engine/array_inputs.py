"""Checks of the arrays a caller passes to ``xaibench.explain`` / ``xaibench.evaluate``: each problem the caller
can fix (strings where numbers belong, NaNs, labels that are not class indices of the model, masks or a training
split of another shape) is a one-line ``UserError`` naming the argument, never a traceback from deep inside."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from xaibench.data.classes import class_indices
from xaibench.data.user._common import check_binary_masks
from xaibench.errors import UserError
from xaibench.types import Modality


def as_tensor(values: Any, what: str, dtype: torch.dtype | None = None, *, hint: str = "") -> torch.Tensor:
    """``values`` (tensor, array or nested lists of numbers) as a CPU tensor; anything else is a ``UserError``."""
    if isinstance(values, torch.Tensor):
        tensor = values.detach().cpu()
    else:
        array = np.asarray(values)
        if array.dtype.kind not in "biuf":
            raise UserError(f"{what} must hold numbers, got dtype {array.dtype}{hint}")
        array = np.ascontiguousarray(array)  # a view such as x[:, ::-1] has negative strides
        # pandas (copy-on-write) hands out read-only arrays, which torch warns about: copy those
        tensor = torch.as_tensor(array if array.flags.writeable else array.copy())
    if tensor.is_complex():
        raise UserError(f"{what} must hold real numbers, got {tensor.dtype}")
    return tensor if dtype is None else tensor.to(dtype)


LAYOUTS = {Modality.TABULAR: "(N, F)", Modality.TIME_SERIES: "(N, C, T)", Modality.IMAGE: "(N, C, H, W)",
           Modality.TEXT: "(N, L)"}  # x's layout per modality


def modality_of(name: Any) -> Modality:
    """``modality=`` as a ``Modality``; an unknown name is a ``UserError`` listing the valid ones."""
    try:
        return Modality(name)
    except ValueError:
        raise UserError(f"modality must be one of {', '.join(m.value for m in LAYOUTS)}, got {name!r}") from None


def checked_x(x: torch.Tensor, modality: Modality) -> torch.Tensor:
    """Inputs in the modality's layout (:data:`LAYOUTS`): token ids for text, finite floats otherwise."""
    if len(x) == 0 or x.dim() != LAYOUTS[modality].count(",") + 1:
        raise UserError(f"x for modality {modality.value} must be {LAYOUTS[modality]} with at least one sample, "
                        f"got shape {tuple(x.shape)}")
    if modality is Modality.TEXT:
        if x.is_floating_point() and not bool((x == x.round()).all()) or bool((x < 0).any()):
            raise UserError("x for text must hold non-negative integer token ids")
        return x.long()
    if not bool(torch.isfinite(x).all()):
        raise UserError("x has NaN or infinite values")
    return x.float()


def checked_classes(values: Any, what: str, n: int, n_classes: int, names: Sequence[str] = ()) -> torch.Tensor:
    """Class indices ``(n,)`` in ``0..n_classes-1`` (labels, targets): integer-like, one per sample.

    ``names``: a model's class names when its classes are not indices (a scikit-learn model fitted on string
    labels): ``values`` then hold those classes (as in ``classes_``) and map to their positions; numbers are read
    as those positions (indices in ``classes_`` order) when no class is a number.
    """
    if names and not (_numeric(values) and not any(_is_number(name) for name in names)):
        return _named_classes(values, what, n, names)
    tensor = as_tensor(values, what, hint="; encode class names as 0..K-1")
    if tensor.dim() > 1 and tensor.shape[1:].numel() > 1:
        raise UserError(f"{what} must be class indices (N,), got shape {tuple(tensor.shape)} (one-hot? use argmax)")
    tensor = tensor.reshape(-1)
    if len(tensor) != n:
        raise UserError(f"{what} has {len(tensor)} values for {n} samples")
    if tensor.is_floating_point() and not bool((tensor == tensor.round()).all()):
        raise UserError(f"{what} must be integer class indices 0..{n_classes - 1}, got non-integer values")
    tensor = tensor.long()
    if len(tensor) and (int(tensor.min()) < 0 or int(tensor.max()) >= n_classes):
        raise UserError(f"{what} holds class {int(tensor.max()) if int(tensor.min()) >= 0 else int(tensor.min())}, "
                        f"but the model returns {n_classes} class scores (classes 0..{n_classes - 1})")
    return tensor


def _numeric(values: Any) -> bool:
    return isinstance(values, torch.Tensor) or np.asarray(values).dtype.kind in "biuf"


def _is_number(name: str) -> bool:
    try:
        float(name)
    except ValueError:
        return False
    return True


def _named_classes(values: Any, what: str, n: int, names: Sequence[str]) -> torch.Tensor:
    array = np.asarray(values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values, dtype=object)
    if array.ndim > 1 and math.prod(array.shape[1:]) > 1:
        raise UserError(f"{what} must be one class per sample (N,), got shape {array.shape}")
    array = array.reshape(-1)
    if len(array) != n:
        raise UserError(f"{what} has {len(array)} values for {n} samples")
    return torch.as_tensor(class_indices(array, names, what))


def checked_masks(masks: Any, x: torch.Tensor, modality: Modality) -> torch.Tensor:
    """Ground-truth masks shaped like the attributions: like ``x`` (text: ``(N, L)``); images and series may omit
    the channel axis, as in ``npz_arrays``."""
    tensor = as_tensor(masks, "masks", torch.float32)
    expected = tuple(x.shape)
    if modality in (Modality.IMAGE, Modality.TIME_SERIES) and tensor.dim() == x.dim() - 1:
        tensor = tensor.unsqueeze(1).expand(-1, x.shape[1], *tensor.shape[1:])
    if tuple(tensor.shape) != expected:
        raise UserError(f"masks have shape {tuple(as_tensor(masks, 'masks').shape)}, expected {expected} "
                        "(shaped like x)")
    check_binary_masks(tensor.numpy(), "masks")
    return tensor


def checked_train(train: Any, x: torch.Tensor, modality: Modality, n_classes: int, names: Sequence[str] = ()
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``train = (x_train, y_train)``: samples shaped like ``x``'s, one class index per sample."""
    if not (isinstance(train, (tuple, list)) and len(train) == 2):
        raise UserError("train must be a pair (x_train, y_train)")
    tx = checked_x(as_tensor(train[0], "train x"), modality)
    if tuple(tx.shape[1:]) != tuple(x.shape[1:]):
        raise UserError(f"train x has samples of shape {tuple(tx.shape[1:])}, x has {tuple(x.shape[1:])}")
    return tx, checked_classes(train[1], "train y", len(tx), n_classes, names)
