"""Deterministic training loop shared by the zoo (Adam + cross-entropy, seeded shuffling)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from tqdm.auto import tqdm

from xaibench.types import Split

if TYPE_CHECKING:
    from xaibench.models.base import ModelSpec


def train_classifier(module: nn.Module, split: Split, spec: "ModelSpec", seed: int) -> nn.Module:
    """Train with mini-batches drawn from a generator seeded by ``seed``; same inputs => same weights on CPU."""
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(module.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    n = len(split)
    module.train()
    for _ in tqdm(range(spec.epochs), desc=f"train {spec.name}", leave=False, disable=None):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, spec.batch_size):
            idx = order[start : start + spec.batch_size]
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(module(split.x[idx]), split.y[idx])
            loss.backward()
            optimiser.step()
    module.eval()
    return module


@torch.no_grad()
def accuracy(module: nn.Module, split: Split, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``module`` on ``split``."""
    correct = 0
    for start in range(0, len(split), batch_size):
        logits = module(split.x[start : start + batch_size])
        correct += int((logits.argmax(dim=1) == split.y[start : start + batch_size]).sum())
    return correct / max(len(split), 1)
