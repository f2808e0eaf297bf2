"""One registry per axis. A name in ``conf/<group>/<name>.yaml`` is a registered name (tested both ways).

Entries are classes (usually frozen dataclasses whose fields are the config parameters). ``create`` validates the
parameters against those fields so a typo or a wrong type fails before any compute with the valid choices.

Each registry fills itself on its first lookup by importing every module under its own plugin package (adding a
method is adding one file) and the user's ``$XAIBENCH_PLUGINS`` modules: looking up a dataset imports the datasets,
not the explainers (captum) or the metrics (Quantus), so ``xaibench report`` rebuilding a dataset for its
galleries pays for neither.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import pkgutil
import threading
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from xaibench.errors import UserError

T = TypeVar("T")

# Held while a registry fills itself: one lock for all (a plugin module may register into any registry), re-entrant
# (a plugin module may look a registry up while it is imported).
_FILLING = threading.RLock()


class Registry(Generic[T]):
    """Name -> class mapping for one axis (``model``, ``dataset``, ``method``, ``metric``).

    ``packages``: the plugin packages whose modules register this axis's entries, imported (all their modules, and
    the ``$XAIBENCH_PLUGINS`` modules) at the first lookup (``names``, ``get``, ``in``, iteration)."""

    def __init__(self, axis: str, packages: tuple[str, ...] = ()) -> None:
        self.axis = axis
        self.packages = packages
        self._entries: dict[str, type[T]] = {}
        self._loaded = self._filling = False

    def load(self) -> None:
        """Import this registry's plugin packages and the ``$XAIBENCH_PLUGINS`` modules, once per process.

        A lookup in another thread meanwhile waits for the end (it saw a registry half filled: "unknown method");
        one made by a plugin module while this thread imports it sees the entries registered so far. An import
        that fails is retried, and its error raised again, at the next lookup (not "unknown method" from then on).
        """
        if self._loaded:
            return
        with _FILLING:
            if self._loaded or self._filling:  # filled meanwhile, or looked up by a module this thread imports
                return
            self._filling = True
            try:
                for package_name in self.packages:
                    _import_package(package_name)
                _import_user_plugins()
            finally:
                self._filling = False
            self._loaded = True

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorator(cls: type[T]) -> type[T]:
            if name in self._entries and self._entries[name] is not cls:
                raise RuntimeError(f"duplicate {self.axis} name {name!r}: {self._entries[name]} and {cls}")
            cls.name = name  # type: ignore[attr-defined]
            self._entries[name] = cls
            return cls

        return decorator

    def add(self, name: str, entry: T) -> T:
        """Register an instance (used for metrics, whose entries are ``MetricSpec`` records)."""
        if name in self._entries and self._entries[name] != entry:
            raise RuntimeError(f"duplicate {self.axis} name {name!r}")
        self._entries[name] = entry  # type: ignore[assignment]
        return entry

    def names(self) -> list[str]:
        self.load()
        return sorted(self._entries)

    def get(self, name: str) -> type[T]:
        self.load()
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(f"unknown {self.axis} {name!r}; {hint}valid: {', '.join(self.names())}")
        return self._entries[name]

    def create(self, name: str, params: Mapping[str, Any] | None = None) -> T:
        cls = self.get(name)
        return cls(**check_params(cls, dict(params or {}), f"{self.axis} {name!r}"))  # type: ignore[call-arg]

    def __contains__(self, name: str) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def check_params(cls: type, params: dict[str, Any], what: str) -> dict[str, Any]:
    """Validate config parameters against a dataclass's fields: unknown keys and wrong types are UserErrors."""
    if not dataclasses.is_dataclass(cls):
        return params
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise UserError(f"{what}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
    out = {}
    for key, value in params.items():
        out[key] = _coerce(value, hints.get(key, Any), f"{what}: parameter {key!r}")
    return out


def _coerce(value: Any, hint: Any, what: str) -> Any:
    """Accept a value if it matches the annotated type (ints are accepted for floats, lists become tuples)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _coerce(value, option, what)
            except UserError:
                continue
        raise UserError(f"{what} must be {_type_name(hint)}, got {value!r}")
    if hint is type(None):
        if value is None:
            return None
    elif origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
        choices = typing.get_args(hint)
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        raise UserError(f"{what} must be one of {', '.join(map(str, choices))}, got {value!r}"
                        + (f"; did you mean {close[0]!r}?" if close else ""))
    elif origin in (tuple, list):
        if isinstance(value, (list, tuple)):
            args = [a for a in typing.get_args(hint) if a is not Ellipsis]
            item = args[0] if args else Any
            return tuple(_coerce(v, item, what) for v in value)
        if not isinstance(value, (Mapping, type(None))):  # model.hidden=64: "must be tuple" read as Python's type
            raise UserError(f"{what} must be a list, got {value!r}; for one item write [{value}]")
    elif origin in (dict, Mapping) or hint is dict:
        if isinstance(value, Mapping):
            return dict(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is str:
        if isinstance(value, str):
            return value
    elif isinstance(hint, type):
        if isinstance(value, hint):
            return value
    else:
        return value
    raise UserError(f"{what} must be {_type_name(hint)}, got {value!r}")


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def load_plugins() -> None:
    """Fill every registry (models, datasets, methods, metrics): what a lookup does for its own registry only.

    Discovery by walking packages means adding a method/metric/dataset/model is adding one file. Users add their
    own from outside the package by listing modules in ``$XAIBENCH_PLUGINS`` (comma-separated), with their configs
    on ``hydra.searchpath``.
    """
    for registry in (DATASETS, MODELS, EXPLAINERS, METRICS):
        registry.load()


def _import_package(package_name: str) -> None:
    """Import every module under ``package_name`` so their ``@register`` decorators run."""
    package = importlib.import_module(package_name)
    for info in pkgutil.walk_packages(package.__path__, prefix=package_name + "."):
        importlib.import_module(info.name)


def _import_user_plugins() -> None:
    """Import the ``$XAIBENCH_PLUGINS`` modules (one may register entries of any axis; imported once by Python)."""
    from xaibench.engine.plugin_code import plugin_modules

    for module_name in plugin_modules():
        try:
            importlib.import_module(module_name)
        except ImportError as error:
            raise UserError(f"XAIBENCH_PLUGINS names {module_name!r}, which cannot be imported: {error}") from None


MODELS: Registry[Any] = Registry("model", ("xaibench.models",))
DATASETS: Registry[Any] = Registry("dataset", ("xaibench.data",))
EXPLAINERS: Registry[Any] = Registry("method", ("xaibench.explainers",))
METRICS: Registry[Any] = Registry("metric", ("xaibench.metrics",))
