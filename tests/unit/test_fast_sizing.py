"""``chunk_size: auto``: re-explanation calls sized by the model's activations, the same scores bit for bit.

The rule (``xaibench/metrics/fast/_sizing.py``) reads only the architecture and the input shape: activation elements
per row counted by hooks on one row, ``ACTIVATION_BUDGET // per row`` rows, never fewer than the fixed default
chunk's. Expected counts below are worked out by hand from the layers.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from xaibench.engine.cell import CellSpec
from xaibench.errors import UserError
from xaibench.metrics import testing
from xaibench.metrics.fast import stability
from xaibench.metrics.fast._sizing import ACTIVATION_BUDGET, activation_elements, automatic_rows
from xaibench.metrics.quantus_adapter import score
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.types import Modality

SEED = 1234


def suite_cnn() -> nn.Module:
    """The suite's cnn on 8x8 digits (``models/zoo/cnn.py``: channels 16, 32; ``AvgPool2d(2)``; 10 classes)."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(512, 10)).eval()


def suite_mlp() -> nn.Module:
    """The suite's mlp on breast_cancer (30 features, hidden [64, 64], 2 classes)."""
    return nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2)).eval()


def test_activation_elements_count_the_input_and_every_leaf_modules_output():
    # input 64, two conv outputs and their ReLUs 2 x (16 + 32) x 64, pooled 32 x 16 and flattened 512, 10 logits
    assert activation_elements(suite_cnn(), torch.zeros(1, 1, 8, 8)) == 64 + 2 * 1024 + 2 * 2048 + 512 + 512 + 10
    assert activation_elements(suite_mlp(), torch.zeros(1, 30)) == 30 + 4 * 64 + 2
    network = suite_mlp()
    activation_elements(network, torch.zeros(1, 30))
    assert all(not m._forward_hooks for m in network.modules())  # nothing left hooked


def test_automatic_rows_give_cheap_rows_large_calls_and_expensive_rows_the_default_chunk():
    assert automatic_rows(suite_mlp(), np.zeros(30)) == ACTIVATION_BUDGET // 288 == 14_563
    assert ACTIVATION_BUDGET // 7_242 == 579  # the cnn's rows would allow fewer than the default: the default stays
    assert automatic_rows(suite_cnn(), np.zeros((1, 8, 8))) == 1024
    # 3 x 224 x 224 inputs: the default chunk's input-element cap (2**21 // 150,528 = 13 rows) stays the floor
    wide = nn.Sequential(nn.Flatten(), nn.Linear(3 * 224 * 224, 2)).eval()
    assert automatic_rows(wide, np.zeros((3, 224, 224))) == 13
    # a tiny model never exceeds the input-element cap: 2**21 // 2 inputs, not 2**22 // 7 activations
    assert automatic_rows(nn.Sequential(nn.Linear(2, 1)).eval(), np.zeros(2)) == 2**21 // 2


@pytest.mark.parametrize(("value", "expected"), [("auto", None), (None, None), (256, 256), (1, 1)])
def test_chunk_size_is_auto_or_a_positive_number_of_rows(value, expected):
    base = {"model": {"name": "mlp"}, "dataset": {"name": "iris"}, "method": {"name": "saliency"}, "metrics": {}}
    assert CellSpec.from_config({**base, "chunk_size": value}).chunk_size == expected
    assert CellSpec.from_config(base).chunk_size is None  # the default is auto


@pytest.mark.parametrize("value", [0, -5, "big", True, 2.5])
def test_a_chunk_size_that_is_neither_rows_nor_auto_is_refused(value):
    base = {"model": {"name": "mlp"}, "dataset": {"name": "iris"}, "method": {"name": "saliency"}, "metrics": {}}
    with pytest.raises(UserError, match="chunk_size must be a positive integer .* or 'auto'"):
        CellSpec.from_config({**base, "chunk_size": value})


def _calls(monkeypatch) -> list[int]:
    sizes: list[int] = []
    block = stability.ChunkedStability._explain_block
    monkeypatch.setattr(stability.ChunkedStability, "_explain_block", lambda self, model, network, steps, y: (
        sizes.append(steps.shape[0] * steps.shape[1]), block(self, model, network, steps, y))[1])
    return sizes


def _fixed_and_auto(sizes: list[int], ctx, name: str, params: dict) -> tuple[list[int], list[int], object, object]:
    """The re-explanation calls' inputs (``sizes`` from :func:`_calls`) and the score of metric ``name``, with the
    fixed 1,024-row chunk and with ``auto``: ``(fixed calls, auto calls, fixed score, auto score)``."""
    spec = METRICS.get(name)
    sizes.clear()
    explicit = score(spec, params, replace(ctx, engine="fast", chunk_size=1024), SEED)
    fixed, sizes[:] = list(sizes), []
    automatic = score(spec, params, replace(ctx, engine="fast", chunk_size=None), SEED)
    return fixed, list(sizes), explicit, automatic


@pytest.mark.parametrize(("method", "params", "fixed", "auto"), [
    # 16 path steps per input: a step of 32 inputs is 512 rows, the fixed chunk holds two steps; auto all four
    ("integrated_gradients", {"n_steps": 16}, [64, 64], [128]),
    # 10 features, one per forward row: 320 rows a step, three steps per fixed chunk; auto all four
    ("feature_ablation", {}, [96, 32], [128]),
])
def test_auto_calls_on_a_cheap_model_are_larger_and_score_as_the_fixed_chunk_bit_for_bit(
        method, params, fixed, auto, monkeypatch):
    """On a tabular mlp ``auto`` re-explains more inputs per call than the fixed 1,024-row chunk (an explicit
    ``chunk_size`` is honoured), and every stability score keeps its bits, which are plain Quantus's."""
    torch.manual_seed(0)
    ctx = testing.context(testing.tiny_mlp(10, 3).eval(), Modality.TABULAR, torch.randn(32, 10),
                          EXPLAINERS.create(method, params))
    sizes = _calls(monkeypatch)
    for name in ("max_sensitivity", "relative_input_stability"):
        calls = _fixed_and_auto(sizes, ctx, name, {"nr_samples": 4})
        assert calls[:2] == (fixed, auto)
        explicit, automatic = calls[2:]
        assert automatic.values.tobytes() == explicit.values.tobytes() and automatic.status == explicit.status
        assert np.isfinite(automatic.values).sum() >= 16
        plain = score(METRICS.get(name), {"nr_samples": 4}, replace(ctx, engine="quantus"), SEED)
        np.testing.assert_array_equal(automatic.values, plain.values)


def test_auto_keeps_the_fixed_chunks_calls_below_32_inputs_per_call(monkeypatch):
    """With fewer than ``EXACT_ROWS`` inputs in a call of the fixed chunk (here groups of 10 of a step's 20 inputs of
    100 path steps), a forward may hold so few rows that torch's GEMMs round its rows otherwise: ``auto`` keeps those
    calls. (Below 16 inputs a step gets Quantus' calls whatever the chunk: ``test_metrics_fast.py``.)"""
    assert stability.EXACT_ROWS == 32
    torch.manual_seed(0)
    ctx = testing.context(testing.tiny_mlp(10, 3).eval(), Modality.TABULAR, torch.randn(20, 10),
                          EXPLAINERS.create("integrated_gradients", {"n_steps": 100}))
    fixed, auto, explicit, automatic = _fixed_and_auto(_calls(monkeypatch), ctx, "max_sensitivity", {"nr_samples": 3})
    assert fixed == auto == [10] * 6
    assert automatic.values.tobytes() == explicit.values.tobytes()


def test_auto_keeps_the_fixed_chunks_calls_on_a_model_with_expensive_rows(monkeypatch):
    """A model whose rows keep more than ``ACTIVATION_BUDGET / 1,024`` activation elements (the cnn on digits: 7,242)
    gets the default chunk's calls under ``auto``: the same calls, the same bits."""
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(10, 4096), nn.ReLU(), nn.Linear(4096, 2)).eval()  # 10 + 2 x 4,096 + 2 per row
    x = torch.randn(32, 10)
    ctx = testing.context(network, Modality.TABULAR, x, EXPLAINERS.create("integrated_gradients", {"n_steps": 16}))
    assert automatic_rows(network, x[0].numpy()) == 1024  # 2**22 // 8,204 = 511 rows: the default is the floor
    fixed, auto, explicit, automatic = _fixed_and_auto(_calls(monkeypatch), ctx, "max_sensitivity", {"nr_samples": 3})
    assert fixed == auto == [64, 32]  # 1,024 rows: two steps of 32 inputs x 16 path steps
    assert automatic.values.tobytes() == explicit.values.tobytes()


def test_auto_measures_a_text_model_in_the_embedding_layout_and_keeps_its_bits(monkeypatch):
    """Text is re-explained at the embeddings (Quantus layout ``(N, D, L)``): the activation count runs there too, the
    tiny text model's cheap rows get one call for all steps, and the scores keep their bits (plain Quantus's)."""
    torch.manual_seed(0)
    ctx = testing.context(testing.TinyTextModel().eval(), Modality.TEXT, torch.randint(1, 20, (32, 8)),
                          EXPLAINERS.create("integrated_gradients", {"n_steps": 16}))
    fixed, auto, explicit, automatic = _fixed_and_auto(_calls(monkeypatch), ctx, "max_sensitivity", {"nr_samples": 4})
    assert (fixed, auto) == ([64, 64], [128])
    assert automatic.values.tobytes() == explicit.values.tobytes() and np.isfinite(automatic.values).all()
    plain = score(METRICS.get("max_sensitivity"), {"nr_samples": 4}, replace(ctx, engine="quantus"), SEED)
    np.testing.assert_array_equal(automatic.values, plain.values)
