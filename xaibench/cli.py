"""Command line: ``xaibench [-m] [overrides...]`` runs cells through Hydra; ``xaibench collect|summary`` read tables.

Every user error (unknown name, wrong type, impossible combination, missing file) is caught by a pre-flight that
validates the whole sweep before Hydra launches anything: one line on stderr, exit code 2, nothing written.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from xaibench.errors import StorageError, UserError

# verb -> module in xaibench/commands/ (DESCRIPTION, add_arguments(parser), run(args) -> exit code)
VERBS = {
    "collect": "xaibench.commands.collect",
    "compare": "xaibench.commands.compare",
    "summary": "xaibench.commands.summary",
    "store": "xaibench.commands.store",
    "report": "xaibench.commands.report",
}


def main(argv: Sequence[str] | None = None) -> None:
    if argv is None:  # the process's own command line: set Arrow's allocator before pyarrow loads (flat memory)
        from xaibench.results.memory import configure_arrow_allocator

        configure_arrow_allocator(sys.argv[1] if len(sys.argv) > 1 else None)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("--version", "-V"):
        from xaibench import __version__

        print(f"xaibench {__version__}")
        sys.exit(0)
    if argv and argv[0] in ("--help", "-h"):
        from xaibench.commands.help import overview

        print(overview(VERBS))
        sys.exit(0)
    try:
        if argv and argv[0] in VERBS:
            sys.exit(_run_verb(argv))
        if argv and re.fullmatch(r"[A-Za-z][\w-]*", argv[0]):  # no override is a bare word: a misspelt verb
            _unknown_verb(argv[0])
        plan = _preflight(argv)
        if plan is not None and not plan.in_process:
            from xaibench import sweep
            from xaibench.config.preflight import check_array_size

            check_array_size(plan.launch, plan.configs)  # Slurm's MaxArraySize, for the cells the store lacks
            sweep.hold_sweeps(plan.configs)  # lock the sweep folder(s), record the expected cells: before Hydra writes
            if _skips_stored(plan, argv):  # stored cells need no launcher job: written here, the rest launched
                if not sweep.launch_pending(plan.configs):
                    sys.exit(sweep.exit_code())
                argv = [*argv, f"hydra.sweeper._target_={SKIP_STORED_SWEEPER}"]
    except UserError as error:
        print(f"xaibench: error: {error}", file=sys.stderr)
        sys.exit(2)
    except StorageError as error:
        print(f"xaibench: error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        if argv and argv[0] in VERBS:  # a verb reads tables and writes files: no cell, no sweep to finish
            print(f"xaibench: {argv[0]} interrupted: {VERB_STOPPED}", file=sys.stderr, flush=True)
            sys.exit(130)
        _interrupted()
    if plan is not None and plan.in_process:
        _run_in_process(plan, multirun=any(a in ("-m", "--multirun") for a in argv))
    _run_hydra(argv)


SKIP_STORED_SWEEPER = "hydra_plugins.xaibench_launchers.skip_stored.SkipStoredSweeper"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def _skips_stored(plan, argv: list[str]) -> bool:
    """A multirun that Hydra's basic sweeper would expand: its stored cells are skipped before launching."""
    multirun = any(a in ("-m", "--multirun") for a in argv)
    return multirun and plan.launch is not None and plan.launch.sweeper == BASIC_SWEEPER


def _preflight(argv: list[str]):  # -> Plan | None (None: Hydra only prints something, e.g. --help)
    """Validate the whole sweep (or load its cached plan): its job configs and whether it runs in this process."""
    from xaibench.config.plan import Plan, make_plan

    args, unknown = _hydra_args(argv)
    if unknown:
        split = any(a in MULTIRUN_FLAGS for a in argv) and any("=" in u for u in unknown)  # `a=1 -m b=2`
        hint = "put -m/--multirun before (or after) all the overrides" if split else "see xaibench --help"
        close = _close_flag(unknown, [*TOP_FLAGS, *_hydra_flags()])
        raise UserError(f"unrecognised option(s) {' '.join(unknown)}; {close + ' ' + hint.capitalize() if close else hint}")
    if args.config_dir or args.config_path:
        raise UserError("--config-dir/--config-path replace xaibench's configs; add yours with "
                        "hydra.searchpath=[file:///abs/path/to/conf] instead")
    if args.experimental_rerun:  # Hydra's rerun of a pickled job config: ignored here, the default cell ran (exit 0)
        raise UserError("--experimental-rerun is not supported: rerun the sweep's own command (its stored cells are "
                        "not recomputed)")
    if args.package and not args.cfg:  # Hydra's --package only narrows what --cfg shows: the sweep ran without a word
        raise UserError(f"--package {args.package} narrows what --cfg shows; add --cfg job (or drop --package)")
    if (args.cfg or args.info) and args.multirun:  # Hydra: "Only one of --run, --multirun, --cfg ..." (traceback)
        raise UserError(f"--{'cfg' if args.cfg else 'info'} shows one job's config and -m launches a sweep: drop -m "
                        f"(with one value per swept key, e.g. method=saliency) to see a job's config, including "
                        f"hydra.launcher's with --cfg hydra")
    if args.cfg or args.info:
        from xaibench.config.preflight import validate_names

        validate_names(args.overrides, multirun=args.multirun, config_name=args.config_name or "config")
        return None
    if args.help or args.hydra_help or args.shell_completion:
        return None
    plan = make_plan(args.overrides, multirun=args.multirun, config_name=args.config_name or "config",
                     remember_checks=True)  # only the package's plugins (and $XAIBENCH_PLUGINS's) are registered
    from xaibench.results.manifest import record_command

    record_command(args.overrides, multirun=args.multirun, config_name=args.config_name or "config",  # compare's
                   folders=[Path(str(cfg.results_dir)) / str(cfg.sweep_id) for cfg in plan.configs])
    if args.config_name not in (None, "config") or _verbose(args.overrides):  # verbose: Hydra's own launch lines
        return Plan(plan.configs, in_process=False, launch=plan.launch)
    return plan


MULTIRUN_FLAGS = ("-m", "--multirun")
_NO_FLAGS = dict(help=False, hydra_help=False, cfg=None, resolve=False, package=None, run=False, multirun=False,
                 shell_completion=False, config_path=None, config_name=None, config_dir=None, experimental_rerun=None,
                 info=None)  # hydra._internal.utils.get_args_parser()'s defaults


def _hydra_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """``get_args_parser().parse_known_args(argv)``, Hydra's own parse of the command line.

    The common command line, overrides with at most one ``-m`` first or last, gives the same namespace without
    importing Hydra (0.1-0.15 CPU-s, most of what a cached plan's sweep imports beyond pandas).
    """
    overrides = [arg for arg in argv if arg not in MULTIRUN_FLAGS]
    n_flags = len(argv) - len(overrides)
    if (n_flags == 0 or (n_flags == 1 and (argv[0] in MULTIRUN_FLAGS or argv[-1] in MULTIRUN_FLAGS))) and all(
            arg and not arg.startswith("-") for arg in overrides):
        return argparse.Namespace(**{**_NO_FLAGS, "overrides": overrides, "multirun": n_flags == 1}), []
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    parser.error = _hydra_usage_error  # argparse prints Hydra's 8-line usage block before its one-line error
    return parser.parse_known_args(argv)


TOP_FLAGS = ("--version", "-V", "--help", "-h")  # main's own, before Hydra's


def _hydra_flags() -> list[str]:
    from hydra._internal.utils import get_args_parser

    return [flag for action in get_args_parser()._actions for flag in action.option_strings]


def _close_flag(words: Sequence[str], flags: Sequence[str]) -> str:
    """``"did you mean --version? "`` for the first of ``words`` that looks like a misspelt flag, else ``""``."""
    import difflib

    for word in words:
        if word.startswith("--") and len(word) > 3:
            close = difflib.get_close_matches(word.split("=", 1)[0], [f for f in flags if f.startswith("--")], n=1)
            if close:
                return f"did you mean {close[0]}?"
    return ""


def _hydra_usage_error(message: str):
    raise UserError(f"{message} (see xaibench --help)")


def _run_in_process(plan, *, multirun: bool) -> None:
    """The basic launcher's sweep, run here from the pre-flight's configs (``sweep.run_configs``)."""
    from xaibench import sweep

    try:
        with _sigterm_unwinds():  # `kill`, `timeout`
            sweep.run_configs(plan.configs, multirun=multirun, table=False)  # the CLI prints; nothing to return
    except UserError as error:
        print(f"xaibench: error: {error}", file=sys.stderr)
        sys.exit(2)
    except StorageError as error:  # full disk: what is written stays, a rerun computes only the rest
        print(f"xaibench: error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        _interrupted()
    except Terminated:
        _interrupted("terminated (SIGTERM)", 128 + signal.SIGTERM)
    sys.exit(sweep.exit_code())


class Terminated(BaseException):
    """SIGTERM in an in-process sweep or a verb: raised where the work is, so its temp files and locks are let go."""


def _raise_terminated(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated` (Python's default ended the process at once, leaving its
    temp files); the previous handler is restored after. Signal handlers are the main thread's: elsewhere a no-op."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
    try:
        yield
    finally:
        if main_thread:  # a handler not installed from Python reads as None: the default is what it did
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _interrupted(what: str = "interrupted", code: int = 130) -> None:
    """Ctrl-C (or SIGTERM): one line instead of a traceback from wherever the sweep was (exit code 130, as a shell's;
    143 for SIGTERM). Python's default SIGTERM ended the process without a word, leaving its temp files."""
    print(f"xaibench: {what}: the cells finished so far are stored and the sweep's previous table is kept; "
          "rerun the same command to finish it (stored cells are not recomputed)", file=sys.stderr, flush=True)
    sys.exit(code)


_QUIET_TRACKER = "ignore:resource_tracker:UserWarning"


def _run_hydra(argv: list[str]) -> None:
    import hydra

    from xaibench import sweep
    from xaibench.config.paths import conf_dir

    @hydra.main(config_path=str(conf_dir()), config_name="config", version_base="1.3")
    def task(cfg) -> bool:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
        if hydra_cfg.runtime.cwd and Path.cwd() != Path(hydra_cfg.runtime.cwd):  # hydra.job.chdir=true moved us
            os.chdir(hydra_cfg.runtime.cwd)  # paths (data, weights, results_dir, store) are relative to the launch
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        return _run_task(cfg, f"job {_job_number(hydra_cfg)}" if multirun else "", multirun=multirun)

    if _verbose(argv):  # conf/config.yaml keeps Hydra's "[HYDRA] #N : ..." launch lines quiet otherwise
        argv = [*argv, "hydra.hydra_logging.root.level=INFO"]
    sys.argv = [sys.argv[0], *argv]
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # let Hydra's own write errors reach the handler below
    # joblib's workers aborted by Ctrl-C or SIGTERM leave semaphores that Python's resource tracker unlinks when the
    # launcher exits, warning in 2 lines after xaibench's one; the tracker, started later by joblib, takes its -W
    # options from here (the cleanup itself is kept)
    if _QUIET_TRACKER not in sys.warnoptions:  # once per process (the API and tests run the CLI many times)
        sys.warnoptions.append(_QUIET_TRACKER)
    sweep.set_exit_code(0)  # this run's, not an earlier sweep's of this process (`--cfg job` runs none)
    try:
        with _sigterm_unwinds():  # `kill`, `timeout`: Python's default ended a launcher's sweep without a word
            task()
    except OSError as error:  # Hydra saving its configs/logs into a full or read-only results folder
        print(f"xaibench: error: {StorageError.from_os_error(error)}", file=sys.stderr)
        sys.exit(1)
    except UserError as error:  # a launcher refused by its scheduler (sbatch: no such partition)
        print(f"xaibench: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # joblib, Ray: their workers get the terminal's Ctrl-C too (Slurm: the launcher's line)
        _interrupted()
    except Terminated:  # joblib's and submitit's local workers stop with the launcher (engine/launcher_watch.py)
        _interrupted("terminated (SIGTERM)", 128 + signal.SIGTERM)
    except Exception as error:  # noqa: BLE001 - only a worker's death is reported here; anything else re-raised
        if type(error).__name__ != "TerminatedWorkerError":
            raise
        codes = re.search(r"exit codes of the workers are \{(.*?)\}", str(error))
        print(f"xaibench: error: a joblib worker died mid-cell (exit codes: {codes.group(1) if codes else '?'}), "
              f"which stops a joblib sweep; if it was killed for memory, lower hydra.launcher.n_jobs or batch_size",
              file=sys.stderr, flush=True)
        sweep.finish_held()  # "incomplete (n of m cells written) ... rerun the sweep to finish it", exit code 1
        sys.exit(max(1, sweep.exit_code()))
    sys.exit(sweep.exit_code())


def _job_number(hydra_cfg) -> int:
    """The job's number in the whole sweep: its ``jobs/<n>`` folder's (``SkipStoredSweeper`` launches only the jobs
    whose cells are not stored, which Hydra numbers from 0, each in the folder of its number in the sweep)."""
    folder = Path(str(hydra_cfg.sweep.subdir))
    return int(folder.name) if folder.parent.name == "jobs" and folder.name.isdigit() else hydra_cfg.job.num


def _run_task(cfg, label: str, *, multirun: bool) -> bool:
    """One Hydra job: run its cell (and finish a single run); True if its cell was written (the job's return value:
    a Slurm task's end counts the cells it wrote). Bad input stops the launching process with exit 2; in a launcher
    worker (joblib, a Slurm array task running several cells) it is printed and the job returns False, so the
    task's other cells still run and the sweep ends unfinished (exit 1) naming the missing cell. A full disk
    likewise: what is written stays, a rerun computes only the rest."""
    from xaibench import sweep
    from xaibench.engine.launcher_watch import watch_launcher

    if multirun and not sweep.in_launching_process():
        watch_launcher()  # a joblib worker exits when the launching process dies (kill -9), not hours later
    try:
        sweep.run_job(cfg, label=label)
        if not multirun:
            sweep.finish_sweep(sweep.sweep_dir(cfg), cfg=cfg)
        return True
    except UserError as error:
        print(f"xaibench: error: {error}", file=sys.stderr)
        if not multirun or sweep.in_launching_process():
            sys.exit(2)
    except StorageError as error:
        print(f"xaibench: error: {error}", file=sys.stderr)
        if sweep.in_launching_process():
            sys.exit(1)  # basic launcher: stop the sweep here
    return False


def _unknown_verb(word: str) -> None:
    """A first argument that is neither a verb nor an override (those have ``=``): name the verbs, not Hydra's
    override grammar ("missing EQUAL at '<EOF>'")."""
    import difflib

    close = difflib.get_close_matches(word, list(VERBS), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UserError(f"unknown verb {word!r}; {hint}verbs: {', '.join(VERBS)}; a run takes overrides such as "
                    "model=mlp (xaibench --help)")


def _verbose(argv: list[str]) -> bool:
    return any(arg.lstrip("+") in ("verbose=true", "verbose=True") for arg in argv)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one ``UserError`` line (argparse prints its usage block, then the error)."""

    def error(self, message: str):  # argparse's hook for every usage error (unknown option, bad type, choice)
        raise UserError(f"{self.prog.removeprefix('xaibench ')}: {message} (see {self.prog} --help)")

    def parse_known_args(self, args=None, namespace=None):
        self._refuse_unknown_flags(list(sys.argv[1:] if args is None else args))
        return super().parse_known_args(args, namespace)

    def _refuse_unknown_flags(self, args: list[str]) -> None:
        """An unknown ``--flag`` first, with the close one: argparse named a missing argument instead (``report
        --help-me`` said "the following arguments are required: table"), or the flag without a hint."""
        flags = [flag for action in self._actions for flag in action.option_strings]
        for arg in args:
            if arg == "--":
                return
            name = arg.split("=", 1)[0]
            if not arg.startswith("--") or len(name) < 3 or any(flag.startswith(name) for flag in flags):
                continue  # a value, a short flag, or a known flag (or argparse's unambiguous abbreviation of one)
            self.error(f"unrecognized arguments: {arg}; {_close_flag([arg], flags)}".removesuffix("; "))


# A verb's output that cannot be written for one of these reasons is bad input (exit 2): a file where a folder
# should be, a read-only or forbidden folder. Anything else (ENOSPC, EIO, EDQUOT) is a failure during the run.
USER_FIXABLE_ERRNOS = frozenset({errno.ENOTDIR, errno.EISDIR, errno.EROFS, errno.EACCES, errno.EPERM, errno.EEXIST,
                                 errno.ENOENT, errno.ENAMETOOLONG})


def _run_verb(argv: list[str]) -> int:
    module = importlib.import_module(VERBS[argv[0]])
    parser = OneLineParser(prog=f"xaibench {argv[0]}", description=module.DESCRIPTION)
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        # SIGTERM (`timeout`, a batch job's end) unwinds like Ctrl-C, so the file being written loses its temp file
        # (Python's default ended the process at once: a 10k-cell `collect -o` left hundreds of MB beside the output)
        with _sigterm_unwinds():
            return module.run(args)
    except StorageError as error:
        if error.errno in USER_FIXABLE_ERRNOS:  # the output path the user chose can never be written (-o afile/x)
            raise UserError(str(error)) from None
        raise  # a full disk (ENOSPC), an I/O error: not the user's input; main prints the line and exits 1
    except BrokenPipeError:  # `xaibench compare ... | head`: the reader left; no traceback, nothing more printed
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python flushes stdout again at exit
        return 1
    except Terminated:
        print(f"xaibench: {argv[0]} terminated (SIGTERM): {VERB_STOPPED}", file=sys.stderr, flush=True)
        return 128 + signal.SIGTERM


VERB_STOPPED = "a file it writes is replaced whole or not at all (no half-written file); rerun the same command"
