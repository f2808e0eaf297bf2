"""A ``Comparison`` in plain one-line texts: the terminal's verdict line, a finding's line (also JUnit's), and
the notes (partial table, older schema, unused policy entries, a baseline refresh, a shortened report) that the
terminal and the Markdown report both print."""
from __future__ import annotations

from xaibench.results.compare.findings import KINDS, Comparison, Finding
from xaibench.results.compare.names import unit_path
from xaibench.results.compare.render_shared import counts, refresh_of
from xaibench.results.schema import MEASUREMENTS_ADDED, SCHEMA_VERSION

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
    return f"xaibench compare: {head} ({listed}) -- {comparison.n_units} units, {paired_text(comparison)}"


def paired_text(comparison: Comparison) -> str:
    """``30 paired values, 10 differ at all``; with none paired, that no unit matched: "0 paired values, 0 differ at
    all" read as a clean comparison when every unit was missing or new (a changed model parameter renames them)."""
    if not comparison.n_pairs and comparison.n_units:
        return "0 paired values (no unit matched one of the baseline's: each is missing or new)"
    return f"{comparison.n_pairs} paired values, {comparison.n_differing} differ at all"


def _by_kind(findings: list[Finding]) -> str:
    """``1 missing, 3 new``: the findings counted by kind, in ``KINDS`` order; "" for none."""
    by_kind = {kind: 0 for kind in KINDS}
    for finding in findings:
        by_kind[finding.kind] += 1
    return _joined(by_kind)


def _joined(by_kind: dict[str, int]) -> str:
    """``7 degraded, 1 revision``: the kinds counted more than zero times."""
    return ", ".join(f"{n} {kind}" for kind, n in by_kind.items() if n)


def listed(comparison: Comparison) -> str:
    """``7 degraded, 1 revision``: the findings by kind (or that values moved only within tolerance)."""
    return _joined(counts(comparison)) or "values within tolerance"


def finding_line(finding: Finding) -> str:
    """One plain-text line for a finding: ``degraded: mlp/toy/saliency/faithfulness_correlation ↑: worse: ...``."""
    names = unit_path(finding.unit)
    return f"{finding.kind}: " + (f"{names}: " if names else "") + finding.message.removeprefix(finding.kind + ": ")


def refresh_line(context: dict | None) -> str:
    """One plain line on a baseline the pull request refreshes (``--previous-baseline``), or "" when it does not."""
    refresh = refresh_of(context)
    state, previous = refresh.get("state"), refresh.get("previous", "")
    if state == "added":
        return f"baseline added by this pull request (the target branch has none at {previous}): review its values"
    if state == "unreadable":
        return f"the target branch's baseline {previous} was not compared: {refresh['reason']}"
    if state != "refreshed":
        return ""
    changes = refresh["comparison"]
    return (f"baseline refreshed by this pull request: against the target branch's ({previous}) it accepts "
            f"{listed(changes)} ({sum(f.fails for f in changes.findings)} of them would fail)")


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


def control_names(comparison: Comparison) -> str:
    """The policy's control entries, then the methods the rows record as controls that no entry names."""
    names = [str(entry) for entry in comparison.policy.controls]
    return ", ".join([*names, *(m for m in comparison.recorded_controls if m not in names)]) or "none"


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
