"""A ``Comparison`` as a Markdown report for a pull-request comment: the verdict, what was compared, one table per
kind of finding, how to accept the changes, and the pull request's own baseline refresh; shortened to a byte limit
(passing findings' rows left out first) with a line that says where the rest is."""
from __future__ import annotations

import math
import shlex

from xaibench.results.compare.change_text import describe_test
from xaibench.results.compare.findings import Comparison, Finding
from xaibench.results.compare.names import unit_text
from xaibench.results.compare.render_lines import (control_names, finding_line, listed, partial_text, refresh_line,
                                                   schema_text, shortened_text, unused_text)
from xaibench.results.compare.render_shared import (acceptable, baseline_command, direction, has_errors,
                                                    other_sweep_command, refresh_of, stale, update_command)
from xaibench.results.schema import SCHEMA_VERSION

MAX_ROWS = 60  # per section; the JSON verdict always lists everything
REFRESH_LINES = 20  # findings listed of a baseline the pull request refreshes (--previous-baseline)
# Which below_control findings the report lists: a lead that merely moved within the tolerance (a method that only
# tied its control, 0.301 vs 0.300 -> 0.301 vs 0.302) is noise, listed on every run as clutter; it is counted in one
# line and kept in the JSON verdict.
BELOW_CONTROL_RULE = ("listed where the change of the method's per-sample lead over the control is significant "
                      "(fails) or beyond the policy's tolerance, atol + rtol·mean|b| (passes unless significant)")


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
    state = refresh_of(context).get("state")
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
              f"Compared {comparison.n_units} units (method x metric x experiment) and {_pairs(comparison)}.", ""]
    verdict = sections + _closing(comparison, baseline, current, context)  # then the pull request's own refresh
    return "\n".join(lines + verdict + _refresh_lines(baseline, context))


def _refresh_lines(baseline: str, context: dict) -> list[str]:
    """The report's section on the pull request's own baseline refresh: the findings from the target branch's
    baseline to this one, which the verdict (against this one) passes by construction."""
    refresh = refresh_of(context)
    if refresh.get("state") in ("added", "unreadable"):
        return [f"{'ℹ️' if refresh['state'] == 'added' else '⚠️'} {refresh_line(context)}.", ""]
    if refresh.get("state") != "refreshed":
        return []
    changes = refresh["comparison"]
    findings = changes.findings
    lines = ["### 🔄 This pull request refreshes the baseline", "",
             f"`{baseline}` differs from the target branch's baseline `{refresh['previous']}`: the verdict above is "
             "against the refreshed one, so it cannot show what the refresh accepts. Against the target branch's "
             f"baseline the run would {'fail' if changes.failed else 'pass'} ({listed(changes)}; "
             f"{changes.n_units} units, {changes.n_differing} of {changes.n_pairs} paired values differ). Check that "
             "the commit that refreshed it says why:", ""]
    lines += [f"- {'❌' if f.fails else 'ℹ️'} {finding_line(f)}" for f in findings[:REFRESH_LINES]]
    if len(findings) > REFRESH_LINES:
        lines.append(f"- ... and {len(findings) - REFRESH_LINES} more (`xaibench compare "
                     f"{shlex.quote(str(refresh['previous']))} {shlex.quote(str(baseline))}` lists them all)")
    return lines + [""]


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


def beyond_tolerance(finding: Finding) -> bool:
    """Whether a finding's tested change exceeds its tolerance (a ``below_control`` lead that moved further than
    the policy's bound); False without a change."""
    change = finding.change
    return change is not None and abs(change.delta) > change.tolerance


def _within_tolerance_line(count: int, others_listed: bool) -> str:
    what = "more method" if others_listed else "method"
    return (f"{count} {what}{'s' if count > 1 else ''} fell to or below a control by a change of "
            f"{'their' if count > 1 else 'its'} lead within the policy's tolerance (noise; passed, not listed: "
            "see the JSON verdict's below_control findings; `--strict-changes` fails and lists them).")


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
    if not acceptable(comparison):
        return []  # only changes passed as noise: nothing to accept
    if (context.get("current") or {}).get("partial"):
        return ["The current sweep did not finish, so it cannot become a baseline (`--update-baseline` refuses it): "
                "rerun it (finished cells are reused) and compare again.", ""]
    if has_errors(comparison):
        return ["Cells or metrics that now error cannot become a baseline (`--update-baseline` refuses error "
                "rows): fix them, rerun, compare again.", ""]
    if stale(context):
        return ["The current sweep is stale (above), so it cannot become a baseline (`--update-baseline` refuses it): "
                "rerun it with the config as it is now and compare again.", ""]
    command = update_command(baseline, current, baseline_command(context))
    other = other_sweep_command(context)
    note = (f" The current sweep ran `{other}`, not the command the baseline records: if that is the new one, give it "
            "to `--command` instead, so the baseline records what makes it.") if other else ""
    return [f"If these changes are intended, accept them deliberately: `{command}`, "
            f"then commit the baseline saying why the scores moved (docs/ci.md).{note}", ""]


def _pairs(comparison: Comparison) -> str:
    """``30 paired values: 10 differ at all (largest |Δ| 0.2)``, or, with none paired, that no unit matched (every
    unit missing or new: "0 paired values: 0 differ at all (largest |Δ| 0)" read as a clean comparison)."""
    if not comparison.n_pairs and comparison.n_units:
        return ("0 paired values: no unit of the current table matched one of the baseline's (each is listed as "
                "missing or new below)")
    return (f"{comparison.n_pairs} paired values: {comparison.n_differing} differ at all (largest |Δ| "
            f"{comparison.max_abs_diff:.3g})")


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
        status = f"{'❌' if f.fails else 'ℹ️'} {f.kind if f.kind != 'unconfirmed' else 'not significant'}"
        relative = f"{c.relative:+.1%}" if math.isfinite(c.relative) else "-"
        cells = [status, *unit_text(f.unit), f"{c.baseline_mean:.4g}", f"{c.current_mean:.4g}", f"{c.delta:+.4g}",
                 relative, direction(f), describe_test(c, tol), _tolerance_text(c, tol)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


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
