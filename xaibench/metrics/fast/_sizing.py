"""Rows per re-explanation call when ``chunk_size`` is ``auto`` (the default): sized by the model's activations.

A stability metric re-explains ``nr_samples x N`` perturbed inputs; the fast engine packs them into calls of at most
a given number of model rows (``stability.inputs_per_call``). What one row of a call costs depends on the model:

- the suite's cnn on 8x8 digits keeps 7,242 activation elements per row (29 kB). In whole metric calls, calls of
  1,024 rows (30 MB of activations) were the fastest measured (IG MaxSensitivity: 261 ms, against 273-303 ms at
  256-768 rows); larger calls get slower as the activations outgrow the caches (occlusion's two steps per call,
  3,136 rows: 283 ms vs 205 ms; ``bench_gradient_rows.py``: 29 us per row at 1,024 rows, 37 at 2,048, 52 at 4,096);
- the mlp on breast_cancer keeps 288 per row (1.2 kB). There a call's time is mostly the explainer's Python
  around the model, so fewer, larger calls pay: occlusion's MaxSensitivity 15.6 ms in ten 960-row calls vs
  6.4 ms in one 9,600-row call; IG 12.2 ms vs 7.9 ms in one 10,240-row call.

So with ``chunk_size: auto`` a call may hold as many rows as keep its activations within ``ACTIVATION_BUDGET``
elements (16 MB of float32), but never fewer than the fixed default chunk (``DEFAULT_CHUNK_SIZE``, capped by
``CHUNK_ELEMENTS`` input elements, as before) and never more input elements than ``CHUNK_ELEMENTS``. Expensive
rows (the cnn; any model with more than 4,096 activation elements per row) keep exactly the default's calls; cheap
ones (tabular models) get larger ones. The rule reads only the model's architecture and the input's shape (one
forward of one row, hooks on the leaf modules), never a clock: the same config gives the same calls and the same
table.

Only the number of inputs per re-explanation call changes, and only where every call of the fixed chunk holds at
least ``stability.EXACT_ROWS`` (32) inputs: each input is explained alone in any batch (the explainer contract), and
from 32 rows on a row's bits do not depend on the rows forwarded with it (torch's CPU GEMMs take other kernels for
fewer than 16 rows), so the maps and scores are the fixed chunk's bit for bit (tested; the benchmark models' scores
compared in ``docs/speed.md``). Metric forwards (faithfulness, label checks, ROS) and the surrogates' forwards keep
the fixed chunk. An explicit ``chunk_size`` is used as given.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from xaibench.engine.cell import CHUNK_ELEMENTS, DEFAULT_CHUNK_SIZE
from xaibench.metrics.fast._forward import chunk_rows

ACTIVATION_BUDGET = 2**22  # activation elements of one re-explanation call's rows under ``chunk_size: auto`` (16 MB)


def activation_elements(network: nn.Module, row: torch.Tensor) -> int:
    """Elements one row keeps in the network's layers: the input's plus every leaf module's output's.

    Args:
        network: the module the explainer differentiates or forwards (eval mode; nothing is drawn).
        row: one input row ``(1, ...)`` in the layout ``network`` takes, on its device.
    """
    counted: list[int] = [row.numel()]

    def count(module: nn.Module, inputs: object, output: object) -> None:
        tensors = output if isinstance(output, (tuple, list)) else (output,)
        counted.extend(t.numel() for t in tensors if isinstance(t, torch.Tensor))

    leaves = [m for m in network.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            network(row)
    finally:
        for handle in handles:
            handle.remove()
    return int(sum(counted))


def automatic_rows(network: nn.Module, row: np.ndarray) -> int:
    """Rows per re-explanation call for inputs like ``row`` (one input, Quantus layout, without the batch axis).

    ``max(default, min(ACTIVATION_BUDGET // activations per row, CHUNK_ELEMENTS // input elements))``, where
    ``default`` is the fixed chunk's rows (``DEFAULT_CHUNK_SIZE`` capped at ``CHUNK_ELEMENTS`` input elements)."""
    size = max(int(row.size), 1)
    default = chunk_rows(DEFAULT_CHUNK_SIZE, size)  # the fixed chunk's rows, as ChunkedStability computes them
    device = next((p.device for p in network.parameters()), torch.device("cpu"))
    sample = torch.as_tensor(np.ascontiguousarray(row)[None], dtype=torch.float32, device=device)
    per_row = max(activation_elements(network, sample), 1)
    return max(default, min(ACTIVATION_BUDGET // per_row, CHUNK_ELEMENTS // size))
