"""Committed baselines: a results table plus a provenance file beside it, refreshed only on request.

``write_baseline`` is the one way a baseline changes (``xaibench compare BASELINE CURRENT --update-baseline``);
``compare`` itself never writes it. The provenance file (``<table stem>.provenance.json``) records where the
numbers came from: package versions, machine, date, git SHA and the command that produced the table.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pandas as pd

from xaibench.engine.provenance import git_sha
from xaibench.engine.store import atomic_writer, frame_to_parquet_bytes
from xaibench.errors import UserError
from xaibench.results.collect import TABLE_NAME

PACKAGES = ("xaibench", "torch", "captum", "quantus", "numpy", "scipy", "pandas", "scikit-learn", "hydra-core")


def baseline_file(path: str | os.PathLike[str]) -> Path:
    """The table file of a baseline given as a file or a folder (``<folder>/table.parquet``)."""
    target = Path(path)
    return target / TABLE_NAME if target.is_dir() or not target.suffix else target


def provenance_file(table: Path) -> Path:
    return table.with_name(f"{table.stem}.provenance.json")


def write_baseline(current: pd.DataFrame, baseline: str | os.PathLike[str], *, source: str,
                   command: str = "", update_command: str = "") -> tuple[Path, Path]:
    """Atomically write ``current`` as the baseline and its provenance; refuses a table with error rows.

    Args:
        current: a conformed results table.
        baseline: the baseline file (``.parquet``/``.csv``) or folder.
        source: where ``current`` was read from (recorded).
        command: the command that produced ``current`` (recorded, e.g. ``xaibench -m experiment=ci``).
        update_command: the shell command that made this baseline (recorded; default: this process's arguments,
            quoted for a shell).

    Returns:
        The table and provenance paths written.
    """
    errors = current[current["status"] == "error"]
    if not errors.empty:
        first = errors.iloc[0]
        raise UserError(f"the current table has {len(errors)} error row(s) (e.g. {first['model']}/{first['dataset']}/"
                        f"{first['method']}/{first['metric']}: {first['message']}); fix them before baselining it")
    if current.empty:
        raise UserError("the current table has no rows; run the sweep before baselining it")
    table = baseline_file(baseline)
    info = provenance_record(current, source=source, command=command, update_command=update_command)
    data = table_bytes(current, table)
    info["table_sha256"] = hashlib.sha256(data).hexdigest()  # pairs the provenance with exactly these bytes
    # Two files cannot be replaced at once. Both are written to temp files and synced first (a full disk fails
    # there, changing nothing); then the provenance is renamed into place, then the table: a process killed
    # between the two renames leaves a provenance whose table_sha256 the old table does not match (check_pair).
    with atomic_writer(table) as table_handle:
        table_handle.write(data)
        table_handle.flush()
        os.fsync(table_handle.fileno())
        with atomic_writer(provenance_file(table)) as handle:
            handle.write((json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
    return table, provenance_file(table)


def table_bytes(frame: pd.DataFrame, path: Path) -> bytes:
    """The bytes ``write_table(frame, path)`` writes (CSV when ``path`` ends in .csv, else Parquet)."""
    return frame.to_csv(index=False).encode() if path.suffix == ".csv" else frame_to_parquet_bytes(frame)


def check_pair(table: Path) -> None:
    """Refuse a baseline table whose provenance was written for other bytes (``UserError``, one line).

    ``write_baseline`` records the table's SHA-256 in the provenance (``table_sha256``); a mismatch means the two
    files are not from one update: an ``--update-baseline`` killed between its two writes, or one of the files
    edited, restored or merged without the other. A provenance without the field (written before it existed) or no
    provenance at all is not checked.
    """
    expected = read_provenance(table).get("table_sha256")
    if not expected or not table.is_file():
        return
    digest = hashlib.sha256()
    with open(table, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise UserError(f"baseline {table} does not match its provenance {provenance_file(table)} (table_sha256 "
                        f"{expected[:12]}..., the table's is {digest.hexdigest()[:12]}...): they are not from one "
                        "update (one interrupted, or one file changed without the other); rerun xaibench compare "
                        "BASELINE CURRENT --update-baseline, or restore both files from one commit")


def provenance_record(table: pd.DataFrame, *, source: str, command: str, update_command: str = "") -> dict:
    """Versions (of the run that computed the rows and of this process), machine, date, git SHA, command, and the
    ``update_command`` that made the baseline, quoted so that it can be pasted into a shell."""
    def versions_in_table(column: str) -> list[str]:
        return sorted(str(v) for v in table[column].dropna().unique()) if column in table else []

    installed = {}
    for package in PACKAGES:
        try:
            installed[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            installed[package] = "not installed"
    return {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "command": command,
        "update_command": update_command or shlex.join(["xaibench", *sys.argv[1:]]),
        "git_sha": git_sha(),  # of xaibench's own source tree ("unknown" for an installed package)
        "repository": repository_state(Path.cwd()),  # the repository the baseline was refreshed in (yours)
        "rows_git_sha": versions_in_table("git_sha"),
        "rows_versions": {c.removesuffix("_version"): versions_in_table(c)
                          for c in ("xaibench_version", "torch_version", "captum_version", "quantus_version")},
        "versions": {"python": platform.python_version(), **installed},
        "machine": {"platform": platform.platform(), "machine": platform.machine(),
                    "processor": platform.processor() or _cpu_model(), "cpu_count": os.cpu_count()},
        "devices": versions_in_table("device"),
        "rows": int(len(table)),
        "schema_version": int(table["schema_version"].iloc[0]),
    }


def repository_state(folder: Path) -> dict:
    """``{"path", "git_sha", "dirty"}`` of the git repository holding ``folder`` (empty values outside one)."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None:
        return {"path": str(folder), "git_sha": "", "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    dirty = None if status is None else bool(status)
    return {"path": top, "git_sha": git("rev-parse", "HEAD") or "", "dirty": dirty}


def read_provenance(table: Path) -> dict:
    """The provenance beside a baseline table, or {} when there is none (or it is unreadable)."""
    path = provenance_file(table)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def table_origin(table: pd.DataFrame) -> dict:
    """Short origin of a table for reports: the git SHA and latest creation time of its rows, and the oldest
    results schema version its rows were written in (a v3 table is compared as v4: ``tables.load_results``)."""
    shas = sorted({str(s) for s in table.get("git_sha", pd.Series(dtype=str)) if s})
    created = sorted({str(s) for s in table.get("created_at", pd.Series(dtype=str)) if s})
    versions = table.get("schema_version", pd.Series(dtype="int64")).dropna()
    return {"git_sha": ",".join(shas), "created_at": created[-1] if created else "", "rows": int(len(table)),
            "schema_version": int(versions.min()) if len(versions) else None}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""
