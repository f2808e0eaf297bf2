"""``xaibench summary``: mean, bootstrap 95% CI and rank per metric of a results table."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = "Print the summary (mean, bootstrap 95% CI, rank) of a results table."

# -o extension -> what is written: the summary frame (csv/parquet) or its methods x metrics tables.
OUTPUTS = {".parquet": "parquet", ".csv": "csv", ".md": "md", ".tex": "latex", ".html": "html"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="a table (.parquet/.csv) or a sweep folder")
    parser.add_argument("-o", "--output",
                        help="also write the summary: .parquet or .csv (the summary table), .md, .tex or .html "
                             "(methods x metrics tables per model and dataset, † from the paired tests as in "
                             "`xaibench report`, then those tests against the best, as the report ends)")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="significance level of the tables' † (.md/.tex/.html; default 0.05, as report's)")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from xaibench.report.console import summary_blocks
    from xaibench.results.aggregate import summarize
    from xaibench.results.collect import PARTIAL, load_table

    kind = output_kind(args.output) if args.output else None  # refuse a bad name before any work
    from xaibench.commands.outputs import refuse_overwriting_inputs, table_file

    refuse_overwriting_inputs(args.output, "summary -o", {"results table": table_file(args.table)})
    if not 0 < args.alpha < 1:
        from xaibench.errors import UserError
        raise UserError(f"--alpha must lie between 0 and 1, not {args.alpha}")
    if args.output:
        from xaibench.engine.store import remove_dead_temps

        remove_dead_temps(args.output)  # a killed summary's half-written file (kill -9 leaves it)
    # A sorted Parquet table: summarised block by block, then written and printed a piece at a time
    # (aggregate.SummaryPieces; memory flat in the table's size).
    summary, table = _streamed(args.table), None
    if summary is None:
        table = load_table(args.table)
        if not table.attrs.get(PARTIAL):  # a sweep stopped before its first cell: its note says so
            refuse_unsummarisable(table.columns, len(table), args.table)
        summary, note = summarize(table), table.attrs.get(PARTIAL, "")
    else:
        note = ""
    if note:  # a killed or still running sweep: say so on screen and in the written summary
        summary.attrs[PARTIAL] = note
        print(f"PARTIAL: {note}")
        print(f"xaibench: warning: {note}", file=sys.stderr)
        resume = _resume_line(Path(args.table))
        if resume:
            print(resume)
    if args.output:
        # Tables (.md/.tex/.html) mark † from the same paired tests as `xaibench report`, which need the rows.
        written, pairs = summary, None
        if kind in ("md", "latex", "html"):  # bold and ranks on the samples every method scored, as the report's
            from xaibench.results.statistics import pairwise_tests, shared_sample_ranks

            rows, written = _attached(_test_rows(args.table, table),
                                      summary if isinstance(summary, pd.DataFrame) else summary.frame())
            pairs = pairwise_tests(rows)
            written = shared_sample_ranks(rows, written)
        write_summary(written, args.output, kind, pairs=pairs, alpha=args.alpha)
        print(f"xaibench: wrote {args.output}", file=sys.stderr)
    for block in summary_blocks(summary):  # format_summary's text, a block at a time (memory)
        print(block)
    failed = _failed_line(Path(args.table))
    if failed:
        print(failed)
    if not isinstance(summary, pd.DataFrame):
        summary.close()
    return 0


def _resume_line(folder: Path) -> str:
    """For a sweep folder whose sweep stopped short (a dead Slurm task or joblib worker, a kill): the cells it lacks
    and how to get them, e.g. ``missing: mlp x iris x saliency (seed 0), ... and 7 more; rerun the sweep's command
    to compute them (stored cells are not recomputed)``; "" for a running sweep or one without a cell plan."""
    from xaibench.results import manifest

    state = manifest.read_state(folder) if folder.is_dir() else None
    if state is None or state.running or state.finished:
        return ""
    missing = manifest.missing_text(manifest.missing_cells(folder))
    when = f"once Slurm job {state.arrays[-1]} has ended, " if state.arrays else ""  # a rerun is refused until then
    return f"{missing}; {when}rerun the sweep's command to compute them (stored cells are not recomputed)" \
        if missing else ""


def _failed_line(folder: Path) -> str:
    """For a finished sweep whose cells ended in error (ERROR in the table): how many, and that a rerun retries
    them, e.g. ``1 of 3 cells ended in error (not stored); rerun the sweep's command to retry them (stored cells
    are not recomputed)``; "" otherwise. The end of the sweep said it (exit 1); a summary read later did not."""
    from xaibench.results import manifest

    state = manifest.read_state(folder) if folder.is_dir() else None
    if state is None or not state.finished or not state.errors:
        return ""
    of = f"{state.errors} of {state.expected_cells}" if state.expected_cells else f"{state.errors}"
    return (f"{of} cell{'s' * (state.errors != 1 or bool(state.expected_cells))} ended in error (not stored); rerun "
            f"the sweep's command to retry them (stored cells are not recomputed)")


def _streamed(path: str):  # -> pd.DataFrame | None
    """The summary of a finished Parquet table (a file or a finished sweep's table.parquet), streamed; None when
    the table must be loaded whole (CSV, a partial sweep, an unsorted or unreadable table, a partial note)."""
    from xaibench.results.collect import PARTIAL, TABLE_NAME, summarize_file
    from xaibench.results import manifest

    target = Path(path)
    if target.is_dir():
        state = manifest.read_state(target)
        if state is not None and not state.finished:
            return None
        target = target / TABLE_NAME
    if target.suffix != ".parquet" or not target.is_file():
        return None
    import pyarrow.parquet as pq

    try:
        if PARTIAL.encode() in (pq.read_schema(target).metadata or {}).get(b"PANDAS_ATTRS", b""):
            return None
    except Exception:  # noqa: BLE001 - not Parquet: load_table says why
        return None
    metadata = pq.read_metadata(target)
    columns, rows = metadata.schema.names, metadata.num_rows
    del metadata  # the parsed footer (37 KB a row group: 3.6 MB at 10,000 cells) is not held while the table streams
    refuse_unsummarisable(columns, rows, target)
    return summarize_file(target, pieces=True)


def refuse_unsummarisable(columns, n_rows: int, path) -> None:
    """A results table the summary cannot be made of: one lacking columns it reads (a Parquet file with only the
    columns a reader needs ended in ``KeyError: 'message'``, a traceback), or holding no rows (it printed
    "(no results)" and exited 0, as if a sweep had been summarised; ``report`` and ``compare`` refuse it)."""
    from xaibench.errors import UserError
    from xaibench.results.aggregate import INPUT_COLUMNS

    missing = [c for c in INPUT_COLUMNS if c not in set(columns)]
    if missing:
        raise UserError(f"table {path} is not an xaibench results table (lacks columns: {', '.join(missing[:5])}"
                        f"{f' and {len(missing) - 5} more' if len(missing) > 5 else ''})")
    if not n_rows:
        raise UserError(f"table {path} holds no rows; run a sweep first")


def _test_rows(path: str, table):  # -> pd.DataFrame
    """The rows of the table at ``path`` the paired tests and shared-sample ranks read (``table`` when already
    loaded; else only those columns)."""
    from xaibench.results.collect import TABLE_NAME
    from xaibench.results.groups import COMPARISON_COLUMNS, COMPETITOR_COLUMNS

    if table is None:
        target = Path(path)
        target = target / TABLE_NAME if target.is_dir() else target  # _streamed: a finished Parquet table
        import pyarrow.parquet as pq

        wanted = {*COMPARISON_COLUMNS, *COMPETITOR_COLUMNS, "family", "higher_is_better", "sample_id", "seed",
                  "value", "status"}
        table = pq.read_table(target, columns=[c for c in pq.read_schema(target).names if c in wanted]).to_pandas()
    return table


def _attached(rows, summary):  # -> tuple[pd.DataFrame, pd.DataFrame]
    """``rows`` and their ``summary`` with each not_applicable row in the comparison group and setting it was
    planned for (``groups.attach_not_applicable``), as ``xaibench report`` tabulates them: a method n/a in a
    setting others scored shows n/a in that setting's table, not in "Settings without any score". The summary's
    rows of a moved group take the ids the attached rows have (a group's rows move together)."""
    import pandas as pd

    from xaibench.results.groups import attach_not_applicable, comparison_id, setting_id

    attached = attach_not_applicable(rows)
    if attached is rows:
        return rows, summary
    na = (rows["status"] == "not_applicable").to_numpy(dtype=bool)
    before, after = rows[na], attached[na]
    ids = pd.DataFrame({"old": comparison_id(before), "comparison": comparison_id(after),
                        "setting": setting_id(after)}).drop_duplicates("old").set_index("old")
    moved = summary["comparison"].isin(ids.index).to_numpy()
    old, summary = summary.loc[moved, "comparison"], summary.copy()
    for column in ("comparison", "setting"):
        summary.loc[moved, column] = old.map(ids[column]).to_numpy()
    return attached, summary


def output_kind(path: str) -> str:
    from xaibench.errors import UserError

    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUTS:
        raise UserError(f"summary -o {path}: unknown extension {suffix or '(none)'!r}; "
                        f"use one of {', '.join(OUTPUTS)}")
    return OUTPUTS[suffix]


def write_summary(summary, path: str, kind: str, *, pairs=None, alpha: float = 0.05) -> None:
    """Write ``summary`` (a frame or ``aggregate.SummaryPieces``) as ``kind`` (parquet, csv, md, latex, html)
    atomically.

    ``pairs`` (``statistics.pairwise_tests`` of the summarised table) makes the tables' ``†`` the significance
    mark of ``xaibench report`` at ``alpha`` and adds the report's "tests against the best" (per setting, each
    method's Holm p against its column's best and the rank-biserial r: what a paper cites for a †); without them
    (a summary alone) ``†`` marks overlapping CIs and says so.
    """
    import pandas as pd

    from xaibench.engine.store import atomic_write_bytes
    from xaibench.report.html_document import Section, html_document
    from xaibench.report.tables import build_tables, render_all
    from xaibench.report.tables.render import latex_escape, latex_tables, render_grouped
    from xaibench.results.collect import PARTIAL, write_pieces, write_table
    from xaibench.results.statistics import control_warnings

    if not isinstance(summary, pd.DataFrame):  # aggregate.SummaryPieces (a streamed, finished table)
        if kind in ("parquet", "csv"):
            write_pieces(summary, path)  # write_table's bytes, a piece at a time
            return
        summary = summary.frame()  # the methods x metrics tables need every row
    note = summary.attrs.get(PARTIAL, "")
    if kind == "csv" and note:  # CSV keeps no metadata: every row says the sweep is incomplete
        summary = summary.assign(partial=note)
    if kind in ("parquet", "csv"):
        write_table(summary, path)
        return
    tables = build_tables(summary, ("metrics",), pairs=pairs, alpha=alpha) if not summary.empty else []
    best = _best_tables(summary, pairs, alpha)
    warnings = ([f"PARTIAL: {note}"] if note else []) + (control_warnings(summary) if not summary.empty else [])
    if kind == "md":
        text = "\n".join([f"> **{w}**\n" for w in warnings] + [render_all(tables, "md")]
                         + (["## Tests against the best", "", render_grouped(best, "md")] if best else []))
    elif kind == "latex":
        partial = f"\\noindent\\textbf{{PARTIAL: {latex_escape(note)}}}\n\n" if note else ""
        text = latex_tables([*tables, *best]).replace("\n\n", "\n\n" + partial, 1)
    else:
        sections = [Section("Results", render_all(tables, "html"))]
        sections += [Section("Tests against the best", render_grouped(best, "html"))] if best else []
        text = html_document("xaibench summary", sections, warnings=warnings)
    atomic_write_bytes(Path(path), text.encode())


def _best_tables(summary, pairs, alpha: float) -> list:
    """The report's "tests against the best" tables (one per setting) from ``pairs``; none without the tests."""
    if pairs is None or summary.empty:
        return []
    from xaibench.report.tables.pairwise import versus_best_tables
    from xaibench.results.statistics import versus_best

    return versus_best_tables(pairs, versus_best(pairs, summary, alpha=alpha), summary, alpha=alpha, beside=False)
