"""The model contract: a frozen spec (fields = config parameters) that builds and trains a torch module.

Specs declare which modalities they accept and which capabilities the trained model offers, so the runner can
mark impossible (model, dataset, method) combinations ``not_applicable`` without running anything.

Capability protocols (what a trained module must provide when its spec declares the capability):

- ``GRADIENTS``: ``forward(x)`` is differentiable w.r.t. float inputs and returns logits ``(N, K)``.
- ``PROBA``: ``forward(x)`` returns class scores ``(N, K)`` (every model; sklearn adapters only this).
- ``EMBEDDING`` (text): ``embed(ids (N, L) int64) -> (N, L, D)`` and ``forward_embedded(emb (N, L, D)) -> (N, K)``;
  ``forward(ids) == forward_embedded(embed(ids))``. ``pad_id`` attribute: the token used as "absent".
  Optional ``mask_channel = True``: the last of the ``D`` channels is the attention mask (1 token, 0 padding);
  gradient baselines then keep the input's mask (Hugging Face adapter).
- ``ATTENTION``: ``forward_with_attention(x) -> (logits (N, K), [attn (N, heads, T, T) per layer])`` with the
  attention probabilities inside the autograd graph (gradient-weighted rollout differentiates through them);
  ``cls_index`` (int or None): the token whose row gives relevance (None: average over query tokens);
  ``tokens_to_input(relevance (N, T')) -> attributions shaped like x`` (T' = tokens without the CLS token;
  ViT: upsample patch relevance to ``(N, C, H, W)``; text: identity ``(N, L)``).
- ``CONV``: ``nn.Conv1d`` / ``nn.Conv2d`` modules whose outputs keep the input's layout (time steps, rows and
  columns), found in registration order; CAM methods read the last one (``explainers/cam/_layers.py``).
- ``LRP``: every leaf module is one the LRP explainer has a rule for (``explainers/propagation/lrp.py``), each used
  once per forward, and the forward computes nothing outside them but reshaping and ReLU (``torch_module`` declares
  it for any network: the explainer checks the built one and says ``not_applicable`` otherwise).
- ``LINEAR``: ``forward(x) = W flatten(x) + b``, so the gradient of the target logit is the ground-truth
  attribution (OpenXAI's ground-truth metrics, ``metrics/openxai.py``).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from xaibench.types import Capability, Dataset, Modality


@dataclass(frozen=True)
class ModelSpec:
    """Base of every registered model. Training parameters are fields, so they are part of the model's cache key.

    Attributes:
        epochs, lr, batch_size, weight_decay: the deterministic training recipe (Adam, cross-entropy).
        min_accuracy: test accuracy below which the trained model is flagged ``underfit`` in every row.
        logit_outputs: the class scores are logits, so ``explain_output`` may transform them as such (log_odds,
            log_softmax, probability); False (scores of another kind): only ``explain_output: logit`` is accepted.
    """

    name: ClassVar[str]
    modalities: ClassVar[frozenset[Modality]] = frozenset()
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.GRADIENTS, Capability.PROBA})
    logit_outputs: ClassVar[bool] = True

    epochs: int = 30
    lr: float = 1e-2
    batch_size: int = 64
    weight_decay: float = 0.0
    min_accuracy: float = 0.0

    def build(self, dataset: Dataset) -> nn.Module:  # pragma: no cover - interface
        """Return an untrained module for ``dataset`` (torch's global RNG is already seeded)."""
        raise NotImplementedError

    def fit(self, module: nn.Module, dataset: Dataset, seed: int) -> nn.Module:
        """Train ``module`` on the training split; the default is the suite's deterministic torch loop."""
        from xaibench.models.training import train_classifier

        return train_classifier(module, dataset.train, self, seed)

    def trains_weights(self) -> bool:
        """True when ``fit`` makes the weights (the zoo; adapters that train or fine-tune); False when the model is
        used as the user gave it (pre-fitted weights or estimator): its rows then name no ``model_device``."""
        return True

    def save(self, module: nn.Module) -> bytes:
        buffer = io.BytesIO()
        torch.save(module.state_dict(), buffer)
        return buffer.getvalue()

    def load(self, module: nn.Module, payload: bytes) -> nn.Module:
        state = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
        module.load_state_dict(state)
        return module

    def class_scores(self) -> str:
        """What ``forward`` returns: ``logits``, ``probabilities`` (adapters wrap those to log-probabilities) or
        ``scores`` of another kind (``logit_outputs = False``); ``explain_output`` is checked against it
        (``xaibench/models/outputs.py``)."""
        return "logits" if self.logit_outputs else "scores"

    def source_revision(self) -> str:
        """Fingerprint of local files the model is built from (adapters: weights file / model folder), else "".

        Config keys hold paths, not contents: a key that should change when the user replaces the weights at the
        same path needs this value too. Adapters also pin their checkpoints to it (``adapters._source``).
        """
        return ""


@dataclass(frozen=True)
class TrainedModel:
    """A ready model: module in eval mode plus what the rows record about it."""

    module: nn.Module
    spec: ModelSpec
    key: str
    accuracy: float
    seed_root: str = ""  # the key without the package version: seeds derive from it (CellSpec.model_key)
    # Where ``fit`` left the weights when the model stage was computed (``cpu``, ``cuda:0``): the rows'
    # ``model_device``. "" when the suite did not train it (pre-fitted) or a checkpoint cached before schema v4.
    device: str = ""

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.spec.capabilities

    @property
    def underfit(self) -> bool:
        """Below the spec's ``min_accuracy`` (see ``underfit_reason`` for the check relative to the data)."""
        return self.accuracy < self.spec.min_accuracy

    def underfit_reason(self, majority_rate: float) -> str:
        """Why the model is underfit on a test split whose most frequent class has share ``majority_rate``, or "".

        ``min_accuracy`` is absolute, so on imbalanced data (90% of one class) a model that always predicts that
        class would pass 0.7: a model not above the majority-class rate has learnt nothing beyond the class
        frequencies and is underfit whatever ``min_accuracy`` says.
        """
        if self.underfit:
            return f"test accuracy {self.accuracy:.2f} below its min_accuracy {self.spec.min_accuracy:.2f}"
        if self.accuracy <= majority_rate < 1:  # a one-class test split cannot tell a model from a constant
            return (f"test accuracy {self.accuracy:.2f} not above {majority_rate:.2f}, the majority-class rate "
                    "(always predicting the most frequent test class scores as much)")
        return ""


def majority_rate(labels: torch.Tensor) -> float:
    """Share of the most frequent class in ``labels`` (N,) class indices; 0 for no labels."""
    if labels.numel() == 0:
        return 0.0
    return float(torch.bincount(labels.long().flatten()).max()) / labels.numel()
