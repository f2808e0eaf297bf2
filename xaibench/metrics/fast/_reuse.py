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
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from xaibench.metrics.fast._forward import ChunkedForward, chunk_rows

REFERENCES = ("first", "previous")


class ReusingForward(ChunkedForward):
    """:class:`ChunkedForward` that forwards only the rows that differ from the same sample's reference row.

    Args:
        model, chunk_size, targets: as :class:`ChunkedForward`.
        reuse: ``"first"`` (compare with the first batch, e.g. the unperturbed input), ``"previous"`` (with the
            batch before, for cumulative perturbations) or None (forward every row: :class:`ChunkedForward`).
    """

    def __init__(self, model, chunk_size: int, targets: np.ndarray | None = None, reuse: str | None = None) -> None:
        super().__init__(model, chunk_size, targets)
        if reuse is not None and reuse not in REFERENCES:
            raise ValueError(f"reuse must be one of {REFERENCES} or None, got {reuse!r}")
        self.reuse = reuse
        self.reused_rows = 0
        # (N,) targets on the CPU, to pick the rows of partial steps
        self._targets = None if targets is None else np.asarray(targets, dtype=np.int64).reshape(-1)

    def run(self, batches: Iterable[np.ndarray]) -> np.ndarray:
        """``(S, N)`` (or ``(S, N, K)`` without targets) outputs of every batch ``batches`` yields, in order."""
        iterator = iter(batches)
        first = next(iterator, None)
        if first is None:
            return np.empty((0,))
        n = len(first)
        self.chunk_size = chunk_rows(self.chunk_size, first[0].size if n else 1)
        if self.reuse is None or self.chunk_size <= n or n == 0:
            return super().run(_chain(first, iterator))
        outputs: list[np.ndarray] = []
        queued: list[_Step] = []
        rows, reference = 0, None
        for batch in _chain(first, iterator):
            step = _Step.of(batch, reference, len(outputs) + len(queued), self.reuse)
            if queued and rows + step.n_forward > self.chunk_size:
                self._resolve(queued, outputs)
                queued, rows = [], 0
            queued.append(step)
            rows += step.n_forward
            self.reused_rows += len(batch) - step.n_forward
            if reference is None or self.reuse == "previous":
                reference = batch
        self._resolve(queued, outputs)
        return np.stack(outputs)

    def _resolve(self, steps: list["_Step"], outputs: list[np.ndarray]) -> None:
        """Forward the steps' remaining rows in one call, then give every step its full output, in order."""
        forwarded = [s for s in steps if s.n_forward]
        results = self._forward_rows(forwarded) if forwarded else []
        by_step = {id(s): r for s, r in zip(forwarded, results)}
        for step in steps:
            out = by_step.get(id(step))
            if step.same is not None:
                full = np.array(outputs[step.reference], copy=True)  # the reference row's output where unchanged
                if out is not None:
                    full[~step.same] = out
                out = full
            outputs.append(out)

    def _forward_rows(self, steps: list["_Step"]) -> list[np.ndarray]:
        """One forward of the steps' remaining rows (halved on CUDA out-of-memory); one output per step."""
        return self._halving(self._forward_subsets, steps)

    def _forward_subsets(self, steps: list["_Step"]) -> list[np.ndarray]:
        sizes = [step.n_forward for step in steps]
        x = torch.as_tensor(np.concatenate([step.rows for step in steps], axis=0), dtype=torch.float32)
        with torch.no_grad():
            out = self.network(x.to(self.device))
            if self.targets is not None:
                targets = self._targets
                index = np.concatenate([targets if step.same is None else targets[~step.same] for step in steps])
                out = out.gather(1, torch.as_tensor(index, device=self.device).reshape(-1, 1)).reshape(-1)
            out = out.detach().cpu().numpy()
        return np.split(out, np.cumsum(sizes)[:-1])


class _Step:
    """One queued batch: the rows to forward, and where its unchanged rows take their output from."""

    def __init__(self, rows: np.ndarray, same: np.ndarray | None, reference: int) -> None:
        self.rows = rows  # (M, ...) rows to forward
        self.same = same  # (N,) bool: row equals the reference step's row (None: every row is forwarded)
        self.reference = reference  # index of the reference step
        self.n_forward = len(rows)

    @classmethod
    def of(cls, batch: np.ndarray, reference: np.ndarray | None, index: int, reuse: str) -> "_Step":
        if reference is None:
            return cls(batch, None, -1)
        same = same_rows(batch, reference)
        if not same.any():
            return cls(batch, None, -1)
        return cls(batch[~same], same, 0 if reuse == "first" else index - 1)


def same_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: row ``i`` of ``a`` and of ``b`` hold the same bits (NaN equals itself; 0.0 is not -0.0)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return np.zeros(len(a), dtype=bool)
    a2, b2 = np.ascontiguousarray(a).reshape(len(a), -1), np.ascontiguousarray(b).reshape(len(b), -1)
    if a2.itemsize in (1, 2, 4, 8):
        a2, b2 = a2.view(f"u{a2.itemsize}"), b2.view(f"u{b2.itemsize}")
    else:
        a2, b2 = a2.view(np.uint8), b2.view(np.uint8)
    return (a2 == b2).all(axis=1)


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]):
    yield first
    yield from rest
