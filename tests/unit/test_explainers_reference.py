"""Reference checks of the methods added for LATEC's set: closed forms or direct re-implementations.

- Guided Backprop: equals the plain gradient on a model without ReLU; on ``w2 . relu(W1 x + b1)`` it is
  ``W1^T (1[W1 x + b1 > 0] * relu(w2))``.
- Grad-CAM / Grad-CAM++ on one conv layer + global average pooling: the gradient w.r.t. the feature maps is
  ``W_tk / (H W)`` everywhere, so both maps have closed forms; Score-CAM equals the authors' per-channel loop.
- LRP-0 (epsilon -> 0) equals input x gradient on bias-free ReLU networks (Ancona et al., 2018), including the
  layers added to captum's rules (Conv1d, AdaptiveAvgPool1d, Flatten); relevance is conserved.
- VarGrad = SmoothGrad-squared - SmoothGrad^2 on the same draws; on a linear model 0 and ``w^2``; Expected
  Gradients is ``gradient_shap`` under another name (identical maps).
- Attention x Gradient on one learned attention layer: ``(c_t x_j A_0j)^+`` (as gradient-weighted rollout there).
- Declared applicability: CAM methods need the CONV capability, LRP the LRP one (``not_applicable`` otherwise).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xaibench.data.sklearn_sets import BreastCancer, Digits
from xaibench.data.synthetic.timeseries import SyntheticTimeSeries
from xaibench.engine.applicability import cell_not_applicable
from xaibench.engine.counting import ForwardCounter
from xaibench.errors import NotApplicable
from xaibench.models.zoo.cnn import CNN
from xaibench.models.zoo.cnn1d import CNN1D
from xaibench.models.zoo.logreg import LogisticRegression
from xaibench.models.zoo.mlp import MLP
from xaibench.models.zoo.vit import ViT
from xaibench.registry import EXPLAINERS


def make(name: str, **params):
    return EXPLAINERS.create(name, params)


def run(explainer, model: nn.Module, x: torch.Tensor, target: torch.Tensor, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    np.random.seed(seed)
    return explainer.explain(model.eval(), x, target).attributions


# Guided Backprop ---------------------------------------------------------------------------------------------
def test_guided_backprop_is_the_gradient_without_relu() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    x, target = torch.randn(4, 5), torch.tensor([0, 1, 2, 1])
    guided = run(make("guided_backprop"), model, x, target)
    gradient = run(make("saliency", abs=False), model, x, target)
    torch.testing.assert_close(guided, gradient, rtol=0, atol=1e-7)


def test_guided_backprop_matches_its_closed_form_on_one_relu_layer() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 9), nn.ReLU(), nn.Linear(9, 3))
    x, target = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    w1, b1, w2 = model[0].weight.detach(), model[0].bias.detach(), model[2].weight.detach()
    active = (x @ w1.T + b1 > 0).float()  # (N, H)
    expected = (active * w2[target].clamp(min=0)) @ w1  # (N, F)
    guided = run(make("guided_backprop"), model, x, target)
    torch.testing.assert_close(guided, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(guided, run(make("saliency", abs=False), model, x, target))


# CAM methods -------------------------------------------------------------------------------------------------
def one_conv_gap(channels: int = 2, maps: int = 4, classes: int = 3) -> nn.Module:
    """``Linear(GAP(ReLU(conv(x))))``: d logit_t / d A^k = W_tk / (H W) at every position."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(channels, maps, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(maps, classes)).eval()


def feature_maps(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model[1](model[0](x))  # (N, K, H, W)


def test_grad_cam_matches_its_closed_form_on_one_conv_layer() -> None:
    model = one_conv_gap()
    x, target = torch.randn(3, 2, 5, 6), torch.tensor([0, 1, 2])
    a = feature_maps(model, x)
    alpha = model[4].weight.detach()[target] / (5 * 6)  # (N, K)
    expected = F.relu((alpha[:, :, None, None] * a).sum(dim=1, keepdim=True)).expand_as(x)
    torch.testing.assert_close(run(make("grad_cam"), ForwardCounter(model), x, target), expected)


def test_grad_cam_pp_matches_its_closed_form_on_one_conv_layer() -> None:
    model = one_conv_gap()
    x, target = torch.randn(3, 2, 5, 6), torch.tensor([2, 0, 1])
    a = feature_maps(model, x)
    g = model[4].weight.detach()[target] / (5 * 6)  # (N, K), constant over positions
    alpha = g**2 / (2 * g**2 + a.sum(dim=(2, 3)) * g**3)  # (N, K), the same at every position
    weights = (5 * 6) * alpha * g.clamp(min=0)
    expected = F.relu((weights[:, :, None, None] * a).sum(dim=1, keepdim=True)).expand_as(x)
    torch.testing.assert_close(run(make("grad_cam_pp"), model, x, target), expected)
    assert not torch.allclose(expected, run(make("grad_cam"), model, x, target))


def score_cam_loop(model: nn.Module, layer: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """Wang et al.'s reference loop for one sample ``(1, C, *S)`` -> ``(1, 1, *S)``."""
    store = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: store.__setitem__("a", out))
    with torch.no_grad():
        model(x)
    handle.remove()
    mode = "linear" if x.dim() == 3 else "bilinear"
    cam = torch.zeros(1, 1, *x.shape[2:])
    for k in range(store["a"].shape[1]):
        saliency = F.interpolate(store["a"][:, k : k + 1], size=x.shape[2:], mode=mode, align_corners=False)
        if saliency.max() == saliency.min():
            continue
        norm = (saliency - saliency.min()) / (saliency.max() - saliency.min())
        with torch.no_grad():
            score = torch.softmax(model(x * norm), dim=1)[0, target]
        cam += score * saliency
    return F.relu(cam)


@pytest.mark.parametrize("dims", [1, 2])
def test_score_cam_equals_the_authors_loop(dims: int) -> None:
    torch.manual_seed(0)
    conv, pool = (nn.Conv1d, nn.AdaptiveAvgPool1d) if dims == 1 else (nn.Conv2d, nn.AdaptiveAvgPool2d)
    model = nn.Sequential(conv(2, 5, 3, stride=2), nn.ReLU(), pool(1), nn.Flatten(), nn.Linear(5, 3)).eval()
    x = torch.randn(3, 2, *([9] * dims))
    target = torch.tensor([0, 2, 1])
    got = run(make("score_cam", internal_batch_size=2), model, x, target)
    for i in range(len(x)):
        expected = score_cam_loop(model, model[1], x[i : i + 1], int(target[i])).expand_as(x[i : i + 1])
        torch.testing.assert_close(got[i : i + 1], expected, rtol=1e-5, atol=1e-6)


def test_cam_layer_can_be_named_and_a_missing_name_fails() -> None:
    model = one_conv_gap()
    x, target = torch.randn(2, 2, 5, 6), torch.tensor([0, 1])
    named = run(make("grad_cam", layer="1"), ForwardCounter(model), x, target)
    torch.testing.assert_close(named, run(make("grad_cam"), model, x, target))
    with pytest.raises(ValueError, match="no layer named"):
        run(make("grad_cam", layer="nope"), model, x, target)


# LRP ---------------------------------------------------------------------------------------------------------
def bias_free(kind: str) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    if kind == "tabular":
        model = nn.Sequential(nn.Flatten(), nn.Linear(5, 8, bias=False), nn.ReLU(), nn.Linear(8, 3, bias=False))
        return model.eval(), torch.randn(4, 5)
    if kind == "image":
        model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
                              nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3, bias=False))
        return model.eval(), torch.randn(4, 2, 6, 6)
    model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool1d(2),
                          nn.AdaptiveAvgPool1d(2), nn.Flatten(), nn.Linear(8, 3, bias=False))
    return model.eval(), torch.randn(4, 2, 8)


@pytest.mark.parametrize("kind", ["tabular", "image", "time_series"])
def test_lrp_zero_is_input_x_gradient_on_bias_free_relu_networks(kind: str) -> None:
    model, x = bias_free(kind)
    target = torch.tensor([0, 1, 2, 0])
    explanation = make("lrp").explain(ForwardCounter(model), x, target)
    torch.testing.assert_close(explanation.attributions, run(make("input_x_gradient"), model, x, target),
                               rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        logit = model(x).gather(1, target[:, None]).squeeze(1)
    torch.testing.assert_close(explanation.attributions.flatten(1).sum(dim=1), logit, rtol=1e-4, atol=1e-5)
    assert (explanation.extras["convergence_delta"] < 1e-4).all()
    assert not any(hasattr(m, "rule") for m in model.modules()), "rules must not stay on the model"


def test_lrp_rules_differ_and_unsupported_layers_fail_clearly() -> None:
    model, x = bias_free("image")
    target = torch.tensor([0, 1, 2, 0])
    epsilon = run(make("lrp"), model, x, target)
    assert not torch.allclose(epsilon, run(make("lrp", rule="alpha1_beta0"), model, x, target))
    assert not torch.allclose(epsilon, run(make("lrp", rule="gamma", gamma=1.0), model, x, target))
    gelu = nn.Sequential(nn.Linear(5, 4), nn.GELU(), nn.Linear(4, 2)).eval()
    with pytest.raises(NotApplicable, match="no rule for layer type.*GELU"):  # a row's reason, not an error
        run(make("lrp"), gelu, torch.randn(2, 5), torch.tensor([0, 1]))


# Noise-tunnel variants, Expected Gradients --------------------------------------------------------------------
def test_vargrad_is_smoothgrad_sq_minus_smoothgrad_squared_on_the_same_draws() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 9), nn.Tanh(), nn.Linear(9, 3)).eval()
    x, target = torch.randn(3, 5), torch.tensor([0, 1, 2])
    mean = run(make("smoothgrad", n_samples=6), model, x, target)
    squared = run(make("smoothgrad_sq", n_samples=6), model, x, target)
    variance = run(make("vargrad", n_samples=6), model, x, target)
    torch.testing.assert_close(variance, squared - mean**2, rtol=1e-4, atol=1e-6)
    assert (variance > 0).all()


def test_noise_tunnel_variants_on_a_linear_model() -> None:
    torch.manual_seed(0)
    model = nn.Linear(5, 3).eval()
    x, target = torch.randn(3, 5), torch.tensor([0, 1, 2])
    w = model.weight.detach()[target]
    torch.testing.assert_close(run(make("smoothgrad_sq", n_samples=4), model, x, target), w**2)
    torch.testing.assert_close(run(make("vargrad", n_samples=4), model, x, target), torch.zeros_like(x),
                               atol=1e-6, rtol=0)
    with pytest.raises(Exception, match="nt_type"):
        make("vargrad", nt_type="smoothgrad")


def test_expected_gradients_is_gradient_shap() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 9), nn.ReLU(), nn.Linear(9, 3)).eval()
    x, target = torch.randn(3, 5), torch.tensor([0, 1, 2])
    params = {"n_samples": 5, "n_baselines": 4}
    torch.testing.assert_close(run(make("expected_gradients", **params), model, x, target),
                               run(make("gradient_shap", **params), model, x, target), rtol=0, atol=0)
    linear = nn.Linear(5, 3).eval()  # one reference (std 0): (x - b) * w exactly
    got = run(make("expected_gradients", n_samples=5, n_baselines=2, baseline=0.5, baseline_std=0.0), linear, x, target)
    torch.testing.assert_close(got, (x - 0.5) * linear.weight.detach()[target])


# Attention x Gradient ----------------------------------------------------------------------------------------
def test_attention_x_gradient_matches_its_closed_form() -> None:
    from tests.unit.test_explainers_analytic import LearnedAttentionPool

    torch.manual_seed(0)
    model = LearnedAttentionPool().eval()
    x, target = torch.randn(4, 5), torch.tensor([0, 1, 0, 1])
    a0 = torch.softmax(model.theta.detach(), dim=-1)[0]
    expected = (model.c[target][:, None] * x * a0).clamp(min=0)[:, 1:]
    for layers in ("last", "all"):
        torch.testing.assert_close(run(make("attention_x_gradient", layers=layers), model, x, target), expected)


# Applicability -------------------------------------------------------------------------------------------------
def test_cam_and_lrp_are_not_applicable_without_the_declared_layers() -> None:
    series = SyntheticTimeSeries()
    for name in ("grad_cam", "grad_cam_pp", "score_cam"):
        method = make(name)
        assert cell_not_applicable(CNN(), Digits(), method) is None
        assert cell_not_applicable(CNN1D(), series, method) is None
        assert "conv" in cell_not_applicable(MLP(), Digits(), method)
        assert "conv" in cell_not_applicable(ViT(), Digits(), method)
        assert "does not handle tabular" in cell_not_applicable(MLP(), BreastCancer(), method)
    lrp = make("lrp")
    for model, data in ((CNN(), Digits()), (CNN1D(), series), (MLP(), BreastCancer()),
                        (LogisticRegression(), BreastCancer())):
        assert cell_not_applicable(model, data, lrp) is None
    assert "lrp" in cell_not_applicable(ViT(), Digits(), lrp)
    attention = make("attention_x_gradient")
    assert cell_not_applicable(ViT(), Digits(), attention) is None
    assert "attention" in cell_not_applicable(CNN(), Digits(), attention)
