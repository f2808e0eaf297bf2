"""Any ``torch.nn.Module``: a class (or factory) by dotted path, its kwargs, and a local ``state_dict`` file."""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xaibench.data.user.arrays import series_layout_hint
from xaibench.errors import UserError
from xaibench.metrics.quiet import ignore_warnings
from xaibench.models.adapters._kwargs_hint import kwargs_hint
from xaibench.models.adapters._source import (
    code_digest, import_object, load_pinned, path_digest, require_local, save_pinned,
)
from xaibench.models.base import ModelSpec
from xaibench.models.outputs import LogProbabilities, as_float32_model, check_class_scores, check_outputs_option
from xaibench.registry import MODELS
from xaibench.types import Capability, Dataset, Modality

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def load_state_dict_file(path: Path, what: str) -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)``: only tensors and plain containers, never arbitrary pickles.

    A training checkpoint that holds exactly one state_dict among other entries (``{"state_dict": ...,
    "epoch": 3, "optimizer": ...}``, as training loops save them) gives that state_dict. A TorchScript archive
    (``torch.jit.save``) gives its weights (``torch.jit.load(path).state_dict()``), for the class it was
    scripted from. A whole pickled model (``torch.save(model)``) is refused in one line naming its class: it
    runs code when loaded.
    """
    if _is_torchscript(path):
        return _torchscript_weights(path, what)
    try:
        with ignore_warnings():  # this thread's only (quiet.py); torch's notes on pickle protocols: the outcome is what counts
            state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:  # noqa: BLE001 - unreadable or not weights-only: the user's file
        raise UserError(_unreadable(path, what, error)) from None
    if isinstance(state, dict) and state and not _is_state_dict(state):  # a checkpoint: {"state_dict": ..., ...}
        nested = [key for key, value in state.items() if _is_state_dict(value)]
        if len(nested) == 1:
            return state[nested[0]]
        if nested:
            raise UserError(f"{what}: {path} holds several state_dicts ({', '.join(map(str, nested[:5]))}); save the "
                            f"one to explain alone: torch.save(checkpoint[{nested[0]!r}], path)")
    if not isinstance(state, dict) or (state and not _is_state_dict(state)):
        keys = f" (keys: {', '.join(map(str, list(state)[:6]))})" if isinstance(state, dict) else ""
        raise UserError(f"{what}: {path} does not hold a state_dict (a mapping of names to tensors){keys}; save it "
                        "with torch.save(model.state_dict(), path)")
    return state


def _is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip holding ``constants.pkl``, as torch itself tells)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def _torchscript_weights(path: Path, what: str) -> dict[str, torch.Tensor]:
    """The parameters and buffers of the TorchScript module saved in ``path``, as a state_dict on the CPU."""
    scripted = _torchscript_module(path, what)
    return {key: value.detach().clone() for key, value in scripted.state_dict().items()}


def _torchscript_module(path: Path, what: str) -> torch.jit.ScriptModule:
    """The TorchScript module saved in ``path`` (``torch.jit.save``), loaded onto the CPU."""
    try:
        with ignore_warnings(category=DeprecationWarning):  # torch 2.10+: "torch.jit.load is deprecated"
            scripted = torch.jit.load(str(path), map_location="cpu")
    except Exception as error:  # noqa: BLE001 - a damaged archive: the user's file
        raise UserError(f"{what}: {path} looks like a TorchScript archive but does not load "
                        f"({type(error).__name__}: {' '.join(str(error).split())[:200]})") from None
    return scripted


def _unreadable(path: Path, what: str, error: Exception) -> str:
    """One line saying why ``torch.load(path, weights_only=True)`` failed, and how to save weights instead."""
    text = ANSI_ESCAPE.sub("", str(error))  # torch bolds a phrase
    pickled = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if pickled:  # torch.save(model): loading it would run the pickle's code
        return (f"{what}: {path} holds a pickled {pickled.group(1)} (a whole model saved with torch.save(model)?), "
                "which runs code when loaded; save its weights instead: torch.save(model.state_dict(), path)")
    foreign = _not_a_torch_file(path)
    if foreign:  # a CSV or image given as the weights: torch's reason ("IndexError: pop from empty list") said nothing
        return (f"{what}: {path} is not a file torch.save wrote ({foreign}; torch.save writes a zip archive); give "
                "the weights file, saved with torch.save(model.state_dict(), path)")
    unpickler = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)  # a plain pickle: what torch could not read
    reason = unpickler.group(1).strip() if unpickler else (text.splitlines()[0] if text else "")
    return (f"{what}: {path} is not a weights-only state_dict ({type(error).__name__}: {reason}); "
            "save it with torch.save(model.state_dict(), path)")


def _not_a_torch_file(path: Path) -> str:
    """Why ``path`` cannot be what ``torch.save`` writes ("" where it could be): torch writes a zip archive (``PK``),
    before 1.6 a pickle (protocol byte ``0x80``)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        return ""
    if head.startswith(b"PK") or head[:1] == b"\x80":
        return ""
    if not head:
        return "it is empty"
    if all(byte >= 32 or byte in b"\t\r\n" for byte in head):
        return "it is a text file"
    return "it is neither a zip archive nor a pickle"


def without_wrapper_prefix(state: dict[str, torch.Tensor], module: nn.Module) -> dict[str, torch.Tensor]:
    """``state`` with the key prefix a wrapper added removed (``module.`` from ``nn.DataParallel``, ``_orig_mod.``
    from ``torch.compile``, a Lightning module's ``model.``), when every key has it and, without it, the keys are
    exactly ``module``'s; otherwise ``state`` as it is (``load_state_dict`` then names the keys that differ)."""
    expected = set(module.state_dict())
    stripped = state
    while set(stripped) != expected and stripped:
        first = {key.split(".", 1)[0] for key in stripped}
        if len(first) != 1 or not all("." in key for key in stripped):
            return state
        stripped = {key.split(".", 1)[1]: value for key, value in stripped.items()}
    return stripped if set(stripped) == expected else state


def input_layout(dataset: Dataset) -> str:
    """``"; the dataset gives ..."``: where the inputs' shape comes from, and the options that change it (a model
    trained on other inputs fails its first forward; the user then knows which option to set)."""
    shape = tuple(dataset.test.x.shape[1:])
    if dataset.modality is Modality.TABULAR and dataset.feature_names:
        names = ", ".join(dataset.feature_names[:8]) + (", ..." if len(dataset.feature_names) > 8 else "")
        encoded = any("=" in name for name in dataset.feature_names)
        return (f"; the dataset gives {shape[0]} features ({names})" + (
            ": categories are one-hot encoded, one feature per value (dataset.categorical=ordinal keeps one per "
            "column)" if encoded else ""))
    if dataset.modality is Modality.IMAGE:
        return (f"; the dataset gives images of {shape} (channels, height, width): set dataset.image_size and "
                "dataset.channels to the model's input")
    if dataset.modality is Modality.TIME_SERIES and len(shape) == 2:
        return f"; {series_layout_hint(shape)}"
    return ""


def _is_state_dict(value: object) -> bool:
    """A non-empty mapping of parameter names to tensors."""
    return (isinstance(value, dict) and bool(value)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()))


@MODELS.register("torch_module")
@dataclass(frozen=True)
class TorchModule(ModelSpec):
    """Your own network: ``target(**kwargs)`` with weights from ``state_dict`` and/or trained in-suite.

    ``forward(x)`` must take the dataset's input layout and return logits ``(N, K)`` (or, declared with ``outputs:
    probabilities``, probabilities: then it is explained through ``log p``, ``xaibench/models/outputs.py``); both
    are checked on the first test samples when the model is built. With ``epochs: 0`` (default) the loaded weights
    are used as they are; ``epochs > 0`` trains (or fine-tunes) with the suite's deterministic loop. Checkpoints
    cached from ``state_dict`` are pinned to the file's sha256 (see ``adapters._source``).

    Attributes:
        target: an ``nn.Module`` class or a function returning one, by file (``nets.py:Net``, imported from the
            file: ``adapters._source.import_file``) or dotted path (``mypkg.nets.Net``); None
            with a TorchScript archive as ``state_dict``: the archive's own module (it holds its code).
        kwargs: constructor keyword arguments.
        state_dict: path of a ``torch.save(model.state_dict())`` file, loaded with ``weights_only=True``, or of a
            ``torch.jit.save`` archive (its weights go to ``target``; without ``target`` it is the model).
        strict: passed to ``load_state_dict``.
        outputs: what ``forward`` returns: ``logits`` or ``probabilities`` (it ends in a softmax).
    """

    modalities = frozenset({Modality.TABULAR, Modality.IMAGE, Modality.TIME_SERIES})
    # CONV: your CNN gets the CAM methods; they look for its nn.Conv1d/nn.Conv2d layers on the built model and are
    # not_applicable on a network without one (explainers/cam/_layers.py), as a spec cannot know before building.
    # LRP likewise: it runs on a network built from layers it has rules for, computing nothing outside them, and is
    # not_applicable on any other (explainers/propagation/lrp.py checks the built model).
    capabilities = frozenset({Capability.GRADIENTS, Capability.PROBA, Capability.CONV, Capability.LRP})
    target: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict, hash=False)
    state_dict: str | None = None
    strict: bool = True
    epochs: int = 0
    outputs: str = "logits"

    def class_scores(self) -> str:
        return self.outputs

    def build(self, dataset: Dataset) -> nn.Module:
        what = f"model {self.name}"
        check_outputs_option(self.outputs, what)
        if self.target is None and self.state_dict is not None:  # a TorchScript archive holds its own code
            module = self._scripted(what)
        else:
            module = self._constructed(what)
        module = as_float32_model(module)  # float64 (or half) weights take the suite's float32 inputs
        check_class_scores(module, dataset.test.x, dataset.n_classes, self.outputs, what, layout=input_layout(dataset))
        return LogProbabilities(module) if self.outputs == "probabilities" else module

    def _scripted(self, what: str) -> nn.Module:
        """The TorchScript module saved in ``state_dict`` (no class needed: the archive holds its code); a plain
        state_dict there is refused in one line naming ``model.target``."""
        path = require_local(self.state_dict, what, "model.state_dict")
        if not _is_torchscript(path):
            raise UserError(f"{what}: {path} holds weights only (not a TorchScript archive); set "
                            "model.target=<package.module.Class> (the class they were saved from), or save the "
                            "model with torch.jit.save(torch.jit.script(model), path) to run it without its class")
        if self.kwargs:
            raise UserError(f"{what}: model.kwargs ({', '.join(map(str, self.kwargs))}) configure model.target's "
                            f"class, but {path} is a TorchScript archive built already; leave them out")
        return _torchscript_module(path, what)

    def _constructed(self, what: str) -> nn.Module:
        """``target(**kwargs)`` with the weights of ``state_dict`` (if given) loaded into it."""
        factory = import_object(self.target, what, "model.target")
        if self.state_dict is None and self.epochs <= 0:
            raise UserError(f"{what}: give weights with model.state_dict=<file> or train it with model.epochs=<n>")
        try:
            module = factory(**self.kwargs)
        except TypeError as error:
            raise UserError(f"{what}: {self.target}(**kwargs) failed: {error}{kwargs_hint(factory, self.kwargs)}") \
                from None
        if not isinstance(module, nn.Module):
            raise UserError(f"{what}: {self.target} built a {type(module).__name__}, not a torch.nn.Module")
        if self.state_dict is not None:
            path = require_local(self.state_dict, what, "model.state_dict")
            try:
                module.load_state_dict(without_wrapper_prefix(load_state_dict_file(path, what), module),
                                       strict=self.strict)
            except RuntimeError as error:
                raise UserError(f"{what}: {path} does not fit {self.target}: "
                                f"{' '.join(str(error).split())[:300]}") from None
        return module

    def fit(self, module: nn.Module, dataset: Dataset, seed: int) -> nn.Module:
        return super().fit(module, dataset, seed) if self.epochs > 0 else module.eval()

    def trains_weights(self) -> bool:
        return self.epochs > 0  # epochs: 0 uses the given weights as they are

    def save(self, module: nn.Module) -> bytes:
        return super().save(module) if self.state_dict is None else save_pinned(module, Path(self.state_dict))

    def load(self, module: nn.Module, payload: bytes) -> nn.Module:
        if self.state_dict is None:
            return super().load(module, payload)
        return load_pinned(module, payload, Path(self.state_dict))

    def source_revision(self) -> str:
        """The weights file's sha256 and that of the file defining ``target`` with the user's modules it imports
        (``_source.code_digest``), so edits to either recompute."""
        weights = path_digest(Path(self.state_dict)) if self.state_dict and Path(self.state_dict).is_file() else ""
        code = code_digest(self.target)
        return f"{weights}+code:{code}" if code else weights
