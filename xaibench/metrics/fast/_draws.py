"""One global-RNG guard around all of a fast stability metric's re-explanations.

The metrics' ``explain_func`` (``quantus_adapter.make_explain_func``) restores the global numpy, ``random`` and
torch states after every call (:func:`xaibench.explainers.seeding.global_draws_kept`), so that what an explainer's
libraries draw never shifts Quantus' perturbation stream. Saving numpy's state costs about 60 us a call. The fast
engine has drawn every perturbation before it re-explains, so one guard around the whole pass gives the same
streams; the per-call guards inside it do nothing.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from xaibench.explainers.seeding import global_draws_kept


def keeping_global_draws(explain_all: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Decorate ``ChunkedStability._explain_all(self, model, steps, y_batch)``: run it in one guard."""

    @functools.wraps(explain_all)
    def wrapper(self: Any, model: Any, steps: np.ndarray, y_batch: np.ndarray) -> np.ndarray:
        network = model.get_model() if hasattr(model, "get_model") else model
        device = next((p.device for p in network.parameters()), "cpu") if hasattr(network, "parameters") else "cpu"
        with global_draws_kept(device):
            return explain_all(self, model, steps, y_batch)

    return wrapper
