"""Metrics defined as peers define them (captum, Kindermans et al., ERASER/ferret, OpenXAI, exact Shapley values),
each checked against a closed form or a direct re-computation on the same inputs.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from xaibench.explainers.seeding import generator, sample_seeds
from xaibench.metrics import testing
from xaibench.metrics.quantus_adapter import score
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.types import Modality, Status


def linear(n_features: int = 5, n_classes: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_features, n_classes)).eval()


def values(name: str, ctx, seed: int = 7, **params) -> np.ndarray:
    result = score(METRICS.get(name), params, ctx, seed=seed)
    assert all(s == Status.OK.value for s in result.status), result.message
    return result.values


# captum infidelity ------------------------------------------------------------------------------------------
def test_captum_infidelity_is_zero_for_the_gradient_of_a_linear_model() -> None:
    model = linear()
    x = torch.randn(4, 5)
    ctx = testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("saliency", {"abs": False}))
    for normalize in (True, False):
        np.testing.assert_allclose(values("captum_infidelity", ctx, normalize=normalize), 0.0, atol=1e-9)


def test_captum_infidelity_equals_its_definition_on_the_same_perturbations() -> None:
    """``mean_s (I_s . a - (f(x) - f(x - I_s)))^2`` recomputed from the per-sample draws the metric uses."""
    torch.manual_seed(0)
    model = testing.tiny_mlp(5, 3)
    x, a = torch.randn(3, 5), torch.randn(3, 5)
    ctx = testing.context(model, Modality.TABULAR, x, None, attributions=a)
    got = values("captum_infidelity", ctx, seed=11, normalize=False, n_perturb_samples=50, noise_std=0.3)
    torch.manual_seed(11)  # what the adapter's seed_everything does before a native metric
    expected = []
    for i, seed in enumerate(sample_seeds(x, "captum_infidelity")):
        noise = torch.randn((50, 5), generator=generator(seed)) * 0.3
        with torch.no_grad():
            drop = model(x[i : i + 1])[0, ctx.targets[i]] - model(x[i : i + 1] - noise)[:, ctx.targets[i]]
        expected.append(float((((noise * a[i]).sum(dim=1) - drop) ** 2).mean()))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_captum_infidelity_of_a_wrong_linear_attribution_approaches_sigma_squared_distance() -> None:
    """Linear f: E[(I.(a - w))^2] = sigma^2 ||a - w||^2 (Monte Carlo with 4000 draws: within 10%)."""
    model = linear()
    x, a = torch.randn(2, 5), torch.randn(2, 5)
    ctx = testing.context(model, Modality.TABULAR, x, None, attributions=a)
    got = values("captum_infidelity", ctx, normalize=False, n_perturb_samples=4000, noise_std=0.5)
    w = model[1].weight.detach()[ctx.targets]
    np.testing.assert_allclose(got, 0.25 * ((a - w) ** 2).sum(dim=1).numpy(), rtol=0.1)


def test_captum_infidelity_closed_forms_hold_on_time_series_too() -> None:
    """Series ``(N, C, T)`` through a linear model: the gradient has infidelity 0, and a wrong map
    ``sigma^2 ||a - w||^2`` over all C x T steps (Monte Carlo with 4000 draws: within 10%)."""
    model = linear(n_features=2 * 6)
    x = torch.randn(3, 2, 6)
    gradient = testing.context(model, Modality.TIME_SERIES, x, EXPLAINERS.create("saliency", {"abs": False}))
    np.testing.assert_allclose(values("captum_infidelity", gradient, normalize=False), 0.0, atol=1e-9)
    a = torch.randn(3, 2, 6)
    ctx = testing.context(model, Modality.TIME_SERIES, x, None, attributions=a)
    got = values("captum_infidelity", ctx, normalize=False, n_perturb_samples=4000, noise_std=0.5)
    w = model[1].weight.detach()[ctx.targets].reshape(3, 2, 6)
    np.testing.assert_allclose(got, 0.25 * ((a - w) ** 2).sum(dim=(1, 2)).numpy(), rtol=0.1)


# input invariance --------------------------------------------------------------------------------------------
def test_input_invariance_closed_forms_on_a_linear_model() -> None:
    """Gradient: invariant (0). x * gradient and zero-baseline IG give ``sum|c w| / sum|x w|`` exactly."""
    model = linear()
    x = torch.randn(4, 5)
    gradient = testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("saliency", {"abs": False}))
    np.testing.assert_allclose(values("input_invariance", gradient, shift=1.5), 0.0, atol=1e-6)
    for name, params in (("input_x_gradient", {}), ("integrated_gradients", {"n_steps": 4, "baseline": 0.0})):
        ctx = testing.context(model, Modality.TABULAR, x, EXPLAINERS.create(name, params))
        w = model[1].weight.detach()[ctx.targets]
        expected = (1.5 * w).abs().sum(dim=1) / (x * w).abs().sum(dim=1)
        np.testing.assert_allclose(values("input_invariance", ctx, shift=1.5), expected.numpy(), rtol=1e-4)


def test_input_invariance_absorbs_the_shift_into_a_padded_convolution() -> None:
    """A zero-padded first conv gets an explicit pad of value c: gradients stay invariant on the whole image."""
    torch.manual_seed(0)
    model = testing.tiny_cnn(2)
    x, _, _ = testing.bar_images(3)
    ctx = testing.context(model, Modality.IMAGE, x, EXPLAINERS.create("saliency", {"abs": False}))
    np.testing.assert_allclose(values("input_invariance", ctx, shift=-1.0), 0.0, atol=1e-5)
    ixg = testing.context(model, Modality.IMAGE, x, EXPLAINERS.create("input_x_gradient", {}))
    assert (values("input_invariance", ixg, shift=-1.0) > 0.1).all()


# ERASER (ferret) -----------------------------------------------------------------------------------------------
# ferret (github.com/g8a9/ferret, ferret/evaluators/faithfulness_measures.py and utils_from_soft_to_discrete.py,
# commit 22935f8) defaults: remove_first_last=True, only_pos=True, removal_args={"remove_tokens": True,
# "based_on": "perc", "thresholds": np.arange(0.1, 1.1, 0.1)}. The suite equals it with the arguments below.
FERRET_EQUIVALENT = {"remove_first_last": False, "only_pos": False, "thresholds": (0.01, 0.05, 0.1, 0.2, 0.5)}


def ferret_top_k(scores: np.ndarray, k: int, only_pos: bool):
    """ferret's ``_get_id_tokens_top_k`` (``None`` when no token qualifies)."""
    if only_pos:
        top = [i for i in np.array(scores).argsort()[-k:][::-1] if scores[i] > 0]
        return np.array(top) if top else None
    return np.array(scores).argsort()[-k:][::-1]


def ferret_aopc(model, ids: torch.Tensor, scores: np.ndarray, target: int, sufficiency: bool,
                remove_first_last: bool, only_pos: bool, thresholds) -> float:
    """ferret's ``AOPC_{Comprehensiveness,Sufficiency}_Evaluation.compute_evaluation`` with ``based_on="perc"``
    (``_get_id_tokens_percentage``: ``int(q * n)`` tokens, none if 0) and ``remove_tokens=False``, on token ids:
    the mask token is the model's pad id, and ferret's decode / re-tokenise round trip is left out (with
    ``remove_first_last`` the first and last ids stay as they are and are not ranked, which is what re-tokenising
    adds back as [CLS] / [SEP])."""
    with torch.no_grad():
        full = torch.softmax(model(ids[None]), dim=1)[0, target].item()
    offset = 1 if remove_first_last else 0
    input_ids = ids[offset : len(ids) - offset]
    scores = scores[offset : len(scores) - offset]
    drops, last = [], None
    for perc in thresholds:
        v = int(perc * len(scores))
        id_top = ferret_top_k(scores, v, only_pos) if 0 < v <= len(scores) else None
        if id_top is not None and last is not None and set(id_top) == last:
            id_top = None
        if id_top is None:
            continue
        last = set(id_top)
        sample = input_ids.clone()
        chosen = torch.as_tensor(np.sort(id_top).copy())
        if sufficiency:
            keep = torch.zeros(len(sample), dtype=torch.bool)
            keep[chosen] = True
            sample[~keep] = model.pad_id
        else:
            sample[chosen] = model.pad_id
        sample = torch.cat([ids[:offset], sample, ids[len(ids) - offset :]])
        with torch.no_grad():
            drops.append(full - torch.softmax(model(sample[None]), dim=1)[0, target].item())
    if not drops:
        return 1.0 if sufficiency else 0.0
    return float(np.mean(drops))


def text_context():
    torch.manual_seed(0)
    model = testing.TinyTextModel(vocab=20, dim=4, length=20).eval()
    ids = torch.randint(1, 20, (3, 20))
    return model, ids, testing.context(model, Modality.TEXT, ids, None, attributions=torch.randn(3, 20))


@pytest.mark.parametrize("name", ["eraser_comprehensiveness", "eraser_sufficiency"])
def test_eraser_aopc_equals_ferret_with_its_equivalent_arguments(name: str) -> None:
    """The defaults equal ferret with ``FERRET_EQUIVALENT`` (not ferret's defaults); ``bins`` = ferret's default
    thresholds 10..100% equal ferret with those thresholds and the other two arguments kept."""
    model, ids, ctx = text_context()
    a, sufficiency = ctx.attributions, name == "eraser_sufficiency"

    def ferret(**arguments) -> list[float]:
        return [ferret_aopc(model, ids[i], a[i].numpy(), int(ctx.targets[i]), sufficiency, **arguments)
                for i in range(len(ids))]

    np.testing.assert_allclose(values(name, ctx), ferret(**FERRET_EQUIVALENT), rtol=1e-5, atol=1e-6)
    tenths = [round(0.1 * i, 1) for i in range(1, 11)]
    np.testing.assert_allclose(values(name, ctx, bins=tenths),
                               ferret(**{**FERRET_EQUIVALENT, "thresholds": tenths}), rtol=1e-5, atol=1e-6)
    ferret_defaults = ferret(remove_first_last=True, only_pos=True, thresholds=np.arange(0.1, 1.1, 0.1))
    assert not np.allclose(values(name, ctx), ferret_defaults, atol=1e-3)  # ferret's defaults: another number


def test_eraser_every_bin_variant_counts_empty_bins_as_zero() -> None:
    """10 features: bins 1/5/10/20/50% hold 0, 0, 1, 2, 5 positions; averaging over all 5 bins = 3/5 of ferret's."""
    torch.manual_seed(0)
    model = testing.tiny_mlp(10, 3)
    x, a = torch.randn(4, 10), torch.randn(4, 10)
    ctx = testing.context(model, Modality.TABULAR, x, None, attributions=a)
    ferret = values("eraser_comprehensiveness", ctx)
    every = values("eraser_comprehensiveness", ctx, skip_repeated_bins=False)
    np.testing.assert_allclose(every, ferret * 3 / 5, rtol=1e-9)


# OpenXAI ---------------------------------------------------------------------------------------------------------
def test_openxai_ground_truth_agreement_closed_forms() -> None:
    from xaibench.metrics.openxai import (feature_agreement, pairwise_rank_agreement, rank_agreement,
                                          rank_correlation)

    a = np.array([[3.0, -2.0, 1.0, 0.5]])
    g = np.array([[2.0, 1.0, -3.0, 0.1]])  # top-2 by magnitude: a -> (0, 1), g -> (2, 0)
    assert feature_agreement(a, g, 2)[0] == 0.5 and feature_agreement(a, g, 2, signed=True)[0] == 0.5
    assert rank_agreement(a, g, 2)[0] == 0.0 and rank_agreement(a, g, 3)[0] == 0.0
    assert rank_agreement(a, a * np.array([1, 1, -1, 1]), 3, signed=True)[0] == pytest.approx(2 / 3)
    np.testing.assert_allclose(rank_correlation(a, g), [0.4])  # ranks (1, 2, 3, 4) vs (2, 3, 1, 4)
    np.testing.assert_allclose(pairwise_rank_agreement(a, g), [4 / 6])


def test_openxai_ground_truth_metrics_are_perfect_for_the_gradient_of_a_linear_model() -> None:
    model = linear(6, 3)
    x = torch.randn(5, 6)
    exact = testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("saliency", {"abs": False}))
    for name in ("openxai_fa", "openxai_ra", "openxai_sa", "openxai_sra", "openxai_rc", "openxai_pra"):
        np.testing.assert_allclose(values(name, exact), 1.0, err_msg=name)
    flipped = testing.context(model, Modality.TABULAR, x, None, attributions=-exact.attributions)
    np.testing.assert_allclose(values("openxai_fa", flipped), 1.0)
    np.testing.assert_allclose(values("openxai_sa", flipped), 0.0)


def openxai_reference(explanations: np.ndarray, ground_truth: np.ndarray, predictions: np.ndarray, k: int
                      ) -> dict[str, np.ndarray]:
    """OpenXAI's ``metrics.py`` (``eval_ground_truth_faithfulness``, ``rankcorr``, ``pairwise_comp``) transcribed
    without pandas: the per-feature ground truth flipped by ``predictions * 2 - 1``, top-k by ``argsort(-|.|)``,
    rank agreement on (feature, dense rank) pairs, signs by ``np.sign``."""
    from scipy.stats import pearsonr, rankdata

    truths = (predictions * 2 - 1)[:, None] * ground_truth[None, :]
    out = {name: [] for name in ("fa", "ra", "sa", "sra", "rc", "pra")}
    for a, g in zip(explanations, truths):
        rank_a, rank_g = rankdata(-np.abs(a), method="dense"), rankdata(-np.abs(g), method="dense")

        def top(v, ranks, with_rank, with_sign):  # OpenXAI's 'feat{i}[rank{r}][sign{s}]' strings, as tuples
            return [(i, ranks[i] if with_rank else None, np.sign(v[i]) if with_sign else None)
                    for i in np.argsort(-np.abs(v))[:k]]

        for name, with_rank, with_sign in (("fa", False, False), ("sa", False, True), ("ra", True, False),
                                           ("sra", True, True)):
            left, right = top(a, rank_a, with_rank, with_sign), top(g, rank_g, with_rank, with_sign)
            same = sum(x == y for x, y in zip(left, right)) if with_rank else len(set(left) & set(right))
            out[name].append(same / k)
        out["rc"].append(pearsonr(rank_a, rank_g)[0])
        pairs = [(i, j) for i in range(len(a)) for j in range(i + 1, len(a))]
        out["pra"].append(sum((rank_a[i] < rank_a[j]) == (rank_g[i] < rank_g[j]) for i, j in pairs) / len(pairs))
    return {name: np.asarray(v) for name, v in out.items()}


OPENXAI_GT = ("openxai_fa", "openxai_ra", "openxai_sa", "openxai_sra", "openxai_rc", "openxai_pra")


def test_openxai_ground_truth_is_the_generators_coefficients_where_the_dataset_has_them() -> None:
    from xaibench.data.synthetic.tabular import SyntheticTabular

    spec = SyntheticTabular(n_samples=40, n_features=6, n_informative=3)
    task, dataset = spec.generate(), spec.build(0)
    expected = np.zeros(6)
    expected[task.informative] = task.weights
    np.testing.assert_array_equal(dataset.coefficients, expected)  # nuisance columns: 0
    assert SyntheticTabular(n_samples=40, n_features=6, variant="additive").build(0).coefficients == ()

    w = np.asarray(dataset.coefficients)
    x = dataset.test.x[:4]
    targets = torch.tensor([0, 1, 1, 0])
    a = torch.tensor(np.stack([w, w, -w, w * np.array([1, 1, 1, 5, 1, 1])]) + 0.01 * np.arange(6), dtype=torch.float32)
    ctx = testing.context(linear(6, 2), Modality.TABULAR, x, None, targets=targets, attributions=a, n_classes=2)
    ctx.coefficients = w  # what the runner passes from Dataset.coefficients; the model's own weights do not enter
    reference = openxai_reference(a.double().numpy(), w, targets.numpy(), k=2)
    for name in OPENXAI_GT:
        result = score(METRICS.get(name), {} if name in ("openxai_rc", "openxai_pra") else {"k": 2}, ctx, seed=0)
        assert result.params["ground_truth"] == "generator", name
        np.testing.assert_allclose(result.values, reference[name.split("_")[1]], err_msg=name)
    # closed form: explaining class 0 with +w puts the right features on top with every sign wrong
    assert values("openxai_fa", ctx, k=2)[0] == 1.0 and values("openxai_sa", ctx, k=2)[0] == 0.0


def test_openxai_ground_truth_falls_back_to_the_models_coefficients_of_the_explained_output() -> None:
    from xaibench.metrics.openxai import model_ground_truth

    model = linear(5, 2)
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(3))
    ctx = testing.context(model, Modality.TABULAR, x, None, targets=torch.tensor([0, 1, 0, 1]),
                          attributions=torch.randn(4, 5), n_classes=2)
    weight = model[1].weight.detach().double().numpy()
    ctx.explain_output = "log_odds"  # OpenXAI's LR ground truth: (2 t - 1)(W_1 - W_0)
    np.testing.assert_allclose(model_ground_truth(ctx), np.array([-1, 1, -1, 1])[:, None] * (weight[1] - weight[0]))
    ctx.explain_output = "logit"
    np.testing.assert_allclose(model_ground_truth(ctx), weight[[0, 1, 0, 1]])
    assert score(METRICS.get("openxai_rc"), {}, ctx, seed=0).params["ground_truth"] == "model_coefficients"
    with pytest.raises(ValueError, match="ground_truth=generator"):
        score(METRICS.get("openxai_fa"), {"ground_truth": "generator"}, ctx, seed=0)
    mlp = testing.context(testing.tiny_mlp(5, 2), Modality.TABULAR, x, None, attributions=torch.randn(4, 5))
    with pytest.raises(ValueError, match="needs a linear model"):
        score(METRICS.get("openxai_ra"), {"ground_truth": "model_coefficients"}, mlp, seed=0)


@pytest.mark.parametrize("name", ["openxai_pgi", "openxai_pgu"])
def test_openxai_prediction_gaps_equal_their_definition_on_the_same_draws(name: str) -> None:
    torch.manual_seed(0)
    model = testing.tiny_mlp(8, 3)
    x, a = torch.randn(3, 8), torch.randn(3, 8)
    ctx = testing.context(model, Modality.TABULAR, x, None, attributions=a)
    got = values(name, ctx, seed=5, k=3, n_samples=20, std=0.5)
    torch.manual_seed(5)
    top = torch.zeros(3, 8, dtype=torch.bool)
    top.scatter_(1, a.abs().argsort(dim=1, descending=True)[:, :3], True)
    mask = top if name == "openxai_pgi" else ~top
    expected = []
    for i, seed in enumerate(sample_seeds(x, "openxai_pg")):
        noise = torch.randn((20, 8), generator=generator(seed)) * 0.5
        with torch.no_grad():
            p = torch.softmax(model(x[i : i + 1] + noise * mask[i]), dim=1)[:, ctx.targets[i]]
            p0 = torch.softmax(model(x[i : i + 1]), dim=1)[0, ctx.targets[i]]
        expected.append(float((p - p0).abs().mean()))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def openxai_pred_faith(model, x: torch.Tensor, explanation: torch.Tensor, k: int, invert: bool, std: float,
                       n_samples: int, draws: torch.Generator) -> float:
    """OpenXAI's PGI (``invert=False``) / PGU (``invert=True``) of one sample, transcribed from its code:
    ``metrics._single_idx_pred_faith``, ``experiment_utils.generate_mask`` and
    ``NormalPerturbation.get_perturbed_inputs`` (github.com/AI4LIFE-GROUP/OpenXAI), every feature continuous
    (``'c'``), ``flip_percentage`` 0.3 (unused without discrete features). One change: ``torch.normal`` draws from
    ``draws`` instead of the global RNG after ``torch.manual_seed(i)``, so both sides see the same noise.
    OpenXAI's models return probabilities and it reads column 0; for two classes ``|dp_0| = |dp_1|``."""
    def probabilities(rows: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(model(rows), dim=1)

    top_k_mask = torch.ones(explanation.shape, dtype=bool)  # generate_mask: False on the top-k, "static" elsewhere
    for i in torch.topk(explanation.abs(), k).indices:
        top_k_mask[i] = False
    top_k_mask = torch.logical_not(top_k_mask) if invert else top_k_mask
    feature_type = ["c"] * len(x)
    continuous = torch.tensor([t == "c" for t in feature_type])
    discrete = torch.tensor([t == "d" for t in feature_type])
    perturbations = torch.normal(0.0, std, [n_samples, len(feature_type)], generator=draws) * continuous + x
    p = torch.empty(n_samples, len(feature_type)).fill_(0.3)
    perturbations = perturbations * (~discrete) + torch.abs(
        (perturbations * discrete) - (torch.bernoulli(p, generator=draws) * discrete))
    x_perturbed = x * top_k_mask + perturbations * (~top_k_mask)
    y, y_perturbed = probabilities(x.reshape(1, -1)).numpy(), probabilities(x_perturbed).numpy()
    return float(np.mean(np.abs(y_perturbed - y)[:, 0]))


@pytest.mark.parametrize("name", ["openxai_pgi", "openxai_pgu"])
def test_openxai_prediction_gaps_equal_openxais_code_on_the_same_noise(name: str) -> None:
    torch.manual_seed(1)
    model = testing.tiny_mlp(8, 2).eval()
    x, a = torch.randn(4, 8), torch.randn(4, 8)
    ctx = testing.context(model, Modality.TABULAR, x, None, attributions=a, n_classes=2)
    got = values(name, ctx, seed=5, k=3, n_samples=40, std=0.3)
    torch.manual_seed(5)  # the metric's seed: each sample draws from it and its own bytes
    expected = [openxai_pred_faith(model, x[i], a[i], 3, name == "openxai_pgu", 0.3, 40, generator(seed))
                for i, seed in enumerate(sample_seeds(x, "openxai_pg"))]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def binary_linear(weights: list[list[float]]) -> nn.Module:
    model = linear(len(weights[0]), 2)
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor(weights))
        model[1].bias.copy_(torch.tensor([0.2, -0.1]))
    return model


def test_openxai_pgu_is_zero_when_the_model_ignores_every_feature_outside_the_top_k() -> None:
    """Perturbing features with zero weight in every class leaves the logits, hence p, bit for bit unchanged."""
    model = binary_linear([[1.0, -2.0, 0.5, 0.0, 0.0, 0.0], [-0.5, 1.0, 2.0, 0.0, 0.0, 0.0]])
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(2))
    a = torch.tensor([3.0, -2.0, 1.5, 0.1, -0.2, 0.3]).repeat(4, 1)  # top-3 by |a|: features 0, 1, 2
    ctx = testing.context(model, Modality.TABULAR, x, None, attributions=a, n_classes=2)
    np.testing.assert_array_equal(values("openxai_pgu", ctx, k=3, std=1.0), 0.0)
    assert (values("openxai_pgi", ctx, k=3, std=1.0) > 0.01).all()


def test_openxai_pgi_of_a_linear_binary_model_has_the_small_noise_closed_form() -> None:
    """``p = sigmoid(d . x + c)``, ``d = W_1 - W_0``; with noise ``eps ~ N(0, s^2)`` on the top-k features ``m``,
    ``p(x + eps m) - p(x) = p (1 - p) d_m . eps + O(s^2)``, and the second-order term is even in ``eps`` while the
    first is odd, so ``E|dp| = p (1 - p) s ||d_m|| sqrt(2 / pi) (1 + O(s^2))``. Monte Carlo: ``|N(0, 1)|`` has
    relative standard error ``sqrt(pi/2 - 1) / sqrt(n) = 0.53%`` at ``n = 20000``; tolerance 3% (over 5 of those)."""
    model = binary_linear([[1.0, -2.0, 0.5, 0.3, -0.7], [-0.5, 1.0, 2.0, 0.1, 0.4]])
    x = torch.tensor([[0.2, 0.1, -0.3, 0.5, 0.4], [0.5, -0.2, 0.4, 1.0, -0.3], [-0.4, 0.3, 0.1, -1.0, 0.6]])
    a = torch.tensor([[0.1, 5.0, -4.0, 0.2, 0.3], [3.0, 0.1, 0.2, -2.0, 0.3], [0.1, 0.2, 0.3, 4.0, -5.0]])
    ctx = testing.context(model, Modality.TABULAR, x, None, attributions=a, n_classes=2)
    std = 0.01
    got = values("openxai_pgi", ctx, k=2, std=std, n_samples=20_000)
    weight = model[1].weight.detach().double()
    d = (weight[1] - weight[0]).numpy()
    with torch.no_grad():
        p = torch.softmax(model(x).double(), dim=1)[:, 1].numpy()  # 0.1-0.9: no float32 saturation
    top = [[1, 2], [0, 3], [3, 4]]
    expected = [p[i] * (1 - p[i]) * std * np.linalg.norm(d[top[i]]) * np.sqrt(2 / np.pi) for i in range(3)]
    np.testing.assert_allclose(got, expected, rtol=0.03)


# Exact Shapley values --------------------------------------------------------------------------------------------
def test_shapley_values_of_an_interaction_have_the_closed_form() -> None:
    from xaibench.metrics.shapley import coalitions, shapley_from_values

    x = np.array([1.5, -2.0, 0.7])
    values_ = np.array([(x[0] * x[1] if m[0] and m[1] else 0.0) + (x[2] if m[2] else 0.0) for m in coalitions(3)])
    np.testing.assert_allclose(shapley_from_values(values_, 3), [x[0] * x[1] / 2, x[0] * x[1] / 2, x[2]])


def test_shapley_distance_is_zero_for_w_times_x_minus_baseline_on_a_linear_model() -> None:
    model = linear(6, 3)
    x = torch.randn(4, 6)
    ctx = testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("input_x_gradient", {}))
    np.testing.assert_allclose(values("shapley_distance", ctx), 0.0, atol=1e-6)
    gradient = testing.context(model, Modality.TABULAR, x, EXPLAINERS.create("saliency", {"abs": False}))
    assert (values("shapley_distance", gradient) > 0.05).all()


def test_marginal_shapley_values_agree_with_shap() -> None:
    """shap's KernelExplainer enumerating every coalition (nsamples = 2^F) solves for the exact Shapley values of
    the same marginal game (its ExactExplainer agrees too, but compiles with numba for ~8 s of CPU)."""
    import shap

    from xaibench.metrics.shapley import exact_shapley
    from xaibench.types import Split

    torch.manual_seed(0)
    model = testing.tiny_mlp(4, 3)
    x, background = torch.randn(2, 4), torch.randn(5, 4)
    ctx = testing.context(model, Modality.TABULAR, x, None, attributions=torch.zeros(2, 4),
                          train_split=Split(background, torch.zeros(5, dtype=torch.long), tuple("abcde")))
    ours = exact_shapley(ctx, "marginal", 0.0, 5, softmax=False)
    for i in range(2):
        target = int(ctx.targets[i])

        def f(rows: np.ndarray, target: int = target) -> np.ndarray:
            with torch.no_grad():
                return model(torch.as_tensor(rows, dtype=torch.float32))[:, target].double().numpy()

        explainer = shap.KernelExplainer(f, background.numpy().astype(np.float64))
        theirs = explainer.shap_values(x[i : i + 1].numpy().astype(np.float64), nsamples=2**4, silent=True)
        np.testing.assert_allclose(ours[i], np.asarray(theirs).reshape(-1), rtol=1e-4, atol=1e-5)


def test_input_invariance_of_cam_and_propagation_methods_on_a_padded_cnn() -> None:
    """Grad-CAM reads the last conv block, which the shift does not reach (invariant); LRP-0 propagates relevance
    to the shifted input (not invariant, Kindermans et al.); Guided Backprop is a modified gradient (invariant)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 2)).eval()
    x, _, _ = testing.bar_images(3)
    for name, invariant in (("grad_cam", True), ("guided_backprop", True), ("lrp", False)):
        ctx = testing.context(model, Modality.IMAGE, x, EXPLAINERS.create(name, {}))
        result = score(METRICS.get("input_invariance"), {"shift": -1.0}, ctx, seed=0)
        got = result.values[np.isfinite(result.values)]  # an untrained net's Grad-CAM can be all zero (NaN + reason)
        assert len(got) >= 2 and ((got < 1e-4).all() if invariant else (got > 0.05).all()), (name, result.values)


# Applicability -------------------------------------------------------------------------------------------------
def test_peer_metrics_are_not_applicable_where_they_cannot_apply() -> None:
    from xaibench.data.sklearn_sets import BreastCancer, Digits
    from xaibench.data.synthetic.tabular import SyntheticTabular
    from xaibench.data.synthetic.text import SyntheticText
    from xaibench.engine.applicability import metric_not_applicable
    from xaibench.models.adapters.sklearn_estimator import SklearnEstimator
    from xaibench.models.zoo.logreg import LogisticRegression
    from xaibench.models.zoo.mlp import MLP

    tabular = SyntheticTabular()
    for name in ("openxai_fa", "openxai_ra", "openxai_sa", "openxai_sra", "openxai_rc", "openxai_pra"):
        spec = METRICS.get(name)
        assert metric_not_applicable(spec, tabular, False, LogisticRegression()) is None
        assert metric_not_applicable(spec, tabular, False, MLP()) is None  # the generator's coefficients
        assert "linear" in metric_not_applicable(spec, SyntheticTabular(variant="additive"), False, MLP())
        assert "linear" in metric_not_applicable(spec, BreastCancer(), False, MLP())
        assert "image" in metric_not_applicable(spec, Digits(), False, LogisticRegression())
    assert "image" in metric_not_applicable(METRICS.get("shapley_distance"), Digits(), False, MLP())
    assert metric_not_applicable(METRICS.get("shapley_distance"), BreastCancer(), False, MLP()) is None
    for name in ("input_invariance", "captum_infidelity", "openxai_pgi"):
        assert "text" in metric_not_applicable(METRICS.get(name), SyntheticText(), False, MLP())
    assert "gradients" in metric_not_applicable(METRICS.get("input_invariance"), BreastCancer(), False,
                                                SklearnEstimator())


def test_shapley_distance_refuses_too_many_features_clearly() -> None:
    model = linear(14, 2)
    ctx = testing.context(model, Modality.TABULAR, torch.randn(2, 14), EXPLAINERS.create("saliency", {}))
    with pytest.raises(ValueError, match="max_features"):
        score(METRICS.get("shapley_distance"), {}, ctx, seed=0)


def test_a_bad_shapley_value_function_fails_before_compute() -> None:
    from xaibench.errors import UserError

    with pytest.raises(UserError, match="'value_function' must be one of"):
        METRICS.get("shapley_distance").check_params({"value_function": "conditional"})


@pytest.mark.parametrize("name", ["shapley_distance", "captum_infidelity", "eraser_comprehensiveness"])
def test_peer_metrics_read_the_explained_output_or_with_softmax_the_probability(name: str) -> None:
    # softmax: true means the class probability whatever the cell explains (before: the softmax of the log-odds);
    # softmax: false means the cell's explain_output (ERASER read the raw logit before)
    model = linear(4, 3)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(4))
    a = torch.randn(3, 4, generator=torch.Generator().manual_seed(5))
    params = {"n_perturb_samples": 8} if name == "captum_infidelity" else {}
    scored = {}
    for output in ("logit", "log_odds", "probability"):
        for softmax in (True, False):
            ctx = testing.context(model, Modality.TABULAR, x, None, attributions=a)
            ctx.explain_output = output
            scored[output, softmax] = values(name, ctx, **params, softmax=softmax)
    np.testing.assert_allclose(scored["log_odds", True], scored["logit", True], rtol=1e-6)
    np.testing.assert_allclose(scored["probability", False], scored["logit", True], rtol=1e-4)  # float64 softmax
    assert not np.allclose(scored["log_odds", False], scored["logit", False])


RANKING_METRICS = ("openxai_fa", "openxai_ra", "openxai_sa", "openxai_sra", "openxai_rc", "openxai_pra", "openxai_pgi",
                   "openxai_pgu", "eraser_comprehensiveness", "eraser_sufficiency")


def test_metrics_that_rank_features_give_a_constant_map_no_score_instead_of_its_first_columns() -> None:
    """A constant map has no ranking; a stable sort takes its first k columns as its top k. Where the important
    features come first (synthetic_tabular) the ``constant`` control "agreed" with the ground truth perfectly (FA
    1.0 here; in a sweep RA 0.50 against integrated gradients' 0.28). Such maps, and all-zero ones, are NaN with
    the reason; other maps are scored as before."""
    from xaibench.metrics.openxai import feature_agreement

    model = binary_linear([[-3.0, 2.0, 0.0, 0.0, 0.0, 0.0], [3.0, -2.0, 0.0, 0.0, 0.0, 0.0]])  # features 0, 1
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    gradient = EXPLAINERS.create("saliency", {"abs": False})
    exact = testing.context(model, Modality.TABULAR, x, gradient, n_classes=2).attributions
    a = torch.stack([torch.ones(6), torch.zeros(6), exact[2]])
    ctx = testing.context(model, Modality.TABULAR, x, None, attributions=a, n_classes=2)
    assert feature_agreement(np.ones((1, 6)), np.array([[6.0, 4.0, 0, 0, 0, 0]]), 2)[0] == 1.0  # the tie, scored
    for name in RANKING_METRICS:
        result = score(METRICS.get(name), {"k": 2} if name in ("openxai_fa", "openxai_ra", "openxai_sa",
                                                              "openxai_sra") else {}, ctx, seed=0)
        assert result.status == [Status.NAN.value, Status.NAN.value, Status.OK.value], (name, result.message)
        assert result.message[:2] == ["constant attribution: no ranking of the features", "all-zero attribution"]
    assert score(METRICS.get("openxai_fa"), {"k": 2}, ctx, seed=0).values[2] == 1.0  # the gradient: exact
    assert score(METRICS.get("shapley_distance"), {}, ctx, seed=0).status == [Status.OK.value] * 3  # values, not ranks
