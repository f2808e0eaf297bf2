"""The content-addressed store: atomic writes, checksums, corrupted artefacts treated as missing."""
import numpy as np
import pandas as pd

from xaibench.engine.store import Store, atomic_write_bytes


def test_roundtrip_frame_and_arrays(tmp_path):
    store = Store(tmp_path)
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    store.put_frame("scores", "ab" * 16, frame, meta={"k": 1})
    pd.testing.assert_frame_equal(store.get_frame("scores", "ab" * 16), frame)
    store.put_arrays("explanations", "cd" * 16, {"attributions": np.arange(6.0).reshape(2, 3)})
    arrays, meta = store.get_arrays("explanations", "cd" * 16)
    np.testing.assert_array_equal(arrays["attributions"], np.arange(6.0).reshape(2, 3))
    assert meta == {}


def test_corrupted_payload_is_a_miss(tmp_path):
    store = Store(tmp_path)
    store.put("models", "ef" * 16, "pt", b"weights", meta={"accuracy": 0.9})
    assert store.get("models", "ef" * 16, "pt") == (b"weights", {"accuracy": 0.9})
    payload = next(tmp_path.glob("models/*/*.pt"))
    payload.write_bytes(b"weightz")  # bit rot / a partial copy
    assert store.get("models", "ef" * 16, "pt") is None


def test_missing_sidecar_is_a_miss(tmp_path):
    """A job killed between payload and sidecar leaves an artefact that is never trusted."""
    store = Store(tmp_path)
    store.put("models", "01" * 16, "pt", b"weights")
    next(tmp_path.glob("models/*/*.json")).unlink()
    assert store.get("models", "01" * 16, "pt") is None


def test_unreadable_parquet_is_a_miss(tmp_path):
    store = Store(tmp_path)
    store.put("cells", "23" * 16, "parquet", b"not parquet at all")
    assert store.get_frame("cells", "23" * 16) is None


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "a" / "b.bin"
    atomic_write_bytes(target, b"1")
    atomic_write_bytes(target, b"2")
    assert target.read_bytes() == b"2"
    assert [p.name for p in target.parent.iterdir()] == ["b.bin"]
