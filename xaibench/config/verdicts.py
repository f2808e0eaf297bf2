"""Cells the pre-flight has validated, remembered per version of the code: a re-validation imports no torch.

The pre-flight's expensive checks of a cell (``preflight.validate_config``: resolving its model, dataset, method and
metrics against the registries, which imports every plugin, hence torch, captum and Quantus; building its dataset
and its model) are a function of the cell's sections (model, dataset, method, metrics, seed, n_samples) and of
the code. When a sweep's plan is not cached (a config file or the code was edited, the command line changed),
the jobs whose cells passed these checks before, under the same code, skip them: editing one method's config
re-checks only the cells with that method, and a sweep whose cells are all known imports no torch at all.

Only passes are remembered (bad input is never cached, so it is reported every time). The checks done without
imports (top-level keys, run options, devices, user files) run on every job. Not remembered: cells that read user
files (their files may change), and anything when ``$XAIBENCH_PLUGINS`` adds code outside the package. Used by the
CLI only (``make_plan(remember_checks=True)``): a Python process may register or patch entries at run time. The code is
identified by the package's ``.py`` files (names, sizes, mtimes) and the versions of the libraries the checks
use; one file per code version, ``$XAIBENCH_CACHE/verdicts/<code>.txt``, one cell digest per line. The files of
the 16 most recently used code versions are kept (``cache_bounds``); an edit makes the old ones useless.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from xaibench import __version__
from xaibench.config.cache_bounds import VERDICT_BYTES, VERDICT_FILES, prune, touch
from xaibench.config.plan import cache_dir
from xaibench.engine.cell import CellSpec

LIBRARIES = ("torch", "captum", "quantus", "numpy", "scikit-learn", "scipy", "shap", "lime", "transformers",
             "omegaconf", "hydra-core")


class Verdicts:
    """The validated cells of this code version: ``known(cell)`` before the checks, ``add(cell)`` after them."""

    def __init__(self, path: Path | None) -> None:
        self.path = path  # None: remember nothing
        self.known_digests = _read(path) if path is not None else set()
        if self.known_digests:
            touch(path)  # this code version is in use: kept when older versions' files are pruned
        self.added: list[str] = []

    @classmethod
    def for_this_code(cls) -> "Verdicts":
        if os.environ.get("XAIBENCH_NO_PLAN_CACHE") or os.environ.get("XAIBENCH_PLUGINS"):
            return cls(None)
        return cls(cache_dir().parent / "verdicts" / f"{code_digest()}.txt")

    def known(self, cell: CellSpec) -> bool:
        return self.path is not None and not cell.reads_user_files() and cell_digest(cell) in self.known_digests

    def add(self, cell: CellSpec) -> None:
        if self.path is not None and not cell.reads_user_files():
            digest = cell_digest(cell)
            if digest not in self.known_digests:
                self.known_digests.add(digest)
                self.added.append(digest)

    def save(self) -> None:
        """Write the file with the new passes (atomic; a concurrent writer's additions may be lost: rechecked)."""
        if self.path is None or not self.added:
            return
        from xaibench.engine.store import atomic_write_bytes

        lines = sorted(_read(self.path) | self.known_digests)
        self.added = []
        try:
            atomic_write_bytes(self.path, ("\n".join(lines) + "\n").encode())
        except OSError:
            return  # a read-only cache only costs the next run the checks
        prune(self.path.parent, ".txt", max_files=VERDICT_FILES, max_bytes=VERDICT_BYTES, keep=self.path)


def cell_digest(cell: CellSpec) -> str:
    """Digest of what the expensive checks read: the cell's sections, seed and sample count (not its labels,
    device or run options, which are checked on every run)."""
    checked = [cell.model, cell.dataset, cell.method, cell.metrics, cell.seed, cell.n_samples]
    text = json.dumps(checked, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@lru_cache(maxsize=1)
def code_digest() -> str:
    """Digest of the code the checks run: the package's ``.py`` files and the libraries' versions."""
    digest = hashlib.blake2b(digest_size=16)
    package = Path(__file__).resolve().parents[1]
    digest.update(f"{__version__}|{package}|".encode())
    for path in sorted(package.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(package)}|{stat.st_size}|{stat.st_mtime_ns}|".encode())
    for name in LIBRARIES:
        try:
            digest.update(f"{name}={metadata.version(name)}|".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=-|".encode())
    return digest.hexdigest()


def _read(path: Path) -> set[str]:
    try:
        return {line for line in path.read_text().splitlines() if len(line) == 32}
    except (OSError, UnicodeDecodeError):
        return set()  # missing or damaged: the checks run again
