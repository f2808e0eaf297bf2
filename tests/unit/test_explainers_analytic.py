"""Analytic checks of the explanation methods: closed forms on models whose answer is known.

- linear models: IG / DeepLIFT / feature ablation / occlusion / LIME(alpha=0) / Kernel SHAP / shap give
  ``w * (x - baseline)`` (Kernel SHAP and LIME are exact, not just close, because a linear model is linear in the
  coalition vector); Kernel SHAP with image patches gives the patch sums;
- attention rollout with identity and uniform attention, gradient-weighted rollout on a model whose gradient is
  known;
- counterfactuals on a linear 2-class model reach the closed-form minimal distance ``|w.x + b| / ||w||``;
- the decision-tree surrogate reaches fidelity 1.0 on a model it can represent, and exports named rules;
- captum Lime / KernelShap batch perturbations (forward counter), and declared applicability.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from xaibench.data.sklearn_sets import BreastCancer, Digits
from xaibench.engine.applicability import cell_not_applicable
from xaibench.engine.counting import ForwardCounter
from xaibench.explainers.attention.rollout import rollout
from xaibench.explainers.controls.sobel import sobel_magnitude
from xaibench.explainers.surrogate.decision_tree import export_rules
from xaibench.models.base import ModelSpec
from xaibench.models.zoo.cnn import CNN
from xaibench.models.zoo.mlp import MLP
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Modality


def make(name: str, **params):
    return EXPLAINERS.create(name, params)


def run(explainer, model: nn.Module, x: torch.Tensor, target: torch.Tensor, seed: int = 0):
    torch.manual_seed(seed)
    np.random.seed(seed)
    return explainer.explain(model, x, target)


def linear_model(n_features: int = 6, n_classes: int = 3, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    model = nn.Linear(n_features, n_classes)
    with torch.no_grad():
        model.weight.copy_(torch.randn(n_classes, n_features))
        model.bias.copy_(torch.randn(n_classes))
    return model.eval()


# Linear models: w * (x - baseline) ------------------------------------------------------------------------------
def test_integrated_gradients_on_a_linear_model_is_w_times_x_minus_baseline() -> None:
    model = linear_model()
    x = torch.randn(5, 6)
    target = torch.tensor([0, 1, 2, 1, 0])
    w = model.weight[target].detach()
    for baseline, reference in ((0.0, torch.zeros_like(x)), (0.7, torch.full_like(x, 0.7)),
                                ("mean", x.mean(dim=1, keepdim=True).expand_as(x))):
        explanation = run(make("integrated_gradients", n_steps=4, baseline=baseline), model, x, target)
        torch.testing.assert_close(explanation.attributions, w * (x - reference), atol=1e-5, rtol=0)
        assert np.all(explanation.extras["convergence_delta"] < 1e-5)


@pytest.mark.parametrize("name", ["deeplift", "feature_ablation", "occlusion", "shap_library"])
def test_baseline_methods_on_a_linear_model_are_exact(name: str) -> None:
    model = linear_model()
    x = torch.randn(4, 6)
    target = torch.tensor([2, 0, 1, 2])
    params = {"baseline": 0.3} if name != "occlusion" else {"baseline": 0.3, "window": 1}
    explanation = run(make(name, **params), model, x, target)
    expected = model.weight[target].detach() * (x - 0.3)
    torch.testing.assert_close(explanation.attributions, expected, atol=1e-4, rtol=0)


def test_kernel_shap_on_a_linear_model_matches_w_times_x_minus_mean() -> None:
    """Data with ``E[x] = 0.4``: Kernel SHAP with ``baseline = E[x]`` gives ``w * (x - E[x])``. A linear model is
    linear in the coalition vector, so the weighted regression is exact: no sampling error beyond float32."""
    model = linear_model(n_features=8)
    x = 0.4 + torch.randn(4, 8)
    target = torch.tensor([0, 1, 2, 0])
    explanation = run(make("kernel_shap", n_samples=120, perturbations_per_eval=40, baseline=0.4), model, x, target)
    expected = model.weight[target].detach() * (x - 0.4)
    torch.testing.assert_close(explanation.attributions, expected, atol=1e-4, rtol=0)
    # efficiency: the attributions sum to f(x) - f(baseline)
    with torch.no_grad():
        gap = model(x).gather(1, target[:, None]) - model(torch.full_like(x, 0.4)).gather(1, target[:, None])
    torch.testing.assert_close(explanation.attributions.sum(dim=1), gap.squeeze(1), atol=1e-4, rtol=0)


def test_kernel_shap_on_image_patches_gives_patch_sums() -> None:
    """With ``patch_size`` 2 every pixel of a patch carries the patch's Shapley value: the sum of ``w * x`` over it."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 4 * 4, 3)).eval()
    x = torch.randn(2, 2, 4, 4)
    target = torch.tensor([1, 2])
    explanation = run(make("kernel_shap", n_samples=64, perturbations_per_eval=32, patch_size=2), model, x, target)
    contribution = (model[1].weight[target].detach().reshape(2, 2, 4, 4) * x)
    patch_sums = contribution.sum(dim=1).unfold(1, 2, 2).unfold(2, 2, 2).sum(dim=(-1, -2))  # (2, 2, 2)
    expected = patch_sums.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)[:, None].expand_as(x)
    torch.testing.assert_close(explanation.attributions, expected, atol=1e-4, rtol=0)


def test_lime_without_penalty_on_a_linear_model_is_exact() -> None:
    model = linear_model()
    x = torch.randn(3, 6)
    target = torch.tensor([0, 1, 2])
    explanation = run(make("lime", n_samples=80, perturbations_per_eval=40, alpha=0.0), model, x, target)
    torch.testing.assert_close(explanation.attributions, model.weight[target].detach() * x, atol=1e-4, rtol=0)


def test_gradient_shap_with_a_point_baseline_is_w_times_x_minus_baseline() -> None:
    model = linear_model()
    x = torch.randn(3, 6)
    target = torch.tensor([0, 1, 2])
    explanation = run(make("gradient_shap", n_samples=5, baseline=-0.2, baseline_std=0.0), model, x, target)
    torch.testing.assert_close(explanation.attributions, model.weight[target].detach() * (x + 0.2), atol=1e-5, rtol=0)


def test_lime_library_recovers_the_sign_and_ranking_of_a_linear_model() -> None:
    """lime's ridge on N(0, I) samples of a linear logit: coefficients ~ w (kernel-weighted, ridge-shrunk)."""
    model = linear_model(n_features=5)
    x = torch.randn(2, 5)
    target = torch.tensor([0, 1])
    explanation = run(make("lime_library", n_samples=2000), model, x, target)
    w = model.weight[target].detach()
    np.testing.assert_allclose(explanation.attributions.numpy(), w.numpy(), rtol=0.1, atol=0.05)


def test_integrated_gradients_on_text_starts_from_the_pad_token() -> None:
    """Text is explained per token from the pad-token embeddings: the per-token attributions sum to
    ``f(ids) - f(pad ids)`` up to the recorded convergence delta."""

    class BagOfEmbeddings(nn.Module):
        pad_id = 0

        def __init__(self) -> None:
            super().__init__()
            self.table = nn.Embedding(7, 4)
            self.head = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))

        def embed(self, ids):
            return self.table(ids)

        def forward_embedded(self, embeddings):
            return self.head(embeddings.mean(dim=1))

        def forward(self, ids):
            return self.forward_embedded(self.embed(ids))

    torch.manual_seed(0)
    model = BagOfEmbeddings().eval()
    ids = torch.tensor([[1, 2, 3, 0], [4, 5, 6, 6]])
    target = torch.tensor([0, 1])
    explanation = run(make("integrated_gradients", n_steps=64), model, ids, target)
    assert explanation.attributions.shape == (2, 4)
    with torch.no_grad():
        gap = (model(ids) - model(torch.zeros_like(ids))).gather(1, target[:, None]).squeeze(1)
    residual = (explanation.attributions.sum(dim=1) - gap).abs().numpy()
    np.testing.assert_allclose(residual, explanation.extras["convergence_delta"], atol=1e-6)
    assert residual.max() < 1e-3
    assert explanation.attributions[0, 3].abs() < 1e-7  # a pad token equals its baseline: no attribution


# Attention ----------------------------------------------------------------------------------------------------
class FixedAttention(nn.Module):
    """ATTENTION protocol with constant attention maps: identity or uniform, ``layers`` x ``heads``."""

    def __init__(self, kind: str, tokens: int = 5, layers: int = 3, heads: int = 2, cls_index: int | None = 0) -> None:
        super().__init__()
        self.kind, self.tokens, self.layers, self.heads, self.cls_index = kind, tokens, layers, heads, cls_index
        self.head = nn.Linear(tokens, 2)

    def attention(self, n: int) -> torch.Tensor:
        t = self.tokens
        matrix = torch.eye(t) if self.kind == "identity" else torch.full((t, t), 1.0 / t)
        return matrix.expand(n, self.heads, t, t)

    def forward_with_attention(self, x):
        return self.head(x), [self.attention(len(x)) for _ in range(self.layers)]

    def forward(self, x):
        return self.head(x)

    def tokens_to_input(self, relevance):
        return relevance


def test_rollout_of_identity_attention_is_uniform_over_queries_and_zero_from_cls() -> None:
    x = torch.randn(2, 5)
    target = torch.zeros(2, dtype=torch.long)
    averaged = run(make("rollout"), FixedAttention("identity", cls_index=None), x, target).attributions
    torch.testing.assert_close(averaged, torch.full((2, 5), 1 / 5))
    from_cls = run(make("rollout"), FixedAttention("identity", cls_index=0), x, target).attributions
    torch.testing.assert_close(from_cls, torch.zeros(2, 4))


@pytest.mark.parametrize(("layers", "residual"), [(1, 0.5), (3, 0.5), (4, 0.3)])
def test_rollout_of_uniform_attention_has_the_closed_form(layers: int, residual: float) -> None:
    """``A = J/T``: ``prod_l (r I + (1 - r) J/T) = r^L I + (1 - r^L) J/T``; the CLS row without CLS is
    ``(1 - r^L) / T`` per token."""
    tokens = 5
    model = FixedAttention("uniform", tokens=tokens, layers=layers, cls_index=0)
    x = torch.randn(3, tokens)
    relevance = run(make("rollout", residual_weight=residual), model, x, torch.zeros(3, dtype=torch.long)).attributions
    torch.testing.assert_close(relevance, torch.full((3, tokens - 1), (1 - residual**layers) / tokens))
    maps = model.forward_with_attention(x)[1]
    closed = residual**layers * torch.eye(tokens) + (1 - residual**layers) * torch.full((tokens, tokens), 1 / tokens)
    torch.testing.assert_close(rollout(maps, residual), closed.expand(3, tokens, tokens))


def test_raw_attention_is_the_last_layers_cls_row() -> None:
    model = FixedAttention("uniform", tokens=4, cls_index=0)
    relevance = run(make("raw_attention"), model, torch.randn(2, 4), torch.zeros(2, dtype=torch.long)).attributions
    torch.testing.assert_close(relevance, torch.full((2, 3), 0.25))


class LearnedAttentionPool(nn.Module):
    """One layer, one head: ``A = softmax(theta)`` (same for all samples), ``logit_k = c_k * sum_j A_0j x_j``.

    d logit_t / d A_0j = c_t x_j (other rows: 0), so Chefer et al.'s relevance of token j is
    ``max(0, c_t x_j A_0j)`` (``R = I + A_bar``, CLS row without CLS).
    """

    cls_index = 0

    def __init__(self, tokens: int = 5) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.randn(tokens, tokens))
        self.c = torch.tensor([1.0, -2.0])

    def forward_with_attention(self, x):
        attention = torch.softmax(self.theta, dim=-1).expand(len(x), 1, *self.theta.shape)
        pooled = (attention[:, 0, 0, :] * x).sum(dim=1, keepdim=True)
        return pooled * self.c, [attention]

    def forward(self, x):
        return self.forward_with_attention(x)[0]

    def tokens_to_input(self, relevance):
        return relevance


def test_gradient_weighted_rollout_matches_its_closed_form() -> None:
    torch.manual_seed(0)
    model = LearnedAttentionPool().eval()
    x = torch.randn(4, 5)
    target = torch.tensor([0, 1, 0, 1])
    relevance = run(make("grad_rollout"), model, x, target).attributions
    a0 = torch.softmax(model.theta.detach(), dim=-1)[0]
    expected = (model.c[target][:, None] * x * a0).clamp(min=0)[:, 1:]
    torch.testing.assert_close(relevance, expected)


# Counterfactuals ----------------------------------------------------------------------------------------------
def two_class_linear(seed: int = 0) -> tuple[nn.Linear, torch.Tensor]:
    torch.manual_seed(seed)
    model = nn.Linear(4, 2).eval()
    return model, torch.randn(6, 4)


def closed_form_distance(model: nn.Linear, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance from ``x`` to the decision boundary, and ``||w_contrast - w_pred||``."""
    with torch.no_grad():
        predicted = model(x).argmax(dim=1)
    w = (model.weight[1] - model.weight[0]).detach()
    b = (model.bias[1] - model.bias[0]).detach()
    return (x @ w + b).abs() / w.norm(), w.norm().expand(len(x)) + 0 * predicted


def test_wachter_flips_a_linear_model_at_the_closed_form_distance() -> None:
    model, x = two_class_linear()
    confidence = 0.05
    explanation = run(make("wachter", confidence=confidence, n_steps=300), model, x, torch.zeros(6, dtype=torch.long))
    with torch.no_grad():
        assert (model(explanation.counterfactuals).argmax(1) != model(x).argmax(1)).all()
    assert explanation.extras["valid"].all()
    distance = torch.as_tensor(explanation.extras["distance"], dtype=torch.float32)
    minimal, w_norm = closed_form_distance(model, x)
    torch.testing.assert_close(distance, (explanation.attributions.flatten(1).norm(dim=1)))
    # the hinge's minimiser: just past the boundary, at logit margin `confidence`
    assert (distance >= minimal - 1e-4).all()
    torch.testing.assert_close(distance, minimal + confidence / w_norm, atol=2e-3, rtol=0)


def test_growing_spheres_flips_a_linear_model_close_to_the_closed_form_distance() -> None:
    model, x = two_class_linear()
    eta = 0.05
    explanation = run(make("growing_spheres", eta=eta, n_samples=2000, max_layers=200, sparsify=False),
                      model, x, torch.zeros(6, dtype=torch.long))
    with torch.no_grad():
        assert (model(explanation.counterfactuals).argmax(1) != model(x).argmax(1)).all()
    distance = torch.as_tensor(explanation.extras["distance"], dtype=torch.float32)
    minimal, _ = closed_form_distance(model, x)
    assert (distance >= minimal - 1e-5).all()  # nothing can beat the projection
    assert (distance <= minimal + 4 * eta).all(), (distance - minimal)


def test_growing_spheres_feature_selection_keeps_validity_and_moves_fewer_features() -> None:
    model, x = two_class_linear(seed=3)
    base = {"eta": 0.1, "n_samples": 500}
    dense = run(make("growing_spheres", sparsify=False, **base), model, x, torch.zeros(6, dtype=torch.long))
    sparse = run(make("growing_spheres", sparsify=True, **base), model, x, torch.zeros(6, dtype=torch.long))
    with torch.no_grad():
        assert (model(sparse.counterfactuals).argmax(1) != model(x).argmax(1)).all()
    assert ((sparse.attributions != 0).sum(1) <= (dense.attributions != 0).sum(1)).all()
    assert ((sparse.attributions != 0).sum(1) < 4).any()


# Surrogate rules ----------------------------------------------------------------------------------------------
class Threshold(nn.Module):
    """Class 1 iff ``x_1 > 0.3``: a depth-1 tree represents it exactly."""

    def forward(self, x):
        score = (x[:, 1] > 0.3).float() * 4 - 2
        return torch.stack([-score, score], dim=1)


def test_decision_tree_surrogate_is_exact_on_a_representable_model_and_exports_named_rules() -> None:
    explainer = make("decision_tree", n_samples=1000, max_depth=3)
    x = torch.randn(5, 4)
    x[0, 1], x[1, 1] = 1.0, -1.0
    target = Threshold()(x).argmax(dim=1)
    explanation = run(explainer, Threshold(), x, target)
    assert np.all(explanation.extras["fidelity"] == 1.0)
    assert np.all(explanation.extras["holdout_fidelity"] >= 0.99)
    assert np.all(explanation.extras["agrees"] == 1.0)
    attributions = explanation.attributions
    assert torch.count_nonzero(attributions[:, [0, 2, 3]]) == 0  # only the feature the model uses
    assert (attributions[:, 1] > 0).all()  # the path raised the probability of the predicted class

    torch.manual_seed(0)
    surrogate = explainer.fit(Threshold(), 4)
    rules = export_rules(surrogate, ["age", "dose", "weight", "height"])
    assert "dose <= 0.3" in rules or "dose >  0.3" in rules or "dose >  0.29" in rules or "dose <= 0.29" in rules, rules
    assert "age" not in rules and "class: 1" in rules


def test_decision_tree_path_contributions_sum_to_leaf_minus_root() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    explainer = make("decision_tree", n_samples=500, max_depth=4)
    x = torch.randn(6, 3)
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    attributions = run(explainer, model, x, target).attributions.numpy()
    torch.manual_seed(0)
    tree = explainer.fit(model, 3).tree
    proba = tree.tree_.value[:, 0, :] / tree.tree_.value[:, 0, :].sum(axis=1, keepdims=True)
    leaves = tree.apply(x.numpy())
    for i in range(len(x)):
        column = list(tree.classes_).index(int(target[i])) if int(target[i]) in tree.classes_ else None
        expected = 0.0 if column is None else proba[leaves[i], column] - proba[0, column]
        assert math.isclose(attributions[i].sum(), expected, abs_tol=1e-6)


# Controls -----------------------------------------------------------------------------------------------------
def test_sobel_is_zero_on_flat_images_and_marks_edges() -> None:
    image = torch.zeros(1, 1, 6, 6)
    assert torch.count_nonzero(sobel_magnitude(image + 3.0)) == 0
    image[..., 3:] = 1.0  # vertical step between columns 2 and 3
    edges = run(make("sobel"), nn.Identity(), image, torch.zeros(1, dtype=torch.long)).attributions[0, 0]
    assert torch.count_nonzero(edges[:, [0, 1, 4, 5]]) == 0
    assert (edges[:, [2, 3]] == 4.0).all()  # |[-1, 0, 1] * [1, 2, 1]| over a unit step


# Batched perturbations (forward counter) -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["kernel_shap", "lime"])
def test_lime_and_kernel_shap_batch_their_perturbations(name: str) -> None:
    model = linear_model(n_features=10)
    counter = ForwardCounter(model)
    x = torch.randn(4, 10)
    n_samples, per_eval = 200, 50
    run(make(name, n_samples=n_samples, perturbations_per_eval=per_eval), counter, x, torch.zeros(4, dtype=torch.long))
    assert counter.rows >= len(x) * n_samples  # every perturbation is evaluated ...
    assert counter.calls <= len(x) * (math.ceil(n_samples / per_eval) + 1)  # ... in batches of per_eval
    assert counter.calls < len(x) * n_samples / 10


# Applicability ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProbaOnly(ModelSpec):
    """A model that only offers class scores (like a sklearn forest adapter). Not registered."""

    name = "proba_only"
    modalities = frozenset({Modality.TABULAR})
    capabilities = frozenset({Capability.PROBA})


GRADIENT_METHODS = ["saliency", "input_x_gradient", "integrated_gradients", "smoothgrad", "gradient_shap", "deeplift",
                    "deeplift_shap", "wachter", "guided_backprop", "vargrad", "smoothgrad_sq", "expected_gradients"]
MODEL_AGNOSTIC = ["kernel_shap", "lime", "shap_library", "lime_library", "occlusion", "feature_ablation",
                  "growing_spheres", "decision_tree", "random", "constant"]


def test_impossible_combinations_are_not_applicable() -> None:
    rollout_method = make("rollout")
    assert "rollout" in cell_not_applicable(MLP(), BreastCancer(), rollout_method)
    assert "attention" in cell_not_applicable(MLP(), Digits(), rollout_method)
    assert "attention" in cell_not_applicable(CNN(), Digits(), make("grad_rollout"))
    assert "sobel" in cell_not_applicable(MLP(), BreastCancer(), make("sobel"))
    for name in GRADIENT_METHODS:
        reason = cell_not_applicable(ProbaOnly(), BreastCancer(), make(name))
        assert reason and "gradients" in reason, name
    for name in MODEL_AGNOSTIC:
        assert cell_not_applicable(ProbaOnly(), BreastCancer(), make(name)) is None, name


def test_every_method_runs_on_the_quickstart_models_it_is_applicable_to() -> None:
    """The declared applicability is not too strict: the quickstart grid leaves every method at least one cell."""
    covered = {name for name in EXPLAINERS.names()
               for model, data in ((MLP(), BreastCancer()), (CNN(), Digits()), (MLP(), Digits()))
               if cell_not_applicable(model, data, make(name)) is None}
    assert set(EXPLAINERS.names()) - covered == {"raw_attention", "rollout", "grad_rollout", "attention_x_gradient"}


def test_explainers_are_frozen_dataclasses_of_their_config() -> None:
    for name in EXPLAINERS.names():
        cls = EXPLAINERS.get(name)
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, name
