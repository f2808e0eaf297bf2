"""A finished summary handed out a piece at a time (``SummaryPieces``), with the labels that compare methods
across the whole table (competitor labels, control roles) and the column-at-a-time concatenation of its pieces."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pandas as pd

from xaibench.results.aggregate.columns import ORDER
from xaibench.results.aggregate.temp_frames import TempFrames
from xaibench.results.groups import competitor_labels
from xaibench.results.roles import row_roles
from xaibench.results.row_columns import RowColumns


class SummaryPieces:
    """A finished summary waiting in temporary files, its rows handed out a part (up to ``summarizer.MERGE`` chunks'
    configurations) at a time with their CIs, competitor labels and ranks: what ``Summarizer.result`` returns is
    ``frame()``, the concatenation of ``pieces()``. Writing (``collect.write_pieces``) and printing
    (``console.summary_blocks``) go piece by piece, so a large summary (120,000 rows at 10,000 cells) is never
    held whole; its CIs and ranks wait in ``RowColumns`` (a temporary file) and are read a piece's rows at a time.
    ``close()`` deletes the files."""

    def __init__(self, parts: TempFrames, columns: RowColumns, competitors: dict[tuple[str, str], str],
                 roles: dict[tuple[str, str], str] | None = None) -> None:
        self.parts, self.columns_file, self.competitors = parts, columns, competitors
        self.roles = roles or {}  # (method, method_params) -> "control" or "" (results/roles.py)
        self.n_rows = columns.n_rows
        self.columns = list(ORDER)  # each piece's columns

    def pieces(self) -> Iterator[pd.DataFrame]:
        """The summary's rows in order, a part at a time (each a frame with the summary's columns)."""
        offset = 0
        for part in self.parts.frames():
            stop = offset + len(part)
            part["ci_low"] = self.columns_file.read("ci_low", offset, stop)
            part["ci_high"] = self.columns_file.read("ci_high", offset, stop)
            part["competitor"] = _of_pairs(part, self.competitors, competitor_labels)
            part["rank"] = pd.Series(self.columns_file.read("rank", offset, stop), index=part.index).astype("Int64")
            part["shared_mean"] = self.columns_file.read("shared_mean", offset, stop)
            part["role"] = _of_pairs(part, self.roles, row_roles)
            offset = stop
            yield part[ORDER]

    def frame(self, columns: Iterable[str] | None = None) -> pd.DataFrame:
        """The whole summary (empty frame when it has no rows), or only its ``columns`` (those it has, in the
        summary's order): the W&B sweep run's statistics and figures read a few columns of every row."""
        kept = None if columns is None else set(columns)
        pieces = [part if kept is None else part[[c for c in part.columns if c in kept]].copy()
                  for part in self.pieces()]  # each whole part goes once its columns are taken
        if not pieces:
            return pd.DataFrame()
        return pieces[0] if len(pieces) == 1 else concat_releasing(pieces)

    def close(self) -> None:
        """Delete the temporary files (the pieces are gone)."""
        self.parts.close()
        self.columns_file.close()


def competitor_map(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """``competitor_labels`` of every distinct (method, method_params) of the summary (labels depend on all of a
    method's parameter sets in the table)."""
    if not pairs:
        return {}
    frame = pd.DataFrame(sorted(pairs), columns=["method", "method_params"])
    return dict(zip(frame.itertuples(index=False, name=None), competitor_labels(frame)))


def _of_pairs(part: pd.DataFrame, values: dict[tuple[str, str], str],
              of_rows: Callable[[pd.DataFrame], pd.Series]) -> pd.Series:
    """The part's rows' ``values`` (computed over the whole summary's (method, method_params) pairs: competitor
    labels and roles depend on every pair of the table), or ``of_rows(part)`` where it has no ``method_params``."""
    if "method_params" not in part.columns:
        return of_rows(part)
    keys = pd.MultiIndex.from_frame(part[["method", "method_params"]].astype(str))
    return pd.Series(keys.map(values), index=part.index, dtype="string")


def concat_releasing(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """``pd.concat(parts, ignore_index=True)`` of frames with the same columns, made a column at a time while the
    parts let go of it, so that the summary is not held twice (its parts and the whole: 160 MB at 10,000 cells).
    The parts are emptied."""
    columns = parts[0].columns
    whole = pd.concat([part.iloc[:, :0] for part in parts], ignore_index=True)  # the index and column index
    for column in columns:
        whole[column] = pd.concat([part[column] for part in parts], ignore_index=True)
        for part in parts:
            del part[column]
    whole.columns = columns  # pd.concat's column index (its dtype too)
    return whole
