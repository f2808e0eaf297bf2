"""Shared pieces of the adapters: importing a dotted path, fingerprinting local weights, source-pinned checkpoints.

A checkpoint cached from user-supplied weights is only valid for those exact weights. The model's cache key holds
the *path* (it is part of the config), not the file's content, so the adapters store the source's sha256 inside
the checkpoint and refuse to load it when the file has changed since: the engine treats a failed load as a
cache miss and rebuilds from the current file.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xaibench.errors import UserError


def import_object(dotted: str | None, what: str, option: str) -> Any:
    """``"package.module.Name"`` -> the object; a missing or malformed path is a ``UserError``."""
    if not dotted or "." not in dotted:
        raise UserError(f"{what}: set {option}=<package.module.Name> (a dotted import path), got {dotted!r}")
    module_name, _, attribute = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        top = module_name.split(".")[0]
        local = isinstance(error, ModuleNotFoundError) and error.name == top and (
            Path(f"{top}.py").is_file() or Path(top).is_dir())  # the user's file here, but not on sys.path
        hint = f"; {top} is in {Path.cwd()} but not importable: export PYTHONPATH=\"$PWD\"" if local else ""
        raise UserError(f"{what}: cannot import {option}={dotted!r}: {error}{hint}") from None


def require_local(path: str | None, what: str, option: str, *, directory: bool = False) -> Path:
    """The configured local file (or folder), checked to exist; otherwise a ``UserError`` saying what to set."""
    kind = "folder" if directory else "file"
    if not path:
        raise UserError(f"{what}: no {kind} given; set {option}=<{kind}>")
    resolved = Path(path).expanduser()
    if not (resolved.is_dir() if directory else resolved.is_file()):
        raise UserError(f"{what}: {kind} not found: {resolved} ({option}; relative paths start at {Path.cwd()})")
    return resolved


def path_digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's files (relative names and contents, in sorted order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def code_digest(dotted: str | None) -> str:
    """sha256 of the source file that defines the object at ``dotted`` (the user's module), "" when there is none.

    Config keys hold the import path, not the code: editing the class (a final softmax added, a layer changed with
    the same parameters) must recompute, not serve cached explanations of the old forward. Only the defining file
    is fingerprinted (helpers it imports from other files are not).
    """
    try:
        source = inspect.getsourcefile(import_object(dotted, "model", "model.target"))
    except (UserError, TypeError, OSError):
        return ""  # builtins or a bad path: ``build`` reports the latter
    return path_digest(Path(source)) if source and Path(source).is_file() else ""


def save_pinned(module: nn.Module, source: Path) -> bytes:
    """Checkpoint bytes: the module's state_dict plus the sha256 of the source it was built from."""
    buffer = io.BytesIO()
    torch.save({"source_sha256": path_digest(source), "state_dict": module.state_dict()}, buffer)
    return buffer.getvalue()


def load_pinned(module: nn.Module, payload: bytes, source: Path) -> nn.Module:
    """Load a ``save_pinned`` checkpoint (``weights_only``); raises if the source changed or the keys differ."""
    saved = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    if saved.get("source_sha256") != path_digest(source):
        raise ValueError(f"{source} changed since this checkpoint was cached")
    module.load_state_dict(saved["state_dict"])
    return module
