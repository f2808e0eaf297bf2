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
import importlib.util
import inspect
import io
import re
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xaibench.config import close_paths
from xaibench.errors import UserError
from xaibench.models.adapters._local_modules import is_local, local_imports


def import_object(dotted: str | None, what: str, option: str) -> Any:
    """``"package.module.Name"`` or ``"path/to/file.py:Name"`` -> the object; anything else is a ``UserError``.

    A file path (``nets.py:Net``, ``../models/nets.py:Net``, absolute, ``~``) is imported from the file itself
    (:func:`import_file`), so the user's model file need not be importable; ``module:Name`` (entry-point style) is
    ``module.Name``. A file without ``:Name`` is refused naming its first class; a misspelt name gets the module's
    closest names.
    """
    if dotted and (_FILE_LIKE.search(dotted) or ":" in dotted):
        location, _, attribute = dotted.rpartition(":") if ":" in dotted else (dotted, "", "")
        if location.endswith(".py") and attribute:
            module = import_file(location, what, option, f":{attribute}")
            return _attribute(module, attribute, dotted, location + ":", what, option, location)
        if ":" in dotted and attribute and location and not _FILE_LIKE.search(location):  # mynets:Net
            dotted = f"{location}.{attribute}"
        else:
            raise UserError(_as_import_path(dotted, what, option))
    if not dotted or "." not in dotted:
        raise UserError(f"{what}: set {option}=<package.module.Name> (a dotted import path) or {option}="
                        f"<file.py>:<Name>, got {dotted!r}")
    module_name, _, attribute = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UserError(_not_importable(dotted, module_name, what, option, error)) from None
    return _attribute(module, attribute, dotted, module_name + ".", what, option)


def _attribute(module: Any, attribute: str, given: str, prefix: str, what: str, option: str, file: str = "") -> Any:
    """``module.attribute``; a missing name is refused with the closest one (``{option}={prefix}{close}``).
    ``file``: the module was imported from that file (named instead of its module)."""
    if not hasattr(module, attribute):
        names = [n for n, value in vars(module).items() if not n.startswith("_") and not inspect.ismodule(value)]
        close = difflib.get_close_matches(attribute, names, n=1, cutoff=0.6) or [
            n for n in names if n.lower() == attribute.lower()]
        hint = f"; did you mean {option}={prefix}{close[0]}?" if close else ""
        where = file or f"module {module.__name__!r} ({module.__file__})"
        raise UserError(f"{what}: cannot import {option}={given!r}: {where} has no {attribute!r}{hint}")
    return getattr(module, attribute)


def import_file(location: str, what: str, option: str, suffix: str = "") -> Any:
    """The Python file at ``location`` (relative to the working folder), imported as a module of its own.

    Its module name holds the file's stem and the sha256 of its resolved path and bytes (``_xaibench_file_nets_
    1a2b3c4d5e6f``): two files called ``nets.py`` do not collide, an edited file imports afresh, and the same file
    imports once per process. It is registered in ``sys.modules`` (dataclasses, pickling and ``inspect`` find it).
    The file's folder is not put on ``sys.path``: a module it imports must be importable (``PYTHONPATH``). A file
    not found is refused with the closest existing path (:func:`closest_path`), ``suffix`` (``:Net``) appended.
    """
    path = Path(location).expanduser()
    if not path.is_file():
        close = closest_path(location)
        hint = f"; did you mean {option}={close}{suffix}?" if close else ""
        raise UserError(f"{what}: {option}: file not found: {path} (relative paths start at {Path.cwd()}){hint}")
    resolved = path.resolve()
    digest = hashlib.sha256(str(resolved).encode() + b"\0" + resolved.read_bytes()).hexdigest()[:12]
    stem = re.sub(r"\W", "_", resolved.stem)
    name = f"_xaibench_file_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - the user's code: say which file and what failed, in one line
        del sys.modules[name]
        hint = ""
        if isinstance(error, ModuleNotFoundError) and (resolved.parent / f"{error.name}.py").is_file():
            hint = f"; {error.name} lies beside it: export PYTHONPATH=\"{resolved.parent}\""
        raise UserError(f"{what}: cannot import {option} file {path}: {type(error).__name__}: "
                        f"{' '.join(str(error).split())[:200]}{hint}") from None
    return module


_FILE_LIKE = re.compile(r"[/\\]|\.py(:|$)")


def closest_path(location: str) -> str:
    """The existing ``.py`` file closest to the missing ``location`` (``./net.py`` -> ``./nets.py``; ``modles/nets.py``
    -> ``models/nets.py``), spelt as given with the misspelt parts replaced; "" when none is close
    (:func:`xaibench.config.close_paths.closest_path`, which the pre-flight uses for data and weights files too)."""
    return close_paths.closest_path(location, suffixes=(".py",))


def _as_import_path(given: str, what: str, option: str) -> str:
    """The refusal of a target that names a file but no class (or not a ``.py`` file), with what to write."""
    location, _, name = given.rpartition(":") if ":" in given else (given, "", "")
    file = Path(location if location.endswith(".py") else f"{location}.py").expanduser()
    problem = "is not <file.py>:<Class>" if name else "names no class"
    if not name and file.is_file():  # the first class the file defines, as an example
        found = re.search(r"^class (\w+)", file.read_text(errors="replace"), re.MULTILINE)
        name = found.group(1) if found else ""
    return (f"{what}: {option}={given!r} {problem}; write {option}={file.as_posix()}:{name or '<Class>'} (the file "
            f"and its class), or {option}={file.stem}.{name or '<Class>'} with its folder importable")


def _not_importable(dotted: str, module_name: str, what: str, option: str, error: ImportError) -> str:
    """Why ``module_name`` does not import, with the PYTHONPATH that fixes it when the file lies here."""
    top = module_name.split(".")[0]
    local = isinstance(error, ModuleNotFoundError) and error.name == top and (
        Path(f"{top}.py").is_file() or Path(top).is_dir())  # the user's file here, but not on sys.path
    hint = ""
    if local:
        as_file = module_name == top and Path(f"{top}.py").is_file()  # mynets.Net: mynets.py:Net names it too
        either = f"write {option}={top}.py:{dotted.rpartition('.')[2]} (the file and its class), or " if as_file else ""
        hint = f"; {top} is in {Path.cwd()} but not importable: {either}export PYTHONPATH=\"$PWD\""
    elif isinstance(error, ModuleNotFoundError) and error.name == top:
        hint = _close_module(dotted, top, option)
    return f"{what}: cannot import {option}={dotted!r}: {error}{hint}"


def _close_module(dotted: str, top: str, option: str) -> str:
    """``; did you mean ...?`` for a misspelt first part of ``dotted`` (``net.Net`` with ``nets.py`` here): the
    dotted path when the close module imports, else the file and its class; "" when no file or package here is
    close."""
    here = [p.stem for p in Path(".").glob("*.py")] + [p.name for p in Path(".").iterdir()
                                                      if p.is_dir() and (p / "__init__.py").is_file()]
    close = difflib.get_close_matches(top, here, n=1, cutoff=0.6)
    if not close:
        return ""
    rest = dotted[len(top):]
    try:
        importable = importlib.util.find_spec(close[0]) is not None
    except (ImportError, ValueError):
        importable = False
    if importable or rest.count(".") > 1 or not Path(f"{close[0]}.py").is_file():
        return f"; did you mean {option}={close[0]}{rest}?"
    return f"; did you mean {option}={close[0]}.py:{rest[1:]}?"


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


def code_digest(dotted: str | None, option: str = "model.target") -> str:
    """Fingerprint of the user's code behind the object at ``dotted``: "" when there is none.

    Config keys hold the import path, not the code: editing the class (a final softmax added, a layer changed with
    the same parameters), or a helper module of the user's it imports, must recompute, not serve cached
    explanations of the old forward. The sha256 of the defining file alone when it imports no module of the user's
    (keys as they always were); else :func:`local_modules_digest`.
    """
    found = _defining(dotted, option)
    return local_modules_digest(*found) if found is not None else ""


def own_code_digest(dotted: str | None, option: str) -> str:
    """:func:`code_digest` of the user's own code only: "" for an object of an installed library (``site-packages``:
    identified by its version, as for plugins in ``engine/plugin_code.py``), so keys of library classes
    (``sklearn.ensemble.RandomForestClassifier``) stay what they were."""
    from xaibench.engine.plugin_code import LIBRARY_DIRS

    if _in_library(dotted, LIBRARY_DIRS):
        return ""  # known without importing it (a cached cell's check imports no scikit-learn)
    found = _defining(dotted, option)
    return local_modules_digest(*found) if found is not None and is_local(found[0]) else ""


def local_modules_digest(source: Path, module: str) -> str:
    """sha256 of ``source`` (the file of module ``module``) and of the user's modules it imports, transitively
    (:func:`local_imports`): the file's own sha256 when it imports none; else the sha256 of the defining file's
    sha256 and ``"<module>=<sha256>"`` lines of its local modules by name (names, not paths: the same project
    elsewhere has the same digest)."""
    helpers = local_imports(source, module)
    if not helpers:
        return path_digest(source)
    lines = [path_digest(source)]
    lines += [f"{name}={path_digest(path)}" for name, path in sorted(helpers.items())]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _in_library(dotted: str | None, library_dirs: frozenset[str]) -> bool:
    """Whether the dotted path's top-level package is installed in ``library_dirs``, found without importing it."""
    if not dotted or _FILE_LIKE.search(dotted):
        return False
    top = dotted.replace(":", ".").split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    places = [spec.origin] if spec is not None and spec.origin else []
    places += list(spec.submodule_search_locations or []) if spec is not None else []
    return bool(places) and all(library_dirs & set(Path(place).parts) for place in places)


def _defining(dotted: str | None, option: str) -> tuple[Path, str] | None:
    """The file defining the object at ``dotted`` and its module's name; None for builtins or a path that does not
    import (``build`` reports the latter)."""
    try:
        obj = import_object(dotted, "model", option)
        source = inspect.getsourcefile(obj)
    except (UserError, TypeError, OSError):
        return None
    if not source or not Path(source).is_file():
        return None
    module = inspect.getmodule(obj)
    return Path(source), getattr(module, "__name__", "") or ""


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
