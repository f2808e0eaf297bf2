"""What the numbers mean: the explained output, model-independent controls, sign handling, relative stability."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
import quantus
import torch

from xaibench.errors import UserError
from xaibench.explainers.output import ExplainedOutput, confident_log_softmax, explained_output, log_odds
from xaibench.explainers.base import EmbeddedForward, Explainer
from xaibench.explainers.seeding import cell_seed, known_tokens
from xaibench.metrics import functional, testing
from xaibench.engine.stages import explain_arrays
from xaibench.metrics.faithfulness import EVERY_NEIGHBOUR
from xaibench.metrics.quantus_adapter import make_explain_func, score, token_table
from xaibench.metrics.randomisation import SmoothMPRTWithExplainFunc
from xaibench.metrics.stability import NUMERICALLY_ZERO, relative_change
from xaibench.models.zoo.text_transformer import TinyTextTransformer
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.types import Explanation, Modality, Status


# --- explained output -----------------------------------------------------------------------------------------
def test_log_softmax_output_equals_the_float64_reference_and_survives_confident_margins():
    logits = torch.tensor([[40.0, 0.0, 1.0], [0.5, 1.0, 2.0]])
    out = confident_log_softmax(logits).double().numpy()
    z = logits.double().numpy()
    reference = -np.log1p(np.exp(z[:, None, :] - z[:, :, None]).sum(-1) - 1.0)  # -log(sum_j e^(z_j - z_k))
    reference[0, 0] = -np.log1p(np.exp(-40.0) + np.exp(-39.0))  # exact where 1 + e^-40 rounds in float64
    np.testing.assert_allclose(out, reference, rtol=1e-6)
    assert torch.log_softmax(logits, dim=-1)[0, 0] == 0.0  # float32 torch loses the margin...
    assert out[0, 0] < 0.0  # ...the suite's output keeps it: perturbations that shrink it still register


def test_log_odds_is_the_target_against_its_competitors_and_does_not_saturate():
    logits = torch.tensor([[90.0, 0.0, 1.0], [0.5, 1.0, 2.0]], requires_grad=True)
    z = logits.detach().double().numpy()
    expected = np.stack([z[:, k] - np.log(np.exp(np.delete(z, k, axis=1)).sum(1)) for k in range(3)], axis=1)
    np.testing.assert_allclose(log_odds(logits).detach().double().numpy(), expected, rtol=1e-6)
    log_odds(logits)[0, 0].backward()
    torch.testing.assert_close(logits.grad[0], torch.tensor([1.0, -1 / (1 + np.e), -np.e / (1 + np.e)]))
    logits.grad = None
    confident_log_softmax(logits)[0, 0].backward()
    assert logits.grad[0].abs().max() < 1e-37  # log p_t's gradient ~ e^-margin: underflows float32


def test_explained_output_is_transparent_except_for_the_scores():
    text = testing.TinyTextModel()
    wrapped = explained_output(text, "probability")
    ids = torch.tensor([[1, 2, 3, 0, 0, 0, 0, 0]])
    torch.testing.assert_close(wrapped(ids), torch.softmax(text(ids), -1))
    torch.testing.assert_close(wrapped.forward_embedded(text.embed(ids)), torch.softmax(text(ids), -1))
    assert wrapped.pad_id == 0 and wrapped.embed is not None
    dense = explained_output(testing.tiny_mlp(), "log_softmax")
    assert isinstance(dense, ExplainedOutput) and not hasattr(dense, "forward_embedded")  # input kinds unchanged
    assert explained_output(text, "logit") is text


def test_explain_output_changes_what_saliency_explains():
    torch.manual_seed(0)
    model = testing.tiny_mlp(4, 3).eval()
    x, target = torch.randn(2, 4), torch.tensor([0, 2])
    saliency = EXPLAINERS.create("saliency", {"abs": False})
    logit = saliency.explain(explained_output(model, "logit"), x, target).attributions
    logp = saliency.explain(explained_output(model, "log_softmax"), x, target).attributions
    xr = x.clone().requires_grad_(True)
    grad = torch.autograd.grad(torch.log_softmax(model(xr), -1).gather(1, target[:, None]).sum(), xr)[0]
    torch.testing.assert_close(logp, grad)
    assert not torch.allclose(logit, logp)


# --- model-independent controls ---------------------------------------------------------------------------------
def test_random_control_depends_only_on_the_sample_and_the_cell_seed():
    x = torch.randn(3, 1, 6, 6)
    control = EXPLAINERS.create("random")
    torch.manual_seed(1)
    first = control.explain(testing.tiny_cnn(2), x, torch.zeros(3, dtype=torch.long)).attributions
    torch.manual_seed(43)  # what Quantus does before re-explaining on a randomised model
    again = control.explain(testing.tiny_cnn(2), x[1:], torch.zeros(2, dtype=torch.long)).attributions
    torch.testing.assert_close(first[1:], again, rtol=0, atol=0)
    with cell_seed(1):
        other = control.explain(testing.tiny_cnn(2), x, torch.zeros(3, dtype=torch.long)).attributions
    assert not torch.equal(first, other)


@pytest.fixture(scope="module")
def bars():
    x, y, masks = testing.bar_images(120, size=8, seed=0)
    torch.manual_seed(0)  # the initial weights
    model = testing.train(testing.tiny_cnn(2), x[:100], y[:100], steps=150, lr=0.02, seed=0)
    return model, x[100:112], masks[100:112]


def test_mprt_fails_model_free_controls_exactly_and_passes_saliency(bars):
    model, x, _ = bars
    values = {}
    for method in ("random", "sobel", "saliency"):
        ctx = testing.context(model, Modality.IMAGE, x, EXPLAINERS.create(method), n_classes=2)
        result = score(METRICS.get("mprt"), {}, ctx, seed=0)
        assert result.status == [Status.OK.value] * len(x), result.message
        values[method] = result.values
    np.testing.assert_allclose(values["random"], 1.0, rtol=0, atol=1e-12)  # Spearman of identical maps
    np.testing.assert_allclose(values["sobel"], 1.0, rtol=0, atol=1e-12)
    assert values["saliency"].mean() < 0.6


def test_smooth_mprt_explains_the_same_noisy_copies_on_every_model_so_controls_fail_exactly(bars):
    # Stock Quantus redraws the copies on each model pass: `random` scored about -0.03 (ranked first) and sobel 0.98.
    model, x, _ = bars
    values = {}
    for method in ("random", "sobel", "saliency"):
        ctx = testing.context(model, Modality.IMAGE, x, EXPLAINERS.create(method), n_classes=2)
        result = score(METRICS.get("smooth_mprt"), {"nr_samples": 3}, ctx, seed=0)
        assert result.status == [Status.OK.value] * len(x), result.message
        values[method] = result.values
    np.testing.assert_allclose(values["random"], 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(values["sobel"], 1.0, rtol=0, atol=1e-12)
    assert values["saliency"].mean() < 0.6
    # the copies depend on the sample, not on its batch: half a batch gets the same smoothed maps
    metric = SmoothMPRTWithExplainFunc(nr_samples=3, disable_warnings=True, display_progressbar=False)
    explain_func = make_explain_func(EXPLAINERS.create("random"), Modality.IMAGE, tuple(x.shape[1:]))
    metric.explain_func, metric.explain_func_kwargs = explain_func, {}
    whole = metric.explain_smooth_batch_numpy(model, x.numpy(), np.zeros(len(x), dtype=np.int64), 0.1)
    half = metric.explain_smooth_batch_numpy(model, x[6:].numpy(), np.zeros(len(x) - 6, dtype=np.int64), 0.1)
    np.testing.assert_array_equal(whole[6:], half)


@pytest.mark.parametrize("method", ["smoothgrad", "vargrad", "kernel_shap"])
def test_reexplanations_draw_the_noise_of_the_stored_map(bars, method):
    # MPRT's first entry re-explains the intact model; Quantus re-seeds torch before it. Drawing from the cell's
    # explanation seed, a stochastic method re-explains to its stored map exactly, so the similarity under a
    # randomised model measures the model, not Monte Carlo noise (before: ~0.5-0.9 on the intact model itself).
    model, x, _ = bars
    params = {"smoothgrad": {"n_samples": 4}, "vargrad": {"n_samples": 4}, "kernel_shap": {"n_samples": 24}}[method]
    explainer = EXPLAINERS.create(method, params)
    targets = torch.zeros(len(x), dtype=torch.long)
    stored = explain_arrays(explainer, model, x, targets, modality=Modality.IMAGE, seed=777, batch_size=5).attributions
    metric = quantus.MPRT(similarity_func=quantus.similarity_func.correlation_spearman, layer_order="top_down",
                          seed=42, abs=True, normalise=True, disable_warnings=True, display_progressbar=False)
    original = {}
    for draw_seed in (777, None):
        explain_func = make_explain_func(explainer, Modality.IMAGE, tuple(x.shape[1:]), "log_odds", draw_seed=draw_seed)
        torch.manual_seed(43)
        metric(model=model, x_batch=x.numpy(), y_batch=targets.numpy(), a_batch=stored.abs().numpy(),
               explain_func=explain_func, batch_size=len(x))
        original[draw_seed] = np.asarray(metric.evaluation_scores["original"])
    np.testing.assert_allclose(original[777], 1.0, rtol=0, atol=1e-12)
    assert original[None].mean() < 0.99  # the score stage's seed: other noise, other map


def tiny_text_transformer(seed: int = 0) -> torch.nn.Module:
    """The zoo's text_transformer at its smallest (untrained: MPRT compares maps, not accuracy)."""
    torch.manual_seed(seed)
    return TinyTextTransformer(12, 6, 2, dim=8, depth=1, heads=2, mlp_ratio=2).eval()


@pytest.mark.parametrize("explain_output", ["log_odds", "logit"])
def test_mprt_fails_the_random_control_exactly_on_text_too(explain_output):
    # Re-explanations receive token embeddings; the control seeds from the token ids they decode to, so its map
    # is the stored one on every randomised model (before: it hashed the embeddings and scored ~0.2).
    model = tiny_text_transformer()
    ids = torch.randint(1, 12, (4, 6), generator=torch.Generator().manual_seed(0))
    ctx = testing.context(model, Modality.TEXT, ids, EXPLAINERS.create("random"), n_classes=2)
    ctx.explain_output = explain_output
    with cell_seed(3):
        ctx.attributions = ctx.explainer.explain(model, ids, ctx.targets).attributions
        result = score(METRICS.get("mprt"), {}, ctx, seed=0)
    assert result.status == [Status.OK.value] * len(ids), result.message
    np.testing.assert_allclose(result.values, 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["random", "smoothgrad", "kernel_shap"])
def test_text_draws_come_from_token_ids_not_from_embedding_bytes(method):
    # Another CPU trains embeddings that differ by ~1e-7: the draws (hence the maps of a control) must not change.
    model = tiny_text_transformer()
    ids = torch.randint(1, 12, (3, 6), generator=torch.Generator().manual_seed(1))
    target = torch.zeros(3, dtype=torch.long)
    params = {"random": {}, "smoothgrad": {"n_samples": 3}, "kernel_shap": {"n_samples": 16}}[method]
    explainer = EXPLAINERS.create(method, params)
    if method == "random":
        drifted = tiny_text_transformer()
        with torch.no_grad():
            drifted.token_embedding.weight.add_(1e-7)
        torch.testing.assert_close(explainer.explain(model, ids, target).attributions,
                                   explainer.explain(drifted, ids, target).attributions, rtol=0, atol=0)
    # the same draws for the ids and for their embeddings once the cell's tokens are known (re-explanations)
    embedded = model.embed(ids).detach()
    torch.manual_seed(5)
    from_bytes = explainer.explain(EmbeddedForward(model), embedded, target).attributions  # unknown: embedding bytes
    with known_tokens(token_table(model, ids)):
        torch.manual_seed(5)
        decoded = explainer.explain(EmbeddedForward(model), embedded, target).attributions
        noisy = explainer.explain(EmbeddedForward(model), embedded + 1e-3, target).attributions
    torch.manual_seed(5)
    stored = explainer.explain(model, ids, target).attributions
    torch.testing.assert_close(decoded, stored, rtol=0, atol=1e-6)
    assert not torch.allclose(from_bytes, stored)
    if method == "random":
        assert not torch.allclose(noisy, stored)  # embeddings off the token table are a new sample


def test_a_noisy_text_copy_draws_its_own_noise_identically_on_drifted_embeddings():
    # A stability metric's noisy copy of a text sample is a new sample (new draws), but the same copy must draw
    # alike where training left the embeddings ~1e-7 apart (another CPU): it seeds from its nearest tokens and its
    # residual on a coarse grid, not from its bytes.
    model, drifted = tiny_text_transformer(), tiny_text_transformer()
    with torch.no_grad():
        wobble = torch.randn(drifted.token_embedding.weight.shape, generator=torch.Generator().manual_seed(2))
        drifted.token_embedding.weight.add_(1e-7 * wobble.sign())
    ids = torch.randint(1, 12, (3, 6), generator=torch.Generator().manual_seed(1))
    target = torch.zeros(3, dtype=torch.long)
    noise = 0.05 * torch.randn(3, 6, 8, generator=torch.Generator().manual_seed(3))
    control = EXPLAINERS.create("random")
    maps = []
    for net in (model, drifted):
        with known_tokens(token_table(net, ids)):
            embedded = net.embed(ids).detach()
            maps.append([control.explain(EmbeddedForward(net), embedded + scale * noise, target).attributions
                         for scale in (0.0, 1.0, 2.0)])
    assert not torch.equal(maps[0][1], maps[0][0]) and not torch.equal(maps[0][2], maps[0][1])  # new samples
    for intact, moved in zip(maps[0], maps[1]):
        torch.testing.assert_close(intact, moved, rtol=0, atol=0)
    assert not torch.equal(model.embed(ids) + noise, drifted.embed(ids) + noise)  # the bytes did differ


# --- sign handling --------------------------------------------------------------------------------------------
def test_localisation_sign_is_a_declared_choice_recorded_in_params(bars):
    model, x, masks = bars
    attributions = -masks.clone()  # all evidence on the object, but negative
    ctx = testing.context(model, Modality.IMAGE, x, None, masks=masks, attributions=attributions, n_classes=2)
    spec = METRICS.get("localisation_auc")
    signed = score(spec, {}, ctx, seed=0)
    absolute = score(spec, {"sign": "absolute"}, ctx, seed=0)
    assert signed.params["sign"] == "signed" and signed.params["abs"] is False
    assert absolute.params["sign"] == "absolute" and absolute.params["abs"] is True
    np.testing.assert_allclose(signed.values, 0.0)  # evidence against the class is not localised evidence for it
    np.testing.assert_allclose(absolute.values, 1.0)
    tabular = testing.context(testing.tiny_mlp(6, 2), Modality.TABULAR, torch.randn(4, 6), None,
                              masks=torch.tensor([[1.0, 1, 0, 0, 0, 0]] * 4), attributions=-torch.eye(6)[:4] - 0.1)
    assert score(spec, {}, tabular, seed=0).params["sign"] == "absolute"  # auto: a tabular mask means "relevant"
    with pytest.raises(UserError, match="sign"):
        spec.check_params({"abs": True})
    with pytest.raises(UserError, match="one of"):
        spec.check_params({"sign": "both"})


@pytest.mark.parametrize("engine", ["fast", "quantus"])
def test_the_constant_control_lands_where_the_literature_puts_it(bars, engine):
    """Quantus refuses any batch of maps holding one value, so the ``constant`` control (1.0 everywhere) had no
    number on any metric. Metrics that rank features still set it aside (a NaN row with the reason); the others
    score it: the least sparse map (Gini 0, entropy log d, every feature counted) and a perfectly stable one."""
    model, x, _ = bars
    x = x[:4]
    d = x[0].numel()  # 64 pixels, one channel
    ctx = replace(testing.context(model, Modality.IMAGE, x, EXPLAINERS.create("constant"), n_classes=2), engine=engine)
    expected = {"sparseness": 0.0, "complexity": np.log(d), "effective_complexity": float(d),
                "max_sensitivity": 0.0, "avg_sensitivity": 0.0, "local_lipschitz_estimate": 0.0}
    for name, value in expected.items():
        result = score(METRICS.get(name), {"nr_samples": 2} if "sens" in name or "lipschitz" in name else {}, ctx, 0)
        assert result.status == [Status.OK.value] * len(x), (name, result.message)
        np.testing.assert_allclose(result.values, value, rtol=1e-6, atol=1e-12, err_msg=name)
    ranked = score(METRICS.get("pixel_flipping"), {}, ctx, seed=0)  # an ordering metric: no ranking to score
    assert set(ranked.message) == {"constant attribution: no ranking of the features"}
    with pytest.raises(AssertionError, match="uniformly distributed"):  # Quantus itself is left as it was
        quantus.helpers.asserts.assert_attributions(x_batch=x.numpy(), a_batch=np.full(x.shape, 0.5))


def test_random_logit_on_two_classes_explained_as_log_odds_is_nan_with_the_reason():
    """With two classes the other class's log-odds is exactly minus the explained one: integrated gradients scored
    exactly -1 (ranked best) and absolute saliency exactly 1 (failing like the controls), whatever the model. The
    check is NaN with the reason there; with ``logit`` it runs."""
    torch.manual_seed(0)
    model, x = testing.tiny_mlp(6, 2).eval(), torch.randn(4, 6)
    ig = EXPLAINERS.create("integrated_gradients", {"n_steps": 8})
    ctx = testing.context(model, Modality.TABULAR, x, ig, n_classes=2)
    odds = score(METRICS.get("random_logit"), {}, replace(ctx, explain_output="log_odds"), seed=0)
    assert odds.status == [Status.NAN.value] * 4
    assert odds.message[0].startswith("two classes explained as log-odds")
    logit = score(METRICS.get("random_logit"), {}, replace(ctx, explain_output="logit"), seed=0)
    assert logit.status == [Status.OK.value] * 4, logit.message
    three = testing.context(testing.tiny_mlp(6, 3).eval(), Modality.TABULAR, x, ig, n_classes=3)
    assert score(METRICS.get("random_logit"), {}, replace(three, explain_output="log_odds"), seed=0).status == \
        [Status.OK.value] * 4


# --- relative stability -----------------------------------------------------------------------------------------
def test_relative_change_floors_exact_zeros_at_a_share_of_the_sample_scale():
    before = np.array([[0.0, 2.0, 2.0, 4.0]])
    after = np.array([[0.5, 2.0, 3.0, 4.0]])
    floor = 0.5 * 2.0  # relative_floor * mean |before|
    expected = np.sqrt((0.5 / floor) ** 2 + (1.0 / 2.0) ** 2)
    np.testing.assert_allclose(relative_change(before, after, 0.5, 1e-6), [expected])
    quantus_rule = np.sqrt((0.5 / 1e-6) ** 2 + 0.25)  # relative_floor = 0: Quantus' 1e-6 floor
    np.testing.assert_allclose(relative_change(before, after, 0.0, 1e-6), [quantus_rule])


@pytest.mark.parametrize("metric", ["relative_input_stability", "relative_output_stability"])
def test_random_control_no_longer_wins_relative_stability_on_inputs_with_exact_zeros(bars, metric):
    model, x, _ = bars
    x = torch.where(x > 0.5, x, torch.zeros_like(x))  # a black background, as in digits
    scores = {}
    for method in ("integrated_gradients", "random"):
        ctx = testing.context(model, Modality.IMAGE, x, EXPLAINERS.create(method), n_classes=2)
        result = score(METRICS.get(metric), {"nr_samples": 3}, ctx, seed=0)
        scores[method] = np.nanmean(result.values)
    assert scores["integrated_gradients"] < scores["random"], scores


@dataclass(frozen=True)
class _VanishingAtX(Explainer):
    """``a(x) = x - round_half(x) + offset``: on inputs made of multiples of 0.5 the map at ``x`` is the constant
    ``offset`` (1e-12, 1e-30 or 1, by the sample's first feature), at a noisy copy ``x'`` it is the noise."""

    name = "vanishing_at_x"

    def explain(self, model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> Explanation:
        grid = torch.round(2 * x) / 2
        offset = torch.tensor([1e-12, 1e-30, 1.0], dtype=torch.float64)[(2 * grid[:, 0]).long()]
        return Explanation(((x - grid).double() + offset[:, None]).float())


@pytest.mark.parametrize("engine", ["fast", "quantus"])
@pytest.mark.parametrize("metric", ["max_sensitivity", "avg_sensitivity"])
def test_sensitivity_of_a_numerically_zero_map_is_nan_with_the_reason_not_a_huge_number(engine, metric):
    """Quantus divides by ||a(x)||: a map at x 1e12 times smaller than its neighbours' gave ~1e11 (DeepLIFT/LRP of
    a saturated output: medians of 1e8-1e11, samples of 2e21; float32 norms that underflow: inf), and one such
    sample decided a method's mean and rank. Above 2^23 the map at x is below float32 resolution of its
    re-explanations: NaN with the reason, like an all-zero map. Ordinary maps keep Quantus' value."""
    x = torch.tensor([[0.0] * 6, [0.5] * 6, [1.0, 0.5, 0.0, 0.5, 1.0, 0.0]])  # offsets 1e-12, 1e-30, 1
    ctx = replace(testing.context(testing.tiny_mlp(6, 2), Modality.TABULAR, x, _VanishingAtX(), n_classes=2),
                  engine=engine)
    result = score(METRICS.get(metric), {"nr_samples": 3}, ctx, seed=0)
    assert result.status == [Status.NAN.value, Status.NAN.value, Status.OK.value], result.message
    assert result.message[:2] == [NUMERICALLY_ZERO] * 2
    assert 0.0 < result.values[2] <= 0.1 + 1e-6  # ||noise|| / ||1||: the noise's RMS, within +-0.1


@pytest.mark.parametrize("engine", ["fast", "quantus"])
@pytest.mark.parametrize("metric", ["relative_input_stability", "relative_output_stability"])
@pytest.mark.parametrize("relative_floor", [0.5, 0.0])
def test_relative_stability_of_a_numerically_zero_map_is_nan_with_the_reason_not_a_huge_number(
        engine, metric, relative_floor):
    """Agarwal et al. divide element-wise by a(x): with the floor at a share of the map's own scale (or Quantus'
    1e-6 at exact zeros), a map of 1e-12 or 1e-30 at x next to a re-explanation of ~0.05 gave 1e10-1e29 (DeepLIFT
    of a saturated log_softmax on breast_cancer: RIS mean 1.1e6, ROS 1.1e7). The sensitivities' rule applies:
    ||a(x') - a(x)|| > 2^23 ||a(x)|| is NaN with the reason. Ordinary maps keep the definition's value."""
    x = torch.tensor([[0.0] * 6, [0.5] * 6, [1.0, 0.5, 0.0, 0.5, 1.0, 0.0]])  # offsets 1e-12, 1e-30, 1
    ctx = replace(testing.context(testing.tiny_mlp(6, 2), Modality.TABULAR, x, _VanishingAtX(), n_classes=2),
                  engine=engine)
    params = {"nr_samples": 3, "relative_floor": relative_floor, "return_nan_when_prediction_changes": False}
    result = score(METRICS.get(metric), params, ctx, seed=0)
    assert result.status == [Status.NAN.value, Status.NAN.value, Status.OK.value], result.message
    assert result.message[:2] == [NUMERICALLY_ZERO] * 2
    if metric == "relative_input_stability" and relative_floor > 0:
        # a(x') - a(x) is the input noise n; a(x) = 1 everywhere, x's floored divisors are [1, .5, .25, .5, 1, .25]:
        # ||n|| / ||n / divisor|| lies in [min, max] of the divisors
        assert 0.25 - 1e-6 <= result.values[2] <= 1.0 + 1e-6
    assert np.isfinite(result.values[2]) and result.values[2] > 0.0


def test_sufficiency_of_a_map_within_reach_of_every_other_is_nan_not_the_batchs_class_share():
    """Quantus' threshold is 0.6 x the batch's largest map distance. Maps at 0.1, 0.2, 0.3, 0.6, 1.1 (one feature
    carries them): the largest distance is 1.0, so 0.6 sees every other map within 0.6 and 1.1 only 0.6 (and
    0.3 at 0.8 is out). A map within reach of all scores the batch's share of its prediction, whatever it is:
    NaN with the reason, like a map with no neighbour. The others keep Quantus' share of equal predictions."""
    torch.manual_seed(0)
    model = testing.tiny_mlp(2, 2)
    x = torch.randn(5, 2)
    positions = torch.tensor([0.1, 0.2, 0.3, 0.6, 1.1])
    a = torch.stack([positions, torch.zeros(5)], dim=1)
    ctx = testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("saliency"), n_classes=2, attributions=a)
    result = score(METRICS.get("sufficiency"), {"normalise": False}, ctx, seed=0)
    distances = (positions[:, None] - positions[None, :]).abs()
    neighbours = (distances <= 0.6 * distances.max()) & ~torch.eye(5, dtype=torch.bool)
    assert neighbours.sum(1).tolist() == [3, 3, 3, 4, 1]
    predicted = model(x).argmax(1)
    same = (predicted[:, None] == predicted[None, :]) & neighbours
    expected = (same.sum(1) / neighbours.sum(1)).double().numpy()
    assert result.message[3] == EVERY_NEIGHBOUR and np.isnan(result.values[3])
    keep = [0, 1, 2, 4]
    np.testing.assert_allclose(result.values[keep], expected[keep])
    assert all(result.message[i] == "" for i in keep)


@pytest.mark.parametrize("scale", [1.0, 1e-3, 50.0])
def test_infidelity_of_the_exact_map_of_a_linear_explained_output_is_zero_at_any_scale(scale):
    """Yeh et al.'s infidelity compares a.(x - x') with the change of the explained output, at the map's optimal
    scale. Two classes, linear logits z = W x, explained as log-odds z_t - z_o = (w_t - w_o).x: the map
    c (w_t - w_o) is exact, so every removal's a.(x - x') is c times the output drop and infidelity is 0 for any
    c. Quantus compared with the logit z_t alone and without rescaling: 0 only by luck of units and scale."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2)).eval()
    x = torch.randn(3, 1, 4, 4)
    targets = model(x).argmax(1)
    weights = model[1].weight.detach()
    a = scale * (weights[targets] - weights[1 - targets]).reshape(3, 1, 4, 4)
    ctx = replace(testing.context(model, Modality.IMAGE, x, EXPLAINERS.create("saliency"), n_classes=2,
                                  attributions=a), explain_output="log_odds")
    result = score(METRICS.get("infidelity"), {}, ctx, seed=0)
    assert result.status == [Status.OK.value] * 3, result.message
    np.testing.assert_allclose(result.values, 0.0, atol=1e-9)
    unscaled = score(METRICS.get("infidelity"), {"loss_func": "mse"}, ctx, seed=0).values  # Quantus' loss
    if scale == 1.0:
        np.testing.assert_allclose(unscaled, 0.0, atol=1e-9)  # the exact map at its own scale: 0 either way
    else:
        assert np.all(unscaled > 1e-6)  # (1 - c)^2 times the squared drops: the map's scale decided it


def test_optimally_scaled_mse_is_the_error_of_the_best_multiple():
    drops = np.array([[2.0, 4.0, -2.0], [1.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    sums = np.array([[1.0, 2.0, -1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    # row 0: drops = 2 sums (error 0); row 1: orthogonal (beta 0, error mean drops^2); row 2: no attribution mass
    np.testing.assert_allclose(functional.mse_optimally_scaled(drops, sums, batched=True), [0.0, 1 / 3, 14 / 3])


# --- feature grouping of the surrogate methods -------------------------------------------------------------------
@pytest.mark.parametrize("method", ["kernel_shap", "lime"])
def test_image_patch_value_is_copied_to_every_pixel_so_maps_sum_to_four_times_the_change(method):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2)).eval()
    x, target = torch.randn(2, 1, 4, 4), torch.tensor([0, 1])
    explainer = EXPLAINERS.create(method, {"n_samples": 300, **({"alpha": 0.0} if method == "lime" else {})})
    attributions = explainer.explain(model, x, target).attributions
    with torch.no_grad():
        change = (model(x) - model(torch.zeros_like(x))).gather(1, target[:, None]).squeeze(1)
    patches = attributions.reshape(2, 2, 2, 2, 2).permute(0, 1, 3, 2, 4)  # (N, row, col, 2, 2)
    assert torch.all(patches == patches[..., :1, :1])  # one value per 2x2 patch
    if method == "kernel_shap":  # efficiency per patch: the map sums to 4 x f(x) - f(0)
        torch.testing.assert_close(attributions.sum(dim=(1, 2, 3)), 4 * change, rtol=1e-3, atol=1e-3)
    recorded = explainer.recorded_params(Modality.IMAGE)
    assert recorded["feature_grouping"].startswith("2x2 patches") and recorded["elements_per_group"] == 4
    assert explainer.recorded_params(Modality.TABULAR)["elements_per_group"] == 1


# --- ROAD orders and imputations, conditional Shapley ------------------------------------------------------------
def test_fixed_value_imputation_sets_the_flat_indices():
    from xaibench.metrics.functional import fixed_value_imputation

    arr = np.arange(8.0).reshape(1, 2, 4)
    out = fixed_value_imputation(arr, np.array([0, 5]), value=-1.0)
    assert out.reshape(-1).tolist() == [-1, 1, 2, 3, 4, -1, 6, 7] and arr[0, 0, 0] == 0.0


def test_road_lerf_is_road_on_the_reversed_ranking(bars):
    model, x, _ = bars
    attributions = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    ctx = testing.context(model, Modality.IMAGE, x, None, attributions=attributions, n_classes=2)
    flipped = testing.context(model, Modality.IMAGE, x, None, attributions=1.0 - attributions, n_classes=2)
    params = {"perturb_func": "fixed_value_imputation"}
    lerf = score(METRICS.get("road_lerf"), params, ctx, seed=0).values
    morf_of_reversed = score(METRICS.get("road"), params, flipped, seed=0).values
    np.testing.assert_array_equal(lerf, morf_of_reversed)
    assert METRICS.get("road_lerf").higher_is_better and not METRICS.get("road").higher_is_better


def test_conditional_shapley_of_a_linear_logit_matches_the_gaussian_closed_form():
    rho, w = 0.6, torch.tensor([2.0, -1.0])
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(50_000, 2, generator=gen, dtype=torch.float64)
    train = torch.stack([z[:, 0], rho * z[:, 0] + (1 - rho**2) ** 0.5 * z[:, 1]], dim=1).float()
    model = torch.nn.Linear(2, 2).eval()
    with torch.no_grad():
        model.weight.copy_(torch.stack([w, -w]))
        model.bias.zero_()
    x = torch.tensor([[1.0, 0.5], [-0.5, 2.0]])
    from xaibench.metrics.conditional_shapley import conditional_shapley
    from xaibench.types import Split

    ctx = testing.context(model, Modality.TABULAR, x, None, attributions=torch.zeros_like(x),
                          targets=torch.tensor([0, 0]), train_split=Split(train, torch.zeros(len(train)), ()))
    phi = conditional_shapley(ctx, n_draws=0, softmax=False)
    # phi_1 = w1 x1 + rho/2 (w2 x1 - w1 x2), phi_2 = w2 x2 + rho/2 (w1 x2 - w2 x1) for zero means, unit variances
    x1, x2 = x[:, 0].double().numpy(), x[:, 1].double().numpy()
    expected = np.stack([2 * x1 + rho / 2 * (-x1 - 2 * x2), -x2 + rho / 2 * (2 * x2 + x1)], axis=1)
    np.testing.assert_allclose(phi, expected, atol=0.03)
