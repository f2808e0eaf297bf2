"""The content-addressed store: one self-verifying file per artefact, atomic, locked, umask-respecting."""
import hashlib
import multiprocessing
import os

import numpy as np
import pandas as pd
import pytest

from xaibench.engine.locks import LockHeld, file_lock
from xaibench.engine.store import Store, atomic_write_bytes, decode_artefact
from xaibench.engine.store_maintenance import gc, verify
from xaibench.errors import StorageError

KEY = "ab" * 16


def test_roundtrip_frame_and_arrays(tmp_path):
    store = Store(tmp_path)
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    store.put_frame("scores", KEY, frame, meta={"k": 1})
    pd.testing.assert_frame_equal(store.get_frame("scores", KEY), frame)
    store.put_arrays("explanations", "cd" * 16, {"attributions": np.arange(6.0).reshape(2, 3)})
    arrays, meta = store.get_arrays("explanations", "cd" * 16)
    np.testing.assert_array_equal(arrays["attributions"], np.arange(6.0).reshape(2, 3))
    assert meta == {}


def test_one_file_per_artefact_under_a_versioned_layout(tmp_path):
    Store(tmp_path).put("models", KEY, "pt", b"weights", meta={"accuracy": 0.9})
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == [f"v2/locks/models/{KEY}.lock", f"v2/models/ab/{KEY}.pt.artefact"]


def _positions(size: int) -> list[int]:
    """Every byte of the first and last 300 bytes (magic, header with the metadata, checksum) and 200 evenly
    spread positions in between (the payload)."""
    edges = set(range(min(size, 300))) | set(range(max(0, size - 300), size))
    return sorted(edges | set(np.linspace(0, size - 1, 200).astype(int).tolist()))


@pytest.mark.parametrize("kind, ext", [("models", "pt"), ("explanations", "npz"), ("scores", "parquet"),
                                       ("cells", "parquet")])
def test_every_flipped_byte_of_payload_or_metadata_is_a_miss(tmp_path, kind, ext):
    store = Store(tmp_path)
    payload = bytes(range(256)) * 8
    store.put(kind, KEY, ext, payload, meta={"accuracy": 0.9, "n_forward": 3.0, "explain_s": 0.5})
    path = store.path(kind, KEY, ext)
    original = path.read_bytes()
    header_end = original.index(b"\n", len(b"XAIBENCH-ARTEFACT 2\n"))
    assert b'"n_forward"' in original[:header_end]  # the metadata is inside the checksummed unit
    positions = _positions(len(original))
    for position in positions:
        for flip in (0x01, 0x80):
            damaged = bytearray(original)
            damaged[position] ^= flip
            path.write_bytes(bytes(damaged))
            assert store.get(kind, KEY, ext) is None, f"flip {flip:#x} at byte {position} not detected"
    assert len(positions) > 600
    for cut in (0, 1, 20, header_end, len(original) - 33, len(original) - 1):  # truncated copies
        path.write_bytes(original[:cut])
        assert store.get(kind, KEY, ext) is None
    path.write_bytes(original)
    assert store.get(kind, KEY, ext) == (payload, {"accuracy": 0.9, "n_forward": 3.0, "explain_s": 0.5})


def test_an_artefact_under_another_key_is_not_trusted(tmp_path):
    store = Store(tmp_path)
    store.put("models", KEY, "pt", b"weights")
    other = store.path("models", "cd" * 16, "pt")
    other.parent.mkdir(parents=True)
    other.write_bytes(store.path("models", KEY, "pt").read_bytes())  # a valid file copied to the wrong name
    assert store.get("models", "cd" * 16, "pt") is None


def test_unreadable_parquet_or_npz_payload_is_a_miss(tmp_path):
    store = Store(tmp_path)
    store.put("cells", KEY, "parquet", b"not parquet at all")
    store.put("explanations", KEY, "npz", b"not an npz")
    assert store.get_frame("cells", KEY) is None
    assert store.get_arrays("explanations", KEY) is None


def test_files_honour_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        atomic_write_bytes(tmp_path / "t.parquet", b"1")
        Store(tmp_path / "s").put("models", KEY, "pt", b"w")
    finally:
        os.umask(old)
    assert (tmp_path / "t.parquet").stat().st_mode & 0o777 == 0o664
    store = Store(tmp_path / "s")
    assert store.path("models", KEY, "pt").stat().st_mode & 0o777 == 0o664
    assert store.lock_path("models", KEY).stat().st_mode & 0o777 == 0o664


def test_atomic_write_leaves_no_temp_files_and_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "a" / "b.bin"
    atomic_write_bytes(target, b"1")
    atomic_write_bytes(target, b"2")
    assert target.read_bytes() == b"2"
    assert [p.name for p in target.parent.iterdir()] == ["b.bin"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match=r"cannot write .*/file: \[Errno 17\] File exists"):
        atomic_write_bytes(tmp_path / "file" / "c.bin", b"1")


def test_a_write_refused_when_creating_the_temp_file_names_the_users_path(tmp_path, monkeypatch):
    """A folder out of inodes (or missing, unwritable) fails in ``mkstemp``, whose error names the hidden temp file:
    `cannot write /out/.report.md.k2j3h4.tmp` named a file the user never asked for; it names ``report.md``."""
    import tempfile

    def no_inodes(dir, prefix, suffix):
        raise OSError(28, "No space left on device", os.path.join(dir, f"{prefix}x1y2z3{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", no_inodes)
    with pytest.raises(StorageError) as error:
        atomic_write_bytes(tmp_path / "report.md", b"1")
    assert str(error.value) == f"cannot write {tmp_path / 'report.md'}: [Errno 28] No space left on device"
    assert error.value.path == str(tmp_path / "report.md")


def _put_many(root: str, writer: int, n: int) -> None:
    store = Store(root)
    for i in range(n):
        payload = f"writer {writer} put {i} ".encode() * (50 + 37 * writer + i % 7)
        store.put("cells", KEY, "parquet", payload, meta={"sha": hashlib.sha256(payload).hexdigest(), "w": writer})


def test_concurrent_puts_on_one_key_always_leave_a_verified_artefact(tmp_path):
    """4 processes x 50 puts of different payloads on one key, read meanwhile: never a mismatched artefact."""
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_put_many, args=(str(tmp_path), w, 50)) for w in range(4)]
    for process in writers:
        process.start()
    store, reads = Store(tmp_path), 0
    while any(p.is_alive() for p in writers):
        hit = store.get("cells", KEY, "parquet")
        if hit is not None:
            reads += 1
            assert hashlib.sha256(hit[0]).hexdigest() == hit[1]["sha"]  # payload and metadata from one writer
    for process in writers:
        process.join()
        assert process.exitcode == 0
    payload, meta = store.get("cells", KEY, "parquet")
    assert hashlib.sha256(payload).hexdigest() == meta["sha"]
    assert verify(store).damaged == [] and reads > 0
    assert not list(tmp_path.rglob("*.tmp"))


def test_key_lock_is_reentrant_and_exclusive_across_threads(tmp_path):
    import threading

    store, entered = Store(tmp_path), []
    with store.lock("models", KEY), store.lock("models", KEY):  # nested: the put inside a stage's lock
        store.put("models", KEY, "pt", b"w")
        thread = threading.Thread(target=lambda: entered.append(_try_lock(store)))
        thread.start()
        thread.join()
    assert entered == [False]
    assert _try_lock(store)


def _try_lock(store: Store) -> bool:
    try:
        with file_lock(store.lock_path("models", KEY), blocking=False):
            return True
    except LockHeld:
        return False


def test_verify_and_gc(tmp_path):
    store = Store(tmp_path)
    store.put("models", "11" * 16, "pt", b"used")
    store.put("models", "22" * 16, "pt", b"unused")
    store.put_frame("cells", KEY, pd.DataFrame({"a": [1]}), meta={"stages": {"models": ["11" * 16]}})
    store.put("scores", "33" * 16, "parquet", b"x")
    damaged = store.path("scores", "33" * 16, "parquet")
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"!")
    orphan = store.path("models", "11" * 16, "pt").parent / ".x.pt.artefact.abc.tmp"
    orphan.write_bytes(b"partial")
    report = verify(store)
    assert report.damaged == [(str(damaged), "checksum mismatch")] and report.temp_files == 1
    young = gc(store)  # everything is young: only the damaged artefact and free locks go
    assert young.removed["damaged artefacts"] == 1 and young.kept_young == 1 and orphan.exists()
    done = gc(store, min_age_s=0)
    assert done.removed["unused models"] == 1 and done.removed["temp files"] == 1
    assert store.get("models", "11" * 16, "pt") == (b"used", {}) and store.get("models", "22" * 16, "pt") is None
    assert store.get_frame("cells", KEY) is not None and not orphan.exists()
    assert verify(store).damaged == []
    assert decode_artefact(store.path("cells", KEY, "parquet").read_bytes()).meta == {
        "stages": {"models": ["11" * 16]}}


def test_gc_dry_run_lists_what_it_would_remove_and_how_much(tmp_path, capsys):
    """rel14: `store gc --dry-run` (help: "list what would be removed") printed only counts, and counted every lock
    file as "free lock files (would try)". It lists each file gc would remove with its size, then the totals; a lock
    held meanwhile is not among them, and nothing is removed."""
    from xaibench.cli import main

    store = Store(tmp_path)
    store.put("models", "11" * 16, "pt", b"unused model")
    orphan = store.path("models", "11" * 16, "pt").parent / ".x.pt.artefact.abc.tmp"
    orphan.write_bytes(b"p" * 2500)
    store.put("scores", "22" * 16, "parquet", b"x")
    before = sorted((p, p.stat().st_size) for p in tmp_path.rglob("*") if p.is_file())
    capsys.readouterr()
    with file_lock(store.lock_path("scores", "22" * 16)), pytest.raises(SystemExit) as done:
        main(["store", "gc", str(tmp_path), "--dry-run", "--min-age", "0"])
    out = capsys.readouterr().out.splitlines()
    model, models_lock = store.path("models", "11" * 16, "pt"), store.lock_path("models", "11" * 16)
    scores = store.path("scores", "22" * 16, "parquet")
    assert done.value.code == 0 and out == [
        f"would remove {orphan} (temp file, 2.5 kB)",
        f"would remove {model} ({'unused model'}, {model.stat().st_size} bytes)",
        f"would remove {scores} (unused score, {scores.stat().st_size} bytes)",
        f"would remove {models_lock} (free lock file, 0 bytes)",
        f"{tmp_path}: would remove 1 free lock files, 1 temp files, 1 unused models, 1 unused scores "
        f"({_size(2500 + model.stat().st_size + scores.stat().st_size)}); kept 0 unused artefacts younger than 0 s"]
    assert sorted((p, p.stat().st_size) for p in tmp_path.rglob("*") if p.is_file()) == before


def _size(n: int) -> str:
    return f"{n / 1e3:.1f} kB"


def test_gc_legacy_deletes_the_format_1_files_and_nothing_else(tmp_path):
    """reliab10: `store gc --legacy` deleted `<dir>/models`, `explanations`, `scores`, `cells` and `locks` whole, so
    `xaibench store gc --legacy ~/project` (a project folder given as the store) deleted the user's own `models/`.
    Only files named as format 1 named them (`<kind>/<key[:2]>/<key>.<ext>`, `locks/<kind>/<key>.lock`) go."""
    key = "ab" + "0" * 30
    legacy = [tmp_path / "models" / "ab" / f"{key}.pt", tmp_path / "models" / "ab" / f"{key}.json",
              tmp_path / "cells" / "ab" / f"{key}.parquet", tmp_path / "cells" / "ab" / f".{key}.parquet.x1y2.tmp",
              tmp_path / "locks" / "cells" / f"{key}.lock"]
    users = [tmp_path / "models" / "resnet.pt", tmp_path / "models" / "ab" / "notes.txt",
             tmp_path / "explanations" / "figure.png", tmp_path / "models" / "cd" / f"{key}.pt"]
    for path in legacy + users:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    store = Store(tmp_path)
    assert verify(store).legacy_files == len(legacy)
    assert gc(store, legacy=True, dry_run=True).removed["legacy format-1 files"] == len(legacy)
    assert all(path.exists() for path in legacy)
    assert gc(store, legacy=True).removed["legacy format-1 files"] == len(legacy)
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(users)
    assert not (tmp_path / "cells").exists() and not (tmp_path / "locks").exists()  # emptied: removed
    only_legacy = tmp_path / "old_store"
    (only_legacy / "scores" / "ab").mkdir(parents=True)
    (only_legacy / "scores" / "ab" / f"{key}.npz").write_bytes(b"x")
    gc(Store(only_legacy), legacy=True)
    assert list(only_legacy.iterdir()) == []  # the store folder itself stays
