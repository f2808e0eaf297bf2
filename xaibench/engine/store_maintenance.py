"""Check and clean a store: ``xaibench store verify`` and ``xaibench store gc``.

``verify`` reads every artefact and checks its checksum and header (a damaged artefact is never used: it is a
miss, recomputed by the next sweep that needs it). ``gc`` removes what no sweep needs: orphaned temp files of
killed writers, lock files nobody holds, damaged artefacts, and model/explanation/score artefacts that no stored
cell uses (each ``cells`` artefact lists the stage keys it was computed from). Temp files and unused artefacts
younger than ``min_age_s`` are kept, so a sweep running meanwhile loses nothing it is writing; every removal of
an artefact happens under its key's lock. ``gc(legacy=True)`` (``gc --legacy``) also deletes the files of the old
format-1 layout, only those named as that layout names them (``_legacy_files``), and then the folders it emptied.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xaibench.engine.locks import is_free, remove_if_free
from xaibench.engine.store import LEGACY_KINDS, SUFFIX, TEMP_SUFFIX, Artefact, Store

KINDS = ("models", "explanations", "scores", "cells")
LEGACY_KEY = re.compile(r"[0-9a-f]{16,64}")  # format-1 keys: hex digests


@dataclass
class VerifyReport:
    checked: Counter = field(default_factory=Counter)  # kind -> artefacts checked
    damaged: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    temp_files: int = 0
    legacy_files: int = 0


@dataclass
class GcReport:
    removed: Counter = field(default_factory=Counter)  # what -> count
    freed_bytes: int = 0
    kept_young: int = 0
    files: list[tuple[Path, str, int]] = field(default_factory=list)  # (path, what, bytes) removed or, dry, to remove


def verify(store: Store) -> VerifyReport:
    """Read and check every artefact of every kind."""
    report = VerifyReport()
    for kind in KINDS:
        for path in store.files(kind):
            report.checked[kind] += 1
            hit = _read(store, kind, path)
            if not isinstance(hit, Artefact):
                report.damaged.append((str(path), hit or "vanished while reading"))
    report.temp_files = len(_temp_files(store))
    report.legacy_files = sum(1 for _ in _legacy_files(store))
    return report


def gc(store: Store, *, min_age_s: float = 3600.0, dry_run: bool = False, legacy: bool = False) -> GcReport:
    """Remove orphaned temp files, free lock files, damaged and unused artefacts, and with ``legacy`` the format-1
    layout's files (see the module docstring)."""
    report, now = GcReport(), time.time()
    for path in _temp_files(store):
        if now - _mtime(path) >= min_age_s:
            _remove(path, "temp files", report, dry_run)
    used = _used_stage_keys(store)
    for kind in KINDS:
        for path in store.files(kind):
            key, ext = _key_ext(path)
            damaged = not isinstance(_read(store, kind, path), Artefact)
            unused = kind != "cells" and key not in used[kind]
            if not (damaged or unused):
                continue
            if not damaged and now - _mtime(path) < min_age_s:
                report.kept_young += 1
                continue
            with store.lock(kind, key):  # a writer replacing it meanwhile wins: re-check under the lock
                if damaged and isinstance(_read(store, kind, path), Artefact):
                    continue
                _remove(path, "damaged artefacts" if damaged else f"unused {kind}", report, dry_run)
    for path in sorted((store.base / "locks").glob("*/*.lock")):
        if dry_run:  # the same test gc makes, without removing: a lock held now is kept
            if is_free(path):
                _remove(path, "free lock files", report, dry_run)
        elif remove_if_free(path):
            report.removed["free lock files"] += 1
    if legacy:
        files = list(_legacy_files(store))
        for path in files:
            _remove(path, "legacy format-1 files", report, dry_run)
        if not dry_run:
            _remove_empty_folders(store.root, {path.parent for path in files})
    return report


def _read(store: Store, kind: str, path: Path) -> Artefact | str | None:
    key, ext = _key_ext(path)
    return store.read(kind, key, ext)


def _used_stage_keys(store: Store) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for path in store.files("cells"):
        hit = _read(store, "cells", path)
        if isinstance(hit, Artefact):
            for kind, keys in (hit.meta.get("stages") or {}).items():
                used.setdefault(kind, set()).update(keys)
    return used


def _temp_files(store: Store) -> list[Path]:
    return sorted(p for p in store.base.rglob(f".*{TEMP_SUFFIX}") if p.is_file()) if store.base.is_dir() else []


def _legacy_files(store: Store) -> Iterator[Path]:
    """The files of a format-1 store, by their names: ``<root>/<kind>/<key[:2]>/<key>.<ext>`` (payload and
    ``<key>.json`` sidecar, and their writers' ``.<key>.<ext>.<random>.tmp``) and ``<root>/locks/<kind>/<key>.lock``.

    Only those: ``models/`` or ``explanations/`` beside a store (or in a folder given as a store by mistake) may be
    the user's own; ``gc --legacy`` deleted those folders whole, whatever they held.
    """
    for kind in LEGACY_KINDS:
        for path in sorted((store.root / kind).glob("*/*")):
            if path.is_file() and _legacy_key(path.name).startswith(path.parent.name) and len(path.parent.name) == 2:
                yield path
        for path in sorted((store.root / "locks" / kind).glob("*.lock")):
            if path.is_file() and _legacy_key(path.name):
                yield path


def _legacy_key(name: str) -> str:
    """The hex key a format-1 file name starts with, or ''."""
    key = name.removeprefix(".").split(".", 1)[0]
    return key if LEGACY_KEY.fullmatch(key) else ""


def _remove_empty_folders(root: Path, folders: set[Path]) -> None:
    """Remove these folders, then their parents up to ``root`` (kept), while they are empty."""
    inside = {f for folder in folders for f in (folder, *folder.parents) if root in f.parents}
    for folder in sorted(inside, key=lambda f: len(f.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty (the user's files), or gone


def _key_ext(path: Path) -> tuple[str, str]:
    key, _, ext = path.name[: -len(SUFFIX)].partition(".")
    return key, ext


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def _remove(path: Path, what: str, report: GcReport, dry_run: bool) -> None:
    try:
        size = path.stat().st_size
        if not dry_run:
            path.unlink()
    except FileNotFoundError:
        return
    report.removed[what] += 1
    report.freed_bytes += size
    report.files.append((path, what, size))
