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

Each file's fingerprint covers the user's own modules it imports, transitively (``from myhelpers import
smooth``; found by reading the files, as for an own model's file: ``models/adapters/_local_modules.py``): editing a
helper recomputes what uses it, editing an unrelated file recomputes nothing. A file that imports none of the
user's modules keeps the sha256 of its bytes, so keys without plugins, or of plugins without helpers, are unchanged.
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
    """sha256 of the files defining the plugin ``objects`` (classes, functions), with the user's modules each
    imports (:func:`with_local_imports`); "" when none is a plugin."""
    files = sorted({found for obj in objects if (found := _plugin_source(obj))})
    return digest("code", *[with_local_imports(Path(f), module) for f, module in files]) if files else ""


def _plugin_source(obj: Any) -> tuple[str, str] | None:
    """``(defining file, module name)`` of ``obj`` when it is user code (not the package, not an installed
    library), else None."""
    module = getattr(obj, "__module__", None) or ""
    if obj is None or module == "xaibench" or module.startswith("xaibench."):
        return None
    try:
        source = inspect.getsourcefile(obj)
    except TypeError:
        return None  # builtins
    if not source or not Path(source).is_file() or LIBRARY_DIRS & set(Path(source).parts):
        return None
    return str(Path(source).resolve()), module


def with_local_imports(source: Path, module: str) -> str:
    """sha256 of ``source`` (the file of module ``module``) when it imports none of the user's own modules; else the
    digest of that sha256 and ``"<module>=<sha256>"`` of each such module it imports, transitively
    (``_local_modules.local_imports``: read, not imported; by name, so the same project elsewhere digests the same)."""
    from xaibench.models.adapters._local_modules import local_imports

    own = _file_digest(source, *_stamp(str(source)))
    helpers = local_imports(source, module)
    if not helpers:
        return own
    return digest("helpers", own, *[f"{name}={_file_digest(path, *_stamp(str(path)))}"
                                    for name, path in sorted(helpers.items())])


def module_file_digest(name: str) -> str:
    """sha256 of module ``name``'s file and the user's modules it imports (:func:`with_local_imports`), found without
    importing it ("-": not found)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return "-"  # the registry's import reports it in one line
    origin = spec.origin if spec is not None else None
    if not origin or not Path(origin).is_file():
        return "-"
    return with_local_imports(Path(origin), name)


def _stamp(path: str) -> tuple[int, int]:
    stat = Path(path).stat()
    return stat.st_size, stat.st_mtime_ns


@lru_cache(maxsize=256)
def _file_digest(path: Path, size: int, mtime_ns: int) -> str:
    """sha256 of the file's bytes; cached per (path, size, mtime) so a sweep reads each plugin file once."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
