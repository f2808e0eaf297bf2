"""Hand freed memory back to the system between the phases of a long collect or summary.

A streamed collect combines, converts and writes a few hundred chunks of ~20,000 rows; each chunk's Arrow
buffers (pyarrow's mimalloc pool) and numpy/pandas arrays (glibc's malloc) are freed when the next one starts,
but both allocators keep much of the freed memory mapped for reuse, and the pages they keep grow with the
number of chunks seen (fragmentation): the resident memory between chunks drifted from ~300 to ~400 MB over a
10,000-cell collect. :func:`release_memory` asks both to return what is free (mimalloc's ``release_unused``,
glibc's ``malloc_trim``); it changes no value, and costs a page fault per page the next chunk touches again
(``benchmarks/bench_collect.py`` measures it). As a process, ``xaibench`` also puts all of Arrow on jemalloc with
no decay before pyarrow loads (:func:`configure_arrow_allocator`), so that what Arrow frees between two releases
goes back at once too.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

# How often a stream releases (each release costs the page faults of the memory the next chunk touches again):
EVERY_CHUNKS = 4  # write_collected: every 4 chunks (every chunk: ~25 MB lower peaks but +9-13% CPU at 10k cells)
EVERY_BATCHES = 1  # summarize_file: every chunk it summarises (25 MB lower at 10,000 cells for +2% CPU)
# What the command line sets before pyarrow loads (configure_arrow_allocator; a value already set is kept): all of
# Arrow on jemalloc, whose release_unused purges everything, and how soon its freed pages go back (ms; per verb):
ARROW_POOL = "jemalloc"
DECAY_MS = {"summary": 0}  # the summary's 10k level stays flat only with 0 (100 ms: 208 MB at 10k, 0: 196)
DEFAULT_DECAY_MS = 100  # collect -o and the rest: 0 cost +8-16% CPU on collect -o, 100 ms +1-3% at the same peak


def configure_arrow_allocator(verb: str | None = None) -> None:
    """Arrow's default pool is jemalloc, returning freed pages at once (``verb`` "summary") or after 100 ms; called
    by the command line before pyarrow loads (Linux only; a value already in the environment is kept; nothing once
    pyarrow is imported).

    Both settings are read once, when pyarrow loads (jemalloc reads ``JE_ARROW_MALLOC_CONF`` when it starts, at
    pyarrow's import; ``pa.jemalloc_set_decay_ms`` changes only arenas made later, not the one the main thread
    uses). With pyarrow's defaults (mimalloc, jemalloc for the streams, pages freed after a 1 s decay) a
    ``xaibench summary`` of 10,000 cells crept from 194 to 216 MB between chunks while Arrow's live bytes stayed
    flat: jemalloc's pages not yet decayed and mimalloc's (which the parts of Arrow that allocate from the process
    default used, ~15 MB resident for 0.7 MB live) (mem19, mem21). With both settings that level stays flat
    (162-167 MB) and the summary's peaks are 24-47 MB lower, ``collect -o``'s ~30 MB (docs/speed.md, mem21).
    Children (Hydra's joblib workers) inherit them. Nothing is set for a pyarrow built without jemalloc (its
    ``arrow/util/config.h``): Arrow would print a warning at each start and fall back to mimalloc, and the streams
    would no longer switch to the system pool (:func:`streaming_arrow_memory` keeps a chosen pool).
    """
    if sys.platform != "linux" or "pyarrow" in sys.modules:  # measured on Linux; too late once Arrow is loaded
        return
    if not _pyarrow_has_jemalloc():  # Arrow would warn on stderr at each start and fall back to mimalloc
        return
    decay = DECAY_MS.get(verb or "", DEFAULT_DECAY_MS)
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", ARROW_POOL)
    os.environ.setdefault("JE_ARROW_MALLOC_CONF", f"dirty_decay_ms:{decay},muzzy_decay_ms:0")


def _pyarrow_has_jemalloc() -> bool:
    """Whether the installed pyarrow was built with jemalloc, read from its ``arrow/util/config.h`` without importing
    it (importing would read the settings); False when that header is not found (nothing is then set)."""
    import importlib.util
    import re
    from pathlib import Path

    try:
        spec = importlib.util.find_spec("pyarrow")
    except (ImportError, ValueError):
        return False
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        header = Path(folder) / "include" / "arrow" / "util" / "config.h"
        try:
            text = header.read_text(errors="replace")
        except OSError:
            continue
        return re.search(r"^#define ARROW_JEMALLOC\b", text, re.MULTILINE) is not None
    return False


def release_memory() -> None:
    """Return freed memory of pyarrow's default pool and of glibc's heap to the system (no-op elsewhere)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@lru_cache(maxsize=1)
def _malloc_trim():  # -> ctypes function | None
    """glibc's ``malloc_trim`` (None on another C library or system)."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return None
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (ValueError, OSError, AttributeError):
        return None


@contextmanager
def streaming_arrow_memory() -> Iterator[None]:
    """Arrow allocates from pyarrow's jemalloc pool inside (the system pool where pyarrow was built without
    jemalloc), so that a stream's freed chunks go back to the system; the previous default pool is restored on exit.

    Used around the streamed collect, ``xaibench summary`` of a table file and the end of a sweep. pyarrow's
    default mimalloc pool kept pages of the freed chunks that later chunks did not reuse, and how much it kept
    depended on the chunks seen: ``xaibench summary`` of the first 1,000 cells of the 10,000-cell benchmark grid
    peaked at 261-269 MB with mimalloc and 232-237 with jemalloc, at 10,000 cells 296 and 271-277
    (``benchmarks/bench_collect.py``, docs/speed.md). Values and bytes do not change; buffers remember the pool
    that made them. A pool chosen with ``ARROW_DEFAULT_MEMORY_POOL`` is left as it is: the ``xaibench`` command
    sets jemalloc for the whole process (:func:`configure_arrow_allocator`), so there this switches nothing.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        yield
        return
    with _arrow_pool(_streaming_pool()):
        yield


def _streaming_pool():  # -> pa.MemoryPool
    import pyarrow as pa

    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc
        return pa.system_memory_pool()


@contextmanager
def _arrow_pool(pool) -> Iterator[None]:
    """``pool`` as Arrow's default pool inside; the previous one restored on exit."""
    import pyarrow as pa

    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


@contextmanager
def releasable_arrow_memory() -> Iterator[None]:
    """Arrow allocates from glibc's malloc (``pa.system_memory_pool()``) inside, so that :func:`release_memory`
    hands back what a phase freed; the previous default pool is restored on exit.

    pyarrow's default mimalloc pool keeps segments that a few live buffers pin: after the W&B sweep run's passes
    over the ranges of a 10,000-cell table (run alone, ``release_unused`` after each range) the process held 251 MB
    with mimalloc and 189 MB with the system pool. Buffers remember the pool that made them, so memory allocated
    before or after is freed where it came from; values do not change.
    """
    import pyarrow as pa

    with _arrow_pool(pa.system_memory_pool()):
        yield
