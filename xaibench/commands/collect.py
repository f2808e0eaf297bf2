"""``xaibench collect``: gather a sweep's cells (or every finished cell of a store) into one table."""
from __future__ import annotations

import argparse
import sys
from collections import Counter

DESCRIPTION = "Gather the cells of a sweep (or of the whole store) into one table."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("sweep_dir", nargs="?", help="a sweep folder, e.g. results/runs/quickstart")
    source.add_argument("--store", help="collect every finished cell in this store instead")
    parser.add_argument("-o", "--output", help="write the table here (.parquet or .csv)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 unless the table is complete (no damaged artefact skipped, the sweep finished)")
    parser.add_argument("--no-summary", action="store_true",
                        help="with -o: write the table only, without computing or printing the summary")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from xaibench.engine.store import remove_dead_temps
    from xaibench.report.console import summary_blocks
    from xaibench.results import manifest
    from xaibench.results.collect import partial_note, write_collected

    # Streams in every mode: cells are combined one (model, dataset, method) block at a time into the output
    # file and the summary, so memory does not grow with the number of cells.
    if args.sweep_dir and Path(args.sweep_dir).is_dir():
        manifest.read_state(Path(args.sweep_dir))  # a damaged sweep.json: refused before a file is written
    elif args.sweep_dir and Path(args.sweep_dir).exists():  # was "<file>/sweep.json is damaged (unreadable ...)"
        from xaibench.errors import UserError

        raise UserError(f"{args.sweep_dir} is a file; collect gathers a sweep folder's cells (e.g. results/runs/"
                        f"<sweep_id>); a table file is read by xaibench summary {args.sweep_dir}")
    if args.output:
        _check_output(args.output)  # before any work: collect wrote Parquet under any name (table.xlsx)
        remove_dead_temps(args.output)  # a killed collect's half-written table (kill -9 leaves it)
    summarize = not (args.output and args.no_summary)
    collected = write_collected(args.store or args.sweep_dir, args.output, store=bool(args.store),
                                summarize=summarize, pieces=True)
    if args.output:
        done = f"{collected.n_rows} rows" if summarize else f"{collected.n_artefacts - len(collected.skipped)} cells"
        print(f"{done} -> {args.output}")
    if summarize:  # format_summary's text, a block at a time, from the summary's pieces (memory)
        for block in summary_blocks(collected.pieces):
            print(block)
        collected.pieces.close()
    incomplete = _report_skipped(collected.skipped, collected.n_artefacts)
    note = "" if args.store else partial_note(args.sweep_dir, collected.n_artefacts)
    if note:
        print(f"xaibench: warning: {note}", file=sys.stderr)
    return 1 if args.strict and (incomplete or note) else 0


def _check_output(output: str) -> None:
    """Refuse an output name whose format collect does not write (``write_collected`` writes Parquet unless .csv)."""
    from pathlib import Path

    from xaibench.errors import UserError

    suffix = Path(output).suffix
    if suffix not in (".parquet", ".csv"):
        raise UserError(f"collect -o {output}: unknown extension {suffix or '(none)'!r}; use .parquet or .csv")


def _report_skipped(skipped: list[tuple[str, str]], n_artefacts: int) -> bool:
    """One stderr line: how many artefacts were skipped and why; True if any was."""
    if not skipped:
        return False
    reasons = Counter(reason for _, reason in skipped)
    why = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
    print(f"xaibench: warning: skipped {len(skipped)} of {n_artefacts} cell artefacts ({why}); they are "
          f"recomputed by the next sweep that needs them (details: xaibench store verify)", file=sys.stderr)
    return True
