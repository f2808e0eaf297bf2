"""Hugging Face ``transformers`` classifiers from a local folder (``from_pretrained(local_dir)``, never the Hub).

``transformers`` is imported lazily (inside ``build``), so the suite imports and runs without it; install the
``hf`` extra to use these adapters. Models are loaded with ``attn_implementation="eager"`` so that
``output_attentions=True`` returns the softmax probabilities inside the autograd graph (the fused SDPA kernels
return none), which the ``ATTENTION`` protocol of ``xaibench.models.base`` requires.

Image inputs are rescaled and normalised as the folder's ``preprocessor_config.json`` says (``hf_preprocessing``); no image
processor runs, and the model gets token ids. Raw text is tokenised by the
dataset (``text_csv`` with a local tokenizer folder), or bring ids in the model's vocabulary (``npz_arrays`` with
``modality: text``). Padding (``pad_token_id``) is masked out of attention (``HFSequenceClassifier``).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xaibench.errors import UserError
from xaibench.models.adapters._source import load_pinned, path_digest, require_local, save_pinned
from xaibench.models.adapters.hf_preprocessing import FILE as PROCESSOR_FILE
from xaibench.models.adapters.hf_preprocessing import (Normalisation, check_image_size, inside_normalisation,
                                                       normalise, read_image_processing)
from xaibench.models.base import ModelSpec
from xaibench.models.outputs import check_class_scores, check_outputs_option, log_probabilities
from xaibench.registry import MODELS
from xaibench.types import Capability, Dataset, Modality


def quiet_transformers() -> None:
    """Silence transformers' info logs and loading bars unless the run asked for ``verbose=true``."""
    if os.environ.get("XAIBENCH_VERBOSE") == "1":
        return
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _load_pretrained(auto_class: str, folder: Path, what: str) -> Any:
    try:
        import transformers
    except ImportError:
        raise UserError(f"{what} needs the transformers package: pip install 'xaibench[hf]'") from None
    quiet_transformers()
    try:
        return getattr(transformers, auto_class).from_pretrained(
            str(folder), local_files_only=True, attn_implementation="eager"
        )
    except Exception as error:  # noqa: BLE001 - a folder that is not a loadable checkpoint is the user's
        raise UserError(f"{what}: cannot load {folder} with {auto_class}.from_pretrained: "
                        f"{' '.join(str(error).split())[:300]}") from None


def label_order(config: Any, dataset: Dataset, what: str) -> tuple[int, ...] | None:
    """The model's label id of each dataset class ``0..K-1``, matched by name; None when ids are the classes.

    A checkpoint names its labels in ``config.id2label``; the dataset's classes are its label values in sorted order
    (``Dataset.class_names``). When both are names (not transformers' placeholder ``LABEL_<i>``, not integer labels
    such as a CSV's ``0``/``1``), they are matched case-insensitively: a ViT saved with ``{0: dog, 1: cat}`` on an
    image folder whose classes sort ``cat, dog`` is read the right way round instead of with its classes swapped.
    Names that do not match are refused; label ids are used as class indices otherwise.
    """
    labels = {int(i): str(name) for i, name in (getattr(config, "id2label", None) or {}).items()}
    names = [labels.get(i, f"LABEL_{i}") for i in range(int(config.num_labels))]
    classes = list(dataset.class_names)
    if (not classes or all(re.fullmatch(r"LABEL_\d+", n) for n in names)
            or all(re.fullmatch(r"-?\d+", c) for c in classes)):
        return None
    position = {n.casefold(): i for i, n in enumerate(names)}
    if len(position) != len(names) or sorted(position) != sorted(c.casefold() for c in classes):
        raise UserError(f"{what}: the checkpoint's labels (config.id2label: {', '.join(names[:10])}) are not the "
                        f"dataset's classes ({', '.join(classes[:10])}); rename them in its config.json or the "
                        "dataset's labels so they match")
    order = tuple(position[c.casefold()] for c in classes)
    return None if order == tuple(range(len(order))) else order


class _ClassScores(nn.Module):
    """The head's ``logits`` field as class scores in the dataset's class order (``label_order``): as they are, or
    their logs when the head returns probabilities (``outputs: probabilities``; ``xaibench/models/outputs.py``)."""

    probabilities = False
    order: tuple[int, ...] | None = None  # the model's label id of each dataset class; None: the same

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        if self.order is not None:
            logits = logits[:, list(self.order)]
        return log_probabilities(logits) if self.probabilities else logits


class HFSequenceClassifier(_ClassScores):
    """A ``*ForSequenceClassification`` model on token ids ``(N, L)``, seen through its input embeddings.

    The attention mask travels with the embeddings: ``embed(ids)`` returns the word embeddings plus one last
    channel, 1 for a token and 0 for padding (``pad_id``), ``(N, L, D + 1)``; ``forward_embedded`` passes the
    first ``D`` channels as ``inputs_embeds`` and ``channel > 0.5`` as the ``attention_mask``. So padding never
    changes a prediction, and every perturbation keeps the mask: replacing a token by the pad embedding removes it
    (as replacing its id by ``pad_id`` does), small noise leaves the mask as it is, and gradient baselines keep the
    input's mask (``explainers.inputs.keep_attention_mask``). The mask channel gets no gradient (a threshold).
    With ``cls_token_id`` set, that token is prepended inside (``cls_index`` 0, attention ``T = L + 1``).
    """

    mask_channel = True  # the last embedding channel is the attention mask (see the class docstring)

    def __init__(self, model: nn.Module, cls_token_id: int | None) -> None:
        super().__init__()
        self.model = model
        self.cls_token_id = cls_token_id
        self.cls_index = None if cls_token_id is None else 0
        pad = getattr(model.config, "pad_token_id", None)
        self.pad_id = 0 if pad is None else int(pad)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids ``(N, L)`` -> word embeddings plus the attention-mask channel ``(N, L, D + 1)``."""
        words = self.model.get_input_embeddings()(ids)
        present = (ids != self.pad_id).to(words.dtype).unsqueeze(-1)
        return torch.cat([words, present], dim=-1)

    def _model_inputs(self, embeddings: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, L, D + 1)`` -> ``inputs_embeds (N, T, D)`` and ``attention_mask (N, T)`` ([CLS] prepended)."""
        words, mask = embeddings[..., :-1], (embeddings[..., -1] > 0.5).long()
        if self.cls_token_id is not None:
            n = embeddings.shape[0]
            cls = torch.full((n, 1), self.cls_token_id, dtype=torch.long, device=embeddings.device)
            words = torch.cat([self.model.get_input_embeddings()(cls).to(words.dtype), words], dim=1)
            mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        return {"inputs_embeds": words, "attention_mask": mask}

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Ids ``(N, L)`` (or embeddings ``(N, L, D + 1)``) -> ``(logits (N, K), [attn (N, heads, T, T)] per layer)``."""
        embeddings = x if torch.is_floating_point(x) else self.embed(x)
        out = self.model(**self._model_inputs(embeddings), output_attentions=True)
        return self.scores(out.logits), list(out.attentions)

    def forward_embedded(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.scores(self.model(**self._model_inputs(embeddings)).logits)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.forward_embedded(self.embed(ids))

    def tokens_to_input(self, relevance: torch.Tensor) -> torch.Tensor:
        """Relevance of the ``L`` input tokens ``(N, L)`` is the input layout: identity."""
        return relevance


class HFImageClassifier(_ClassScores):
    """A ViT-style ``*ForImageClassification`` model (CLS at token 0, then patch tokens) on ``(N, C, H, W)``.

    ``normalisation``: ``(mean, std)`` per channel applied to the inputs before the model (its folder's
    ``preprocessor_config.json`` for [0, 1] images, ``hf_preprocessing``); None passes them as they are.
    """

    cls_index = 0

    def __init__(self, model: nn.Module, normalisation: Normalisation | None = None) -> None:
        super().__init__()
        self.model = model
        self.normalisation = normalisation
        config = model.config
        self.patch_size = int(config.patch_size)
        side = int(config.image_size)
        self.input_shape = (int(config.num_channels), side, side)
        self.grid = side // self.patch_size

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = self.model(pixel_values=normalise(x, self.normalisation), output_attentions=True)
        return self.scores(out.logits), list(out.attentions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scores(self.model(pixel_values=normalise(x, self.normalisation)).logits)

    def tokens_to_input(self, relevance: torch.Tensor) -> torch.Tensor:
        """Token relevance without CLS ``(N, T - 1)`` -> ``(N, C, H, W)``; extra leading tokens (e.g. DeiT's
        distillation token) are dropped, the last ``grid**2`` are the patches in row-major order."""
        n = relevance.shape[0]
        grid = relevance[:, -self.grid * self.grid :].reshape(n, 1, self.grid, self.grid)
        pixels = grid.repeat_interleave(self.patch_size, dim=2).repeat_interleave(self.patch_size, dim=3)
        return pixels.expand(n, *self.input_shape).contiguous()


class HFLogits(_ClassScores):
    """Any other ``transformers`` classifier (a CNN's ``*ForImageClassification``): its output's ``logits``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scores(self.model(x).logits)


def wrap_pretrained(model: Any, text: bool) -> tuple[nn.Module, frozenset[Capability]] | None:
    """A ``transformers`` model passed to ``xaibench.explain``/``evaluate`` as it is, seen through the adapters'
    protocols (its output is a ``ModelOutput``, not class scores); None for any other object.

    Token ids (``text``): :class:`HFSequenceClassifier` (gradients through the input embeddings); ViT-style
    image models: :class:`HFImageClassifier`; others: :class:`HFLogits`. Attention methods need the maps, which
    only eager attention returns: a model loaded with ``attn_implementation="eager"`` offers them.
    """
    import sys

    if "transformers" not in sys.modules:  # not imported by the caller: not a transformers model
        return None
    from transformers import PreTrainedModel

    if not isinstance(model, PreTrainedModel):
        return None
    config = model.config
    attention = {Capability.ATTENTION} if getattr(config, "_attn_implementation", "") == "eager" else set()
    if text:
        return (HFSequenceClassifier(model, None),
                frozenset({Capability.GRADIENTS, Capability.EMBEDDING, Capability.PROBA, *attention}))
    if all(isinstance(getattr(config, a, None), int) for a in ("patch_size", "image_size", "num_channels")):
        return HFImageClassifier(model), frozenset({Capability.GRADIENTS, Capability.PROBA, *attention})
    return HFLogits(model), frozenset({Capability.GRADIENTS, Capability.PROBA})


@dataclass(frozen=True)
class _HFClassifierSpec(ModelSpec):
    """Common fields: the local folder; ``epochs: 0`` uses the weights as they are, ``> 0`` fine-tunes; ``outputs``:
    what the head's ``logits`` field holds, ``logits`` (transformers' convention) or ``probabilities`` (a custom
    head ending in a softmax), checked on the first test samples (``xaibench/models/outputs.py``)."""

    path: str | None = None
    epochs: int = 0
    lr: float = 5e-5
    batch_size: int = 16
    outputs: str = "logits"

    def class_scores(self) -> str:
        return self.outputs

    def _checked(self, wrapped: _ClassScores, dataset: Dataset) -> _ClassScores:
        """``wrapped`` with its labels in the dataset's class order, after checking its scores on the first test
        samples; logs of them for probabilities."""
        wrapped.order = label_order(wrapped.model.config, dataset, f"model {self.name}")
        check_class_scores(wrapped, dataset.test.x, dataset.n_classes, self.outputs, f"model {self.name}")
        wrapped.probabilities = self.outputs == "probabilities"
        return wrapped

    def _folder(self) -> Path:
        check_outputs_option(self.outputs, f"model {self.name}")
        return require_local(self.path, f"model {self.name}", "model.path", directory=True)

    def _check_labels(self, model: nn.Module, dataset: Dataset) -> None:
        if int(model.config.num_labels) != dataset.n_classes:
            raise UserError(f"model {self.name}: {self.path} has {model.config.num_labels} labels, dataset "
                            f"{dataset.name} has {dataset.n_classes} classes")

    def fit(self, module: nn.Module, dataset: Dataset, seed: int) -> nn.Module:
        return super().fit(module, dataset, seed) if self.epochs > 0 else module.eval()

    def trains_weights(self) -> bool:
        return self.epochs > 0  # epochs: 0 uses the given weights as they are

    def save(self, module: nn.Module) -> bytes:
        return save_pinned(module, self._folder())

    def load(self, module: nn.Module, payload: bytes) -> nn.Module:
        return load_pinned(module, payload, self._folder())

    def source_revision(self) -> str:
        """The folder's digest, tagged with how labels are matched: results stored before labels were matched by
        name (``label_order``) may hold a checkpoint's classes swapped, so they are not reused."""
        return f"{path_digest(Path(self.path))}:labels-by-name" if self.path and Path(self.path).is_dir() else ""


@MODELS.register("hf_sequence_classifier")
@dataclass(frozen=True)
class HFSequenceClassifierSpec(_HFClassifierSpec):
    """``AutoModelForSequenceClassification.from_pretrained(path)`` on token-id datasets.

    Attributes:
        cls_token_id: token prepended to every sequence (BERT's ``[CLS]``); None prepends nothing.
    """

    modalities = frozenset({Modality.TEXT})
    capabilities = frozenset({Capability.GRADIENTS, Capability.EMBEDDING, Capability.ATTENTION, Capability.PROBA})
    cls_token_id: int | None = None

    def build(self, dataset: Dataset) -> nn.Module:
        model = _load_pretrained("AutoModelForSequenceClassification", self._folder(), f"model {self.name}")
        self._check_labels(model, dataset)
        config = model.config
        if dataset.vocab_size > int(config.vocab_size):
            raise UserError(f"model {self.name}: dataset {dataset.name} uses token ids up to {dataset.vocab_size - 1}"
                            f", the model's vocabulary has {config.vocab_size}")
        length = dataset.input_shape[0] + (self.cls_token_id is not None)
        max_positions = getattr(config, "max_position_embeddings", None)
        if max_positions is not None and length > int(max_positions):
            raise UserError(f"model {self.name}: sequences of {length} tokens exceed max_position_embeddings "
                            f"{max_positions}")
        return self._checked(HFSequenceClassifier(model, self.cls_token_id), dataset)


@MODELS.register("hf_image_classifier")
@dataclass(frozen=True)
class HFImageClassifierSpec(_HFClassifierSpec):
    """``AutoModelForImageClassification.from_pretrained(path)`` for ViT-style models (``patch_size``,
    ``image_size`` in the config); the dataset's images must have the model's channels and size (and the folder's
    ``preprocessor_config.json``'s), and are rescaled and normalised as that file says (``hf_preprocessing``)."""

    modalities = frozenset({Modality.IMAGE})
    capabilities = frozenset({Capability.GRADIENTS, Capability.ATTENTION, Capability.PROBA})

    def source_revision(self) -> str:
        """Tagged too when the folder has a ``preprocessor_config.json``: results stored before it was read (then
        before its rescaling was) were computed on other inputs, so they are not reused."""
        revision = super().source_revision()
        processed = revision and (Path(self.path) / PROCESSOR_FILE).is_file()
        return f"{revision}:{PROCESSOR_FILE}:rescaled" if processed else revision

    def build(self, dataset: Dataset) -> nn.Module:
        model = _load_pretrained("AutoModelForImageClassification", self._folder(), f"model {self.name}")
        self._check_labels(model, dataset)
        config = model.config
        if not all(hasattr(config, a) for a in ("patch_size", "image_size", "num_channels")):
            raise UserError(f"model {self.name}: {config.model_type} is not a ViT-style model (patch tokens + CLS); "
                            "the attention protocol needs patch_size, image_size and num_channels in its config")
        wrapped = HFImageClassifier(model)
        what = f"model {self.name}"
        processing = read_image_processing(self._folder(), wrapped.input_shape[0], what)
        if tuple(dataset.input_shape) != wrapped.input_shape:
            channels, side = wrapped.input_shape[0], wrapped.input_shape[1]
            raise UserError(f"{what}: expects images {wrapped.input_shape}, dataset {dataset.name} has "
                            f"{tuple(dataset.input_shape)}; for an image folder set dataset.image_size={side} "
                            f"dataset.channels={channels}")
        check_image_size(processing, dataset, what)
        wrapped.normalisation = inside_normalisation(processing, dataset, what)
        return self._checked(wrapped, dataset)
