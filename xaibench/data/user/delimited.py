"""Reading a user's delimited text table (CSV/TSV) with a declared separator, decimal mark and thousands
separator; torch-free.

European spreadsheets write ``a;b;c`` with decimal commas (``3,5``). Read with ``,`` such a file is one column
named ``a;b;c``, and the run would stop later on a missing target column, or go on with one text feature. A file
read as a single column whose header holds another separator is refused here, naming the option that reads it;
so is a plain comma file read with ``sep=';'`` (it would stop on a "missing" target column that the message lists).
Numbers written otherwise than declared (``3,5``, ``1,234.5``, ``1.234,5``, ``1 234,5``) are read as text, which
would be one-hot encoded as categories: a text column holding only such numbers is refused, naming
``dataset.decimal`` / ``dataset.thousands``.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from xaibench.errors import UserError

# Separators a one-column read is checked for, in the order the hint names them (the comma last: a comma file read
# with ``sep=';'`` is one column too).
_OTHER_SEPARATORS = (";", "\t", "|", ",")
_SHOWN = {"\t": "\\t"}
Convention = tuple[str, str | None]  # (decimal mark, thousands separator or None)
# Thousands separators recognised in numbers read as text, and how messages name them.
_THOUSANDS = {None: "", ",": "commas", ".": "points", " ": "spaces", "'": "apostrophes", "\u00a0": "no-break spaces",
              "\u202f": "narrow no-break spaces"}


_NUMBER_LIKE = r"[+-]?\d[\d.,' \u00a0\u202f]*([eE][+-]?\d+)?"  # digits and any marks: maybe a number


def default_sep(path: Path) -> str:
    """``\\t`` for ``.tsv`` files, ``,`` otherwise."""
    return "\t" if path.suffix.lower() == ".tsv" else ","


def read_delimited(path: Path, what: str, sep: str | None = None, decimal: str = ".",
                   text_columns: tuple[str, ...] = (), thousands: str | None = None,
                   only: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Read ``path`` with ``sep`` (default by suffix; ``\\t`` as written on a command line is a tab), ``decimal``
    and ``thousands`` (None: no thousands separator). ``UserError`` for a one-column read of a file whose header
    holds another separator, and for text columns whose every value is a number written another way (``3,5``,
    ``1,234.5``, ``1.234,5``: they would be encoded as categories), naming the options that read them, except
    ``text_columns`` declared as text; ``only``: the columns the caller uses as numbers, if not all (the others are
    not checked). Parser errors propagate (callers word them).
    """
    used = "\t" if sep in ("\\t", "tab") else (sep or default_sep(path))
    if len(used) != 1 or len(decimal) != 1 or used == decimal:
        raise UserError(f"{what}: sep and decimal must be two different single characters, got sep={used!r}, "
                        f"decimal={decimal!r}")
    if thousands is not None and (len(thousands) != 1 or thousands == decimal or thousands.isdigit()):
        raise UserError(f"{what}: thousands must be one character other than the decimal mark {decimal!r} (or "
                        f"null for none), got {thousands!r}")
    frame = pd.read_csv(path, sep=used, decimal=decimal, thousands=thousands)
    if frame.shape[1] == 1:
        found = next((s for s in _OTHER_SEPARATORS if s != used and s in str(frame.columns[0])), None)
        if found is not None:
            hint = " (and \"dataset.decimal=','\" if its numbers are written 3,5)" if found == ";" else ""
            raise UserError(f"{what}: {path} reads as one column {str(frame.columns[0])[:60]!r} with sep="
                            f"'{_shown(used)}', but its header holds '{_shown(found)}': set "
                            f"\"dataset.sep='{_shown(found)}'\"{hint}")
    unused = tuple(str(c) for c in frame.columns if only is not None and str(c) not in only)
    _refuse_numbers_read_as_text(frame, path, what, (decimal, thousands), (*text_columns, *unused))
    return frame


def _refuse_numbers_read_as_text(frame: pd.DataFrame, path: Path, what: str, used: Convention,
                                 text_columns: tuple[str, ...]) -> None:
    """``UserError`` naming the ``decimal``/``thousands`` options when text columns (other than ``text_columns``)
    hold only numbers written in another convention than ``used``: read as text, they would be one-hot encoded."""
    fits: dict[str, list[Convention]] = {}
    for column in frame.columns:
        if str(column) not in text_columns:
            conventions = _conventions(frame[column], used)
            if conventions:
                fits[str(column)] = conventions
    if not fits:
        return
    common = [c for c in _candidates(used) if all(c in found for found in fits.values())]
    columns = list(fits) if common else list(fits)[:1]
    choices = common or fits[columns[0]]
    example = frame[columns[0]].dropna().astype(str).str.strip()
    example = example[~example.str.fullmatch(_pattern((used[0], None)))].iloc[0]
    fix = _setting(choices[0], used)
    other = next((c for c in choices[1:] if c[0] != choices[0][0]), None)
    if other is not None:  # "1,234": thousands or a decimal comma
        fix = (f"{fix} if {choices[0][1]!r} separates thousands, {_setting(other, used)} if it is the decimal mark"
               if choices[0][1] is not None else
               f"{fix} if {choices[0][0]!r} is the decimal mark, {_setting(other, used)} if it separates thousands")
    raise UserError(f"{what}: column(s) {', '.join(columns)} of {path} hold numbers written with "
                    f"{_written(choices[0])} (e.g. {example!r}), which would be read as text categories: set {fix} "
                    "(text on purpose: declare them in dataset.categorical_columns)")


def _candidates(used: Convention) -> list[Convention]:
    """Ways of writing numbers other than ``used``, those with ``used``'s decimal mark first."""
    marks = sorted((".", ","), key=lambda mark: mark != used[0])
    return [(mark, thousands) for mark in marks for thousands in _THOUSANDS
            if thousands != mark and (mark, thousands) != used]


def _conventions(column: pd.Series, used: Convention) -> list[Convention]:
    """The conventions (in ``_candidates`` order) in which every value of a text ``column`` is a number (none for
    a column of plain numbers in ``used``'s decimal mark: such a column is text because of other values)."""
    if not (column.dtype == object or pd.api.types.is_string_dtype(column.dtype)):
        return []
    values = column.dropna().astype(str).str.strip()
    if values.empty or not values.str.fullmatch(_NUMBER_LIKE).all():  # one pass rules out text columns
        return []
    if values.str.fullmatch(_pattern((used[0], None))).all():
        return []
    return [c for c in _candidates(used) if values.str.fullmatch(_pattern(c)).all()]


def _pattern(convention: Convention) -> str:
    """A number written with ``convention``'s decimal mark and thousands separator (None: none)."""
    decimal, thousands = (re.escape(c) if c else c for c in convention)
    digits = r"\d+" if thousands is None else rf"(\d{{1,3}}({thousands}\d{{3}})+|\d+)"
    return rf"[+-]?{digits}({decimal}\d+)?([eE][+-]?\d+)?"


def _setting(convention: Convention, used: Convention) -> str:
    """The options that read ``convention`` (only those that differ from ``used``)."""
    parts = []
    if convention[0] != used[0]:
        parts.append(f"\"dataset.decimal='{convention[0]}'\"")
    if convention[1] != used[1]:
        parts.append(f"\"dataset.thousands='{convention[1]}'\"" if convention[1] is not None else
                     "\"dataset.thousands=null\"")
    return " ".join(parts)


def _written(convention: Convention) -> str:
    mark = "a decimal comma" if convention[0] == "," else "a decimal point"
    return mark if convention[1] is None else f"{mark} and {_THOUSANDS[convention[1]]} between thousands"


def _shown(separator: str) -> str:
    return _SHOWN.get(separator, separator)
