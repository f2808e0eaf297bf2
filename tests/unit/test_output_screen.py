"""The constant-output screen: the same answer as its three-probe definition, computed once per cell.

``xaibench/metrics/output_screen.py`` forwards ``x`` and one zero row first and probes with noise only the samples
that did not move; inside ``shared_screens`` (one per cell) the metrics of a cell reuse one answer for the same
model, weights and inputs, and never across cells.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from xaibench.engine.cell import CellSpec
from xaibench.engine.runner import run_cell
from xaibench.engine.store import Store
from xaibench.metrics import output_screen, testing
from xaibench.metrics.layout import QuantusModel, TokenPresenceModel
from xaibench.metrics.output_screen import constant_output, shared_screens
from xaibench.metrics.quantus_adapter import QuantusBatch, score
from xaibench.registry import METRICS
from xaibench.types import Modality


def three_probes(batch: QuantusBatch, tolerance: float = 1e-6) -> np.ndarray:
    """The definition: outputs at x, at zero and at x + unit-scale noise (rng 0), all in one forward."""
    x = batch.x
    noise = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    scale = np.abs(x).reshape(len(x), -1).max(axis=1).reshape(-1, *([1] * (x.ndim - 1))) + 1.0
    with torch.no_grad():
        out = batch.model(torch.as_tensor(np.concatenate([x, np.zeros_like(x), x + noise * scale]))).numpy()
    out = out.reshape(3, len(x), -1)
    return (out.max(axis=0) - out.min(axis=0)).max(axis=-1) <= tolerance * (1.0 + np.abs(out[0]).max(axis=-1))


def moved_at_x(batch: QuantusBatch) -> np.ndarray:
    """``(N,)`` bool: the outputs at x and at zero already differ (the noisy probe is not needed)."""
    with torch.no_grad():
        at_x = batch.model(torch.as_tensor(batch.x)).numpy()
        at_zero = batch.model(torch.zeros(batch.x.shape)).numpy()
    return np.abs(at_x - at_zero).max(axis=-1) > 1e-6 * (1.0 + np.abs(at_x).max(axis=-1))


def assert_every_case(batch: QuantusBatch, expected: np.ndarray) -> None:
    """Constant samples, samples that move at x, and samples only the noisy probe tells apart are all present."""
    moved = moved_at_x(batch)
    assert expected.any() and moved.any() and (~expected & ~moved).any()


def _batch(model: nn.Module, x: np.ndarray) -> QuantusBatch:
    return QuantusBatch(model=model, x=x, y=np.zeros(len(x), dtype=np.int64), a=x.copy(), s=None,
                        explain_func=None, device="cpu")


def hinge_model() -> nn.Module:
    """``relu(x_0 - 1.5)`` on both outputs: flat below 1.5 (equal at x and at zero), moving above."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(10, 2), nn.ReLU())
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[:, 0] = 1.0
        model[1].bias.fill_(-1.5)
    return model.eval()


def test_the_screen_equals_its_three_probe_definition_on_tabular_inputs():
    torch.manual_seed(3)
    x = torch.randn(40, 10).numpy()[:, None, :]  # Quantus layout (N, 1, F)
    batch = _batch(QuantusModel(hinge_model(), Modality.TABULAR, (10,)).eval(), x)
    expected = three_probes(batch)
    assert_every_case(batch, expected)
    np.testing.assert_array_equal(constant_output(batch), expected)


def test_the_screen_equals_its_three_probe_definition_in_the_token_view():
    """The token view maps row i to sample i: N zero rows, and the noisy probe on the undecided samples only."""
    torch.manual_seed(0)
    model = testing.TinyTextModel(vocab=20, dim=4, length=8).eval()
    with torch.no_grad():  # output = relu(embedding of position 0's token . w - 2): dead unless token 0 is a 'hot' id
        model.head[1].weight.zero_()
        model.head[1].weight[:, 0] = 1.0
        model.head[1].bias.fill_(-2.0)
        model.embedding.weight[:, 0] = torch.linspace(-3.0, 4.0, 20)
    ids = torch.randint(1, 20, (24, 8))
    batch = _batch(TokenPresenceModel(model, ids).eval(), np.ones((24, 1, 8), dtype=np.float32))
    expected = three_probes(batch)
    assert_every_case(batch, expected)
    np.testing.assert_array_equal(constant_output(batch), expected)


def test_a_constant_model_is_constant_everywhere():
    model = testing.tiny_cnn(3)
    with torch.no_grad():
        model[0].weight.zero_()
    x = testing.bar_images(6)[0].numpy()
    batch = _batch(QuantusModel(model.eval(), Modality.IMAGE, (1, 8, 8)).eval(), x)
    assert constant_output(batch).all() and three_probes(batch).all()


def _counting(monkeypatch) -> list[int]:
    calls: list[int] = []
    screen = output_screen._screen

    def counted(model, x, device, tolerance):
        calls.append(len(x))
        return screen(model, x, device, tolerance)

    monkeypatch.setattr(output_screen, "_screen", counted)
    return calls


def test_a_shared_screen_is_reused_only_for_the_same_model_weights_and_inputs(monkeypatch):
    calls = _counting(monkeypatch)
    torch.manual_seed(3)
    native = hinge_model()
    x = torch.randn(12, 10).numpy()[:, None, :]
    wrapped = lambda: QuantusModel(native, Modality.TABULAR, (10,)).eval()  # noqa: E731  (a fresh wrapper per metric)
    with shared_screens():
        first = constant_output(_batch(wrapped(), x))
        assert np.array_equal(constant_output(_batch(wrapped(), x.copy())), first) and len(calls) == 1
        constant_output(_batch(wrapped(), x + 1.0))  # other inputs
        assert len(calls) == 2
        with torch.no_grad():
            native[1].weight.zero_()  # in place: the same tensors, a new version
        assert constant_output(_batch(wrapped(), x)).all() and len(calls) == 3
        other = hinge_model()  # equal weights, another module
        constant_output(_batch(QuantusModel(other, Modality.TABULAR, (10,)).eval(), x))
        assert len(calls) == 4
    constant_output(_batch(wrapped(), x))  # outside a cell nothing is kept
    with shared_screens():
        constant_output(_batch(wrapped(), x))
    assert len(calls) == 6


def test_the_metrics_of_a_cell_screen_once_with_the_same_statuses(monkeypatch):
    ctx = testing.context(testing.tiny_mlp(10, 3).eval(), Modality.TABULAR, torch.randn(6, 10), None,
                          attributions=torch.randn(6, 10))
    names = ("faithfulness_estimate", "pixel_flipping", "faithfulness_correlation")
    alone = [score(METRICS.get(name), {}, ctx, seed=0) for name in names]
    calls = _counting(monkeypatch)
    with shared_screens():
        shared = [score(METRICS.get(name), {}, ctx, seed=0) for name in names]
    assert calls == [6]
    for a, b in zip(alone, shared):
        assert a.status == b.status and a.message == b.message
        np.testing.assert_array_equal(a.values, b.values)


def test_run_cell_screens_its_model_once(tmp_path, monkeypatch):
    metrics = {"faithfulness_estimate": {}, "pixel_flipping": {}}
    calls = _counting(monkeypatch)
    cell = CellSpec(model={"name": "logreg", "epochs": 1}, dataset={"name": "iris"}, method={"name": "saliency"},
                    seed=0, n_samples=6, metrics=metrics)
    rows = run_cell(cell, Store(tmp_path)).rows
    assert len(calls) == 1 and set(rows["metric"]) == set(metrics) and (rows["status"] == "ok").all()


def test_the_screen_keeps_its_outputs_at_x_for_the_same_module_and_input_bits():
    """``screen_outputs``: the outputs at x the screen forwarded, handed on only for the very module it forwarded
    and inputs with the same bits (-0.0 is not 0.0); per sample after ``take``; none in the token view."""
    torch.manual_seed(3)
    wrapper = QuantusModel(hinge_model(), Modality.TABULAR, (10,)).eval()
    x = torch.randn(8, 10).numpy()[:, None, :]
    x[0, 0, 3] = 0.0
    constant, screened = output_screen.screen_outputs(_batch(wrapper, x))
    np.testing.assert_array_equal(constant, constant_output(_batch(wrapper, x)))
    with torch.no_grad():
        np.testing.assert_allclose(screened.outputs, wrapper(torch.as_tensor(x)).numpy(), rtol=1e-6, atol=1e-7)
    assert not screened.outputs.flags.writeable
    assert screened.at(wrapper, x.copy()) is screened.outputs
    flipped = x.copy()
    flipped[0, 0, 3] = -0.0
    assert screened.at(wrapper, flipped) is None and screened.at(wrapper, x + 1.0) is None
    assert screened.at(QuantusModel(wrapper.model, Modality.TABULAR, (10,)), x) is None  # another wrapper
    assert screened.at(wrapper, x.astype(np.float64)) is None
    part = screened.take(np.array([2, 5]))
    np.testing.assert_array_equal(part.at(wrapper, x[[2, 5]]), screened.outputs[[2, 5]])
    with shared_screens():
        first = output_screen.screen_outputs(_batch(wrapper, x))[1]
        again = output_screen.screen_outputs(_batch(wrapper, x.copy()))[1]
    assert again.outputs is first.outputs
    tokens = TokenPresenceModel(testing.TinyTextModel().eval(), torch.randint(1, 20, (3, 8))).eval()
    assert output_screen.screen_outputs(_batch(tokens, np.ones((3, 1, 8), dtype=np.float32)))[1] is None
