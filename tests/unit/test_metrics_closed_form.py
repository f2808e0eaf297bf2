"""Closed-form and known-result checks: sparsity extremes, a perfect mask, faithfulness of IG vs a random control."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.distance import cdist

from xaibench.errors import UserError
from xaibench.metrics import functional, testing
from xaibench.metrics.quantus_adapter import score
from xaibench.registry import DATASETS, EXPLAINERS, METRICS
from xaibench.types import Modality, Status

LOCALISATION = [n for n in METRICS.names() if METRICS.get(n).family == "localisation"]


def _ctx(attributions, n_features, masks=None, modality=Modality.TABULAR):
    x = torch.randn(len(attributions), n_features)
    return testing.context(testing.tiny_mlp(n_features, 2), modality, x, None, attributions=attributions,
                           targets=torch.zeros(len(x), dtype=torch.long), masks=masks, n_classes=2)


def test_sparseness_of_a_one_hot_map_is_maximal():
    d = 10
    one_hot = torch.eye(d)  # ten samples, each a one-hot map at a different position
    others = torch.rand(20, d, generator=torch.Generator().manual_seed(0))
    others[:10, :2] = 5.0  # two-hot-ish maps: sparse but not maximal
    result = score(METRICS.get("sparseness"), {}, _ctx(torch.cat([one_hot, others]), d), seed=0)
    values = result.values
    gini_max = (d - 1) / d  # Gini index of a one-hot vector of length d
    np.testing.assert_allclose(values[:d], gini_max, atol=1e-5)  # Quantus adds 1e-7 to every entry
    assert values[d:].max() < values[:d].min()


def test_complexity_of_a_uniform_map_is_log_d_and_of_a_one_hot_map_zero():
    for d in (10, 64):
        maps = torch.cat([torch.full((1, d), 0.3), torch.eye(d)[:1], torch.rand(3, d) + 0.01])
        result = score(METRICS.get("complexity"), {}, _ctx(maps, d), seed=0)
        assert result.values[0] == pytest.approx(math.log(d), abs=1e-6)
        assert result.values[1] == pytest.approx(0.0, abs=1e-6)
        assert (result.values[2:] < math.log(d)).all() and (result.values[2:] > 0).all()


def test_effective_complexity_counts_features_above_eps_of_the_max():
    maps = torch.tensor([[1.0, 0.5, 0.04, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.2, 1.0], [1.0] * 5 + [0.01]])
    result = score(METRICS.get("effective_complexity"), {"eps": 0.05}, _ctx(maps, 6), seed=0)
    np.testing.assert_array_equal(result.values, [2, 2, 5])


def test_per_sample_normaliser():
    a = np.array([[[1.0, -4.0]], [[0.0, 0.0]], [[0.5, 0.25]]])
    np.testing.assert_allclose(functional.normalise_by_max_per_sample(a),
                               [[[0.25, -1.0]], [[0.0, 0.0]], [[1.0, 0.5]]])
    np.testing.assert_allclose(functional.normalise_by_max_per_sample(np.array([2.0, -1.0])), [1.0, -0.5])


def test_small_helpers():
    assert functional.nearest_divisor(30, 1.5) == 1 and functional.nearest_divisor(64, 3.2) == 4
    assert functional.nearest_divisor(784, 39.2) == 49
    u, v = np.array([0.0, 3.0, 1.0]), np.array([4.0, 0.0, 1.0])
    assert functional.euclidean_distance(u, v) == pytest.approx(5.0)
    a = np.random.default_rng(0).random((4, 5))
    np.testing.assert_allclose(cdist(a, a, functional.euclidean_distance, V=None), cdist(a, a, "euclidean"))
    flags = np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.0], [2.0, -1.0]])
    np.testing.assert_array_equal(functional.is_all_zero(flags), [True, False, False, False])
    np.testing.assert_array_equal(functional.is_constant(flags), [True, True, False, False])
    np.testing.assert_array_equal(functional.has_no_positive(flags), [True, False, True, False])


def assert_perfect_mask_scores(ctx):
    for name in LOCALISATION:
        result = score(METRICS.get(name), {}, ctx, seed=0)
        ok = [v for v, s in zip(result.values, result.status) if s == Status.OK.value]
        assert len(ok) == len(ctx.x), (name, result.message)
        np.testing.assert_allclose(ok, 1.0, atol=1e-6, err_msg=name)


def test_a_perfect_mask_scores_perfect_and_a_random_map_does_not():
    masks = torch.zeros(8, 12)
    for i in range(8):
        masks[i, i: i + 3] = 1.0
    assert_perfect_mask_scores(_ctx(masks.clone(), 12, masks=masks))
    x, _, image_masks = testing.bar_images(8)
    image_ctx = testing.context(testing.tiny_cnn(2), Modality.IMAGE, x, None, attributions=image_masks.clone(),
                                targets=torch.zeros(8, dtype=torch.long), masks=image_masks, n_classes=2)
    assert_perfect_mask_scores(image_ctx)
    noise = torch.rand(8, 12, generator=torch.Generator().manual_seed(0))
    for name in LOCALISATION:
        assert score(METRICS.get(name), {}, _ctx(noise, 12, masks=masks), seed=0).values.mean() < 0.9, name


def _dummy_model(dataset):
    if dataset.modality is Modality.TEXT:
        length = dataset.test.x.shape[1]
        return testing.TinyTextModel(vocab=max(dataset.vocab_size, int(dataset.test.x.max()) + 1), length=length,
                                     n_classes=dataset.n_classes)
    return testing.tiny_mlp(int(np.prod(dataset.input_shape)), dataset.n_classes)


@pytest.mark.parametrize("name", [n for n in DATASETS.names() if getattr(DATASETS.get(n), "has_ground_truth", False)
                                  and n.startswith("synthetic")])
def test_localisation_on_the_synthetic_sets_scores_the_true_mask_as_perfect(name):
    dataset = DATASETS.create(name).build(0)
    test = dataset.test.head(16)
    ctx = testing.context(_dummy_model(dataset), dataset.modality, test.x, None, attributions=test.masks.clone(),
                          targets=test.y, masks=test.masks, n_classes=dataset.n_classes)
    assert_perfect_mask_scores(ctx)


def _trained_tabular():
    """A two-layer MLP trained on y = [x0 + x1 - x2 > 0] with 7 nuisance features (test accuracy >= 0.9)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(600, 10, generator=gen)
    y = ((x[:, 0] + x[:, 1] - x[:, 2]) > 0).long()
    model = testing.train(testing.tiny_mlp(10, 2, hidden=32), x[:500], y[:500], steps=300, lr=0.01)
    with torch.no_grad():
        accuracy = (model(x[500:]).argmax(1) == y[500:]).float().mean().item()
    assert accuracy >= 0.9
    return model, x[500:532]


def test_faithfulness_ranks_integrated_gradients_above_the_random_control():
    model, x = _trained_tabular()
    scores = {}
    for method in ("integrated_gradients", "random"):
        explainer = EXPLAINERS.create(method)
        torch.manual_seed(0)
        ctx = testing.context(model, Modality.TABULAR, x, explainer, n_classes=2)
        scores[method] = {m: score(METRICS.get(m), {}, ctx, seed=1).values
                          for m in ("faithfulness_correlation", "pixel_flipping")}
    ig, rnd = scores["integrated_gradients"], scores["random"]
    # Paired one-sided Wilcoxon signed-rank tests over the 32 quickstart-sized samples.
    assert stats.wilcoxon(ig["faithfulness_correlation"], rnd["faithfulness_correlation"],
                          alternative="greater").pvalue < 0.001
    assert stats.wilcoxon(ig["pixel_flipping"], rnd["pixel_flipping"], alternative="less").pvalue < 0.001


def test_np_trapz_shim_lets_quantus_aucs_run_on_numpy_2():
    import quantus

    assert np.trapz is np.trapezoid  # removed in numpy 2.4; xaibench.metrics._compat restores it
    model = testing.tiny_mlp(10, 3).eval()
    x = np.random.default_rng(0).standard_normal((4, 1, 10)).astype(np.float32)
    a = np.random.default_rng(1).random((4, 1, 10)).astype(np.float32)
    y = np.zeros(4, dtype=np.int64)
    curves = quantus.PixelFlipping(disable_warnings=True)(model=model, x_batch=x, y_batch=y, a_batch=a,
                                                           channel_first=True)
    aucs = quantus.PixelFlipping(return_auc_per_sample=True, disable_warnings=True)(
        model=model, x_batch=x, y_batch=y, a_batch=a, channel_first=True)
    np.testing.assert_allclose(aucs, np.trapezoid(np.asarray(curves), dx=1, axis=1))
    with pytest.raises(UserError, match="return_auc_per_sample must stay false"):
        score(METRICS.get("pixel_flipping"), {"return_auc_per_sample": True}, _ctx(torch.rand(4, 10), 10), seed=0)
