"""Render a ``Comparison``: a Markdown report for a pull-request comment and a machine-readable JSON verdict."""
from __future__ import annotations

import json
import math
import shlex
from typing import Any

from xaibench.results.compare.change_text import describe_test
from xaibench.results.compare.findings import KINDS, Comparison, Finding
from xaibench.results.compare.names import unit_path, unit_text
from xaibench.results.schema import MEASUREMENTS_ADDED, SCHEMA_VERSION

MAX_ROWS = 60  # per section; the JSON verdict always lists everything
REFRESH_LINES = 20  # findings listed of a baseline the pull request refreshes (--previous-baseline)
COMMENT_LIMIT = 65_536  # GitHub's limit on a pull-request comment's body, in characters
COMMENT_BUDGET = 65_000  # what --report writes at most, in UTF-8 bytes: under the limit however it is counted


def verdict_line(comparison: Comparison) -> str:
    """One line for the terminal: pass/fail, the failing findings by kind, then the others (``FAIL (2 failing:
    1 degraded, 1 status; also reported, not failing: 1 missing, 3 new) -- ...``). One count per kind mixed the two:
    ``6 failing finding(s); 7 missing, 7 new`` read as 14 failures of which the reader had to guess which."""
    failing = [f for f in comparison.findings if f.fails]
    passing = _by_kind([f for f in comparison.findings if not f.fails])
    if failing:
        listed = f"{len(failing)} failing: {_by_kind(failing)}" + (
            f"; also reported, not failing: {passing}" if passing else "")
    else:
        listed = f"reported, not failing: {passing}" if passing else "no findings"
    head = "FAIL" if comparison.failed else "PASS"
    return (f"xaibench compare: {head} ({listed}) -- {comparison.n_units} units, "
            f"{comparison.n_pairs} paired values, {comparison.n_differing} differ at all")


def _by_kind(findings: list[Finding]) -> str:
    """``1 missing, 3 new``: the findings counted by kind, in ``KINDS`` order; "" for none."""
    counts = {kind: 0 for kind in KINDS}
    for finding in findings:
        counts[finding.kind] += 1
    return ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)


def finding_line(finding: Finding) -> str:
    """One plain-text line for a finding: ``degraded: mlp/toy/saliency/faithfulness_correlation ↑: worse: ...``."""
    names = unit_path(finding.unit)
    return f"{finding.kind}: " + (f"{names}: " if names else "") + finding.message.removeprefix(finding.kind + ": ")


def to_markdown(comparison: Comparison, *, baseline: str, current: str, context: dict | None = None,
                limit: int | None = None, max_rows: int | None = MAX_ROWS, full_report: str = "",
                json_report: str = "") -> str:
    """A Markdown report: verdict, what was compared, then one table per kind of finding.

    Args:
        limit: at most this many UTF-8 bytes (``COMMENT_BUDGET``: a pull-request comment), None: no limit. Rows are
            left out to fit, passing findings' before failing ones', and a line under the heading says how many and
            where the rest is (``full_report``: the report without a limit, ``json_report``: the JSON verdict).
        max_rows: rows shown per section (None: all), whatever the limit.
    """
    context = context or {}
    cap = max_rows if max_rows is not None else len(comparison.findings)
    text = _render(comparison, baseline, current, context, (cap, cap))
    if limit is None or _size(text) <= limit:
        return text
    where = (full_report, json_report)
    for caps in _tighter(cap):
        text = _render(comparison, baseline, current, context, caps, where, limit)
        if _size(text) <= limit:
            return text
    return _cut(text, limit, comparison, where)


def _size(text: str) -> int:
    """UTF-8 bytes: at least the characters, however a service counts them (code points, UTF-16 units)."""
    return len(text.encode("utf-8"))


def _tighter(cap: int) -> list[tuple[int, int]]:
    """Row caps (failing, passing) per section, loosest first: passing rows go first, then failing ones."""
    steps = sorted({cap * k // 12 for k in range(12)} | {s for s in (1, 2, 3) if s < cap}, reverse=True)  # ~15
    return [(cap, s) for s in steps] + [(s, 0) for s in steps if s < cap]


def _render(comparison: Comparison, baseline: str, current: str, context: dict, caps: tuple[int, int],
            where: tuple[str, str] | None = None, limit: int | None = None) -> str:
    """The report with at most ``caps`` (failing, passing) rows per section; ``where``: the (full report, JSON)
    paths named by the line that says rows were left out (None: no such line); ``limit``: the bytes it had to fit."""
    mark = "❌ regression" if comparison.failed else "✅ pass"
    state = _refresh(context).get("state")
    if state in ("refreshed", "added"):
        mark += (" against a baseline this pull request refreshes (what the refresh accepts is listed below)"
                 if state == "refreshed" else " against the first baseline, which this pull request adds")
    sections, left_out = _sections(comparison, caps)
    lines = [f"## xaibench compare: {mark}", ""]
    if where is not None and left_out:
        lines += [f"⚠️ {shortened_text(left_out, len(comparison.findings), *where, limit=limit)}", ""]
    lines += [f"Baseline `{baseline}`{_origin(context.get('baseline'))} vs current `{current}`"
              f"{_origin(context.get('current'))}.", "",
              f"Policy `{comparison.policy.name}`: {comparison.policy.default.describe()}{_overrides(comparison)}"
              f"{'; --strict-changes' if comparison.strict_changes else ''}"
              f"{'; --allow-missing' if comparison.allow_missing else ''}.", "",
              *_warnings(comparison, baseline, current, context),
              f"Compared {comparison.n_units} units (method x metric x experiment) and {comparison.n_pairs} paired "
              f"values: {comparison.n_differing} differ at all (largest |Δ| {comparison.max_abs_diff:.3g}).", ""]
    verdict = sections + _closing(comparison, baseline, current, context)  # then the pull request's own refresh
    return "\n".join(lines + verdict + _refresh_lines(baseline, context))


def _refresh(context: dict | None) -> dict:
    return (context or {}).get("refresh") or {}


def refresh_line(context: dict | None) -> str:
    """One plain line on a baseline the pull request refreshes (``--previous-baseline``), or "" when it does not."""
    refresh = _refresh(context)
    state, previous = refresh.get("state"), refresh.get("previous", "")
    if state == "added":
        return f"baseline added by this pull request (the target branch has none at {previous}): review its values"
    if state == "unreadable":
        return f"the target branch's baseline {previous} was not compared: {refresh['reason']}"
    if state != "refreshed":
        return ""
    changes = refresh["comparison"]
    return (f"baseline refreshed by this pull request: against the target branch's ({previous}) it accepts "
            f"{_listed(changes)} ({sum(f.fails for f in changes.findings)} of them would fail)")


def _listed(comparison: Comparison) -> str:
    """``7 degraded, 1 revision``: the findings by kind (or that values moved only within tolerance)."""
    return ", ".join(f"{n} {kind}" for kind, n in _counts(comparison).items() if n) or "values within tolerance"


def _refresh_lines(baseline: str, context: dict) -> list[str]:
    """The report's section on the pull request's own baseline refresh: the findings from the target branch's
    baseline to this one, which the verdict (against this one) passes by construction."""
    refresh = _refresh(context)
    if refresh.get("state") in ("added", "unreadable"):
        return [f"{'ℹ️' if refresh['state'] == 'added' else '⚠️'} {refresh_line(context)}.", ""]
    if refresh.get("state") != "refreshed":
        return []
    changes = refresh["comparison"]
    findings = changes.findings
    lines = ["### 🔄 This pull request refreshes the baseline", "",
             f"`{baseline}` differs from the target branch's baseline `{refresh['previous']}`: the verdict above is "
             "against the refreshed one, so it cannot show what the refresh accepts. Against the target branch's "
             f"baseline the run would {'fail' if changes.failed else 'pass'} ({_listed(changes)}; "
             f"{changes.n_units} units, {changes.n_differing} of {changes.n_pairs} paired values differ). Check that "
             "the commit that refreshed it says why:", ""]
    lines += [f"- {'❌' if f.fails else 'ℹ️'} {finding_line(f)}" for f in findings[:REFRESH_LINES]]
    if len(findings) > REFRESH_LINES:
        lines.append(f"- ... and {len(findings) - REFRESH_LINES} more (`xaibench compare "
                     f"{shlex.quote(str(refresh['previous']))} {shlex.quote(str(baseline))}` lists them all)")
    return lines + [""]


def shortened_text(left_out: int, total: int, full_report: str = "", json_report: str = "",
                   limit: int | None = None) -> str:
    """The line of a report shortened to fit a pull-request comment (``limit``: None or ``COMMENT_BUDGET``) or a
    ``--report-limit`` of ``limit`` bytes: how much is left out and where it is."""
    where = [f"the full report is `{full_report}`" if full_report else "",
             f"every finding is in `{json_report}`" if json_report else ""]
    where = (" and ".join(w for w in where if w)
             or "xaibench compare prints the full report (and --json writes every finding)")
    fit = (f"fit a GitHub comment ({COMMENT_LIMIT:,} characters)" if limit in (None, COMMENT_BUDGET)
           else f"--report-limit {limit:,} bytes")
    return (f"Shortened to {fit}: {left_out} of {total} findings' "
            f"rows are left out (passing ones first); {where}.")


def _sections(comparison: Comparison, caps: tuple[int, int]) -> tuple[list[str], int]:
    """The report's finding sections under ``caps``, and how many findings' rows they leave out."""
    lines, left_out = [], 0

    def section(title: str, findings: list[Finding], table) -> None:
        nonlocal lines, left_out
        if not findings:
            return
        shown = _shown(findings, caps)
        left_out += len(findings) - len(shown)
        lines += [f"### {title}", "", *table(shown), *_more(len(findings) - len(shown)), ""]

    section("Score changes beyond tolerance", comparison.of_kind("degraded", "improved"), _value_table)
    below = comparison.of_kind("below_control")
    shown = [f for f in below if f.fails or beyond_tolerance(f)]
    section(f"Methods no longer better than a control: {BELOW_CONTROL_RULE}", shown, _finding_table)
    lines += [_within_tolerance_line(len(below) - len(shown), bool(shown)), ""] if len(shown) < len(below) else []
    section("Large but not significant (passed: too few samples moved one way to tell them from samples that flip on "
            "another machine, or samples moved both ways; check them if nothing else changed, `--strict-changes` "
            "fails them)", comparison.of_kind("unconfirmed"), _value_table)
    section(f"Control methods ({control_names(comparison)}): reference points, their own drift is "
            "reported and does not gate (`gate_controls: true` in the policy, as in `strict`, or `--strict-changes` "
            "gates it); every method must still beat them", comparison.of_kind("control"), _value_table)
    for kinds, title in ((("status", "direction"), "Status changes"), (("missing",), "Missing"), (("new",), "New"),
                         (("rank",), "Rank changes (apart by more than the tolerance in both tables)"),
                         (("revision",), "Changed data or weights")):
        section(title, comparison.of_kind(*kinds), _finding_table)
    return lines, left_out


# Which below_control findings the report lists: a lead that merely moved within the tolerance (a method that only
# tied its control, 0.301 vs 0.300 -> 0.301 vs 0.302) is noise, listed on every run as clutter; it is counted in one
# line and kept in the JSON verdict.
BELOW_CONTROL_RULE = ("listed where the change of the method's per-sample lead over the control is significant "
                      "(fails) or beyond the policy's tolerance, atol + rtol·mean|b| (passes unless significant)")


def beyond_tolerance(finding: Finding) -> bool:
    """Whether a finding's tested change exceeds its tolerance (a ``below_control`` lead that moved further than
    the policy's bound); False without a change."""
    change = finding.change
    return change is not None and abs(change.delta) > change.tolerance


def _within_tolerance_line(count: int, listed: bool) -> str:
    what = "more method" if listed else "method"
    return (f"{count} {what}{'s' if count > 1 else ''} fell to or below a control by a change of "
            f"{'their' if count > 1 else 'its'} lead within the policy's tolerance (noise; passed, not listed: "
            "see the JSON verdict's below_control findings; `--strict-changes` fails and lists them).")


def control_names(comparison: Comparison) -> str:
    """The policy's control entries, then the methods the rows record as controls that no entry names."""
    names = [str(entry) for entry in comparison.policy.controls]
    return ", ".join([*names, *(m for m in comparison.recorded_controls if m not in names)]) or "none"


def _shown(findings: list[Finding], caps: tuple[int, int]) -> list[Finding]:
    """The first ``caps[0]`` failing and ``caps[1]`` passing findings, in their order (failing ones come first)."""
    failing = [f for f in findings if f.fails][:caps[0]]
    return failing + [f for f in findings if not f.fails][:caps[1]]


def _cut(text: str, limit: int, comparison: Comparison, where: tuple[str, str]) -> str:
    """Last resort when even the heading lines exceed ``limit`` (thousands of policy overrides): cut at a line."""
    everything = len(comparison.findings)
    note = f"\n\n⚠️ {shortened_text(everything, everything, *where, limit=limit)} (cut here)\n"
    room = limit - _size(note)
    head = text.encode("utf-8")[:max(room, 0)].decode("utf-8", errors="ignore")
    return head[:head.rfind("\n") + 1 if "\n" in head else 0].rstrip("\n") + note


def _warnings(comparison: Comparison, baseline: str, current: str, context: dict) -> list[str]:
    """Lines noting a table read from an older schema, warning of a partial current table, of one whose config was
    not checked or is stale (``config_check.ConfigCheck``) and of policy entries that matched nothing."""
    lines = []
    for role, path in (("baseline", baseline), ("current", current)):
        version = (context.get(role) or {}).get("schema_version") or SCHEMA_VERSION
        if version < SCHEMA_VERSION:
            lines += [f"ℹ️ {schema_text(role, path, version)}", ""]
    note = (context.get("current") or {}).get("partial")
    if note:
        lines += [f"⚠️ {partial_text(current, note)}", ""]
    config = context.get("config")
    if config is not None and config.text(current):  # stale (--allow-stale) or not checked: never a silent pass
        lines += [f"{'⚠️' if config.state == 'stale' else 'ℹ️'} {config.text(f'`{current}`')}.", ""]
    if comparison.unused_overrides:
        lines += [f"⚠️ {unused_text(comparison)}", ""]
    for coarse in comparison.coarse_tolerances:
        lines += [f"ℹ️ {coarse.text()}.", ""]
    return lines


def _closing(comparison: Comparison, baseline: str, current: str, context: dict) -> list[str]:
    """The last lines: nothing changed, or how to accept the changes (or why they cannot be accepted yet)."""
    if not comparison.findings:
        return ["No differences beyond tolerance, no status, coverage or rank changes.", ""]
    if not _acceptable(comparison):
        return []  # only changes passed as noise: nothing to accept
    if (context.get("current") or {}).get("partial"):
        return ["The current sweep did not finish, so it cannot become a baseline (`--update-baseline` refuses it): "
                "rerun it (finished cells are reused) and compare again.", ""]
    if _errors(comparison):
        return ["Cells or metrics that now error cannot become a baseline (`--update-baseline` refuses error "
                "rows): fix them, rerun, compare again.", ""]
    if _stale(context):
        return ["The current sweep is stale (above), so it cannot become a baseline (`--update-baseline` refuses it): "
                "rerun it with the config as it is now and compare again.", ""]
    command = update_command(baseline, current, _baseline_command(context))
    return [f"If these changes are intended, accept them deliberately: `{command}`, "
            "then commit the baseline saying why the scores moved (docs/ci.md).", ""]


def schema_text(role: str, path: str, version: int) -> str:
    """The note for a table written in an older schema that differs from this one by measurement columns only."""
    added = [c for v in range(version + 1, SCHEMA_VERSION + 1) for c in MEASUREMENTS_ADDED.get(v, ())]
    return (f"{role} `{path}` is a results schema v{version} table, read as v{SCHEMA_VERSION}: it lacks "
            f"{', '.join(added)}, which only describe how a run went (unknown here); the values are compared as "
            "usual" + ("; `--update-baseline` records them" if role == "baseline" else "") + ".")


def partial_text(current: str, note: str) -> str:
    """The warning for a current table from a sweep that did not finish."""
    return f"current {current} is partial ({note}): the cells it lacks are reported as missing"


def unused_text(comparison: Comparison) -> str:
    """The warning for policy entries that match no family or metric of either table."""
    names = ", ".join(comparison.unused_overrides)
    return (f"policy {comparison.policy.name} sets {names}, which names no metric family or metric (or, for a "
            "control, method) of either table "
            "(a misspelling?): that tolerance applied to nothing")


def _acceptable(comparison: Comparison) -> bool:
    """Whether anything changed that a baseline refresh would accept (changes passed as noise are not that)."""
    return any(f.kind != "unconfirmed" and f.details.get("would_be") != "unconfirmed" for f in comparison.findings)


def _stale(context: dict | None) -> bool:
    """Whether the current sweep folder is stale, compared under ``--allow-stale`` (``config_check.ConfigCheck``)."""
    config = (context or {}).get("config")
    return config is not None and config.state == "stale"


def _errors(comparison: Comparison) -> bool:
    return any(f.details.get("after") == "error" for f in comparison.of_kind("status"))


def update_command(baseline: str, current: str, command: str = "") -> str:
    """The command that makes ``current`` the new baseline (with its provenance); ``command``: the one that produced
    the current table (the baseline's provenance records the one that produced it), else a placeholder."""
    produced_by = shlex.quote(command) if command else "'<the command that produced the current table>'"
    return (f"xaibench compare {shlex.quote(str(baseline))} {shlex.quote(str(current))} --update-baseline "
            f"--command {produced_by}")


def _baseline_command(context: dict | None) -> str:
    return str(((context or {}).get("baseline") or {}).get("command") or "")


def to_json(comparison: Comparison, *, baseline: str, current: str, context: dict | None = None) -> dict[str, Any]:
    """The verdict as plain JSON-able data (every finding, the policy, counts)."""
    return {
        "verdict": "fail" if comparison.failed else "pass",
        "exit_code": comparison.exit_code,
        "baseline": {"path": baseline, **((context or {}).get("baseline") or {})},
        "current": {"path": current, **((context or {}).get("current") or {})},
        "config_check": (context or {})["config"].as_dict() if (context or {}).get("config") else None,
        "policy": comparison.policy.as_dict(),
        "strict_changes": comparison.strict_changes,
        "allow_missing": comparison.allow_missing,
        "unused_overrides": list(comparison.unused_overrides),
        "recorded_controls": list(comparison.recorded_controls),  # methods whose rows record the control role
        "coarse_tolerances": [coarse.as_dict() for coarse in comparison.coarse_tolerances],
        "counts": {"units": comparison.n_units, "pairs": comparison.n_pairs, "differing": comparison.n_differing,
                   "failing": sum(1 for f in comparison.findings if f.fails), **_counts(comparison)},
        "max_abs_diff": comparison.max_abs_diff,
        "findings": [_finding_json(f) for f in comparison.findings],
        "update_command": (update_command(baseline, current, _baseline_command(context))
                           if _acceptable(comparison) and not _errors(comparison) and not _stale(context)
                           and not ((context or {}).get("current") or {}).get("partial") else None),
        "baseline_refresh": _refresh_json(context),
    }


def _refresh_json(context: dict | None) -> dict | None:
    """``--previous-baseline``'s outcome: its path, ``state``, and for a refresh its verdict, counts and findings."""
    refresh = _refresh(context)
    if not refresh:
        return None
    out = {k: v for k, v in refresh.items() if k != "comparison"}
    if "comparison" in refresh:
        changes = refresh["comparison"]
        out.update(would_fail=changes.failed, counts=_counts(changes),
                   findings=[_finding_json(f) for f in changes.findings])
    return out


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(_clean(data), indent=2, sort_keys=False) + "\n"


def _counts(comparison: Comparison) -> dict[str, int]:
    return {kind: len(comparison.of_kind(kind)) for kind in KINDS}


def _origin(info: dict | None) -> str:
    """`` (repository 1a2b3c4d5e, xaibench 563e086ea4, 2026-...)``: the commit of the user's repository a baseline
    was refreshed in (its provenance), xaibench's own source commit (``unknown`` when installed: left out), when."""
    if not info:
        return ""
    xaibench = str(info.get("git_sha") or "")
    bits = [f"repository {info['repository_sha'][:10]}" if info.get("repository_sha") else "",
            f"xaibench {xaibench[:10]}" if xaibench and xaibench != "unknown" else "", info.get("created_at", "")]
    bits = [b for b in bits if b]
    return f" ({', '.join(bits)})" if bits else ""


def _overrides(comparison: Comparison) -> str:
    policy = comparison.policy
    parts = [f"{k}: {', '.join(f'{f}={v:g}' if isinstance(v, float) else f'{f}={v}' for f, v in settings.items())}"
             for k, settings in {**policy.families, **policy.metrics}.items()]
    return f" (overrides: {'; '.join(parts)})" if parts else ""


def _value_table(findings: list[Finding]) -> list[str]:
    rows = ["| | model | dataset | method | metric | baseline | current | Δ | Δ / mean\\|b\\| | direction | test | tolerance |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for f in findings:
        c, tol = f.change, f.tolerance
        direction = _direction(f)
        status = f"{'❌' if f.fails else 'ℹ️'} {f.kind if f.kind != 'unconfirmed' else 'not significant'}"
        relative = f"{c.relative:+.1%}" if math.isfinite(c.relative) else "-"
        cells = [status, *unit_text(f.unit), f"{c.baseline_mean:.4g}", f"{c.current_mean:.4g}", f"{c.delta:+.4g}",
                 relative, direction, describe_test(c, tol), _tolerance_text(c, tol)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _direction(f: Finding) -> str:
    return f.details.get("direction") or ("better" if f.kind == "improved" else "worse")


def _tolerance_text(change, tol) -> str:
    if tol.mode == "elementwise":
        return f"{tol.atol:g} + {tol.rtol:g}·\\|b\\| per sample"
    return f"{change.tolerance:.3g} = {tol.atol:g} + {tol.rtol:g}·mean\\|b\\|"


def _finding_table(findings: list[Finding]) -> list[str]:
    rows = ["| | model | dataset | method | metric | what |", "|---|---|---|---|---|---|"]
    for f in findings:
        status = "❌" if f.fails else "ℹ️"
        message = f.message.replace("|", "\\|").replace("\n", " ")
        rows.append("| " + " | ".join([status, *unit_text(f.unit), message]) + " |")
    return rows


def _more(hidden: int) -> list[str]:
    return ["", f"... and {hidden} more (see the JSON verdict)"] if hidden else []


def _finding_json(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": f.kind, "fails": f.fails, "message": f.message, "unit": dict(f.unit),
                           "details": dict(f.details)}
    if f.change is not None:
        out["change"] = {k: getattr(f.change, k) for k in f.change.__dataclass_fields__}
        out["change"]["direction"] = _direction(f)
        out["tolerance"] = f.tolerance.as_dict()
    return out


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf and no numpy scalars: map them to null / Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
