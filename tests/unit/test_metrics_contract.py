"""One contract over every registered metric, plus the adapter's behaviour around Quantus.

Every metric runs on tiny models of each modality it declares, returns one finite value or a status with a reason
per sample, declares its direction, records its resolved parameters, and is deterministic under the seed.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import quantus
import torch
import yaml

from xaibench.config.paths import conf_dir, group_options
from xaibench.errors import UserError
from xaibench.metrics import testing
from xaibench.metrics.quantus_adapter import resolve_params, score
from xaibench.metrics.spec import Family, MetricSpec
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.types import Capability, Modality, Status

N = 6
FAMILIES = {Family.FAITHFULNESS, Family.SPARSITY, Family.STABILITY, Family.LOCALISATION, Family.RANDOMISATION,
            Family.COUNTERFACTUAL, Family.AXIOMATIC, Family.GROUND_TRUTH}


def _ig():
    return EXPLAINERS.create("integrated_gradients", {"n_steps": 4})


# Counterfactuals: two per sample (N, 2, ...) for dense inputs (diversity needs several), one for text. Other
# samples of the batch serve as counterfactuals, so that some flip the prediction (the quality metrics measure valid
# counterfactuals only).
def _tabular():
    torch.manual_seed(0)
    x = torch.randn(N, 10)
    return testing.context(testing.tiny_mlp(10, 3), Modality.TABULAR, x, _ig(),
                           masks=(torch.arange(10) < 3).float().expand(N, 10).clone(),
                           counterfactuals=torch.stack([x.roll(1, 0), x.roll(2, 0) + 0.1], dim=1),
                           n_classes=3)


def _image():
    torch.manual_seed(0)
    x, _, masks = testing.bar_images(N)
    return testing.context(testing.tiny_cnn(2), Modality.IMAGE, x, _ig(), masks=masks,
                           counterfactuals=torch.stack([x.roll(1, 0), (x.roll(2, 0) + 0.1).clamp(0, 1)], dim=1),
                           n_classes=2)


def _series():
    torch.manual_seed(0)
    x = torch.randn(N, 2, 12)
    masks = torch.zeros(N, 2, 12)
    masks[:, :, 3:6] = 1.0
    return testing.context(testing.tiny_mlp(24, 3), Modality.TIME_SERIES, x, _ig(), masks=masks,
                           counterfactuals=torch.stack([x.roll(1, 0), x.roll(2, 0) + 0.1], dim=1), n_classes=3)


def _text():
    torch.manual_seed(0)
    model = testing.TinyTextModel()
    ids = torch.randint(1, 20, (N, 8))
    with torch.no_grad():  # centre the class margin, so that both classes are predicted (and counterfactuals flip)
        logits = model(ids)
        model.head[-1].bias[1] -= (logits[:, 1] - logits[:, 0]).median() - 1e-3
    cf = ids.roll(1, 0)
    masks = torch.zeros(N, 8)
    masks[:, :2] = 1.0
    return testing.context(model, Modality.TEXT, ids, _ig(), masks=masks, counterfactuals=cf, n_classes=2)


CONTEXTS = {Modality.TABULAR: _tabular, Modality.IMAGE: _image, Modality.TIME_SERIES: _series, Modality.TEXT: _text}
_cache: dict = {}


def ctx_for(modality):
    if modality not in _cache:
        _cache[modality] = CONTEXTS[modality]()
    return _cache[modality]


def _check_result(spec: MetricSpec, result, n: int) -> None:
    assert result.values.shape == (n,)
    assert len(result.status) == len(result.message) == n
    for value, status, message in zip(result.values, result.status, result.message):
        assert status in (Status.OK.value, Status.NAN.value)
        if status == Status.OK.value:
            assert math.isfinite(value) and message == ""
        else:
            assert math.isnan(value) and message, f"{spec.name}: NaN without a reason"
    json.dumps(result.params)  # recorded in the row as JSON
    assert set(spec.defaults) | set(spec.call_defaults) <= set(result.params)


@pytest.mark.parametrize("name", METRICS.names())
def test_every_metric_runs_on_each_declared_modality_and_is_deterministic(name):
    spec = METRICS.get(name)
    assert isinstance(spec.higher_is_better, bool)
    assert spec.family in FAMILIES and spec.description and spec.modalities
    modalities = [m for m in CONTEXTS if m in spec.modalities]
    assert modalities
    for i, modality in enumerate(modalities):
        ctx = ctx_for(modality)
        if Capability.LINEAR in spec.requires:  # the context's model offers what the metric declares it needs
            torch.manual_seed(0)
            ctx.model = torch.nn.Linear(int(np.prod(ctx.x.shape[1:])), 3).eval()
        before = ctx.attributions.clone()
        result = score(spec, {}, ctx, seed=123)
        _check_result(spec, result, N)
        assert torch.equal(ctx.attributions, before), "the metric mutated the attributions"
        assert sum(s == Status.OK.value for s in result.status) >= 1, f"{name} on {modality}: {result.message}"
        if i == 0:  # deterministic under the seed
            again = score(spec, {}, ctx, seed=123)
            np.testing.assert_array_equal(result.values, again.values)
            assert result.status == again.status


def _suite(name: str) -> dict:
    return yaml.safe_load((conf_dir() / "metrics" / f"{name}.yaml").read_text()) or {}


def test_suites_cover_the_registry_and_mirror_the_declared_defaults():
    suites = {name: _suite(name) for name in group_options("metrics")}
    assert {"faithfulness", "sparsity", "stability", "localisation", "randomisation", "counterfactual", "default",
            "full"} <= set(suites)
    assert sorted(suites["full"]) == METRICS.names()
    for name, params in suites["full"].items():
        spec = METRICS.get(name)
        assert (params or {}) == {**spec.defaults, **spec.call_defaults}, f"full.yaml drifted from {name}'s spec"
    for suite, metrics in suites.items():
        for name, params in metrics.items():
            assert (params or {}) == (suites["full"][name] or {}), f"{suite}.yaml: {name} differs from full.yaml"
            METRICS.get(name).check_params(params or {})
        if suite in FAMILIES:
            assert {METRICS.get(n).family for n in metrics} == {suite}
            assert sorted(metrics) == sorted(n for n in METRICS.names() if METRICS.get(n).family == suite)
    assert sorted(suites["default"]) == ["faithfulness_correlation", "max_sensitivity", "sparseness"]


def test_inconsistent_quantus_defaults_are_set_explicitly():
    for name in METRICS.names():
        spec = METRICS.get(name)
        if spec.quantus_class is None:
            continue
        for key in ("abs", "normalise", "normalise_func"):
            set_by_sign = key == "abs" and "sign" in spec.adapter_only  # localisation: sign sets abs (resolve)
            assert key in spec.defaults or set_by_sign, f"{name} leaves {key} to Quantus"
        assert "softmax" in spec.call_defaults, f"{name} leaves softmax to Quantus"
        assert spec.defaults.get("return_aggregate") is None  # the adapter forces per-sample scores


def test_direction_matches_quantus_unless_documented():
    # RegionPerturbation: Quantus declares 'lower' for its drop curve; AOPC of drops is higher-is-better.
    # road_lerf: ROAD's least-relevant-first order; keeping the prediction longer is better (Rong et al. 2022).
    documented = {"region_perturbation", "road_lerf"}
    for name in METRICS.names():
        spec = METRICS.get(name)
        if spec.quantus_class is None or name in documented:
            continue
        quantus_higher = spec.quantus_class.score_direction == quantus.helpers.enums.ScoreDirection.HIGHER
        assert spec.higher_is_better == quantus_higher, name


def test_unknown_parameter_is_a_user_error_naming_the_valid_ones():
    with pytest.raises(UserError, match=r"unknown parameter\(s\) nr_runz; valid: .*nr_runs"):
        METRICS.get("faithfulness_correlation").check_params({"nr_runz": 3})
    with pytest.raises(UserError, match="reduction is fixed"):
        METRICS.get("pixel_flipping").check_params({"reduction": "sum"})


def test_fractions_become_counts_of_the_feature_positions_and_are_recorded():
    tab, img = ctx_for(Modality.TABULAR), ctx_for(Modality.IMAGE)
    fc = METRICS.get("faithfulness_correlation")
    assert resolve_params(fc, {}, tab)["subset_size"] == 2  # round(0.25 * 10) = 2 (bankers' rounding of 2.5)
    assert resolve_params(fc, {}, img)["subset_size"] == 16  # 0.25 * 64 pixels
    assert resolve_params(fc, {"subset_size": 5}, img)["subset_size"] == 5  # an int is a count
    pf = METRICS.get("pixel_flipping")
    assert resolve_params(pf, {}, img)["features_in_step"] == 4  # divisor of 64 nearest to 3.2
    assert resolve_params(pf, {"features_in_step": 0.3}, tab)["features_in_step"] == 2  # nearest divisor of 10 to 3
    result = score(pf, {}, img, seed=0)
    assert result.params["features_in_step"] == 4 and result.params["reduction"] == "auc_unit_interval"


def test_all_zero_attribution_is_a_status_not_a_number_and_the_rest_is_scored():
    ctx = ctx_for(Modality.TABULAR)
    attributions = ctx.attributions.clone()
    attributions[1] = 0.0
    zeroed = testing.context(ctx.model, ctx.modality, ctx.x, ctx.explainer, targets=ctx.targets,
                             attributions=attributions, masks=ctx.masks)
    for name in ("faithfulness_correlation", "sparseness", "complexity", "max_sensitivity", "pointing_game"):
        result = score(METRICS.get(name), {}, zeroed, seed=0)
        assert result.status[1] == Status.NAN.value and result.message[1] == "all-zero attribution", name
        assert all(s == Status.OK.value for i, s in enumerate(result.status) if i != 1), (name, result.message)


def test_constant_model_output_is_a_status():
    x = torch.randn(N, 10)
    model = testing.tiny_mlp(10, 3)
    with torch.no_grad():
        model[1].weight.zero_()  # the output is the bias path only: constant whatever the input
    ctx = testing.context(model, Modality.TABULAR, x, _ig(), attributions=torch.randn(N, 10))
    result = score(METRICS.get("faithfulness_correlation"), {}, ctx, seed=0)
    assert result.status == [Status.NAN.value] * N
    assert set(result.message) == {"constant model output"}


def test_a_nan_correlation_says_which_side_was_constant():
    # The model reads feature 0 only, and feature 0 already sits at the perturbation baseline (0.0): removing any
    # subset changes nothing, so the output drops are constant and Pearson's r is undefined.
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[0, 0], model[1].weight[1, 0] = 1.0, -1.0
    x = torch.randn(N, 10)
    x[:, 0] = 0.0
    ctx = testing.context(model, Modality.TABULAR, x, _ig(), attributions=torch.rand(N, 10) + 0.1)
    result = score(METRICS.get("faithfulness_correlation"), {}, ctx, seed=0)
    assert result.status == [Status.NAN.value] * N
    assert set(result.message) == {"correlation undefined: constant model output under the perturbations"}


def test_a_prediction_flipped_by_the_perturbation_is_a_status():
    ctx = ctx_for(Modality.TABULAR)
    big_noise = {"perturb_func_kwargs": {"lower_bound": -20.0, "upper_bound": 20.0}}
    result = score(METRICS.get("relative_input_stability"), big_noise, ctx, seed=0)
    flipped = [m for m in result.message if m]
    assert flipped and set(flipped) == {"prediction flipped by the perturbation"}


def test_sparsity_metrics_do_not_mutate_attributions_without_normalisation():
    # Quantus' Sparseness adds 1e-7 and Complexity divides a_batch in place when abs=False, normalise=False.
    ctx = ctx_for(Modality.TABULAR)
    before = ctx.attributions.clone()
    for name in ("sparseness", "complexity"):
        score(METRICS.get(name), {"abs": False, "normalise": False}, ctx, seed=0)
        assert torch.equal(ctx.attributions, before)


def test_all_negative_maps_work_when_the_metric_takes_abs():
    # Quantus#375 rejects a batch whose attributions are all negative, even for metrics that take |a|.
    ctx = ctx_for(Modality.TABULAR)
    negative = -ctx.attributions.abs() - 0.01
    neg_ctx = testing.context(ctx.model, ctx.modality, ctx.x, ctx.explainer, targets=ctx.targets,
                              attributions=negative)
    pos_ctx = testing.context(ctx.model, ctx.modality, ctx.x, ctx.explainer, targets=ctx.targets,
                              attributions=-negative)
    with pytest.raises(AssertionError, match="less than zero"):
        quantus.Sparseness(disable_warnings=True)(model=None, x_batch=ctx.x[:, None].numpy(), y_batch=None,
                                                  a_batch=negative[:, None].numpy())
    neg = score(METRICS.get("sparseness"), {}, neg_ctx, seed=0)
    pos = score(METRICS.get("sparseness"), {}, pos_ctx, seed=0)
    np.testing.assert_allclose(neg.values, pos.values, atol=1e-12)


def test_samples_quantus_rejects_are_marked_and_the_rest_scored():
    # felzenszwalb finds a single superpixel in a constant image and IROF asserts for the whole batch; the adapter
    # scores the samples one by one and marks the rejected one.
    ctx = ctx_for(Modality.IMAGE)
    x = torch.rand(N, 1, 16, 16, generator=torch.Generator().manual_seed(3))  # textured: 3 to 5 segments each
    x[2] = 0.5
    attributions = torch.rand(N, 1, 16, 16, generator=torch.Generator().manual_seed(1)) + 0.1
    flat = testing.context(ctx.model, ctx.modality, x, ctx.explainer, attributions=attributions, n_classes=2)
    result = score(METRICS.get("irof"), {"segmentation_method": "felzenszwalb"}, flat, seed=0)
    assert result.status[2] == Status.NAN.value
    assert result.message[2] == "rejected by Quantus: The number of segments from the segmentation algorithm must " \
                                "be more than one."
    assert sum(s == Status.OK.value for s in result.status) == N - 1


def test_all_negative_batches_become_statuses_for_sign_sensitive_metrics():
    # Quantus#375: a batch of all-negative maps is rejected outright. Pixel-flipping reads the sign, so the maps
    # cannot be flipped; each sample gets a NaN status with Quantus' reason instead of an error for the metric.
    ctx = ctx_for(Modality.TABULAR)
    negative = -ctx.attributions.abs() - 0.01
    neg_ctx = testing.context(ctx.model, ctx.modality, ctx.x, ctx.explainer, targets=ctx.targets,
                              attributions=negative)
    result = score(METRICS.get("pixel_flipping"), {}, neg_ctx, seed=0)
    assert result.status == [Status.NAN.value] * N
    assert set(result.message) == {"rejected by Quantus: Attributions should not all be less than zero."}
    mixed = negative.clone()
    mixed[0] = -mixed[0]  # one sample with positive attributions: Quantus accepts the batch, all are scored
    mixed_ctx = testing.context(ctx.model, ctx.modality, ctx.x, ctx.explainer, targets=ctx.targets,
                                attributions=mixed)
    assert score(METRICS.get("pixel_flipping"), {}, mixed_ctx, seed=0).status == [Status.OK.value] * N


def test_configuration_asserts_are_errors_not_statuses():
    with pytest.raises(AssertionError, match="features_in_step"):
        score(METRICS.get("pixel_flipping"), {"features_in_step": 3}, ctx_for(Modality.TABULAR), seed=0)


def test_a_samples_score_does_not_depend_on_the_other_samples_scale():
    # Quantus' normalise_by_max divides by the max of the whole batch; per-sample normalisation keeps a sample's
    # effective complexity independent of its neighbours.
    ctx = ctx_for(Modality.TABULAR)
    spec = METRICS.get("effective_complexity")
    scaled = ctx.attributions.clone()
    scaled[0] *= 1000.0
    other = testing.context(ctx.model, ctx.modality, ctx.x, ctx.explainer, targets=ctx.targets, attributions=scaled)
    np.testing.assert_array_equal(score(spec, {}, ctx, 0).values, score(spec, {}, other, 0).values)
    batch_max = score(spec, {"normalise_func": "normalise_by_max"}, other, 0).values
    assert not np.array_equal(batch_max[1:], score(spec, {}, ctx, 0).values[1:])


def test_max_sensitivity_is_normalised_by_the_attribution_not_the_input():
    # Quantus#288: with the attribution norm in the denominator, rescaling the explainer's output changes nothing.
    class Scaled:
        name = "scaled"

        def __init__(self, factor):
            self.factor, self.inner = factor, _ig()

        def explain(self, model, x, target):
            explanation = self.inner.explain(model, x, target)
            return type(explanation)(explanation.attributions * self.factor)

    ctx = ctx_for(Modality.TABULAR)
    spec = METRICS.get("max_sensitivity")
    values = []
    for factor in (1.0, 1000.0):
        scaled = testing.context(ctx.model, ctx.modality, ctx.x, Scaled(factor), targets=ctx.targets)
        values.append(score(spec, {}, scaled, seed=7).values)
    np.testing.assert_allclose(values[0], values[1], rtol=1e-5)


def test_text_is_scored_per_token_through_the_embeddings():
    ctx = ctx_for(Modality.TEXT)
    assert ctx.attributions.shape == (N, 8)
    seen = []

    class Recording:
        name = "recording"

        def explain(self, model, x, target):
            seen.append(tuple(x.shape))
            return _ig().explain(model, x, target)

    recording = testing.context(ctx.model, ctx.modality, ctx.x, Recording(), targets=ctx.targets,
                                attributions=ctx.attributions)
    result = score(METRICS.get("max_sensitivity"), {"nr_samples": 2}, recording, seed=0)
    # perturbed embeddings (k * N, L, D), re-explained per token (the fast engine re-explains k steps per call)
    assert seen and all(shape[1:] == (8, 4) and shape[0] % N == 0 for shape in seen)
    assert all(s == Status.OK.value for s in result.status)


def test_continuity_keeps_translations_inside_the_image():
    img = ctx_for(Modality.IMAGE)
    assert resolve_params(METRICS.get("continuity"), {}, img)["nr_steps"] == 7  # 8 would shift by the full width


class _FirstTokenModel(torch.nn.Module):
    """Text model whose logits read the embedding of position 0 only (pad id 0 embeds to zero)."""

    pad_id = 0

    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(10, 2, padding_idx=0)
        with torch.no_grad():
            self.embedding.weight.copy_(torch.arange(20, dtype=torch.float32).reshape(10, 2) / 10)
            self.embedding.weight[0] = 0.0

    def embed(self, ids):
        return self.embedding(ids)

    def forward_embedded(self, embeddings):
        first = embeddings[:, 0, :]
        return torch.stack([first.sum(dim=1), -first.sum(dim=1)], dim=1)

    def forward(self, ids):
        return self.forward_embedded(self.embed(ids))


def test_token_presence_view_removes_whole_tokens():
    from xaibench.metrics.layout import TokenPresenceModel

    model = _FirstTokenModel().eval()
    ids = torch.tensor([[3, 4, 5, 6], [7, 8, 9, 1]])
    view = TokenPresenceModel(model, ids)
    with torch.no_grad():
        torch.testing.assert_close(view(torch.ones(2, 1, 4)), model(ids), rtol=0, atol=0)
        absent = torch.ones(2, 1, 4)
        absent[:, 0, 0] = 0.0
        torch.testing.assert_close(view(absent), model(ids.masked_fill(torch.arange(4) == 0, 0)), rtol=0, atol=0)


def test_text_faithfulness_rewards_the_token_the_model_reads():
    model = _FirstTokenModel().eval()
    ids = torch.randint(1, 10, (N, 4), generator=torch.Generator().manual_seed(0))
    targets = torch.zeros(N, dtype=torch.long)
    right = torch.tensor([1.0, 0.1, 0.2, 0.3]).expand(N, 4).clone()  # position 0 first
    wrong = torch.tensor([0.0, 1.0, 0.6, 0.3]).expand(N, 4).clone()  # position 0 last
    spec = METRICS.get("pixel_flipping")
    scores = [score(spec, {"features_in_step": 1}, testing.context(model, Modality.TEXT, ids, None, targets=targets,
                                                                   attributions=a, n_classes=2), seed=0)
              for a in (right, wrong)]
    assert scores[0].params["text_view"] == "tokens"
    assert (scores[0].values < scores[1].values).all()  # removing the read token first drops the probability first


def test_declared_model_requirements():
    from xaibench.types import Capability

    for name in ("mprt", "smooth_mprt", "efficient_mprt"):
        assert METRICS.get(name).requirements(Modality.TABULAR) == {Capability.GRADIENTS}
    assert METRICS.get("sparseness").requirements(Modality.TEXT) == {Capability.EMBEDDING}
    assert METRICS.get("cf_sparsity").requirements(Modality.TEXT) == frozenset()
