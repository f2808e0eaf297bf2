"""Shared checks for the batched perturbation methods."""
from __future__ import annotations

from xaibench.errors import UserError


def check_perturbations_per_eval(method: str, value: int) -> None:
    """captum's default (one forward per perturbation, pitfalls.md) is never allowed: require at least 2."""
    if value < 2:
        raise UserError(
            f"method {method!r}: perturbations_per_eval must be >= 2 (1 runs one model forward per perturbation); "
            f"got {value}"
        )
