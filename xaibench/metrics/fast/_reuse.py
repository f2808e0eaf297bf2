"""Chunked forwards that skip rows a perturbation left unchanged (FaithfulnessEstimate, PixelFlipping).

A perturbation step that sets features to the baseline changes nothing where they already hold it: the black
background of an image under baseline 0, whose attributions (``x * gradient`` for IG, with a zero baseline) are
zero as well, so they share steps. Quantus forwards such a row anyway and warns that the perturbation caused no
change; its output is the output of the row it equals. Here a row whose bits equal the same sample's row of the
reference step (the first step: the unperturbed input; or the previous step, for cumulative perturbations) is
not forwarded and gets that row's output. On the cnn with integrated gradients on digits that is 46% of the
perturbed rows of FaithfulnessEstimate and PixelFlipping (10% with saliency).

Equal inputs give equal outputs, so the scores are Quantus' (an unchanged row's output drop is exactly 0 in
both); only the rows that remain are forwarded in other batches (float rounding, as with any ``chunk_size``).
Rows are skipped only when steps share a forward (``chunk_size`` above one step): with ``chunk_size`` at most
``N`` every forward is one whole Quantus step, the reference composition (bit for bit Quantus). Not used for a
model whose row ``i`` must be sample ``i`` (the text "tokens" view): the caller decides (``reuse=None``).

Steps arrive in blocks ``(S_b, N, ...)`` (:meth:`ReusingForward.run_blocks`; a block is what one stacked
perturbation call made): the rows are compared, gathered and given their outputs a block at a time, with the
same chunks (whole steps, in order, at most ``chunk_size`` forwarded rows) as step by step.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np
import torch

from xaibench.metrics.fast._forward import ChunkedForward, chunk_rows

REFERENCES = ("first", "previous")


class ReusingForward(ChunkedForward):
    """:class:`ChunkedForward` that forwards only the rows that differ from the same sample's reference row.

    Args:
        model, chunk_size, targets: as :class:`ChunkedForward`.
        reuse: ``"first"`` (compare with the first step, e.g. the unperturbed input), ``"previous"`` (with the
            step before, for cumulative perturbations) or None (forward every row: :class:`ChunkedForward`).
        first_outputs: the first step's outputs if they are known already (``(N,)`` with targets, else
            ``(N, K)``; the constant-output screen's outputs at ``x``): its rows are then not forwarded. Used only
            when rows are skipped (``chunk_size`` above ``N``), so one step per forward stays Quantus' composition.
    """

    def __init__(self, model, chunk_size: int, targets: np.ndarray | None = None, reuse: str | None = None,
                 first_outputs: np.ndarray | None = None) -> None:
        super().__init__(model, chunk_size, targets)
        if reuse is not None and reuse not in REFERENCES:
            raise ValueError(f"reuse must be one of {REFERENCES} or None, got {reuse!r}")
        self.reuse = reuse
        self.first_outputs = first_outputs
        self.reused_rows = 0
        # (N,) targets on the CPU, to pick the targets of the rows that are forwarded
        self._targets = None if targets is None else np.asarray(targets, dtype=np.int64).reshape(-1)

    def run(self, batches: Iterable[np.ndarray]) -> np.ndarray:
        """``(S, N)`` (or ``(S, N, K)`` without targets) outputs of every batch ``batches`` yields, in order."""
        return self.run_blocks(batch[None] for batch in batches)

    def run_blocks(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """``(S, N)`` (or ``(S, N, K)``) outputs of every step of the ``(S_b, N, ...)`` blocks, in order."""
        iterator = (block for block in blocks if len(block))
        first = next(iterator, None)
        if first is None:
            return np.empty((0,))
        n = first.shape[1]
        self.chunk_size = chunk_rows(self.chunk_size, first[0, 0].size if n else 1)
        blocks = _chain(first, iterator)
        if self.reuse is None or self.chunk_size <= n or n == 0:
            return super().run(step for block in blocks for step in block)
        return _Reuse(self).run(blocks)

    def _forward_queue(self, queue: list[tuple["_Block", int]]) -> list[np.ndarray]:
        """One forward of the remaining rows of the queued steps, in order: ``[(M,) or (M, K)]``."""
        runs = list(_runs(queue))
        rows = [block.steps[s0:s1][block.keep[s0:s1]] for block, s0, s1 in runs]
        x = torch.as_tensor(rows[0] if len(rows) == 1 else np.concatenate(rows), dtype=torch.float32)
        with torch.no_grad():
            out = self.network(x.to(self.device))
            if self.targets is not None:
                index = self._targets[np.concatenate([np.nonzero(block.keep[s0:s1])[1] for block, s0, s1 in runs])]
                out = out.gather(1, torch.as_tensor(index, device=self.device).reshape(-1, 1)).reshape(-1)
            return [out.detach().cpu().numpy()]


class _Block:
    """One block of steps ``(S_b, N, ...)``: which rows to forward, and (once forwarded) every step's outputs."""

    def __init__(self, steps: np.ndarray, keep: np.ndarray) -> None:
        self.steps = steps  # (S_b, N, ...)
        self.keep = keep  # (S_b, N) bool: the row differs from its reference row and is forwarded
        self.counts = keep.sum(axis=1).tolist()  # forwarded rows per step
        self.out: np.ndarray | None = None  # (S_b, N) or (S_b, N, K), filled as its steps are resolved


class _Reuse:
    """One run of a :class:`ReusingForward`: packs whole steps into chunks of at most ``chunk_size`` forwarded
    rows (the chunks step by step packing makes), forwards them and gives unchanged rows their reference row's
    output."""

    def __init__(self, forward: ReusingForward) -> None:
        self.forward = forward
        self.first = forward.reuse == "first"
        self.reference: np.ndarray | None = None  # (N, ...) rows are compared with: the first step, or the last
        self.known = forward.first_outputs  # outputs of the first step ("first") or of the last resolved step
        self.row_output: tuple | None = None if self.known is None else (self.known.shape[1:], self.known.dtype)

    def run(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        done: list[_Block] = []
        queue: list[tuple[_Block, int]] = []
        rows = 0
        for steps in blocks:
            block = self._block(steps)
            done.append(block)
            for index, count in enumerate(block.counts):
                if queue and rows + count > self.forward.chunk_size:
                    self._flush(queue)
                    queue, rows = [], 0
                queue.append((block, index))
                rows += count
        self._flush(queue)
        return np.concatenate([block.out for block in done])

    def _block(self, steps: np.ndarray) -> _Block:
        """Which rows of ``steps`` ``(S_b, N, ...)`` differ from their reference rows (every row of the very first
        step, unless its outputs are known)."""
        keep = np.empty(steps.shape[:2], dtype=bool)
        if self.reference is None:
            keep[0] = self.known is None
            keep[1:] = ~same_steps(steps[1:], steps[0] if self.first else steps[:-1])
        elif self.first:
            keep[:] = ~same_steps(steps, self.reference)
        else:
            keep[0] = ~same_steps(steps[:1], self.reference)[0]
            keep[1:] = ~same_steps(steps[1:], steps[:-1])
        if not self.first or self.reference is None:
            self.reference = steps[0] if self.first else steps[-1]
        block = _Block(steps, keep)
        self.forward.reused_rows += keep.size - sum(block.counts)
        return block

    def _flush(self, queue: list[tuple[_Block, int]]) -> None:
        """Forward the queued steps' remaining rows in one call (halved on CUDA out-of-memory), then resolve
        every queued step's outputs, in order."""
        out = None
        if sum(block.counts[index] for block, index in queue):
            out = np.concatenate(self.forward._halving(self.forward._forward_queue, queue))
            self.row_output = self.row_output or (out.shape[1:], out.dtype)
        offset = 0
        for block, s0, s1 in _runs(queue):
            if block.out is None:
                trailing, dtype = self.row_output
                block.out = np.empty((*block.keep.shape, *trailing), dtype=dtype)
            outputs, keep = block.out[s0:s1], block.keep[s0:s1]
            count = block.counts[s0] if s1 == s0 + 1 else int(keep.sum())
            if count:
                outputs[keep] = out[offset:offset + count]
                offset += count
            self._resolve(outputs, keep)

    def _resolve(self, outputs: np.ndarray, keep: np.ndarray) -> None:
        """Unchanged rows (``~keep``) of ``outputs`` ``(k, N[, K])`` take their reference row's output."""
        if self.first:
            if self.known is None:  # the very first step: every row was forwarded
                self.known = outputs[0].copy()
            if not keep.all():
                unchanged = ~keep
                outputs[unchanged] = np.broadcast_to(self.known, outputs.shape)[unchanged]
            return
        if not keep.all():
            k, n = keep.shape
            source = np.where(keep, np.arange(1, k + 1)[:, None], 0)  # 0: the step before these
            np.maximum.accumulate(source, axis=0, out=source)  # the last step at or before it where the row changed
            before = self.known if self.known is not None else np.zeros_like(outputs[0])  # (first step: all kept)
            outputs[...] = np.concatenate([before[None], outputs])[source, np.arange(n)]
        self.known = outputs[-1].copy()


def _runs(queue: list[tuple[_Block, int]]) -> Iterator[tuple[_Block, int, int]]:
    """Consecutive queued steps of one block as ``(block, first step, stop)``."""
    start = 0
    for i in range(1, len(queue) + 1):
        if i == len(queue) or queue[i][0] is not queue[start][0]:
            yield queue[start][0], queue[start][1], queue[i - 1][1] + 1
            start = i


def same_steps(steps: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(S, N)`` bool: row ``i`` of step ``s`` holds the same bits as row ``i`` of ``reference`` (``(N, ...)``, or
    ``(S, N, ...)`` step by step). NaN equals itself; 0.0 is not -0.0; another dtype or row shape never equals."""
    if steps.shape[-reference.ndim:] != reference.shape[-reference.ndim:] or steps.dtype != reference.dtype \
            or steps.ndim < 2:
        return np.zeros(steps.shape[:2], dtype=bool)
    s, n = steps.shape[:2]
    if s == 0 or n == 0:
        return np.zeros((s, n), dtype=bool)
    a, b = np.ascontiguousarray(steps).reshape(s, n, -1), np.ascontiguousarray(reference)
    b = b.reshape(n, -1) if b.ndim == steps.ndim - 1 else b.reshape(s, n, -1)
    unsigned = f"u{a.itemsize}" if a.itemsize in (1, 2, 4, 8) else np.uint8
    return (a.view(unsigned) == b.view(unsigned)).all(axis=-1)


def same_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: row ``i`` of ``a`` and of ``b`` hold the same bits (NaN equals itself; 0.0 is not -0.0)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return np.zeros(len(a), dtype=bool)
    return same_steps(a[None], b)[0]


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]):
    yield first
    yield from rest
