"""``xaibench report``: paper tables (Markdown, LaTeX, HTML), statistics and CSVs from a results table."""
from __future__ import annotations

import argparse
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from xaibench.results.sweep_store import sweep_store

DESCRIPTION = ("Write the tables, statistics and figures of a results table (Markdown, LaTeX booktabs, "
               "self-contained HTML, CSV; figures as PNG and PDF). Reads the table (and, for the attribution "
               "galleries, the stored explanations); never recomputes a score.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="a results table (.parquet/.csv) or a sweep folder")
    parser.add_argument("--out", help="output folder (default: <sweep folder>/report, or report/ beside the table)")
    parser.add_argument("--format", default="md,latex,html,csv",
                        help="comma-separated formats among md, latex, html, csv (default: all)")
    parser.add_argument("--layout", default="metrics,datasets,families",
                        help="comma-separated table layouts among metrics (methods x metrics per model and "
                             "dataset), datasets (methods x datasets per metric), families (average rank per "
                             "metric family); default: all")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level of the tests (default 0.05)")
    parser.add_argument("--store", help="the sweep's store, for the attribution galleries, counterfactuals and "
                                        "surrogate rules (default: the store_dir the sweep ran with, else "
                                        "$XAIBENCH_STORE or results/store)")
    parser.add_argument("--no-figures", action="store_true", help="tables and statistics only (no figures)")


def run(args: argparse.Namespace) -> int:
    from xaibench.report.build import FORMATS, analyse, write_report
    from xaibench.report.tables import LAYOUTS
    from xaibench.results.collect import load_table

    started = time.perf_counter()
    formats = _choices(args.format, FORMATS, "--format")
    layouts = _choices(args.layout, LAYOUTS, "--layout")
    if not 0 < args.alpha < 1:
        from xaibench.errors import UserError
        raise UserError(f"--alpha must lie between 0 and 1, not {args.alpha}")
    _refuse_file_as_store(args.store)
    table = _load(load_table, args.table)
    out = Path(args.out) if args.out else _default_out(Path(args.table))
    if out.exists() and not out.is_dir():
        from xaibench.errors import UserError
        raise UserError(f"--out {out} is a file; give a folder for the report")
    from xaibench.results.manifest import check_writable

    check_writable(out, "--out")  # before the analysis and figures (it failed after them, below their notes)
    _refuse_writing_over(Path(args.table), out)
    analysis = analyse(table, layouts=layouts, alpha=args.alpha, source=args.table)
    store = args.store or sweep_store(Path(args.table))
    with _writing(out):
        figures = [] if args.no_figures else _figures(table, analysis, out, store)
        written = write_report(analysis, out, formats=formats, figures=figures)
        written += [out / "figures" / f"{f.key}.{ext}" for f in figures for ext in ("png", "pdf")]
        if not args.no_figures:
            _remove_stale_figures(out, written)
    for path in written:
        print(path)
    print(f"report: {len(written)} files in {out} ({time.perf_counter() - started:.1f} s)")
    return 0


def _refuse_file_as_store(store: str | None) -> None:
    """``report ... --store <a file>`` or ``--store <a mistyped folder>`` drew the report with a note per gallery
    that its explanations "are not in the store": a store named on the command line must be a folder (without
    ``--store``, a sweep whose store is gone is still reported, the galleries saying what is missing)."""
    from xaibench.results.folder_paths import file_in_the_way, missing_folder

    if store and (file_in_the_way(store) is not None or not Path(store).is_dir()):
        from xaibench.errors import UserError

        raise UserError(f"{missing_folder(store, '--store', 'store folder')}; give the store_dir the sweep ran with"
                        f"{'' if file_in_the_way(store) is not None else ', or leave --store out'}")


# Every file name a report may write in --out (report/build.py write_report; a test checks the list)
REPORT_FILES = ("report.md", "appendix_pairwise.md", "tables.tex", "appendix_pairwise.tex", "figures.tex",
                "report.html",
                *(f"{name}.csv" for name in ("summary", "pairwise_tests", "versus_best", "control_checks",
                                             "average_ranks", "friedman", "friedman_ranks", "nemenyi",
                                             "metric_agreement", "metric_agreement_by_family")))


def _refuse_writing_over(table: Path, out: Path) -> None:
    """``report summary.csv --out .``: the report's own ``summary.csv`` replaced the results table it read."""
    import os

    from xaibench.commands.outputs import table_file
    from xaibench.errors import UserError

    source = table_file(table)
    if source.name in REPORT_FILES and os.path.realpath(out / source.name) == os.path.realpath(source):
        raise UserError(f"--out {out}: the report writes its own {source.name} there, which would replace the "
                        f"results table {table} it reads; choose another --out folder")


def _figures(table, analysis, out: Path, store: str | None) -> list:
    """The report's figures (PNG + PDF under ``out/figures``), built from the table, the analysis and the store."""
    import os
    import sys

    from xaibench.report.figure_set import analysed_figures, write_figures

    notes: list[str] = []
    figures = analysed_figures(table, analysis, store or os.environ.get("XAIBENCH_STORE", "results/store"), notes)
    for note in notes:
        print(f"report: note: {note}", file=sys.stderr)
    return write_figures(figures, out, analysis.summary)


REPORT_LOCK = ".report.lock"  # in <out>: held by the report writing there
# A temp file of atomic_writer (engine/store.py): "." + the file's name + "." + mkstemp's 8 characters + ".tmp"
_TEMP_FILE = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


@contextmanager
def _writing(out: Path) -> Iterator[None]:
    """Hold ``out``'s report lock while the report is written there, and first remove the temp files a killed
    report left (``.report.md.k3j4h5q2.tmp``: each file is written to one, then renamed; ``kill -9`` keeps it).
    Only the holder of the lock writes in ``out``, so no temp file there is being written. A second report into
    the same folder meanwhile is refused (one line, exit 2) instead of interleaving its files with the first's."""
    from contextlib import ExitStack

    from xaibench.engine.locks import LockHeld, file_lock
    from xaibench.engine.store import remove_if_dead
    from xaibench.errors import StorageError, UserError

    with ExitStack() as held:
        try:
            held.enter_context(file_lock(out / REPORT_LOCK, blocking=False))
        except LockHeld:
            raise UserError(f"another xaibench report is writing in {out}; wait for it to end or choose another "
                            "--out") from None
        except OSError as error:  # the lock file cannot be made (a full disk): not the user's input
            raise StorageError.from_os_error(error, out / REPORT_LOCK) from None
        for folder in (out, out / "figures"):
            for temp in sorted(folder.glob(".*.tmp")) if folder.is_dir() else ():
                if _TEMP_FILE.fullmatch(temp.name) and temp.is_file():
                    remove_if_dead(temp)  # not the temp file of a live `summary ... -o <out>/s.md`
        yield


FIGURE_LIST = ".xaibench-figures"  # in <out>/figures: the names of the figure files the last report wrote there


def _remove_stale_figures(out: Path, written: list[Path]) -> list[Path]:
    """Delete the figure files an earlier report wrote in ``out/figures`` that this one did not, and record this
    report's. A rerun after the sweep changed (a CD diagram whose Friedman test no longer rejects, a dropped
    method's gallery) left the old figure beside a note saying it was not drawn. Files no report listed there (the
    user's own, or a report written before the list existed) are never touched."""
    import sys

    from xaibench.engine.store import atomic_write_bytes

    folder = out / "figures"
    record = folder / FIGURE_LIST
    names = sorted(p.name for p in written if p.parent == folder)
    try:
        before = set(record.read_text().splitlines())
    except OSError:
        before = set()
    stale = [folder / name for name in sorted(before - set(names))
             if name and Path(name).name == name and (folder / name).is_file()]
    for path in stale:
        path.unlink()
    if stale:
        print(f"report: removed {len(stale)} figure files an earlier report wrote in {folder} that this one does not "
              f"draw: {', '.join(p.name for p in stale)}", file=sys.stderr)
    if names or before:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(record, "".join(f"{name}\n" for name in names).encode())
    return stale


def _choices(text: str, valid: tuple[str, ...], flag: str) -> tuple[str, ...]:
    import difflib

    from xaibench.errors import UserError

    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [c for c in chosen if c not in valid]
    if unknown or not chosen:
        close = difflib.get_close_matches(unknown[0], valid, n=1) if unknown else []
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"{flag}: unknown {', '.join(unknown) or 'empty value'}; {hint}choose from {', '.join(valid)}")
    return chosen


def _load(load_table, path: str):
    from xaibench.errors import UserError

    try:
        table = load_table(path)
    except (OSError, ValueError) as error:  # unreadable file, or a table of another schema
        raise UserError(f"{path} is not an xaibench results table ({error})") from None
    required = {"model", "dataset", "method", "metric", "family", "higher_is_better", "sample_id", "value", "status",
                "message"}
    missing = sorted(required - set(table.columns))
    if missing:
        raise UserError(f"{path} is not an xaibench results table: it lacks {', '.join(missing)}")
    if table.empty:
        raise UserError(f"{path} holds no rows; run a sweep first")
    return table


def _default_out(source: Path) -> Path:
    return source / "report" if source.is_dir() else source.parent / "report"
