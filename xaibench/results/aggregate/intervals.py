"""The summary's bootstrap confidence intervals (``Intervals``): the values wait to the end (beyond
``SPILL_BYTES`` in a temporary file), then each shape's groups are bootstrapped in blocks of ``BLOCK`` groups."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np

from xaibench.results import bootstrap as boot
from xaibench.results.bootstrap import chunk_bounds, interval_draws
from xaibench.results.memory import release_memory
from xaibench.results.row_columns import RowColumns

BLOCK = 4096  # groups bootstrapped in one array operation
SPILL_BYTES = 2 * 2**20  # values waiting for their bootstrap block kept in memory; more go to a temporary file


class Intervals:
    """Bootstrap CIs, one array operation per BLOCK groups of one shape, in group order.

    Groups arrive chunk by chunk and wait to the end; then each shape's groups are bootstrapped BLOCK at a time
    in group order, so the blocks are the same whether the table came whole or in chunks (each block draws from
    its own ``default_rng(seed)``: the order of the blocks does not matter). The waiting values grow with the
    table: beyond ``SPILL_BYTES`` they wait in an anonymous temporary file (``_Spilled``) and are read back piece
    by piece for their block (the same float64 values). Waiting to the end keeps a block's bootstrap (~50 MB for
    4,096 groups) from running on top of a chunk being read and written, where a large table's first full blocks
    used to fall (memory then grew with the cells).
    """

    def __init__(self, *, n_boot: int, level: float, seed: int) -> None:
        self.n_boot, self.level, self.seed = n_boot, level, seed
        self.waiting: dict[tuple, list] = {}  # shape -> [(group ids, values) or _Spilled]
        self.columns: RowColumns | None = None  # where the bounds go (``result``)
        self.held = 0  # bytes of waiting group ids and values in memory
        self.spill = None  # the temporary file, opened on first use

    def add(self, offset: int, shapes: list[tuple[tuple, np.ndarray, np.ndarray]]) -> None:
        for shape, groups, block in shapes:
            self.waiting.setdefault(shape, []).append(self._keep(groups + offset, block))

    def result(self, columns: RowColumns) -> None:
        """Bootstrap every waiting group; its bounds go to ``columns``' ``ci_low`` and ``ci_high`` (NaN where a
        group has none), not to memory (24 bytes a summary row held to the end, which grew with the cells)."""
        self.columns = columns
        for shape in sorted(self.waiting):
            self._run(shape)
            release_memory()  # the shape's blocks and draws: trimmed before the next shape (flat in the shapes)
        if self.spill is not None:
            self.spill.close()
            self.spill = None

    def _keep(self, ids: np.ndarray, values: np.ndarray):  # -> tuple[np.ndarray, np.ndarray] | _Spilled
        """``ids`` and ``values`` in memory while the waiting ones fit ``SPILL_BYTES``, else written to the spill
        file (the ids too: 8 bytes a group, which grew with the table)."""
        if self.held + ids.nbytes + values.nbytes <= SPILL_BYTES:
            self.held += ids.nbytes + values.nbytes
            return ids, values
        if self.spill is None:
            self.spill = tempfile.TemporaryFile(prefix="xaibench-bootstrap-")
        self.spill.seek(0, 2)
        spilled = _Spilled(self.spill.tell(), values.shape)
        self.spill.write(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
        self.spill.write(np.ascontiguousarray(values, dtype=np.float64).tobytes())
        return spilled

    def _load(self, waiting) -> tuple[np.ndarray, np.ndarray]:
        """Waiting group ids and values back in memory (read from the spill file if they were written there)."""
        if not isinstance(waiting, _Spilled):
            self.held -= waiting[0].nbytes + waiting[1].nbytes
            return waiting
        self.spill.seek(waiting.offset)
        n_ids, count = waiting.shape[0], int(np.prod(waiting.shape))
        ids = np.frombuffer(self.spill.read(n_ids * 8), dtype=np.int64, count=n_ids)
        values = np.frombuffer(self.spill.read(count * 8), dtype=np.float64, count=count).reshape(waiting.shape)
        return ids, values

    def _run(self, shape: tuple) -> None:
        with _one_blas_thread():
            self._bootstrap(shape)

    def _bootstrap(self, shape: tuple) -> None:
        """Every waiting group of one shape, in blocks of BLOCK groups in group order, as ``mean_intervals`` of
        each block would bound them (the same chunks of ``QUANTILE_ROWS`` complete or gapped groups, so the same
        bits), but streamed: the values are loaded piece by piece and a chunk is bootstrapped as soon as it is
        known to be whole, so about one chunk per kind is in memory, not a block (4,096 groups of 5 seeds x 150
        sample ids were 25 MB, and a shape's block filled up with the table's size)."""
        (kind, dims), queue = shape, self.waiting.pop(shape)[::-1]
        if kind == "samples" and dims == (1,):  # one value: no CI can be computed (NaN, as the columns start)
            return
        n_seeds, n_samples = dims if kind == "grid" else (1, 0)
        draws = interval_draws(int(np.prod(dims)), n_seeds=n_seeds, n_samples=n_samples, n_boot=self.n_boot,
                               seed=self.seed)
        streams: dict[bool, _Chunks] = {}  # complete (or one seed) / with gaps -> its groups not yet bootstrapped
        in_block = 0
        while queue:
            ids, values = self._load(queue.pop())  # the in-memory pieces go as they are used
            start = 0
            while start < len(ids):
                stop = start + min(len(ids) - start, BLOCK - in_block)
                rows = slice(start, stop)
                complete = (np.isfinite(values[rows]).all(axis=1) if n_seeds > 1
                            else np.ones(stop - start, dtype=bool))
                for whole in (True, False):
                    members = np.flatnonzero(complete == whole)
                    if members.size:
                        stream = streams.setdefault(whole, _Chunks())
                        stream.add(ids[rows][members], values[rows][members])
                        while stream.count >= boot.QUANTILE_ROWS + 2:  # not the block's last chunk: bootstrap it
                            self._bound(*stream.take(boot.QUANTILE_ROWS), draws)
                in_block, start = in_block + stop - start, stop
                if in_block == BLOCK:
                    self._end_block(streams, draws)
                    in_block = 0
        self._end_block(streams, draws)

    def _end_block(self, streams: dict[bool, _Chunks], draws: tuple) -> None:
        """The block's last chunk of each kind: ``_row_chunks`` of what is left (a last single group joins the
        chunk before it, which is why a chunk waits until two more groups follow it)."""
        for stream in streams.values():
            if stream.count:
                ids, values = stream.take(stream.count)
                for rows in boot._row_chunks(len(ids)):
                    self._bound(ids[rows], values[rows], draws)
        streams.clear()

    def _bound(self, ids: np.ndarray, values: np.ndarray, draws: tuple) -> None:
        low, high = chunk_bounds(values, slice(None) if draws[0] == 1 else np.arange(len(values)), draws,
                                 level=self.level)
        self.columns.scatter("ci_low", ids, low)
        self.columns.scatter("ci_high", ids, high)


class _Chunks:
    """Group ids and their values waiting to be bootstrapped, in order, taken from the front."""

    def __init__(self) -> None:
        self.ids: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.count = 0

    def add(self, ids: np.ndarray, values: np.ndarray) -> None:
        self.ids.append(ids)
        self.values.append(values)
        self.count += len(ids)

    def take(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` groups (copies: what is left holds no reference to them)."""
        ids, values = np.concatenate(self.ids), np.concatenate(self.values)
        self.ids, self.values = ([ids[n:].copy()], [values[n:].copy()]) if n < len(ids) else ([], [])
        self.count = len(ids) - n
        return ids[:n], values[:n]


@dataclass(frozen=True)
class _Spilled:
    """Waiting group ids and values written to ``Intervals.spill``: where (byte offset; the ids, then the values)
    and the values' ``(groups, values)`` shape."""

    offset: int
    shape: tuple[int, ...]


def _one_blas_thread():  # -> a context manager
    """The bootstrap's matrix products on one BLAS thread. Their last bits depend on how BLAS splits them between
    threads, i.e. on the machine's core count: on one thread the CIs are the same on every machine of one CPU
    kind. It also halves the summary's CPU time (OpenBLAS's threads spin between the many small products)."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


_BLAS = None  # threadpoolctl's controller, made on first use
