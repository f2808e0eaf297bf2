"""Content-addressed artefact store: one self-verifying file per artefact, written atomically under its key's lock.

Layout (format 2): ``<root>/v2/<kind>/<key[:2]>/<key>.<ext>.artefact`` and lock files under ``<root>/v2/locks/``.
An artefact file is one unit::

    b"XAIBENCH-ARTEFACT 2\\n" | header JSON (kind, key, ext, meta, payload_bytes) | b"\\n" | payload | sha256 (32 bytes)

The trailing SHA-256 covers every byte before it (magic, header with the metadata, payload), so a flipped byte
anywhere, a truncated copy or a file put under the wrong name is detected; such an artefact is a miss and is
recomputed, never trusted. A file is written to a temp file in the same folder, fsynced and ``os.replace``-d while
the key's lock is held, so readers see a complete old or a complete new artefact, and a killed writer leaves at
most a stray temp file (``xaibench store gc`` removes it). Files are created with the process umask (not 0600).

Format 1 (payload + ``.json`` sidecar directly under ``<root>/<kind>/``) is not read: a store written by an older
xaibench is recomputed into ``v2/``; ``xaibench store gc --legacy`` deletes the old files.
"""
from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xaibench.engine.locks import current_umask, file_lock
from xaibench.errors import StorageError

FORMAT_VERSION = 2
MAGIC = b"XAIBENCH-ARTEFACT 2\n"
SUFFIX = ".artefact"
TEMP_SUFFIX = ".tmp"
DIGEST_BYTES = 32
LEGACY_KINDS = ("models", "explanations", "scores", "cells")  # format-1 folders directly under the root
# Rows per Parquet row group of every table the suite writes (cells, artefacts, table.parquet, summaries): a
# streamed writer holds one row group (``results/collect/writing.py``), so this bounds its memory (~70 MB of Arrow for
# result rows). Fixed, so a table has the same bytes however it was written (whole or streamed).
ROW_GROUP_ROWS = 64 * 1024


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically (temp file in the same folder, fsync, ``os.replace``).

    The file gets the permissions a plain ``open(path, "w")`` would (0666 minus the umask).

    Raises:
        StorageError: the folder cannot be created or written (full disk, read-only, a file in the way); the
            message names the path and the OS error. Whatever was at ``path`` before is left untouched.
    """
    with atomic_writer(path) as handle:
        handle.write(payload)


@contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces ``path`` atomically when the block ends without error.

    Raises:
        StorageError: as ``atomic_write_bytes``; on any error the temp file is removed and ``path`` untouched.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
        with os.fdopen(fd, "wb") as handle:
            _hold(handle.fileno())  # until the temp file's name is gone: remove_dead_temps tells a live writer
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(tmp, path)  # before the file is closed (and its lock let go)
    except OSError as error:
        _discard(tmp)
        if error.filename is not None and str(error.filename).endswith(TEMP_SUFFIX):  # mkstemp's hidden name
            error.filename = None  # the user's path names the file that could not be written, not ours
        raise StorageError.from_os_error(error, path) from None
    except BaseException:
        _discard(tmp)
        raise


def _hold(fd: int) -> None:
    """``flock`` the writer's temp file for as long as it is open (the OS lets go when the writer dies)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:  # a file system without locks: the temp file reads as live and is never removed by a writer
        pass


# mkstemp's random part of a temp file's name (``tempfile._RandomNameSequence``)
_RANDOM_PART = re.compile(r"[a-z0-9_]{8}")
FRESH_EMPTY_S = 60.0  # an empty unlocked temp file younger than this may be a writer between mkstemp and its lock


def remove_dead_temps(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temp files that writers of ``path`` left beside it when killed (``kill -9``, a node failure)
    before renaming: ``.<name>.<random>.tmp``, hundreds of MB beside a 10k-cell table. Returns those removed.

    A writer holds an ``flock`` on its temp file until the file has its final name (``atomic_writer``), so a temp
    file whose lock can be taken belongs to a dead writer; one a live writer (a concurrent run writing the same
    output) still owns is never touched. An empty temp file younger than ``FRESH_EMPTY_S`` is kept too: its writer
    may be between creating and locking it.
    """
    path = Path(path)
    prefix = f".{path.name}."
    try:
        names = [entry.name for entry in os.scandir(path.parent) if entry.name.startswith(prefix)]
    except OSError:
        return []
    temps = [path.parent / name for name in sorted(names) if name.endswith(TEMP_SUFFIX)
             and _RANDOM_PART.fullmatch(name[len(prefix):-len(TEMP_SUFFIX)])]
    return [temp for temp in temps if remove_if_dead(temp)]


def remove_if_dead(temp: Path) -> bool:
    """Delete the temp file ``temp`` if no live writer holds it (see ``remove_dead_temps``); True if deleted."""
    try:
        fd = os.open(temp, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:  # gone (renamed into place), another user's, a link
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live writer holds it (or this file system has no locks: keep it)
            return False
        held = os.fstat(fd)
        if held.st_size == 0 and time.time() - held.st_mtime < FRESH_EMPTY_S:
            return False
        try:
            now = os.stat(temp, follow_symlinks=False)
        except OSError:
            return False
        if (now.st_ino, now.st_dev) != (held.st_ino, held.st_dev):  # its writer renamed it meanwhile
            return False
        os.unlink(temp)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        try:
            Path(tmp).unlink(missing_ok=True)
        except OSError:
            pass


def frame_to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as Parquet bytes (pyarrow's defaults, row groups of ``ROW_GROUP_ROWS`` rows, no index)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, row_group_size=ROW_GROUP_ROWS)
    return buffer.getvalue()


def table_to_parquet_bytes(table: pa.Table) -> bytes:
    """A pyarrow table as Parquet bytes: the same bytes ``frame_to_parquet_bytes`` gives for the frame it was made
    from with ``pa.Table.from_pandas(frame, preserve_index=False)`` (pandas writes with pyarrow's defaults)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=ROW_GROUP_ROWS)
    return sink.getvalue().to_pybytes()


@dataclass(frozen=True)
class Artefact:
    payload: bytes
    meta: dict[str, Any]


class ArtefactDamaged(ValueError):
    """Why an artefact file cannot be trusted (message: one short reason)."""


def encode_artefact(kind: str, key: str, ext: str, payload: bytes, meta: dict[str, Any] | None) -> bytes:
    header = {"kind": kind, "key": key, "ext": ext, "meta": meta or {}, "payload_bytes": len(payload)}
    body = MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + payload
    return body + hashlib.sha256(body).digest()


def decode_artefact(data: bytes, kind: str | None = None, key: str | None = None) -> Artefact:
    """Verify and unpack an artefact file's bytes.

    Raises:
        ArtefactDamaged: wrong format, checksum mismatch, inconsistent header, or another kind/key than expected.
    """
    if not data.startswith(MAGIC):
        raise ArtefactDamaged("not a format-2 artefact (bad magic)")
    if len(data) < len(MAGIC) + DIGEST_BYTES:
        raise ArtefactDamaged("truncated")
    body = memoryview(data)[:-DIGEST_BYTES]  # hashed and sliced without copying the file
    if hashlib.sha256(body).digest() != data[-DIGEST_BYTES:]:
        raise ArtefactDamaged("checksum mismatch")
    end = data.find(b"\n", len(MAGIC), len(data) - DIGEST_BYTES)
    try:
        header = json.loads(bytes(body[len(MAGIC):end]))
        payload = bytes(body[end + 1:])
        consistent = isinstance(header["meta"], dict) and header["payload_bytes"] == len(payload)
    except (ValueError, KeyError, TypeError):
        raise ArtefactDamaged("unreadable header") from None
    if end < 0 or not consistent:
        raise ArtefactDamaged("inconsistent header")
    if (kind is not None and header.get("kind") != kind) or (key is not None and header.get("key") != key):
        raise ArtefactDamaged(f"holds {header.get('kind')}/{header.get('key')}, not {kind}/{key}")
    return Artefact(payload, header["meta"])


class Store:
    """Artefacts by (kind, key). Kinds used by the runner: models, explanations, scores, cells."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.base = self.root / f"v{FORMAT_VERSION}"

    def path(self, kind: str, key: str, ext: str) -> Path:
        return self.base / kind / key[:2] / f"{key}.{ext}{SUFFIX}"

    def lock_path(self, kind: str, key: str) -> Path:
        return self.base / "locks" / kind / f"{key}.lock"

    @contextmanager
    def lock(self, kind: str, key: str) -> Iterator[None]:
        """Exclusive per-key lock across processes (re-entrant within one thread)."""
        path = self.lock_path(kind, key)
        with ExitStack() as stack:
            try:
                stack.enter_context(file_lock(path))
            except OSError as error:
                raise StorageError.from_os_error(error, path) from None
            yield

    def put(self, kind: str, key: str, ext: str, payload: bytes, meta: dict[str, Any] | None = None) -> None:
        """Store one artefact (payload and metadata together, one file) under the key's lock."""
        data = encode_artefact(kind, key, ext, payload, meta)
        with self.lock(kind, key):
            atomic_write_bytes(self.path(kind, key, ext), data)

    def get(self, kind: str, key: str, ext: str) -> tuple[bytes, dict[str, Any]] | None:
        """Payload and metadata, or None if absent or damaged in any byte."""
        hit = self.read(kind, key, ext)
        return None if isinstance(hit, str) or hit is None else (hit.payload, hit.meta)

    def read(self, kind: str, key: str, ext: str) -> Artefact | str | None:
        """The verified artefact, None if absent, or a one-phrase reason why it is damaged."""
        try:
            data = self.path(kind, key, ext).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            return f"unreadable ({error.strerror})"
        try:
            return decode_artefact(data, kind, key)
        except ArtefactDamaged as damage:
            return str(damage)

    def read_file(self, kind: str, path: Path) -> Artefact | str | None:
        """``read`` for a file listed by ``files(kind)`` (its key and extension from its name)."""
        key, ext = _key_ext(path)
        return self.read(kind, key, ext) if ext == "parquet" else f"unexpected extension .{ext}"

    def has(self, kind: str, key: str, ext: str) -> bool:
        return self.get(kind, key, ext) is not None

    # Typed helpers ---------------------------------------------------------------------------------------
    def put_frame(self, kind: str, key: str, frame: pd.DataFrame, meta: dict[str, Any] | None = None) -> None:
        self.put(kind, key, "parquet", frame_to_parquet_bytes(frame), meta)

    def get_frame(self, kind: str, key: str) -> pd.DataFrame | None:
        hit = self.get(kind, key, "parquet")
        return None if hit is None else _parquet_or_none(hit[0])

    def get_table(self, kind: str, key: str) -> pa.Table | None:
        """``get_frame`` as a pyarrow table (no pandas conversion: callers that read many concatenate first)."""
        hit = self.get(kind, key, "parquet")
        if hit is None:
            return None
        try:
            # ParquetFile, one thread: a small artefact reads in a third of read_table's time (no dataset layer)
            return pq.ParquetFile(pa.BufferReader(hit[0])).read(use_threads=False)
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
        try:
            with np.load(io.BytesIO(hit[0]), allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}, hit[1]
        except Exception:  # noqa: BLE001 - an unreadable artefact is a cache miss, recomputed by the caller
            return None

    # Whole-store views -------------------------------------------------------------------------------------
    def files(self, kind: str) -> list[Path]:
        """Every artefact file of ``kind``, sorted by path."""
        return sorted((self.base / kind).glob(f"*/*{SUFFIX}"))

    def scan_frames(self, kind: str) -> Iterator[tuple[Path, pd.DataFrame | None, str, dict[str, Any]]]:
        """``(path, frame or None, reason if None, meta)`` for every parquet artefact of ``kind``."""
        for path in self.files(kind):
            hit = self.read_file(kind, path)
            if not isinstance(hit, Artefact):
                yield path, None, hit or "vanished while reading", {}
                continue
            frame = _parquet_or_none(hit.payload)
            yield path, frame, "" if frame is not None else "payload is not a readable Parquet table", hit.meta

    def iter_frames(self, kind: str) -> Iterator[pd.DataFrame]:
        """Every verified parquet artefact of ``kind`` (damaged ones skipped; see ``scan_frames``)."""
        for _, frame, _, _ in self.scan_frames(kind):
            if frame is not None:
                yield frame


def _key_ext(path: Path) -> tuple[str, str]:
    """``<key>.<ext>.artefact`` -> (key, ext)."""
    stem = path.name[: -len(SUFFIX)]
    key, _, ext = stem.partition(".")
    return key, ext


def _parquet_or_none(payload: bytes) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(io.BytesIO(payload))
    except Exception:  # noqa: BLE001 - an unreadable artefact is a cache miss, recomputed by the caller
        return None
