"""Tiny models and contexts made in code, shared by the metric tests and the metric benchmark.

Nothing here is registered; everything is deterministic given the ``seed`` arguments and runs in well under a
second on a CPU.
"""
from __future__ import annotations

import torch
from torch import nn

from xaibench.metrics.quantus_adapter import ScoreContext
from xaibench.models.adam import FunctionalAdam
from xaibench.types import Modality, Split


class TinyTextModel(nn.Module):
    """Embedding ``(V, D)`` -> flatten ``L * D`` -> MLP; offers ``embed``, ``forward_embedded`` and ``pad_id``."""

    pad_id = 0

    def __init__(self, vocab: int = 20, dim: int = 4, length: int = 8, n_classes: int = 2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(length * dim, 8), nn.ReLU(), nn.Linear(8, n_classes))

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids)

    def forward_embedded(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.head(embeddings)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(self.embed(ids))


class ResNetLike(nn.Module):
    """A user's own ResNet-like CNN (not an ``nn.Sequential``): a stem ``conv -> BN -> ReLU``, one basic residual
    block ``relu(bn(conv(relu(bn(conv(x))))) + x)``, then a head written as such models write it.

    ``head``: ``functional`` (``F.relu``, ``F.adaptive_avg_pool2d(x, 1)``, ``torch.flatten(x, 1)``), ``module``
    (``self.relu``, ``self.pool = nn.AdaptiveAvgPool2d(1)``, ``x.view(x.size(0), -1)``) or ``avg_pool``
    (``x.relu()``, ``F.avg_pool2d(x, 2)``, ``x.reshape(x.shape[0], -1)``; the linear layer reads ``C * H/2 * W/2``).
    The batch norms get non-trivial running statistics (eval mode). Input ``(N, channels, H, W)``; logits ``(N, K)``.
    """

    def __init__(self, channels: int = 1, width: int = 6, n_classes: int = 3, head: str = "functional",
                 side: int = 8, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.head = head
        self.stem = nn.Conv2d(channels, width, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(width)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        features = width * (side // 2) ** 2 if head == "avg_pool" else width
        self.fc = nn.Linear(features, n_classes)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) / max(1, parameter[0].numel()) ** 0.5)
            for bn in (self.stem_bn, self.bn1, self.bn2):
                bn.running_mean.copy_(0.1 * torch.randn(width, generator=generator))
                bn.running_var.copy_(0.5 + torch.rand(width, generator=generator))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.relu(self.stem_bn(self.stem(x)))
        out = torch.nn.functional.relu(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(out)) + x
        if self.head == "functional":
            x = torch.nn.functional.relu(x)
            x = torch.nn.functional.adaptive_avg_pool2d(x, 1)
            x = torch.flatten(x, 1)
        elif self.head == "module":
            x = self.pool(self.relu(x))
            x = x.view(x.size(0), -1)
        else:
            x = torch.nn.functional.avg_pool2d(x.relu(), 2)
            x = x.reshape(x.shape[0], -1)
        return self.fc(x)


def tiny_mlp(n_features: int = 10, n_classes: int = 3, hidden: int = 16) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


def tiny_cnn(n_classes: int = 3, channels: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(64, n_classes))


def bar_images(n: int, size: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images ``(n, 1, size, size)`` with one bright 2-pixel bar (class 0 horizontal, 1 vertical) in faint noise.

    Returns ``(x, y, masks)``; the mask marks the bar.
    """
    gen = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.rand((n, 1, size, size), generator=gen)
    masks = torch.zeros_like(x)
    y = torch.arange(n) % 2
    starts = torch.randint(0, size - 1, (n,), generator=gen)
    offsets = torch.randint(0, size - 4, (n,), generator=gen)
    for i in range(n):
        r, c = int(starts[i]), int(offsets[i])
        if y[i] == 0:
            masks[i, 0, r:r + 2, c:c + 4] = 1.0
        else:
            masks[i, 0, c:c + 4, r:r + 2] = 1.0
    return x + masks, y, masks


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 300, lr: float = 0.01,
          seed: int = 0) -> nn.Module:
    """Full-batch Adam on cross-entropy; returns the model in eval mode."""
    torch.manual_seed(seed)
    optimiser = FunctionalAdam(model.parameters(), lr=lr)  # torch.optim.Adam's steps, no torch._dynamo import
    model.train()
    for _ in range(steps):
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimiser.step()
    return model.eval()


def context(model: nn.Module, modality: Modality, x: torch.Tensor, explainer, *, masks: torch.Tensor | None = None,
            counterfactuals: torch.Tensor | None = None, n_classes: int = 3, targets: torch.Tensor | None = None,
            attributions: torch.Tensor | None = None, train_split: Split | None = None) -> ScoreContext:
    """A ``ScoreContext`` explaining the predicted class with ``explainer`` (unless attributions are given)."""
    model = model.eval()
    if targets is None:
        with torch.no_grad():
            targets = model(x).argmax(dim=1)
    if attributions is None:
        attributions = explainer.explain(model, x, targets).attributions.detach()
    if train_split is None:
        train_split = Split(x, targets, tuple(str(i) for i in range(len(x))))
    return ScoreContext(model=model, modality=modality, x=x, targets=targets, attributions=attributions,
                        explainer=explainer, masks=masks, counterfactuals=counterfactuals, train=train_split,
                        n_classes=n_classes)
