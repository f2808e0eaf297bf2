"""One contract test over every registered explainer (design.md: Explainer; style.md: captum's test table).

For each method and each modality it declares, on a tiny model made here that offers the capabilities it
requires: attributions have the documented shape and are finite; the result is identical when re-run under the
same seed; explaining the batch equals explaining each sample alone within the method's declared
``batch_tolerance``; the largest model forward of a call is what the method's ``call_rows`` declares (the fast
scoring engine sizes its re-explanation calls by it). Counterfactual methods also return counterfactuals shaped
like ``x`` with attributions ``x - x_cf``. Parameters come from ``conf/method/<name>.yaml`` (reduced where they only cost time).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from xaibench.engine.counting import ForwardCounter
from xaibench.errors import UserError
from xaibench.explainers.seeding import cell_seed
from xaibench.metrics.layout import QuantusModel, to_quantus_inputs
from xaibench.metrics.quantus_adapter import make_explain_func, token_table
from xaibench.registry import EXPLAINERS
from xaibench.types import Capability, Modality

CONF = Path(__file__).resolve().parents[2] / "conf" / "method"
N = 3  # samples per batch in the contract test

# Cheaper settings for the tests (same code paths, fewer draws / steps).
FAST = {
    "integrated_gradients": {"n_steps": 8},
    "smoothgrad": {"n_samples": 4},
    "smoothgrad_sq": {"n_samples": 4},
    "vargrad": {"n_samples": 4},
    "gradient_shap": {"n_samples": 4, "n_baselines": 4},
    "expected_gradients": {"n_samples": 4, "n_baselines": 4},
    "score_cam": {"internal_batch_size": 2},
    "deeplift_shap": {"n_baselines": 3},
    "kernel_shap": {"n_samples": 40, "perturbations_per_eval": 16},
    "lime": {"n_samples": 40, "perturbations_per_eval": 16},
    "shap_library": {"n_samples": 40},
    "lime_library": {"n_samples": 100},
    "wachter": {"n_steps": 20, "n_lambdas": 3, "lambda_init": 10.0},
    "growing_spheres": {"n_samples": 100, "max_layers": 20},
    "dice": {"n_samples": 200},
    "decision_tree": {"n_samples": 300},
}


# Tiny models, one per modality, implementing the capability protocols of models/base.py ----------------------
class TinySelfAttention(nn.Module):
    """Multi-head self-attention + ReLU MLP with residuals; returns the attention probabilities (in the graph)."""

    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, t, d = h.shape
        q, k, v = self.qkv(h).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1)
        mixed = (attention @ v).transpose(1, 2).reshape(n, t, d)
        h = h + self.proj(mixed)
        return h + self.mlp(h), attention


class TinyTextTransformer(nn.Module):
    """EMBEDDING + ATTENTION protocols: ids ``(N, L)`` -> logits, with a CLS token prepended inside."""

    pad_id = 0
    cls_index = 0

    def __init__(self, vocab: int = 12, length: int = 5, dim: int = 8, classes: int = 3, layers: int = 2) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Parameter(torch.randn(length, dim) * 0.5)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.blocks = nn.ModuleList(TinySelfAttention(dim) for _ in range(layers))
        self.head = nn.Linear(dim, classes)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.tokens(ids) + self.positions[: ids.shape[1]]

    def _run(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = torch.cat([self.cls.expand(len(embeddings), -1, -1), embeddings], dim=1)
        maps = []
        for block in self.blocks:
            h, attention = block(h)
            maps.append(attention)
        return self.head(h[:, 0]), maps

    def forward_embedded(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self._run(embeddings)[0]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(self.embed(ids))

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Token ids ``(N, L)`` or, like the zoo's text transformer, embeddings ``(N, L, D)``."""
        return self._run(x if x.is_floating_point() else self.embed(x))

    def tokens_to_input(self, relevance: torch.Tensor) -> torch.Tensor:
        return relevance


class TinyViT(nn.Module):
    """ATTENTION protocol on images ``(N, 2, 4, 4)``: 2x2 patches -> 4 tokens + CLS."""

    cls_index = 0
    patch = 2

    def __init__(self, channels: int = 2, size: int = 4, dim: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.channels, self.grid = channels, size // self.patch
        self.patches = nn.Linear(channels * self.patch**2, dim)
        self.positions = nn.Parameter(torch.randn(self.grid**2, dim) * 0.5)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.blocks = nn.ModuleList(TinySelfAttention(dim) for _ in range(2))
        self.head = nn.Linear(dim, classes)

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        n, p = len(x), self.patch
        tokens = x.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 1, 4, 5).reshape(n, self.grid**2, -1)
        h = torch.cat([self.cls.expand(n, -1, -1), self.patches(tokens) + self.positions], dim=1)
        maps = []
        for block in self.blocks:
            h, attention = block(h)
            maps.append(attention)
        return self.head(h[:, 0]), maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x)[0]

    def tokens_to_input(self, relevance: torch.Tensor) -> torch.Tensor:
        grid = relevance.reshape(-1, 1, self.grid, self.grid)
        upsampled = grid.repeat_interleave(self.patch, dim=2).repeat_interleave(self.patch, dim=3)
        return upsampled.expand(-1, self.channels, -1, -1)


class TinyTokenMlp(nn.Module):
    """EMBEDDING protocol without attention: ids ``(N, L)`` -> a ReLU MLP per token, averaged -> logits (DeepLIFT has
    a rule for each step; for a transformer's attention products it has none: not_applicable)."""

    pad_id = 0

    def __init__(self, vocab: int = 12, length: int = 5, dim: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Parameter(torch.randn(length, dim) * 0.5)
        self.hidden, self.relu, self.head = nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, classes)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.tokens(ids) + self.positions[: ids.shape[1]]

    def forward_embedded(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.hidden(embeddings)).mean(dim=1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(self.embed(ids))


# Methods with no rule for attention products (a transformer is not_applicable): their text case has no attention
NO_ATTENTION_TEXT = frozenset({"deeplift", "deeplift_shap"})


def _tabular() -> tuple[nn.Module, torch.Tensor]:
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    return model, torch.randn(N, 5)


def _image() -> tuple[nn.Module, torch.Tensor]:
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))
    return model, torch.randn(N, 2, 4, 4)


def _series() -> tuple[nn.Module, torch.Tensor]:
    model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(2), nn.Flatten(), nn.Linear(8, 3))
    return model, torch.randn(N, 2, 6)


def _vit() -> tuple[nn.Module, torch.Tensor]:
    return TinyViT(), torch.randn(N, 2, 4, 4)


def _text() -> tuple[nn.Module, torch.Tensor]:
    ids = torch.randint(1, 12, (N, 5))
    ids[0, -1] = 0  # a pad token in the batch
    return TinyTextTransformer(), ids


def tiny_case(modality: Modality, requires: frozenset[Capability], name: str = "") -> tuple[nn.Module, torch.Tensor]:
    """A seeded tiny model (eval mode) offering ``requires`` for ``modality`` (and explainable by method ``name``),
    and a batch of ``N`` inputs."""
    torch.manual_seed(1234)
    if modality is Modality.TEXT and name in NO_ATTENTION_TEXT:
        model, x = _text()
        model = TinyTokenMlp()
    elif modality is Modality.TEXT:
        model, x = _text()
    elif modality is Modality.IMAGE:
        model, x = _vit() if Capability.ATTENTION in requires else _image()
    elif modality is Modality.TIME_SERIES:
        model, x = _series()
    else:
        model, x = _tabular()
    return model.eval(), x


def configured(name: str):
    """The explainer as ``conf/method/<name>.yaml`` configures it, with the FAST reductions."""
    params = yaml.safe_load((CONF / f"{name}.yaml").read_text())
    assert params.pop("name") == name
    explainer = EXPLAINERS.create(name, params)
    return dataclasses.replace(explainer, **FAST.get(name, {}))


def explain(explainer, model: nn.Module, x: torch.Tensor, target: torch.Tensor, seed: int = 0,
            counter: ForwardCounter | None = None):
    """Explain as a stage with seed ``seed`` does (the cell seed for model-free controls, torch/numpy for the rest),
    through ``counter`` (a fresh :class:`ForwardCounter` if None)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    with cell_seed(seed):
        return explainer.explain(counter or ForwardCounter(model), x, target)


def assert_call_rows(explainer, modality: Modality, x: torch.Tensor, counter: ForwardCounter) -> None:
    """The largest forward ``counter`` saw explaining ``x`` is what ``explainer.call_rows`` says: within its bound
    ``per_call + n * per_input`` and at least ``max(per_call, n * per_input)`` (so an overstated cost fails too)."""
    rows = explainer.call_rows(modality, tuple(x.shape[1:]))
    n = len(x)
    assert max(rows.per_call, n * rows.per_input) <= counter.largest <= rows.largest_forward(n), \
        f"largest forward {counter.largest} rows for {n} inputs, call_rows says {rows}"


CASES = [(name, modality) for name in EXPLAINERS.names() for modality in sorted(EXPLAINERS.get(name).modalities)]


def test_every_registered_explainer_has_a_config_and_vice_versa() -> None:
    configs = {path.stem for path in CONF.glob("*.yaml")}
    assert configs == set(EXPLAINERS.names())
    for name in configs:
        cls = EXPLAINERS.get(name)
        assert cls.batch_tolerance > 0 and cls.modalities, name
        assert cls.__doc__ and len(cls.__doc__) > 40, f"{name}: document the method and its tolerance"


@pytest.mark.parametrize(("name", "modality"), CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_explainer_contract(name: str, modality: Modality) -> None:
    explainer = configured(name)
    model, x = tiny_case(modality, explainer.requires, name)
    with torch.no_grad():
        target = model(x).argmax(dim=1)
    counter = ForwardCounter(model)
    first = explain(explainer, model, x, target, counter=counter)
    assert_call_rows(explainer, modality, x, counter)

    expected = tuple(x.shape[:2]) if modality is Modality.TEXT else tuple(x.shape)
    assert tuple(first.attributions.shape) == expected
    assert first.attributions.is_floating_point() and torch.isfinite(first.attributions).all()
    for key, value in first.extras.items():
        assert np.asarray(value).shape[0] == len(x), f"extras[{key!r}] must be per sample"
    if first.counterfactuals is not None:  # one per sample (N, ...) or K per sample (N, K, ...)
        several = first.counterfactuals.dim() == x.dim() + 1
        assert first.counterfactuals.shape[0] == len(x) and first.counterfactuals.shape[-x.dim() + 1:] == x.shape[1:]
        average = first.counterfactuals.mean(dim=1) if several else first.counterfactuals
        torch.testing.assert_close(first.attributions, x - average)

    again = explain(explainer, model, x, target)
    assert torch.equal(first.attributions, again.attributions), "not deterministic under a seed"

    alone = []
    for i in range(len(x)):
        counter = ForwardCounter(model)
        alone.append(explain(explainer, model, x[i : i + 1], target[i : i + 1], counter=counter).attributions)
        assert_call_rows(explainer, modality, x[i : i + 1], counter)
    alone = torch.cat(alone)
    gap = (alone - first.attributions).abs().max().item()
    assert gap <= explainer.batch_tolerance, f"batch != each sample alone: max |diff| {gap:.2e}"


def test_a_different_seed_changes_stochastic_methods() -> None:
    """Seeding matters (the per-sample draws come from the stage seed, not from constants)."""
    # (shap_library is exact here: 5 features have 30 coalitions, fewer than n_samples, so shap enumerates them)
    for name in ("smoothgrad", "vargrad", "gradient_shap", "kernel_shap", "lime", "random", "lime_library",
                 "growing_spheres", "dice"):
        explainer = configured(name)
        model, x = tiny_case(Modality.TABULAR, explainer.requires)
        target = torch.zeros(len(x), dtype=torch.long)
        a = explain(explainer, model, x, target, seed=0).attributions
        b = explain(explainer, model, x, target, seed=1).attributions
        assert not torch.equal(a, b), name


@pytest.mark.parametrize("name", [n for n in EXPLAINERS.names() if Modality.TEXT in EXPLAINERS.get(n).modalities])
def test_text_methods_re_explain_embeddings_through_the_quantus_adapter(name: str) -> None:
    """Stability/randomisation metrics re-explain perturbed text as embeddings ``(N, L, D)``: same per-token layout,
    and the same values as explaining the token ids (stochastic methods too: their draws come from the token ids,
    which the adapter's token table recovers from the embeddings)."""
    explainer = configured(name)
    model, ids = tiny_case(Modality.TEXT, explainer.requires, name)
    with torch.no_grad():
        target = model(ids).argmax(dim=1)
    explain_func = make_explain_func(explainer, Modality.TEXT, tuple(ids.shape[1:]), tokens=token_table(model, ids))
    torch.manual_seed(0)
    quantus = explain_func(QuantusModel(model, Modality.TEXT, tuple(ids.shape[1:])),
                           to_quantus_inputs(model, ids, Modality.TEXT), target.numpy())
    assert quantus.shape == (len(ids), 1, ids.shape[1]) and np.isfinite(quantus).all()
    if name in {"saliency", "input_x_gradient", "integrated_gradients", "deeplift", "occlusion", "feature_ablation",
                "smoothgrad", "gradient_shap", "deeplift_shap", "constant", "raw_attention", "rollout", "grad_rollout",
                "guided_backprop", "smoothgrad_sq", "vargrad", "expected_gradients", "attention_x_gradient", "random",
                "kernel_shap", "lime"}:
        native = explain(explainer, model, ids, target).attributions.numpy()
        np.testing.assert_allclose(quantus[:, 0], native, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["kernel_shap", "lime"])
def test_perturbations_per_eval_of_one_is_rejected(name: str) -> None:
    with pytest.raises(UserError, match="perturbations_per_eval"):
        EXPLAINERS.create(name, {"perturbations_per_eval": 1})


def test_bad_parameters_fail_before_compute() -> None:
    with pytest.raises(UserError, match="n_steps"):
        EXPLAINERS.create("integrated_gradients", {"n_steps": 0})
    with pytest.raises(UserError, match="baseline"):
        EXPLAINERS.create("integrated_gradients", {"baseline": "zeros"})
    with pytest.raises(UserError, match="n_baselines"):
        EXPLAINERS.create("deeplift_shap", {"n_baselines": 1})
