"""Class values as names, and names back to class indices: one spelling shared by datasets and model adapters.

A user's labels may be strings (``benign``), integers or integral floats (``1.0`` read from a CSV with gaps); a
fitted scikit-learn model's ``classes_`` may hold any of them. Both sides are compared through :func:`class_name`,
so a model fitted on ``[1, 2]`` matches a table whose target reads ``1.0, 2.0``, and string classes match by text.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xaibench.errors import UserError


def class_name(value: Any) -> str:
    """The display name of a class value: integral numbers without a fraction (``1.0`` -> ``1``), text as it is."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def class_indices(values: Sequence[Any], names: Sequence[str], what: str) -> np.ndarray:
    """Class values ``(N,)`` -> their indices in ``names`` ``(N,)`` int64; a value that is no class is a ``UserError``.

    Args:
        values: class values (strings or numbers), compared through :func:`class_name`.
        names: the class names in index order (e.g. a model's ``classes_`` as names).
        what: the argument's name for the message (``y``, ``targets``).
    """
    position = {name: i for i, name in enumerate(names)}
    spelled = [class_name(v) for v in np.asarray(values, dtype=object).reshape(-1)]
    unknown = sorted({s for s in spelled if s not in position})
    if unknown:
        raise UserError(f"{what} holds {', '.join(map(repr, unknown[:3]))}, not a class of the model (classes: "
                        f"{', '.join(names[:10])}{', ...' if len(names) > 10 else ''})")
    return np.array([position[s] for s in spelled], dtype=np.int64)
