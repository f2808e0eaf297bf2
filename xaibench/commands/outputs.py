"""Refuse an output path that names one of the command's own inputs (``summary t.parquet -o t.parquet``), or
that cannot be written (``refuse_unwritable``).

The verbs write their outputs atomically, so such a command completed "successfully" and replaced the user's
results table with its summary (or a verdict, a report): the scores were gone, and the next read said only that
the file "is not an xaibench results table". Checked before any work, so nothing is written (exit 2).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def table_file(path: str | os.PathLike[str], name: str = "table.parquet") -> Path:
    """The file a table argument reads: ``path`` itself, or ``<path>/table.parquet`` for a folder."""
    target = Path(path)
    return target / name if target.is_dir() else target


def refuse_overwriting_inputs(output: str | os.PathLike[str] | None, flag: str,
                              inputs: Mapping[str, str | os.PathLike[str]]) -> None:
    """Raise ``UserError`` if ``output`` is (a link to) one of ``inputs`` ({what: file}); nothing when None."""
    if not output:
        return
    from xaibench.errors import UserError

    written = os.path.realpath(output)
    for what, path in inputs.items():
        if os.path.realpath(path) == written:
            raise UserError(f"{flag} {output} is the {what} this command reads; writing there would replace it: "
                            f"choose another file")


def refuse_unwritable(output: str | os.PathLike[str] | None, flag: str) -> None:
    """Raise ``UserError`` if ``output`` cannot be written as a file: it is a folder, or the nearest folder above it
    that exists is a file or cannot be written (missing folders are made when it is written). Nothing is created."""
    if not output:
        return
    from xaibench.errors import UserError
    from xaibench.results.folder_paths import nearest_existing

    target = Path(output)
    if target.is_dir():
        raise UserError(f"{flag} {output} is a folder; name a file (e.g. {flag} {target / 'out'}{_suffix(flag)})")
    existing = nearest_existing(target.parent)
    if not existing.is_dir():
        raise UserError(f"{flag} {output} cannot be written: {existing} is a file, not a folder; choose another path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {output} cannot be written: folder {existing} is not writable; choose another path")


def refuse_same_outputs(outputs: Mapping[str, str | os.PathLike[str]]) -> None:
    """Raise ``UserError`` if two outputs ({flag: path}) are the same file: the second would replace the first."""
    from xaibench.errors import UserError

    seen: dict[str, str] = {}
    for flag, output in outputs.items():
        real = os.path.realpath(output)
        if real in seen:
            raise UserError(f"{flag} {output} is the file {seen[real]} writes too; choose another file")
        seen[real] = flag


def _suffix(flag: str) -> str:
    return {"--json": ".json", "--junit": ".xml", "--report": ".md"}.get(flag, "")
