"""``xaibench compare`` logic on hand-built tables: tolerances, direction, statuses, coverage, ranks, policies."""
from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

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
    assert change.p_value == pytest.approx(1 / 2**10)  # exact one-sided test (worse?), every pair negative
    assert change.delta == pytest.approx(-0.05)
    assert change.tolerance == pytest.approx(0.01)


def test_wilcoxon_one_flipped_sample_is_large_but_not_significant():
    current = BASE.copy()
    current[3] = 0.0  # one sample flips on another machine: mean shift 0.04 > tolerance 0.01
    change = assess(BASE, current, True, Tolerance(mode="wilcoxon", atol=0.01, rtol=0.0))
    assert abs(change.delta) > change.tolerance
    assert change.verdict == SAME and change.p_value == 0.5  # one sample, one-sided: p = 1 / 2


def test_wilcoxon_p_value_agrees_with_scipy_on_mixed_differences():
    rng = np.random.default_rng(0)
    current = BASE + rng.normal(-0.05, 0.05, BASE.size)
    change = assess(BASE, current, True, Tolerance(mode="wilcoxon", atol=0.0, rtol=0.0))
    assert change.delta < 0  # one-sided in the direction of the change: is it worse?
    assert change.p_value == pytest.approx(stats.wilcoxon(current - BASE, alternative="less").pvalue)


@pytest.mark.parametrize("differences", [
    [-1.0] * 5 + [1.0],  # a 0/1 metric (pointing game): every |difference| tied
    [-1.0, -1.0, -0.5, -0.5, -2.0, 0.5, -1.0, -0.5, 1.0],
    [-0.25, -0.25, -0.25, 0.75, -0.5, -0.5, -1.0, -1.0, -1.0, 0.25, -0.75],
])
def test_tied_differences_get_scipys_permutation_p_value_counted_at_once(differences):
    """With tied |differences| and n <= 13 scipy's wilcoxon runs a permutation test (0.1-0.7 CPU-s per unit at
    n = 10-13); compare counts the same 2**n sign flips itself: the same p-value, both directions."""
    from xaibench.results.compare.values import signed_rank_p

    d = np.asarray(differences)
    for alternative in ("less", "greater"):
        assert signed_rank_p(d, alternative) == pytest.approx(stats.wilcoxon(d, alternative=alternative).pvalue,
                                                              rel=1e-12)
    base = np.ones(d.size)  # a unit whose samples moved by d: assess uses it
    change = assess(base, base + d, True, Tolerance(mode="wilcoxon", atol=0.0, rtol=0.0))
    assert change.p_value == pytest.approx(stats.wilcoxon(d, alternative="less").pvalue, rel=1e-12)


def test_too_few_pairs_for_the_test_fall_back_to_the_size_rule_and_say_so():
    assert wilcoxon_min_pairs(0.05) == 5 and wilcoxon_min_pairs(0.25) == 3  # one-sided: p >= 1 / 2**n
    change = assess(BASE[:4], BASE[:4] - 0.2, True, Tolerance(mode="wilcoxon"))
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
    # field by field: the metric's entry sets mode, its family's rtol still applies (it used to be dropped: a metric
    # entry was built on the default), the default's atol fills the rest
    assert policy.tolerance("max_sensitivity", "stability") == Tolerance(mode="mean", atol=0.5, rtol=0.3)
    both = parse_policy({"families": {"stability": {"rtol": 0.3, "atol": 0.2}},
                         "metrics": {"max_sensitivity": {"atol": 0.001}}}, name="p")
    assert both.tolerance("max_sensitivity", "stability") == Tolerance(atol=0.001, rtol=0.3)
    assert both.as_dict()["metrics"] == {"max_sensitivity": {"atol": 0.001}}  # the fields the entry sets
    path = tmp_path / "mine.yaml"
    path.write_text("mode: bootstrap\natol: 0.1\n")
    assert load_policy(str(path)).default == Tolerance(mode="bootstrap", atol=0.1)
    assert load_policy("strict").default.mode == "elementwise"


def test_a_policy_file_may_write_a_tolerance_as_1e_3(tmp_path):
    """ciuser25, as a CI user pinning the ~1e-3 cross-machine drift: ``atol: 1e-3`` was refused, "atol must be a
    number >= 0, got '1e-3'" (PyYAML, YAML 1.1, reads a float without a dot as a string; OmegaConf, which reads
    xaibench's other configs, takes it). Now the number it is, in the default and in an override; a word stays
    refused."""
    path = tmp_path / "tolerances.yaml"
    path.write_text("atol: 1e-3\nrtol: 2E-2\nmetrics:\n  max_sensitivity: {atol: 5e-4, alpha: 1e-2}\n")
    policy = load_policy(str(path))
    assert policy.default == Tolerance(atol=0.001, rtol=0.02)
    assert policy.tolerance("max_sensitivity", "stability") == Tolerance(atol=0.0005, rtol=0.02, alpha=0.01)
    assert policy.as_dict()["metrics"] == {"max_sensitivity": {"atol": 0.0005, "alpha": 0.01}}
    path.write_text("atol: small\n")
    with pytest.raises(UserError, match=r"atol must be a number >= 0, got 'small'"):
        load_policy(str(path))


@pytest.mark.parametrize("data, match", [
    ({"tolerance": 1}, r"unknown setting tolerance; valid: mode, atol"),
    ({"mode": "ttest"}, r"unknown mode 'ttest'; valid: elementwise, mean, wilcoxon, bootstrap"),
    ({"metrics": {"x": {"atol": -1}}}, r"atol must be a number >= 0"),
    ({"alpha": 0.5}, r"alpha must be in \(0, 0.5\) \(the level of a one-sided test\)"),
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


def test_a_rank_swap_within_tolerance_is_quiet_and_one_beyond_it_in_both_tables_is_reported():
    """Two methods whose means differ by less than the tolerance swapped ranks under cross-machine drift (~1e-3) and
    each swap was a ``rank`` finding: clutter on every run that trains people to ignore findings. A reversal is
    reported when the leader led by more than the pair's bound (the larger of the two units' size bounds, here
    0.002 + 0.02 * 0.55 = 0.013) and trails by more than it now; ``strict``'s 1e-6 bound still sees the small one."""
    drift = np.where(np.arange(BASE.size) % 2, 1e-3, -1e-3)
    base = table({("a", "m"): list(BASE), ("b", "m"): list(BASE - 0.001)})
    cur = table({("a", "m"): list(BASE - 0.002 + drift), ("b", "m"): list(BASE - 0.001 - drift)})
    assert kinds(compare_tables(base, cur, DEFAULT)) == []  # was [("rank", False)]
    assert compare_tables(base, cur, DEFAULT, strict_changes=True).exit_code == 0
    assert [f.details["now_above"] for f in compare_tables(base, cur, load_policy("strict")).of_kind("rank")] == ["b"]

    apart = table({("a", "m"): list(BASE), ("b", "m"): list(BASE - 0.03)})  # a leads by 0.03 > 0.013
    tied = table({("a", "m"): list(BASE - 0.035), ("b", "m"): list(BASE - 0.03)})  # now trails by 0.005 < 0.013
    assert "rank" not in [kind for kind, _ in kinds(compare_tables(apart, tied, DEFAULT))]  # a's own drop: degraded
    swapped = table({("a", "m"): list(BASE - 0.06), ("b", "m"): list(BASE - 0.03)})  # trails by 0.03 now
    comparison = compare_tables(apart, swapped, DEFAULT)
    assert kinds(comparison) == [("degraded", True), ("rank", False)]
    (rank,) = comparison.of_kind("rank")
    assert rank.message == ("b now ranks above a (0.52 vs 0.49; baseline 0.52 vs 0.55; apart by more than the "
                            "tolerance 0.013 in both)")
    assert rank.details["tolerance"] == pytest.approx(0.002 + 0.02 * float(np.mean(BASE)))
    assert compare_tables(apart, swapped, DEFAULT, strict_changes=True).of_kind("rank")[0].fails


def test_ranks_follow_the_metric_direction():
    hib = {"m": False}
    base = table({("a", "m"): list(BASE), ("b", "m"): list(BASE + 0.03)}, hib=hib)  # a is better (lower)
    cur = table({("a", "m"): list(BASE + 0.06), ("b", "m"): list(BASE + 0.03)}, hib=hib)
    assert [f.details["now_above"] for f in compare_tables(base, cur, DEFAULT).of_kind("rank")] == ["b"]


def test_rows_with_other_parameters_are_other_experiments_not_matches():
    base = table({("ig", "m"): list(BASE)}, method_params=json.dumps({"n_steps": 32}))
    cur = table({("ig", "m"): list(BASE)}, method_params=json.dumps({"n_steps": 64}))
    comparison = compare_tables(base, cur, DEFAULT)
    assert kinds(comparison) == [("missing", True), ("new", False)]
    assert {f.unit["variant"] for f in comparison.findings} == {"method.n_steps=32", "method.n_steps=64"}
    assert {f.unit["labels"]["method"] for f in comparison.findings} == {"ig (n_steps=32)", "ig (n_steps=64)"}


def test_compare_names_methods_and_their_variants_as_the_report_does():
    """roles10: compare wrote ``saliency [method.abs=False]`` where the report, the summary files and the figures
    write ``saliency (abs=False)``; and ``saliency`` alone where the report names the non-default variant. Now a
    finding names each of model, dataset, method and metric as the report does, in its lines, Markdown and JSON;
    ``variant`` (the JSON's machine-readable field, as the summary's column) is unchanged."""
    from xaibench.results.aggregate import summarize

    base = table({("saliency", "m"): list(BASE), ("random", "m"): list(np.full(10, 0.1))},
                 method_params=json.dumps({"abs": False}))
    cur = base.assign(value=np.where(base["method"] == "saliency", base["value"] - 0.2, base["value"]))
    both = pd.concat([cur, cur[cur["method"] == "saliency"].assign(metric="m2", params=json.dumps({"k": 1})),
                      cur[cur["method"] == "saliency"].assign(metric="m2", params=json.dumps({"k": 2}))])
    (degraded,) = compare_tables(base, cur, DEFAULT).of_kind("degraded")
    report_label = summarize(base).set_index("method").loc["saliency", "competitor"]
    assert degraded.unit["labels"]["method"] == report_label == "saliency (abs=False)"  # a non-default variant
    assert degraded.unit["variant"] == ""  # alone under its names: nothing tells it from another unit
    assert finding_line(degraded).startswith("degraded: mlp/toy/saliency (abs=False)/m ↑: ")
    markdown = to_markdown(compare_tables(base, cur, DEFAULT), baseline="b", current="c")
    assert "| mlp | toy | saliency (abs=False) | m ↑ |" in markdown and "[method." not in markdown
    names = compare_tables(both, both.assign(value=both["value"] + np.where(both["params"] == '{"k": 1}', 0.5, 0)),
                           DEFAULT)
    (improved,) = names.of_kind("improved")  # a metric's differing parameters follow its name the same way
    assert improved.unit["labels"]["metric"] == "m2 (k=1)" and improved.unit["variant"] == "metric.k=1"
    assert finding_line(improved).startswith("improved: mlp/toy/saliency (abs=False)/m2 (k=1) ↑: ")


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


# --- the default rule: a change confined to some samples, machine drift, flips, seeds -----------------------------

from xaibench.results.compare.render import finding_line, to_markdown  # noqa: E402  (appended section)

METHODS = {"saliency": BASE, "integrated_gradients": BASE[::-1].copy(), "random": np.full(10, 0.3)}


def ci_like(change=None, *, seeds=(0,)) -> pd.DataFrame:
    """``experiment=ci``-sized units: 3 methods x 2 metrics x 10 samples, per seed; ``change(method, metric,
    values)`` returns a unit's current values."""
    frames = []
    for seed in seeds:
        values = {(m, metric): list(change(m, metric, v.copy()) if change else v)
                  for m, v in METHODS.items() for metric in ("faithfulness_correlation", "sparseness")}
        frames.append(table(values, seed=seed))
    return pd.concat(frames, ignore_index=True)


def broken_on(k: int, by: float = -0.5):
    """Saliency's faithfulness broken on its first ``k`` samples (scores moved by ``by``)."""
    def change(method, metric, values):
        if method == "saliency" and metric == "faithfulness_correlation":
            values[:k] += by
        return values
    return change


def test_a_method_broken_on_half_of_its_samples_fails_by_default_also_under_machine_drift():
    """5 of 10 samples broken (the rest unchanged, or drifting ~1e-3 as on another machine): the one-sided test on
    the 5 changed samples gives p = 2**-5 < 0.05. It used to be `unconfirmed` and pass (two-sided p = 0.0625)."""
    rng = np.random.default_rng(0)
    drift = lambda values: values * (1 + 1e-3 * rng.uniform(-1, 1, values.size))  # noqa: E731
    for current in (ci_like(broken_on(5)), ci_like(lambda m, metric, v: drift(broken_on(5)(m, metric, v)))):
        comparison = compare_tables(ci_like(), current, DEFAULT)
        assert comparison.exit_code == 1
        (finding,) = comparison.of_kind("degraded")
        change = finding.change
        assert (finding.unit["method"], finding.unit["metric"]) == ("saliency", "faithfulness_correlation")
        assert change.p_value == pytest.approx(2**-5) and (change.n_worse, change.n_better) == (5, 0)
        assert "5 of 10 samples beyond tolerance, all worse" in finding.message
        assert not comparison.of_kind("unconfirmed")
    report = to_markdown(comparison, baseline="b", current="c")
    assert "❌ degraded" in report and "wilcoxon p=0.031 one-sided (5 of 10 samples beyond tol.: all worse)" in report
    assert "| Δ | Δ / mean\\|b\\| |" in report  # relative to mean|baseline| (the header said "Δ rel")


def test_machine_drift_on_every_value_passes_with_no_finding_and_strict_reports_it():
    rng = np.random.default_rng(1)
    noisy = ci_like(lambda m, metric, v: v * (1 + 1e-3 * rng.uniform(-1, 1, v.size)))
    comparison = compare_tables(ci_like(), noisy, DEFAULT)
    assert comparison.exit_code == 0 and comparison.findings == () and comparison.n_differing == 60
    assert compare_tables(ci_like(), noisy, load_policy("strict")).exit_code == 1


def test_a_single_flipped_sample_is_a_warning_and_four_samples_one_way_still_are():
    """One sample (or four) moving by 0.5 is large but cannot be told from samples that flip on another machine:
    a cold run with other CPU kernels moved 4 of one unit's 10 samples beyond tolerance (docs/ci.md). Reported as
    `unconfirmed` with why, passed; `--strict-changes` fails it."""
    for k, p_value in ((1, 0.5), (4, 1 / 16)):
        comparison = compare_tables(ci_like(), ci_like(broken_on(k)), DEFAULT)
        assert kinds(comparison) == [("unconfirmed", False)] and comparison.exit_code == 0
        finding = comparison.findings[0]
        assert finding.change.p_value == pytest.approx(p_value)
        assert f"{k} of 10 samples beyond tolerance, all worse" in finding.message
        assert "at least 5 samples must move one way at alpha=0.05" in finding.message
        assert compare_tables(ci_like(), ci_like(broken_on(k)), DEFAULT, strict_changes=True).exit_code == 1
    assert "too few samples moved one way to tell them from samples that flip" in to_markdown(
        comparison, baseline="b", current="c")


def test_samples_flipping_both_ways_pass():
    """The pattern measured across machines: 4 samples beyond tolerance, 3 one way and 1 the other."""
    def flips(method, metric, values):
        if method == "saliency" and metric == "faithfulness_correlation":
            values[:4] += np.array([-0.3, -0.25, -0.2, 0.1])
        return values
    comparison = compare_tables(ci_like(), ci_like(flips), DEFAULT)
    assert comparison.exit_code == 0 and kinds(comparison) == [("unconfirmed", False)]
    assert "4 of 10 samples beyond tolerance, 3 worse, 1 better" in comparison.findings[0].message
    # the report's table says which way too (the section title said "too few moved one way" with no counts)
    report = to_markdown(comparison, baseline="b", current="c")
    assert "(4 of 10 samples beyond tol.: 3 worse, 1 better)" in report and "or samples moved both ways" in report


def test_seeds_of_one_sample_are_one_sample_in_the_test():
    """Three identical seeds give the verdict and p-value of one seed: the test counts 10 samples, not 30 pairs.
    With seeds differing, the test is scipy's on the per-sample mean differences."""
    one = compare_tables(ci_like(), ci_like(broken_on(4)), DEFAULT)
    three = compare_tables(ci_like(seeds=(0, 1, 2)), ci_like(broken_on(4), seeds=(0, 1, 2)), DEFAULT)
    assert kinds(three) == kinds(one) == [("unconfirmed", False)]  # 12 "pairs" one way would have failed
    assert (three.findings[0].change.n, three.findings[0].change.n_samples) == (30, 10)
    assert three.findings[0].change.p_value == one.findings[0].change.p_value == 1 / 16

    shifts = {0: np.r_[[-0.5] * 6, [0.0] * 4], 1: np.r_[[-0.4] * 3, [0.2] * 3, [0.0] * 4], 2: np.zeros(10)}
    base = ci_like(seeds=(0, 1, 2))
    cur = base.copy()
    for seed, shift in shifts.items():
        rows = (cur["method"] == "saliency") & (cur["metric"] == "faithfulness_correlation") & (cur["seed"] == seed)
        cur.loc[rows, "value"] += shift
    (finding,) = compare_tables(base, cur, DEFAULT).of_kind("degraded")
    per_sample = np.mean(list(shifts.values()), axis=0)  # -0.3 x3, -0.1 x3 (all beyond 0.01 + 0.02|b|), 0 x4
    assert finding.change.p_value == pytest.approx(stats.wilcoxon(per_sample[:6], alternative="less").pvalue)
    assert (finding.change.n_worse, finding.change.n_samples) == (6, 10)


# --- review fixes (a user regression-checking their own model in CI) ---------------------------------------------

import os  # noqa: E402  (appended section)
import subprocess  # noqa: E402
import sys  # noqa: E402

from tests.conftest import REPO, cli_env  # noqa: E402
from xaibench import cli  # noqa: E402
from xaibench.results.compare.tables import load_results  # noqa: E402
from xaibench.results.schema import MEASUREMENTS_ADDED  # noqa: E402


def unchecked_note(current) -> str:
    """The one stderr line of a compare whose current table lies outside a sweep folder (its config unknown)."""
    return (f"xaibench compare: note: current {current}: its config was not checked (no sweep.json beside it: a table "
            "outside its sweep folder, e.g. a copied CI artifact; give the sweep folder, which is checked also when "
            "copied or moved), so a pass says nothing about config edits since its sweep\n")


def run_compare(capsys, *args) -> tuple[int, str, str]:
    """``xaibench compare ARGS`` through the CLI entry point: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compare", *map(str, args)])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_v3_baseline_is_compared_as_v4_and_the_report_says_so_in_one_line(suffix, capsys, tmp_path):
    """A v3 table lacks only the measurement columns v4 added: it is compared (a v3 CSV used to be refused as
    "not an xaibench results table", exit 2) and the report says it was read as v4 (it used to say nothing)."""
    current = table({("saliency", "m"): list(BASE)})
    v3 = current.drop(columns=list(MEASUREMENTS_ADDED[4])).assign(schema_version=3)
    old = tmp_path / f"v3{suffix}"
    v3.to_csv(old, index=False) if suffix == ".csv" else v3.to_parquet(old, index=False)
    current.to_parquet(tmp_path / "current.parquet", index=False)
    code, out, err = run_compare(capsys, old, tmp_path / "current.parquet", "--json", tmp_path / "v.json")
    assert (code, err) == (0, unchecked_note(tmp_path / "current.parquet"))
    notes = [line for line in out.splitlines() if "read as v4" in line]
    assert notes == [f"ℹ️ baseline `{old}` is a results schema v3 table, read as v4: it lacks model_device, "
                     "oom_backoffs, which only describe how a run went (unknown here); the values are compared as "
                     "usual; `--update-baseline` records them."]
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert (verdict["baseline"]["schema_version"], verdict["current"]["schema_version"]) == (3, 4)
    assert verdict["counts"]["pairs"] == 10 and verdict["findings"] == []
    assert "read as" not in run_compare(capsys, tmp_path / "current.parquet", tmp_path / "current.parquet")[1]


def test_the_accept_command_records_the_command_that_made_the_baseline(capsys, tmp_path):
    """The report's next step used to record the literal placeholder '<the command that produced the current
    table>' in the provenance of whoever pasted it; it now carries the baseline's own producing command."""
    baseline, changed = tmp_path / "baselines" / "mine", tmp_path / "changed.parquet"
    table({("saliency", "m"): list(BASE)}).to_parquet(tmp_path / "made.parquet", index=False)
    table({("saliency", "m"): list(BASE - 0.2)}).to_parquet(changed, index=False)
    made_by = "xaibench -m experiment=my_ci store_dir=$(mktemp -d)"
    assert run_compare(capsys, baseline, tmp_path / "made.parquet", "--update-baseline", "--command", made_by)[0] == 0
    code, out, _ = run_compare(capsys, baseline, changed, "--json", tmp_path / "v.json")
    expected = f"xaibench compare {baseline} {changed} --update-baseline --command '{made_by}'"
    assert code == 1 and f"accept them deliberately: `{expected}`" in out
    assert json.loads((tmp_path / "v.json").read_text())["update_command"] == expected


def test_a_partial_current_sweep_is_not_offered_as_a_baseline(capsys, tmp_path):
    """An unfinished sweep's report ended with the --update-baseline command, which refuses it: it now says to rerun
    the sweep."""
    base = table({("saliency", "m"): list(BASE), ("random", "m"): list(BASE)})
    base.to_parquet(tmp_path / "base.parquet", index=False)
    sweep = tmp_path / "sweep"
    (sweep / "cells").mkdir(parents=True)
    (sweep / "sweep.json").write_text(json.dumps({"state": "running", "expected_cells": 2}))
    base[base["method"] == "saliency"].to_parquet(sweep / "cells" / "a.parquet", index=False)
    code, out, err = run_compare(capsys, tmp_path / "base.parquet", sweep, "--json", tmp_path / "v.json")
    assert code == 1 and "1 of 2 cells; the sweep did not finish" in err
    assert "--update-baseline --command" not in out
    assert "The current sweep did not finish, so it cannot become a baseline" in out
    assert json.loads((tmp_path / "v.json").read_text())["update_command"] is None


def test_a_baseline_that_is_not_there_says_how_to_get_it(tmp_path):
    """What a CI job meets: no baseline yet, a folder without its table (not committed), a Git LFS pointer (checkout
    without LFS). Each is one line with the fix; the pointer used to read "not a readable Parquet file"."""
    with pytest.raises(UserError, match=r"baseline table .*nope not found; make the first baseline with xaibench "
                                        r"compare .*nope CURRENT --update-baseline and commit it"):
        load_results(tmp_path / "nope", "baseline")
    (tmp_path / "folder").mkdir()
    with pytest.raises(UserError, match=r"baseline folder .*folder has no table.parquet and is not a sweep folder; "
                                        "make the first baseline"):
        load_results(tmp_path / "folder", "baseline")
    (tmp_path / "folder" / "table.parquet").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 81231\n")
    with pytest.raises(UserError, match=r"table.parquet is a Git LFS pointer, not the table: fetch it with git lfs "
                                        r"pull \(GitHub Actions: actions/checkout with lfs: true\)"):
        load_results(tmp_path / "folder", "baseline")


def test_the_ci_script_never_compares_a_killed_sweeps_stale_table(tmp_path):
    """scripts/ci_regression.sh compared ``<results>/ci/table.parquet``: a sweep killed before writing it left the
    previous run's table there, and the script passed it (or, with --update-baseline, baselined it). It compares the
    sweep folder, whose sweep.json says the run did not finish. The sweep is a stand-in that dies (exit 137)."""
    rows = table({("saliency", "m"): list(BASE)})
    rows.to_parquet(tmp_path / "baseline.parquet", index=False)
    sweep = tmp_path / "runs" / "ci"
    sweep.mkdir(parents=True)
    rows.to_parquet(sweep / "table.parquet", index=False)  # the previous run's table: identical to the baseline
    (sweep / "sweep.json").write_text(json.dumps({"state": "running", "expected_cells": 20}))
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\n[ "$3" = "-m" ] && exit 137  # the sweep: killed\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    env = cli_env(PYTHON=str(python), PYTHONPATH=os.environ.get("PYTHONPATH", str(REPO)),
                  XAIBENCH_CI_BASELINE=str(tmp_path / "baseline.parquet"), XAIBENCH_CI_RESULTS=str(tmp_path / "runs"))
    done = subprocess.run(["bash", str(REPO / "scripts" / "ci_regression.sh")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "current " + str(sweep) + " is partial (0 of 20 cells; the sweep did not finish)" in done.stderr
    verdict = json.loads((sweep / "compare.json").read_text())
    assert verdict["counts"]["missing"] == 2  # the unit, and "nothing compared: the current table has no rows"
    assert verdict["findings"][0]["details"] == {"nothing_compared": True}


def test_a_method_with_changed_parameters_is_scored_against_its_old_parameters():
    """IG's n_steps 32 -> 64 is another experiment (the old unit is missing, the new one new), but the report used to
    stop there: how the new parameters score against the old was not shown. The ``new`` finding now says it."""
    base = table({("ig", "m"): list(BASE), ("random", "m"): list(BASE)}, method_params=json.dumps({"n_steps": 32}))
    cur = table({("ig", "m"): list(BASE - 0.2)}, method_params=json.dumps({"n_steps": 64}))
    cur = pd.concat([cur, base[base["method"] == "random"]], ignore_index=True)
    comparison = compare_tables(base, cur, DEFAULT)
    assert kinds(comparison) == [("missing", True), ("new", True)]
    new = comparison.of_kind("new")[0]
    assert new.message == ("new: 10 value(s) (ok); against the baseline's ig (n_steps=32): worse, mean 0.55 -> "
                           "0.35, delta -0.2 over 10 pairs; 10 of 10 samples beyond tolerance, all worse: fails")
    # a subset run (--allow-missing) passed it: the old unit's absence was allowed and `new` never failed
    assert kinds(compare_tables(base, cur, DEFAULT, allow_missing=True)) == [("new", True), ("missing", False)]
    assert new.details["direction"] == "worse" and new.change.p_value == pytest.approx(2**-10)
    assert to_json_dict(comparison)["findings"][1]["change"]["direction"] == "worse"
    same = compare_tables(base, cur.assign(value=np.where(cur["method"] == "ig", BASE.tolist() * 2, cur["value"])),
                          DEFAULT)
    assert "ig (n_steps=32): no change beyond tolerance, mean 0.55 -> 0.55" in same.of_kind("new")[0].message
    two = np.where(np.arange(20) < 2, -0.5, 0.0)  # two samples of the new ig unit moved: large, not significant
    flipped = compare_tables(base, cur.assign(value=np.where(cur["method"] == "ig", BASE.tolist() * 2, cur["value"])
                                                 + two), DEFAULT)
    assert "ig (n_steps=32): not significant, mean 0.55 -> 0.45" in flipped.of_kind("new")[0].message


def to_json_dict(comparison) -> dict:
    from xaibench.results.compare.render import to_json

    return to_json(comparison, baseline="b", current="c")


def test_update_baseline_with_the_arguments_swapped_writes_nothing(capsys, tmp_path):
    """`compare RUN BASELINE --update-baseline` overwrote the run's table with the old baseline (and gave it a
    provenance), so the next `compare BASELINE RUN` passed whatever the run had measured. Now refused, exit 2."""
    baseline, sweep = tmp_path / "baselines" / "mine", tmp_path / "runs" / "mine"
    table({("saliency", "m"): list(BASE)}).to_parquet(tmp_path / "made.parquet", index=False)
    assert run_compare(capsys, baseline, tmp_path / "made.parquet", "--update-baseline")[0] == 0
    sweep.mkdir(parents=True)
    (sweep / "sweep.json").write_text(json.dumps({"state": "finished", "expected_cells": 1}))
    table({("saliency", "m"): list(BASE - 0.2)}).to_parquet(sweep / "table.parquet", index=False)
    before = (sweep / "table.parquet").read_bytes()
    for wrong in (sweep, sweep / "table.parquet"):
        code, out, err = run_compare(capsys, wrong, baseline, "--update-baseline")
        assert code == 2 and out == "" and "the arguments look swapped" in err and len(err.splitlines()) == 1
    plain = tmp_path / "plain.parquet"  # a table outside a sweep folder, without provenance
    plain.write_bytes(before)
    assert run_compare(capsys, plain, baseline, "--update-baseline")[0] == 2
    assert (sweep / "table.parquet").read_bytes() == plain.read_bytes() == before
    assert not (sweep / "table.provenance.json").exists() and not (tmp_path / "plain.provenance.json").exists()
    assert run_compare(capsys, baseline, sweep)[0] == 1  # the regression is still there


def test_update_baseline_lists_what_it_changes_for_the_commit_message(capsys, tmp_path):
    """It printed one verdict line (counts); the commit message must say why the scores moved: it lists them."""
    baseline = tmp_path / "baseline.parquet"
    table({("saliency", "m"): list(BASE), ("random", "m"): list(BASE)}).to_parquet(baseline, index=False)
    table({("saliency", "m"): list(BASE - 0.2)}).to_parquet(tmp_path / "new.parquet", index=False)
    code, out, _ = run_compare(capsys, baseline, tmp_path / "new.parquet", "--update-baseline")
    assert code == 0
    assert "  missing: mlp/toy/random/m ↑: 10 value(s) of the baseline (ok)\n" in out
    assert "  degraded: mlp/toy/saliency/m ↑: worse: mean 0.55 -> 0.35, delta -0.2 (-36.4%) over 10 pairs" in out


def test_quiet_still_says_in_the_ci_log_what_failed(capsys, tmp_path):
    """--quiet (the GitHub Actions recipe: the report goes to a file) printed the counts alone; a failed job's log
    now names each failing unit in one line. A pass stays one line."""
    base, cur = tmp_path / "base.parquet", tmp_path / "cur.parquet"
    table({("saliency", "m"): list(BASE), ("occlusion", "m"): list(BASE)}).to_parquet(base, index=False)
    table({("saliency", "m"): list(BASE - 0.2), ("occlusion", "m"): list(BASE + 0.2)}).to_parquet(cur, index=False)
    code, out, _ = run_compare(capsys, base, cur, "--quiet", "--report", tmp_path / "r.md")
    lines = out.splitlines()
    assert code == 1 and lines[0].startswith("xaibench compare: FAIL (1 failing: 1 degraded; also reported, not "
                                             "failing: 1 improved) -- 2 units")
    assert lines[1:] == ["  degraded: mlp/toy/saliency/m ↑: worse: mean 0.55 -> 0.35, delta -0.2 (-36.4%) over 10 "
                         "pairs; 10 of 10 samples beyond tolerance, all worse"]
    shutil.copy(base, cur)
    code, out, _ = run_compare(capsys, base, cur, "--quiet")
    assert code == 0 and len(out.splitlines()) == 1


def test_a_table_compared_with_itself_is_refused_not_passed(capsys, tmp_path):
    """``xaibench compare results/baselines/ci results/baselines/ci`` (a CI script whose CURRENT variable was unset, a
    copy-paste) passed on every run whatever the table held. The same file under two names -- a sweep folder and its
    table, a link -- is refused in one line (exit 2), nothing written; a copy of it is compared as usual."""
    folder = tmp_path / "runs" / "ci"
    folder.mkdir(parents=True)
    table({("saliency", "m"): list(BASE)}).to_parquet(folder / "table.parquet", index=False)
    (tmp_path / "link.parquet").symlink_to(folder / "table.parquet")
    for baseline, current in ((folder, folder), (folder / "table.parquet", folder), (tmp_path / "link.parquet",
                                                                                      folder / "table.parquet")):
        code, out, err = run_compare(capsys, baseline, current, "--json", tmp_path / "v.json")
        assert (code, out) == (2, "") and err == (
            f"xaibench: error: baseline {baseline} and current {current} are the same table ({folder / 'table.parquet'}"
            "): compared with itself it passes whatever it holds; give the current run's table or sweep folder (e.g. "
            "results/runs/ci) as CURRENT\n")
        assert not (tmp_path / "v.json").exists()
    shutil.copy(folder / "table.parquet", tmp_path / "copy.parquet")
    assert run_compare(capsys, tmp_path / "copy.parquet", folder)[0] == 0


def test_the_verdict_line_says_what_fails_first_and_the_rest_as_also_reported(capsys, tmp_path):
    """The headline counted findings by kind whatever they did: ``FAIL (1 failing finding(s); 2 missing, 1 degraded,
    1 improved, 1 new)`` left the reader to guess which one failed (one of the two ``missing`` passes: a unit not
    applicable in the baseline). Now the failing findings come first, by kind, and the rest after "also"."""
    base, cur = tmp_path / "base.parquet", tmp_path / "cur.parquet"
    not_applicable = cell_row(table({("rollout", "m"): list(BASE)}), "not_applicable", "rollout needs attention")
    pd.concat([table({("saliency", "m"): list(BASE), ("occlusion", "m"): list(BASE), ("ig", "m"): list(BASE)}),
               not_applicable]).to_parquet(base, index=False)
    table({("saliency", "m"): list(BASE - 0.2), ("occlusion", "m"): list(BASE + 0.2),
           ("lime", "m"): list(BASE)}).to_parquet(cur, index=False)
    code, out, _ = run_compare(capsys, base, cur, "--quiet")
    assert code == 1 and out.splitlines()[0] == (
        "xaibench compare: FAIL (2 failing: 1 missing, 1 degraded; also reported, not failing: 1 missing, 1 improved, "
        "1 new) -- 5 units, 20 paired values, 20 differ at all")
    code, out, _ = run_compare(capsys, base, cur, "--quiet", "--allow-missing")
    assert out.splitlines()[0].startswith("xaibench compare: FAIL (1 failing: 1 degraded; also reported, not failing: "
                                          "2 missing, 1 improved, 1 new) -- ")
    healthy = table({("saliency", "m"): list(BASE), ("occlusion", "m"): list(BASE + 0.2), ("ig", "m"): list(BASE)})
    healthy.to_parquet(cur, index=False)
    code, out, _ = run_compare(capsys, base, cur, "--quiet")
    assert (code, out.splitlines()[0]) == (0, "xaibench compare: PASS (reported, not failing: 1 missing, 1 improved) "
                                              "-- 4 units, 30 paired values, 10 differ at all")


# --- controls (random, constant, sobel): reference points, not methods under test -------------------------------

def shifted(method: str, by: float, metric: str = "faithfulness_correlation"):
    """``ci_like`` change: ``method``'s scores on ``metric`` moved by ``by`` on every sample."""
    def change(name, which, values):
        return values + by if (name, which) == (method, metric) else values
    return change


def test_a_controls_own_drift_is_reported_not_gated_and_strict_gates_it():
    """After a retrain a random baseline's faithfulness moves: that failed the build as `degraded`/`improved` like a
    method under test. It is now a `control` finding that passes while every method still beats the control;
    `--policy strict` (gate_controls: true) and `--strict-changes` fail it."""
    for by, direction in ((0.1, "better"), (-0.1, "worse")):
        comparison = compare_tables(ci_like(), ci_like(shifted("random", by)), DEFAULT)
        assert kinds(comparison) == [("control", False)] and comparison.exit_code == 0
        (finding,) = comparison.findings
        assert finding.unit["method"] == "random" and finding.details == {"direction": direction,
                                                                          "would_be": "degraded" if by < 0 else
                                                                          "improved"}
        assert finding.change.p_value == pytest.approx(2**-10)
        assert finding.message.endswith("random is a control (a reference point): its own drift is reported, "
                                        "not gated")
        verdict = to_json_dict(comparison)
        assert verdict["verdict"] == "pass" and verdict["counts"]["control"] == 1 and verdict["counts"]["failing"] == 0
        assert verdict["policy"]["gate_controls"] is False and verdict["policy"]["controls"] == ["random", "constant",
                                                                                                "sobel"]
        report = to_markdown(comparison, baseline="b", current="c")
        assert "### Control methods (random, constant, sobel): reference points" in report
        assert "| ℹ️ control | mlp | toy | random | faithfulness_correlation ↑ | 0.3 |" in report
    strict = compare_tables(ci_like(), ci_like(shifted("random", -0.1)), load_policy("strict"))
    assert strict.exit_code == 1 and ("degraded", True) in kinds(strict) and not strict.of_kind("control")
    assert compare_tables(ci_like(), ci_like(shifted("random", -0.1)), DEFAULT, strict_changes=True).exit_code == 1
    gated = parse_policy({"gate_controls": True}, name="mine")
    assert kinds(compare_tables(ci_like(), ci_like(shifted("random", -0.1)), gated)) == [("degraded", True)]
    # 2 samples of the control moved: passed as noise, like a method's, so nothing to accept
    noise = compare_tables(ci_like(), ci_like(lambda m, k, v: v - 0.5 * (np.arange(10) < 2) * (m == "random")),
                           DEFAULT)
    assert [(f.kind, f.details["would_be"]) for f in noise.findings] == [("control", "unconfirmed")] * 2
    assert "--update-baseline" not in to_markdown(noise, baseline="b", current="c")
    assert to_json_dict(noise)["update_command"] is None and to_json_dict(comparison)["update_command"]
    typo = compare_tables(ci_like(), ci_like(shifted("random", -0.1)), parse_policy({"controls": ["rnadom"]}, name="p"))
    assert typo.unused_overrides == ("controls.rnadom",) and kinds(typo) == [("degraded", True)]  # named, not silent
    assert compare_tables(ci_like(), ci_like(), DEFAULT).unused_overrides == ()  # the default list: constant, sobel
    none = parse_policy({"controls": []}, name="mine")  # no controls: random is a method like any other
    assert kinds(compare_tables(ci_like(), ci_like(shifted("random", 0.1)), none)) == [("improved", False)]


def test_a_method_falling_to_or_below_a_control_it_beat_fails():
    """The control rose above both methods (0.3 -> 0.7 against means of 0.55): each method's lead over it fell on
    every sample, a `below_control` failure per method, whose test is the one a score change gets (p = 2**-10 on
    the per-sample gaps). It replaces the rank change for that pair; the control's own drift is still `control`."""
    comparison = compare_tables(ci_like(), ci_like(shifted("random", 0.4)), DEFAULT)
    assert comparison.exit_code == 1
    below = comparison.of_kind("below_control")
    assert [(f.unit["method"], f.fails) for f in below] == [("integrated_gradients", True), ("saliency", True)]
    assert all(f.details["control"] == "random" and f.change.p_value == pytest.approx(2**-10) for f in below)
    assert below[1].message == ("no longer beats the control random: mean 0.55 vs 0.7 (baseline 0.55 vs 0.3); its "
                                "lead +0.25 -> -0.15 over 10 pairs; 10 of 10 samples beyond tolerance, all worse: "
                                "fails (one-sided p=0.00098)")
    assert not comparison.of_kind("rank") and len(comparison.of_kind("control")) == 1
    verdict = to_json_dict(comparison)["findings"]
    lead = next(f for f in verdict if f["kind"] == "below_control" and f["unit"]["method"] == "saliency")
    assert lead["change"]["direction"] == "worse" and lead["details"]["control"] == "random"  # it said "better"
    assert (lead["change"]["baseline_mean"], lead["change"]["current_mean"]) == pytest.approx((0.25, -0.15))
    report = to_markdown(comparison, baseline="b", current="c")
    assert "### Methods no longer better than a control" in report
    assert "| ❌ | mlp | toy | saliency | faithfulness_correlation ↑ | no longer beats the control random" in report
    # a method that only tied its control (lead +0.001 -> -0.001: inside tolerance) is reported and passes
    tied = {"saliency": np.full(10, 0.301), "random": np.full(10, 0.3)}
    base = table({(m, "m"): list(v) for m, v in tied.items()})
    cur = table({("saliency", "m"): list(tied["saliency"]), ("random", "m"): list(tied["random"] + 0.002)})
    comparison = compare_tables(base, cur, DEFAULT)
    assert kinds(comparison) == [("below_control", False)]
    assert comparison.findings[0].message.endswith("passed: the gap moved within tolerance")
    # lower is better: the control's lower score now beats the method
    base = table({("saliency", "m"): list(BASE), ("random", "m"): list(BASE + 0.5)}, hib={"m": False})
    cur = table({("saliency", "m"): list(BASE + 0.6), ("random", "m"): list(BASE + 0.5)}, hib={"m": False})
    assert kinds(compare_tables(base, cur, DEFAULT)) == [("degraded", True), ("below_control", True)]


def test_the_report_lists_below_control_findings_only_where_significant_or_beyond_tolerance_and_says_the_rule():
    """paper17: a method that only tied its control (lead +0.001 -> -0.001, inside the default policy's tolerance)
    was a row of "Methods no longer better than a control" on every run, beside the real ones. The report lists the
    significant and the beyond-tolerance ones under a heading that states the rule, counts the rest in one line (the
    JSON keeps every finding); --strict-changes, which fails them, lists them."""
    tied = {"saliency": np.full(10, 0.301), "random": np.full(10, 0.3)}
    base = table({(m, "m"): list(v) for m, v in tied.items()} | {("ig", "m"): list(BASE)})
    cur = table({("saliency", "m"): list(tied["saliency"]), ("random", "m"): list(tied["random"] + 0.002),
                 ("ig", "m"): list(BASE)})
    comparison = compare_tables(base, cur, DEFAULT)
    assert kinds(comparison) == [("below_control", False)]
    report = to_markdown(comparison, baseline="b", current="c")
    assert "no longer beats the control random" not in report  # the tied row is not listed
    assert "### Methods no longer better than a control" not in report
    assert ("1 method fell to or below a control by a change of its lead within the policy's tolerance (noise; "
            "passed, not listed") in report
    assert len([f for f in to_json_dict(comparison)["findings"] if f["kind"] == "below_control"]) == 1
    strict = to_markdown(compare_tables(base, cur, DEFAULT, strict_changes=True), baseline="b", current="c")
    assert "| ❌ | mlp | toy | saliency | m ↑ | no longer beats the control random" in strict
    assert "within the policy's tolerance (noise" not in strict
    # beside a real one (the control rose above ig on every sample): that one is listed under the stated rule
    risen = table({("saliency", "m"): list(tied["saliency"]), ("random", "m"): list(BASE + 0.4),
                   ("ig", "m"): list(BASE)})
    both = to_markdown(compare_tables(base, risen, DEFAULT), baseline="b", current="c")
    assert ("### Methods no longer better than a control: listed where the change of the method's per-sample lead "
            "over the control is significant (fails) or beyond the policy's tolerance") in both
    assert "| ❌ | mlp | toy | ig | m ↑ | no longer beats the control random" in both

def test_below_control_findings_of_same_named_groups_come_in_group_order():
    """Groups that differ only in parameters (one dataset with 6 ``dataset_params``, as a sweep over data variants)
    each lose a method to the control: the findings share model, dataset, method and metric, so their order was the
    order compare visited the groups, which followed Python's per-process string hashing (the same two tables gave
    the report's rows in another order on each run). They now come in the groups' key order, on every run."""
    def copies(change=None):
        return pd.concat([ci_like(change).assign(dataset_params=json.dumps({"copy": i})) for i in range(6)],
                         ignore_index=True)

    comparison = compare_tables(copies(), copies(shifted("random", 0.4)), DEFAULT)
    below = [json.loads(f.unit["dataset_params"])["copy"] for f in comparison.of_kind("below_control")
             if f.unit["method"] == "saliency"]
    assert below == list(range(6))


@pytest.mark.parametrize("data, match", [
    ({"controls": "random"}, r"controls must be a list of method names, got 'random'"),
    ({"gate_controls": "yes"}, r"gate_controls must be true or false, got 'yes'"),
])
def test_bad_control_settings_are_user_errors(data, match):
    with pytest.raises(UserError, match=match):
        parse_policy(data, name="bad")


# --- unreadable and outdated tables: which file, what is wrong, the fix ------------------------------------------

def test_a_filtered_copy_written_with_its_pandas_index_is_compared_not_called_unreadable(capsys, tmp_path):
    """newuser19: a CI maintainer drops rows from a copy of the table (``t[t.method != "saliency"].to_parquet``)
    to see the verdict: pandas stores the filtered index as a column ``__index_level_0__``, and compare, reading a
    column at a time, said "current ... is unreadable: not a valid Parquet file ('__index_level_0__')" (exit 2).
    It now compares the copy: the dropped sample is missing (exit 1)."""
    import pyarrow.parquet as pq

    baseline, current = tmp_path / "baseline.parquet", tmp_path / "current.parquet"
    full = table({("saliency", "m"): list(BASE), ("ig", "m"): list(BASE)})
    full.to_parquet(baseline, index=False)
    dropped = (full["method"] == "saliency") & (full["sample_id"] == full["sample_id"].iloc[3])
    full[~dropped].to_parquet(current)  # the index, with its gap, goes into the file as a column
    assert "__index_level_0__" in pq.read_schema(current).names
    code, out, err = run_compare(capsys, baseline, current, "--quiet")
    assert code == 1 and "unreadable" not in err, err
    assert out.splitlines()[0].startswith("xaibench compare: FAIL (1 failing: 1 missing)")
    assert "missing: mlp/toy/saliency/m ↑: 1 sample(s) (0/s3)" in out


@pytest.mark.parametrize("role", ["baseline", "current"])
def test_a_corrupt_parquet_table_names_its_role_and_the_fix_and_nothing_is_written(role, capsys, tmp_path):
    """A truncated Parquet file said "table X is not a readable Parquet file": not whether it was the baseline or the
    run, nor what to do. Now one line naming the role, the file, that it is unreadable and the fix; exit 2."""
    good, corrupt = tmp_path / "good.parquet", tmp_path / "corrupt.parquet"
    table({("saliency", "m"): list(BASE)}).to_parquet(good, index=False)
    corrupt.write_bytes(good.read_bytes()[:300])  # an interrupted copy: no Parquet footer
    pair = (corrupt, good) if role == "baseline" else (good, corrupt)
    out_md, out_json = tmp_path / "r.md", tmp_path / "v.json"
    code, out, err = run_compare(capsys, *pair, "--report", out_md, "--json", out_json)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"xaibench: error: {role} {corrupt} is unreadable: not a valid Parquet file (")
    fix = (f"restore it from git (git checkout -- {corrupt})" if role == "baseline"
           else "rerun the sweep that wrote it (finished cells are reused) to write it again")
    assert fix in err and err.rstrip().endswith("(nothing written)")
    assert not out_md.exists() and not out_json.exists()
    if role == "current":  # nor is a corrupt run ever baselined
        code, _, err = run_compare(capsys, tmp_path / "new_baseline", corrupt, "--update-baseline")
        assert code == 2 and "current" in err and not (tmp_path / "new_baseline").exists()


@pytest.mark.parametrize("role", ["baseline", "current"])
def test_a_schema_v2_csv_is_told_to_regenerate_like_a_v2_parquet(role, capsys, tmp_path):
    """A v2 CSV (it lacks v3's explain_device and v4's columns) got "lacks columns", a v2 Parquet table "regenerate
    the baseline": both now get the version message."""
    v2 = table({("saliency", "m"): list(BASE)}).drop(columns=["explain_device", *MEASUREMENTS_ADDED[4]])
    v2 = v2.assign(schema_version=2)
    good = tmp_path / "good.parquet"
    table({("saliency", "m"): list(BASE)}).to_parquet(good, index=False)
    for suffix in (".csv", ".parquet"):
        old = tmp_path / f"v2{suffix}"
        v2.to_csv(old, index=False) if suffix == ".csv" else v2.to_parquet(old, index=False)
        code, out, err = run_compare(capsys, *((old, good) if role == "baseline" else (good, old)))
        assert (code, out) == (2, "") and err == (f"xaibench: error: {role} {old} has results schema version 2, this "
                                                  f"xaibench reads version {SCHEMA_VERSION}; regenerate it with this "
                                                  "version (docs/ci.md: refreshing the baseline)\n")


# --- the report as a pull-request comment ---------------------------------------------------------------------------

def test_a_large_sweeps_report_stays_under_the_comment_limit_and_says_what_it_left_out(capsys, tmp_path):
    """A large sweep's report outgrew GitHub's 65,536-character comment limit (the comment is then refused and the
    pull request shows nothing). 62 methods degraded, improved, moved on 4 samples, erroring, missing and new on six
    metrics: --report stays under the limit, leaves passing rows out before failing
    ones, says how many and where the rest is, keeps the closing lines; the whole report is written beside it."""
    from xaibench.commands.compare import REPORT_LIMIT
    from xaibench.results.compare.render import COMMENT_BUDGET, COMMENT_LIMIT, MAX_ROWS

    assert REPORT_LIMIT == COMMENT_BUDGET < COMMENT_LIMIT
    methods = [f"integrated_gradients_variant_{i:03d}" for i in range(62)]  # a section shows at most 60 rows
    jitter = np.arange(10) * 1e-3  # no tied differences (scipy's wilcoxon would run a slow permutation test)
    four = np.r_[-0.5 - jitter[:4], np.zeros(6)]  # 4 samples moved one way: unconfirmed
    shifts = {"faithfulness_degraded": -0.3 - jitter, "faithfulness_improved": 0.3 + jitter,
              "faithfulness_unconfirmed": four}  # one metric each: a comparison group moved alike, no rank change
    base, cur = {}, {}
    for i, method in enumerate(methods):
        for metric, shift in shifts.items():
            base[method, metric] = list(BASE + 0.01 * i)
            cur[method, metric] = list(BASE + 0.01 * i + shift)
        base[method, "sparseness_missing"] = cur[method, "sparseness_new"] = list(BASE)
        base[method, "pointing_game_erroring"] = cur[method, "pointing_game_erroring"] = list(BASE)
    base, cur = table(base), table(cur)
    erroring = cur["metric"] == "pointing_game_erroring"  # each such cell now fails before scoring: ok -> error
    errors = cur[erroring].drop_duplicates("method").assign(
        sample_id="", value=np.nan, status="error",
        message="RuntimeError: CUDA out of memory while explaining a batch of 64 (at xaibench/engine/stages.py:135)")
    cur = pd.concat([cur[~erroring], errors], ignore_index=True)
    paths = {name: tmp_path / f"{name}.parquet" for name in ("base", "cur")}
    base.to_parquet(paths["base"], index=False)
    cur.to_parquet(paths["cur"], index=False)
    report, verdict_json = tmp_path / "compare.md", tmp_path / "compare.json"
    code, out, _ = run_compare(capsys, paths["base"], paths["cur"], "--report", report, "--json", verdict_json)
    findings = json.loads(verdict_json.read_text())["findings"]
    text, full = report.read_text(), (tmp_path / "compare.full.md").read_text()
    assert code == 1 and len(findings) == 6 * 62  # degraded, improved, unconfirmed, status, missing, new
    assert len(text.encode()) <= COMMENT_BUDGET < COMMENT_LIMIT < len(full.encode())

    rows = [line for line in text.splitlines() if line.startswith(("| ❌", "| ℹ️"))]
    left_out = len(findings) - len(rows)
    assert text.splitlines()[2] == (f"⚠️ Shortened to fit a GitHub comment (65,536 characters): {left_out} of "
                                    f"{len(findings)} findings' rows are left out (passing ones first); the full "
                                    f"report is `{tmp_path / 'compare.full.md'}` and every finding is in "
                                    f"`{verdict_json}`.")
    shown_failing = sum(line.startswith("| ❌") for line in rows)
    assert shown_failing == 3 * MAX_ROWS  # degraded, status, missing: passing rows were left out, not these
    assert "more (see the JSON verdict)" in text
    assert text.rstrip().endswith("(`--update-baseline` refuses error rows): fix them, rerun, compare again.")
    full_rows = [line for line in full.splitlines() if line.startswith(("| ❌", "| ℹ️"))]
    assert len(full_rows) == len(findings) and "Shortened" not in full
    assert out.startswith(text.split("\n")[0]) and "Shortened" not in out  # stdout: the report as before
    tight = tmp_path / "tight.md"  # a smaller --report-limit: the line named GitHub's 65,536 characters instead
    run_compare(capsys, paths["base"], paths["cur"], "--report", tight, "--report-limit", "8192")
    assert len(tight.read_bytes()) <= 8192
    assert tight.read_text().splitlines()[2].startswith("⚠️ Shortened to --report-limit 8,192 bytes: ")

    small = tmp_path / "small.md"  # a report that fits is written whole, with nothing beside it
    ci_like(broken_on(6)).to_parquet(paths["cur"], index=False)
    ci_like().to_parquet(paths["base"], index=False)
    code, _, _ = run_compare(capsys, paths["base"], paths["cur"], "--report", small)
    assert code == 1 and "Shortened" not in small.read_text() and not (tmp_path / "small.full.md").exists()
    assert len(out.encode()) > COMMENT_LIMIT  # what --report-limit 0 writes: the report as printed
    code, out, err = run_compare(capsys, paths["base"], paths["cur"], "--report", small, "--report-limit", "100")
    assert (code, out) == (2, "") and "--report-limit must be 0 (no limit) or at least 4096 bytes, got 100" in err


def test_a_changed_model_revision_names_the_part_that_changed_and_the_accuracy():
    """A torch_module's revision is `<weights digest>+code:<digest of the file defining its class>`. An edit to the
    class's file was reported as "weights changed (revision 93843ea87550 -> 93843ea87550)": the wrong part, and the
    same 12 characters. The finding now names the part and, for a model, its test accuracy before and after; a
    built-in model retrained to another accuracy under the same parameters (revision "") is reported too."""
    weights, code = "93843ea87550f417fe95bf7b87ad", "509c4cc9018fb118cc90"
    base = table({("a", "m"): list(BASE)}, model_revision=f"{weights}+code:{code}", model_accuracy=1.0)
    edited = table({("a", "m"): list(BASE)}, model_revision=f"{weights}+code:611e833b9a40589b", model_accuracy=1.0)
    (finding,) = compare_tables(base, edited, DEFAULT).of_kind("revision")
    assert finding.message == ("model mlp code changed (code 509c4cc9018f -> 611e833b9a40; weights unchanged): its "
                               "scores are measured on a changed model")
    retrained = table({("a", "m"): list(BASE)}, model_revision=f"562921b65400aa+code:{code}", model_accuracy=0.7)
    (finding,) = compare_tables(base, retrained, DEFAULT).of_kind("revision")
    assert finding.message == ("model mlp weights changed (weights 93843ea87550 -> 562921b65400; code unchanged); "
                               "test accuracy 1 -> 0.7: its scores are measured on a changed model")
    built_in = [table({("a", "m"): list(BASE)}, model_accuracy=accuracy) for accuracy in (0.967, 0.9)]
    (finding,) = compare_tables(*built_in, DEFAULT).of_kind("revision")
    assert finding.message.startswith("model mlp test accuracy 0.967 -> 0.9 on toy with the same parameters and "
                                      "revision")
    assert not finding.fails and compare_tables(built_in[0], built_in[0], DEFAULT).findings == ()


def test_a_model_tested_on_another_dataset_is_not_reported_as_retrained():
    """A maintainer who changed the experiment's dataset (synthetic_tabular -> breast_cancer) got, beside the missing
    and new units, "revision: model mlp test accuracy 0.967 -> 0.965 with the same parameters and revision: trained
    to other weights (training code, torch or BLAS changed)", also in --quiet's log as what may explain the failure:
    the accuracies of two datasets (or a mean over datasets, one of them dropped) were compared as one model's."""
    base = pd.concat([table({("a", "m"): list(BASE)}, model_accuracy=0.967),
                      table({("a", "m"): list(BASE)}, dataset="wine", model_accuracy=0.9)], ignore_index=True)
    other = table({("a", "m"): list(BASE)}, dataset="breast_cancer", model_accuracy=0.965)
    assert compare_tables(base, other, DEFAULT).of_kind("revision") == []
    dropped = base[base["dataset"] == "toy"]  # the mean over toy and wine was 0.93; toy alone still 0.967
    assert compare_tables(base, dropped, DEFAULT).of_kind("revision") == []
    retrained = base.assign(model_accuracy=np.where(base["dataset"] == "wine", 0.8, 0.967))
    (finding,) = compare_tables(base, retrained, DEFAULT).of_kind("revision")
    assert finding.message.startswith("model mlp test accuracy 0.9 -> 0.8 on wine with the same parameters")
    weights = pd.concat([dropped.assign(model_revision="aaaa"), table({("a", "m"): list(BASE)}, dataset="wine",
                                                                      model_revision="aaaa", model_accuracy=0.5)])
    (finding,) = compare_tables(weights, dropped.assign(model_revision="bbbb"), DEFAULT).of_kind("revision")
    assert "test accuracy" not in finding.message  # toy's 0.967 both times; wine, tested only before, is not in it


def test_quiet_names_a_changed_model_beside_the_failures_it_may_explain(capsys, tmp_path):
    """--quiet listed the failing findings only: a CI log showed ten degraded units and not that the model behind
    them had been retrained (accuracy 1 -> 0.7). The revision lines now follow the failing ones."""
    base, cur = tmp_path / "base.parquet", tmp_path / "cur.parquet"
    table({("saliency", "m"): list(BASE)}, model_revision="aaaa", model_accuracy=1.0).to_parquet(base, index=False)
    table({("saliency", "m"): list(BASE - 0.2)}, model_revision="bbbb", model_accuracy=0.7).to_parquet(cur, index=False)
    code, out, _ = run_compare(capsys, base, cur, "--quiet")
    assert code == 1 and out.splitlines()[2:] == [
        "  revision: mlp: model mlp weights changed (weights aaaa -> bbbb); test accuracy 1 -> 0.7: its scores are "
        "measured on a changed model"]


def test_a_report_whose_heading_alone_is_too_long_is_cut_at_a_line_and_says_so():
    """The last resort of the comment limit: a policy of 400 metric overrides (listed in the heading) makes even a
    report without rows too long; it is cut at a line, under the limit, and says so."""
    policy = parse_policy({"metrics": {f"metric_{i:03d}": {"atol": 0.5} for i in range(400)}}, name="huge")
    comparison = compare_tables(ci_like(), ci_like(broken_on(6)), policy)
    text = to_markdown(comparison, baseline="b", current="c", limit=5000, json_report="v.json")
    assert len(text.encode()) <= 5000 and text.startswith("## xaibench compare: ❌ regression\n")
    assert text.endswith("left out (passing ones first); every finding is in `v.json`. (cut here)\n")
    assert len(to_markdown(comparison, baseline="b", current="c").encode()) > 5000


# --- review fixes (ci8: a maintainer guarding their own repository) ----------------------------------------------

def test_rank_changes_compare_the_samples_both_tables_scored():
    """A PR that adds a seed (or samples) left the shared samples identical, yet rank changes were reported: the
    current means included samples the baseline never scored (a `seed=1` run reported them with 0 paired values)."""
    base = table({("a", "m"): list(BASE), ("b", "m"): list(BASE - 0.03)}, seed=0)
    extra = table({("a", "m"): list(BASE - 0.5), ("b", "m"): list(BASE)}, seed=1)  # other data: b ahead there
    comparison = compare_tables(base, pd.concat([base, extra], ignore_index=True), DEFAULT)
    assert not comparison.of_kind("rank") and comparison.n_differing == 0
    assert compare_tables(base, extra, DEFAULT).of_kind("rank") == []  # no shared sample: nothing to rank on
    # a reversal on the shared samples is still reported, whatever else the current table holds
    moved = table({("a", "m"): list(BASE - 0.06), ("b", "m"): list(BASE - 0.03)}, seed=0)
    (rank,) = compare_tables(base, pd.concat([moved, extra], ignore_index=True), DEFAULT).of_kind("rank")
    assert rank.message.startswith("b now ranks above a") and rank.details["baseline"] == pytest.approx(
        [float(np.mean(BASE - 0.03)), float(np.mean(BASE))])


def role(params: dict) -> str:
    return json.dumps({**params, "role": "control"}, sort_keys=True)


def test_a_method_whose_rows_record_the_control_role_is_a_control_whatever_its_name():
    """A user's own control (here a subclass of `random` registered as `noise_control`) was a method under test:
    its drift after a retrain failed the build and nothing checked that the methods still beat it. Rows now record
    the role (`Explainer.control`); an older baseline without it is the same experiment."""
    from xaibench.explainers.base import ROLE_KEY, Explainer
    from xaibench.explainers.controls.random import RandomExplainer
    from xaibench.results.roles import ROLE_KEY as COMPARE_ROLE_KEY  # what compare's tables read

    class NoiseControl(RandomExplainer):  # a user's control: inherits the role
        pass

    assert NoiseControl().recorded_role() == {ROLE_KEY: "control"} and ROLE_KEY == COMPARE_ROLE_KEY
    assert Explainer().recorded_role() == {}
    params = {"positive": False}
    old = table({("saliency", "m"): list(BASE), ("noise_control", "m"): [0.3] * 10},
                method_params=json.dumps(params))  # written before rows recorded roles
    drift = table({("saliency", "m"): list(BASE), ("noise_control", "m"): [0.2] * 10})
    drift["method_params"] = np.where(drift["method"] == "noise_control", role(params), json.dumps(params))
    comparison = compare_tables(old, drift, DEFAULT)
    assert kinds(comparison) == [("control", False)] and comparison.recorded_controls == ("noise_control",)
    assert comparison.n_units == 2  # matched: the role is not part of what was measured
    assert "### Control methods (random, constant, sobel, noise_control): reference points" in to_markdown(
        comparison, baseline="b", current="c")
    assert to_json_dict(comparison)["recorded_controls"] == ["noise_control"]
    above = drift.assign(value=np.where(drift["method"] == "noise_control", np.tile(BASE + 0.1, 2), drift["value"]))
    below = compare_tables(old, above, DEFAULT)
    assert ("below_control", True) in kinds(below) and below.of_kind("below_control")[0].details["control"] == \
        "noise_control"
    assert kinds(compare_tables(old, drift, load_policy("strict"))) == [("degraded", True)]  # strict gates it


def test_the_default_control_names_stand_in_only_for_tables_that_record_no_roles():
    """The report knows controls by role (results/roles.py); compare's default list (random, constant, sobel)
    made a user's real method that happened to be called `random` a control even in tables that record roles, so
    its degradation passed as a control's drift. The names now stand in only where neither table records a role;
    a policy's own list still applies as written."""
    tables = {("saliency", "m"): list(BASE), ("random", "m"): list(BASE)}
    base, cur = table(tables), table(tables)
    cur["value"] = np.where(cur["method"] == "random", cur["value"] - 0.2, cur["value"])
    assert kinds(compare_tables(base, cur, DEFAULT)) == [("control", False)]  # no roles: `random` is the built-in
    built_in = role({})  # the built-in control (here sobel) records its role; the user's `random` records none
    base_roles = pd.concat([base, table({("sobel", "m"): list(BASE)}, method_params=built_in)], ignore_index=True)
    cur_roles = pd.concat([cur, table({("sobel", "m"): list(BASE)}, method_params=built_in)], ignore_index=True)
    comparison = compare_tables(base_roles, cur_roles, DEFAULT)
    assert kinds(comparison) == [("degraded", True)] and comparison.findings[0].unit["method"] == "random"
    assert comparison.recorded_controls == ("sobel",)
    own = parse_policy({"controls": ["random"]}, name="own")  # named by the user's own policy: a control
    assert kinds(compare_tables(base_roles, cur_roles, own)) == [("control", False)]


def test_a_policy_entry_can_name_one_parameter_variant_as_a_control():
    """`controls: [{method: saliency, params: {abs: false}}]`: the signed gradient is the reference, the absolute
    one stays a method under test (a name alone covers every variant)."""
    signed, absolute = json.dumps({"abs": False}), json.dumps({"abs": True})
    policy = parse_policy({"controls": ["random", {"method": "saliency", "params": {"abs": False}}]}, name="p")
    assert [str(c) for c in policy.controls] == ["random", "saliency [abs=false]"]
    assert policy.as_dict()["controls"] == ["random", {"method": "saliency", "params": {"abs": False}}]
    base = pd.concat([table({("saliency", "m"): list(BASE)}, method_params=p) for p in (signed, absolute)])
    cur = base.assign(value=base["value"] - 0.2)
    comparison = compare_tables(base, cur, policy)
    assert sorted((f.kind, f.unit["method_params"]) for f in comparison.findings) == [
        ("control", signed), ("degraded", absolute)]
    assert comparison.unused_overrides == ("controls.random",)
    typo = parse_policy({"controls": [{"method": "saliency", "params": {"abs": 0.5}}]}, name="p")
    assert compare_tables(base, cur, typo).unused_overrides == ("controls.saliency [abs=0.5]",)
    with pytest.raises(UserError, match=r"a controls entry must be a method name or \{method: NAME, params"):
        parse_policy({"controls": [{"name": "saliency"}]}, name="bad")


def test_update_baseline_refuses_a_table_not_made_from_the_working_tree(capsys, tmp_path, monkeypatch):
    """A retrain committed after the sweep, then `--update-baseline` on the old run's table, wrote a baseline of
    weights the repository no longer had, silently. The rows' revisions are now recomputed from the working tree
    (weights file, model code, data file, xaibench's commit) and a mismatch is refused, naming what changed."""
    import torch

    from xaibench.engine import provenance
    from xaibench.engine.datasets import build_dataset
    from xaibench.registry import DATASETS, MODELS

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(provenance, "git_sha", lambda: "e" * 40)  # xaibench's commit when the sweep ran
    (tmp_path / "weights").mkdir()
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(4, 2).state_dict(), "weights/net.pt")
    rng = np.random.default_rng(0)
    np.savez("data.npz", x=rng.normal(size=(30, 4)).astype(np.float32), y=np.arange(30) % 2)
    model = {"target": "torch.nn.Linear", "kwargs": {"in_features": 4, "out_features": 2},
             "state_dict": "weights/net.pt"}
    data = {"path": "data.npz", "modality": "tabular"}
    revisions = {"model_revision": MODELS.create("torch_module", model).source_revision(),
                 "dataset_revision": build_dataset(DATASETS.create("npz_arrays", data), 0).revision}
    assert "+code:" in revisions["model_revision"]  # the weights file's digest and that of torch.nn.Linear's file
    made = table({("saliency", "m"): list(BASE)}, model="torch_module", model_params=json.dumps(model),
                 dataset="npz_arrays", dataset_params=json.dumps(data), git_sha="e" * 40, **revisions)
    made.to_parquet("made.parquet", index=False)
    assert run_compare(capsys, "baseline", "made.parquet", "--update-baseline")[0] == 0
    written = (tmp_path / "baseline" / "table.parquet").read_bytes()

    torch.manual_seed(1)
    torch.save(torch.nn.Linear(4, 2).state_dict(), "weights/net.pt")  # retrained after the sweep
    code, out, err = run_compare(capsys, "baseline", "made.parquet", "--update-baseline")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert ("current made.parquet was not made from the working tree: model torch_module weights changed (weights "
            f"{revisions['model_revision'][:12]} -> ") in err
    assert "; code unchanged) since the sweep; rerun the sweep with a fresh store" in err and "(nothing written)" in err
    assert (tmp_path / "baseline" / "table.parquet").read_bytes() == written
    api = made.assign(model="Net", model_params="{}", sweep_id="evaluate")  # xaibench.evaluate: the caller's model
    api.to_parquet("api.parquet", index=False)
    assert run_compare(capsys, "api_baseline", "api.parquet", "--update-baseline")[0] == 0

    np.savez("data.npz", x=rng.normal(size=(30, 4)).astype(np.float32), y=np.arange(30) % 2)  # data edited too
    monkeypatch.setattr(provenance, "git_sha", lambda: "f" * 40)  # and xaibench's checkout moved on
    err = run_compare(capsys, "baseline", "made.parquet", "--update-baseline")[2]
    assert f"dataset npz_arrays (data.npz) content changed since the sweep ({revisions['dataset_revision']} -> " in err
    assert f"its rows were computed by xaibench at commit {'e' * 10}, this checkout is at {'f' * 10}" in err

    monkeypatch.chdir(tmp_path / "weights")  # run from elsewhere: relative paths are not found, and it says so
    err = run_compare(capsys, "../baseline", "../made.parquet", "--update-baseline")[2]
    assert "weights/net.pt not found from" in err and "dataset npz_arrays cannot be built here" in err


def test_update_baseline_refuses_a_table_computed_by_a_plugin_edited_since(capsys, tmp_path, monkeypatch):
    """review9: an edited ``$XAIBENCH_PLUGINS`` method computes its stages again in a sweep (its file is in the
    keys), but ``--update-baseline`` accepted the table of its old code. The sweep's ``sweep.json`` now records the
    plugin files (sha256) and the check compares them with the files as they are."""
    from xaibench.engine.plugin_code import plugin_file_digests
    from xaibench.results import manifest

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("XAIBENCH_PLUGINS", "review9_plugin")
    Path("review9_plugin.py").write_text("SCALE = 1.0\n")
    sweep = tmp_path / "runs" / "ci"
    sweep.mkdir(parents=True)
    manifest.begin(sweep, 1)
    manifest.complete(sweep, 1)
    recorded = manifest.recorded_plugins(sweep)
    assert recorded == plugin_file_digests() and len(recorded["review9_plugin"]) == 64
    table({("saliency", "m"): list(BASE)}).to_parquet(sweep / "table.parquet", index=False)
    assert run_compare(capsys, "baseline", "runs/ci", "--update-baseline")[0] == 0

    Path("review9_plugin.py").write_text("SCALE = 2.0\n")  # the method edited after the sweep
    code, out, err = run_compare(capsys, "baseline2", "runs/ci/table.parquet", "--update-baseline")
    assert code == 2 and out == "" and not (tmp_path / "baseline2").exists()
    assert err.startswith("xaibench: error: current runs/ci/table.parquet was not made from the working tree: plugin "
                          "module review9_plugin changed since the sweep"), err


def test_a_comparison_that_compared_nothing_fails_also_with_allow_missing():
    """A PR that changed the seed (or the split) left no (seed, sample) of the baseline in the current table: with
    --allow-missing every unit's samples were allowed to go and the verdict was PASS over 0 paired values."""
    base = ci_like(seeds=(0,))
    other_seed = ci_like(broken_on(10), seeds=(1,))  # saliency broken too: nothing would have seen it
    comparison = compare_tables(base, other_seed, DEFAULT, allow_missing=True)
    assert comparison.exit_code == 1 and comparison.n_pairs == 0
    (nothing,) = [f for f in comparison.findings if f.fails]
    assert nothing.kind == "missing" and nothing.details == {"nothing_compared": True} and nothing.unit == {}
    assert finding_line(nothing).startswith("missing: nothing compared: the current table has none of the baseline's")
    strict = compare_tables(base, other_seed, DEFAULT)  # without --allow-missing the missing samples fail already
    assert not [f for f in strict.findings if f.details.get("nothing_compared")] and strict.exit_code == 1
    one_left = pd.concat([other_seed, base[base["method"] == "random"]], ignore_index=True)
    assert compare_tables(base, one_left, DEFAULT, allow_missing=True).exit_code == 0  # something was compared


def test_the_freshness_check_rebuilds_a_table_dataset_from_the_parameters_it_was_made_with(capsys, tmp_path,
                                                                                           monkeypatch):
    """A CSV table with a text column records how it was encoded (``encoded_columns``) in its rows'
    ``dataset_params``; the check rebuilt the dataset from them and refused its own rows (unknown parameter)."""
    from xaibench.engine.datasets import build_dataset
    from xaibench.engine.runner import encoded_columns
    from xaibench.registry import DATASETS

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40), "colour": ["red", "blue"] * 20,
                  "y": np.arange(40) % 2}).to_csv("data.csv", index=False)
    config = {"path": "data.csv", "target": "y"}
    dataset = build_dataset(DATASETS.create("csv_table", config), 0)
    recorded = {**config, **encoded_columns(dataset)}
    assert "encoded_columns" in recorded  # what the runner adds to the rows' dataset_params
    made = table({("saliency", "m"): list(BASE)}, dataset="csv_table", dataset_params=json.dumps(recorded),
                 dataset_revision=dataset.revision)
    made.to_parquet("made.parquet", index=False)
    code, out, err = run_compare(capsys, "baseline", "made.parquet", "--update-baseline")
    assert code == 0 and "baseline updated" in out, err


# --- review fixes (ci10: a maintainer guarding their own repository in CI) ----------------------------------------

def test_the_provenance_records_the_update_command_quoted_for_a_shell(capsys, tmp_path):
    """The provenance's ``update_command`` joined this process's arguments with spaces (and, run in-process, took
    the caller's ``sys.argv``): ``--command xaibench -m experiment=my_ci ...`` could not be pasted into a shell. It
    is now the command compare ran, quoted."""
    import shlex

    made = tmp_path / "run dir" / "made.parquet"
    made.parent.mkdir()
    table({("saliency", "m"): list(BASE)}).to_parquet(made, index=False)
    baseline, made_by = tmp_path / "baselines" / "mine", "xaibench -m experiment=my_ci store_dir=$(mktemp -d)"
    assert run_compare(capsys, baseline, made, "--update-baseline", "--command", made_by)[0] == 0
    recorded = json.loads((baseline / "table.provenance.json").read_text())["update_command"]
    assert shlex.split(recorded) == ["xaibench", "compare", str(baseline), str(made), "--update-baseline",
                                     "--command", made_by]


def test_a_baseline_refreshed_in_the_pull_request_shows_what_it_accepts(capsys, tmp_path):
    """A pull request that retrains (scores worse) and commits the refreshed baseline was compared with that
    baseline: "✅ pass, no differences", and reviewers saw nothing of what it accepted. ``--previous-baseline`` (the
    target branch's baseline) lists it in the report, the JSON and the log; the verdict still stands."""
    target, refreshed = tmp_path / "target" / "baseline", tmp_path / "pr" / "baseline"
    table({("saliency", "m"): list(BASE)}).to_parquet(tmp_path / "old.parquet", index=False)
    table({("saliency", "m"): list(BASE - 0.2)}).to_parquet(tmp_path / "run.parquet", index=False)
    for folder, made in ((target, "old.parquet"), (refreshed, "run.parquet")):
        assert run_compare(capsys, folder, tmp_path / made, "--update-baseline")[0] == 0
    code, out, err = run_compare(capsys, refreshed, tmp_path / "run.parquet", "--previous-baseline", target,
                                 "--report", tmp_path / "c.md", "--json", tmp_path / "c.json", "--quiet")
    assert (code, err) == (0, unchecked_note(tmp_path / "run.parquet"))
    assert out.splitlines()[1] == (f"  baseline refreshed by this pull request: against the target branch's ({target}) "
                                   "it accepts 1 degraded (1 of them would fail)")
    report = (tmp_path / "c.md").read_text()
    assert report.startswith("## xaibench compare: ✅ pass against a baseline this pull request refreshes (what the "
                             "refresh accepts is listed below)")
    assert "### 🔄 This pull request refreshes the baseline" in report
    assert "- ❌ degraded: mlp/toy/saliency/m ↑: worse: mean 0.55 -> 0.35, delta -0.2" in report
    # newuser12: the verdict's own "No differences beyond tolerance" closed the report, printed under the list of
    # degradations the refresh accepts, as if it were about them; it now ends the verdict, above that section
    verdict, refresh_section = report.split("### 🔄 This pull request refreshes the baseline")
    assert "No differences beyond tolerance" in verdict and "No differences" not in refresh_section
    refresh = json.loads((tmp_path / "c.json").read_text())["baseline_refresh"]
    assert (refresh["state"], refresh["would_fail"], refresh["counts"]["degraded"]) == ("refreshed", True, 1)
    assert refresh["findings"][0]["change"]["delta"] == pytest.approx(-0.2)

    same = run_compare(capsys, refreshed, tmp_path / "run.parquet", "--previous-baseline", refreshed, "--quiet")
    assert same[:2] == (0, "xaibench compare: PASS (no findings) -- 1 units, 10 paired values, "
                           "0 differ at all\n")  # the target branch's baseline: nothing to say
    first = run_compare(capsys, refreshed, tmp_path / "run.parquet", "--previous-baseline", tmp_path / "none")
    assert first[0] == 0 and (f"ℹ️ baseline added by this pull request (the target branch has none at "
                              f"{tmp_path / 'none'}): review its values.") in first[1]
    assert first[1].startswith("## xaibench compare: ✅ pass against the first baseline, which this pull request adds")


def test_a_metric_whose_tolerance_hides_a_large_relative_change_is_named_with_the_atol_that_sees_it(capsys,
                                                                                                     tmp_path):
    """max_sensitivity scores around 0.05: an atol=0.01 is 20% of that, and a method 15% worse passed as
    "No differences beyond tolerance" without a hint. The report and JSON now name the metric, how coarse its bound
    is and the atol that brings it to 5%; with that atol the same change fails. Controls and metrics scored on a
    larger scale are not named. The default policy (atol=0.002: 5.6% here) sees the change and names nothing."""
    small = 0.05 + BASE / 100  # (10,) scores 0.052-0.059
    base = table({("saliency", "max_sensitivity"): list(small), ("random", "max_sensitivity"): list(small),
                  ("saliency", "faithfulness"): list(BASE)}, hib={"max_sensitivity": False})
    worse = base.assign(value=np.where(base["metric"] == "max_sensitivity", base["value"] * 1.15, base["value"]))
    base.to_parquet(tmp_path / "base.parquet", index=False)
    worse.to_parquet(tmp_path / "worse.parquet", index=False)
    code, out, _ = run_compare(capsys, tmp_path / "base.parquet", tmp_path / "worse.parquet", "--quiet")
    assert code == 1 and "degraded: mlp/toy/saliency/max_sensitivity ↓: worse" in out  # the default sees it
    assert compare_tables(base, worse, load_policy("default")).coarse_tolerances == ()
    coarse_policy = tmp_path / "coarse.yaml"
    coarse_policy.write_text("atol: 0.01\n")
    code, out, _ = run_compare(capsys, tmp_path / "base.parquet", tmp_path / "worse.parquet", "--json",
                               tmp_path / "v.json", "--policy", coarse_policy)
    assert code == 0 and "No differences beyond tolerance" in out  # the blind spot itself (a coarse atol)
    (hint,) = [line for line in out.splitlines() if line.startswith("ℹ️ `")]
    assert hint == ("ℹ️ `max_sensitivity`: its tolerance (atol=0.01 + rtol=0.02·mean|b|) is 20% of the mean |baseline| "
                    "of 1 of its 1 units (0.056), so a change smaller than that passes without a finding; "
                    "`metrics: {max_sensitivity: {atol: 0.001}}` in your policy brings it to 5% (docs/ci.md).")
    (coarse,) = json.loads((tmp_path / "v.json").read_text())["coarse_tolerances"]
    assert (coarse["metric"], coarse["coarse"], coarse["suggested_atol"]) == ("max_sensitivity", 1, 0.001)
    assert coarse["widest"] == pytest.approx((0.01 + 0.02 * small.mean()) / small.mean())
    policy = tmp_path / "mine.yaml"
    policy.write_text("metrics:\n  max_sensitivity: {atol: 0.001}\n")
    code, out, _ = run_compare(capsys, tmp_path / "base.parquet", tmp_path / "worse.parquet", "--policy", policy,
                               "--quiet")
    assert code == 1 and "degraded: mlp/toy/saliency/max_sensitivity ↓: worse" in out
    gated = compare_tables(base, worse, parse_policy({"atol": 0.01, "gate_controls": True}, name="gated"))
    assert [(c.metric, c.coarse, c.units) for c in gated.coarse_tolerances] == [("max_sensitivity", 2, 2)]
    assert compare_tables(base, worse, load_policy("strict")).coarse_tolerances == ()  # a 1e-6 bound sees it


def test_an_elementwise_verdict_says_that_one_value_decided_it_not_the_mean(capsys, tmp_path):
    """Under ``--policy strict`` a unit whose mean improved but one sample got worse is ``degraded``; its line read
    "worse: mean 0.55 -> 0.5509, delta +0.00089", which contradicts itself. It now says the verdict is elementwise
    and how many values moved beyond their bound."""
    moved = BASE + np.where(np.arange(BASE.size) == 0, -0.001, 0.0011)  # 9 samples better, 1 worse
    comparison = compare_tables(table({("saliency", "m"): list(BASE)}), table({("saliency", "m"): list(moved)}),
                                load_policy("strict"))
    (finding,) = comparison.findings
    assert finding.kind == "degraded" and finding.change.delta > 0  # the mean improved: one value decided
    assert finding.message.startswith("worse (elementwise: 10 of 10 values beyond their bound, at least one worse): "
                                      "mean 0.55 -> 0.5509, delta +0.00089")
    better = compare_tables(table({("saliency", "m"): list(BASE)}), table({("saliency", "m"): list(BASE + 0.001)}),
                            load_policy("strict"))
    assert better.findings[0].message.startswith("better (elementwise: 10 of 10 values beyond their bound, none "
                                                 "worse): mean")
    assert not assess(BASE, BASE - 0.05, True, Tolerance(mode="mean", atol=0.0, rtol=0.0)).n_beyond  # other modes


def test_nan_scores_in_rows_marked_ok_are_a_status_change_not_a_silent_pass(capsys, tmp_path):
    """A table whose rows say ``ok`` but hold NaN (not written by a sweep, which records ``status="nan"``) passed as
    "no findings" while the verdict line counted the NaNs as differing values: a NaN fell out of every test. Such
    rows are now ``nan`` rows, reported as ``ok -> nan`` and failing like a score that could not be computed."""
    base = table({("saliency", "m"): list(BASE), ("ig", "m"): list(BASE)})
    broken = base.copy()
    broken.loc[broken["method"] == "saliency", "value"] = np.nan
    base.to_parquet(tmp_path / "base.parquet", index=False)
    broken.to_parquet(tmp_path / "broken.parquet", index=False)
    code, out, _ = run_compare(capsys, tmp_path / "base.parquet", tmp_path / "broken.parquet", "--quiet")
    assert code == 1, out
    assert out.splitlines()[1] == ("  status: mlp/toy/saliency/m ↑: 10 sample(s) ok -> nan: the value is NaN though the "
                                   "row says ok (a table not written by a sweep?)")


def test_a_baseline_of_another_release_says_why_nothing_matched_in_one_line(capsys, tmp_path):
    """A baseline written by xaibench 0.3.0, whose rows record a method parameter 0.4.0 no longer records, pairs no
    value with a 0.4.0 table: it printed only one ``missing`` line per unit (then ``new`` ones), never why. The
    first failing line now names both releases and the parameter keys only one of them records."""
    base = table({("saliency", "m"): list(BASE), ("ig", "m"): list(BASE)}, xaibench_version="0.3.0",
                 method_params='{"legacy_flag": true}')
    current = table({("saliency", "m"): list(BASE), ("ig", "m"): list(BASE)}, xaibench_version="0.4.0")
    base.to_parquet(tmp_path / "base.parquet", index=False)
    current.to_parquet(tmp_path / "cur.parquet", index=False)
    code, out, _ = run_compare(capsys, tmp_path / "base.parquet", tmp_path / "cur.parquet", "--quiet", "--json",
                               tmp_path / "v.json")
    assert code == 1
    assert out.splitlines()[1] == (
        "  missing: nothing compared: the baseline's rows were written by xaibench 0.3.0 and the current table's by "
        "0.4.0 (method_params: legacy_flag only in the baseline), and no unit of one matches the other's (a release "
        "may record parameters under other keys); once you have reviewed what the release changed, refresh the "
        "baseline from a run of this one (--update-baseline)")
    (first, *_) = json.loads((tmp_path / "v.json").read_text())["findings"]
    assert first["details"]["xaibench_versions"] == {"baseline": ["0.3.0"], "current": ["0.4.0"]}
    same = compare_tables(base, base.assign(xaibench_version="0.4.0"), load_policy("default"))
    assert same.n_pairs == 20 and not same.failed  # another release that pairs its values: compared as usual


def test_an_empty_current_table_says_so_first(capsys, tmp_path):
    """A current table with no rows failed with one ``missing`` line per unit and no word of why (and the
    ``nothing compared`` line blamed another seed or split); its first line now says the table has no rows."""
    base = table({("saliency", "m"): list(BASE)})
    base.to_parquet(tmp_path / "base.parquet", index=False)
    base.iloc[:0].to_parquet(tmp_path / "empty.parquet", index=False)
    for flags in ((), ("--allow-missing",)):
        code, out, _ = run_compare(capsys, tmp_path / "base.parquet", tmp_path / "empty.parquet", "--quiet", *flags)
        assert code == 1 and out.splitlines()[1] == ("  missing: nothing compared: the current table has no rows; "
                                                     "rerun the sweep that wrote it (its log says why it wrote none)")


def tiny_finished_sweep(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """A finished sweep folder of an own experiment (``conf/experiment/tiny.yaml``: saliency and random, n_samples 8)
    as the CLI leaves it: ``cells.planned``, ``sweep.json`` with its command, ``table.parquet``; ``base.parquet`` is
    the same table. Returns the experiment file (edit it to make the folder stale) and the folder; cwd is
    ``tmp_path``."""
    from xaibench.config.preflight import compose_jobs, expand_sweep
    from xaibench.engine.cell import CellSpec
    from xaibench.sweep.claims import _cell_label, start_sweep

    monkeypatch.chdir(tmp_path)
    experiment = tmp_path / "conf" / "experiment" / "tiny.yaml"
    experiment.parent.mkdir(parents=True)
    experiment.write_text("# @package _global_\nsweep_id: tiny\nn_samples: 8\nhydra:\n  sweeper:\n    params:\n"
                          "      method: saliency,random\n")
    overrides = ["experiment=tiny", f"hydra.searchpath=[file://{tmp_path / 'conf'}]"]
    cells = [CellSpec.from_config(cfg) for cfg in compose_jobs(expand_sweep(overrides, multirun=True))]
    folder = tmp_path / "results" / "runs" / "tiny"
    folder.mkdir(parents=True)
    start_sweep(folder, len(cells), {cell.key: _cell_label(cell) for cell in cells})  # the sweep's cells.planned
    (folder / "sweep.json").write_text(json.dumps({"state": "finished", "expected_cells": 2, "cells": 2, "command": {
        "overrides": overrides, "multirun": True, "config_name": "config", "cwd": str(tmp_path), "plugins": ""}}))
    rows = table({("saliency", "m"): list(BASE)})
    rows.to_parquet(folder / "table.parquet", index=False)
    rows.to_parquet(tmp_path / "base.parquet", index=False)
    return experiment, folder


def test_a_sweep_folder_of_an_edited_config_is_stale_unless_allowed_and_never_baselined(capsys, tmp_path,
                                                                                        monkeypatch):
    """The sweep's recorded command composed again: unchanged configs give its planned cells (no finding); an edited
    experiment (another n_samples, a method added) is refused with one line, ``--allow-stale`` compares it as it is,
    and ``--update-baseline`` refuses it whatever the flags. (The end-to-end case: test_ci_docs.py.) cells.planned
    is written as the sweep writes it, ``<key>\t<label>`` lines: split on white space, the label's words read as
    cells that are "no longer defined", and every sweep the CLI ran was refused as stale."""
    from xaibench.results.compare.config_check import config_change

    experiment, folder = tiny_finished_sweep(tmp_path, monkeypatch)
    assert config_change(folder) == ""
    monkeypatch.setenv("XAIBENCH_PLUGINS", "not_the_sweeps_plugin")  # compare's environment is not the sweep's
    assert config_change(folder) == ""
    artifact = tmp_path / "downloaded" / "artifact"  # a CI artifact: the folder moved and renamed
    shutil.copytree(folder, artifact)
    assert config_change(artifact) == ""  # checked as the command's only sweep folder, not taken for a stale one

    experiment.write_text(experiment.read_text().replace("n_samples: 8", "n_samples: 9").replace("random", "random,"
                                                                                                     "occlusion"))
    code, out, err = run_compare(capsys, tmp_path / "base.parquet", folder)
    assert code == 2 and out == ""
    assert err == (f"xaibench: error: current {folder} is stale: it was made by another config than `xaibench -m "
                   f"experiment=tiny 'hydra.searchpath=[file://{tmp_path / 'conf'}]'` composes now: 3 of the 3 cells "
                   "it defines now were not run (mlp/breast_cancer/occlusion, mlp/breast_cancer/random, "
                   "mlp/breast_cancer/saliency); 2 of the 2 cells it ran are no longer defined (a config file, the "
                   "experiment, a plugin module or xaibench's version changed since the sweep: docs/ci.md); rerun the "
                   f"sweep (xaibench -m experiment=tiny 'hydra.searchpath=[file://{tmp_path / 'conf'}]') and compare "
                   "its table, or pass --allow-stale to compare it as it is (nothing written)\n")
    assert config_change(artifact).startswith("it was made by another config than")
    assert run_compare(capsys, tmp_path / "base.parquet", folder, "--allow-stale", "--quiet")[0] == 0
    code, _, err = run_compare(capsys, tmp_path / "new_baseline", folder, "--update-baseline", "--allow-stale")
    assert code == 2 and "is stale" in err and "--allow-stale" not in err and not (tmp_path / "new_baseline").exists()


# --- ci14: a pass never hides a config the stale check could not see ---------------------------------------------

def test_a_table_whose_config_could_not_be_checked_says_so_and_why_and_an_api_sweep_is_checked(capsys, tmp_path,
                                                                                              monkeypatch):
    """The stale check returned "" (no finding) wherever it could not look, so these passed in silence: a table copied
    out of its sweep folder (a CI artifact), a sweep folder written before the check (no command in its sweep.json),
    a sweep of the Python API (``xaibench.run`` recorded no command), and a stale folder under ``--allow-stale``
    (not even looked at). Now xaibench.run records its overrides like the CLI (checked: fresh, then stale after an
    edit), and every case that passes says why on stderr, in the report and in the JSON's ``config_check``."""
    import xaibench

    monkeypatch.chdir(tmp_path)
    experiment = tmp_path / "conf" / "experiment" / "tiny.yaml"
    experiment.parent.mkdir(parents=True)
    experiment.write_text("# @package _global_\nsweep_id: tiny\nn_samples: 4\nmodel: {epochs: 5}\nhydra:\n  sweeper:\n"
                          "    params:\n      method: saliency,random\n")
    overrides = ["experiment=tiny", "dataset=iris", f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
                 "metrics=sparsity", f"store_dir={tmp_path / 'store'}"]
    xaibench.run(overrides, multirun=True)
    folder = tmp_path / "results" / "runs" / "tiny"
    baseline = tmp_path / "baseline.parquet"
    shutil.copy(folder / "table.parquet", baseline)
    code, out, err = run_compare(capsys, baseline, folder / "table.parquet", "--json", tmp_path / "v.json", "--quiet")
    assert (code, err) == (0, "")
    assert json.loads((tmp_path / "v.json").read_text())["config_check"] == {
        "state": "fresh", "reason": "", "command": f"xaibench.run({overrides!r}, multirun=True)"}

    older = tmp_path / "older"  # a sweep folder of an xaibench before the check: no command recorded
    shutil.copytree(folder, older)
    manifest = json.loads((older / "sweep.json").read_text())
    del manifest["command"]
    (older / "sweep.json").write_text(json.dumps(manifest))
    artifact = tmp_path / "artifact" / "table.parquet"  # the table alone, copied out of its folder
    artifact.parent.mkdir()
    shutil.copy(folder / "table.parquet", artifact)
    elsewhere = tmp_path / "downloaded"  # a CI artifact from another machine: its paths are not here
    shutil.copytree(folder, elsewhere)
    ran = json.loads((elsewhere / "sweep.json").read_text())
    ran["command"]["cwd"] = "/home/runner/work/repo/repo"
    ran["command"]["overrides"] = [o.replace(str(tmp_path), ran["command"]["cwd"]) for o in overrides]
    (elsewhere / "sweep.json").write_text(json.dumps(ran))  # was refused as stale: "no longer composes"
    for current, why in ((older, "its sweep.json records no command: a sweep of an older xaibench; rerun it to have "
                          "it checked"), (artifact, "no sweep.json beside it: a table outside its sweep folder"),
                         (elsewhere, "its sweep ran in /home/runner/work/repo/repo, not a folder here: copied from another")):
        code, out, err = run_compare(capsys, baseline, current, "--report", tmp_path / "r.md", "--json",
                                     tmp_path / "u.json", "--quiet")
        assert code == 0 and err.startswith(f"xaibench compare: note: current {current}: its config was not checked "
                                            f"({why}") and len(err.splitlines()) == 1
        assert f"ℹ️ current `{current}`: its config was not checked ({why}" in (tmp_path / "r.md").read_text()
        verdict = json.loads((tmp_path / "u.json").read_text())["config_check"]
        assert verdict["state"] == "unchecked" and verdict["reason"].startswith(why)

    experiment.write_text(experiment.read_text().replace("n_samples: 4", "n_samples: 5"))
    code, out, err = run_compare(capsys, baseline, folder)
    assert code == 2 and "is stale: it was made by another config than `xaibench.run([" in err
    code, out, err = run_compare(capsys, baseline, folder, "--allow-stale", "--report", tmp_path / "s.md", "--quiet")
    assert code == 0 and err.startswith(f"xaibench compare: warning: current {folder} is stale, compared anyway "
                                        "(--allow-stale): it was made by another config than")
    assert f"⚠️ current `{folder}` is stale, compared anyway (--allow-stale)" in (tmp_path / "s.md").read_text()
    # a stale run's changes are not offered for acceptance: --update-baseline refuses a stale folder
    pd.read_parquet(baseline).assign(value=lambda t: t["value"] * 0.5).to_parquet(folder / "table.parquet")
    code, out, err = run_compare(capsys, baseline, folder, "--allow-stale", "--json", tmp_path / "s.json")
    assert code == 1 and "--update-baseline --command" not in out and json.loads(
        (tmp_path / "s.json").read_text())["update_command"] is None
    assert "The current sweep is stale (above), so it cannot become a baseline" in out


def test_the_rerun_hint_of_a_stale_sweep_asks_for_a_fresh_store_where_its_temporary_one_is_gone(tmp_path):
    """The CI scripts run the sweep with ``store_dir=$(mktemp -d)`` and remove it at exit; the stale message's rerun
    command repeated that path (``store_dir=/tmp/tmp.t2WcfBr4LO``), which creates it again, leaves it behind and,
    rerun twice, serves the second run warm. A store that is gone is shown as a fresh temporary one; one still there
    (a persistent store) as it was."""
    from xaibench.results.compare.config_check import rerun_command

    (tmp_path / "kept").mkdir()
    command = {"overrides": ["experiment=ci", f"store_dir={tmp_path / 'gone'}", "hydra.searchpath=[file://a b]"],
               "multirun": True, "cwd": str(tmp_path)}
    fresh = "xaibench -m experiment=ci store_dir=\"$(mktemp -d)\" 'hydra.searchpath=[file://a b]'"
    assert rerun_command(command) == fresh
    command["overrides"][1] = "store_dir=kept"  # relative to the sweep's working folder
    assert rerun_command(command) == "xaibench -m experiment=ci store_dir=kept 'hydra.searchpath=[file://a b]'"


def test_compare_reads_only_the_columns_it_compares_and_says_exactly_what_the_whole_tables_say(tmp_path):
    """``load_results(compared_only=True)`` (what ``compare`` reads unless it writes a baseline) is the whole frame
    less ``NOT_COMPARED``, its texts held as one Python string per distinct text, and comparing such frames gives
    the same findings, JSON and report, byte for byte, on the CI baseline against a current table with drift, a
    broken unit, an error cell, a missing unit and a changed dataset revision (640k rows: 1.05 GB peak, was 2.6)."""
    from xaibench.results.compare.baseline import table_origin
    from xaibench.results.compare.render import dumps, to_json
    from xaibench.results.compare.tables import NOT_COMPARED

    base = pd.read_parquet(REPO / "results" / "baselines" / "ci" / "table.parquet")
    rng = np.random.default_rng(0)
    current = base.assign(value=base["value"] * (1 + rng.normal(0, 1e-3, len(base))))
    units = current[["method", "metric"]].drop_duplicates().to_numpy()
    broken = (current["method"] == units[0][0]) & (current["metric"] == units[0][1])
    current.loc[broken, "value"] -= np.where(np.arange(broken.sum()) % 2 == 0, 0.5, 0.0)
    error = current["cell_key"] == current["cell_key"].iloc[-1]
    current.loc[error, ["status", "message"]] = ["error", "RuntimeError: boom"]
    current.loc[error, "value"] = np.nan
    current = current[~((current["method"] == units[1][0]) & (current["metric"] == units[1][1]))]
    current.loc[current["dataset"] == current["dataset"].iloc[0], "dataset_revision"] = "f" * 16
    paths = {"baseline": tmp_path / "b.parquet", "current": tmp_path / "c.parquet"}
    base.to_parquet(paths["baseline"], index=False)
    current.to_parquet(paths["current"], index=False)
    said = []
    for compared_only in (False, True):
        frames = {role: load_results(path, role, compared_only=compared_only) for role, path in paths.items()}
        if compared_only:
            for role, frame in frames.items():  # the same values; texts held as Python strings, shared
                expected = whole[role].drop(columns=list(NOT_COMPARED))
                assert list(frame.dtypes.astype(str)) == list(expected.dtypes.astype(str))
                assert {frame[c].dtype.storage for c in frame if frame[c].dtype == "string"} == {"python"}
                assert frame["params"].map(id).nunique() == frame["params"].nunique()  # one object per text
                pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
        whole = frames
        comparison = compare_tables(frames["baseline"], frames["current"], DEFAULT)
        context = {role: table_origin(frame) for role, frame in frames.items()}
        names = {"baseline": "b", "current": "c", "context": context}
        said.append((comparison.exit_code, dumps(to_json(comparison, **names)),
                     to_markdown(comparison, max_rows=None, **names)))
    assert said[0] == said[1]
    assert said[0][0] == 1 and {"revision", "status", "missing", "degraded"} <= {f["kind"] for f in json.loads(said[0][1])["findings"]}


def test_an_unparsable_policy_file_names_the_line_and_the_problem(tmp_path):
    # A policy pasted from the docs with its closing code fence: PyYAML's first line ("while scanning for the next
    # token") named neither the line nor the character.
    path = tmp_path / "tolerances.yaml"
    path.write_text("mode: wilcoxon\natol: 0.002\n```\n")
    with pytest.raises(UserError, match=r"tolerances.yaml cannot be read: line 3, column 1: found character '`' "
                                        r"that cannot start any token$"):
        load_policy(str(path))


def test_a_new_or_missing_cell_that_is_not_applicable_or_errors_says_why():
    """newuser18: a method added to a ci sweep that cannot apply read ``new: the cell (not_applicable)`` in the
    report and in JUnit's ``<skipped>``: the reason (DeepLIFT on a model calling ``F.relu``) was only in the
    table. Scored units keep ``(ok)``."""
    base = table({("saliency", "m"): list(BASE)})
    reason = "method deeplift applies its rules to nonlinearities that are modules, but this model calls relu"
    cell = table({("deeplift", "m"): [np.nan]}).assign(sample_id="", status="not_applicable", message=reason)
    cur = conform(pd.concat([base, cell], ignore_index=True))
    (new,) = compare_tables(base, cur, DEFAULT).of_kind("new")
    assert new.message == f"new: the cell (not_applicable: {reason})"
    (missing,) = compare_tables(cur, base, DEFAULT).of_kind("missing")
    assert missing.message == f"missing: the cell of the baseline (not_applicable: {reason})"
    broken = cell.assign(status="error", message="RuntimeError: boom")
    (new,) = compare_tables(base, conform(pd.concat([base, broken], ignore_index=True)), DEFAULT).of_kind("new")
    assert new.message == "new: the cell (error: RuntimeError: boom)"
    (missing,) = compare_tables(table({("saliency", "m"): list(BASE), ("random", "m"): list(BASE)}), base,
                                DEFAULT).of_kind("missing")
    assert missing.message == "missing: 10 value(s) of the baseline (ok)"


def test_a_comparison_that_paired_no_value_does_not_read_as_zero_differences(capsys, tmp_path):
    """review24: a rerun with another model parameter (``model.epochs=1``) makes every unit missing and new. The
    report said "Compared 2 units ... and 0 paired values: 0 differ at all (largest |Δ| 0)" and the verdict line
    "0 paired values, 0 differ at all": a clean comparison to a reader skimming it, over the failing list. Now both
    say that no unit matched."""
    base, cur = tmp_path / "base.parquet", tmp_path / "cur.parquet"
    table({("saliency", "m"): list(BASE)}, model_params='{"epochs": 30}').to_parquet(base, index=False)
    table({("saliency", "m"): list(BASE)}, model_params='{"epochs": 1}').to_parquet(cur, index=False)
    code, out, _ = run_compare(capsys, base, cur)
    lines = out.splitlines()
    assert code == 1 and lines[-1].endswith(
        "-- 2 units, 0 paired values (no unit matched one of the baseline's: each is missing or new)")
    assert ("Compared 2 units (method x metric x experiment) and 0 paired values: no unit of the current table "
            "matched one of the baseline's (each is listed as missing or new below).") in lines
    assert "differ at all" not in out


def test_update_baseline_of_a_sweep_folder_records_its_command_and_the_hint_names_it(capsys, tmp_path, monkeypatch):
    """review24: ``compare BASELINE results/runs/x --update-baseline`` without ``--command`` recorded ``"command": ""``
    although the folder's sweep.json records the sweep's command line, and a failing compare against a baseline
    without one ended with ``--command '<the command that produced the current table>'``. Both now take the sweep's
    recorded command (an explicit --command still wins)."""
    _, folder = tiny_finished_sweep(tmp_path, monkeypatch)
    ran = f"xaibench -m experiment=tiny 'hydra.searchpath=[file://{tmp_path / 'conf'}]'"
    assert run_compare(capsys, tmp_path / "made", folder, "--update-baseline")[0] == 0
    assert json.loads((tmp_path / "made" / "table.provenance.json").read_text())["command"] == ran
    assert run_compare(capsys, tmp_path / "given", folder, "--update-baseline", "--command", "make ci")[0] == 0
    assert json.loads((tmp_path / "given" / "table.provenance.json").read_text())["command"] == "make ci"

    table({("saliency", "m"): list(BASE - 0.2)}).to_parquet(folder / "table.parquet", index=False)
    code, out, _ = run_compare(capsys, tmp_path / "base.parquet", folder)  # a baseline without provenance
    assert code == 1 and (f"`xaibench compare {tmp_path / 'base.parquet'} {folder} --update-baseline --command "
                          f"{shlex.quote(ran)}`") in out


def test_quiet_lists_a_revision_failing_under_strict_changes_once(capsys, tmp_path):
    """ciuser25: under ``--quiet --strict-changes`` a retrained model's ``revision`` (failing there) was printed
    among the failing findings and again among the revisions that may explain them: two identical lines per
    changed model in the CI log. Each finding is now one line; a revision that passes still follows the failures."""
    table({("a", "m"): list(BASE)}, model_accuracy=0.967).to_parquet(tmp_path / "base.parquet", index=False)
    table({("a", "m"): list(BASE - 0.5)}, model_accuracy=0.9).to_parquet(tmp_path / "cur.parquet", index=False)
    for flags, failing in ((["--strict-changes"], ["degraded", "revision"]), ([], ["degraded"])):
        code, out, _ = run_compare(capsys, tmp_path / "base.parquet", tmp_path / "cur.parquet", "--quiet", *flags)
        lines = out.splitlines()
        assert code == 1 and lines[0].startswith(f"xaibench compare: FAIL ({len(failing)} failing")
        assert [line.split(":")[0].strip() for line in lines[1:]] == ["degraded", "revision"]
        assert sum("test accuracy 0.967 -> 0.9" in line for line in lines) == 1


def test_the_update_hint_names_the_current_sweeps_command_when_it_is_not_the_recorded_one():
    """ciuser25, as a CI user who changed the sweep's method list: the failing report's ``--update-baseline`` hint
    passed the *baseline's* recorded command to ``--command``, so pasting it recorded in the new baseline a command
    that does not make it. The hint now also names the command the current sweep ran, when it differs beyond where
    it ran (store, results folder, searchpath: paths of one machine) or the word order; the CI script's recorded
    ``... store_dir=<fresh temporary store> (bash scripts/ci_regression.sh --update-baseline)`` is the same sweep."""
    from xaibench.results.compare.config_check import ConfigCheck

    comparison = compare_tables(table({("saliency", "m"): list(BASE)}), table({("saliency", "m"): list(BASE - 0.5)}),
                                DEFAULT)
    recorded = "xaibench -m experiment=my_ci 'hydra.searchpath=[file://$PWD/conf]' store_dir='<fresh temporary store>'"

    def hint(ran: str, recorded: str = recorded) -> str:
        context = {"baseline": {"command": recorded}, "config": ConfigCheck("fresh", "", ran)}
        text = to_markdown(comparison, baseline="b", current="c", context=context)
        (line,) = [line for line in text.splitlines() if line.startswith("If these changes are intended")]
        return line

    changed = "xaibench -m experiment=my_ci method=saliency,occlusion store_dir=/tmp/s"
    assert hint(changed).endswith(f"--command {shlex.quote(recorded)}`, then commit the baseline saying why the scores "
                                  f"moved (docs/ci.md). The current sweep ran `{changed}`, not the command the "
                                  "baseline records: if that is the new one, give it to `--command` instead, so the "
                                  "baseline records what makes it.")
    assert hint("xaibench 'hydra.searchpath=[file:///home/runner/work/r/conf]' -m experiment=my_ci "
                "store_dir=/tmp/tmp.x results_dir=results/runs").endswith("moved (docs/ci.md).")
    script = ("xaibench -m experiment=ci store_dir=<fresh temporary store> (bash scripts/ci_regression.sh "
              "--update-baseline)")
    ran = "xaibench -m experiment=ci 'store_dir=\"$(mktemp -d)\"' results_dir=results/runs"
    assert hint(ran, script).endswith("moved (docs/ci.md).")
    assert "The current sweep ran" in hint(ran.replace("=ci", "=ci n_samples=5"), script)
