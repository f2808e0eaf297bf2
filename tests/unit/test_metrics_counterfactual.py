"""Counterfactual metrics against closed forms, through the pure functions and through ``score``."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xaibench.metrics import counterfactual as cf
from xaibench.metrics import testing
from xaibench.metrics.quantus_adapter import score
from xaibench.registry import METRICS
from xaibench.types import Modality, Split, Status


def _sign_model() -> nn.Module:
    """Class 1 iff x0 > 0 (two features): logits (-x0, x0)."""
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    return model.eval()


def _ctx(x, counterfactuals, train_x=None, train_y=None):
    model = _sign_model()
    train = None if train_x is None else Split(train_x, train_y, tuple(str(i) for i in range(len(train_x))))
    return testing.context(model, Modality.TABULAR, x, None, counterfactuals=counterfactuals, n_classes=2,
                           attributions=torch.ones_like(x), train_split=train)


def test_pure_functions_match_closed_forms():
    x = np.zeros((1, 2))
    cfs = np.array([[[3.0, 4.0], [6.0, 8.0], [0.0, 0.0]]])  # (N=1, K=3, F=2)
    np.testing.assert_allclose(cf.proximity(x, cfs, p=2), [(5 + 10 + 0) / 3])
    np.testing.assert_allclose(cf.proximity(x, cfs, p=1), [(7 + 14 + 0) / 3])
    np.testing.assert_allclose(cf.changed_features(x, cfs, tolerance=1e-6), [(2 + 2 + 0) / 3])
    # pairwise distances 5, 10, 5 (each ordered pair counted twice, K(K-1) = 6 pairs)
    np.testing.assert_allclose(cf.diversity(cfs), [(5 + 10 + 5) * 2 / 6])
    valid = np.array([[True, True, False]])  # the last slot is x itself: left out
    np.testing.assert_allclose(cf.proximity(x, cfs, p=2, valid=valid), [(5 + 10) / 2])
    np.testing.assert_allclose(cf.changed_features(x, cfs, tolerance=1e-6, valid=valid), [2.0])
    np.testing.assert_allclose(cf.diversity(cfs, valid), [5.0])
    assert np.isnan(cf.proximity(x, cfs, p=1, valid=~np.ones((1, 3), dtype=bool))).all()
    assert np.isnan(cf.diversity(cfs[:, :1])).all()
    np.testing.assert_allclose(cf.validity(np.array([[1, 0, 1]]), np.array([0])), [2 / 3])
    train_x = np.array([[3.0, 0.0], [6.0, 9.0], [0.0, 1.0]])
    train_y = np.array([1, 1, 0])
    classes = np.array([[1, 1, 0]])
    # (3,4)->(3,0): 4; (6,8)->(6,9): 1; (0,0)->(0,1) of class 0: 1
    np.testing.assert_allclose(cf.plausibility(cfs, classes, train_x, train_y), [(4 + 1 + 1) / 3])
    assert np.isnan(cf.plausibility(cfs, np.array([[2, 2, 2]]), train_x, train_y)).all()


def test_scored_through_the_adapter():
    x = torch.tensor([[-1.0, 0.0], [-2.0, 1.0], [0.5, 0.5]])
    counterfactuals = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [-0.5, 0.5]])  # flips, does not flip, flips
    train_x = torch.tensor([[1.0, 0.5], [-1.0, 1.0], [-0.5, 2.5]])
    train_y = torch.tensor([1, 0, 0])
    ctx = _ctx(x, counterfactuals, train_x, train_y)
    values = {name: score(METRICS.get(name), {}, ctx, seed=0) for name in METRICS.names()
              if METRICS.get(name).family == "counterfactual"}
    np.testing.assert_array_equal(values["cf_validity"].values, [1, 0, 1])
    # the second counterfactual does not flip the prediction: no distance, sparsity or plausibility to measure
    np.testing.assert_allclose(values["cf_proximity_l1"].values, [2, np.nan, 1])
    np.testing.assert_allclose(values["cf_proximity_l2"].values, [2, np.nan, 1])
    np.testing.assert_allclose(values["cf_sparsity"].values, [1, np.nan, 1])
    # cf (1,0) class 1 -> nearest class-1 train (1,0.5): 0.5; (-0.5,0.5) class 0 -> (-1,1)
    np.testing.assert_allclose(values["cf_plausibility"].values, [0.5, np.nan, np.sqrt(0.5)])
    diversity = values["cf_diversity"]
    assert diversity.status == [Status.NAN.value] * 3
    assert set(diversity.message) == {"one counterfactual per sample: diversity needs several"}
    for name, result in values.items():
        assert METRICS.get(name).needs_counterfactuals
        if name not in ("cf_diversity", "cf_validity"):
            assert result.status == [Status.OK.value, Status.NAN.value, Status.OK.value], (name, result.message)
            assert result.message[1] == "no valid counterfactual (the prediction did not flip): nothing to measure"
    assert values["cf_validity"].status == [Status.OK.value] * 3


def test_several_counterfactuals_per_sample():
    x = torch.zeros(2, 2)  # class 0 (tied logits: argmax 0)
    counterfactuals = torch.tensor([[[3.0, 4.0], [-3.0, -4.0]], [[1.0, 0.0], [2.0, 0.0]]])  # (N, K=2, F)
    ctx = _ctx(x, counterfactuals)
    diversity = score(METRICS.get("cf_diversity"), {}, ctx, 0)
    np.testing.assert_allclose(diversity.values, [np.nan, 1.0])  # sample 0 has one valid counterfactual
    assert diversity.message[0].startswith("fewer than 2 valid counterfactuals (the prediction did not flip)")
    np.testing.assert_allclose(score(METRICS.get("cf_validity"), {}, ctx, 0).values, [0.5, 1.0])
    np.testing.assert_allclose(score(METRICS.get("cf_proximity_l2"), {}, ctx, 0).values, [5.0, 1.5])


def test_a_failed_counterfactual_search_does_not_score_a_perfect_proximity_or_sparsity():
    """DiCE fills the slots it found nothing for with x itself, and a search that never flips returns a point at
    or near x: averaged over every slot that was the best possible proximity, sparsity and plausibility (0). The
    quality metrics are the mean over valid counterfactuals (DiCE, CARLA), NaN with the reason where none is."""
    x = torch.tensor([[-1.0, 0.0], [-1.0, 0.0]])  # class 0
    counterfactuals = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]], [[-1.0, 0.0], [-1.0, 0.0]]])  # one found / none
    train = (torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), torch.tensor([1, 0]))
    ctx = _ctx(x, counterfactuals, *train)
    got = {name: score(METRICS.get(name), {}, ctx, 0) for name in
           ("cf_validity", "cf_proximity_l1", "cf_proximity_l2", "cf_sparsity", "cf_plausibility")}
    np.testing.assert_allclose(got["cf_validity"].values, [0.5, 0.0])
    np.testing.assert_allclose(got["cf_proximity_l1"].values, [2.0, np.nan])  # was (2 + 0) / 2 = 1 and 0
    np.testing.assert_allclose(got["cf_proximity_l2"].values, [2.0, np.nan])
    np.testing.assert_allclose(got["cf_sparsity"].values, [1.0, np.nan])  # was 0.5 and 0
    np.testing.assert_allclose(got["cf_plausibility"].values, [0.0, np.nan])
    for name in ("cf_proximity_l1", "cf_proximity_l2", "cf_sparsity", "cf_plausibility"):
        assert got[name].status == [Status.OK.value, Status.NAN.value]
        assert "no valid counterfactual" in got[name].message[1]


def test_validity_is_against_the_models_prediction_not_the_explained_label():
    """With ``target=label`` a misclassified sample's explained class is not the prediction a counterfactual has to
    change: a point that keeps the prediction is not a counterfactual, whatever the label."""
    x = torch.tensor([[1.0, 0.0]])  # predicted class 1; labelled 0
    unchanged = torch.tensor([[2.0, 0.0]])  # still class 1: no counterfactual
    ctx = testing.context(_sign_model(), Modality.TABULAR, x, None, counterfactuals=unchanged, n_classes=2,
                          targets=torch.tensor([0]), attributions=torch.ones_like(x))
    assert score(METRICS.get("cf_validity"), {}, ctx, 0).values.tolist() == [0.0]  # was 1.0
    assert score(METRICS.get("cf_proximity_l2"), {}, ctx, 0).status == [Status.NAN.value]


def test_plausibility_without_a_training_sample_of_the_class_is_a_status():
    x = torch.tensor([[-1.0, 0.0]])
    ctx = _ctx(x, torch.tensor([[1.0, 0.0]]), torch.tensor([[-1.0, 0.0]]), torch.tensor([0]))
    result = score(METRICS.get("cf_plausibility"), {}, ctx, 0)
    assert result.status == [Status.NAN.value]
    assert result.message == ["no training sample of the counterfactual's predicted class"]


class _NineDetector(testing.TinyTextModel):
    """Class 1 iff token 9 occurs."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        has = (ids == 9).any(dim=1).float()
        return torch.stack([1 - has, has], dim=1)


def test_text_counterfactuals_count_changed_tokens():
    model = _NineDetector()
    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    changed = torch.tensor([[1, 9, 3, 4, 5, 6, 7, 9]])
    ctx = testing.context(model, Modality.TEXT, ids, None, counterfactuals=changed, n_classes=2,
                          attributions=torch.ones(1, 8))
    assert score(METRICS.get("cf_sparsity"), {}, ctx, 0).values.tolist() == [2.0]
    assert Modality.TEXT not in METRICS.get("cf_proximity_l2").modalities  # token ids have no geometry


def test_mismatched_counterfactuals_are_an_error():
    ctx = _ctx(torch.zeros(2, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="do not match"):
        score(METRICS.get("cf_proximity_l1"), {}, ctx, 0)
