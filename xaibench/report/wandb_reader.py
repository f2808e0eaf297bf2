"""Read an offline W&B run back (``run-*.wandb``): its config, summary and logged tables.

wandb >= 0.19 writes runs from its Go core and no longer ships a Python reader. The file is a LevelDB-style log:
a 7-byte header (``:W&B`` magic, version), then 32 KiB blocks of records, each with a 7-byte header
(crc32, length, type: 1 full, 2 first, 3 middle, 4 last), whose payloads are ``wandb.proto`` ``Record`` messages.
"""
from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_BLOCK = 32768
_HEADER = 7


def iter_records(path: str | Path) -> Iterator[Any]:
    """Yield the protobuf ``Record`` messages of a ``.wandb`` file in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    position, pending = _HEADER, b""
    while position + _HEADER <= len(data):
        left = _BLOCK - position % _BLOCK
        if left < _HEADER:
            position += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position : position + _HEADER])
        if length == 0 and kind == 0:  # block padding
            position += left
            continue
        chunk = data[position + _HEADER : position + _HEADER + length]
        position += _HEADER + length
        if kind in (1, 2):
            pending = chunk
        else:
            pending += chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""


def _finished_records(path: Path, wait_s: float) -> list[Any]:
    """The records of ``path`` once its last one is the run's ``exit`` record (or after ``wait_s`` seconds)."""
    from google.protobuf.message import DecodeError

    deadline = time.monotonic() + wait_s
    while True:
        try:
            records = list(iter_records(path))
            finished = bool(records) and records[-1].WhichOneof("record_type") == "exit"
        except DecodeError:  # a record cut where the writer has not flushed yet
            if time.monotonic() > deadline:
                raise
            finished = False
        if finished or time.monotonic() > deadline:
            return records
        time.sleep(0.02)


@dataclass
class OfflineRun:
    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    group: str = ""
    job_type: str = ""
    tables: dict[str, Any] = field(default_factory=dict)  # key -> parsed table JSON {"columns", "data"}
    images: dict[str, Path] = field(default_factory=dict)  # key -> the logged image file
    logged: dict[str, Any] = field(default_factory=dict)  # key -> last value passed to run.log


def read_offline_run(run_dir: str | Path, wait_s: float = 30.0) -> OfflineRun:
    """Parse ``<run_dir>/run-*.wandb`` and the table and image files it references.

    ``run.finish()`` returns before W&B's core has written the run's records (wandb 0.31, offline: half of the
    runs read at once held only the file header; the process's exit, or ``wandb.teardown()``, writes them). A
    run file is read once it ends with its ``exit`` record, waiting at most ``wait_s`` seconds; a run killed
    before it finished never gets one and is read as it is after the wait.
    """
    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    run = OfflineRun(path=run_dir)
    for record in _finished_records(files[0], wait_s):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.name, run.group, run.job_type = record.run.display_name, record.run.run_group, record.run.job_type
            for item in record.run.config.update:
                value = json.loads(item.value_json)
                run.config[item.key] = value.get("value", value) if isinstance(value, dict) else value
        elif kind == "summary":
            for item in record.summary.update:
                _assign(run.summary, item)
        elif kind == "history":
            for item in record.history.item:
                _assign(run.logged, item)
    for key, value in {**run.logged, **run.summary}.items():
        if isinstance(value, dict) and value.get("_type") == "table-file":
            run.tables[key] = json.loads((run_dir / "files" / value["path"]).read_text())
        elif isinstance(value, dict) and value.get("_type") == "image-file":
            run.images[key] = run_dir / "files" / value["path"]
    return run


def _assign(target: dict[str, Any], item: Any) -> None:
    """Set ``target[key]`` (or ``target[k1][k2]...`` for a nested key) from a summary/history item."""
    path = [item.key] if item.key else list(item.nested_key)
    if not path or path[0].startswith("_"):
        return
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = json.loads(item.value_json)
