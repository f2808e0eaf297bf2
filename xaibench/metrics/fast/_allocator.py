"""Keep glibc from handing the chunked forwards' memory back to the kernel after every forward.

A chunk of perturbed rows makes activations of a few MB (the cnn on digits: 4.4 MB for one 544-row convolution
output, ~9 MB alive at the peak). glibc's malloc serves blocks above ``M_MMAP_THRESHOLD`` with ``mmap`` and
returns free memory at the top of the heap once it exceeds ``M_TRIM_THRESHOLD``; both start low (128 KiB /
256 KiB) and rise only after a large block is freed. Until then every forward maps, faults in and unmaps its
activations again: measured 2,400 page faults and 9-10 ms per 544-row forward instead of 0 and 6 ms, and whether
it happens depended on what the process had done before (a cell that explained with integrated gradients had
freed large blocks, one with saliency had not).

:func:`keep_freed_memory` sets the two thresholds once per process to where glibc's own adjustment takes them
after freeing a block of its largest ``mmap`` threshold (32 MiB; trim at twice that), so timings no longer depend on
the process's history. The process may keep up to 64 MiB of freed memory; scores do not change. Only on glibc
(Linux); skipped when the user set ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_``, or
``XAIBENCH_MALLOC_TUNING=0``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # what glibc sets when it raises the mmap threshold

_done: list[bool] = []


def keep_freed_memory() -> bool:
    """Set glibc's mmap/trim thresholds once per process; True if they are set (now or before)."""
    if _done:
        return _done[0]
    _done.append(_apply())
    return _done[0]


def _apply() -> bool:
    if os.environ.get("XAIBENCH_MALLOC_TUNING", "1") == "0" or platform.system() != "Linux":
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False  # the user tuned malloc already
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return False
    except (ValueError, OSError, AttributeError):  # not a GNU libc
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                        TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False
