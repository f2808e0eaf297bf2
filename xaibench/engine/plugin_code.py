"""Fingerprints of user plugin code in the store keys: editing a plugin explainer or metric recomputes it.

The package's own methods and metrics are identified by the package version in every key (within a version, code
edits keep the store's cells: its documented contract). A plugin lives outside the package (a module named in
``$XAIBENCH_PLUGINS``, or a class registered from a script through the Python API) and is what a user edits between
runs: a warm store used to serve the explanations of its old code. So, as for a user model's ``target``
(``models/adapters/_source.py``):

- a stage key (explanation, score) joins the sha256 of the file that defines the plugin class or function it runs;
- a cell key joins the sha256 of every ``$XAIBENCH_PLUGINS`` module file, found without importing it (the warm
  path imports nothing): after an edit the cells run again, and their stages that do not use the edited plugin are
  still read from the store.

Only the defining file is fingerprinted (helpers it imports from other files are not). Keys without plugins are
unchanged.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from xaibench.engine.keys import digest

LIBRARY_DIRS = frozenset({"site-packages", "dist-packages"})  # installed libraries: identified by their version


def plugin_modules() -> list[str]:
    """Module names listed in ``$XAIBENCH_PLUGINS`` (comma-separated), in order."""
    return [m.strip() for m in os.environ.get("XAIBENCH_PLUGINS", "").split(",") if m.strip()]


def plugin_modules_digest() -> str:
    """Digest of the ``$XAIBENCH_PLUGINS`` module files ("" without plugins); a module not found counts as "-"."""
    files = plugin_file_digests()
    return digest("plugins", *[f"{name}={sha}" for name, sha in files.items()]) if files else ""


def plugin_file_digests() -> dict[str, str]:
    """``{module: sha256 of its file}`` for the ``$XAIBENCH_PLUGINS`` modules ("-" for one not found); {} without."""
    return {name: module_file_digest(name) for name in plugin_modules()}


def code_digest_of(*objects: Any) -> str:
    """sha256 of the files defining the plugin ``objects`` (classes, functions); "" when none is a plugin."""
    files = sorted({source for obj in objects if (source := _plugin_source(obj))})
    return digest("code", *[_file_digest(Path(f), *_stamp(f)) for f in files]) if files else ""


def _plugin_source(obj: Any) -> str:
    """The defining file of ``obj`` when it is user code: not the package, not an installed library."""
    module = getattr(obj, "__module__", None) or ""
    if obj is None or module == "xaibench" or module.startswith("xaibench."):
        return ""
    try:
        source = inspect.getsourcefile(obj)
    except TypeError:
        return ""  # builtins
    if not source or not Path(source).is_file() or LIBRARY_DIRS & set(Path(source).parts):
        return ""
    return str(Path(source).resolve())


def module_file_digest(name: str) -> str:
    """sha256 of module ``name``'s file, found without importing it ("-": not found)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return "-"  # the registry's import reports it in one line
    origin = spec.origin if spec is not None else None
    if not origin or not Path(origin).is_file():
        return "-"
    return _file_digest(Path(origin), *_stamp(origin))


def _stamp(path: str) -> tuple[int, int]:
    stat = Path(path).stat()
    return stat.st_size, stat.st_mtime_ns


@lru_cache(maxsize=256)
def _file_digest(path: Path, size: int, mtime_ns: int) -> str:
    """sha256 of the file's bytes; cached per (path, size, mtime) so a sweep reads each plugin file once."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
