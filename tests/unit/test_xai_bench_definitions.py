"""XAI-Bench's definitions (Liu et al. 2021): the GT-Shapley score (``conditional_shapley_mse``) against its closed
form, and the least-squares model (their ``lr``) against scikit-learn's LinearRegression."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import xaibench
from xaibench.engine.applicability import size_not_applicable
from xaibench.engine.datasets import build_dataset
from xaibench.errors import UserError
from xaibench.metrics import testing
from xaibench.metrics.quantus_adapter import score
from xaibench.registry import DATASETS, METRICS, MODELS
from xaibench.types import Modality, Split, Status


def gaussian_sample(rho: float, n: int = 200) -> torch.Tensor:
    """``(n, 2)`` rows whose sample mean is exactly 0 and sample covariance exactly ``[[1, rho], [rho, 1]]``."""
    z = np.random.default_rng(0).standard_normal((n, 2))
    z -= z.mean(axis=0)
    whitened = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return torch.as_tensor(whitened @ np.linalg.cholesky(np.array([[1.0, rho], [rho, 1.0]])).T)


def linear_context(w: torch.Tensor, x: torch.Tensor, attributions: torch.Tensor, train: torch.Tensor):
    model = torch.nn.Linear(2, 2).double().eval()
    with torch.no_grad():
        model.weight.copy_(torch.stack([w, -w]))
        model.bias.zero_()
    return testing.context(model, Modality.TABULAR, x, None, attributions=attributions,
                           targets=torch.zeros(len(x), dtype=torch.long),
                           train_split=Split(train, torch.zeros(len(train), dtype=torch.long), ()))


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_gt_shapley_mse_of_the_marginal_values_has_the_gaussian_closed_form(rho):
    """Two unit-variance features with correlation rho and ``f = w @ x``: the conditional Shapley values are
    ``phi_1 = w1 x1 + rho/2 (w2 x1 - w1 x2)``, ``phi_2 = w2 x2 - rho/2 (w2 x1 - w1 x2)``, so the marginal values
    ``w * x`` (Kernel SHAP's answer) are off by ``rho/2 (w2 x1 - w1 x2)`` in each feature and XAI-Bench's score
    (mean over features of the squared error) is ``rho^2 / 4 (w2 x1 - w1 x2)^2``."""
    w = torch.tensor([2.0, -1.0], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.5], [-0.5, 2.0], [0.3, 0.3]], dtype=torch.float64)
    ctx = linear_context(w, x, w * x, gaussian_sample(rho))
    result = score(METRICS.get("conditional_shapley_mse"), {}, ctx, seed=0)
    assert all(s == Status.OK.value for s in result.status), result.message
    cross = (w[1] * x[:, 0] - w[0] * x[:, 1]).numpy()
    np.testing.assert_allclose(result.values, rho**2 / 4 * cross**2, rtol=1e-9, atol=1e-12)
    relative = score(METRICS.get("conditional_shapley_distance"), {}, ctx, seed=0).values
    assert (relative[cross != 0] > 0).all() if rho else np.allclose(relative, 0.0, atol=1e-9)


def test_gt_shapley_mse_is_zero_for_the_conditional_values_and_averages_squares_not_norms():
    w = torch.tensor([2.0, -1.0], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.5], [-0.5, 2.0]], dtype=torch.float64)
    train = gaussian_sample(0.6)
    cross = w[1] * x[:, 0] - w[0] * x[:, 1]
    phi = torch.stack([w[0] * x[:, 0] + 0.3 * cross, w[1] * x[:, 1] - 0.3 * cross], dim=1)
    exact = score(METRICS.get("conditional_shapley_mse"), {}, linear_context(w, x, phi, train), seed=0).values
    np.testing.assert_allclose(exact, 0.0, atol=1e-20)
    shifted = phi + torch.tensor([[3.0, 0.0], [1.0, -1.0]], dtype=torch.float64)
    off = score(METRICS.get("conditional_shapley_mse"), {}, linear_context(w, x, shifted, train), seed=0).values
    np.testing.assert_allclose(off, [9.0 / 2, 2.0 / 2], rtol=1e-9)  # XAI-Bench: squared error / (N * D)


def tabular(correlation: float, n_samples: int = 400):
    return build_dataset(DATASETS.create("synthetic_tabular", {"n_samples": n_samples,
                                                               "correlation": correlation}), 0)


def test_least_squares_equals_sklearn_linear_regression_on_one_hot_labels():
    from sklearn.linear_model import LinearRegression

    dataset = tabular(0.5, 120)
    spec = MODELS.create("least_squares", {})
    module = spec.fit(spec.build(dataset), dataset, seed=0)
    x, y = dataset.train.x.double().numpy(), dataset.train.y.numpy()
    reference = LinearRegression().fit(x, np.eye(2)[y])
    np.testing.assert_allclose(module[1].weight.detach().double().numpy(), reference.coef_, atol=1e-6)
    np.testing.assert_allclose(module[1].bias.detach().double().numpy(), reference.intercept_, atol=1e-6)
    again = spec.fit(spec.build(dataset), dataset, seed=1)  # closed form: no training randomness
    assert torch.equal(again[1].weight, module[1].weight) and torch.equal(again[1].bias, module[1].bias)


def test_least_squares_recovers_the_generating_direction_when_nuisance_columns_are_correlated():
    """Brillinger (1982): with Gaussian features and a label that depends on ``w @ x`` only, the least-squares
    coefficients are proportional to ``w``, so the correlated nuisance columns get (nearly) no weight."""
    dataset = tabular(0.9, 3000)
    spec = MODELS.create("least_squares", {})
    weight = spec.fit(spec.build(dataset), dataset, seed=0)[1].weight.detach().double().numpy()
    direction, truth = weight[1] - weight[0], np.asarray(dataset.coefficients)
    cosine = direction @ truth / np.linalg.norm(direction) / np.linalg.norm(truth)
    assert cosine > 0.97, (direction, truth)


def test_least_squares_rejects_a_negative_ridge():
    with pytest.raises(UserError, match="ridge"):
        MODELS.create("least_squares", {"ridge": -1.0}).build(tabular(0.0, 60))


# Monte Carlo conditional values (n_draws > 0) ---------------------------------------------------------------------
def three_feature_context(x: torch.Tensor) -> tuple:
    """A linear logit ``w @ x`` on 3 correlated Gaussian features (train split of 400 rows), float64."""
    cov = np.array([[1.0, 0.6, 0.3], [0.6, 1.0, -0.4], [0.3, -0.4, 1.0]])
    z = np.random.default_rng(1).standard_normal((400, 3)) @ np.linalg.cholesky(cov).T
    train = torch.as_tensor(z)
    w = torch.tensor([1.5, -2.0, 0.5], dtype=torch.float64)
    model = torch.nn.Linear(3, 2).double().eval()
    with torch.no_grad():
        model.weight.copy_(torch.stack([w, -w]))
        model.bias.zero_()
    ctx = testing.context(model, Modality.TABULAR, x, None, attributions=torch.zeros_like(x),
                          targets=torch.zeros(len(x), dtype=torch.long),
                          train_split=Split(train, torch.zeros(len(train), dtype=torch.long), ()))
    return ctx, w.numpy(), np.cov(z, rowvar=False)


def test_monte_carlo_conditional_shapley_is_within_its_standard_error_of_the_exact_linear_values():
    """``f = w @ x``: with ``n`` draws ``v_hat(S) = v(S) + w_R . (mean of n draws of N(0, Sigma_R|S))``, so
    ``Var v_hat(S) = w_R' Sigma_R|S w_R / n <= w' Sigma w / n`` (conditioning never adds variance). The values are
    linear in the coalition values, ``phi = C v``, and each coalition draws independently, so
    ``sd(phi_hat_i) <= sqrt(sum_S C_iS^2 w' Sigma w / n)``; the draws must land within 4 such bounds."""
    from xaibench.metrics.conditional_shapley import conditional_shapley
    from xaibench.metrics.shapley import shapley_from_values

    x = torch.tensor([[1.0, 0.5, -1.0], [-0.5, 2.0, 0.3], [0.2, -1.2, 1.1]], dtype=torch.float64)
    ctx, w, cov = three_feature_context(x)
    n_draws = 500
    torch.manual_seed(3)  # the metric's seed (score() seeds torch before a native metric)
    sampled = conditional_shapley(ctx, n_draws=n_draws, softmax=False)
    exact = conditional_shapley(ctx, n_draws=0, softmax=False)
    weights = np.stack([shapley_from_values(np.eye(8)[s], 3) for s in range(8)], axis=1)  # C: (F, 2^F)
    bound = np.sqrt((weights**2).sum(axis=1) * (w @ cov @ w) / n_draws)  # (F,)
    assert (np.abs(sampled - exact) > 0).any()  # the draws are used
    assert (np.abs(sampled - exact) <= 4 * bound).all(), (np.abs(sampled - exact) / bound).max()


def test_monte_carlo_conditional_shapley_of_a_sample_does_not_depend_on_its_batch():
    """Each sample draws from the metric's seed and its own bytes: reordering the batch, or scoring a sample
    alone, gives bit-identical values; another metric seed gives other draws."""
    from xaibench.metrics.conditional_shapley import conditional_shapley

    x = torch.tensor([[1.0, 0.5, -1.0], [-0.5, 2.0, 0.3], [0.2, -1.2, 1.1]], dtype=torch.float64)

    def phi(rows: torch.Tensor, seed: int = 3) -> np.ndarray:
        torch.manual_seed(seed)
        return conditional_shapley(three_feature_context(rows)[0], n_draws=50, softmax=False)

    together = phi(x)
    np.testing.assert_array_equal(phi(x.flip(0)), together[::-1])
    np.testing.assert_array_equal(phi(x[1:2])[0], together[1])
    assert not np.array_equal(phi(x, seed=4), together)


@pytest.mark.parametrize("name", ["conditional_shapley_distance", "conditional_shapley_mse"])
def test_n_draws_is_refused_unless_a_non_negative_integer(name):
    """``n_draws=-1`` would run as exact under its own key, ``1.5`` would fail at run time: both refused up front."""
    spec = METRICS.get(name)
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(UserError, match=f"parameter 'n_draws' must be a non-negative integer, got {bad!r}"):
            spec.check_params({"n_draws": bad})
    assert spec.check_params({"n_draws": 0})["n_draws"] == 0 and spec.check_params({"n_draws": 8})["n_draws"] == 8


@pytest.mark.parametrize("name", ["conditional_shapley_distance", "conditional_shapley_mse", "shapley_distance"])
def test_too_many_features_for_exact_shapley_is_declared_not_applicable(name):
    spec = METRICS.get(name)
    assert size_not_applicable(spec, {}, (12,)) is None and size_not_applicable(spec, {"max_features": 4}, (4,)) is None
    assert size_not_applicable(spec, {}, (13,)) == (
        f"metric {name} enumerates all 2^F feature coalitions: 13 features exceed max_features=12 (raise "
        f"max_features, at 2^F model calls per sample, or use fewer features)")
    assert "10 features exceed max_features=3" in size_not_applicable(spec, {"max_features": 3}, (10,))
    assert size_not_applicable(METRICS.get("openxai_fa"), {}, (30,)) is None  # no coalitions: no cap


def test_a_sweep_records_too_many_features_as_not_applicable_rows_not_errors(workdir):
    """iris has 4 features: ``max_features=3`` makes not_applicable rows (the other metrics still score)."""
    table = xaibench.run(["model=logreg", "dataset=iris", "method=saliency", "n_samples=3", "metrics=ground_truth",
                          "metrics.shapley_distance.max_features=3", "metrics.conditional_shapley_mse.max_features=3"])
    status = {metric: set(rows["status"]) for metric, rows in table.groupby("metric")}
    assert status["shapley_distance"] == status["conditional_shapley_mse"] == {Status.NOT_APPLICABLE.value}
    assert status["conditional_shapley_distance"] == {Status.OK.value}
    reasons = set(table.loc[table["metric"] == "shapley_distance", "message"])
    assert reasons == {"metric shapley_distance enumerates all 2^F feature coalitions: 4 features exceed "
                       "max_features=3 (raise max_features, at 2^F model calls per sample, or use fewer features)"}


def test_scoring_arrays_also_declares_too_many_features_not_applicable():
    """``xaibench.evaluate`` on a 5-feature table: the capped metric is not_applicable, the uncapped one scores."""
    torch.manual_seed(0)
    net = torch.nn.Linear(5, 2)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    table = xaibench.evaluate(net, x, np.zeros(4, dtype=np.int64), x * 0.5, modality="tabular",
                              metrics={"shapley_distance": {"max_features": 4}, "sparseness": {}})
    status = {metric: set(rows["status"]) for metric, rows in table.groupby("metric")}
    assert status == {"shapley_distance": {Status.NOT_APPLICABLE.value}, "sparseness": {Status.OK.value}}
    assert "5 features exceed max_features=4" in table.loc[table["metric"] == "shapley_distance", "message"].iloc[0]
