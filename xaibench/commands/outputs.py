"""Refuse an output path that names one of the command's own inputs (``summary t.parquet -o t.parquet``).

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
