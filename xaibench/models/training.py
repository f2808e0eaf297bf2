"""Deterministic training loop shared by the zoo (Adam + cross-entropy, seeded shuffling)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
from torch import nn
from tqdm.auto import tqdm

from xaibench.models.adam import FunctionalAdam
from xaibench.types import Split

if TYPE_CHECKING:
    from xaibench.models.base import ModelSpec


# CPU float reductions (matmul, conv) split work by thread, so the summation order - and the last bits of the
# trained weights - depend on the intra-op thread count: 1 vs 2 threads give different weights. Training pins the
# count so a launcher that limits threads per worker (joblib/loky, Slurm cgroups) trains the same weights.
TRAINING_THREADS = 1


@contextmanager
def pinned_threads(count: int = TRAINING_THREADS) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(count)``, restoring the previous count afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def module_device(module: nn.Module) -> torch.device:
    """Device of the module's first parameter or buffer (CPU for a module without any)."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


def train_classifier(module: nn.Module, split: Split, spec: "ModelSpec", seed: int) -> nn.Module:
    """Train with mini-batches drawn from a generator seeded by ``seed``; same inputs => same weights on CPU.

    Batches go to the module's device, so moving the module to a GPU before calling this trains there. CPU
    intra-op threads are pinned to ``TRAINING_THREADS`` for the duration (bitwise reproducibility).
    """
    with pinned_threads():
        return _train(module, split, spec, seed)


def _train(module: nn.Module, split: Split, spec: "ModelSpec", seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    # torch.optim.Adam's bits without its ~2 CPU-s import of torch._dynamo (see xaibench/models/adam.py)
    optimiser = FunctionalAdam(module.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    device = module_device(module)
    x, y = split.x.to(device), split.y.to(device)
    n = len(split)
    # Batch norm in train mode cannot normalise a batch of one sample (torch raises), so a network holding it
    # skips a last batch of one (the shuffle differs per epoch); any other network trains on every batch as before.
    stop = n - 1 if n % spec.batch_size == 1 and n > 1 and _has_batch_norm(module) else n
    module.train()
    for _ in tqdm(range(spec.epochs), desc=f"train {spec.name}", leave=False, disable=None):
        order = torch.randperm(n, generator=generator).to(device)
        for start in range(0, stop, spec.batch_size):
            idx = order[start : start + spec.batch_size]
            optimiser.zero_grad()
            loss = loss_fn(module(x[idx]), y[idx])
            loss.backward()
            optimiser.step()
    module.eval()
    return module


def _has_batch_norm(module: nn.Module) -> bool:
    """Whether ``module`` holds a batch-norm layer (``BatchNorm1d/2d/3d``, ``SyncBatchNorm``, lazy ones)."""
    return any(isinstance(layer, nn.modules.batchnorm._BatchNorm) for layer in module.modules())


@torch.no_grad()
def accuracy(module: nn.Module, split: Split, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``module`` on ``split`` (batches on the module's device, threads pinned as in training)."""
    device = module_device(module)
    correct = 0
    with pinned_threads():
        for start in range(0, len(split), batch_size):
            logits = module(split.x[start : start + batch_size].to(device))
            correct += int((logits.argmax(dim=1).cpu() == split.y[start : start + batch_size]).sum())
    return correct / max(len(split), 1)
