"""``xaibench compare --junit``: the verdict as a JUnit XML report (GitLab, Jenkins, Azure, CircleCI), on the
committed CI baseline's real scores changed in known ways. The counts must say what the JSON verdict and the exit
code say, and the file must have the structure those tools parse."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO
from xaibench import cli

CI_TABLE = REPO / "results" / "baselines" / "ci" / "table.parquet"
SUITE = "xaibench compare"
UNIT = "mlp/synthetic_tabular/saliency/faithfulness_correlation"  # the unit the tests change, as findings name it
# its JUnit classname and name: each part with its parameters that differ from its shipped config (experiment=ci
# scores 10 samples, not conf/config.yaml's 32, and faithfulness_correlation with nr_runs=10, not the suites' 50)
CLASS = "mlp/synthetic_tabular [n_samples=10]"
CASE = f"{CLASS}/saliency/faithfulness_correlation (nr_runs=10)"
TOY = "mlp/toy [n_samples=10]"  # the tiny tables' (tests/unit/test_compare.py::table) model, data and setting
RESULTS = ("failure", "error", "skipped")
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")  # what XML 1.0 cannot hold: written as \x1b


@pytest.fixture(scope="module")
def ci_table() -> pd.DataFrame:
    return pd.read_parquet(CI_TABLE)


def rows_of(table: pd.DataFrame, unit: str) -> pd.Series:
    model, dataset, method, metric = unit.split("/")
    return ((table["model"] == model) & (table["dataset"] == dataset) & (table["method"] == method)
            & (table["metric"] == metric)).to_numpy()


def compare(capsys, tmp_path: Path, current: pd.DataFrame, *flags: str, baseline: pd.DataFrame | None = None):
    """``xaibench compare`` of ``current`` against the CI baseline (or ``baseline``) with ``--json`` and ``--junit``:
    (exit code, JSON verdict, parsed JUnit root)."""
    base = tmp_path / "base.parquet"
    (baseline if baseline is not None else pd.read_parquet(CI_TABLE)).to_parquet(base, index=False)
    current.to_parquet(tmp_path / "cur.parquet", index=False)
    with pytest.raises(SystemExit) as done:
        cli.main(["compare", str(base), str(tmp_path / "cur.parquet"), "--quiet", "--json", str(tmp_path / "v.json"),
                  "--junit", str(tmp_path / "v.xml"), *flags])
    capsys.readouterr()
    root = ET.parse(tmp_path / "v.xml").getroot()
    assert_structure(root)
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert_agrees(root, verdict, done.value.code)
    return done.value.code, verdict, root


def assert_structure(root: ET.Element) -> None:
    """What GitLab's, Jenkins' (its junit plugin's schema) and Azure's readers take: ``testsuites`` of
    ``testsuite`` of ``testcase`` (name and classname, unique together: GitLab keeps the first of duplicates); at
    most one of failure/error/skipped per testcase, before system-out/err; counts that add up."""
    assert root.tag == "testsuites"
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    seen = set()
    for suite in root:
        assert suite.tag == "testsuite" and suite.get("name")
        tags = [child.tag for child in suite]
        assert set(tags) <= {"properties", "testcase"} and "properties" not in tags[1:]
        counts = dict.fromkeys(totals, 0)
        for case in suite.findall("testcase"):
            assert case.get("name") and case.get("classname") and (case.get("classname"), case.get("name")) not in seen
            seen.add((case.get("classname"), case.get("name")))
            children = [child.tag for child in case]
            assert set(children) <= {*RESULTS, "system-out", "system-err"}
            results = [tag for tag in children if tag in RESULTS]
            assert len(results) <= 1 and children[:len(results)] == results
            for tag in ("failure", "error"):
                if case.find(tag) is not None:
                    assert case.find(tag).get("message") and case.find(tag).get("type") and case.find(tag).text
            counts["tests"] += 1
            for tag, count in zip(RESULTS, ("failures", "errors", "skipped")):
                counts[count] += tag in results
        assert {k: int(suite.get(k)) for k in counts} == counts
        for k in totals:
            totals[k] += counts[k]
    assert {k: int(root.get(k)) for k in totals} == totals


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in root.iter("testcase")}


def outcome(case: ET.Element) -> str:
    return next((tag for tag in RESULTS if case.find(tag) is not None), "passed")


def assert_agrees(root: ET.Element, verdict: dict, exit_code: int) -> None:
    """The report says what the JSON verdict and the exit code say: a testcase per unit compared; failing testcases
    exactly those of the failing findings, each holding its findings' messages; a failure iff exit code 1."""
    units = [case for suite in root if suite.get("name") != SUITE for case in suite.findall("testcase")]
    assert len(units) == verdict["counts"]["units"]
    failed = int(root.get("failures")) + int(root.get("errors"))
    assert (failed > 0) == (verdict["verdict"] == "fail") == (exit_code == 1)
    failing: dict[str, list[str]] = {}
    for finding in (f for f in verdict["findings"] if f["fails"]):
        identity = finding["unit"].get("identity")  # the names of the unit's testcase (a revision has none)
        name = ("/".join(identity[n] for n in ("model", "dataset", "method", "metric")) if identity
                else "nothing compared" if finding["details"].get("nothing_compared")
                else f"{finding['kind']}: " + " on ".join(f"{axis} {finding['unit'][axis]}" for axis in
                                                          ("model", "dataset") if axis in finding["unit"]))
        message = finding["message"].removeprefix(finding["kind"] + ": ")  # finding_line: the unit after the kind
        failing.setdefault(name, []).append(CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(),
                                                        message))
    by_name = cases(root)
    assert {name for name, case in by_name.items() if outcome(case) in ("failure", "error")} == set(failing)
    for name, messages in failing.items():
        text = by_name[name].find(outcome(by_name[name])).text
        assert all(message in text for message in messages), (name, text)


def test_a_pass_is_a_testcase_per_unit_with_not_applicable_ones_skipped(capsys, tmp_path, ci_table):
    code, verdict, root = compare(capsys, tmp_path, ci_table)
    assert code == 0 and verdict["counts"]["units"] == 140
    na = ci_table.loc[ci_table["status"] == "not_applicable", ["model", "dataset", "method", "metric"]]
    # 140 units + the config check (a table outside its sweep folder: not checked, so skipped, as the exit code passes)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("141", "0", "0")
    assert int(root.get("skipped")) == len(na.drop_duplicates()) + 1 == 39
    config = cases(root)["config of the current table"]
    assert "its config was not checked (no sweep.json beside it" in config.find("skipped").get("message")
    assert outcome(cases(root)[CASE]) == "passed" and cases(root)[CASE].get("classname") == CLASS
    suites = [suite.get("name") for suite in root]
    assert suites[0] == SUITE and sorted(suites[1:]) == sorted(
        ci_table[["model", "dataset"]].drop_duplicates().agg("/".join, axis=1) + " [n_samples=10]")
    properties = {p.get("name"): p.get("value") for p in root.find("testsuite/properties")}
    assert properties["verdict"] == "pass" and properties["exit_code"] == "0" and properties["units"] == "140"


def test_a_degraded_unit_fails_with_its_means_test_tolerance_and_rule(capsys, tmp_path, ci_table):
    current = ci_table.copy()
    rows = rows_of(current, UNIT)
    current.loc[rows, "value"] -= 0.5
    code, verdict, root = compare(capsys, tmp_path, current)
    assert code == 1
    case = cases(root)[CASE]
    failure = case.find("failure")
    assert failure.get("type") == "degraded" and failure.get("message").startswith(f"degraded: {UNIT} ↑: worse")
    before = ci_table.loc[rows, "value"].to_numpy(np.float64)
    tolerance = 0.002 + 0.02 * np.abs(before).mean()  # the default policy's atol + rtol * mean|baseline|
    assert (f"baseline mean {before.mean():.6g}, current mean {before.mean() - 0.5:.6g}, delta -0.5 "
            f"({-0.5 / np.abs(before).mean():+.1%} of mean|baseline|) over 10 pairs (10 samples)") in failure.text
    assert "test: wilcoxon p=0.00098 one-sided (10 of 10 samples beyond tol.: all worse)" in failure.text
    assert (f"tolerance: {tolerance:.3g} = atol 0.002 + rtol 0.02·mean|baseline| (policy default: wilcoxon, "
            "atol=0.002, rtol=0.02, alpha=0.05)") in failure.text
    assert "one-sided paired Wilcoxon signed-rank test over the samples beyond tolerance is significant at alpha=0.05" \
        in failure.text
    # saliency also fell below the random control on that metric: the same testcase, a second failing finding
    assert "(and 1 more)" in failure.get("message") and "below_control: " in failure.text
    assert (root.get("failures"), root.get("errors")) == ("1", "0")


def test_a_missing_unit_fails_unless_allowed_and_is_then_skipped(capsys, tmp_path, ci_table):
    current = ci_table[~rows_of(ci_table, UNIT)]
    code, verdict, root = compare(capsys, tmp_path, current)
    assert code == 1 and outcome(cases(root)[CASE]) == "failure"
    assert cases(root)[CASE].find("failure").get("type") == "missing"
    code, verdict, root = compare(capsys, tmp_path, current, "--allow-missing")
    assert code == 0 and root.get("failures") == "0"
    skipped = cases(root)[CASE].find("skipped")
    assert skipped is not None
    assert skipped.get("message").startswith(f"missing: {UNIT} ↑: 10 value(s) of the baseline")


def test_a_change_passed_as_noise_or_an_improvement_fails_only_under_strict_changes(capsys, tmp_path, ci_table):
    current = ci_table.copy()
    current.loc[rows_of(current, UNIT), "value"] += 0.5
    code, verdict, root = compare(capsys, tmp_path, current)
    assert code == 0 and root.get("failures") == "0"
    case = cases(root)[CASE]
    assert outcome(case) == "passed" and case.find("system-out").text.startswith(f"improved: {UNIT} ↑: better")
    code, verdict, root = compare(capsys, tmp_path, current, "--strict-changes")
    assert code == 1 and root.get("failures") == "1"
    failure = cases(root)[CASE].find("failure")
    assert failure.get("type") == "improved" and "fails under --strict-changes" in failure.text


def test_a_cell_that_now_errors_is_an_error_and_any_message_stays_valid_xml(capsys, tmp_path, ci_table):
    """An error message with terminal colours, a NUL and ``]]>`` (XML 1.0 cannot hold the first two even escaped)."""
    current = ci_table.copy()
    rows = rows_of(current, UNIT)
    message = "RuntimeError: \x1b[31mboom\x1b[0m ]]> <&> \x00 done"
    current.loc[rows, ["status", "message", "value"]] = ["error", message, np.nan]
    code, verdict, root = compare(capsys, tmp_path, current)
    assert code == 1 and (root.get("failures"), root.get("errors")) == ("0", "1")
    error = cases(root)[CASE].find("error")
    assert error.get("type") == "status"
    assert "RuntimeError: \\x1b[31mboom\\x1b[0m ]]> <&> \\x00 done" in error.text
    assert b"]]&gt;" in (tmp_path / "v.xml").read_bytes()


def test_junit_leaves_the_report_and_json_as_they_were_and_is_the_same_for_the_same_tables(capsys, tmp_path,
                                                                                         ci_table):
    current = ci_table.copy()
    current.loc[rows_of(current, UNIT), "value"] -= 0.5
    compare(capsys, tmp_path, current)
    with_junit, junit = (tmp_path / "v.json").read_bytes(), (tmp_path / "v.xml").read_bytes()
    with pytest.raises(SystemExit):
        cli.main(["compare", str(tmp_path / "base.parquet"), str(tmp_path / "cur.parquet"), "--quiet", "--json",
                  str(tmp_path / "plain.json")])
    assert (tmp_path / "plain.json").read_bytes() == with_junit
    compare(capsys, tmp_path, current)
    assert (tmp_path / "v.xml").read_bytes() == junit


def test_a_stale_sweep_compared_under_allow_stale_is_skipped_not_failed(capsys, tmp_path, monkeypatch):
    """The config check as the exit code has it: fresh passes, stale under --allow-stale is compared (exit 0) and
    its config testcase skipped with the warning; stale without it is refused (exit 2) and nothing is written."""
    from tests.unit.test_compare import tiny_finished_sweep

    experiment, folder = tiny_finished_sweep(tmp_path, monkeypatch)

    def run(*flags) -> tuple[int, ET.Element | None]:
        (tmp_path / "v.xml").unlink(missing_ok=True)
        with pytest.raises(SystemExit) as done:
            cli.main(["compare", "base.parquet", str(folder), "--quiet", "--junit", "v.xml", *flags])
        capsys.readouterr()
        return done.value.code, ET.parse("v.xml").getroot() if Path("v.xml").exists() else None

    code, root = run()
    assert code == 0 and outcome(cases(root)["config of the current table"]) == "passed"
    experiment.write_text(experiment.read_text().replace("n_samples: 8", "n_samples: 9"))
    assert run() == (2, None)
    code, root = run("--allow-stale")
    assert code == 0 and root.get("failures") == "0"
    skipped = cases(root)["config of the current table"].find("skipped")
    assert skipped.get("message").startswith(f"current {folder} is stale, compared anyway (--allow-stale): ")
    properties = {p.get("name"): p.get("value") for p in root.find("testsuite/properties")}
    assert properties["config_check"] == "stale"


def test_nothing_compared_is_a_failing_testcase_of_its_own(capsys, tmp_path, ci_table):
    """A current table of another seed: every unit missing, and "nothing compared" fails also under
    --allow-missing (the units themselves are then skipped)."""
    code, verdict, root = compare(capsys, tmp_path, ci_table.assign(seed=ci_table["seed"] + 1), "--allow-missing")
    assert code == 1 and outcome(cases(root)["nothing compared"]) == "failure"
    assert (root.get("failures"), root.get("errors")) == ("1", "0")
    assert all(outcome(case) == "skipped" for suite in list(root)[1:] for case in suite)


# --- GitHub Actions annotations: the failing findings on the run's summary page ----------------------------------

def unescape(text: str) -> str:
    """As the Actions runner reads a workflow command's message."""
    return text.replace("%0A", "\n").replace("%0D", "\r").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")


def test_github_annotations_are_one_error_per_failing_finding_with_its_numbers(capsys, tmp_path, ci_table):
    current = ci_table.copy()
    rows = rows_of(current, UNIT)
    current.loc[rows, "value"] -= 0.5
    current.to_parquet(tmp_path / "cur.parquet", index=False)
    ci_table.to_parquet(tmp_path / "base.parquet", index=False)
    argv = ["compare", str(tmp_path / "base.parquet"), str(tmp_path / "cur.parquet"), "--quiet"]
    with pytest.raises(SystemExit) as done:
        cli.main([*argv, "--github-annotations"])
    out = capsys.readouterr().out
    annotations = [line for line in out.splitlines() if line.startswith("::")]
    assert done.value.code == 1 and len(annotations) == 2  # degraded, and below the random control
    title, message = annotations[0].removeprefix("::error title=").split("::", 1)
    assert unescape(title) == f"xaibench compare: degraded: {UNIT} ↑" and "\n" not in annotations[0]
    lines = unescape(message).splitlines()
    assert lines[0].startswith(f"degraded: {UNIT} ↑: worse: mean ") and "(-106.4%)" in lines[0]
    assert lines[2] == "test: wilcoxon p=0.00098 one-sided (10 of 10 samples beyond tol.: all worse)"
    assert lines[3].startswith("tolerance: 0.0114 = atol 0.002 + rtol 0.02·mean|baseline| (policy default")
    assert unescape(annotations[1]).startswith("::error title=xaibench compare: below_control: ")
    with pytest.raises(SystemExit):
        cli.main(argv)
    assert "::error" not in capsys.readouterr().out  # only when asked for


def test_github_annotations_stop_at_the_ten_github_shows_and_say_how_many_more(capsys, tmp_path):
    from tests.unit.test_compare import BASE, table
    from xaibench.results.compare import compare_tables, load_policy
    from xaibench.results.compare.annotations import github_annotations

    methods = [f"method{i:02d}" for i in range(12)]
    comparison = compare_tables(table({(m, "m"): list(BASE) for m in methods}),
                                table({(m, "m"): list(BASE - 0.2) for m in methods}), load_policy("default"))
    lines = github_annotations(comparison, report="compare.md")
    assert len([f for f in comparison.findings if f.fails]) == 12 and len(lines) == 10
    assert [unescape(line).split("::")[1] for line in lines[:9]] == [
        f"error title=xaibench compare: degraded: mlp/toy/{m}/m ↑" for m in methods[:9]]
    assert unescape(lines[9]) == ("::error title=xaibench compare: more failing findings::and 3 more failing findings "
                                  "(listed in compare.md and the JSON verdict)")


def test_an_output_that_cannot_be_written_is_refused_before_any_is_written(capsys, tmp_path, ci_table):
    """A --json (or --junit) into a file where a folder should be failed after --report had been written: exit 2,
    and a report of a verdict whose JSON was never written. Every output is now checked first."""
    ci_table.to_parquet(tmp_path / "t.parquet", index=False)
    (tmp_path / "afile").write_text("a file where a folder should be")
    for flag, path in (("--json", "afile/v.json"), ("--junit", "afile/v.xml")):
        with pytest.raises(SystemExit) as done:
            cli.main(["compare", str(tmp_path / "t.parquet"), str(tmp_path / "t.parquet"), "--report",
                      str(tmp_path / "r.md"), flag, str(tmp_path / path)])
        err = capsys.readouterr().err
        assert done.value.code == 2 and err == (f"xaibench: error: {flag} {tmp_path / path} cannot be written: "
                                                f"{tmp_path / 'afile'} is a file, not a folder; choose another path\n")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "t.parquet"]


def test_a_retrained_model_is_named_beside_the_units_it_may_explain_and_fails_of_its_own_under_strict(
        capsys, tmp_path, ci_table):
    current = ci_table.copy()
    model = (current["model"] == "mlp").to_numpy()
    current.loc[model, "model_accuracy"] = current.loc[model, "model_accuracy"] - 0.1
    current.loc[rows_of(current, UNIT), "value"] -= 0.5
    code, verdict, root = compare(capsys, tmp_path, current)
    assert code == 1
    failure = cases(root)[CASE].find("failure").text
    assert "\n\nwhat may explain it: revision: mlp/synthetic_tabular: model mlp test accuracy " in failure
    revision = cases(root)["revision: model mlp on dataset synthetic_tabular"]
    assert outcome(revision) == "passed" and revision.get("classname") == SUITE
    assert "trained to other weights" in revision.find("system-out").text
    code, verdict, root = compare(capsys, tmp_path, current, "--strict-changes")
    revision = cases(root)["revision: model mlp on dataset synthetic_tabular"]
    assert code == 1 and "fails under --strict-changes" in revision.find("failure").text


def test_two_retrained_variants_of_a_model_are_named_by_their_parameters_not_numbered(capsys, tmp_path, ci_table):
    """ciuser25: a sweep with two variants of the mlp, both retrained (torch upgraded), had the testcases
    ``revision: model mlp on dataset synthetic_tabular`` and ``... #2``: which variant is which depended on the
    order of the findings, so a CI system's history could swap them. They are named as the unit testcases name
    the model (its parameters that differ from conf/model/mlp.yaml)."""
    mlp = (ci_table["model"] == "mlp").to_numpy()
    variant = ci_table[mlp].copy()
    variant["model_params"] = variant["model_params"].str.replace('"hidden": [64, 64]', '"hidden": [32]',
                                                                  regex=False)
    variant["cell_key"] = variant["cell_key"] + "-hidden32"
    baseline = pd.concat([ci_table, variant], ignore_index=True)
    current = baseline.copy()
    retrained = (current["model"] == "mlp").to_numpy()
    current.loc[retrained, "model_accuracy"] = current.loc[retrained, "model_accuracy"] - 0.1
    code, verdict, root = compare(capsys, tmp_path, current, baseline=baseline)
    names = sorted(name for name in cases(root) if name.startswith("revision:"))
    assert code == 0 and names == ["revision: model mlp (hidden=[32]) on dataset synthetic_tabular",
                                   "revision: model mlp on dataset synthetic_tabular"]
    # and their lines (the log's, the report's rows: the finding's labels) no longer read the same
    lines = sorted(f"{f['unit']['labels']['model']}/{f['unit']['labels']['dataset']}" for f in verdict["findings"]
                   if f["kind"] == "revision")
    assert lines == ["mlp (hidden=[32])/synthetic_tabular", "mlp/synthetic_tabular"]


def test_a_parameter_with_a_dot_does_not_split_the_classname_into_jenkins_packages():
    """Jenkins reads ``a.b.C`` as package ``a.b``, class ``C``: ``toy (noise=0.1)`` would be split at the dot. The
    classname writes ``·`` instead; the name (GitLab's only column in the merge-request widget) keeps the label."""
    from tests.unit.test_compare import BASE, table
    from xaibench.results.compare import compare_tables, load_policy
    from xaibench.results.compare.junit import to_junit

    both = pd.concat([table({("saliency", "m"): list(BASE)}, dataset_params=json.dumps({"noise": noise}))
                      for noise in (0.1, 0.2)], ignore_index=True)
    root = ET.fromstring(to_junit(compare_tables(both, both, load_policy("default")), baseline="b", current="c"))
    assert_structure(root)
    assert [(case.get("classname"), case.get("name")) for case in root.iter("testcase")] == [
        ("mlp/toy (noise=0·1) [n_samples=10]", "mlp/toy (noise=0.1) [n_samples=10]/saliency/m"),
        ("mlp/toy (noise=0·2) [n_samples=10]", "mlp/toy (noise=0.2) [n_samples=10]/saliency/m")]


def test_a_model_label_with_a_control_character_keeps_the_testsuite_name_valid_xml():
    """review18: the testcases' names and classnames were escaped (``xml_safe``) but the per-(model, dataset)
    testsuite's ``name`` was not: a label holding a terminal colour code (``\\x1b``) wrote a file no reader parses."""
    from tests.unit.test_compare import BASE, table
    from xaibench.results.compare import compare_tables, load_policy
    from xaibench.results.compare.junit import to_junit

    both = table({("saliency", "m"): list(BASE)})
    both["model"] = "ml\x1bp"
    root = ET.fromstring(to_junit(compare_tables(both, both, load_policy("default")), baseline="b", current="c"))
    assert_structure(root)
    assert [suite.get("name") for suite in root] == [SUITE, "ml\\x1bp/toy [n_samples=10]"]
    assert [case.get("name") for case in root.iter("testcase")] == ["ml\\x1bp/toy [n_samples=10]/saliency/m"]


def test_a_variant_added_to_the_sweep_renames_no_existing_testcase(capsys, tmp_path):
    """paper21: a testcase's method carried the parameters its variants differ in, so adding ``n_steps=64`` to a
    sweep renamed ``integrated_gradients`` (shipped parameters) to ``integrated_gradients (n_steps=32)``: GitLab and
    Jenkins track a testcase by classname + name, and its history was lost. A testcase now names the parameters
    that differ from the method's shipped config (every parameter for a method without one); the texts keep the
    report's label, which names what the variants differ in."""
    from tests.unit.test_compare import BASE, table

    def variant(method: str, params: dict, shift: float = 0.0) -> pd.DataFrame:
        return table({(method, "m"): list(BASE + shift)}, method_params=json.dumps(params))

    shipped_ig = {"baseline": 0.0, "internal_batch_size": None, "method": "gausslegendre", "n_steps": 32}
    first = [variant("integrated_gradients", shipped_ig), variant("saliency", {"abs": True}),
             variant("my_explainer", {"alpha": 0.5})]  # bring your own: no shipped config
    added = [variant("integrated_gradients", {**shipped_ig, "n_steps": 64}), variant("saliency", {"abs": False}),
             variant("my_explainer", {"alpha": 2})]

    def names(frames: list[pd.DataFrame], worse: pd.DataFrame | None = None) -> dict[str, ET.Element]:
        both = pd.concat(frames, ignore_index=True)
        current = pd.concat([*frames[1:], worse], ignore_index=True) if worse is not None else both
        _, _, root = compare(capsys, tmp_path, current, baseline=both)
        return {name: case for name, case in cases(root).items() if name.startswith("mlp/")}

    before, after = names(first), names(first + added)
    assert set(before) == {f"{TOY}/integrated_gradients/m", f"{TOY}/saliency/m", f"{TOY}/my_explainer (alpha=0.5)/m"}
    assert set(after) - set(before) == {f"{TOY}/integrated_gradients (n_steps=64)/m", f"{TOY}/saliency (abs=False)/m",
                                        f"{TOY}/my_explainer (alpha=2)/m"}
    assert set(names(first[1:] + added)) == set(after) - {f"{TOY}/integrated_gradients/m"}  # one removed: the same
    # the texts name the unit as the report does: the shipped variant among others reads n_steps=32
    failing = names(first + added, worse=variant("integrated_gradients", shipped_ig, shift=-0.5))
    message = failing[f"{TOY}/integrated_gradients/m"].find("failure").get("message")
    assert message.startswith("degraded: mlp/toy/integrated_gradients (n_steps=32)/m ↑: worse")


def test_methods_whose_shipped_parameters_do_not_tell_them_apart_show_every_parameter():
    """Two variants differing only in a parameter their shipped config does not set would share a testcase name (a
    GitLab report keeps only the first of two): those show every parameter they record not at its shipped value."""
    from tests.unit.test_compare import BASE, table
    from xaibench.results.compare import compare_tables, load_policy
    from xaibench.results.compare.junit import to_junit
    from xaibench.results.compare.names import stable_method_name

    assert stable_method_name("saliency", '{"abs": false, "unused_params": ["patch_size"]}') == "saliency (abs=False)"
    assert stable_method_name("occlusion", '{"baseline": 0.0, "perturbations_per_eval": 64, "stride": 1, '
                                           '"window": 2}') == "occlusion"  # the shipped parameters: the bare name
    both = pd.concat([table({("saliency", "m"): list(BASE)}, method_params=json.dumps({"abs": True, "extra": extra}))
                      for extra in (1, 2)], ignore_index=True)
    root = ET.fromstring(to_junit(compare_tables(both, both, load_policy("default")), baseline="b", current="c"))
    assert_structure(root)
    assert [case.get("name") for case in root.iter("testcase")] == [
        f"{TOY}/saliency (extra=1)/m", f"{TOY}/saliency (extra=2)/m"]


# --- ci24: every part of a testcase's name stable, not only the method ------------------------------------------

def variant_rows(rows: pd.DataFrame, column: str, **changed) -> pd.DataFrame:
    """``rows`` with their ``column`` JSON (``model_params``, ``dataset_params``, ``params``) changed as given."""
    return rows.assign(**{column: [json.dumps({**json.loads(text), **changed}, sort_keys=True)
                                   for text in rows[column]]})


def junit_names(capsys, tmp_path: Path, table: pd.DataFrame) -> dict[str, str]:
    """name -> classname of the unit testcases of ``xaibench compare TABLE TABLE`` (a copy: a table compared with
    itself is refused)."""
    _, _, root = compare(capsys, tmp_path, table, baseline=table)
    return {case.get("name"): case.get("classname") for suite in list(root)[1:] for case in suite}


def test_a_model_dataset_metric_or_setting_variant_added_renames_no_existing_testcase(capsys, tmp_path, ci_table):
    """Models, datasets, metrics and settings showed parameters only where units of the same names differed in the
    tables: adding ``mlp (hidden=[32])`` renamed every ``mlp`` testcase to ``mlp (hidden=[64, 64])`` (CI history
    lost). Each part now shows its parameters that differ from its shipped config (conf/model/mlp.yaml,
    conf/dataset/synthetic_tabular.yaml, the suites in conf/metrics/, conf/config.yaml): the existing testcases keep
    their names, and a variant at the shipped parameters (faithfulness_correlation at the suites' nr_runs=50) is
    the bare name; the report's texts still name what the variants differ in."""
    first = ci_table[((ci_table["model"] == "mlp") & (ci_table["dataset"] == "synthetic_tabular")).to_numpy()]
    saliency = first[(first["method"] == "saliency").to_numpy()]
    correlation = first[(first["metric"] == "faithfulness_correlation").to_numpy()]
    added = pd.concat([first, variant_rows(saliency, "model_params", hidden=[32]),
                       variant_rows(saliency, "dataset_params", correlation=0.9),
                       saliency.assign(target_mode="label"),
                       variant_rows(correlation, "params", nr_runs=20),
                       variant_rows(correlation, "params", nr_runs=50)], ignore_index=True)
    before, after = junit_names(capsys, tmp_path, first), junit_names(capsys, tmp_path, added)
    assert {name: after.get(name) for name in before} == before  # not one renamed
    assert len(before) == 6 * 7 and before[CASE] == CLASS
    new = {name: classname for name, classname in after.items() if name not in before}
    metric = "saliency/faithfulness_correlation"
    assert {name: classname for name, classname in new.items() if name.endswith(metric + " (nr_runs=10)")} == {
        f"mlp (hidden=[32])/synthetic_tabular [n_samples=10]/{metric} (nr_runs=10)":
            "mlp (hidden=[32])/synthetic_tabular [n_samples=10]",
        f"mlp/synthetic_tabular (correlation=0.9) [n_samples=10]/{metric} (nr_runs=10)":
            "mlp/synthetic_tabular (correlation=0·9) [n_samples=10]",
        f"mlp/synthetic_tabular [n_samples=10, target_mode=label]/{metric} (nr_runs=10)":
            "mlp/synthetic_tabular [n_samples=10, target_mode=label]"}
    assert f"{CLASS}/{metric} (nr_runs=20)" in new and f"{CLASS}/{metric}" in new  # nr_runs=50: the suites' own
    assert len(new) == 3 * 7 + 2 * 6 and not any(" #" in name for name in after)  # unique without a counter
    # the report's lines still name what the variants differ in, in the tables as they are now
    worse = added.copy()
    worse.loc[rows_of(worse, UNIT) & (worse["model_params"] == first["model_params"].iloc[0]).to_numpy()
              & (worse["dataset_params"] == first["dataset_params"].iloc[0]).to_numpy()
              & (worse["target_mode"] == "predicted").to_numpy()
              & worse["params"].str.contains('"nr_runs": 10').to_numpy(), "value"] -= 0.5
    _, _, root = compare(capsys, tmp_path, worse, baseline=added)
    message = cases(root)[CASE].find("failure").get("message")
    assert message.startswith("degraded: mlp (hidden=[64, 64])/synthetic_tabular (correlation=0.5) "
                              "[target_mode=predicted]/saliency/faithfulness_correlation (nr_runs=10) ↑: worse")


def test_units_the_stable_names_do_not_tell_apart_show_every_parameter_and_no_two_share_a_name(capsys, tmp_path):
    """Parameters a shipped config does not set, a metric's fraction resolved to a count on the data: units differing
    only there would share a testcase name (GitLab keeps the first of two). Each part they differ in shows every
    parameter it records not at its shipped value; a unit alone under its stable names keeps them, and two units no
    text tells apart (a parameter ``1`` and ``"1"``) are numbered."""
    from tests.unit.test_compare import BASE, table

    def unit(metric: str, params: dict, **columns) -> pd.DataFrame:
        return table({("saliency", metric): list(BASE)}, params=json.dumps(params), **columns)

    frames = [unit("faithfulness_correlation", {"nr_runs": 50, "subset_size": size}) for size in (2, 3)]
    frames += [unit("faithfulness_correlation", {"nr_runs": 20, "subset_size": 2})]
    frames += [unit("m", {}, model_params=json.dumps({"hidden": [64, 64], "seedling": seed})) for seed in (1, 2)]
    frames += [unit("m", {"a": a}) for a in (1, "1")]  # a metric of your own: every parameter, and still the same
    names = junit_names(capsys, tmp_path, pd.concat(frames, ignore_index=True))
    assert sorted(names) == sorted([
        f"{TOY}/saliency/faithfulness_correlation (subset_size=2)",
        f"{TOY}/saliency/faithfulness_correlation (subset_size=3)",
        f"{TOY}/saliency/faithfulness_correlation (nr_runs=20)",
        "mlp (seedling=1)/toy [n_samples=10]/saliency/m",
        "mlp (seedling=2)/toy [n_samples=10]/saliency/m",
        f"{TOY}/saliency/m (a=1)", f"{TOY}/saliency/m (a=1) #2"])


def test_shipped_configs_are_read_where_xaibench_reads_its_configs(monkeypatch, tmp_path):
    """``$XAIBENCH_CONF_DIR`` (as ``xaibench`` composes runs from it): a model shipped there with ``depth: 3`` is
    ``my_net`` at that depth; without a shipped config every parameter shows; a setting the root config does not
    set shows its value; a metric's ``auto`` and fractions count as shipped, what it set from them too."""
    from xaibench.results.compare.stable_names import settings_text, stable_part_name

    assert stable_part_name("model", "my_net", '{"depth": 3}') == "my_net (depth=3)"  # no shipped config
    assert stable_part_name("model", "mlp", '{"hidden": [64, 64], "lr": 0.01}') == "mlp"
    assert stable_part_name("dataset", "synthetic_tabular", '{"n_samples": 500}') == "synthetic_tabular (n_samples=500)"
    assert settings_text({"n_samples": 32, "target_mode": "predicted", "explain_output": "log_odds"}) == ""
    assert settings_text({"n_samples": 10, "target_mode": "", "explain_output": "logit"}) == (
        " [n_samples=10, explain_output=logit]")
    assert stable_part_name("metric", "attribution_localisation", json.dumps(
        {"sign": "absolute", "positive_attributions": False, "abs": True, "max_size": 1.0})) == (
        "attribution_localisation")
    assert stable_part_name("metric", "attribution_localisation", '{"max_size": 0.5}') == (
        "attribution_localisation (max_size=0.5)")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "my_net.yaml").write_text("name: my_net\ndepth: 3\n")
    (tmp_path / "config.yaml").write_text("n_samples: 10\n")
    monkeypatch.setenv("XAIBENCH_CONF_DIR", str(tmp_path))
    assert stable_part_name("model", "my_net", '{"depth": 3}') == "my_net"
    assert stable_part_name("model", "my_net", '{"depth": 4}') == "my_net (depth=4)"
    assert settings_text({"n_samples": 10, "target_mode": "predicted"}) == " [target_mode=predicted]"
