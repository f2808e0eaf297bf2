"""Content-addressed artefact store with atomic writes and checksums.

Layout: ``<root>/<kind>/<key[:2]>/<key>.<ext>`` plus a sidecar ``<key>.json`` holding the payload's sha256 and
metadata. The payload is written first and the sidecar last, both via temp file + ``os.replace``, so a reader
sees either a complete, verified artefact or none: a killed job leaves at most a stray temp file. An artefact
whose checksum does not match is treated as missing and recomputed, never trusted. Concurrent jobs computing
the same key take a file lock (fcntl, released by the OS if the holder dies) so the work is not duplicated.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
from filelock import FileLock


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically (temp file in the same directory, fsync, ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def frame_to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


class Store:
    """Artefacts by (kind, key). Kinds used by the runner: models, explanations, scores, cells."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _paths(self, kind: str, key: str, ext: str) -> tuple[Path, Path]:
        folder = self.root / kind / key[:2]
        return folder / f"{key}.{ext}", folder / f"{key}.json"

    def put(self, kind: str, key: str, ext: str, payload: bytes, meta: dict[str, Any] | None = None) -> None:
        data_path, meta_path = self._paths(kind, key, ext)
        atomic_write_bytes(data_path, payload)
        sidecar = {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload), "meta": meta or {}}
        atomic_write_bytes(meta_path, json.dumps(sidecar, sort_keys=True).encode())

    def get(self, kind: str, key: str, ext: str) -> tuple[bytes, dict[str, Any]] | None:
        """Payload and metadata, or None if absent, incomplete or failing its checksum."""
        data_path, meta_path = self._paths(kind, key, ext)
        try:
            sidecar = json.loads(meta_path.read_text())
            payload = data_path.read_bytes()
        except (OSError, ValueError):
            return None
        if hashlib.sha256(payload).hexdigest() != sidecar.get("sha256"):
            return None
        return payload, sidecar.get("meta", {})

    def has(self, kind: str, key: str, ext: str) -> bool:
        return self.get(kind, key, ext) is not None

    @contextmanager
    def lock(self, kind: str, key: str) -> Iterator[None]:
        path = self.root / "locks" / kind / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path)):
            yield

    # Typed helpers ---------------------------------------------------------------------------------------
    def put_frame(self, kind: str, key: str, frame: pd.DataFrame, meta: dict[str, Any] | None = None) -> None:
        self.put(kind, key, "parquet", frame_to_parquet_bytes(frame), meta)

    def get_frame(self, kind: str, key: str) -> pd.DataFrame | None:
        hit = self.get(kind, key, "parquet")
        if hit is None:
            return None
        try:
            return pd.read_parquet(io.BytesIO(hit[0]))
        except Exception:  # noqa: BLE001 - an unreadable artefact is a cache miss, recomputed by the caller
            return None

    def put_arrays(self, kind: str, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        self.put(kind, key, "npz", buffer.getvalue(), meta)

    def get_arrays(self, kind: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        hit = self.get(kind, key, "npz")
        if hit is None:
            return None
        with np.load(io.BytesIO(hit[0]), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}, hit[1]

    def iter_frames(self, kind: str) -> Iterator[pd.DataFrame]:
        """Every verified parquet artefact of ``kind`` (used by ``collect --store``)."""
        for data_path in sorted((self.root / kind).glob("*/*.parquet")):
            frame = self.get_frame(kind, data_path.stem)
            if frame is not None:
                yield frame
