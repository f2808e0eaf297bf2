"""How explainers see a batch: float inputs, a forward over them, baselines and interpretable feature groups.

Three kinds of batch reach an explainer:

- dense float inputs: tabular ``(N, F)``, image ``(N, C, H, W)``, time series ``(N, C, T)``;
- token ids ``(N, L)`` of a text model (EMBEDDING protocol: ``embed``, ``forward_embedded``, ``pad_id``);
- token embeddings ``(N, L, D)`` with a model that takes embeddings: what the Quantus adapter passes when a metric
  re-explains perturbed text (``metrics/quantus_adapter.py``), and what :class:`EmbeddedForward` wraps.

Baselines (the ``baseline`` parameter, one vocabulary for every method): a float (constant input, ``0.0`` is the
mean of standardised features), ``"mean"`` (each sample's own mean value) or ``"uniform"`` (uniform noise in each
sample's ``[min, max]``, seeded per sample). Text always uses the ``pad_id`` token as "absent": gradient methods
use the pad tokens' embeddings, perturbation methods replace whole tokens by ``pad_id``; both agree because the
embedding of a pad token at position ``i`` is what replacing token ``i`` by ``pad_id`` feeds the model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import nn

from xaibench.explainers.base import EmbeddedForward, is_token_ids, per_token, select_target
from xaibench.explainers.seeding import generator, sample_seeds
from xaibench.types import Modality

Baseline = float | Literal["mean", "uniform"]
InputKind = Literal["dense", "ids", "embedded"]


def embedded_text_model(model: nn.Module) -> nn.Module | None:
    """The text model behind a wrapper whose forward takes token embeddings ``(N, L, D)``, else None.

    Recognised: anything with ``takes_embeddings = True`` and a ``model`` attribute, or a module with a ``model``
    offering ``forward_embedded`` while itself offering none (the Quantus adapter's ``_EmbeddedForward``).
    """
    inner = getattr(model, "model", None) if isinstance(model, nn.Module) else None
    if inner is None or not hasattr(inner, "forward_embedded"):
        return None
    if getattr(model, "takes_embeddings", False) or not hasattr(model, "forward_embedded"):
        return inner
    return None


def input_kind(model: nn.Module, x: torch.Tensor) -> InputKind:
    if is_token_ids(x):
        return "ids"
    if x.dim() == 3 and embedded_text_model(model) is not None:
        return "embedded"
    return "dense"


def explained_shape(model: nn.Module, x: torch.Tensor) -> torch.Size:
    """Shape of the attributions for ``x``: ``x.shape``, or ``(N, L)`` for token embeddings ``(N, L, D)``."""
    return x.shape[:2] if input_kind(model, x) == "embedded" else x.shape


def pad_embeddings(text_model: nn.Module, n: int, length: int, device: torch.device) -> torch.Tensor:
    """Embeddings ``(n, length, D)`` of an all-``pad_id`` sequence (the "absent" text input)."""
    ids = torch.full((n, length), pad_id(text_model), dtype=torch.long, device=device)
    with torch.no_grad():
        return text_model.embed(ids).detach()


def keep_attention_mask(baselines: torch.Tensor, inputs: torch.Tensor, text_model: nn.Module) -> torch.Tensor:
    """Gradient baselines of a model whose last embedding channel is the attention mask (``mask_channel``) keep
    the input's mask: the path from baseline to input then never switches tokens on or off, padding stays masked
    and IG's path integral has no jump. Other models: ``baselines`` unchanged."""
    if not getattr(text_model, "mask_channel", False):
        return baselines
    baselines = baselines.clone()
    baselines[..., -1] = inputs[..., -1].detach()
    return baselines


def pad_id(text_model: nn.Module) -> int:
    value = getattr(text_model, "pad_id", None)
    if value is None:
        raise TypeError("text models must define pad_id (the token used as 'absent'); see models/base.py")
    return int(value)


def dense_baselines(inputs: torch.Tensor, baseline: Baseline, salt: str = "baseline") -> torch.Tensor:
    """Baselines shaped like float ``inputs`` ``(N, ...)`` for a float / ``"mean"`` / ``"uniform"`` choice."""
    inputs = inputs.detach()
    if isinstance(baseline, (int, float)):
        return torch.full_like(inputs, float(baseline))
    dims = tuple(range(1, inputs.dim()))
    if baseline == "mean":
        return inputs.mean(dim=dims, keepdim=True).expand_as(inputs).clone()
    if baseline == "uniform":
        low = inputs.amin(dim=dims, keepdim=True)
        high = inputs.amax(dim=dims, keepdim=True)
        noise = torch.stack([torch.rand(inputs.shape[1:], generator=generator(seed)) for seed in sample_seeds(inputs, salt)])
        return low + (high - low) * noise.to(inputs.device, inputs.dtype)
    raise ValueError(f"unknown baseline {baseline!r}; use a number, 'mean' or 'uniform'")


def baseline_distribution(centre: torch.Tensor, spread: float, n: int, seed: int) -> torch.Tensor:
    """``n`` baselines ``(n, ...)`` around one sample's baseline ``centre`` ``(1, ...)``: Gaussian noise of std ``spread``."""
    noise = torch.randn((n, *centre.shape[1:]), generator=generator(seed)).to(centre.device, centre.dtype)
    return centre + spread * noise


def feature_grouping(modality: Modality, patch_size: int) -> dict[str, object]:
    """How :meth:`PerturbationView.feature_mask` groups elements into interpretable features, for the rows.

    A group is switched on and off as a whole and every element of it carries the group's whole attribution, so a
    map sums to (group size) x the output change: 4x for the default 2x2 image patches.
    """
    groups = {
        Modality.TABULAR: ("columns", 1),
        Modality.IMAGE: (f"{patch_size}x{patch_size} patches, channels together", patch_size * patch_size),
        Modality.TIME_SERIES: (f"windows of {patch_size} steps, channels together", patch_size),
        Modality.TEXT: ("tokens", 1),
    }
    grouping, elements = groups[modality]
    return {"feature_grouping": grouping, "group_value": "copied to every element of the group",
            "elements_per_group": elements}


@dataclass(frozen=True)
class GradientView:
    """A batch as gradient methods see it.

    Attributes:
        forward: differentiable ``inputs -> logits (N, K)``.
        inputs: float tensor the gradients are taken w.r.t. (text: embeddings ``(N, L, D)``).
        text_model: the text model (for pad embeddings), None for dense inputs.
        identity: what each sample's random draws are seeded from (:meth:`seeds`): the token ids ``(N, L)`` when
            the batch came as ids, else ``inputs``.
    """

    forward: Callable[[torch.Tensor], torch.Tensor]
    inputs: torch.Tensor
    text_model: nn.Module | None
    identity: torch.Tensor | None = None

    @classmethod
    def of(cls, model: nn.Module, x: torch.Tensor) -> "GradientView":
        kind = input_kind(model, x)
        if kind == "ids":
            if not (hasattr(model, "embed") and hasattr(model, "forward_embedded")):
                raise TypeError("integer (token) inputs need a model with embed() and forward_embedded()")
            with torch.no_grad():
                embeddings = model.embed(x).detach()
            return cls(EmbeddedForward(model), embeddings.requires_grad_(True), model, x)
        # a fresh leaf that requires grad: captum then neither warns nor touches the caller's tensor
        inputs = x.detach().requires_grad_(True)
        return cls(model, inputs, embedded_text_model(model) if kind == "embedded" else None)

    def seeds(self, salt: str) -> list[int]:
        """One seed per sample (:func:`~xaibench.explainers.seeding.sample_seeds` of :attr:`identity`): a text
        sample draws from its token ids, never from its embeddings (``explainers/seeding.py``)."""
        return sample_seeds(self.inputs if self.identity is None else self.identity, salt)

    def baselines(self, baseline: Baseline, salt: str = "baseline") -> torch.Tensor:
        """Baselines shaped like ``inputs`` (text: pad-token embeddings, whatever ``baseline`` says)."""
        if self.text_model is not None:
            n, length = self.inputs.shape[:2]
            pads = pad_embeddings(self.text_model, n, length, self.inputs.device).to(self.inputs.dtype)
            return keep_attention_mask(pads, self.inputs, self.text_model)
        return dense_baselines(self.inputs, baseline, salt)

    def to_output(self, attributions: torch.Tensor) -> torch.Tensor:
        """Attributions over ``inputs`` -> the explained input's layout (text: per token ``(N, L)``)."""
        attributions = attributions.detach()
        return per_token(attributions) if self.text_model is not None else attributions


class SummedTargetForward:
    """``sum_i forward(inputs)[i, target_i]`` as shape ``(1,)``: one backward seed per forward instead of one per row.

    captum takes gradients with ``torch.autograd.grad(torch.unbind(outputs), inputs)``: the gradient of the sum of
    the per-row target outputs, seeded by one ``ones_like`` per row (python work that dominates small models:
    56% of IG on a tabular MLP). Summing inside the forward gives the same gradient bit for bit (both seed
    the rows with exact ones). The target travels as captum's ``additional_forward_args``, which captum expands
    with the inputs (path steps, noise samples). Not for diagnostics that read per-row outputs (IG's delta).

    Args (call): inputs ``(R, ...)``, target ``(R,)`` class indices.
    """

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.forward = forward

    def __call__(self, inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return select_target(self.forward(inputs), target).sum().reshape(1)


class TokenForward(nn.Module):
    """Forward over float-coded token ids ``(N, L)`` (captum's perturbations mix inputs and baselines in float)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids.round().long())


@dataclass(frozen=True)
class PerturbationView:
    """A batch as perturbation methods see it: whole tokens / patches / features are replaced by a baseline.

    Attributes:
        forward: ``inputs -> logits (N, K)`` (no gradients needed).
        inputs: float inputs ``(N, ...)``; text ids as floats, or embeddings ``(N, L, D)``.
        baselines: replacement values shaped like ``inputs``.
        kind: ``"dense"``, ``"ids"`` or ``"embedded"``.
        identity: what each sample's random draws are seeded from (:meth:`seeds`): the integer token ids
            ``(N, L)`` when the batch came as ids, else ``inputs``.
    """

    forward: Callable[[torch.Tensor], torch.Tensor]
    inputs: torch.Tensor
    baselines: torch.Tensor
    kind: InputKind
    identity: torch.Tensor | None = None

    @classmethod
    def of(cls, model: nn.Module, x: torch.Tensor, baseline: Baseline, salt: str = "baseline") -> "PerturbationView":
        kind = input_kind(model, x)
        if kind == "ids":
            inputs = x.float()
            return cls(TokenForward(model), inputs, torch.full_like(inputs, float(pad_id(model))), kind, x)
        if kind == "embedded":
            n, length = x.shape[:2]
            return cls(model, x.detach(), pad_embeddings(embedded_text_model(model), n, length, x.device).to(x.dtype), kind)
        return cls(model, x.detach(), dense_baselines(x.detach(), baseline, salt), kind)

    def seeds(self, salt: str) -> list[int]:
        """One seed per sample, as :meth:`GradientView.seeds` (text: from the integer token ids)."""
        return sample_seeds(self.inputs if self.identity is None else self.identity, salt)

    def feature_mask(self, patch_size: int = 1) -> torch.Tensor:
        """Interpretable features ``(1, *inputs.shape[1:])`` (long, 0..M-1).

        Tabular: one per feature. Image: ``patch_size`` x ``patch_size`` squares, channels together. Series:
        windows of ``patch_size`` steps, channels together. Text: one per token.
        """
        shape = tuple(self.inputs.shape[1:])
        device = self.inputs.device
        if self.kind == "embedded":
            mask = torch.arange(shape[0], device=device).unsqueeze(1).expand(shape)
        elif len(shape) == 2:  # (C, T)
            mask = (torch.arange(shape[1], device=device) // patch_size).expand(shape)
        elif len(shape) == 3:  # (C, H, W)
            rows = torch.arange(shape[1], device=device) // patch_size
            cols = torch.arange(shape[2], device=device) // patch_size
            mask = (rows[:, None] * math.ceil(shape[2] / patch_size) + cols[None, :]).expand(shape)
        else:  # tabular (F,), token ids (L,), anything else: every scalar alone
            mask = torch.arange(math.prod(shape), device=device).reshape(shape)
        return mask.unsqueeze(0).contiguous()

    def window(self, size: int, stride: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Occlusion ``(sliding_window_shapes, strides)``: squares/steps/tokens; tabular features one at a time."""
        shape = tuple(self.inputs.shape[1:])
        if self.kind == "embedded":
            return (min(size, shape[0]), shape[1]), (stride, shape[1])
        if len(shape) == 2:
            return (shape[0], min(size, shape[1])), (shape[0], stride)
        if len(shape) == 3:
            return (shape[0], min(size, shape[1]), min(size, shape[2])), (shape[0], stride, stride)
        if self.kind == "ids":
            return (min(size, shape[0]),), (stride,)
        return (1,) * len(shape), (1,) * len(shape)

    def to_output(self, attributions: torch.Tensor) -> torch.Tensor:
        """Back to the explained layout: a token's embedding dims all carry the token's value -> ``(N, L)``."""
        attributions = attributions.detach()
        return attributions.mean(dim=-1) if self.kind == "embedded" else attributions
