"""``xaibench compare``: regression verdict of a results table against a baseline (exit 0 pass, 1 regression, 2 usage).

Also ``--update-baseline``: the one deliberate way to refresh a committed baseline (never done implicitly).
"""
from __future__ import annotations

import argparse
from pathlib import Path

UPDATE_LINES = 20  # findings listed when a baseline is refreshed, failing ones listed under --quiet
REPORT_LIMIT = 65_000  # render.COMMENT_BUDGET (not imported here: the CLI's help must not import pandas)

DESCRIPTION = ("Compare a results table with a baseline under a tolerance policy: exit 0 pass, 1 regression, "
               "2 usage error. --update-baseline replaces the baseline with the current table instead.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", help="the baseline table (.parquet/.csv) or folder, e.g. results/baselines/ci")
    parser.add_argument("current", help="the current table or sweep folder, e.g. results/runs/ci")
    parser.add_argument("--policy", default="default",
                        help="tolerance policy: a name in conf/compare/ (default, strict) or a .yaml file")
    parser.add_argument("--report", metavar="OUT.md", help="write the Markdown report here (for a PR comment)")
    parser.add_argument("--report-limit", type=int, default=REPORT_LIMIT, metavar="BYTES",
                        help=f"--report stays under this many bytes (default {REPORT_LIMIT:,}: a GitHub pull-request "
                             "comment holds 65,536 characters); a longer report leaves rows out, says so, and is "
                             "written whole beside it as OUT.full.md; 0: no limit")
    parser.add_argument("--json", metavar="OUT.json", help="write the machine-readable verdict here")
    parser.add_argument("--junit", metavar="OUT.xml",
                        help="write the verdict as a JUnit XML test report here, for GitLab (artifacts:reports:junit), "
                             "Jenkins (junit), Azure (PublishTestResults), CircleCI (store_test_results): a testcase "
                             "per unit compared, failing where the verdict fails (docs/ci.md)")
    parser.add_argument("--github-annotations", action="store_true",
                        help="also print a GitHub Actions ::error annotation per failing finding (at most 10), so "
                             "they show on the run's summary page")
    parser.add_argument("--strict-changes", action="store_true",
                        help="fail on any reported change too (improvements, changes passed as noise, control "
                             "drift, new cells, rank changes, changed data or weights)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="do not fail on baseline cells, metrics or samples missing from the current table")
    parser.add_argument("--quiet", action="store_true",
                        help="print only the verdict line (and one line per failing finding), not the report")
    parser.add_argument("--update-baseline", action="store_true",
                        help="replace BASELINE with CURRENT (and write its provenance) after showing what changes")
    parser.add_argument("--command", default="", dest="source_command", metavar="TEXT",
                        help="with --update-baseline: the command that produced CURRENT, recorded in the provenance "
                             "(default: the one CURRENT's sweep folder records in its sweep.json)")
    parser.add_argument("--previous-baseline", metavar="TABLE",
                        help="the baseline as the pull request's target branch has it (e.g. extracted with git "
                             "archive): when BASELINE differs from it, the report lists what the refresh accepts, "
                             "which the verdict against BASELINE cannot show; a path that is not there: a first "
                             "baseline (docs/ci.md)")
    parser.add_argument("--allow-stale", action="store_true",
                        help="compare a sweep folder whose config was edited since it ran (by default refused: its "
                             "table is not what the config defines now); never with --update-baseline")


def run(args: argparse.Namespace) -> int:
    from xaibench.errors import UserError
    from xaibench.results.compare import compare_tables, load_policy
    from xaibench.results.compare.tables import load_results, partial_note

    if args.report_limit < 0 or 0 < args.report_limit < 4096:
        raise UserError(f"--report-limit must be 0 (no limit) or at least 4096 bytes, got {args.report_limit}")
    _check_update_flags(args)
    _check_outputs(args)
    if not args.update_baseline:
        _check_distinct(args)
    policy = load_policy(args.policy)
    current = load_results(args.current, "current", compared_only=not args.update_baseline)
    config = _check_config(args)
    if args.update_baseline:
        _check_update_target(args)
        if partial_note(current):
            raise UserError(f"current {args.current} is partial ({partial_note(current)}); finish the sweep (rerun it: "
                            "finished cells are reused) before baselining it")
        _check_fresh(args, current)
        return _update(args, current, policy)
    baseline = load_results(args.baseline, "baseline", compared_only=True)
    from xaibench.results.compare.baseline import baseline_file, check_pair

    check_pair(baseline_file(args.baseline))  # a table and provenance from two updates (one interrupted)
    _check_order(args)
    if baseline.empty:
        raise UserError(f"baseline {args.baseline} has no rows, so it guards nothing; make it from a finished sweep "
                        "with --update-baseline (docs/ci.md)")
    if partial_note(baseline):
        raise UserError(f"baseline {args.baseline} is partial ({partial_note(baseline)}): cells it lacks would pass "
                        "unchecked; make it from a finished sweep with --update-baseline (docs/ci.md)")
    comparison = compare_tables(baseline, current, policy, strict_changes=args.strict_changes,
                                allow_missing=args.allow_missing)
    context = {**_context(args, baseline, current), "config": config}
    if args.previous_baseline:
        context["refresh"] = _refresh(args.previous_baseline, baseline, policy)
    _emit(args, comparison, context)
    _warn(args, comparison, current)
    _warn_config(args, config)
    return comparison.exit_code


# flags of a comparison that ``--update-baseline`` (which writes a baseline, no verdict) would leave unused
VERDICT_ONLY = {"report": "--report", "json": "--json", "junit": "--junit", "previous_baseline": "--previous-baseline",
                "github_annotations": "--github-annotations", "strict_changes": "--strict-changes",
                "allow_missing": "--allow-missing"}


def _check_update_flags(args: argparse.Namespace) -> None:
    """Refuse a flag the mode does not use, before anything is read or written: ``--update-baseline --json v.json``
    wrote the baseline and no ``v.json`` (exit 0), so a CI step reading it next failed on a missing file, and
    ``--command`` without ``--update-baseline`` recorded nothing (ciuser25)."""
    from xaibench.errors import UserError

    if args.update_baseline:
        given = [flag for name, flag in VERDICT_ONLY.items() if getattr(args, name)]
        if given:
            raise UserError(f"{', '.join(given)} with --update-baseline: it writes the baseline, not a verdict, so "
                            f"{'they' if len(given) > 1 else 'it'} would be ignored; run compare without "
                            "--update-baseline for the report and verdict (nothing written)")
    elif args.source_command:
        raise UserError("--command is recorded only with --update-baseline (in the baseline's provenance); add "
                        "--update-baseline or drop --command (nothing written)")


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse ``--json``/``--report``/``--junit`` naming a table this command reads (``--json
    results/runs/ci/table.parquet`` replaced the sweep's table with the verdict), a path that cannot be written (a
    folder, a file where a folder should be), or two of them the same file; before anything is read or written."""
    from xaibench.commands.outputs import (refuse_overwriting_inputs, refuse_same_outputs, refuse_unwritable,
                                           table_file)
    from xaibench.results.compare.baseline import baseline_file, provenance_file

    inputs = {"baseline": baseline_file(args.baseline), "baseline's provenance": provenance_file(
        baseline_file(args.baseline)), "current table": table_file(args.current)}
    if args.previous_baseline:
        inputs["previous baseline"] = baseline_file(args.previous_baseline)
    outputs = {flag: getattr(args, flag) for flag in ("report", "json", "junit") if getattr(args, flag)}
    for flag, output in outputs.items():
        refuse_overwriting_inputs(output, f"--{flag}", inputs)
        refuse_unwritable(output, f"--{flag}")  # up front: a bad --junit used to leave --report written, exit 2
    refuse_same_outputs({f"--{flag}": output for flag, output in outputs.items()})
    for flag, output in outputs.items():
        _refuse_other_format(flag, output)


OTHER_FORMAT = {"json": {".xml": "--junit"}, "junit": {".json": "--json"},
                "report": {".json": "--json", ".xml": "--junit"}}  # a suffix that is another flag's format


def _refuse_other_format(flag: str, output: str) -> None:
    """Refuse ``--junit verdict.json`` (XML written into a .json file, which the CI job then failed to parse as JSON)
    and the like: the flag mixed up with the one whose format the file's suffix names (review24)."""
    from xaibench.errors import UserError

    suffix = Path(output).suffix.lower()
    meant = OTHER_FORMAT[flag].get(suffix)
    if meant:
        what = {"json": "JSON", "junit": "JUnit XML", "report": "Markdown"}[flag]
        raise UserError(f"--{flag} {output}: --{flag} writes {what}, not {suffix}; did you mean {meant} {output}?")


def _check_distinct(args: argparse.Namespace) -> None:
    """Refuse BASELINE and CURRENT naming one table (a sweep folder and its ``table.parquet``, a link): compared with
    itself a table passes whatever it holds, so a CI script whose CURRENT points at the baseline (an unset variable,
    a copy-paste) passed on every run and checked nothing."""
    import os

    from xaibench.commands.outputs import table_file
    from xaibench.errors import UserError
    from xaibench.results.compare.baseline import baseline_file

    base, cur = baseline_file(args.baseline), table_file(args.current)
    if base.is_file() and cur.is_file() and os.path.samefile(base, cur):
        raise UserError(f"baseline {args.baseline} and current {args.current} are the same table ({cur}): compared "
                        "with itself it passes whatever it holds; give the current run's table or sweep folder (e.g. "
                        "results/runs/ci) as CURRENT")


def _refresh(previous: str, baseline, policy) -> dict:
    """What BASELINE changed relative to ``previous`` (the target branch's baseline). A pull request that commits a
    refreshed baseline is compared with it, so the verdict passes whatever the refresh accepted; this shows it.

    Returns:
        ``{"previous", "state"}``: ``added`` (no previous baseline: the first one), ``unchanged`` (no finding and no
        value differs), ``refreshed`` (with ``comparison``: previous -> BASELINE) or ``unreadable`` (with ``reason``;
        the verdict against BASELINE still stands).
    """
    from xaibench.errors import UserError
    from xaibench.results.compare import compare_tables
    from xaibench.results.compare.baseline import baseline_file
    from xaibench.results.compare.tables import load_results

    if not baseline_file(previous).exists():
        return {"previous": previous, "state": "added"}
    try:
        old = load_results(previous, "previous baseline", compared_only=True)
    except UserError as reason:
        return {"previous": previous, "state": "unreadable", "reason": str(reason)}
    comparison = compare_tables(old, baseline, policy)
    state = "refreshed" if comparison.findings or comparison.n_differing else "unchanged"
    return {"previous": previous, "state": state, "comparison": comparison}


def _check_order(args: argparse.Namespace) -> None:
    """Refuse BASELINE and CURRENT given the wrong way round: CURRENT is a refreshed baseline (it has the provenance
    file ``--update-baseline`` writes) and BASELINE is not. Compared that way, every degradation would read as an
    improvement and pass."""
    from xaibench.errors import UserError
    from xaibench.results.compare.baseline import baseline_file, read_provenance

    if read_provenance(baseline_file(args.current)) and not read_provenance(baseline_file(args.baseline)):
        raise UserError(f"current {args.current} is a committed baseline (it has a provenance file) and baseline "
                        f"{args.baseline} is not: the arguments look swapped; the order is "
                        f"xaibench compare BASELINE CURRENT")


def _check_update_target(args: argparse.Namespace) -> None:
    """Refuse ``--update-baseline`` onto a sweep's results folder (the arguments swapped): it would overwrite the
    run's table with the old baseline, and the next compare would pass whatever the run had measured."""
    from pathlib import Path

    from xaibench.errors import UserError
    from xaibench.results.collect import SWEEP_CELLS
    from xaibench.results.compare.baseline import baseline_file, read_provenance
    from xaibench.results.manifest import MANIFEST_NAME

    target = baseline_file(args.baseline)
    folder = Path(args.baseline) if Path(args.baseline).is_dir() else target.parent
    if (folder / MANIFEST_NAME).is_file() or (folder / SWEEP_CELLS).is_dir():
        what = "a sweep's results folder" if folder == Path(args.baseline) else f"in a sweep's results folder ({folder})"
    elif target.exists() and read_provenance(baseline_file(args.current)) and not read_provenance(target):
        what = "not a committed baseline (it has no provenance file) and current is one"
    else:
        return
    raise UserError(f"baseline {args.baseline} is {what}: the arguments look swapped; the order is "
                    "xaibench compare BASELINE CURRENT --update-baseline (nothing written)")


def _check_config(args: argparse.Namespace):
    """Refuse a sweep folder whose recorded command composes, with the config files as they are now, other cells
    than the sweep ran (``results/compare/config_check.py``): its verdict would be that of the old config. A stale
    folder under ``--allow-stale``, or a table whose config cannot be checked, is said on stderr and in the report
    (the returned ``ConfigCheck``: ``_warn_config``), never passed in silence."""
    from xaibench.errors import UserError
    from xaibench.results.compare.config_check import check_config

    check = check_config(args.current)
    if check.state == "stale" and (args.update_baseline or not args.allow_stale):
        escape = "" if args.update_baseline else ", or pass --allow-stale to compare it as it is"
        raise UserError(f"current {args.current} is stale: {check.reason}; rerun the sweep ({check.command}) and "
                        f"compare its table{escape} (nothing written)")
    return check


def _check_fresh(args: argparse.Namespace, current) -> None:
    """Refuse to baseline a table that was not made from the working tree as it is now (weights, model code, data
    files, xaibench's commit or a plugin module changed after its sweep): the baseline would record scores of a model
    or method the repository no longer has (``results/compare/freshness.py``)."""
    from pathlib import Path

    from xaibench.errors import UserError
    from xaibench.results.compare.freshness import stale_reasons

    folder = Path(args.current) if Path(args.current).is_dir() else Path(args.current).parent
    reasons = stale_reasons(current, folder)  # the folder's sweep.json names the plugin files the sweep ran
    if reasons:
        raise UserError(f"current {args.current} was not made from the working tree: {'; '.join(reasons)}; rerun the "
                        "sweep with a fresh store (store_dir=$(mktemp -d)) and update from its table (nothing written)")


def _warn(args: argparse.Namespace, comparison, current) -> None:
    """Warnings on stderr (also in the report): an unfinished current sweep, policy entries that matched nothing."""
    import sys

    from xaibench.results.compare.render import partial_text, unused_text
    from xaibench.results.compare.tables import partial_note

    if partial_note(current):
        print(f"xaibench compare: warning: {partial_text(args.current, partial_note(current))}", file=sys.stderr)
    if comparison.unused_overrides:
        print(f"xaibench compare: warning: {unused_text(comparison)}", file=sys.stderr)


def _warn_config(args: argparse.Namespace, check) -> None:
    """The stale (``--allow-stale``) or unchecked config of the current table, on stderr (the report says it too)."""
    import sys

    if check.state != "fresh":
        level = "warning" if check.state == "stale" else "note"
        print(f"xaibench compare: {level}: {check.text(args.current)}", file=sys.stderr, flush=True)


def _emit(args: argparse.Namespace, comparison, context: dict) -> None:
    from pathlib import Path

    from xaibench.engine.store import atomic_write_bytes
    from xaibench.results.compare.render import (dumps, finding_line, refresh_line, to_json, to_markdown,
                                                 verdict_line)

    names = {"baseline": args.baseline, "current": args.current}
    markdown = to_markdown(comparison, context=context, **names)
    if args.report:
        report = Path(args.report)
        full = report.with_name(f"{report.stem}.full{report.suffix or '.md'}")
        _remove_dead_temps(report, full)
        comment = to_markdown(comparison, context=context, limit=args.report_limit or None, full_report=str(full),
                              json_report=args.json or "", **names)
        if comment != markdown:  # shortened to fit a pull-request comment: the whole report beside it
            atomic_write_bytes(full, to_markdown(comparison, context=context, max_rows=None, **names).encode())
        atomic_write_bytes(report, comment.encode())
    if args.json:
        _remove_dead_temps(Path(args.json))
        atomic_write_bytes(Path(args.json), dumps(to_json(comparison, context=context, **names)).encode())
    if args.junit:
        from xaibench.results.compare.junit import to_junit

        _remove_dead_temps(Path(args.junit))
        atomic_write_bytes(Path(args.junit), to_junit(comparison, context=context, **names))
    if not args.quiet:
        print(markdown)
    print(verdict_line(comparison), flush=True)
    if args.github_annotations:
        from xaibench.results.compare.annotations import github_annotations

        for line in github_annotations(comparison, report=args.report or ""):
            print(line, flush=True)
    refresh = refresh_line(context)  # the pull request's own baseline refresh: what the verdict above cannot show
    if refresh:
        print(f"  {refresh}", flush=True)
    if args.quiet:  # a CI log then still says what failed (the report went to a file)
        failing = [f for f in comparison.findings if f.fails]
        for finding in failing[:UPDATE_LINES]:
            print(f"  {finding_line(finding)}")
        if len(failing) > UPDATE_LINES:
            print(f"  ... and {len(failing) - UPDATE_LINES} more" + (f" ({args.report})" if args.report else ""))
        if failing:  # what may explain them: a changed model (weights, code, accuracy) or dataset, once (a
            # revision failing under --strict-changes is listed above)
            listed = {id(finding) for finding in failing[:UPDATE_LINES]}
            revisions = [f for f in comparison.of_kind("revision") if id(f) not in listed]
            for finding in revisions[:UPDATE_LINES]:
                print(f"  {finding_line(finding)}")


def _context(args: argparse.Namespace, baseline, current) -> dict:
    from xaibench.results.compare.baseline import baseline_file, read_provenance, table_origin
    from xaibench.results.compare.tables import partial_note

    base = table_origin(baseline)
    provenance = read_provenance(baseline_file(args.baseline))
    if provenance:
        base.update(created_at=provenance.get("created_at", base["created_at"]),
                    git_sha=provenance.get("git_sha", base["git_sha"]), command=provenance.get("command", ""),
                    repository_sha=(provenance.get("repository") or {}).get("git_sha", ""))
    current_origin = table_origin(current)
    if partial_note(current):
        current_origin["partial"] = partial_note(current)
    return {"baseline": base, "current": current_origin}


def _remove_dead_temps(*outputs) -> None:
    """Remove the temp files a killed compare left beside ``outputs`` (never one a live writer holds)."""
    from xaibench.engine.store import remove_dead_temps

    for output in outputs:
        remove_dead_temps(output)


def _update(args: argparse.Namespace, current, policy) -> int:
    import shlex

    from xaibench.results.compare.baseline import baseline_file, provenance_file, write_baseline

    target = baseline_file(args.baseline)
    if target.suffix not in (".parquet", ".csv"):
        from xaibench.errors import UserError

        raise UserError(f"baseline {args.baseline} must be a .parquet or .csv file or a folder (its table.parquet): "
                        "compare reads nothing else")
    _show_update(target, current, policy)
    _remove_dead_temps(target, provenance_file(target))
    made_by = ["--command", args.source_command] if args.source_command else []
    this = shlex.join(["xaibench", "compare", str(args.baseline), str(args.current), "--update-baseline", *made_by])
    table, provenance = write_baseline(current, target, source=str(args.current),
                                       command=args.source_command or _sweep_command(args.current),
                                       update_command=this)  # recorded as a shell would run it again
    print(f"baseline updated: {table} ({len(current)} rows); provenance -> {provenance}")
    return 0


def _sweep_command(current: str) -> str:
    """The command line the sweep folder ``current`` (or its ``table.parquet``) records in its ``sweep.json``, as a
    shell would run it again; "" where it records none. ``--update-baseline`` without ``--command`` recorded ""
    although the sweep knew its command, so the next failing compare's hint showed a placeholder."""
    from xaibench.errors import UserError
    from xaibench.results.collect import TABLE_NAME
    from xaibench.results.compare.config_check import rerun_command
    from xaibench.results.manifest import MANIFEST_NAME, recorded_command

    path = Path(current)
    folder = path if path.is_dir() else path.parent
    if not (folder / MANIFEST_NAME).is_file() or (not path.is_dir() and path.name != TABLE_NAME):
        return ""
    try:
        command = recorded_command(folder)
    except UserError:  # a damaged sweep.json: the baseline records no command, as before
        return ""
    return rerun_command(command) if command else ""


def _show_update(target, current, policy) -> None:
    """Print what replacing the baseline at ``target`` with ``current`` changes (or why it cannot be compared)."""
    from xaibench.errors import UserError
    from xaibench.results.compare import compare_tables
    from xaibench.results.compare.render import finding_line, verdict_line
    from xaibench.results.compare.tables import load_results

    if not target.exists():
        print(f"no previous baseline at {target}")
        return
    try:
        previous = load_results(target, "baseline")
    except UserError as reason:
        print(f"previous baseline not compared: {reason}")
        return
    comparison = compare_tables(previous, current, policy)
    print("what this update changes, relative to the previous baseline (for the commit message):")
    print(verdict_line(comparison))
    for finding in comparison.findings[:UPDATE_LINES]:
        print(f"  {finding_line(finding)}")
    if len(comparison.findings) > UPDATE_LINES:
        print(f"  ... and {len(comparison.findings) - UPDATE_LINES} more (xaibench compare BASELINE CURRENT lists all)")
