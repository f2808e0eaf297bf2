"""A tiny text transformer classifier (encoder + CLS token, as in BERT; Devlin et al., 2019) for token ids.

It offers the ``EMBEDDING`` protocol (explainers work on token embeddings, one attribution per token) and the
``ATTENTION`` protocol (per-layer attention probabilities inside the autograd graph).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xaibench.errors import UserError
from xaibench.models.base import ModelSpec
from xaibench.models.zoo._attention import Encoder
from xaibench.registry import MODELS
from xaibench.types import Capability, Dataset, Modality


class TinyTextTransformer(nn.Module):
    """Token embedding -> [CLS] + tokens + learned positions -> encoder -> linear head on the CLS token.

    Tokens seen by the encoder: ``T = 1 + L`` with the (learned, id-less) CLS token at index 0. Padding is not
    masked out of attention, so ``forward(ids) == forward_embedded(embed(ids))`` holds exactly and ``pad_id``
    works as the "absent" token for explainers.
    """

    cls_index = 0

    def __init__(self, vocab_size: int, seq_len: int, n_classes: int, *, dim: int, depth: int, heads: int,
                 mlp_ratio: int, pad_id: int = 0) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.seq_len = seq_len
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, 1 + seq_len, dim))
        self.encoder = Encoder(dim, depth, heads, mlp_ratio)
        self.head = nn.Linear(dim, n_classes)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids ``(N, L)`` int64 -> embeddings ``(N, L, D)`` (no positions: those are added inside)."""
        return self.token_embedding(ids)

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Token ids ``(N, L)`` (or embeddings ``(N, L, D)``) -> ``(logits (N, K), [attn (N, h, 1+L, 1+L)])``."""
        embeddings = self.embed(x) if not torch.is_floating_point(x) else x
        if embeddings.shape[1] > self.seq_len:
            raise ValueError(f"sequence of {embeddings.shape[1]} tokens exceeds the model's {self.seq_len}")
        n, length = embeddings.shape[:2]
        tokens = torch.cat([self.cls_token.expand(n, -1, -1), embeddings], dim=1) + self.pos_embed[:, : 1 + length]
        hidden, maps = self.encoder(tokens)
        return self.head(hidden[:, self.cls_index]), maps

    def forward_embedded(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Embeddings ``(N, L, D)`` -> logits ``(N, K)``."""
        return self.forward_with_attention(embeddings)[0]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids ``(N, L)`` -> logits ``(N, K)``."""
        return self.forward_with_attention(ids)[0]

    def tokens_to_input(self, relevance: torch.Tensor) -> torch.Tensor:
        """Per-token relevance without the CLS token ``(N, L)`` is already the input layout: identity."""
        return relevance


@MODELS.register("text_transformer")
@dataclass(frozen=True)
class TextTransformer(ModelSpec):
    """Tiny transformer for token-id datasets; reads ``vocab_size`` and the sequence length from the dataset."""

    modalities = frozenset({Modality.TEXT})
    capabilities = frozenset({Capability.GRADIENTS, Capability.EMBEDDING, Capability.ATTENTION, Capability.PROBA})
    dim: int = 32
    depth: int = 2
    heads: int = 2
    mlp_ratio: int = 2
    pad_id: int = 0
    epochs: int = 10
    lr: float = 3e-3
    batch_size: int = 32

    def build(self, dataset: Dataset) -> nn.Module:
        if dataset.vocab_size <= 0 or len(dataset.input_shape) != 1:
            raise UserError(f"text_transformer needs token ids (N, L) and a vocab_size; dataset {dataset.name} has "
                            f"inputs {dataset.input_shape} and vocab_size {dataset.vocab_size}")
        if not 0 <= self.pad_id < dataset.vocab_size:
            raise UserError(f"text_transformer: pad_id {self.pad_id} outside the vocabulary of {dataset.vocab_size}")
        return TinyTextTransformer(dataset.vocab_size, dataset.input_shape[0], dataset.n_classes, dim=self.dim,
                                   depth=self.depth, heads=self.heads, mlp_ratio=self.mlp_ratio, pad_id=self.pad_id)
