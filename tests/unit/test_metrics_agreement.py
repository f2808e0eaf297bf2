"""Agreement with Quantus (torchmetrics' reference-test idea): for every Quantus-backed metric, ``score(...)`` equals
a direct Quantus call on the same model, inputs, attributions, parameters and seed, to 1e-6.

The direct call is built here from what the row records (``result.params``) with plain numpy inputs in Quantus'
layout, a plain captum ``explain_func`` and the stock Quantus class, so the test checks the adapter's layouts,
seeding, parameter plumbing, copies and documented reductions, not Quantus against itself.
"""
from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch
from captum.attr import IntegratedGradients, Saliency
from quantus.helpers import utils as quantus_utils

from xaibench.metrics import functional, testing
from xaibench.metrics.faithfulness import EVERY_NEIGHBOUR, NO_NEIGHBOUR
from xaibench.metrics.layout import QuantusModel, TokenPresenceModel
from xaibench.metrics.quantus_adapter import score
from xaibench.metrics.spec import ADAPTER_KEYS, CALLABLE_PARAMS
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.types import Modality

N = 8
SEED = 20240601
QUANTUS_METRICS = [n for n in METRICS.names() if METRICS.get(n).quantus_class is not None]
# Our subclasses exist only to expose per-sample results Quantus computes and then discards or hides.
STOCK = {"road": quantus.ROAD, "road_lerf": quantus.ROAD, "sufficiency": quantus.Sufficiency,
         "smooth_mprt": quantus.SmoothMPRT}


def _captum_ig(model, inputs, targets, **_):
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    target = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    a = IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=4,
                                             method="gausslegendre")
    return a.detach().numpy()


def _captum_saliency(model, inputs, targets, **_):
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    return Saliency(model).attribute(x, target=torch.as_tensor(np.asarray(targets), dtype=torch.long)).numpy()


def _captum_ig_per_token(model, inputs, targets, **_):
    """IG on Quantus' text layout: embeddings (N, D, L) through the wrapped model, from the pad tokens'
    embeddings (the suite's text baseline), summed over D -> (N, 1, L)."""
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    text_model = model.model
    with torch.no_grad():
        pad = text_model.embed(torch.full((x.shape[0], x.shape[2]), text_model.pad_id)).transpose(1, 2)
    a = IntegratedGradients(model).attribute(x, baselines=pad, target=torch.as_tensor(np.asarray(targets)),
                                             n_steps=4, method="gausslegendre")
    return a.detach().numpy().sum(axis=1, keepdims=True)


def _setup(name, modality):
    """(context, direct model, x, a, s, explain_func, extra call kwargs) in Quantus' layout, built by hand."""
    spec = METRICS.get(name)
    torch.manual_seed(0)
    if modality is Modality.TABULAR:
        model = testing.tiny_mlp(10, 3)
        x = torch.randn(N, 10)
        masks = torch.zeros(N, 10)
        masks[:, :3] = 1.0
        direct, x_q, s_q, n_classes = model, x[:, None].numpy(), masks[:, None].numpy(), 3
    elif modality is Modality.IMAGE:
        model = testing.tiny_cnn(2)
        x, _, masks = testing.bar_images(N)
        direct, x_q, s_q, n_classes = model, x.numpy(), masks.numpy(), 2
    else:
        model = testing.TinyTextModel().eval()
        x = torch.randint(1, 20, (N, 8))
        masks = torch.zeros(N, 8)
        masks[:, :2] = 1.0
        s_q, n_classes = masks[:, None].numpy(), 2
        if spec.text_view == "tokens":
            direct, x_q = TokenPresenceModel(model, x), np.ones((N, 1, 8), dtype=np.float32)
        else:
            direct = QuantusModel(model, Modality.TEXT, (8,))
            with torch.no_grad():
                x_q = model.embed(x).transpose(1, 2).numpy()
    if name == "smooth_mprt":  # stock SmoothMPRT explains with quantus.explain: compare on captum Saliency
        explainer, explain_func, extra = EXPLAINERS.create("saliency"), quantus.explain, {
            "explain_func_kwargs": {"method": "Saliency"}}
    else:
        explainer = EXPLAINERS.create("integrated_gradients", {"n_steps": 4})
        explain_func, extra = (_captum_ig_per_token if modality is Modality.TEXT else _captum_ig), {}
    ctx = testing.context(model, modality, x, explainer, masks=masks, n_classes=n_classes)
    a = ctx.attributions.numpy()
    a_q = a.copy() if modality is Modality.IMAGE else a[:, None].copy()  # (N, F|L) -> (N, 1, F|L)
    return ctx, direct.eval(), x_q, a_q, s_q, explain_func, extra


def _cases():
    cases = []
    for name in QUANTUS_METRICS:
        modalities = METRICS.get(name).modalities
        first = Modality.TABULAR if Modality.TABULAR in modalities else Modality.IMAGE
        cases.append(pytest.param(name, first, id=f"{name}-{first}"))
        if Modality.TEXT in modalities:
            cases.append(pytest.param(name, Modality.TEXT, id=f"{name}-text"))
    return cases


def _lookup(value):
    if not isinstance(value, str):
        return value
    for module in (functional, quantus.functions.perturb_func, quantus.functions.similarity_func,
                   quantus.functions.normalise_func, quantus.functions.norm_func, quantus.functions.loss_func,
                   quantus.functions.complexity_func):
        if callable(getattr(module, value, None)):
            return getattr(module, value)
    raise KeyError(value)


def _direct(name, recorded, model, x_q, y, a_q, s_q, explain_func, extra):
    spec = METRICS.get(name)
    init = {k: (_lookup(v) if k in CALLABLE_PARAMS or (k == "distance_func" and v == "euclidean_distance") else v)
            for k, v in recorded.items()
            if k not in spec.call_defaults and k not in ADAPTER_KEYS and k not in spec.adapter_only}
    if name in STOCK:
        init.pop("order", None)  # the suite's ROAD order; stock ROAD is MoRF only
    if name == "road_lerf":
        a_q = -a_q  # LeRF = MoRF over the reversed ranking
    call = {k: v for k, v in recorded.items() if k in spec.call_defaults}
    metric = STOCK.get(name, spec.quantus_class)(**init, return_aggregate=False, disable_warnings=True)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    kwargs = {"explain_func": explain_func, **extra} if spec.needs_explain_func else {}
    raw = metric(model=model, x_batch=x_q.copy(), y_batch=y.copy(),
                 a_batch=a_q.copy() if spec.pass_attributions else None,
                 s_batch=None if s_q is None else s_q.copy(), channel_first=True, device="cpu", batch_size=N,
                 **call, **kwargs)
    return raw, metric


def _reduce_directly(name, raw, x_q):
    """The documented reductions, written with plain numpy."""
    if name in ("pixel_flipping", "selectivity"):
        curves = np.asarray(raw, dtype=np.float64)
        return np.trapezoid(curves, dx=1.0 / (curves.shape[1] - 1), axis=1)
    if name == "region_perturbation":
        return np.asarray(raw, dtype=np.float64).mean(axis=1)
    if name in ("mprt", "smooth_mprt"):
        return np.mean([v for k, v in raw.items() if k != "original"], axis=0)
    if name == "mprt_layer":  # layer_index 0: the first layer of the cascade
        return np.asarray([v for k, v in raw.items() if k != "original"][0], dtype=np.float64)
    if name == "irof":
        segments = [len(np.unique(quantus_utils.get_superpixel_segments(
            img=np.moveaxis(x, 0, -1).astype("double"), segmentation_method="slic"))) for x in x_q]
        return np.asarray(raw, dtype=np.float64) / np.asarray(segments)
    return np.asarray(raw, dtype=np.float64).reshape(-1)


@pytest.mark.parametrize(("name", "modality"), _cases())
def test_score_equals_a_direct_quantus_call(name, modality):
    ctx, model, x_q, a_q, s_q, explain_func, extra = _setup(name, modality)
    # smooth_mprt draws its noisy copies once per sample for every model pass (stock Quantus redraws them per pass:
    # randomisation.SmoothMPRTWithExplainFunc, tested in test_meaning.py); the rest of the loop must equal stock
    # Quantus, which it does exactly with the clean input alone.
    params = {"nr_samples": 1} if name == "smooth_mprt" else {}
    result = score(METRICS.get(name), params, ctx, SEED)
    # Nothing set aside by the adapter's screens: the only NaNs are ones Quantus itself produces.
    quantus_nans = ("", "prediction flipped by the perturbation", NO_NEIGHBOUR, EVERY_NEIGHBOUR)
    assert all(m in quantus_nans for m in result.message), result.message
    y = ctx.targets.numpy()
    raw, _ = _direct(name, result.params, model, x_q, y, a_q, s_q if METRICS.get(name).needs_ground_truth else None,
                     explain_func, extra)
    if name in ("road", "road_lerf"):  # stock ROAD keeps only {percentage: mean over samples}; compare the grand means
        assert np.mean(result.values) == pytest.approx(np.mean(list(raw.values())), abs=1e-6)
        return
    expected = _reduce_directly(name, raw, x_q)
    if name == "sufficiency":  # Quantus reports 0 without neighbours, the batch's share with all: NaN with a reason
        lonely = np.array([m == NO_NEIGHBOUR for m in result.message])
        np.testing.assert_array_equal(expected[lonely], 0.0)
        expected = np.where(np.isnan(result.values), np.nan, expected)
    np.testing.assert_allclose(result.values, expected, rtol=1e-6, atol=1e-6, equal_nan=True)


def test_the_reductions_agree_with_numpy():
    curves = np.random.default_rng(0).random((5, 7))
    np.testing.assert_allclose(functional.curve_auc(curves), np.trapezoid(curves, dx=1 / 6, axis=1), rtol=1e-12)
    np.testing.assert_allclose(functional.curve_auc(curves[:, :1]), curves[:, 0])
    np.testing.assert_allclose(functional.curve_mean(curves), curves.mean(axis=1))
    layers = {"original": [1.0, 1.0], "a": [0.2, 0.4], "b": [0.4, 0.0]}
    np.testing.assert_allclose(functional.mean_over_layers(layers), [0.3, 0.2])
