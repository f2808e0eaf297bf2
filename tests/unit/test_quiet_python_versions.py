"""The per-thread quiet filter (``xaibench/metrics/quiet.py``) on the ``warnings`` module of each Python it may meet.

It announced every change of the filter list with CPython's private ``warnings._filters_mutated()``, which later
CPython releases drop (3.14 moved the work to ``_filters_mutated_lock_held()`` under ``warnings._lock``, keeping the
old name as a wrapper that later goes): where it is missing the first quiet block raised AttributeError, failing
every cell's scoring. Each layout is simulated on the running Python's own ``warnings`` module, with real threads.
"""
from __future__ import annotations

import threading
import types
import warnings

import pytest

from xaibench.metrics import quiet


def _warn_in_quiet_block_and_in_another_thread() -> None:
    """Warn inside a quiet block while another thread warns outside one, then after the block."""
    with quiet.quiet():
        warnings.warn("scoring thread")  # silenced
        other = threading.Thread(target=warnings.warn, args=("other thread",))  # shown: not in a block
        other.start()
        other.join()
    warnings.warn("scoring thread after")  # shown: the block ended


class _Lock:
    """``warnings._lock`` of 3.14+ (a re-entrant lock): says whether it is held."""

    depth = 0

    def __enter__(self) -> None:
        self.depth += 1

    def __exit__(self, *exc_info) -> None:
        self.depth -= 1


def _without_quiet_filter() -> None:
    """Take the quiet filter out of the (copied) filter list, so the next block installs it again."""
    while quiet._FILTER in warnings.filters:
        warnings.filters.remove(quiet._FILTER)


@pytest.mark.parametrize("layout", ["neither hook", "3.14+: lock-held hook"])
def test_quiet_blocks_silence_their_thread_only_without_filters_mutated(layout):
    """Without ``warnings._filters_mutated`` the filter is installed, the scoring thread's warning is ignored and
    the other thread's and the one after the block are shown; the 3.14+ hook is called with ``warnings._lock``
    held, once (the filter moved first once)."""
    calls, held = [], _Lock()

    def lock_held() -> None:
        calls.append(held.depth > 0)

    with warnings.catch_warnings(record=True) as seen:  # entered and left with the real hook in place
        warnings.simplefilter("always")
        _without_quiet_filter()
        with pytest.MonkeyPatch.context() as patch:
            patch.delattr(warnings, "_filters_mutated")
            patch.delattr(warnings, "_filters_mutated_lock_held", raising=False)
            if layout != "neither hook":
                patch.setattr(warnings, "_filters_mutated_lock_held", lock_held, raising=False)
                patch.setattr(warnings, "_lock", held, raising=False)
            _warn_in_quiet_block_and_in_another_thread()
            first = warnings.filters[0]
    assert [str(w.message) for w in seen] == ["other thread", "scoring thread after"]
    assert first is quiet._FILTER
    assert calls == ([] if layout == "neither hook" else [True])


def test_with_context_aware_warnings_a_block_is_its_own_catch_warnings(monkeypatch):
    """Python 3.14's ``-X context_aware_warnings`` (free-threaded builds' default) keeps filters per context: a
    thread inside a ``catch_warnings`` reads its own copy of the list, where a filter put in ``warnings.filters``
    is not. There a block uses ``catch_warnings`` itself (per context in that mode): the process-wide list is
    left as it was and the block's warnings are ignored, the ones after it shown. (The per-thread separation of
    ``catch_warnings`` is Python's in that mode; this Python's is process-wide, so one thread is checked here.)"""
    flags = types.SimpleNamespace(**{name: getattr(warnings.sys.flags, name) for name in dir(warnings.sys.flags)
                                     if not name.startswith("_") and name not in ("count", "index")},
                                  context_aware_warnings=1)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _without_quiet_filter()
        before = list(warnings.filters)
        monkeypatch.setattr(warnings.sys, "flags", flags)
        with quiet.quiet():
            inside = list(warnings.filters)
            warnings.warn("in the block")
        with quiet.ignore_warnings("only this", UserWarning):
            warnings.warn("only this one")
            warnings.warn("this one shows")
        monkeypatch.undo()
        warnings.warn("after the blocks")
        after = list(warnings.filters)
    assert quiet._FILTER not in inside and inside[0][:3] == ("ignore", None, Warning)
    assert after == before
    assert [str(w.message) for w in seen] == ["this one shows", "after the blocks"]
