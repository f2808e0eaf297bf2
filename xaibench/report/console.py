"""Readable plain-text tables for the terminal."""
from __future__ import annotations

import functools
import math
from collections import namedtuple
from collections.abc import Iterable, Iterator
from itertools import repeat

import numpy as np
import pandas as pd

from xaibench.results.groups import variant_text


MAX_WIDE = 6  # more metrics than this print one line per metric instead of one column each
TALL_ROWS = 5_000  # a longer one-line-per-metric table is formatted in blocks (``_tall_text``)
_Cell = namedtuple("_Cell", ["status", "n", "mean", "ci_low", "ci_high", "rank", "nan_rate", "n_seeds", "error_rate",
                             "role", "message"])
_OPTIONAL = {"n_seeds": 1, "error_rate": 0.0, "role": "", "message": ""}  # columns an older summary may lack
NO_REASON = "no reason recorded"


def format_summary(summary: pd.DataFrame) -> str:
    """One line per (dataset, model, method); one column per metric with ``mean [ci_low, ci_high]`` and rank.

    Datasets and models show their display names; each model shows its test accuracy and ``UNDERFIT`` when
    flagged; metrics on which a control (a reference row, not ranked) scores as well as the best method or better get
    a warning line below the table.
    """
    return "\n".join(summary_blocks(summary))


def summary_blocks(summary: pd.DataFrame) -> Iterator[str]:
    """``format_summary``'s text in consecutive pieces (joined by newlines they are the text), so that a large
    summary is printed without holding all of its text twice (``print`` each block)."""
    if not isinstance(summary, pd.DataFrame):  # aggregate.SummaryPieces: formatted piece by piece (memory)
        yield from _piece_blocks(summary)
        return
    if summary.empty:
        yield "(no results)"
        return
    from xaibench.results.statistics import control_warnings

    notes = Notes()  # numbered by _format_table as it lays the cells out (first appearance)
    yield from _format_table(summary, notes)
    yield from notes.lines()
    legend = legend_line(summary)
    yield from [legend] if legend else []
    yield from control_warnings(summary) if "competitor" in summary else []


def legend_line(summary: pd.DataFrame) -> str:
    """What a cell's numbers are and over how many samples (``n``: distinct sample ids, a sample scored in several
    seeds counts once) and seeds; empty when no cell has a mean."""
    return _legend_text(_legend_facts(summary))


def _legend_facts(summary: pd.DataFrame) -> tuple[int, int, int, bool, bool, bool, bool] | None:
    """(fewest, most samples per cell, most seeds, whether any cell errored in some seeds, whether any scored NaN on
    some samples, whether any is a control's, whether any is a method's: ranked) of the scored cells."""
    scored = summary[summary["mean"].notna()] if "mean" in summary else summary.iloc[:0]
    if scored.empty or "n" not in scored:
        return None
    seeds = int(scored["n_seeds"].max()) if "n_seeds" in scored else 1
    errors = bool((scored["error_rate"] > 0).any()) if "error_rate" in scored else False
    nan = bool((scored["nan_rate"] > 0).any()) if "nan_rate" in scored else False
    from xaibench.results.roles import summary_controls

    names = scored["competitor"] if "competitor" in scored else scored["method"]
    control = names.astype(str).isin(summary_controls(scored))
    return (int(scored["n"].min()), int(scored["n"].max()), seeds, errors, nan, bool(control.any()),
            bool((~control).any()))


def _legend_text(facts: tuple[int, int, int, bool, bool, bool, bool] | None) -> str:
    if facts is None:
        return ""
    low, high, seeds, errors, nan, controls, methods = facts
    ref = "; ref: a control, a reference not ranked" if controls else ""  # only where a ref is shown
    what = f"#rank (1 = best method{ref})" if methods else "ref (a control, a reference not ranked)"
    text = (f"mean [95% bootstrap CI] {what}; "
            f"n = {low if low == high else f'{low}-{high}'} samples per cell")
    if seeds > 1:
        text += ", seeds=k: mean over k seeds (a sample scored in several seeds counts once in n and the CI)"
    if errors:
        text += "; errors=x%: share of seeds whose cell errored (the mean is over the others)"
    if nan or errors:  # the means skip what the ranks leave out of every method (aggregate.summarize's rank)
        text += ("\n#rank compares a column's methods on the samples all of them scored, as `xaibench report`: "
                 "a mean skips its method's NaN scores and errored seeds, so a rank may not follow the means shown")
    return text


def model_text(label: str, accuracy: float, flag: str) -> str:
    """``mlp (acc 0.97)``, ``cnn (acc 0.10, UNDERFIT)``; the bare label when the accuracy is unknown."""
    if accuracy is None or (isinstance(accuracy, float) and math.isnan(accuracy)):
        return f"{label} (UNDERFIT)" if flag == "underfit" else label
    return f"{label} (acc {accuracy:.2f}{', UNDERFIT' if flag == 'underfit' else ''})"


def cell_reason(row) -> str | None:
    """The note a printed cell (a ``_Cell``) refers to: the reason (``reason_text`` of the row's ``message``) of a
    cell without a score (``nan``, ``n/a``, ``ERROR``), or of one scored on some samples only (``nan=25%``: NaN on
    the others; ``errors=50%``: errored in some seeds); None for a cell that scored everything.

    A summary row keeps one message, its first row that is not ok: a cell both NaN on some samples and errored in
    some seeds names one of the two causes."""
    if _unscored(row) or row.nan_rate > 0 or row.error_rate > 0:
        return reason_text(row.message if isinstance(row.message, str) else "")
    return None


def _unscored(row) -> bool:
    return row.status == "not_applicable" or (row.status == "error" and row.n == 0) or math.isnan(row.mean)


@functools.lru_cache(maxsize=4096)  # called once per unscored cell: a sweep's n/a cells share a few messages
def reason_text(message: str, limit: int = 160) -> str:
    """A row's message as a note shows it: its first line, ``limit`` characters at most (cut at a word, as the
    report's table notes cut it, ``tables.layouts._first_line``); ``no reason recorded`` when empty."""
    from xaibench.report.tables.layouts import _first_line

    line = _first_line(pd.Series({"message": message}), limit)
    return line[2:] if line else NO_REASON


class Notes:
    """The notes under the table: each reason a printed cell refers to (``cell_reason``) and its number, 1, 2, ... in
    the order the reasons first come in the printed table (read row by row: ``(1)`` is the highest note, whichever
    way the summary is formatted, whole or in pieces)."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}
        self.partial = False  # some note is a scored cell's (``nan=25%``, ``errors=50%``)

    def number(self, rows: Iterable) -> None:
        """Number the reasons of ``rows`` (``_Cell``s, in the printed order) not numbered yet."""
        for row in rows:
            reason = cell_reason(row)
            if reason is not None:
                self.numbers.setdefault(reason, len(self.numbers) + 1)
                self.partial = self.partial or not _unscored(row)

    def lines(self) -> list[str]:
        """``why a cell has no score:`` and one line per note (the report's tables give the same reasons in their
        footnotes)."""
        if not self.numbers:
            return []
        heading = "why a cell has no score" + (", or none on some samples or seeds" if self.partial else "")
        return [f"{heading}:"] + [f"  ({k}) {reason}" for reason, k in self.numbers.items()]


def _format_table(summary: pd.DataFrame, notes: Notes) -> Iterator[str]:
    from xaibench.results.statistics import metric_order

    frame = summary.copy()
    arrows = {m: ("↑" if hib else "↓") for m, hib in zip(frame["metric"], frame["higher_is_better"])}
    frame["dataset"] = frame.get("dataset_label", frame["dataset"])
    if "model_accuracy" in frame:
        labels = frame.get("model_label", frame["model"])
        accuracy, flag = _known_accuracy(frame["dataset"], labels, frame["model_accuracy"], frame["model_flag"])
        frame["model"] = [model_text(*v) for v in zip(labels, accuracy, flag)]
    frame["method"] = _method_names(frame)
    key = _controls_last_key(_control_names(frame))
    index = ["dataset", "model", "method"]
    if "variant" in frame and (frame["variant"] != "").any():
        index.append("variant")
        frame["variant"] = frame["variant"].fillna("").astype(str).map(variant_text)  # [n_samples=8]: the run's
    if frame["metric"].nunique() > MAX_WIDE:  # e.g. metrics=full: one line per metric stays readable
        frame["metric"] = [f"{m} {arrows[m]}" for m in frame["metric"]]
        tall = frame.sort_values(index + ["family", "metric"], key=key, ignore_index=True)
        del frame
        notes.number(_cells(tall, np.flatnonzero(_noted(tall))))  # in the printed order
        cells = pd.Series([_cell_text(row, notes) for row in _cells(tall)], dtype=object,
                          index=tall.set_index(index + ["family", "metric"]).index)
        del tall
        yield from _tall_blocks(cells.rename("mean [95% CI] #rank").to_frame())
        return
    frame["position"] = np.arange(len(frame))  # the row a printed cell shows
    wide = frame.pivot_table(index=index, columns="metric", values="position", aggfunc="first")
    wide = wide.sort_index(key=key)  # controls after the methods, as in the report
    wide = wide[metric_order(frame)]  # metrics by family, then name, as the report's tables (not alphabetical)
    wide.columns = [f"{m} {arrows[m]}" for m in wide.columns]
    positions = wide.to_numpy().ravel()  # row by row, left to right, as the table reads; NaN: no such cell
    shown = ~np.isnan(positions)
    printed = positions[shown].astype(np.int64)
    notes.number(_cells(frame, printed[_noted(frame)[printed]]))
    text = np.full(positions.shape, "-", dtype=object)
    text[shown] = [_cell_text(row, notes) for row in _cells(frame, printed)]
    yield pd.DataFrame(text.reshape(wide.shape), index=wide.index, columns=wide.columns).to_string()


def _cells(frame: pd.DataFrame, positions: Iterable[int] | None = None) -> Iterator[_Cell]:
    """The summary's rows at ``positions`` (default: all, in order) as ``_Cell``s, what a printed cell shows, one
    at a time; an older summary's missing optional columns take their defaults (``_OPTIONAL``)."""
    values = [frame[c].to_numpy(dtype=object) if c in frame or c not in _OPTIONAL else None for c in _Cell._fields]
    fields = [(column, _OPTIONAL.get(name)) for name, column in zip(_Cell._fields, values)]
    for p in range(len(frame)) if positions is None else positions:
        yield _Cell._make(default if column is None else column[p] for column, default in fields)


def _noted(frame: pd.DataFrame) -> np.ndarray:
    """Which rows' cells refer to a note (``cell_reason`` is not None): without a score, or scored on some samples
    or seeds only."""
    status = frame["status"].astype(str)
    noted = (status.eq("not_applicable") | (status.eq("error") & frame["n"].eq(0)) | frame["mean"].isna()
             ).to_numpy(dtype=bool, copy=True)
    for column in ("nan_rate", "error_rate"):
        if column in frame:
            noted |= frame[column].gt(0).to_numpy(dtype=bool)
    return noted


def _known_accuracy(datasets: pd.Series, labels: pd.Series, accuracy: pd.Series,
                    flag: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Each row's model accuracy and flag, a missing one taken from the rows of the same shown model and dataset
    where they give exactly one: a method skipped as not applicable (``sobel`` on a table) never loads the model,
    and its row would otherwise print as a second, bare model line above ``mlp (acc 0.96)``."""
    keys = pd.MultiIndex.from_arrays([datasets.astype(str), labels.astype(str)])
    known = pd.DataFrame({"accuracy": accuracy.to_numpy(dtype=float), "flag": flag.astype(str).to_numpy()},
                         index=keys)
    known = known[known["accuracy"].notna()].drop_duplicates()
    known = known[~known.index.duplicated(keep=False)]  # several values (seeds, variants): leave the row as it is
    missing = accuracy.isna().to_numpy() & keys.isin(known.index)
    if not missing.any():
        return accuracy, flag
    filled = known.reindex(keys[missing])
    accuracy, flag = accuracy.to_numpy(dtype=float).copy(), flag.astype(object).to_numpy().copy()
    accuracy[missing], flag[missing] = filled["accuracy"].to_numpy(), filled["flag"].to_numpy()
    return pd.Series(accuracy), pd.Series(flag)


def _cell_text(row, notes: Notes) -> str:
    """``mean [ci_low, ci_high] #rank`` and its flags; a cell without a score reads ``n/a``, ``ERROR`` or ``nan``
    followed by the number of the note that says why (``nan (1)``; ``Notes``), and a cell NaN on some samples or
    errored in some seeds has that note after its ``nan=25%`` / ``errors=50%``."""
    if _unscored(row):
        word = "n/a" if row.status == "not_applicable" else "ERROR" if row.status == "error" and row.n == 0 else "nan"
        return f"{word} ({notes.numbers[cell_reason(row)]})"
    mean, low, high = number_texts(row.mean, row.ci_low, row.ci_high)
    interval = f"[no CI: n={row.n}]" if math.isnan(row.ci_low) else f"[{low}, {high}]"
    text = f"{mean} {interval} {_rank_text(row)}"
    if row.nan_rate > 0:
        text += f" nan={row.nan_rate:.0%}"
    if row.error_rate > 0:  # some seeds' cells errored: the mean is over the others
        text += f" errors={row.error_rate:.0%}"
    if row.nan_rate > 0 or row.error_rate > 0:
        text += f" ({notes.numbers[cell_reason(row)]})"
    if row.n_seeds > 1:
        text += f" seeds={row.n_seeds}"
    return text


def _rank_text(row) -> str:
    """``#2``; ``ref`` for a control (a reference row, never ranked: the best is the best method); ``#-`` for a
    method the shared samples leave unranked."""
    if str(row.role) == "control":
        return "ref"
    return "#-" if pd.isna(row.rank) else f"#{row.rank}"


def number_texts(*values: float) -> list[str]:
    """Three decimals (``0.412``), or three significant digits for all ``values`` when every finite one is below
    0.01 in magnitude and one is nonzero (``0.000123``, ``2.5e-06``): small scores such as a squared error stay
    readable instead of printing as ``0.000``."""
    finite = [abs(v) for v in values if not math.isnan(v) and not math.isinf(v)]
    small = bool(finite) and max(finite) < 0.01 and max(finite) > 0
    return [_unsigned_zero(f"{v:.3g}" if small else f"{v:.3f}") for v in values]


def _unsigned_zero(text: str) -> str:
    """``-0.000`` (a negative zero, or a tiny negative value rounded away) reads as a sign that is not there."""
    return text[1:] if text.startswith("-") and text.strip("-0.") == "" else text


def _tall_blocks(frame: pd.DataFrame) -> Iterator[str]:
    """``frame.to_string()`` of a one-column frame on a string MultiIndex (joined by newlines), made a block of
    first-level values at a time when it has more than ``TALL_ROWS`` rows (pandas holds about 1.6 KB per row while formatting: 190 MB
    for the 120,000 lines of a 10,000-cell sweep). Each block gets the whole frame's widths through its header
    (the level names padded to their level's width) and its values (padded to the column's), and every block but
    the first drops its two header lines; a block starts where the first level changes, so the blanked repeats of
    a level are the same too. The text is the whole frame's (tested)."""
    index = frame.index
    levels = [index.get_level_values(i) for i in range(index.nlevels)]
    if len(frame) <= TALL_ROWS or not all(pd.api.types.is_string_dtype(level) and not level.hasnans
                                          for level in levels) or None in index.names:
        yield frame.to_string()
        return
    names = [name.ljust(max(len(name), int(level.str.len().max()))) for name, level in zip(index.names, levels)]
    values = frame.iloc[:, 0].astype(str)
    width = max(len(str(frame.columns[0])), int(values.str.len().max()))
    first = levels[0].to_numpy()
    starts = np.flatnonzero(np.r_[True, first[1:] != first[:-1]])
    start = 0
    for stop in [*starts[1:], len(frame)]:  # blocks of whole first-level runs, about TALL_ROWS rows each
        if stop - start >= TALL_ROWS or stop == len(frame):
            block = values.iloc[start:stop].str.rjust(width).to_frame(frame.columns[0])
            text = block.rename_axis(names).to_string()
            yield text if start == 0 else text.split("\n", 2)[2]
            start = stop


_TALL_LEVELS = ["dataset", "model", "method", "variant", "family", "metric"]


def _piece_blocks(pieces) -> Iterator[str]:
    """``summary_blocks`` of a summary handed out in pieces (``aggregate.SummaryPieces``), without the whole
    summary or its text: a one-line-per-metric summary of more than ``TALL_ROWS`` lines is sorted and formatted
    a dataset at a time (each dataset's lines go to a temporary file on a first pass, with the widths of the
    whole table), which gives ``_tall_blocks``' text of the whole table; anything else is formatted whole."""
    from xaibench.results.statistics import control_warnings

    if pieces.n_rows <= TALL_ROWS:  # small: formatted whole, as before
        yield from summary_blocks(pieces.frame())
        return
    metrics, arrows, variant, controls, strings, facts, control_names = set(), {}, False, [], True, [], set()
    noted = _FirstNotes()  # each note's first cells (per method and variant), not every noted cell
    for number, piece in enumerate(pieces.pieces()):  # pass 1: what the layout, the notes and the legend depend on
        facts.append(_legend_facts(piece))
        noted.add(piece, number)
        metrics.update(piece["metric"])
        arrows.update({m: ("↑" if hib else "↓") for m, hib in zip(piece["metric"], piece["higher_is_better"])})
        variant = variant or bool((piece["variant"] != "").any())
        may_win = piece["rank"].eq(1).fillna(False) | piece["role"].astype(str).eq("control")  # controls vs bests
        controls.append(piece.loc[may_win.to_numpy(dtype=bool), [c for c in WARNING_COLUMNS if c in piece]])
        strings = strings and not piece[["dataset_label", "method", "variant", "family", "metric"]].isna().any().any()
        control_names |= _control_names(piece)
    if len(metrics) <= MAX_WIDE or not strings:  # a wide layout, or levels _tall_blocks formats whole
        yield from summary_blocks(pieces.frame())
        return
    levels = _TALL_LEVELS if variant else [c for c in _TALL_LEVELS if c != "variant"]
    notes = noted.notes(levels, control_names)  # numbered in the printed order, as pass 3 prints the rows
    del noted
    buckets = _DatasetBuckets()
    for piece in pieces.pieces():  # pass 2: the printed rows, by dataset, and the widths
        buckets.add(_tall_rows(piece, arrows, levels, notes))
    names = [name.ljust(width) for name, width in zip(levels, buckets.widths[:-1])]
    header = "mean [95% CI] #rank"
    width = max(len(header), buckets.widths[-1])
    for first, rows in enumerate(buckets.datasets()):  # pass 3: a dataset at a time, in the table's order
        tall = rows.sort_values(levels, key=_controls_last_key(control_names)).set_index(levels)["cell"]
        text = tall.str.rjust(width).to_frame(header).rename_axis(names).to_string()
        yield text if first == 0 else text.split("\n", 2)[2]
    buckets.close()
    yield from notes.lines()
    facts = [f for f in facts if f is not None]
    if facts:
        low, high, seeds, errors, nan, has_controls, has_methods = zip(*facts)
        yield _legend_text((min(low), max(high), max(seeds), any(errors), any(nan), any(has_controls),
                            any(has_methods)))
    yield from control_warnings(pd.concat(controls, ignore_index=True))


def _tall_rows(piece: pd.DataFrame, arrows: dict[str, str], levels: list[str], notes: Notes) -> pd.DataFrame:
    """The printed columns of a piece of the summary (as ``_format_table`` makes them): levels, then ``cell``."""
    frame = _tall_levels(piece, arrows, levels)
    frame["cell"] = pd.Series([_cell_text(row, notes) for row in _cells(piece)], index=piece.index, dtype=str)
    return frame


def _tall_levels(piece: pd.DataFrame, arrows: dict[str, str], levels: list[str]) -> pd.DataFrame:
    """The printed index levels of a piece of the summary's one-line-per-metric layout, as text."""
    models = [model_text(*v) for v in zip(piece["model_label"], piece["model_accuracy"], piece["model_flag"])]
    columns = {"dataset": piece["dataset_label"], "model": models, "method": _method_names(piece),
               "variant": piece["variant"].fillna("").astype(str).map(variant_text), "family": piece["family"],
               "metric": [f"{m} {arrows[m]}" for m in piece["metric"]]}
    frame = pd.DataFrame({level: columns[level] for level in levels}, index=piece.index)
    frame[levels] = frame[levels].astype(str)
    return frame


# What ``control_warnings`` reads of the rank-1 and control rows (statistics/controls.py: ``nothing_to_rank``,
# ``control_first``, ``ranks.ranked_mean``): the streamed print keeps only these of them through its passes.
WARNING_COLUMNS = ["comparison", "dataset_label", "model_label", "metric", "family", "competitor", "method", "role",
                   "mean", "shared_mean", "higher_is_better", "rank"]


class _FirstNotes:
    """What numbering the notes needs of a summary handed out in pieces, kept small: for each note's reason
    (``cell_reason``) and each printed method and variant, only the noted cell that prints first (its printed
    ``_TALL_LEVELS`` and its place in the pieces, which breaks ties as the stable sort of every noted cell did),
    and whether some note is a scored cell's. Within one method and variant the controls-last order of the method
    (known only once every piece is read) and the ``variant`` level (printed or not) change no comparison, so
    the first cell of each such group is all the final sort needs: about reasons x methods rows, not one per
    noted cell (43,840 rows, 12 MB at 10,000 cells)."""

    def __init__(self) -> None:
        self.first: pd.DataFrame | None = None  # the first noted cells kept so far
        self.partial = False

    def add(self, piece: pd.DataFrame, number: int) -> None:
        """Keep the first noted cells of ``piece`` (the ``number``-th piece) and of the cells kept before."""
        noted = np.flatnonzero(_noted(piece))
        if not len(noted):
            return
        part = piece.iloc[noted]
        arrows = {m: ("↑" if hib else "↓") for m, hib in zip(part["metric"], part["higher_is_better"])}
        frame = _tall_levels(part, arrows, _TALL_LEVELS).reset_index(drop=True)
        cells = list(_cells(piece, noted))
        frame["reason"] = [cell_reason(cell) for cell in cells]
        self.partial = self.partial or not all(_unscored(cell) for cell in cells)
        frame["piece"], frame["order"] = number, np.arange(len(frame))
        self.first = self._firsts(pd.concat([self.first, frame], ignore_index=True) if self.first is not None
                                  else frame)

    @staticmethod
    def _firsts(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.sort_values([*_TALL_LEVELS, "piece", "order"], kind="stable")
        return frame.drop_duplicates(["reason", "method", "variant"]).reset_index(drop=True)

    def notes(self, levels: list[str], control_names: set[str]) -> Notes:
        """The ``Notes`` numbered as the printed table (``levels``, controls last) first refers to each reason."""
        notes = Notes()
        if self.first is not None:
            first = self.first.sort_values([*levels, "piece", "order"], key=_controls_last_key(control_names))
            for reason in first["reason"].dropna():
                notes.numbers.setdefault(reason, len(notes.numbers) + 1)
        notes.partial = self.partial
        return notes


def _control_names(frame: pd.DataFrame) -> set[str]:
    """The printed method names (:func:`_method_names`) of the summary's controls (by role, ``results/roles.py``)."""
    from xaibench.results.roles import summary_controls

    names = _method_names(frame).astype(str)
    labels = frame["competitor"] if "competitor" in frame else frame["method"]
    return set(names[labels.astype(str).isin(summary_controls(frame)).to_numpy(dtype=bool)])


def _controls_last_key(controls: set[str]):
    """A ``sort_values``/``sort_index`` key that sorts the ``method`` column (or index level) alphabetically with
    the controls last, as every report table and figure legend orders them (``roles.controls_last``); the console
    listed ``constant`` first and ``random`` among the methods. Other columns sort as they are."""
    def key(values):  # a Series (sort_values) or an Index level (sort_index); map keeps the kind and the name
        return values.map(lambda v: f"{int(str(v) in controls)}{v}") if values.name == "method" else values
    return key


def _method_names(frame: pd.DataFrame) -> pd.Series:
    """The method column as printed: the competitor label (``saliency (abs=False)`` for ``variant/gradient``)
    where no ``variant`` column names its parameters already, else the method's name."""
    if "competitor" not in frame:
        return frame["method"]
    variant = frame["variant"].fillna("").astype(str) if "variant" in frame else pd.Series("", index=frame.index)
    return frame["competitor"].astype(str).where(variant == "", frame["method"].astype(str))


class _DatasetBuckets:
    """Printed rows put aside by dataset in an anonymous temporary file, and each column's widest text."""

    def __init__(self) -> None:
        import tempfile

        self.file = tempfile.TemporaryFile(prefix="xaibench-console-")
        self.where: dict[str, list[int]] = {}  # dataset -> byte offsets of its rows' frames
        self.widths: list[int] = []

    def add(self, rows: pd.DataFrame) -> None:
        import pickle

        widths = [int(rows[c].str.len().max()) for c in rows.columns]
        self.widths = [max(w) for w in zip(self.widths, widths)] if self.widths else widths
        self.widths[:-1] = [max(w, len(c)) for w, c in zip(self.widths[:-1], rows.columns[:-1])]
        for dataset, group in rows.groupby("dataset", sort=False):
            self.file.seek(0, 2)
            self.where.setdefault(str(dataset), []).append(self.file.tell())
            pickle.dump(group, self.file, protocol=pickle.HIGHEST_PROTOCOL)

    def datasets(self) -> Iterator[pd.DataFrame]:
        """Each dataset's rows (in the summary's order), datasets in sorted order."""
        import pickle

        for dataset in sorted(self.where):
            frames = []
            for offset in self.where[dataset]:
                self.file.seek(offset)
                frames.append(pickle.load(self.file))
            yield pd.concat(frames)

    def close(self) -> None:
        self.file.close()
