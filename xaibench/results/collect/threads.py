"""Reading many files on a few threads, the results in order: file reads, the store's SHA-256 check and Parquet
decoding release the GIL, so cells are read, verified and decoded a few at a time."""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

READ_THREADS = min(4, os.cpu_count() or 1)  # cells read, verified and decoded at once
READ_AHEAD = 16  # cells read ahead of the one being combined (bounds the memory of reading)


def ordered_map(function: Callable, items: Iterable, threads: int = READ_THREADS) -> Iterator:
    """``map(function, items)`` on a thread pool, in order, at most READ_AHEAD results ahead of the consumer."""
    items = iter(items)
    if threads <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending = deque(pool.submit(function, item) for item in islice(items, READ_AHEAD))
        while pending:
            result = pending.popleft().result()
            pending.extend(pool.submit(function, item) for item in islice(items, 1))
            yield result
