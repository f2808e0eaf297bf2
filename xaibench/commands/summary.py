"""``xaibench summary``: mean, bootstrap 95% CI and rank per metric of a results table."""
from __future__ import annotations

import argparse

DESCRIPTION = "Print the summary (mean, bootstrap 95% CI, rank) of a results table."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="a table (.parquet/.csv) or a sweep folder")
    parser.add_argument("-o", "--output", help="also write the summary table (.parquet or .csv)")


def run(args: argparse.Namespace) -> int:
    from xaibench.report.console import format_summary
    from xaibench.results.aggregate import summarize
    from xaibench.results.collect import load_table, write_table

    summary = summarize(load_table(args.table))
    if args.output:
        write_table(summary, args.output)
    print(format_summary(summary))
    return 0
