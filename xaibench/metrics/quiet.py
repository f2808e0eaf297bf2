"""Silence one thread's stdout and warnings around a Quantus call, leaving every other thread's alone.

Quantus prints and warns at each step of a metric; the statuses the adapter records carry what matters. The
adapter used ``contextlib.redirect_stdout`` and ``warnings.catch_warnings``, which replace process-wide state
(``sys.stdout``, ``warnings.filters``) and restore what they saw on entry. With two threads scoring at once
(joblib's threading backend, a caller's thread pool), blocks that end in another order than they began restored
each other's state: ``sys.stdout`` stayed a discarded buffer (every later ``print`` lost) and an ``ignore``-all
filter stayed installed (every later warning lost), while the other threads' output meanwhile went to that buffer.

``quiet()`` keeps the state per thread instead (a ``ContextVar``, which a new thread starts without):

- stdout: while any thread is inside a block, ``sys.stdout`` is a router that sends the writes of threads inside a
  block to their own buffer and everything else to the stream it replaced; the last block to end puts that stream
  back (unless someone replaced ``sys.stdout`` meanwhile).
- warnings: one filter, installed once and kept first in ``warnings.filters``, ignores every warning raised in a
  thread inside a block and matches nothing elsewhere (its category's ``issubclass`` asks the ``ContextVar``), so
  Python's and C extensions' warnings (numpy's ``divide by zero``) in other threads keep their filters.

``ignore_warnings(message, category)`` is the same filter for one kind of warning (the explainers' blocks around
captum's hook notices, LIME, SHAP, which used ``catch_warnings`` and had the same fault): the thread's rules are a
``ContextVar`` too, and the filter's message matcher and category check read them.

Python versions: the filter list changed is announced to ``warnings`` through CPython's private hook where one
exists (``_filters_mutated`` up to 3.13, ``_filters_mutated_lock_held`` under ``warnings._lock`` from 3.14, whose
later releases drop the first), and not at all where none does: the announcement only resets the registries of
warnings already shown, which moving the quiet filter (it matches nothing outside quiet threads) never needs. Where Python keeps
warning filters per context (3.14's ``sys.flags.context_aware_warnings``, the default of free-threaded builds),
``warnings.catch_warnings`` is already per thread and per task, and a block is exactly that: a global filter there
would be skipped by a thread inside someone's ``catch_warnings`` (pytest's, the caller's), whose list is a copy.

The cost is a lock taken twice per block: nothing next to a Quantus call.
"""
from __future__ import annotations

import io
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_buffer: ContextVar[io.StringIO | None] = ContextVar("xaibench_quiet_stdout", default=None)
# ``ignore_warnings`` rules of this thread: (message pattern or None, category), innermost last
_rules: ContextVar[tuple[tuple[re.Pattern | None, type[Warning]], ...]] = ContextVar("xaibench_quiet_rules",
                                                                                    default=())
_matched = threading.local()  # .categories: what the last message matched in this thread (see _ThreadRules)
_LOCK = threading.Lock()
_active = 0  # blocks open in all threads
_replaced = None  # the sys.stdout the router stands in for while blocks are open


class _Router:
    """``sys.stdout`` while a block is open: a quiet thread's writes go to its buffer, others' to ``target`` (none
    where ``sys.stdout`` was None, as ``print`` then writes nothing)."""

    def __init__(self, target) -> None:
        self.target = target

    def write(self, text: str) -> int:
        buffer = _buffer.get()
        stream = self.target if buffer is None else buffer
        return len(text) if stream is None else stream.write(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _buffer.get() is None and self.target is not None:
            self.target.flush()

    def __getattr__(self, name: str):  # encoding, fileno, isatty, buffer, ...: the replaced stream's
        return getattr(self.target, name)


class _ThreadRules:
    """The quiet filter's message matcher: true where this thread ignores some category of warning with this text
    (every category inside ``quiet()``; the rules of its ``ignore_warnings`` blocks), remembering which categories
    for the category check that ``warnings`` makes next (both implementations test the message first).

    ``pattern`` is what code that copies ``warnings.filters`` reads of a compiled regex (scikit-learn's
    ``Parallel`` re-creates each filter in its workers from ``message.pattern``): a regex that matches nothing, so
    a copy, which cannot see this thread's rules, ignores nothing."""

    pattern = "(?!)"

    def match(self, text: str) -> bool:
        categories = [category for pattern, category in _rules.get() if pattern is None or pattern.match(text)]
        _matched.categories = categories
        return bool(categories)


class _QuietMeta(type):
    def __subclasscheck__(cls, subclass: type) -> bool:
        return any(issubclass(subclass, category) for category in getattr(_matched, "categories", ()))


class _InQuietThread(Warning, metaclass=_QuietMeta):
    """The category of the quiet filter: the categories this thread ignores for the message just matched."""


_FILTER = ("ignore", _ThreadRules(), _InQuietThread, None, 0)


@contextmanager
def quiet() -> Iterator[io.StringIO]:
    """Within the block, this thread's stdout goes to the buffer yielded and its warnings are ignored; other
    threads print and warn as before. Re-entrant."""
    global _active, _replaced
    with _LOCK:
        if _active == 0:
            _replaced = sys.stdout
            sys.stdout = _Router(_replaced)
        _active += 1
    token = _buffer.set(io.StringIO())
    try:
        with ignore_warnings():
            yield _buffer.get()
    finally:
        _buffer.reset(token)
        with _LOCK:
            _active -= 1
            if _active == 0:
                if isinstance(sys.stdout, _Router):  # else replaced meanwhile (pytest's capture): theirs stays
                    sys.stdout = _replaced
                _replaced = None


@contextmanager
def ignore_warnings(message: str | None = None, category: type[Warning] = Warning) -> Iterator[None]:
    """Within the block, this thread ignores warnings of ``category`` whose text matches ``message`` (a regular
    expression matched at the start, case-insensitive, as ``warnings.filterwarnings``; None: any text); other
    threads warn as before. ``warnings.catch_warnings`` with a filter, per thread. Re-entrant."""
    if _context_aware_warnings():  # catch_warnings is this context's own: exactly the block's scope
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message or "", category)
            yield
        return
    with _LOCK:
        _filter_first()
    token = _rules.set((*_rules.get(), (None if message is None else re.compile(message, re.I), category)))
    try:
        yield
    finally:
        _rules.reset(token)


def _context_aware_warnings() -> bool:
    """Whether ``warnings`` keeps its filters per context (Python >= 3.14 with ``-X context_aware_warnings``, the
    default of free-threaded builds); False before 3.14, which has no such flag."""
    return bool(getattr(sys.flags, "context_aware_warnings", False))


def _filter_first() -> None:
    """Put the quiet filter first in ``warnings.filters`` (a filter added before it, e.g. ``-W error``, would
    otherwise apply to quiet threads first; ``catch_warnings`` may have restored a list without it)."""
    filters = warnings.filters
    if filters and filters[0] is _FILTER:
        return
    while _FILTER in filters:
        filters.remove(_FILTER)
    filters.insert(0, _FILTER)
    _announce_filters_changed()


def _announce_filters_changed() -> None:
    """Tell ``warnings`` its filter list changed, as ``filterwarnings`` does (the registries of warnings already
    shown are reset), through the private hook of this Python: ``_filters_mutated_lock_held`` with ``warnings._lock``
    held (3.14+), else ``_filters_mutated`` (3.11-3.13; 3.14 keeps it as a wrapper, later releases drop it). With
    neither (another Python), nothing: a registry only remembers warnings shown (to show them once), and moving the
    quiet filter first changes no outcome outside quiet threads (it matches nothing there) while inside them it
    ignores every warning anyway, so a registry kept from before hides nothing that a reset one would show."""
    lock_held, lock = getattr(warnings, "_filters_mutated_lock_held", None), getattr(warnings, "_lock", None)
    if callable(lock_held) and lock is not None:
        with lock:
            lock_held()
        return
    mutated = getattr(warnings, "_filters_mutated", None)
    if callable(mutated):
        mutated()
