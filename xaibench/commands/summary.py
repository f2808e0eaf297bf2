"""``xaibench summary``: mean, bootstrap 95% CI and rank per metric of a results table."""
from __future__ import annotations

import argparse
import sys

DESCRIPTION = "Print the summary (mean, bootstrap 95% CI, rank) of a results table."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="a table (.parquet/.csv) or a sweep folder")
    parser.add_argument("-o", "--output", help="also write the summary table (.parquet or .csv)")


def run(args: argparse.Namespace) -> int:
    from xaibench.report.console import format_summary
    from xaibench.results.aggregate import summarize
    from xaibench.results.collect import PARTIAL, load_table, write_table

    table = load_table(args.table)
    summary = summarize(table)
    note = table.attrs.get(PARTIAL, "")
    if note:  # a killed or still running sweep: say so on screen and in the written summary
        summary.attrs[PARTIAL] = note
        print(f"PARTIAL: {note}")
        print(f"xaibench: warning: {note}", file=sys.stderr)
    if args.output:
        write_table(summary, args.output)
    print(format_summary(summary))
    return 0
