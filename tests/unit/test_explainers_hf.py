"""Attention explainers on Hugging Face models (tiny random configs saved locally, no download).

Rollout is checked against an independent re-implementation of Abnar & Zuidema (2020) on the maps the adapter
exposes; raw attention and gradient-weighted rollout against their shapes and the contract.
"""
from __future__ import annotations

import pytest
import torch

from tests.unit.test_models_adapters import TEXT, tiny_bert, tiny_vit
from xaibench.engine.datasets import build_dataset
from xaibench.registry import DATASETS, EXPLAINERS, MODELS


def reference_rollout(maps: list[torch.Tensor], cls_index: int) -> torch.Tensor:
    """prod_l normalise(0.5 * mean_heads(A_l) + 0.5 * I), last layer leftmost; the CLS row without CLS."""
    tokens = maps[0].shape[-1]
    result = torch.eye(tokens).expand(maps[0].shape[0], tokens, tokens)
    for attention in maps:
        mixed = 0.5 * attention.mean(dim=1) + 0.5 * torch.eye(tokens)
        result = (mixed / mixed.sum(-1, keepdim=True)) @ result
    row = result[:, cls_index]
    return torch.cat([row[:, :cls_index], row[:, cls_index + 1:]], dim=1)


@pytest.fixture(scope="module")
def hf_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf")
    digits = build_dataset(DATASETS.create("digits"), 0)
    text = build_dataset(DATASETS.create("synthetic_text", TEXT), 0)
    vit = MODELS.create("hf_image_classifier", {"path": str(tiny_vit(folder / "vit"))}).build(digits).eval()
    bert = MODELS.create("hf_sequence_classifier", {"path": str(tiny_bert(folder / "bert")), "cls_token_id": 21})
    return {"image": (vit, digits.test.x[:3]), "text": (bert.build(text).eval(), text.test.x[:3])}


@pytest.mark.parametrize("kind", ["image", "text"])
def test_rollout_on_hf_models_matches_the_reference(hf_models, kind):
    module, x = hf_models[kind]
    with torch.no_grad():
        _, maps = module.forward_with_attention(x)
        expected = module.tokens_to_input(reference_rollout([m.detach() for m in maps], module.cls_index))
    got = EXPLAINERS.create("rollout").explain(module, x, torch.zeros(len(x), dtype=torch.long)).attributions
    torch.testing.assert_close(got, expected)
    assert got.shape == (x.shape if kind == "image" else x.shape[:2])


@pytest.mark.parametrize("kind", ["image", "text"])
@pytest.mark.parametrize("method", ["raw_attention", "grad_rollout", "attention_x_gradient"])
def test_attention_methods_run_on_hf_models(hf_models, kind, method):
    module, x = hf_models[kind]
    explainer = EXPLAINERS.create(method)
    target = module(x).argmax(dim=1)
    first = explainer.explain(module, x, target).attributions
    assert first.shape == x.shape[: x.dim() if kind == "image" else 2]
    assert torch.isfinite(first).all() and first.abs().sum() > 0
    torch.testing.assert_close(explainer.explain(module, x, target).attributions, first)  # deterministic
    alone = torch.cat([explainer.explain(module, x[i : i + 1], target[i : i + 1]).attributions for i in range(len(x))])
    torch.testing.assert_close(alone, first, atol=explainer.batch_tolerance, rtol=0)
