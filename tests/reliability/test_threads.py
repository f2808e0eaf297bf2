"""Scoring from several threads of one process (joblib's threading backend, a caller's thread pool)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from quantus.helpers import asserts

from xaibench.metrics.constant_maps import constant_maps_accepted

X = np.zeros((2, 1, 4, 4))
CONSTANT = np.full(X.shape, 0.5)  # one non-zero value: Quantus refuses it ("uniformly distributed")


def _check() -> str:
    try:
        asserts.assert_attributions(x_batch=X, a_batch=CONSTANT)
    except AssertionError:
        return "refused"
    return "accepted"


def _interleaved(first, second) -> list[str]:
    """Run ``first(step)`` and ``second(step)`` in two threads; ``step(n)`` waits until both reached step ``n``,
    so the two threads' steps interleave in a fixed order. Returns what each recorded."""
    barrier, seen, errors = threading.Barrier(2, timeout=20), [], []

    def body(function) -> None:
        try:
            function(lambda: barrier.wait(), seen)
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=body, args=(f,)) for f in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    if errors:
        raise errors[0]
    return seen


def test_constant_maps_accepted_relaxes_quantus_in_its_own_thread_only():
    """reliab11: ``constant_maps_accepted`` replaced Quantus' module attribute for the block, so (1) a metric scored
    meanwhile in another thread without the relaxation (an ordering metric, which must refuse a constant map)
    accepted it, and (2) a thread whose block started while another's was open kept nothing of its own: the other
    block's end restored Quantus' check under it, and its constant control was refused."""
    def relaxed_meanwhile(step, seen):
        with constant_maps_accepted():
            step()  # 1: the other thread checks while this block is open
            step()  # 2
            seen.append(("relaxed thread", _check()))

    def plain(step, seen):
        step()
        seen.append(("plain thread", _check()))
        step()

    assert sorted(_interleaved(relaxed_meanwhile, plain)) == [("plain thread", "refused"),
                                                             ("relaxed thread", "accepted")]

    def ends_first(step, seen):
        with constant_maps_accepted():
            step()  # 1: only this block is open
            step()  # 2: both blocks are open
        step()  # 3: this block has ended

    def ends_last(step, seen):
        step()
        with constant_maps_accepted():
            step()
            step()
            seen.append(("still relaxed", _check()))
        seen.append(("after", _check()))

    assert _interleaved(ends_first, ends_last) == [("still relaxed", "accepted"), ("after", "refused")]
    with pytest.raises(AssertionError, match="uniformly distributed"):  # outside any block: Quantus as it was
        asserts.assert_attributions(x_batch=X, a_batch=CONSTANT)
