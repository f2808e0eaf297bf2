"""``xaibench compare`` logic on hand-built tables: tolerances, direction, statuses, coverage, ranks, policies."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xaibench.errors import UserError
from xaibench.results.compare import compare_tables, load_policy, parse_policy
from xaibench.results.compare.policy import Tolerance
from xaibench.results.compare.values import BETTER, SAME, WORSE, assess, wilcoxon_min_pairs
from xaibench.results.schema import COLUMNS, SCHEMA_VERSION, conform

DEFAULT = load_policy("default")


def table(values: dict[tuple[str, str], list[float]], *, hib: dict[str, bool] | None = None, **columns) -> pd.DataFrame:
    """A conformed results table: ``{(method, metric): per-sample values}`` on one model/dataset, seed 0."""
    hib = hib or {}
    defaults = {c: ("" if d == "string" else 0) for c, d in COLUMNS.items()}
    rows = []
    for (method, metric), samples in values.items():
        for index, value in enumerate(samples):
            rows.append({**defaults, "schema_version": SCHEMA_VERSION, "model": "mlp", "dataset": "toy",
                         "method": method, "metric": metric, "family": "faithfulness",
                         "higher_is_better": hib.get(metric, True), "sample_id": f"s{index}", "value": value,
                         "status": "ok", "params": "{}", "method_params": "{}", "model_params": "{}",
                         "dataset_params": "{}", "n_samples": len(samples), **columns})
    return conform(pd.DataFrame(rows))


BASE = np.linspace(0.2, 0.9, 10)


def kinds(comparison) -> list[tuple[str, bool]]:
    return [(f.kind, f.fails) for f in comparison.findings]


# --- values.assess: the tolerance modes --------------------------------------------------------------------------

def test_elementwise_bound_is_atol_plus_rtol_times_each_baseline_value():
    tol = Tolerance(mode="elementwise", atol=0.01, rtol=0.1)
    base = np.array([1.0, 2.0])
    inside = assess(base, base + np.array([0.109, 0.209]), True, tol)  # bounds 0.11 and 0.21
    outside = assess(base, base + np.array([0.0, 0.211]), True, tol)
    assert inside.verdict == SAME and inside.n_differing == 2
    assert outside.verdict == BETTER and outside.n_beyond == 1


def test_direction_follows_higher_is_better():
    tol = Tolerance(mode="mean", atol=0.0, rtol=0.0)
    assert assess(BASE, BASE + 0.1, True, tol).verdict == BETTER
    assert assess(BASE, BASE + 0.1, False, tol).verdict == WORSE  # e.g. max_sensitivity: lower is better


def test_wilcoxon_consistent_shift_fails_with_the_exact_p_value():
    change = assess(BASE, BASE - 0.05, True, Tolerance(mode="wilcoxon", atol=0.01, rtol=0.0))
    assert change.verdict == WORSE
    assert change.p_value == pytest.approx(2 / 2**10)  # exact two-sided test, every pair negative
    assert change.delta == pytest.approx(-0.05)
    assert change.tolerance == pytest.approx(0.01)


def test_wilcoxon_one_flipped_sample_is_large_but_not_significant():
    current = BASE.copy()
    current[3] = 0.0  # one sample flips on another machine: mean shift 0.04 > tolerance 0.01
    change = assess(BASE, current, True, Tolerance(mode="wilcoxon", atol=0.01, rtol=0.0))
    assert abs(change.delta) > change.tolerance
    assert change.verdict == SAME and change.p_value == 1.0


def test_wilcoxon_p_value_agrees_with_scipy_on_mixed_differences():
    rng = np.random.default_rng(0)
    current = BASE + rng.normal(-0.05, 0.05, BASE.size)
    change = assess(BASE, current, True, Tolerance(mode="wilcoxon", atol=0.0, rtol=0.0))
    assert change.p_value == pytest.approx(stats.wilcoxon(current - BASE).pvalue)


def test_too_few_pairs_for_the_test_fall_back_to_the_size_rule_and_say_so():
    assert wilcoxon_min_pairs(0.05) == 6 and wilcoxon_min_pairs(0.25) == 4
    change = assess(BASE[:5], BASE[:5] - 0.2, True, Tolerance(mode="wilcoxon"))
    assert change.verdict == WORSE and "too few" in change.note


def test_bootstrap_ci_of_the_mean_difference():
    change = assess(BASE, BASE - 0.05, True, Tolerance(mode="bootstrap", atol=0.01, rtol=0.0))
    assert change.verdict == WORSE and change.ci == pytest.approx((-0.05, -0.05))
    flip = BASE.copy()
    flip[0] = 1.0
    assert assess(BASE, flip, True, Tolerance(mode="bootstrap", atol=0.01, rtol=0.0)).verdict == SAME


# --- policies ----------------------------------------------------------------------------------------------------

def test_policy_overrides_metric_over_family_over_default(tmp_path):
    policy = parse_policy({"atol": 0.5, "families": {"stability": {"rtol": 0.3}},
                           "metrics": {"max_sensitivity": {"mode": "mean"}}}, name="p")
    assert policy.tolerance("sparseness", "sparsity") == Tolerance(atol=0.5)
    assert policy.tolerance("avg_sensitivity", "stability") == Tolerance(atol=0.5, rtol=0.3)
    assert policy.tolerance("max_sensitivity", "stability") == Tolerance(mode="mean", atol=0.5)
    path = tmp_path / "mine.yaml"
    path.write_text("mode: bootstrap\natol: 0.1\n")
    assert load_policy(str(path)).default == Tolerance(mode="bootstrap", atol=0.1)
    assert load_policy("strict").default.mode == "elementwise"


@pytest.mark.parametrize("data, match", [
    ({"tolerance": 1}, r"unknown setting tolerance; valid: mode, atol"),
    ({"mode": "ttest"}, r"unknown mode 'ttest'; valid: elementwise, mean, wilcoxon, bootstrap"),
    ({"metrics": {"x": {"atol": -1}}}, r"atol must be a number >= 0"),
    ({"alpha": 1.5}, r"alpha must be in \(0, 1\)"),
])
def test_bad_policies_are_user_errors(data, match):
    with pytest.raises(UserError, match=match):
        parse_policy(data, name="bad")


def test_unknown_policy_name_lists_the_valid_ones():
    with pytest.raises(UserError, match=r"unknown compare policy 'lenient'; valid: default, strict"):
        load_policy("lenient")


# --- compare_tables: statuses, coverage, ranks --------------------------------------------------------------------

def test_ok_to_nan_and_ok_to_error_fail_with_the_message():
    base = table({("saliency", "m"): list(BASE), ("random", "m"): list(BASE)})
    cur = base.copy()
    nan_rows = (cur["method"] == "saliency") & cur["sample_id"].isin(["s1", "s2"])
    cur.loc[nan_rows, ["value", "status", "message"]] = [np.nan, "nan", "constant attribution"]
    errored = cur[cur["method"] == "random"].iloc[:1].assign(sample_id="", value=np.nan, status="error",
                                                              message="RuntimeError: boom (at x.py:1)")
    cur = pd.concat([cur[cur["method"] != "random"], errored], ignore_index=True)
    comparison = compare_tables(base, cur, DEFAULT)
    assert comparison.exit_code == 1
    messages = {f.unit["method"]: f.message for f in comparison.of_kind("status")}
    assert messages["saliency"] == "2 sample(s) ok -> nan: constant attribution"
    assert messages["random"] == "ok -> error: RuntimeError: boom (at x.py:1)"
    assert all(f.fails for f in comparison.of_kind("status"))


def test_missing_samples_fail_unless_allowed_and_new_ones_pass():
    base = table({("saliency", "m"): list(BASE)})
    fewer = base[base["sample_id"] != "s9"]
    assert kinds(compare_tables(base, fewer, DEFAULT)) == [("missing", True)]
    assert kinds(compare_tables(base, fewer, DEFAULT, allow_missing=True)) == [("missing", False)]
    assert kinds(compare_tables(fewer, base, DEFAULT)) == [("new", False)]
    assert kinds(compare_tables(fewer, base, DEFAULT, strict_changes=True)) == [("new", True)]


def test_a_rank_change_inside_tolerance_is_reported_and_passes():
    base = table({("a", "m"): list(BASE), ("b", "m"): list(BASE - 0.001)})
    cur = table({("a", "m"): list(BASE - 0.002), ("b", "m"): list(BASE - 0.001)})
    comparison = compare_tables(base, cur, DEFAULT)
    assert kinds(comparison) == [("rank", False)]
    assert comparison.findings[0].message.startswith("b now ranks above a")
    assert compare_tables(base, cur, DEFAULT, strict_changes=True).exit_code == 1


def test_ranks_follow_the_metric_direction():
    hib = {"m": False}
    base = table({("a", "m"): list(BASE), ("b", "m"): list(BASE + 0.001)}, hib=hib)  # a is better (lower)
    cur = table({("a", "m"): list(BASE + 0.002), ("b", "m"): list(BASE + 0.001)}, hib=hib)
    assert [f.details["now_above"] for f in compare_tables(base, cur, DEFAULT).of_kind("rank")] == ["b"]


def test_rows_with_other_parameters_are_other_experiments_not_matches():
    base = table({("ig", "m"): list(BASE)}, method_params=json.dumps({"n_steps": 32}))
    cur = table({("ig", "m"): list(BASE)}, method_params=json.dumps({"n_steps": 64}))
    comparison = compare_tables(base, cur, DEFAULT)
    assert kinds(comparison) == [("missing", True), ("new", False)]
    assert {f.unit["variant"] for f in comparison.findings} == {"method.n_steps=32", "method.n_steps=64"}


def test_a_changed_dataset_revision_is_reported():
    base = table({("a", "m"): list(BASE)}, dataset_revision="aaa")
    cur = table({("a", "m"): list(BASE)}, dataset_revision="bbb")
    comparison = compare_tables(base, cur, DEFAULT)
    assert kinds(comparison) == [("revision", False)]
    assert "dataset toy content changed" in comparison.findings[0].message


def cell_row(frame: pd.DataFrame, status: str, message: str) -> pd.DataFrame:
    """The unit as one cell-level row (what an erroring or not-applicable cell records)."""
    return frame.iloc[:1].assign(sample_id="", value=np.nan, status=status, message=message)


@pytest.mark.parametrize("before, after, fails", [
    ("ok", "not_applicable", True),      # a combination that used to be computed no longer is
    ("not_applicable", "error", True),
    ("error", "ok", False),              # fixed: reported, passes
    ("not_applicable", "ok", False),     # newly applicable: reported, passes
    ("error", "not_applicable", False),
])
def test_cell_state_changes(before, after, fails):
    scored = table({("a", "m"): list(BASE)})
    state = {"ok": scored, "error": cell_row(scored, "error", "ValueError: x"),
             "not_applicable": cell_row(scored, "not_applicable", "needs attention")}
    comparison = compare_tables(state[before], state[after], DEFAULT)
    assert kinds(comparison) == [("status", fails)]
    assert comparison.findings[0].message.startswith(f"{before} -> {after}")
    assert compare_tables(state[before], state[after], DEFAULT, strict_changes=True).exit_code == 1


def test_a_missing_not_applicable_cell_does_not_fail():
    na = cell_row(table({("a", "m"): list(BASE)}), "not_applicable", "needs attention")
    assert kinds(compare_tables(na, na.iloc[:0], DEFAULT)) == [("missing", False)]


def test_a_flipped_metric_direction_fails():
    base = table({("a", "m"): list(BASE)})
    assert kinds(compare_tables(base, base.assign(higher_is_better=False), DEFAULT)) == [("direction", True)]
