"""Count model forwards (calls and rows) made by an explainer or metric."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ForwardCounter(nn.Module):
    """Transparent wrapper: forwards calls and attribute look-ups (``embed``, ``attention_maps``...) to ``model``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.calls = 0
        self.rows = 0
        self.largest = 0  # rows of the largest single forward (what an explainer's ``call_rows`` bounds)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        self._count(int(x.shape[0]) if hasattr(x, "shape") and x.dim() > 0 else 1)
        return self.model(x, *args, **kwargs)

    def forward_embedded(self, x: torch.Tensor) -> torch.Tensor:
        self._count(int(x.shape[0]))
        return self.model.forward_embedded(x)

    def forward_with_attention(self, x: torch.Tensor, *args: Any, **kwargs: Any):
        self._count(int(x.shape[0]))
        return self.model.forward_with_attention(x, *args, **kwargs)

    def _count(self, rows: int) -> None:
        self.calls += 1
        self.rows += rows
        self.largest = max(self.largest, rows)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["model"], name)
