"""The user's own modules behind a model class or estimator: those its file imports, transitively (hashed by
``_source.local_modules_digest``). Found by reading the files (``ast``), never by importing them: a helper
imported inside ``forward`` counts before ``forward`` has run, so a model's key does not change within a process.
"""
from __future__ import annotations

import ast
import functools
import importlib.machinery
import importlib.util
import sys
import sysconfig
from pathlib import Path


def local_imports(source: Path, module: str) -> dict[str, Path]:
    """``{module name: file}`` of the user's own modules that ``source`` imports (anywhere in it: top level,
    functions, ``try``), and those import, transitively; ``source`` itself left out. A module counts when its file is
    Python source outside installed libraries (``site-packages``), the standard library and xaibench
    (:func:`is_local`). Names are resolved as the import would (``sys.modules`` first: the defining module has run
    its imports), relative imports from ``module``'s package; a name that does not resolve is skipped."""
    seen: dict[Path, str] = {source.resolve(): module}
    queue = [(source, module)]
    while queue:
        path, name = queue.pop()
        for imported in _imported_names(path, name):
            file = _module_file(imported)
            if file is not None and file not in seen and is_local(file):
                seen[file] = imported
                queue.append((file, imported))
    del seen[source.resolve()]
    return {name: path for path, name in seen.items()}


def _imported_names(path: Path, module: str) -> list[str]:
    """Module names ``path`` (the file of ``module``) imports: each dotted prefix of ``import a.b``, and for
    ``from p import x`` both ``p`` and ``p.x`` (``x`` may be a submodule); relative ones resolved."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                names += [".".join(parts[: i + 1]) for i in range(len(parts))]
        elif isinstance(node, ast.ImportFrom):
            try:
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                    if node.level else node.module or ""
            except (ImportError, ValueError):
                continue  # a relative import outside a package
            parts = base.split(".")  # ``from a.b import c`` runs a and a.b too
            names += [".".join(parts[: i + 1]) for i in range(len(parts))]
            names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return [name for name in names if name]


def _module_file(name: str) -> Path | None:
    """The source file of module ``name`` (resolved), or None (not found, builtin, compiled). A module not imported
    yet (imported in a function that has not run) is found without importing it or its package: the fingerprint
    must not change once the function has run."""
    loaded = sys.modules.get(name)
    origin = getattr(loaded, "__file__", None) if loaded is not None else None
    if origin is None and loaded is None:
        spec = _unimported_spec(name)
        origin = spec.origin if spec is not None else None
    if not origin or not origin.endswith(".py") or not Path(origin).is_file():
        return None
    return Path(origin).resolve()


def _unimported_spec(name: str):  # -> ModuleSpec | None
    """The spec of module ``name`` found as the import would, without importing its packages (their folders are
    searched, as their ``__path__`` would be); None when not found."""
    parent, _, _ = name.rpartition(".")
    try:
        if not parent or parent in sys.modules:
            return importlib.util.find_spec(name)
        parent_spec = _unimported_spec(parent)
        locations = parent_spec.submodule_search_locations if parent_spec is not None else None
        return importlib.machinery.PathFinder.find_spec(name, list(locations)) if locations else None
    except (ImportError, ValueError):
        return None


@functools.cache
def _not_local_dirs() -> tuple[Path, ...]:
    """The standard library's folders and xaibench's own: never the user's code."""
    import xaibench

    paths = sysconfig.get_paths()
    dirs = {Path(paths[key]).resolve() for key in ("stdlib", "platstdlib") if key in paths}
    return tuple(sorted(dirs | {Path(xaibench.__file__).resolve().parent}))


def is_local(path: Path) -> bool:
    """Whether ``path`` is the user's code: not in an installed library, the standard library or xaibench."""
    from xaibench.engine.plugin_code import LIBRARY_DIRS

    resolved = path.resolve()
    return not LIBRARY_DIRS & set(resolved.parts) and not any(resolved.is_relative_to(d) for d in _not_local_dirs())
