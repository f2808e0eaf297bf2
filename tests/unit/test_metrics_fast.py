"""The fast engine equals plain Quantus: every fast metric, on tabular, image, time series and text inputs.

Both engines go through the same adapter (``score``) on the same context and seed; only the Quantus class differs
(``engine="fast"``: the chunked subclass; ``engine="quantus"``: the stock class). ``chunk_size`` is chosen so that
forwards and re-explanations span several chunks with a remainder. Stochastic explainers (SmoothGrad) show that
re-explaining in other batches keeps each sample's map (explainers draw per sample); every kind of explainer (seeded
samplers, perturbation methods, an iterative counterfactual) gives the same stability and faithfulness scores under
both engines, and re-explaining leaves the global RNGs the metric draws from untouched.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import replace

import numpy as np
import pytest
import torch
from quantus.helpers import asserts as quantus_asserts
from torch import nn

from xaibench.engine.counting import ForwardCounter
from xaibench.explainers.base import CallRows, EmbeddedForward, summed_gradients, without_diagnostics
from xaibench.explainers.seeding import global_draws_kept
from xaibench.metrics import testing
from xaibench.metrics.fast import FAST_CLASSES
from xaibench.metrics.fast._forward import BATCH_INDEPENDENT_ROWS
from xaibench.metrics.fast.stability import _assert_attributions
from xaibench.metrics.quantus_adapter import make_explain_func, score
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.types import Modality

N = 5
SEED = 1234
FAST_METRICS = sorted(n for n in METRICS.names() if METRICS.get(n).quantus_class in FAST_CLASSES)
# Fewer steps keep the test cheap; the code paths are the same as with the suite's defaults.
SMALL = {"faithfulness_correlation": {"nr_runs": 6}, "monotonicity_correlation": {"nr_samples": 2},
         "max_sensitivity": {"nr_samples": 3}, "avg_sensitivity": {"nr_samples": 2},
         "local_lipschitz_estimate": {"nr_samples": 2}, "relative_input_stability": {"nr_samples": 2},
         "relative_output_stability": {"nr_samples": 2}}


def tiny_series_model(channels: int = 2, length: int = 12, n_classes: int = 3) -> nn.Module:
    return nn.Sequential(nn.Conv1d(channels, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * length, n_classes))


def _context(modality: Modality, method: str, n: int = N):
    torch.manual_seed(0)
    explainer = EXPLAINERS.create(method, {"n_steps": 4} if method == "integrated_gradients" else
                                  {"n_samples": 3} if method == "smoothgrad" else {})
    if modality is Modality.TABULAR:
        model, x = testing.tiny_mlp(10, 3), torch.randn(n, 10)
    elif modality is Modality.IMAGE:
        model, (x, _, _) = testing.tiny_cnn(2), testing.bar_images(n)
    elif modality is Modality.TIME_SERIES:
        model, x = tiny_series_model(), torch.randn(n, 2, 12)
    else:
        model, x = testing.TinyTextModel().eval(), torch.randint(1, 20, (n, 8))
    return testing.context(model.eval(), modality, x, explainer)


def _cases():
    for name in FAST_METRICS:
        for modality in (Modality.TABULAR, Modality.IMAGE, Modality.TIME_SERIES, Modality.TEXT):
            if modality in METRICS.get(name).modalities:
                yield pytest.param(name, modality, id=f"{name}-{modality.value}")


@pytest.mark.parametrize(("name", "modality"), list(_cases()))
def test_fast_metric_equals_plain_quantus(name, modality):
    ctx = _context(modality, "integrated_gradients")
    spec, params = METRICS.get(name), SMALL.get(name, {})
    plain = score(spec, params, replace(ctx, engine="quantus"), SEED)
    fast = score(spec, params, replace(ctx, engine="fast", chunk_size=2 * N + 1), SEED)
    assert fast.status == plain.status and fast.message == plain.message
    assert fast.params == plain.params
    np.testing.assert_allclose(fast.values, plain.values, rtol=1e-6, atol=1e-6, equal_nan=True)
    assert np.isfinite(fast.values).any(), fast.message


@pytest.mark.parametrize(("name", "method"), [
    ("faithfulness_correlation", "saliency"), ("pixel_flipping", "saliency"), ("max_sensitivity", "saliency"),
    ("local_lipschitz_estimate", "integrated_gradients"), ("relative_input_stability", "integrated_gradients"),
    ("relative_output_stability", "integrated_gradients"),
])
def test_fast_metric_is_bitwise_plain_quantus_with_one_step_per_forward(name, method):
    """With one step of N rows per forward (Quantus' batch composition; IG re-explained one input per call) the
    scores are bit for bit Quantus'.

    Larger chunks change only the batched kernels' float32 summation order (about 6e-8 on a logit here).
    Re-explanations take the gradient of the summed target outputs: bit for bit captum's per-row gradients.
    """
    ctx = _context(Modality.TABULAR, method)
    spec, params = METRICS.get(name), SMALL.get(name, {})
    plain = score(spec, params, replace(ctx, engine="quantus"), SEED)
    fast = score(spec, params, replace(ctx, engine="fast", chunk_size=1), SEED)
    np.testing.assert_array_equal(fast.values, plain.values)
    for chunk in (2 * N + 1, 10_000):  # a remainder; everything in one forward
        fast = score(spec, params, replace(ctx, engine="fast", chunk_size=chunk), SEED)
        np.testing.assert_allclose(fast.values, plain.values, rtol=1e-6, atol=1e-6)


def test_stochastic_explainer_keeps_its_maps_when_re_explained_in_chunks():
    ctx = _context(Modality.TABULAR, "smoothgrad")
    spec = METRICS.get("max_sensitivity")
    plain = score(spec, SMALL["max_sensitivity"], replace(ctx, engine="quantus"), SEED)
    fast = score(spec, SMALL["max_sensitivity"], replace(ctx, engine="fast", chunk_size=4), SEED)
    np.testing.assert_allclose(fast.values, plain.values, rtol=1e-6, atol=1e-6)


# Every kind of explainer the fast engine re-explains with: seeded samplers (LIME and Kernel SHAP, vectorised and
# library; SmoothGrad's and GradientShap's noise; the random control; a surrogate tree), deterministic perturbation
# methods and an iterative counterfactual. Cheap settings; the code paths are the suite's defaults'.
CHEAP_EXPLAINERS = {"lime": {"n_samples": 16}, "kernel_shap": {"n_samples": 16}, "shap_library": {"n_samples": 16},
                    "lime_library": {"n_samples": 16}, "smoothgrad": {"n_samples": 3}, "gradient_shap": {"n_samples": 3},
                    "decision_tree": {"n_samples": 50}, "wachter": {"n_steps": 20, "n_lambdas": 3},
                    "integrated_gradients": {"n_steps": 4}}
EXPLAINER_CASES = [("lime", Modality.TABULAR), ("lime", Modality.IMAGE), ("kernel_shap", Modality.TABULAR),
                   ("kernel_shap", Modality.IMAGE), ("shap_library", Modality.TABULAR),
                   ("lime_library", Modality.TABULAR), ("smoothgrad", Modality.IMAGE),
                   ("gradient_shap", Modality.TABULAR), ("random", Modality.IMAGE), ("decision_tree", Modality.TABULAR),
                   ("occlusion", Modality.IMAGE), ("feature_ablation", Modality.TABULAR), ("wachter", Modality.IMAGE)]


def _explainer_context(method: str, modality: Modality, n: int = N):
    torch.manual_seed(0)
    explainer = EXPLAINERS.create(method, CHEAP_EXPLAINERS.get(method, {}))
    if modality is Modality.TABULAR:
        model, x = testing.tiny_mlp(10, 3), torch.randn(n, 10)
    else:
        model, (x, _, _) = testing.tiny_cnn(2), testing.bar_images(n)
    return testing.context(model.eval(), modality, x, explainer)


@pytest.mark.parametrize(("method", "modality"), [pytest.param(m, d, id=f"{m}-{d.value}") for m, d in EXPLAINER_CASES])
def test_fast_scores_equal_plain_quantus_for_every_kind_of_explainer(method, modality):
    """Stability and faithfulness scores of the fast engine equal plain Quantus's whatever the explainer.

    LIME's Lasso draws one ``np.random`` number per fit (sklearn): in plain Quantus that shifted the perturbations
    of every later step, while the fast engine draws all steps first (MaxSensitivity 0.846 vs 0.702 on the tiny
    cnn). The adapter's ``explain_func`` now leaves the global RNGs as it found them. Wachter's lambda rounds
    threshold a margin, so re-explaining a step's inputs in other batches changed maps beyond rounding: such an
    explainer (``batch_sensitive``) is re-explained in Quantus's own batches, bit for bit.
    """
    ctx = _explainer_context(method, modality)
    for name, params in (("max_sensitivity", {"nr_samples": 3}), ("local_lipschitz_estimate", {"nr_samples": 2}),
                         ("faithfulness_correlation", {"nr_runs": 6})):
        spec = METRICS.get(name)
        plain = score(spec, params, replace(ctx, engine="quantus"), SEED)
        fast = score(spec, params, replace(ctx, engine="fast", chunk_size=2 * N + 1), SEED)
        assert fast.status == plain.status and fast.message == plain.message, name
        if ctx.explainer.batch_sensitive and spec.needs_explain_func:  # re-explained as Quantus calls it
            np.testing.assert_array_equal(fast.values, plain.values, err_msg=name)
        else:
            np.testing.assert_allclose(fast.values, plain.values, rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=name)
        assert np.isfinite(fast.values).any(), (name, fast.message)


SMALL_BATCH_METRICS = (("max_sensitivity", {"nr_samples": 3}), ("avg_sensitivity", {"nr_samples": 3}),
                       ("local_lipschitz_estimate", {"nr_samples": 3}), ("relative_input_stability", {"nr_samples": 3}),
                       ("relative_output_stability", {"nr_samples": 3}), ("faithfulness_correlation", {"nr_runs": 6}),
                       ("faithfulness_estimate", {}), ("pixel_flipping", {}))


@pytest.mark.parametrize(("method", "modality"), [("feature_ablation", Modality.TABULAR), ("occlusion", Modality.IMAGE),
                                                  ("integrated_gradients", Modality.TABULAR)])
def test_small_batches_score_plain_quantus_bit_for_bit(method, modality):
    """With fewer samples than ``BATCH_INDEPENDENT_ROWS`` (16) the fast engine forwards and re-explains one step at a
    time, as Quantus does, so every stability and faithfulness score is plain Quantus's bit for bit (``auto`` chunk).

    torch's CPU kernels give a row other bits in forwards of fewer than 16 rows. When steps shared a call, feature
    ablation's and occlusion's differences of outputs (of their N unperturbed inputs, forwarded together) amplified
    that: RelativeInputStability 4e-6 and RelativeOutputStability 4e-6 relative on the tiny mlp at 3 samples, RIS
    5e-6 on the tiny cnn at 9; IG's path sums and the faithfulness forwards differed by up to 4e-6 relative.
    """
    differing = []
    for n in (3, 5, 9, 15):
        ctx = _explainer_context(method, modality, n)
        for name, params in SMALL_BATCH_METRICS:
            spec = METRICS.get(name)
            plain = score(spec, params, replace(ctx, engine="quantus"), SEED)
            fast = score(spec, params, replace(ctx, engine="fast"), SEED)  # chunk_size: auto, the default
            assert fast.status == plain.status and np.isfinite(fast.values).any(), (name, n, fast.message)
            if fast.values.tobytes() != plain.values.tobytes():
                gap = np.nanmax(np.abs(fast.values - plain.values) / np.maximum(np.abs(plain.values), 1e-12))
                differing.append(f"{name} at {n} samples: {gap:.1e} relative")
    assert not differing, differing


@pytest.mark.parametrize(("method", "modality", "calls"), [
    ("occlusion", Modality.IMAGE, [20] * 3),  # 49 windows per input: 4 would fit in 200 rows, but a gradient-free
    # explainer keeps a step's inputs together (Quantus' composition: its outputs' differences amplify rounding)
    ("lime", Modality.TABULAR, [57]),  # 16-row forwards across the batch whatever the call: every input at once
    # (19 inputs a step: the adapter screens out one sample whose LIME map is degenerate)
    ("smoothgrad", Modality.IMAGE, [60]),  # one sample at a time: every input at once
    ("integrated_gradients", Modality.IMAGE, [40, 20]),  # 4 path steps per input: 50 inputs fit, 2 whole steps
    ("wachter", Modality.IMAGE, [20] * 3),  # batch sensitive: Quantus' calls, one step of the N inputs each
])
def test_re_explanation_calls_are_sized_by_the_explainers_call_rows(method, modality, calls, monkeypatch):
    """The stability metrics re-explain as many inputs per call as the explainer's ``call_rows`` lets fit in
    ``chunk_size`` rows: no forward exceeds the chunk, but a gradient-free explainer's step stays whole (before,
    occlusion counted one row per input and forwarded all 60 inputs x 49 windows at once; LIME counted its
    ``n_samples`` and made 57 calls of one input). Only a
    back-propagated forward of ``POOL_KERNEL_ROWS`` rows or more goes through the exact pooling kernels; gradient-free
    methods use them inside the network's forwards. Scores stay plain Quantus's. (20 samples: steps of fewer than 16 get
    Quantus' calls whatever the explainer: ``test_small_batches_score_plain_quantus_bit_for_bit``.)"""
    from xaibench.metrics.fast import stability

    n = BATCH_INDEPENDENT_ROWS + 4  # steps large enough to share calls
    ctx = _explainer_context(method, modality, n)
    sizes, modes = [], []
    block, kernels = stability.ChunkedStability._explain_block, stability.exact_pool_kernels
    monkeypatch.setattr(stability.ChunkedStability, "_explain_block", lambda self, model, network, steps, y: (
        sizes.append(steps.shape[0] * steps.shape[1]), block(self, model, network, steps, y))[1])
    forwards, pooled = stability.exact_pool_forwards, []
    monkeypatch.setattr(stability, "exact_pool_kernels", lambda network: _Recorded(kernels(network), modes))
    monkeypatch.setattr(stability, "exact_pool_forwards", lambda network: _Recorded(forwards(network), pooled))
    monkeypatch.setattr(stability, "POOL_KERNEL_ROWS", 50)
    spec, params, chunk = METRICS.get("max_sensitivity"), {"nr_samples": 3}, 200
    counter = ForwardCounter(ctx.model)
    fast = score(spec, params, replace(ctx, model=counter, engine="fast", chunk_size=chunk), SEED)
    plain = score(spec, params, replace(ctx, engine="quantus"), SEED)
    if ctx.explainer.batch_sensitive or method == "occlusion":  # Quantus' calls: its bits (occlusion: 1.3e-5
        np.testing.assert_array_equal(fast.values, plain.values)  # relative on the CI cnn when steps were split)
    else:
        np.testing.assert_allclose(fast.values, plain.values, rtol=1e-6, atol=1e-6)
    assert sizes == calls
    cost = ctx.explainer.call_rows(modality, tuple(ctx.x.shape[1:]))
    assert counter.largest <= max(chunk, cost.largest_forward(1 if method != "occlusion" else n))
    if method == "lime":  # the surrogates forward the chunk's rows, not perturbations_per_eval (64), at a time
        assert counter.largest == chunk
    assert bool(modes) == (method == "integrated_gradients")  # 192-row path forwards; SmoothGrad's are 3 rows
    # Gradient-free methods pool exactly inside the network's forwards only (the tiny cnn pools; the mlp does not).
    assert [mode is not None for mode in pooled] == {"occlusion": [True], "lime": [False]}.get(method, [])


def test_explainers_that_do_not_declare_call_rows_get_the_conservative_guess():
    """A bring-your-own explainer (any object with ``explain``) or an ``Explainer`` subclass that does not declare
    ``call_rows``: ``n_steps`` or ``n_samples`` rows per input, else one (what the adapter assumed for everyone)."""

    class Duck:
        n_samples = 7

        def explain(self, model, x, target):  # pragma: no cover - never called here
            raise AssertionError

    func = make_explain_func(Duck(), Modality.TABULAR, (10,))
    assert func.call_rows == CallRows(per_input=7) and func.rows_per_input == 7 and not func.backpropagates
    saliency = make_explain_func(EXPLAINERS.create("saliency"), Modality.TABULAR, (10,))
    assert saliency.call_rows == CallRows(per_input=1) and saliency.backpropagates


def test_exact_pool_forwards_pool_inside_the_networks_forwards_only():
    """``exact_pool_forwards``: the exact kernels run the network's own pooling (torch's bits), not the pooling of
    code around the forward, and nothing is left hooked afterwards."""
    from xaibench.metrics.fast._pool_kernels import exact_pool_forwards

    torch.manual_seed(0)
    network = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(12, 2)).eval()
    x = torch.randn(5, 2, 4, 4)
    with torch.no_grad():
        expected = network(x)
        with exact_pool_forwards(network) as mode:
            torch.nn.functional.avg_pool2d(x, 2)  # outside the forward: torch's
            assert mode.handled == 0
            got = network(x)
            assert mode.handled == 1
        assert torch.equal(got, expected)
        assert not network._forward_pre_hooks and not network._forward_hooks


def test_inputs_per_call_keep_the_largest_forward_and_the_working_memory_in_bounds():
    from xaibench.metrics.fast.stability import inputs_per_call

    assert inputs_per_call(CallRows(per_input=32), rows=1024, total=320) == 32  # IG: one step of 32 inputs
    assert inputs_per_call(CallRows(per_input=49), rows=1024, total=320) == 20  # occlusion's windows
    assert inputs_per_call(CallRows(per_input=2048), rows=1024, total=320) == 1  # one input must fit
    assert inputs_per_call(CallRows(per_input=0, per_call=25), rows=1024, total=320) == 320  # per-sample loops
    lime = CallRows(per_input=0, per_call=64, elements_per_input=8 * 200 * 12544)  # 224x224 in 2x2 patches
    assert inputs_per_call(lime, rows=32, total=320) == 1
    lime = CallRows(per_input=0, per_call=64, elements_per_input=8 * 200 * 30)  # 30 features: 2**21 // 48,000
    assert inputs_per_call(lime, rows=1024, total=320) == 43


def test_re_explaining_leaves_the_global_random_states_as_it_found_them():
    """The metrics' ``explain_func`` restores numpy's, ``random``'s and torch's global states (LIME's sklearn Lasso
    draws from numpy's): a metric's own draws never depend on how many explainer calls came before them."""
    ctx = _explainer_context("lime", Modality.TABULAR)
    explain_func = make_explain_func(ctx.explainer, Modality.TABULAR, tuple(ctx.x.shape[1:]))
    np.random.seed(7)
    random.seed(7)
    torch.manual_seed(7)
    explain_func(model=ctx.model, inputs=ctx.x.numpy(), targets=ctx.targets.numpy())
    assert (np.random.random(), random.random(), torch.rand(1).item()) == (
        np.random.RandomState(7).random_sample(), random.Random(7).random(),
        torch.rand(1, generator=torch.Generator().manual_seed(7)).item())


def test_a_guard_inside_a_guard_keeps_nothing_and_the_outer_one_restores():
    """The fast engine keeps the global states once around all re-explanations; the per-call guards inside do
    nothing (saving numpy's state is the cost), and the outer guard still restores every stream."""
    expected = np.random.RandomState(3).random_sample(3)
    np.random.seed(3)
    with global_draws_kept():
        first = np.random.random()
        with global_draws_kept():
            np.random.random()
        assert np.random.random() == expected[2] and first == expected[0]  # the inner block did not rewind
    assert np.random.random() == expected[0]


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
@pytest.mark.parametrize("modality", [Modality.TABULAR, Modality.IMAGE, Modality.TEXT])
def test_summed_target_gradients_are_captums_gradients_bit_for_bit(method, modality):
    """The fast engine's re-explanations (one backward seed per forward) give captum's maps exactly."""
    ctx = _context(modality, method)
    forward = EmbeddedForward(ctx.model) if modality is Modality.TEXT else ctx.model
    x = ctx.model.embed(ctx.x).detach() if modality is Modality.TEXT else ctx.x
    with without_diagnostics():
        expected = ctx.explainer.explain(forward, x, ctx.targets).attributions
        with summed_gradients():
            got = ctx.explainer.explain(forward, x, ctx.targets).attributions
    assert torch.equal(got, expected) and expected.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("approximation", ["gausslegendre", "riemann_trapezoid"])
def test_ig_path_points_are_captums_path_bit_for_bit(dtype, approximation):
    """``path_points`` (one broadcast) gives captum's ``cat([x' + a (x - x') for a in alphas])`` bit for bit, with a
    zero and a random baseline; other dtypes than float32/float64 take captum's loop."""
    from captum.attr._utils.approximation_methods import approximation_parameters

    from xaibench.explainers.gradient.integrated_gradients import path_points

    alphas = tuple(approximation_parameters(approximation)[1](32))
    generator = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(7, 1, 8, 8, generator=generator)).to(dtype)
    for baselines in (torch.zeros_like(x), torch.randn(7, 1, 8, 8, generator=generator).to(dtype)):
        expected = torch.cat([baselines + alpha * (x - baselines) for alpha in alphas], dim=0)
        got = path_points(baselines, x - baselines, alphas)
        assert got.shape == (32 * 7, 1, 8, 8) and got.dtype == dtype
        bits = {torch.float32: torch.int32, torch.float64: torch.int64, torch.bfloat16: torch.int16}[dtype]
        assert torch.equal(got.view(bits), expected.view(bits))  # signed zeros included


def _quantus_assert_error(x: np.ndarray, a: np.ndarray) -> str | None:
    try:
        quantus_asserts.assert_attributions(x_batch=x, a_batch=a)
    except AssertionError as error:
        return str(error)
    return None


def test_re_explanations_split_a_step_that_exceeds_the_chunk_by_inputs_and_equal_plain_quantus():
    """IG with 4 path steps on N=20 inputs is 80 forward rows per perturbation step: with a chunk of 36 rows each
    call re-explains 9 inputs (36 rows; the remainder 2 inputs), every input's path in one call, all inputs once."""
    ctx = _context(Modality.TABULAR, "integrated_gradients", n=20)
    spec, params = METRICS.get("max_sensitivity"), SMALL["max_sensitivity"]
    plain = score(spec, params, replace(ctx, engine="quantus"), SEED)
    rows: list[int] = []
    hook = ctx.model.register_forward_hook(lambda module, inputs, output: rows.append(len(inputs[0])))
    try:
        fast = score(spec, params, replace(ctx, engine="fast", chunk_size=36), SEED)
    finally:
        hook.remove()
    np.testing.assert_allclose(fast.values, plain.values, rtol=1e-6, atol=1e-6)
    assert rows == [36, 36, 8] * params["nr_samples"]  # the model's forwards: IG calls of inputs x 4 path steps


@pytest.mark.parametrize("bad", ["zeros", "ones", "uniform", "negative", "none"])
def test_vectorised_attribution_asserts_raise_what_quantus_raises_at_the_first_bad_step(bad):
    rng = np.random.default_rng(0)
    steps = rng.normal(size=(4, N, 1, 6)).astype(np.float32)
    maps = rng.normal(size=(4, N, 1, 6)).astype(np.float32)
    maps[0, 0, 0, 0] = np.nan  # NaN never makes a step uniform (Quantus: distinct floats in a set)
    fill = {"zeros": 0.0, "ones": 1.0, "uniform": 0.25, "negative": None, "none": None}[bad]
    if fill is not None:
        maps[2] = fill
        maps[3] = fill
    elif bad == "negative":
        maps[2] = -np.abs(maps[2]) - 0.1
    expected = [_quantus_assert_error(x, a) for x, a in zip(steps, maps)]
    expected = next((message for message in expected if message is not None), None)
    assert (expected is None) == (bad == "none")
    if expected is None:
        _assert_attributions(steps, maps)
    else:
        with pytest.raises(AssertionError) as raised:
            _assert_attributions(steps, maps)
        assert str(raised.value) == expected


def test_unknown_engine_is_refused():
    ctx = _context(Modality.TABULAR, "saliency")
    with pytest.raises(ValueError, match="unknown scoring engine"):
        score(METRICS.get("pixel_flipping"), {}, replace(ctx, engine="turbo"), SEED)


class _QuantusLike:
    """The two things ChunkedForward takes from Quantus' model wrapper: the network to call and its device."""

    def __init__(self, network: nn.Module) -> None:
        self.network, self.device = network, "cpu"

    def get_softmax_arg_model(self) -> nn.Module:
        return self.network


class _LimitedMemory(nn.Module):
    """A linear layer that raises CUDA's out-of-memory error above ``limit`` rows (as a full GPU would)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.linear = limit, nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.linear(x)


def test_chunks_halve_on_out_of_memory_and_give_the_same_outputs():
    from xaibench.metrics.fast import ChunkedForward

    torch.manual_seed(0)
    network = _LimitedMemory(limit=32).eval()
    steps = [np.random.default_rng(i).normal(size=(16, 3)).astype(np.float32) for i in range(6)]  # 96 rows
    targets = np.arange(16) % 2
    forward = ChunkedForward(_QuantusLike(network), chunk_size=96, targets=targets)
    got = forward.run(iter(steps))
    assert forward.backoffs >= 2 and forward.chunk_size <= 32
    with torch.no_grad():
        expected = np.stack([network.linear(torch.as_tensor(s)).numpy()[np.arange(16), targets] for s in steps])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_chunks_hold_at_most_chunk_elements_input_elements(monkeypatch):
    """Large inputs get fewer rows per forward than ``chunk_size`` (whole steps, never below one step)."""
    from xaibench.metrics.fast import _forward

    monkeypatch.setattr(_forward, "CHUNK_ELEMENTS", 120)  # 40 rows of 3 features
    rows = []
    network = nn.Linear(3, 2).eval()
    network.register_forward_hook(lambda module, inputs, output: rows.append(len(inputs[0])))
    steps = [np.random.default_rng(i).normal(size=(16, 3)).astype(np.float32) for i in range(6)]
    forward = _forward.ChunkedForward(_QuantusLike(network), chunk_size=1024, targets=np.arange(16) % 2)
    forward.run(iter(steps))
    assert rows == [32, 32, 32] and forward.chunk_size == 40
    assert _forward.chunk_rows(1024, 3) == 40 and _forward.chunk_rows(4, 3) == 4 and _forward.chunk_rows(8, 10**6) == 1


@pytest.mark.parametrize(("n", "forwards"), [(5, [5] * 7), (BATCH_INDEPENDENT_ROWS, [7 * BATCH_INDEPENDENT_ROWS])])
def test_steps_of_fewer_than_16_samples_are_forwarded_one_at_a_time(n, forwards):
    """Below ``BATCH_INDEPENDENT_ROWS`` rows torch's CPU kernels round a row otherwise than in a larger forward, so
    the fast metrics forward steps of fewer samples alone, as Quantus does (its bits); from 16 samples on, steps
    share forwards (FaithfulnessCorrelation: the input and 6 perturbed steps of ``n`` rows)."""
    ctx = _context(Modality.TABULAR, "saliency", n=n)
    rows: list[int] = []
    hook = ctx.model.register_forward_hook(lambda module, inputs, output: rows.append(len(inputs[0])))
    try:
        fast = score(METRICS.get("faithfulness_correlation"), {"nr_runs": 6}, replace(ctx, engine="fast"), SEED)
    finally:
        hook.remove()
    assert rows[1:] == forwards  # after the adapter's constant-output screen (its own forward)
    plain = score(METRICS.get("faithfulness_correlation"), {"nr_runs": 6}, replace(ctx, engine="quantus"), SEED)
    np.testing.assert_array_equal(fast.values, plain.values)


def test_random_subsets_make_quantus_choice_draws_in_order():
    """FaithfulnessCorrelation's subsets: the same indices and the same RNG state after as Quantus' ``choice`` loop."""
    from xaibench.metrics.fast.faithfulness import random_subsets

    np.random.seed(7)
    expected = np.stack([np.random.choice(37, 9, replace=False) for _ in range(6)])
    after = np.random.rand()
    np.random.seed(7)
    np.testing.assert_array_equal(random_subsets(6, 37, 9), expected)
    assert np.random.rand() == after
    with pytest.raises(ValueError, match="larger sample"):
        random_subsets(2, 3, 4)


@pytest.mark.parametrize("baseline", ["uniform", "mean", 0.5])
def test_stacked_perturbations_equal_quantus_repeated_calls(baseline):
    """MonotonicityCorrelation's repeats in one call: same arrays, same draws (``uniform`` draws per row)."""
    import functools

    import quantus

    from xaibench.metrics.fast.faithfulness import repeated_perturbations

    x = np.random.default_rng(0).normal(size=(4, 12))
    indices = np.array([[0, 3], [1, 2], [5, 11], [7, 7]])
    perturb = functools.partial(quantus.functions.perturb_func.batch_baseline_replacement_by_indices,
                                perturb_baseline=baseline)
    np.random.seed(3)
    expected = [perturb(arr=x, indices=indices) for _ in range(3)]
    after = np.random.rand()
    np.random.seed(3)
    got = repeated_perturbations(perturb, x, indices, 3)
    assert np.random.rand() == after
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("baseline", ["uniform", "mean", 0.5])
@pytest.mark.parametrize("max_rows", [None, 4, 9])
def test_stacked_steps_equal_quantus_step_by_step_calls(baseline, max_rows):
    """FaithfulnessEstimate's steps in blocks of calls (at most ``max_rows`` rows, equal widths): same arrays, draws."""
    import functools

    import quantus

    from xaibench.metrics.fast.faithfulness import stacked_perturbations

    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 12))
    steps = [rng.integers(0, 12, size=(4, 2)) for _ in range(5)] + [rng.integers(0, 12, size=(4, 1))]  # a last, narrower step
    perturb = functools.partial(quantus.functions.perturb_func.batch_baseline_replacement_by_indices,
                                perturb_baseline=baseline)
    np.random.seed(3)
    expected = [perturb(arr=x, indices=indices) for indices in steps]
    after = np.random.rand()
    np.random.seed(3)
    got = list(stacked_perturbations(perturb, x, steps, max_rows))
    assert np.random.rand() == after and len(got) == len(steps)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def test_other_perturbations_are_called_once_per_repeat():
    from xaibench.metrics.fast.faithfulness import repeated_perturbations

    calls = []

    def noisy(arr, indices):  # a user's function: draws depend on the call pattern, so it is not stacked
        calls.append(len(arr))
        out = arr.copy()
        out[np.arange(len(arr))[:, None], indices] = np.random.normal(size=indices.shape)
        return out

    x, indices = np.zeros((3, 5)), np.array([[0], [1], [2]])
    got = repeated_perturbations(noisy, x, indices, 4)
    assert calls == [3] * 4 and len(got) == 4 and not np.array_equal(got[0], got[1])


@pytest.mark.parametrize("baseline", ["uniform", "mean", 0.5])
@pytest.mark.parametrize("max_rows", [None, 4, 9])
def test_cumulative_steps_equal_quantus_step_by_step_calls(baseline, max_rows):
    """PixelFlipping's cumulative steps, gathered into blocks: Quantus' calls on the previous step, same draws."""
    import functools

    import quantus

    from xaibench.metrics.fast.faithfulness import cumulative_perturbations

    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 12)).astype(np.float32)
    order = np.argsort(rng.normal(size=(4, 12)), axis=1)
    steps = [order[:, i:i + 5] for i in range(0, 12, 5)]  # widths 5, 5, 2
    perturb = functools.partial(quantus.functions.perturb_func.batch_baseline_replacement_by_indices,
                                perturb_baseline=baseline)
    np.random.seed(3)
    expected, current = [], x
    for indices in steps:
        current = perturb(arr=current, indices=indices)
        expected.append(current)
    after = np.random.rand()
    np.random.seed(3)
    blocks = list(cumulative_perturbations(perturb, x, steps, max_rows))
    assert np.random.rand() == after
    assert [len(b) for b in blocks] == ([3] if max_rows is None else [1, 1, 1] if max_rows == 4 else [2, 1])
    np.testing.assert_array_equal(np.concatenate(blocks), np.stack(expected))


@pytest.mark.parametrize("name", ["max_sensitivity", "local_lipschitz_estimate", "relative_output_stability"])
def test_pooling_cnn_re_explanations_take_the_exact_pool_kernels_and_stay_bitwise(name, monkeypatch):
    """A cnn that average-pools (the tiny cnn's 8x8 -> 4x4 adaptive pool) re-explains through the exact pooling kernels
    (``metrics/fast/_pool_kernels.py``): scores bit for bit plain Quantus's with one input per call. (IG's maps fold
    the pooling into the last layer, ``_folded_head.py``, tested below; switched off here to exercise the kernels.)"""
    import contextlib

    from xaibench.metrics.fast import stability

    monkeypatch.setattr(stability, "folded_head", lambda network: contextlib.nullcontext())
    modes: list = []
    kernels = stability.exact_pool_kernels
    monkeypatch.setattr(stability, "exact_pool_kernels", lambda network: _Recorded(kernels(network), modes))
    monkeypatch.setattr(stability, "POOL_KERNEL_ROWS", 1)  # one input per call: IG's 8-row path forwards
    ctx = _context(Modality.IMAGE, "integrated_gradients")
    spec, params = METRICS.get(name), SMALL[name]
    plain = score(spec, params, replace(ctx, engine="quantus"), SEED)
    fast = score(spec, params, replace(ctx, engine="fast", chunk_size=1), SEED)
    np.testing.assert_array_equal(fast.values, plain.values)
    assert modes and all(mode is not None and mode.handled > 0 for mode in modes)


class _Recorded:
    """Enter ``context`` and record what it yields in ``sink``."""

    def __init__(self, context, sink: list) -> None:
        self.context, self.sink = context, sink

    def __enter__(self):
        value = self.context.__enter__()
        self.sink.append(value)
        return value

    def __exit__(self, *exc):
        return self.context.__exit__(*exc)


def _suite_like_cnn(pool: nn.Module, channels: int = 1, classes: int = 4) -> nn.Module:
    """The suite's cnn in small: two 3x3 conv blocks, average pooling, ``Flatten``, ``Linear``."""
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                         pool, nn.Flatten(), nn.Linear(6 * 16, classes)).eval()


def _input_gradient(network: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    inputs = x.detach().requires_grad_()
    logits = network(inputs)
    return torch.autograd.grad(logits.gather(1, target[:, None]).sum(), inputs)[0]


@pytest.mark.parametrize("pool", [nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(4), nn.AvgPool2d(2, divisor_override=3)],
                         ids=["avg_pool", "adaptive", "divisor_3"])
def test_folded_head_gives_the_pooled_networks_input_gradients_bit_for_bit(pool):
    """Pooling + ``Flatten`` + ``Linear`` folded into one ``Linear`` (``_folded_head.py``): the input gradient of the
    summed target logits is the unfolded network's bit for bit (torch's pooling and the exact pooling kernels), the
    logits differ by rounding only; restored on exit."""
    from xaibench.metrics.fast._folded_head import folded_head
    from xaibench.metrics.fast._pool_kernels import exact_pool_kernels

    network = _suite_like_cnn(pool, channels=2)
    x, target = torch.randn(40, 2, 8, 8), torch.arange(40) % 4
    plain = _input_gradient(network, x, target)
    with exact_pool_kernels(network):
        assert torch.equal(_input_gradient(network, x, target), plain)
    with folded_head(network) as head:
        folded = _input_gradient(network, x, target)
        folded_logits = network(x)
        # maps the pooling does not tile exactly (9x9: 4x4 outputs, a row and column left out or overlapping
        # windows) run the modules as they are
        odd = torch.randn(3, 2, 9, 9)
        torch.testing.assert_close(network(odd), nn.Sequential(*network)(odd), rtol=0, atol=0)
    assert head is not None and head.handled == 2
    assert "forward" not in vars(network)
    assert torch.equal(folded, plain) and folded.stride() == plain.stride()
    torch.testing.assert_close(folded_logits, network(x), rtol=1e-6, atol=1e-6)


def test_only_plain_sequential_tails_without_hooks_are_folded():
    from xaibench.metrics.fast._folded_head import foldable

    assert foldable(_suite_like_cnn(nn.AvgPool2d(2)))
    assert not foldable(testing.tiny_mlp(10, 3))  # no pooling
    assert not foldable(nn.Sequential(*_suite_like_cnn(nn.AvgPool2d(2)), nn.Softmax(dim=1)))  # not the last layer
    assert not foldable(_suite_like_cnn(nn.MaxPool2d(2)))
    hooked = _suite_like_cnn(nn.AvgPool2d(2))
    hooked[-1].register_forward_hook(lambda module, args, output: output * 2)
    assert not foldable(hooked)

    class ScaledPool(nn.AvgPool2d):  # a subclass may pool otherwise: its forward would be skipped by the fold
        def forward(self, x):
            return super().forward(x) * 3

    assert not foldable(_suite_like_cnn(ScaledPool(2)))
    patched = _suite_like_cnn(nn.AvgPool2d(2))
    patched[-1].forward = lambda x: nn.Linear.forward(patched[-1], x) * 2  # set on the instance: not the class'
    assert not foldable(patched)
    everywhere = nn.modules.module.register_module_forward_hook(lambda module, args, output: None)
    try:  # a hook on every module would miss (or could not change) the outputs of the modules the fold skips
        assert not foldable(_suite_like_cnn(nn.AvgPool2d(2)))
    finally:
        everywhere.remove()
    assert foldable(_suite_like_cnn(nn.AvgPool2d(2)))


def test_folded_head_leaves_other_threads_forwards_unfolded():
    """While one thread re-explains through the folded head, another thread calling the same network (a caller's
    thread pool scoring it) gets the unfolded logits bit for bit, not the folded ones' rounding."""
    import threading

    from xaibench.metrics.fast._folded_head import folded_head

    network = _suite_like_cnn(nn.AvgPool2d(2), channels=2)
    x = torch.randn(40, 2, 8, 8)
    plain, seen = network(x), []
    with folded_head(network) as head:
        worker = threading.Thread(target=lambda: seen.append(network(x)))
        worker.start()
        worker.join()
        network(x)
    assert head.handled == 1 and torch.equal(seen[0], plain)  # only this thread's forward folded


def test_folded_head_runs_a_module_whose_forward_is_patched_as_it_is():
    """A convolution whose ``forward`` is set on the instance may return a tensor it keeps (here its first output,
    again): the ReLU after it runs as a module, not in place on what the convolution keeps."""
    from xaibench.metrics.fast._folded_head import folded_head

    network = _suite_like_cnn(nn.AvgPool2d(2), channels=2)
    first, kept = network[0], {}

    def keeping(x):  # returns the output of its first call again, so an in-place ReLU would change what it keeps
        kept.setdefault("out", nn.Conv2d.forward(first, x))
        return kept["out"]

    first.forward = keeping
    x = torch.randn(6, 2, 8, 8)
    with torch.no_grad():
        network(x)
    before = kept["out"].clone()
    with folded_head(network) as head:
        with torch.no_grad():
            network(x)
    assert head.handled == 1 and torch.equal(kept["out"], before)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_stability_scores_with_the_folded_head_keep_every_bit(method, monkeypatch):
    """Saliency and IG stability re-explanations on a pooling cnn, steps merged into calls (20 samples): the folded
    head is used and changes no bit of any score (against the same engine without it); the scores equal plain
    Quantus's (bit for bit with saliency; IG's path sums over merged steps: 1e-6). A model that explains probabilities
    is not folded (its gradient reads the logits' values)."""
    import contextlib

    from xaibench.metrics.fast import stability

    folds: list = []
    fold = stability.folded_head
    explainer = EXPLAINERS.create(method, CHEAP_EXPLAINERS.get(method, {}))
    ctx = testing.context(_suite_like_cnn(nn.AdaptiveAvgPool2d(4), classes=2), Modality.IMAGE,
                          testing.bar_images(20)[0], explainer)
    for name in ("max_sensitivity", "relative_input_stability", "relative_output_stability"):
        spec, params = METRICS.get(name), {"nr_samples": 3}
        plain = score(spec, params, replace(ctx, engine="quantus"), SEED)
        monkeypatch.setattr(stability, "folded_head", lambda network: _Recorded(fold(network), folds))
        fast = score(spec, params, replace(ctx, engine="fast"), SEED)
        monkeypatch.setattr(stability, "folded_head", lambda network: contextlib.nullcontext())
        unfolded = score(spec, params, replace(ctx, engine="fast"), SEED)
        assert np.isfinite(fast.values).all()
        assert fast.values.tobytes() == unfolded.values.tobytes()
        if method == "saliency":
            np.testing.assert_array_equal(fast.values, plain.values)
        np.testing.assert_allclose(fast.values, plain.values, rtol=1e-6, atol=1e-6)
    assert len(folds) == 3 and all(head is not None and head.handled > 0 for head in folds)
    explain = make_explain_func(ctx.explainer, ctx.modality, tuple(ctx.x.shape[1:]), explain_output="proba")
    assert not explain.target_gradient_only


def test_folded_relu_head_backward_is_autograds_and_skips_the_product_only_for_one_hot_seeds():
    """``_ReluFoldedLinear``'s backward equals autograd's ``linear(relu(z))`` backward bit for bit for any seed; the
    product with the weight is skipped only for exact one-hot seeds with finite weights (``_spread``), the target
    rows broadcast over their period (IG's path steps repeat the targets every N rows)."""
    from xaibench.metrics.fast._folded_head import _ReluFoldedLinear, _spread

    torch.manual_seed(5)
    z, weight, bias = torch.randn(12, 2, 4, 4), torch.randn(3, 32), torch.randn(3)
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 2, 1, 2] * 3), 3).float()
    for seed, in_place in itertools.product((one_hot, torch.randn(12, 3), 2 * one_hot), (False, True)):
        leaf = z.clone().requires_grad_()
        reference = torch.autograd.grad(torch.nn.functional.linear(torch.relu(leaf).flatten(1), weight, bias), leaf,
                                        seed)[0]
        leaf = z.clone().requires_grad_()
        fresh = leaf * 1.0  # a new tensor, as a convolution's output (in place: overwritten by the ReLU)
        logits, active = _ReluFoldedLinear.apply(fresh, weight, bias, in_place)
        assert (active is fresh) == in_place and torch.equal(active, torch.relu(z))
        fused = torch.autograd.grad(logits, leaf, seed)[0]
        assert torch.equal(fused, reference) and fused.stride() == reference.stride()
    spread = _spread(one_hot, weight)
    assert spread.shape == (3, 4, 32) and spread.stride()[0] == 0
    assert torch.equal(spread.reshape(12, 32), one_hot.mm(weight))
    assert _spread(torch.randn(12, 3), weight) is None and _spread(2 * one_hot, weight) is None
    assert _spread(one_hot + torch.nn.functional.one_hot(torch.zeros(12, dtype=torch.long), 3), weight) is None
    assert _spread(one_hot, torch.full((3, 32), float("inf"))) is None


@pytest.mark.parametrize("conv", [nn.Conv2d(3, 5, 3, padding=1), nn.Conv2d(3, 6, 2, stride=2, bias=False, groups=3),
                                  nn.Conv2d(3, 4, 3, padding=2, dilation=2)], ids=["padded", "strided_grouped", "dilated"])
def test_relu_then_convolution_backward_is_autograds_bit_for_bit(conv):
    """``_ReluConv2d`` (the folded head's ReLU in place before a convolution, its step written into the
    convolution's input gradient): the convolution's output and the input gradient are autograd's bit for bit."""
    from xaibench.metrics.fast._folded_head import _ReluConv2d

    torch.manual_seed(7)
    z, seed = torch.randn(17, 3, 8, 8), None
    leaf = z.clone().requires_grad_()
    reference_out = conv(torch.relu(leaf * 1.0))
    seed = torch.randn_like(reference_out)
    reference = torch.autograd.grad(reference_out, leaf, seed)[0]
    leaf = z.clone().requires_grad_()
    fresh = leaf * 1.0
    out, active = _ReluConv2d.apply(fresh, conv)
    assert active is fresh and torch.equal(out, reference_out)
    fused = torch.autograd.grad(out, leaf, seed)[0]
    assert torch.equal(fused, reference) and fused.stride() == reference.stride()


def _folded_input_gradients(network: nn.Module, x: torch.Tensor, target: torch.Tensor):
    """The input gradient and logits of ``network`` unfolded, then through the exact pooling kernels and the folded
    head (as the fast engine enters them), and the head."""
    from xaibench.metrics.fast._folded_head import folded_head
    from xaibench.metrics.fast._pool_kernels import exact_pool_kernels

    plain, plain_logits = _input_gradient(network, x, target), network(x)
    with exact_pool_kernels(network), folded_head(network) as head:
        folded, folded_logits = _input_gradient(network, x, target), network(x)
    assert "forward" not in vars(network)
    return plain, folded, plain_logits, folded_logits, head


def test_folded_head_of_a_sequential_pooling_to_one_pixel_is_torchs_mean_bit_for_bit():
    """``nn.AdaptiveAvgPool2d(1)`` on 7x7 maps: torch pools with ``mean`` (its backward: ``grad / 49``), so the
    exact pooling modules leave it to torch and the folded weight divides once by 49 (both used ``/ 7 / 7``)."""
    from xaibench.metrics.fast._pool_kernels import exact_pool_kernels

    torch.manual_seed(4)
    network = nn.Sequential(nn.Conv2d(2, 5, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                            nn.Linear(5, 3)).eval()
    x, target = torch.randn(40, 2, 7, 7), torch.arange(40) % 3
    plain, folded, plain_logits, folded_logits, fold = _folded_input_gradients(network, x, target)
    assert fold.handled == 2 and torch.equal(folded, plain)
    torch.testing.assert_close(folded_logits, plain_logits, rtol=1e-5, atol=1e-5)  # a 245-term product: rounding
    with exact_pool_kernels(network) as pools:
        assert torch.equal(_input_gradient(network, x, target), plain) and torch.equal(network(x), plain_logits)
    assert pools.handled == 0
