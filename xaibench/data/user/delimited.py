"""Reading a user's delimited text table (CSV/TSV) with a declared separator and decimal mark; torch-free.

European spreadsheets write ``a;b;c`` with decimal commas (``3,5``). Read with ``,`` such a file is one column
named ``a;b;c``, and the run would stop later on a missing target column, or go on with one text feature. A file
read as a single column whose header holds another separator is refused here, naming the option that reads it;
so is a plain comma file read with ``sep=';'`` (it would stop on a "missing" target column that the message lists).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from xaibench.errors import UserError

# Separators a one-column read is checked for, in the order the hint names them (the comma last: a comma file read
# with ``sep=';'`` is one column too).
_OTHER_SEPARATORS = (";", "\t", "|", ",")
_SHOWN = {"\t": "\\t"}
_COMMA_NUMBER = r"[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+([eE][+-]?\d+)?"


def default_sep(path: Path) -> str:
    """``\\t`` for ``.tsv`` files, ``,`` otherwise."""
    return "\t" if path.suffix.lower() == ".tsv" else ","


def read_delimited(path: Path, what: str, sep: str | None = None, decimal: str = ".",
                   text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read ``path`` with ``sep`` (default by suffix; ``\\t`` as written on a command line is a tab) and
    ``decimal``. ``UserError`` for a one-column read of a file whose header holds another separator, and for text
    columns that hold decimal-comma numbers (``3,5``) while ``decimal`` is ``.`` and ``sep`` is not ``,`` (they
    would be encoded as categories), except ``text_columns`` declared as text. Parser errors propagate (callers word them).
    """
    used = "\t" if sep in ("\\t", "tab") else (sep or default_sep(path))
    if len(used) != 1 or len(decimal) != 1 or used == decimal:
        raise UserError(f"{what}: sep and decimal must be two different single characters, got sep={used!r}, "
                        f"decimal={decimal!r}")
    frame = pd.read_csv(path, sep=used, decimal=decimal)
    if frame.shape[1] == 1:
        found = next((s for s in _OTHER_SEPARATORS if s != used and s in str(frame.columns[0])), None)
        if found is not None:
            hint = " (and \"dataset.decimal=','\" if its numbers are written 3,5)" if found == ";" else ""
            raise UserError(f"{what}: {path} reads as one column {str(frame.columns[0])[:60]!r} with sep="
                            f"'{_shown(used)}', but its header holds '{_shown(found)}': set "
                            f"\"dataset.sep='{_shown(found)}'\"{hint}")
    if decimal == "." and used != ",":  # in a comma-separated file a quoted "1,234" is more likely thousands
        commas = [str(c) for c in frame.columns if str(c) not in text_columns and _decimal_commas(frame[c])]
        if commas:
            raise UserError(f"{what}: column(s) {', '.join(commas)} of {path} hold numbers written with a decimal "
                            f"comma (e.g. {frame[commas[0]].dropna().iloc[0]!r}), which would be read as text "
                            f"categories: set \"dataset.decimal=','\" (text on purpose: declare them in "
                            "dataset.categorical_columns)")
    return frame


def _shown(separator: str) -> str:
    return _SHOWN.get(separator, separator)


def _decimal_commas(column: pd.Series) -> bool:
    """A text column whose every value is a number written with a decimal comma (``-3,5``, ``1.234,5``)."""
    if not (column.dtype == object or pd.api.types.is_string_dtype(column.dtype)):
        return False
    values = column.dropna().astype(str).str.strip()
    return len(values) > 0 and bool(values.str.fullmatch(_COMMA_NUMBER).all())
