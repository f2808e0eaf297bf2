"""``xaibench collect``: gather a sweep's cells (or every finished cell of a store) into one table."""
from __future__ import annotations

import argparse

DESCRIPTION = "Gather the cells of a sweep (or of the whole store) into one table."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("sweep_dir", nargs="?", help="a sweep folder, e.g. results/runs/quickstart")
    source.add_argument("--store", help="collect every finished cell in this store instead")
    parser.add_argument("-o", "--output", help="write the table here (.parquet or .csv)")


def run(args: argparse.Namespace) -> int:
    from xaibench.report.console import format_summary
    from xaibench.results.aggregate import summarize
    from xaibench.results.collect import collect_store, collect_sweep, write_table

    table = collect_store(args.store) if args.store else collect_sweep(args.sweep_dir)
    if args.output:
        write_table(table, args.output)
        print(f"{len(table)} rows -> {args.output}")
    print(format_summary(summarize(table)))
    return 0
