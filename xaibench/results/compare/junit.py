"""The verdict as a JUnit XML report (``xaibench compare --junit OUT.xml``), the test-report format GitLab
(``artifacts:reports:junit``: the merge request's test widget), Jenkins (``junit``), Azure Pipelines
(``PublishTestResults``) and CircleCI (``store_test_results``) read.

Layout:

- one ``<testcase>`` per unit ``compare_tables`` visited (one method on one metric in one experiment:
  ``Comparison.units``), named ``model/dataset/method/metric``, so the name alone says which unit it is (GitLab's
  merge-request widget shows the name only); each part with the parameters it was run with that differ from its
  shipped config (``stable_names``: ``mlp (hidden=[32])/synthetic_tabular [n_samples=10]/saliency
  (abs=False)/faithfulness_correlation (nr_runs=10)``, the bare names at the shipped ones), which a variant added to
  or dropped from the sweep does not change (the report's labels name the parameters the variants differ in, and
  would rename the others' testcases: CI history lost), in one ``<testsuite>`` per (model, dataset), whose
  ``model/dataset`` is also the testcase's ``classname`` (GitLab's "Suite" column; dots become ``·`` so that Jenkins
  does not split a parameter such as ``noise=0.1`` into packages). A regression usually has one cause per model and
  dataset (a retrained model, changed data), so that is how failures group;
- a model or dataset with a display name (``model.label=...``) keeps its registry name in ``name`` and
  ``classname`` (``ComparedUnit.identity``): CI systems track a testcase across runs by them, and a renamed label
  must not read as tests removed and added. The label is in the failure's message and text (the finding's line, as
  the report names the unit) and in the suite's ``<properties>`` (``model_label``, ``dataset_label``);
- a failing finding is the testcase's ``<failure>`` (``<error>`` when the cell now errors: it could not be scored),
  whose text has every failing finding of the unit with its means, test, tolerance and the policy's rule; one that
  passes (noise, an improvement, a control's drift, a rank change) is its ``<system-out>``; a unit with nothing
  compared that does not fail (missing under ``--allow-missing``, new, not scored in either table) is
  ``<skipped>``;
- a first testsuite ``xaibench compare`` holds the verdict as ``<properties>``, one testcase for the current
  table's config check (fresh: passed; ``unchecked`` or ``stale`` under ``--allow-stale``: skipped, with why), and
  one per finding that names no unit (a changed model or dataset revision, "nothing compared").

So ``failures + errors > 0`` exactly when the verdict fails (exit code 1), the unit testcases are the JSON's
``counts.units``, and every failing finding of the JSON is in exactly one failing testcase.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from xaibench.results.compare.change_text import describe_test
from xaibench.results.compare.findings import ComparedUnit, Comparison, Finding
from xaibench.results.compare.names import NAMES
from xaibench.results.compare.render import finding_line
from xaibench.results.compare.stable_names import stable_part_name
from xaibench.results.compare.values import WORSE

SUITE = "xaibench compare"
# characters XML 1.0 cannot hold, even escaped (C0 controls but tab/newline/return, surrogates, U+FFFE/U+FFFF)
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_RULES = {
    "missing": "a unit, metric or samples the baseline has must be in the current table (--allow-missing lets "
               "units go, never the whole comparison)",
    "status": "a scored cell must stay scored (ok -> nan, error or not_applicable fails)",
    "direction": "a metric's declared direction must not flip (the values are no longer comparable)",
    "below_control": "a method that beat a control must not fall to or below it (its per-sample lead is tested "
                     "like a score change)",
    "new": "a method whose parameters changed must not score significantly worse than with its old ones",
}


def to_junit(comparison: Comparison, *, baseline: str, current: str, context: dict | None = None) -> bytes:
    """The JUnit XML report of ``comparison`` (UTF-8 bytes with the XML declaration); see the module docstring."""
    context = context or {}
    root = ET.Element("testsuites", name=SUITE)
    summary = _summary_suite(root, comparison, baseline, current, context)
    revisions = _Revisions(comparison.of_kind("revision"))
    by_unit, unplaced = _findings_by_unit(comparison)
    names = _UniqueNames()
    for finding in unplaced:
        _case(summary, SUITE, names(_unplaced_name(finding)), [finding], comparison, revisions)
    suites: dict[tuple[str, str], ET.Element] = {}
    for compared in comparison.units:
        identity = compared.identity or compared.unit.get("labels") or {}
        model, dataset, method, metric = (str(identity.get(n, compared.unit.get(n, ""))) for n in NAMES)
        group = (model, dataset)
        if group not in suites:
            suites[group] = ET.SubElement(root, "testsuite", name=xml_safe("/".join(group)))
            _label_properties(suites[group], compared.unit)
        findings = by_unit.get(_key(compared.key), [])
        name = names("/".join([model, dataset, method, metric]))
        _case(suites[group], "/".join(group).replace(".", "·"), name, findings, comparison, revisions, compared)
    for suite in root:
        _count(suite, suite.findall("testcase"))
    _count(root, root.iter("testcase"))
    ET.indent(root, space=" ")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{ET.tostring(root, encoding="unicode")}\n').encode("utf-8")


def _label_properties(suite: ET.Element, unit: dict) -> None:
    """``model_label`` / ``dataset_label`` properties of a (model, dataset) testsuite whose model or dataset has a
    display name (``model.label=...``): its testcases are named by the registry names, which a label leaves alone.
    A label is the registry name, or that with the parameters its variants differ in, where none was set."""
    labels = unit.get("labels") or {}
    shown = {f"{axis}_label": str(labels[axis]) for axis in ("model", "dataset")
             if axis in labels and not _registry_named(str(labels[axis]), str(unit.get(axis, "")))}
    if shown:
        properties = ET.SubElement(suite, "properties")
        for name, value in shown.items():
            ET.SubElement(properties, "property", name=name, value=xml_safe(value))


def _registry_named(label: str, name: str) -> bool:
    return label == name or label.startswith(f"{name} (")


def _summary_suite(root: ET.Element, comparison: Comparison, baseline: str, current: str,
                   context: dict) -> ET.Element:
    """The first testsuite: the verdict's properties and the config check of the current table."""
    suite = ET.SubElement(root, "testsuite", name=SUITE)
    properties = ET.SubElement(suite, "properties")
    config = context.get("config")
    partial = (context.get("current") or {}).get("partial")
    for name, value in (("verdict", "fail" if comparison.failed else "pass"), ("exit_code", comparison.exit_code),
                        ("baseline", baseline), ("current", current),
                        ("policy", f"{comparison.policy.name}: {comparison.policy.default.describe()}"),
                        ("strict_changes", comparison.strict_changes), ("allow_missing", comparison.allow_missing),
                        ("units", comparison.n_units), ("pairs", comparison.n_pairs),
                        ("config_check", config.state if config is not None else ""),
                        ("current_partial", partial or ""),
                        ("baseline_refresh", (context.get("refresh") or {}).get("state", ""))):
        if value != "":
            ET.SubElement(properties, "property", name=name, value=xml_safe(str(value).lower() if isinstance(
                value, bool) else str(value)))
    if config is not None:
        case = ET.SubElement(suite, "testcase", classname=SUITE, name="config of the current table")
        if config.state == "fresh":
            _text(case, "system-out", f"fresh: the cells of {current} are those its recorded command composes now "
                                      f"({config.command})")
        else:  # not checked, or stale and compared anyway: the exit code does not fail on it, nor does this
            _skip(case, config.text(current))
    if partial:
        case = ET.SubElement(suite, "testcase", classname=SUITE, name="current sweep finished")
        _skip(case, f"current {current} is partial ({partial}): the cells it lacks are reported as missing")
    return suite


def _case(suite: ET.Element, classname: str, name: str, findings: list[Finding], comparison: Comparison,
          revisions: _Revisions, compared: ComparedUnit | None = None) -> None:
    """One testcase: failed (``failure``/``error``) by its failing findings, else skipped where nothing was
    compared, else passed; the findings that pass in ``system-out``."""
    case = ET.SubElement(suite, "testcase", classname=xml_safe(classname), name=xml_safe(name))
    failing = [f for f in findings if f.fails]
    passing = [f for f in findings if not f.fails]
    if failing:
        errored = any(f.kind == "status" and f.details.get("after") == "error" for f in failing)
        first = finding_line(failing[0]) + (f" (and {len(failing) - 1} more)" if len(failing) > 1 else "")
        blocks = [finding_text(f, comparison) for f in failing]
        if compared is not None:
            blocks += [f"what may explain it: {finding_line(r)}" for r in revisions.of(compared.unit)]
        element = ET.SubElement(case, "error" if errored else "failure", message=xml_safe(first),
                                type=failing[0].kind)
        element.text = xml_safe("\n\n".join(blocks))
    elif compared is not None and compared.n_pairs == 0:
        _skip(case, "; ".join(finding_line(f) for f in passing) or _not_compared(compared))
        passing = []
    if passing:
        _text(case, "system-out", "\n\n".join(finding_text(f, comparison) for f in passing))


def finding_text(finding: Finding, comparison: Comparison) -> str:
    """A finding's line, then (a value change) its means, test and tolerance, and the rule that applied."""
    lines = [finding_line(finding)]
    change, tol = finding.change, finding.tolerance
    if change is not None and tol is not None:
        relative = f" ({change.relative:+.1%} of mean|baseline|)" if change.relative == change.relative else ""
        what = "lead over the control" if finding.kind == "below_control" else "mean"
        lines += [f"baseline {what} {change.baseline_mean:.6g}, current {what} {change.current_mean:.6g}, delta "
                  f"{change.delta:+.6g}{relative} over {change.n} pairs ({change.n_samples} samples)",
                  f"test: {describe_test(change, tol)}",
                  f"tolerance: {_tolerance(change, tol)} (policy {comparison.policy.name}: {tol.describe()})",
                  f"rule: {_value_rule(tol)}"]
    if finding.kind in _RULES:
        lines.append(f"rule: {_RULES[finding.kind]}")
    if finding.fails and _fails_by_strictness(finding):
        lines.append("fails under --strict-changes: every reported change fails")
    return "\n".join(lines)


def _fails_by_strictness(finding: Finding) -> bool:
    """Whether a failing finding fails only because of ``--strict-changes`` (it passes by default)."""
    if finding.kind in ("improved", "unconfirmed", "control", "rank", "revision"):
        return True
    if finding.kind == "new":
        return not finding.message.endswith(": fails")  # a changed method scoring worse than its old parameters
    if finding.kind == "below_control":
        return finding.change is not None and finding.change.verdict != WORSE
    if finding.kind == "status":  # a unit or samples that became scored, or error -> not_applicable
        before, after = finding.details.get("before"), finding.details.get("after")
        return before != "ok" and not (before == "not_applicable" and after == "error" and "n" not in finding.details)
    return False


def _tolerance(change, tol) -> str:
    if tol.mode == "elementwise":
        return f"atol {tol.atol:g} + rtol {tol.rtol:g}·|baseline| per sample"
    return f"{change.tolerance:.3g} = atol {tol.atol:g} + rtol {tol.rtol:g}·mean|baseline|"


def _value_rule(tol) -> str:
    bound = "beyond atol + rtol·mean|baseline| in the metric's bad direction"
    return {
        "elementwise": "fails when any sample moves beyond atol + rtol·|baseline| in the metric's bad direction",
        "mean": f"fails when the mean paired difference moves {bound}",
        "wilcoxon": f"fails when the mean paired difference moves {bound} and a one-sided paired Wilcoxon "
                    f"signed-rank test over the samples beyond tolerance is significant at alpha={tol.alpha:g}",
        "bootstrap": f"fails when the mean paired difference moves {bound} and its {1 - 2 * tol.alpha:.0%} "
                     "bootstrap CI excludes 0",
    }[tol.mode]


def _not_compared(compared: ComparedUnit) -> str:
    before, after = compared.states
    if before == after:
        return f"not compared: {before} in both tables (no scores to compare)"
    return f"not compared: {before or 'absent'} in the baseline, {after or 'absent'} in the current table"


def _findings_by_unit(comparison: Comparison) -> tuple[dict[tuple, list[Finding]], list[Finding]]:
    """Findings by the unit they name (``_key``), and those that name none (a revision, "nothing compared")."""
    columns = comparison.unit_columns
    known = {_key(compared.key) for compared in comparison.units}
    by_unit: dict[tuple, list[Finding]] = {}
    unplaced = []
    for finding in comparison.findings:
        key = _key(tuple(finding.unit.get(c) for c in columns)) if columns and all(
            c in finding.unit for c in columns) else None
        if key in known:
            by_unit.setdefault(key, []).append(finding)
        else:
            unplaced.append(finding)
    return by_unit, unplaced


def _key(values: tuple) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


class _Revisions:
    """The ``revision`` findings (a changed model or dataset) by the columns they name, to find those of a unit."""

    def __init__(self, findings: list[Finding]) -> None:
        self.index: dict[tuple[str, ...], dict[tuple[str, ...], list[Finding]]] = {}
        for finding in findings:
            columns = tuple(sorted(c for c in finding.unit if c != "labels"))  # the columns, not the names shown
            values = tuple(str(finding.unit[c]) for c in columns)
            self.index.setdefault(columns, {}).setdefault(values, []).append(finding)

    def of(self, unit: dict) -> list[Finding]:
        """Those about ``unit``'s model or dataset (every column the finding names has the unit's value)."""
        return [finding for columns, by_values in self.index.items()
                for finding in by_values.get(tuple(str(unit.get(c)) for c in columns), [])]


def _unplaced_name(finding: Finding) -> str:
    if finding.details.get("nothing_compared"):
        return "nothing compared"
    where = [f"{axis} {_stable(axis, finding.unit)}" for axis in ("model", "dataset") if axis in finding.unit]
    return f"{finding.kind}: {' on '.join(where)}" if where else finding.kind


def _stable(axis: str, unit: dict) -> str:
    """A revision's model or dataset as the unit testcases name it (``mlp (hidden=[32])``: ``stable_part_name``):
    two variants of one model retrained read ``revision: model mlp`` and ``... #2``, which was which depending on
    the order of the findings (ciuser25)."""
    params = unit.get(f"{axis}_params")
    return stable_part_name(axis, str(unit[axis]), "" if params is None else str(params))


class _UniqueNames:
    """Testcase names, made unique (``#2``...): GitLab keeps only the first of two tests of one name."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, name: str) -> str:
        count = self.seen.get(name, 0) + 1
        self.seen[name] = count
        return name if count == 1 else f"{name} #{count}"


def _skip(case: ET.Element, reason: str) -> None:
    ET.SubElement(case, "skipped", message=xml_safe(reason.splitlines()[0] if reason else ""))


def _text(case: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(case, tag).text = xml_safe(text)


def _count(element: ET.Element, cases: Iterable[ET.Element]) -> None:
    """Set ``tests``, ``failures``, ``errors``, ``skipped`` (and ``time="0"``: compare times no unit) from ``cases``."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for case in cases:
        counts["tests"] += 1
        for tag, count in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            counts[count] += case.find(tag) is not None
    element.attrib.update({k: str(v) for k, v in counts.items()}, time="0")


def xml_safe(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot hold written as ``\\x1b`` (ElementTree escapes ``&<>"`` and
    a ``]]>`` in text becomes ``]]&gt;``, but would write a control character as it is: an unparsable file)."""
    return _NOT_XML.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
