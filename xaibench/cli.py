"""Command line: ``xaibench [-m] [overrides...]`` runs cells through Hydra; ``xaibench collect|summary`` read tables.

Every user error (unknown name, wrong type, impossible combination, missing file) is caught by a pre-flight that
validates the whole sweep before Hydra launches anything: one line on stderr, exit code 2, nothing written.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from xaibench.errors import UserError

VERBS = ("collect", "summary")


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in VERBS:
            sys.exit(_run_verb(argv))
        _preflight(argv)
    except UserError as error:
        print(f"xaibench: error: {error}", file=sys.stderr)
        sys.exit(2)
    _run_hydra(argv)


def _preflight(argv: list[str]) -> None:
    from hydra._internal.utils import get_args_parser

    from xaibench.config.preflight import validate

    args, unknown = get_args_parser().parse_known_args(argv)
    if unknown:
        raise UserError(f"unrecognised option(s) {' '.join(unknown)}; see xaibench --help")
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion:
        return
    if args.config_dir or args.config_path:
        raise UserError("--config-dir/--config-path replace xaibench's configs; add yours with "
                        "hydra.searchpath=[file:///abs/path/to/conf] instead")
    validate(args.overrides, multirun=args.multirun, config_name=args.config_name or "config")


def _run_hydra(argv: list[str]) -> None:
    import hydra

    from xaibench import sweep
    from xaibench.config.paths import conf_dir

    @hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")
    def task(cfg) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        try:
            sweep.run_job(cfg, label=f"job {hydra_cfg.job.num}" if multirun else "")
        except UserError as error:
            print(f"xaibench: error: {error}", file=sys.stderr)
            sys.exit(2)
        if not multirun:
            sweep.finish_sweep(sweep.sweep_dir(cfg))

    sys.argv = [sys.argv[0], *argv]
    task()
    sys.exit(sweep.exit_code())


def _run_verb(argv: list[str]) -> int:
    from xaibench.report.console import format_summary
    from xaibench.results.aggregate import summarize
    from xaibench.results.collect import collect_store, collect_sweep, load_table, write_table

    parser = argparse.ArgumentParser(prog=f"xaibench {argv[0]}")
    if argv[0] == "collect":
        parser.description = "Gather the cells of a sweep (or of the whole store) into one table."
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("sweep_dir", nargs="?", help="a sweep folder, e.g. results/runs/quickstart")
        source.add_argument("--store", help="collect every finished cell in this store instead")
        parser.add_argument("-o", "--output", help="write the table here (.parquet or .csv)")
        args = _parse(parser, argv[1:])
        table = collect_store(args.store) if args.store else collect_sweep(args.sweep_dir)
        if args.output:
            write_table(table, args.output)
            print(f"{len(table)} rows -> {args.output}")
    else:
        parser.description = "Print the summary (mean, bootstrap 95% CI, rank) of a results table."
        parser.add_argument("table", help="a table (.parquet/.csv) or a sweep folder")
        parser.add_argument("-o", "--output", help="also write the summary table (.parquet or .csv)")
        args = _parse(parser, argv[1:])
        table = load_table(args.table)
    summary = summarize(table)
    if argv[0] == "summary" and args.output:
        write_table(summary, args.output)
    print(format_summary(summary))
    return 0


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    try:
        return parser.parse_args(argv)
    except SystemExit as exit_:  # argparse already printed its one-line usage error
        if exit_.code:
            sys.exit(2)
        raise
