"""Compositions remembered within one process, under a key that covers everything they read.

A composition reads the command line, the YAML files of xaibench's configs and of the ``hydra.searchpath`` folders
(``file://`` folders and ``pkg://`` packages), the working folder (relative search paths) and the environment:
Hydra copies the variables ``hydra.job.env_copy`` names into ``hydra.job.env_set`` while composing (a ``KeyError``
when one is unset), and ``${oc.env:NAME}`` interpolations read it. The key is the command line, the folders and
each YAML file's (path, mtime_ns, size); each remembered composition also keeps the values of the variables it
read, and is composed again when one of them changed (a notebook that sets a variable between two
``xaibench.run`` calls). A ``pkg://`` package that is not a folder on disk (a zipped egg) is composed every time.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from xaibench.config.paths import conf_dir
from xaibench.config.plan import env_unchanged

OC_ENV = re.compile(r"\$\{\s*oc\.env\s*:\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)")  # ${oc.env:NAME} / ${oc.env:NAME,dflt}
SEARCH_PATH_ENTRY = re.compile(r"(file|pkg)://([^,\]'\"]+)")  # in one override: a folder may hold a space

Snapshot = tuple[tuple[str, "str | None"], ...]  # (name, value or None when unset), sorted by name


def search_folders(overrides: Sequence[str]) -> list[Path] | None:
    """The folders the ``hydra.searchpath`` entries of ``overrides`` name: ``file://`` folders as given, ``pkg://``
    packages where they lie on disk; None if a package is not a folder (zipped) or cannot be found."""
    folders = []
    for scheme, where in (entry for override in overrides for entry in SEARCH_PATH_ENTRY.findall(override)):
        folder = Path(where.strip()) if scheme == "file" else _package_folder(where.strip())
        if folder is None:
            return None
        folders.append(folder)
    return folders


def _package_folder(module: str) -> Path | None:
    """``pkg://a.b`` (or ``a/b``): the package's folder, where Hydra's config source reads it; also a folder of
    YAML files without ``__init__.py`` (``pkg://mypkg.conf``, a namespace package). None: not found, zipped, or
    a namespace spread over several folders."""
    from importlib.util import find_spec

    try:
        spec = find_spec(module.replace("/", ".").strip("."))
    except (ImportError, TypeError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    folder = Path(locations[0]) if len(locations) == 1 else None
    return folder if folder is not None and folder.is_dir() else None


def config_files(overrides: Sequence[str]) -> tuple[tuple[str, int, int], ...] | None:
    """(path, mtime_ns, size) of every YAML file under xaibench's configs and the search-path folders
    ``overrides`` name (~4 ms for the suite's 109 files); None when a ``pkg://`` package cannot be listed."""
    folders = search_folders(overrides)
    if folders is None:
        return None
    stats = []
    for folder in [conf_dir(), *folders]:
        for path in sorted(Path(folder).rglob("*.yaml")) if Path(folder).is_dir() else ():
            stat = path.stat()
            stats.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(stats)


def env_names(cfg: DictConfig) -> set[str]:
    """The environment variables a composed config read or reads: ``hydra.job.env_copy`` (when ``cfg`` has its
    ``hydra`` section) and the names of its ``${oc.env:...}`` interpolations."""
    copied = OmegaConf.select(cfg, "hydra.job.env_copy", default=None)
    names = {str(name) for name in copied} if isinstance(copied, ListConfig) else set()
    return names | set(OC_ENV.findall(OmegaConf.to_yaml(cfg, resolve=False)))


def env_names_in_files(paths: Sequence[str]) -> set[str]:
    """The ``${oc.env:...}`` names written in the files ``paths`` (unreadable files are skipped)."""
    names: set[str] = set()
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if "oc.env" in text:
            names.update(OC_ENV.findall(text))
    return names


def snapshot(names: set[str]) -> Snapshot:
    """The current values of ``names`` (None: unset)."""
    return tuple((name, os.environ.get(name)) for name in sorted(names))


class RememberedCompositions:
    """A bounded map key -> composed config, each kept with the environment values it read (LRU, ``size``)."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._entries: OrderedDict[tuple, tuple[DictConfig, Snapshot]] = OrderedDict()

    def get(self, key: tuple | None, compose: Callable[[], DictConfig]) -> DictConfig:
        """The config remembered under ``key`` if the variables it read still hold their values, else
        ``compose()`` (remembered unless ``key`` is None: something it reads cannot be keyed)."""
        if key is None:
            return compose()
        entry = self._entries.get(key)
        if entry is not None and env_unchanged(entry[1]):
            self._entries.move_to_end(key)
            return entry[0]
        cfg = compose()
        self._entries[key] = (cfg, snapshot(env_names(cfg)))
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return cfg


def composition_key(overrides: Sequence[str], config_name: str) -> tuple | None:
    """What a composition of ``overrides`` reads (but the environment, kept with it), or None if not keyable."""
    files = config_files(overrides)
    return None if files is None else (tuple(overrides), config_name, str(conf_dir()), os.getcwd(), files)


def planned_reads(overrides: Sequence[str], *, multirun: bool, config_name: str = "config") -> tuple[
        Snapshot, tuple[tuple[str, str], ...], tuple[str, ...]]:
    """What a sweep's plan read beyond its files, for ``plan.Plan``: the environment variables (with their values
    now) that ``hydra.job.env_copy`` of the sweep's Hydra config names or any ``${oc.env:...}`` in its config
    files or overrides; the folders Hydra would write (``hydra_settings.hydra_folders``); the Hydra settings that
    only Hydra applies (``hydra_settings.settings_only_hydra_applies``)."""
    from xaibench.config.preflight.composition import fixed_overrides, hydra_config
    from xaibench.config.preflight.hydra_settings import hydra_folders, settings_only_hydra_applies

    cfg = hydra_config(fixed_overrides(overrides, multirun=multirun), config_name)
    names = env_names(cfg) | set(OC_ENV.findall(" ".join(overrides)))
    names |= env_names_in_files([path for path, _, _ in config_files(overrides) or ()])
    return (snapshot(names), hydra_folders(cfg, multirun=multirun),
            settings_only_hydra_applies(cfg.hydra, multirun=multirun))
