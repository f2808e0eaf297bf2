"""CUDA out-of-memory backoff: the error to catch, and what every chunked stage does before retrying smaller.

Every stage that batches rows halves its batch on CUDA out-of-memory and retries (the explanation stage's
batches, the fast metrics' forward chunks, the stability metrics' re-explanations); the smallest unit that still
does not fit raises (one sample; one input of one step; one whole step of a forward chunk): the cell or metric
becomes ``error`` rows. Results do not depend on the batch (explainers
draw per sample; ``chunk_size`` and ``batch_size`` are in no key), so only the count of halvings is recorded: the
rows' ``oom_backoffs`` column. The CPU raises no such error (an allocation failure there is a ``RuntimeError``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")

OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)  # older torch: only the cuda name


def release_cached_memory() -> None:
    """Give the CUDA caching allocator's free blocks back before a smaller retry (no-op without CUDA)."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def halving_batches(compute: Callable[[int, int], T], total: int, batch_size: int) -> tuple[list[T], int]:
    """``compute(start, stop)`` over ``range(total)`` in batches of ``batch_size``, in order. On CUDA out-of-memory
    the failed batch is halved and retried, and later batches keep the smaller size; a batch of one that does not
    fit raises. Returns the parts and the number of halvings."""
    parts: list[T] = []
    backoffs, start = 0, 0
    while start < total:
        stop = min(start + max(1, batch_size), total)
        try:
            parts.append(compute(start, stop))
            start = stop
            continue
        except OUT_OF_MEMORY:
            if stop - start == 1:
                raise
        release_cached_memory()  # after the except block: the error's frames (and their tensors) are gone
        batch_size, backoffs = (stop - start) // 2, backoffs + 1
    return parts, backoffs
