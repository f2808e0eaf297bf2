"""Chunked forwards on the model's device: many small Quantus predictions become few large ones.

Quantus predicts once per perturbation step on the ``N`` samples of the batch (51 forwards of 32 rows for
FaithfulnessCorrelation). Here the perturbed batches are queued as they are made (in Quantus' random-draw order)
and forwarded ``chunk_size`` rows at a time, whole steps per chunk (a text model in the "tokens" view needs row
``i`` of every step to be sample ``i``). On CUDA an out-of-memory error halves the chunk and retries; the number of
halvings is kept in ``backoffs`` (the adapter records it in the row's params).
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

from xaibench.engine.cell import CHUNK_ELEMENTS, DEFAULT_CHUNK_SIZE
from xaibench.engine.oom import OUT_OF_MEMORY, release_cached_memory


# A forward of fewer rows than this gives a row other bits than a larger forward does: torch's CPU kernels for linear
# layers and convolutions take another path below 16 rows (torch 2.13: the suite's mlp differs at 1-10 rows, the tiny
# cnn at 1-15, both equal a 2,048-row forward's bits from 16 rows on). Steps of fewer inputs are therefore forwarded
# and re-explained one at a time, in Quantus' own calls: the fast engine's scores are then Quantus' bit for bit.
BATCH_INDEPENDENT_ROWS = 16


def chunk_rows(chunk_size: int, row_elements: int) -> int:
    """Rows per forward: ``chunk_size``, but at most ``CHUNK_ELEMENTS`` input elements (at least one row)."""
    return max(1, min(int(chunk_size), CHUNK_ELEMENTS // max(int(row_elements), 1)))


def step_chunk(chunk_size: int, n: int) -> int:
    """``chunk_size`` for steps of ``n`` rows, but one step per forward (``n``) where a step is smaller than
    ``BATCH_INDEPENDENT_ROWS`` (Quantus' composition: merged steps would round otherwise)."""
    return min(int(chunk_size), n) if 0 < n < BATCH_INDEPENDENT_ROWS else int(chunk_size)


class ChunkedForward:
    """Forward queued ``(N, ...)`` batches ``chunk_size`` rows at a time through a Quantus model wrapper.

    Args:
        model: Quantus ``ModelInterface`` (its softmax choice and device are used as Quantus would).
        chunk_size: rows per forward (at least one whole step of ``N`` rows), capped at ``CHUNK_ELEMENTS`` input
            elements per forward (:func:`chunk_rows`; the metrics pass :func:`step_chunk`).
        targets: ``(N,)`` classes: outputs are gathered on the device, ``(S, N)``; None returns ``(S, N, K)``.
    """

    def __init__(self, model, chunk_size: int = DEFAULT_CHUNK_SIZE, targets: np.ndarray | None = None) -> None:
        self.network = model.get_softmax_arg_model()
        self.device = torch.device(getattr(model, "device", None) or "cpu")
        self.chunk_size = max(1, int(chunk_size))
        self.targets = None if targets is None else torch.as_tensor(np.asarray(targets), device=self.device)
        self.backoffs = 0

    def run(self, batches: Iterable[np.ndarray]) -> np.ndarray:
        """Outputs for every batch ``batches`` yields (a generator: perturbations are made lazily, in order)."""
        outputs: list[np.ndarray] = []
        queued: list[np.ndarray] = []
        rows = 0
        for batch in batches:
            if not queued and not outputs:  # the first step fixes the row size: cap the chunk by elements
                self.chunk_size = chunk_rows(self.chunk_size, batch[0].size if len(batch) else 1)
            if queued and rows + len(batch) > self.chunk_size:
                outputs.extend(self._forward_steps(queued))
                queued, rows = [], 0
            queued.append(batch)
            rows += len(batch)
        if queued:
            outputs.extend(self._forward_steps(queued))
        return np.stack(outputs) if outputs else np.empty((0,))

    def run_blocks(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """:meth:`run` on every step of the ``(S_b, N, ...)`` blocks, in order."""
        return self.run(step for block in blocks for step in block)

    def _forward_steps(self, steps: list[np.ndarray]) -> list[np.ndarray]:
        """One forward for ``steps`` (halved on CUDA out-of-memory); one output array per step."""
        return self._halving(self._forward, steps)

    def _halving(self, forward: Callable[[list], list[np.ndarray]], steps: list) -> list[np.ndarray]:
        """``forward(steps)``; on CUDA out-of-memory, each half of ``steps`` alone (recursively), counted in
        ``backoffs`` and remembered as a halved ``chunk_size``."""
        try:
            return forward(steps)
        except OUT_OF_MEMORY:
            if len(steps) == 1:
                raise
            release_cached_memory()
            self.backoffs += 1
            self.chunk_size = max(1, self.chunk_size // 2)
            half = len(steps) // 2
            return self._halving(forward, steps[:half]) + self._halving(forward, steps[half:])

    def _forward(self, steps: list[np.ndarray]) -> list[np.ndarray]:
        n = len(steps[0])
        x = torch.as_tensor(np.concatenate(steps, axis=0), dtype=torch.float32).to(self.device)
        with torch.no_grad():
            out = self.network(x)
            if self.targets is not None:
                index = self.targets.repeat(len(steps)).reshape(-1, 1)
                out = out.gather(1, index).reshape(-1)
            out = out.detach().cpu().numpy()
        return [out[i * n:(i + 1) * n] for i in range(len(steps))]
