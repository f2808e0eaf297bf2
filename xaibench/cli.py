"""Command line: ``xaibench [-m] [overrides...]`` runs cells through Hydra; ``xaibench collect|summary`` read tables.

Every user error (unknown name, wrong type, impossible combination, missing file) is caught by a pre-flight that
validates the whole sweep before Hydra launches anything: one line on stderr, exit code 2, nothing written.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from xaibench.errors import UserError

# verb -> module in xaibench/commands/ (DESCRIPTION, add_arguments(parser), run(args) -> exit code)
VERBS = {
    "collect": "xaibench.commands.collect",
    "summary": "xaibench.commands.summary",
}


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in VERBS:
            sys.exit(_run_verb(argv))
        plan = _preflight(argv)
    except UserError as error:
        print(f"xaibench: error: {error}", file=sys.stderr)
        sys.exit(2)
    if plan is not None and plan.in_process:
        _run_in_process(plan, multirun=any(a in ("-m", "--multirun") for a in argv))
    _run_hydra(argv)


def _preflight(argv: list[str]):  # -> Plan | None (None: Hydra answers, e.g. --help)
    from hydra._internal.utils import get_args_parser

    from xaibench.config.plan import make_plan

    args, unknown = get_args_parser().parse_known_args(argv)
    if unknown:
        raise UserError(f"unrecognised option(s) {' '.join(unknown)}; see xaibench --help")
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion:
        return None
    if args.config_dir or args.config_path:
        raise UserError("--config-dir/--config-path replace xaibench's configs; add yours with "
                        "hydra.searchpath=[file:///abs/path/to/conf] instead")
    plan = make_plan(args.overrides, multirun=args.multirun, config_name=args.config_name or "config")
    return plan if args.config_name in (None, "config") else None


def _run_in_process(plan, *, multirun: bool) -> None:
    """The basic launcher's sweep, run here from the pre-flight's configs (``sweep.run_configs``)."""
    from xaibench import sweep

    try:
        sweep.run_configs(plan.configs, multirun=multirun)
    except UserError as error:
        print(f"xaibench: error: {error}", file=sys.stderr)
        sys.exit(2)
    sys.exit(sweep.exit_code())


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
    module = importlib.import_module(VERBS[argv[0]])
    parser = argparse.ArgumentParser(prog=f"xaibench {argv[0]}", description=module.DESCRIPTION)
    module.add_arguments(parser)
    return module.run(_parse(parser, argv[1:]))


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    try:
        return parser.parse_args(argv)
    except SystemExit as exit_:  # argparse already printed its one-line usage error
        if exit_.code:
            sys.exit(2)
        raise
