"""Shared pieces of the adapters: importing a dotted path, fingerprinting local weights, source-pinned checkpoints.

A checkpoint cached from user-supplied weights is only valid for those exact weights. The model's cache key holds
the *path* (it is part of the config), not the file's content, so the adapters store the source's sha256 inside
the checkpoint and refuse to load it when the file has changed since: the engine treats a failed load as a
cache miss and rebuilds from the current file.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib
import inspect
import io
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xaibench.errors import UserError


def import_object(dotted: str | None, what: str, option: str) -> Any:
    """``"package.module.Name"`` -> the object; a missing or malformed path is a ``UserError``.

    A file path (``nets.py``, ``../models/nets.py:Net``) or ``module:Name`` is refused with the import path that
    names the same class; a misspelt name gets the module's closest names.
    """
    if dotted and (_FILE_LIKE.search(dotted) or ":" in dotted):
        raise UserError(_as_import_path(dotted, what, option))
    if not dotted or "." not in dotted:
        raise UserError(f"{what}: set {option}=<package.module.Name> (a dotted import path), got {dotted!r}")
    module_name, _, attribute = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UserError(_not_importable(dotted, module_name, what, option, error)) from None
    if not hasattr(module, attribute):
        names = [n for n in vars(module) if not n.startswith("_")]
        close = difflib.get_close_matches(attribute, names, n=1, cutoff=0.6) or [
            n for n in names if n.lower() == attribute.lower()]
        hint = f"; did you mean {option}={module_name}.{close[0]}?" if close else ""
        raise UserError(f"{what}: cannot import {option}={dotted!r}: module {module_name!r} ({module.__file__}) has "
                        f"no {attribute!r}{hint}")
    return getattr(module, attribute)


_FILE_LIKE = re.compile(r"[/\\]|\.py(:|$)")


def _as_import_path(given: str, what: str, option: str) -> str:
    """The refusal of a file path or ``module:Name`` target, with the dotted import path that names it."""
    location, _, name = given.rpartition(":") if ":" in given else (given, "", "")
    file = Path(location if location.endswith(".py") else f"{location}.py").expanduser()
    module = file.stem if ("/" in location or "\\" in location or location.endswith(".py")) else location
    if not name and file.is_file():  # the first class the file defines, as an example
        found = re.search(r"^class (\w+)", file.read_text(errors="replace"), re.MULTILINE)
        name = found.group(1) if found else ""
    folder = file.parent.resolve() if file.parent != Path(".") or file.is_file() else None
    path = f" with its folder importable (export PYTHONPATH=\"{folder}\")" if folder else ""
    return (f"{what}: {option}={given!r} is not an import path; name the class as <module>.<Class>: "
            f"{option}={module}.{name or '<Class>'}{path}")


def _not_importable(dotted: str, module_name: str, what: str, option: str, error: ImportError) -> str:
    """Why ``module_name`` does not import, with the PYTHONPATH that fixes it when the file lies here."""
    top = module_name.split(".")[0]
    local = isinstance(error, ModuleNotFoundError) and error.name == top and (
        Path(f"{top}.py").is_file() or Path(top).is_dir())  # the user's file here, but not on sys.path
    hint = f"; {top} is in {Path.cwd()} but not importable: export PYTHONPATH=\"$PWD\"" if local else ""
    return f"{what}: cannot import {option}={dotted!r}: {error}{hint}"


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
