"""Let a constant attribution map reach the metrics for which it is a legitimate input.

Quantus 0.6 rejects any batch of maps that holds a single value (``asserts.assert_attributions``: "all equal to
one", "uniformly distributed") because "many metrics rely on ordering". The suite decides that per metric instead:
metrics that rank features set constant maps aside themselves (``Screen.CONSTANT``: a NaN row with the reason),
while for the others a constant map has a well-defined score that a benchmark needs as a reference point: the
least sparse map (Gini index 0, Chalasani et al. 2020; entropy ``log d``, Bhatt et al. 2020; every feature above
``eps``, Nguyen & Martinez 2020), and a perfectly stable one (a sensitivity of 0: the trivial explanation every
robustness metric rewards, which is why robustness is read together with faithfulness and randomisation). With
Quantus' assertion the ``constant`` control got no number at all on any metric (every row NaN, "rejected by
Quantus"), whatever its value.

:func:`constant_maps_accepted` relaxes exactly those two checks for the duration of one metric call: the shape
checks, the all-zero check and the all-negative check still run as Quantus wrote them.

Thread safety: the relaxed check is installed in Quantus once (under a lock) and stays; whether it relaxes is a
``ContextVar`` set by :func:`constant_maps_accepted`, so it holds for the calling thread (or asyncio task) only.
Replacing the module attribute per call let a metric scored at the same time in another thread (joblib's
threading backend) run with the checks relaxed, or restored them under a call that needed them relaxed.
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
from quantus.helpers import asserts

_ACCEPTING = contextvars.ContextVar("xaibench_constant_maps_accepted", default=False)
_INSTALL = threading.Lock()


def _accepting(original: Any) -> Any:
    def assert_attributions(x_batch: np.ndarray, a_batch: np.ndarray) -> None:
        flat = np.asarray(a_batch).reshape(-1) if isinstance(a_batch, np.ndarray) else None
        if not _ACCEPTING.get() or flat is None or flat.size < 2 or flat[0] == 0 or not np.all(flat == flat[0]):
            return original(x_batch=x_batch, a_batch=a_batch)
        probe = np.array(a_batch, dtype=np.float64, copy=True)  # one value changed: the remaining checks run
        probe.reshape(-1)[0] = 2 * flat[0]  # same sign, so an all-negative batch is still refused
        return original(x_batch=x_batch, a_batch=probe)

    assert_attributions.relaxes = original  # type: ignore[attr-defined]
    return assert_attributions


def _install() -> None:
    """Put the switchable check into Quantus once; it calls Quantus' own check unless this context accepts."""
    with _INSTALL:
        if not hasattr(asserts.assert_attributions, "relaxes"):
            asserts.assert_attributions = _accepting(asserts.assert_attributions)


@contextlib.contextmanager
def constant_maps_accepted(accept: bool = True) -> Iterator[None]:
    """Within the block, Quantus accepts a batch of maps that all hold one non-zero value, in this thread (or
    asyncio task) only; other threads keep Quantus' checks unless they are in such a block themselves
    (``accept=False``: Quantus' checks, also inside an accepting block)."""
    _install()
    token = _ACCEPTING.set(accept)
    try:
        yield
    finally:
        _ACCEPTING.reset(token)
