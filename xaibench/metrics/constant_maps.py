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
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
from quantus.helpers import asserts


def _accepting(original: Any) -> Any:
    def assert_attributions(x_batch: np.ndarray, a_batch: np.ndarray) -> None:
        flat = np.asarray(a_batch).reshape(-1) if isinstance(a_batch, np.ndarray) else None
        if flat is None or flat.size < 2 or flat[0] == 0 or not np.all(flat == flat[0]):
            return original(x_batch=x_batch, a_batch=a_batch)
        probe = np.array(a_batch, dtype=np.float64, copy=True)  # one value changed: the remaining checks run
        probe.reshape(-1)[0] = 2 * flat[0]  # same sign, so an all-negative batch is still refused
        return original(x_batch=x_batch, a_batch=probe)

    assert_attributions.relaxes = original  # type: ignore[attr-defined]
    return assert_attributions


@contextlib.contextmanager
def constant_maps_accepted(accept: bool = True) -> Iterator[None]:
    """Within the block, Quantus accepts a batch of maps that all hold one non-zero value (``accept=False``: no
    change). Not thread-safe (it replaces a module attribute); the suite scores one metric at a time per process."""
    if not accept or hasattr(asserts.assert_attributions, "relaxes"):
        yield
        return
    original = asserts.assert_attributions
    asserts.assert_attributions = _accepting(original)
    try:
        yield
    finally:
        asserts.assert_attributions = original
