"""Statistics against scipy on known inputs, ranks against hand-computed examples, CD against Demšar's table."""
import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xaibench.results import statistics as st
from xaibench.results.aggregate import summarize
from xaibench.results.groups import comparison_id, setting_id
from xaibench.results.statistics import permutation_null


def rows(method, metric, values, *, higher=True, dataset="d", family="f"):
    n = len(values)
    return pd.DataFrame({
        "model": "m", "dataset": dataset, "method": method, "metric": metric, "family": family,
        "higher_is_better": higher, "sample_id": [f"s{i:02d}" for i in range(n)], "value": values,
        "status": ["ok"] * n, "message": [""] * n, "seed": 0, "method_params": "{}", "params": "{}",
    })


A = np.array([0.81, 0.62, 0.77, 0.90, 0.55, 0.71, 0.68, 0.93, 0.60, 0.74, 0.85, 0.58])
B = np.array([0.70, 0.65, 0.60, 0.72, 0.50, 0.69, 0.41, 0.80, 0.66, 0.52, 0.61, 0.59])


@pytest.mark.parametrize("higher", [True, False])
def test_pairwise_wilcoxon_matches_scipy_and_follows_direction(higher):
    table = pd.concat([rows("a", "faith", A, higher=higher), rows("b", "faith", B, higher=higher)])
    pair = st.pairwise_tests(table).iloc[0]
    reference = stats.wilcoxon(A - B)
    assert (pair["method_a"], pair["method_b"], pair["n"]) == ("a", "b", 12)
    assert pair["statistic"] == reference.statistic and pair["p_value"] == pytest.approx(reference.pvalue)
    assert pair["p_holm"] == pytest.approx(reference.pvalue)  # one pair: Holm changes nothing
    sign = 1 if higher else -1
    assert sign * pair["rank_biserial"] > 0.5 and (pair["cles"] > 0.5) == higher
    assert reference.pvalue < 0.05 and pair["winner"] == ("a" if higher else "b")


def test_rank_biserial_and_cles_by_hand():
    # |d| ranks 1..4; R+ = 1 + 3 + 4 = 8, R- = 2: r = (8 - 2) / 10; three of four differences favour a.
    assert st.paired_effects(np.array([1.0, -2.0, 3.0, 4.0])) == pytest.approx((0.6, 0.75))
    # The zero is dropped from the ranks (Wilcoxon's convention) and counts half in CLES.
    assert st.paired_effects(np.array([0.0, 1.0, -2.0])) == pytest.approx((-1 / 3, 0.5))


def test_holm_adjustment_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.03), max(0.06, 1 * 0.04)
    assert st.holm(np.array([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])


def test_holm_is_applied_across_the_pairs_of_one_group():
    rng = np.random.default_rng(0)
    table = pd.concat([rows(m, "faith", A + shift + rng.normal(0, 0.05, A.size))
                       for m, shift in (("a", 0.0), ("b", 0.02), ("c", 0.3))])
    pairs = st.pairwise_tests(table)
    assert len(pairs) == 3 and pairs["comparison"].nunique() == 1
    assert pairs["p_holm"].to_numpy() == pytest.approx(st.holm(pairs["p_value"].to_numpy()))
    assert set(pairs.loc[pairs["method_b"] == "c", "winner"]) == {"c"}


def summary_of(groups):
    """groups: {(dataset, metric, higher): {method: mean}} -> summarize() of two samples at each mean."""
    frames = []
    for (dataset, metric, higher), means in groups.items():
        for method, mean in means.items():
            frames.append(rows(method, metric, [mean, mean], higher=higher, dataset=dataset, family=metric[:4]))
    return summarize(pd.concat(frames))


GROUPS = {
    ("d1", "faith", True): {"a": 0.9, "b": 0.5, "c": 0.5},  # ranks a 1, b 2.5, c 2.5 (tie)
    ("d2", "sens", False): {"a": 0.3, "b": 0.1, "c": 0.2},  # lower is better: a 3, b 1, c 2
}


def test_average_ranks_by_hand_with_ties_and_lower_is_better():
    summary = summary_of(GROUPS)
    overall = st.average_ranks(summary, by="all").set_index("method")
    assert overall["avg_rank"].to_dict() == pytest.approx({"a": 2.0, "b": 1.75, "c": 2.25})
    assert (overall["n_groups"] == 2).all()
    by_metric = st.average_ranks(summary, by="metric").set_index(["scope", "method"])["avg_rank"]
    assert by_metric.to_dict() == pytest.approx({("faith", "a"): 1.0, ("faith", "b"): 2.5, ("faith", "c"): 2.5,
                                                 ("sens", "b"): 1.0, ("sens", "c"): 2.0, ("sens", "a"): 3.0})
    assert set(st.average_ranks(summary, by="family")["scope"]) == {"fait", "sens"}


def test_friedman_matches_scipy_and_nemenyi_agrees_with_its_critical_difference():
    rng = np.random.default_rng(5)
    groups = {(f"d{i}", "faith", True): {"a": 0.8 + rng.normal(0, 0.05), "b": 0.6 + rng.normal(0, 0.05),
                                         "c": 0.5 + rng.normal(0, 0.05), "d": 0.45 + rng.normal(0, 0.05)}
              for i in range(8)}
    result = st.friedman_nemenyi(summary_of(groups))
    matrix = np.array([[g[m] for m in "abcd"] for g in groups.values()])
    reference = stats.friedmanchisquare(*matrix.T)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_method == "exact permutation"  # 8 groups: see the small-sample tests below
    assert result.p_value == st.friedman_permutation_p(matrix)[0] and 0 < result.p_value < reference.pvalue < 1e-3
    ranks = stats.rankdata(-matrix, axis=1).mean(axis=0)
    assert result.avg_ranks.to_dict() == pytest.approx(dict(zip("abcd", ranks)))
    assert result.avg_ranks.index[0] == "a" and result.n_blocks == 8
    assert result.cd == pytest.approx(2.569 * np.sqrt(4 * 5 / (6 * 8)), rel=1e-3)
    for x in "abcd":
        for y in "abcd":
            if x != y:
                far_apart = abs(result.avg_ranks[x] - result.avg_ranks[y]) > result.cd
                assert (result.pairwise_p.loc[x, y] < 0.05) == far_apart


@pytest.mark.parametrize("k, q_table", [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (6, 2.850), (7, 2.949),
                                        (8, 3.031), (9, 3.102), (10, 3.164)])
def test_nemenyi_critical_difference_matches_demsar_table_5(k, q_table):
    n_blocks = 14
    expected = q_table * np.sqrt(k * (k + 1) / (6 * n_blocks))
    assert st.nemenyi_critical_difference(k, n_blocks) == pytest.approx(expected, abs=1e-3 * expected)


def test_friedman_with_two_competitors_says_why_it_did_not_run():
    result = st.friedman_nemenyi(summary_of({(f"d{i}", "faith", True): {"a": 0.9, "b": 0.1} for i in range(3)}))
    assert np.isnan(result.statistic) and ">= 3 competitors" in result.note
    assert result.avg_ranks.to_dict() == {"a": 1.0, "b": 2.0}


def test_metric_agreement_is_kendall_tau_per_setting_averaged():
    means = {"a": 0.9, "b": 0.7, "c": 0.4, "d": 0.2}
    groups = {}
    for dataset in ("d1", "d2"):
        groups[(dataset, "faith", True)] = means
        groups[(dataset, "sens", False)] = {m: 1 - v for m, v in means.items()}  # same order, lower is better
        groups[(dataset, "spar", True)] = {m: 1 - v for m, v in means.items()}  # reversed order
    groups[("d1", "loca", True)] = {"a": 0.9, "b": 0.2, "c": 0.7, "d": 0.1}  # one swap: tau = 4/6
    matrix = st.metric_agreement(summary_of(groups))
    assert matrix.loc["faith", "sens"] == pytest.approx(1.0) and matrix.loc["faith", "spar"] == pytest.approx(-1.0)
    expected = stats.kendalltau([0.9, 0.7, 0.4, 0.2], [0.9, 0.2, 0.7, 0.1]).statistic
    assert matrix.loc["faith", "loca"] == pytest.approx(expected) == pytest.approx(4 / 6)
    assert matrix.attrs["n_settings"].loc["faith", "sens"] == 2 and matrix.attrs["n_settings"].loc["faith", "loca"] == 1
    assert (matrix.to_numpy() == matrix.to_numpy().T).all()
    overall = st.agreement_by_family(matrix).set_index("scope")
    assert overall.loc["all", "n_pairs"] == 6


def test_metric_agreement_keeps_apart_settings_that_differ_only_in_their_parameters():
    # Two CSV datasets under one name (other dataset_params): two settings. metric_agreement recomputed settings
    # from the summary's columns, which lack the parameters, so they merged and the first one's rows stood for both.
    means = {"a": 0.9, "b": 0.7, "c": 0.4, "d": 0.2}
    frames = []
    for params, spar in (('{"path": "one.csv"}', means), ('{"path": "two.csv"}', {m: 1 - v for m, v in means.items()})):
        for method, mean in means.items():
            for metric, value in (("faith", mean), ("spar", spar[method])):
                frames.append(rows(method, metric, [value, value], dataset="d").assign(dataset_params=params))
    summary = summarize(pd.concat(frames))
    assert summary["setting"].nunique() == 2
    matrix = st.metric_agreement(summary)
    assert matrix.attrs["n_settings"].loc["faith", "spar"] == 2
    assert matrix.loc["faith", "spar"] == pytest.approx(0.0)  # +1 in the first setting, -1 in the second


def _agreement_by_scipy(summary, min_competitors=3):
    """The former ``metric_agreement``: a pivot and one scipy ``kendalltau`` per setting and metric pair."""
    rows = summary[summary["mean"].notna()]
    frame = pd.DataFrame({"setting": setting_id(rows), "metric": rows["metric"], "method": rows["competitor"],
                          "g": st.tied_goodness(rows)})
    taus = {}
    for _, block in frame.groupby("setting", sort=True):
        wide = block.pivot_table(index="method", columns="metric", values="g", aggfunc="first")
        for a, b in itertools.combinations(wide.columns, 2):
            pair = wide[[a, b]].dropna()
            if len(pair) >= min_competitors:
                tau = stats.kendalltau(pair[a], pair[b]).statistic
                if np.isfinite(tau):
                    taus.setdefault((a, b), []).append(tau)
                    taus.setdefault((b, a), []).append(tau)
    return taus


def test_metric_agreement_equals_scipys_kendall_tau_bit_for_bit_with_ties_gaps_and_infinities():
    rng = np.random.default_rng(7)
    records = []
    for setting in range(12):
        for metric in [f"m{i}" for i in range(6)]:
            for method in [f"x{i}" for i in range(rng.integers(2, 9))]:
                mean = float(rng.choice([rng.normal(), rng.integers(0, 3), np.inf, -np.inf, np.nan],
                                        p=[0.6, 0.25, 0.05, 0.05, 0.05]))
                if metric == "m5" and setting % 3 == 0:
                    mean = 1.0  # a metric that ties every competitor: NaN tau, skipped
                for _ in range(1 + (method == "x1")):  # x1 twice: the first row counts
                    records.append({"model": f"net{setting % 4}", "dataset": f"data{setting % 3}", "metric": metric,
                                    "family": "faith" if metric < "m3" else "stab", "competitor": method,
                                    "method": method, "higher_is_better": metric != "m2", "mean": mean})
                    mean = float(rng.normal())
    summary = pd.DataFrame(records)
    summary["comparison"] = comparison_id(summary)
    matrix = st.metric_agreement(summary)
    taus = _agreement_by_scipy(summary)
    assert len(taus) > 20
    for (a, b), values in taus.items():
        assert matrix.loc[a, b].tobytes() == np.mean(values).tobytes(), (a, b)  # bit for bit
        assert matrix.attrs["n_settings"].loc[a, b] == len(values)
    off = [(a, b) for a in matrix.index for b in matrix.columns if a != b and (a, b) not in taus]
    assert all(np.isnan(matrix.loc[a, b]) and matrix.attrs["n_settings"].loc[a, b] == 0 for a, b in off)


def test_controls_checked_and_a_control_ranking_first_is_warned():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.02, size=(3, A.size))
    table = pd.concat([
        rows("ig", "faith", A + 0.2 + noise[0]), rows("random", "faith", A + noise[1]),
        rows("ig", "mprt", A + noise[0]), rows("random", "mprt", A + 0.2 + noise[2]),
    ])
    checks = st.control_checks(table).set_index("metric")
    assert checks.loc["faith", "beats"] and not checks.loc["mprt", "beats"]
    assert (checks["control"] == "random").all() and (checks["method"] == "ig").all()
    warnings = st.control_warnings(summarize(table))
    assert len(warnings) == 1 and "mprt" in warnings[0] and "random" in warnings[0]
    from xaibench.report.console import format_summary
    assert warnings[0] in format_summary(summarize(table))
    assert warnings[0].endswith("this metric does not discriminate between methods on this data")
    # the constant control is perfectly stable (sensitivity 0): on a stability metric that is by construction, and
    # the warning says so instead of calling the metric undiscriminating
    stable = pd.concat([rows("ig", "max_sensitivity", A, higher=False, family="stability"),
                        rows("constant", "max_sensitivity", np.zeros(A.size), higher=False, family="stability")])
    (warning,) = st.control_warnings(summarize(stable))
    assert "(constant)" in warning and "The control constant (the same map for every input): a map that does not " \
        "depend on the model changes little (constant: not at all)" in warning
    # the top warning said "(the constant control) is perfectly stable by construction" of sobel too: sobel is an
    # edge map of the input (not constant), blind to the model, and the warning now names it as such
    sobel = stable.assign(method=stable["method"].replace({"constant": "sobel"}))
    (warning,) = st.control_warnings(summarize(sobel))
    assert "(sobel): The control sobel (an edge map of the input, blind to the model): a map that does not " \
        "depend on the model" in warning and "constant control" not in warning


def test_controls_are_known_by_the_role_their_rows_record_and_by_name_only_in_a_table_without_roles():
    """roles10: a user's own control (rows record ``"role": "control"``) is a control in the checks, the warnings
    and the summary's ``role`` column; a method of the user's merely named ``random`` is not. A table written
    before roles were recorded (none anywhere) still has ``random`` as its control, by name."""
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.02, size=(3, A.size))
    table = pd.concat([rows("ig", "faith", A + 0.2 + noise[0]), rows("random", "faith", A + 0.1 + noise[1]),
                       rows("noise_control", "faith", A + 0.3 + noise[2])])
    table["method_params"] = np.where(table["method"] == "noise_control", '{"role": "control"}', "{}")
    checks = st.control_checks(table)
    assert set(checks["control"]) == {"noise_control"} and set(checks["method"]) == {"ig", "random"}
    assert not checks["beats"].any()  # the control scores highest: neither method beats it
    summary = summarize(table)
    assert dict(zip(summary["competitor"], summary["role"])) == {"ig": "", "noise_control": "control", "random": ""}
    (warning,) = st.control_warnings(summary)
    assert "(noise_control)" in warning and "(random)" not in warning
    before_roles = table.assign(method_params="{}")  # as written before rows recorded roles
    checks = st.control_checks(before_roles)
    assert set(checks["control"]) == {"random"} and set(checks["method"]) == {"ig", "noise_control"}
    summary = summarize(before_roles)
    assert set(summary.loc[summary["role"] == "control", "competitor"]) == {"random"}
    assert st.control_warnings(summary) == []  # random does not rank first
    old_summary = summary.drop(columns="role")  # a summary.parquet written before it had the column: by name
    old_summary["rank"] = np.where(old_summary["competitor"] == "random", 1, 2)
    (warning,) = st.control_warnings(old_summary)
    assert "(random)" in warning


def test_pairs_use_the_samples_both_competitors_scored():
    table = pd.concat([rows("a", "faith", A), rows("b", "faith", B), rows("c", "faith", B - 0.1)])
    table.loc[(table["method"] == "b") & (table["sample_id"] == "s03"), ["status", "value"]] = ["nan", np.nan]
    pairs = st.pairwise_tests(table).set_index(["method_a", "method_b"])
    keep = np.arange(A.size) != 3
    reference = stats.wilcoxon(A[keep] - B[keep])
    assert pairs.loc[("a", "b"), "n"] == 11 and pairs.loc[("a", "c"), "n"] == 12
    assert pairs.loc[("a", "b"), "p_value"] == pytest.approx(reference.pvalue)
    assert pairs.loc[("a", "b"), "rank_biserial"] == pytest.approx(st.paired_effects(A[keep] - B[keep])[0])


def test_each_pair_gets_the_p_value_scipy_gives_it_alone():
    # scipy chooses exact vs normal-approximation p-values once per vectorised call, from whether any row has a
    # zero or tied difference: a tie in pair (a, c) must not turn pair (a, b)'s exact p into an approximation.
    rng = np.random.default_rng(3)
    a = rng.normal(0.5, 0.1, 20)  # 20 samples: above 13, where scipy's tie fallback is the normal approximation
    b = a - 0.03 + rng.normal(0, 0.05, 20)
    c = b.copy()
    c[0] = a[0]  # a zero difference between a and c
    table = pd.concat([rows("a", "faith", a), rows("b", "faith", b), rows("c", "faith", c)])
    pairs = st.pairwise_tests(table).set_index(["method_a", "method_b"])
    exact = stats.wilcoxon(a - b)  # no zeros, no ties: scipy's exact distribution
    assert pairs.loc[("a", "b"), "p_value"] == pytest.approx(exact.pvalue, rel=1e-12)
    assert pairs.loc[("a", "c"), "p_value"] == pytest.approx(stats.wilcoxon(a - c).pvalue, rel=1e-12)
    assert exact.pvalue != pytest.approx(stats.wilcoxon(a - b, method="asymptotic").pvalue, rel=1e-3)


@pytest.mark.parametrize("higher", [True, False])
def test_scores_equal_up_to_float_rounding_tie_in_ranks_and_tests(higher):
    # IG and input x gradient on a linear model are identical in exact arithmetic; float32 leaves ~1e-7 noise.
    noise = np.random.default_rng(4).normal(0, 1e-7, A.size)
    tiny = 1e-9 * A  # a metric on a tiny scale keeps its real differences (the tolerance is relative)
    table = pd.concat([rows("ig", "faith", A, higher=higher), rows("ixg", "faith", A + noise, higher=higher),
                       rows("sal", "faith", B, higher=higher),
                       rows("ig", "tiny", tiny, higher=higher), rows("ixg", "tiny", 1.1 * tiny, higher=higher)])
    summary = summarize(table).set_index(["metric", "method"])
    best_two = summary.loc["faith", "rank"].to_dict()
    assert best_two == ({"ig": 1, "ixg": 1, "sal": 3} if higher else {"ig": 2, "ixg": 2, "sal": 1})
    assert summary.loc[("tiny", "ixg"), "rank"] == (1 if higher else 2)
    pairs = st.pairwise_tests(table).set_index(["metric", "method_a", "method_b"])
    assert pairs.loc[("faith", "ig", "ixg"), "p_value"] == 1.0 and pairs.loc[("faith", "ig", "ixg"), "winner"] == ""
    assert pairs.loc[("faith", "ig", "ixg"), "rank_biserial"] == 0.0
    assert pairs.loc[("tiny", "ig", "ixg"), "winner"] == ("ixg" if higher else "ig")
    ranks = st.average_ranks(summary.reset_index(), by="metric").set_index(["scope", "method"])["avg_rank"]
    assert ranks[("faith", "ig")] == ranks[("faith", "ixg")] == (1.5 if higher else 2.5)


def test_a_method_scoring_a_million_does_not_tie_the_others_with_the_constant_control():
    """Seen in a breast_cancer sweep: DeepLIFT's max_sensitivity of 1.3e6 on some samples made the tolerance 1.3, so
    integrated gradients (0.15) ranked #1 tied with the constant control (0) and their paired test found no
    difference (every per-sample difference below 1.3 counted as float rounding)."""
    ig = 0.1 * A  # 0.055-0.093
    outlier = np.where(np.arange(A.size) % 2 == 0, 1e6, 50.0)
    table = pd.concat([rows("constant", "sens", np.zeros(A.size), higher=False),
                       rows("ig", "sens", ig, higher=False), rows("deeplift", "sens", outlier, higher=False)])
    summary = summarize(table)
    assert summary.set_index("method")["rank"].to_dict() == {"constant": None, "ig": 1, "deeplift": 2}  # controls: no rank
    assert st.controls_ahead(summary).tolist() == [m == "constant" for m in summary["method"]]  # ahead, not tied
    pair = st.pairwise_tests(table).set_index(["method_a", "method_b"]).loc[("constant", "ig")]
    assert pair["winner"] == "constant" and pair["rank_biserial"] == 1.0
    assert pair["p_value"] == pytest.approx(stats.wilcoxon(ig).pvalue, rel=1e-12)


def test_holm_equals_statsmodels_without_its_per_call_garbage_collection(monkeypatch):
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(7)
    for size in (1, 2, 5, 40):
        p = rng.random(size) ** 3
        p[: size // 3] = p[0]  # ties
        assert st.holm(p) == pytest.approx(multipletests(p, method="holm")[1], rel=1e-12, abs=0)
    with_nan = np.array([0.04, np.nan, 0.01])
    np.testing.assert_allclose(st.holm(with_nan), [0.04, np.nan, 0.02])
    import gc

    monkeypatch.setattr(gc, "collect", lambda *a: pytest.fail("holm must not run a full garbage collection"))
    table = pd.concat([rows(m, "faith", A + shift) for m, shift in (("a", 0.0), ("b", 0.05), ("c", 0.3))])
    assert len(st.pairwise_tests(table)) == 3


def test_metrics_no_other_metric_is_compared_with_are_left_out_of_the_agreement_outputs():
    from xaibench.report.build import agreement_table
    from xaibench.report.figures import metric_agreement as agreement_figure

    means = {"a": 0.9, "b": 0.7, "c": 0.4}
    groups = {("d1", "faith", True): means, ("d1", "spar", True): {"a": 0.2, "b": 0.7, "c": 0.4},
              ("d1", "cfva", True): {"a": 0.5}}  # a counterfactual metric only one method is scored on
    matrix = st.metric_agreement(summary_of(groups))
    assert list(matrix.index) == ["cfva", "faith", "spar"] and np.isnan(matrix.loc["cfva", "faith"])
    assert list(st.compared_metrics(matrix).index) == ["faith", "spar"]
    table = agreement_table(matrix)
    assert [label for label, _ in table.rows] == ["faith (fait)", "spar (spar)"]
    assert any(note.startswith("Not shown: cfva") for note in table.notes)
    assert any(note.endswith("(1 pair)") for note in table.notes)  # faith-spar, the one pair (was "1 pairs")
    figure = agreement_figure(matrix, matrix.attrs["family"])
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["faith", "spar"]


def test_two_methods_and_a_control_give_no_agreement_table_of_diagonal_ones():
    """The quickstart's case: two methods and `random`. Controls are not ranked and a tau needs three ranked
    methods, so no metric pair has a tau; the report printed a table of 1.000 on the diagonal and '-' elsewhere,
    a table that says nothing (its figure was already left out, with a note)."""
    from xaibench.report.build import NO_TAU, agreement_csv, agreement_table

    groups = {("d1", "faith", True): {"a": 0.9, "b": 0.5, "random": 0.1},
              ("d1", "spar", True): {"a": 0.2, "b": 0.7, "random": 0.4}}
    matrix = st.metric_agreement(summary_of(groups))
    assert np.isnan(matrix.loc["faith", "spar"]) and not st.has_metric_pairs(matrix)
    assert agreement_table(matrix).rows == ()
    # paper16: metric_agreement.csv was then an identity matrix (1 on the diagonal, empty elsewhere), as if the
    # metrics had been compared; as friedman.csv's no_post_hoc, a no_tau column says why, and no 1 stands alone
    csv = agreement_csv(matrix).set_index("metric")
    assert csv[["faith", "spar"]].isna().all().all() and (csv["no_tau"] == NO_TAU).all()
    groups[("d1", "faith", True)]["c"] = groups[("d1", "spar", True)]["c"] = 0.3  # three methods: a tau
    matrix = st.metric_agreement(summary_of(groups))
    assert st.has_metric_pairs(matrix) and len(agreement_table(matrix).rows) == 2
    csv = agreement_csv(matrix).set_index("metric")
    assert csv.loc["faith", "faith"] == 1.0 and (csv["no_tau"] == "").all()
    assert csv.loc["faith", "spar"] == matrix.loc["faith", "spar"]
    groups[("d1", "cf", True)] = {"a": 0.4, "b": 0.6}  # a metric two methods are scored on: no tau with any other
    csv = agreement_csv(st.metric_agreement(summary_of(groups))).set_index("metric")
    assert np.isnan(csv.loc["cf", "cf"]) and csv.loc["cf", "no_tau"] == NO_TAU and csv.loc["spar", "no_tau"] == ""


def test_an_infinite_score_does_not_turn_every_difference_into_a_tie():
    c = B.copy()
    c[0] = np.inf
    table = pd.concat([rows("a", "faith", A), rows("b", "faith", B), rows("c", "faith", c)])
    pairs = st.pairwise_tests(table).set_index(["method_a", "method_b"])
    assert pairs.loc[("a", "b"), "p_value"] == pytest.approx(stats.wilcoxon(A - B).pvalue, rel=1e-12)


def test_an_infinite_mean_is_ranked_last_and_does_not_tie_the_finite_ones():
    values = pd.Series([0.5, 0.5 + 1e-9, np.inf, 0.2, np.nan])
    snapped = st.snap_ties(values, pd.Series(["g"] * 5))
    assert snapped.tolist()[:4] == [0.5, 0.5, np.inf, 0.2] and np.isnan(snapped.iloc[4])
    table = pd.concat([rows("a", "sens", A, higher=False), rows("b", "sens", np.append(B[:-1], np.inf), higher=False)])
    assert summarize(table).set_index("method")["rank"].to_dict() == {"a": 1, "b": 2}


# --- several seeds: the sample is the unit of replication ---------------------------------------------------------

def seeded(per_seed: dict[str, list[np.ndarray]]) -> pd.DataFrame:
    """One competitor's per-sample values per seed: ``{method: [values of seed 0, seed 1, ...]}``."""
    return pd.concat([rows(method, "faith", values).assign(seed=seed)
                      for method, seeds in per_seed.items() for seed, values in enumerate(seeds)], ignore_index=True)


def test_three_identical_seeds_give_the_tests_and_cis_of_one_seed():
    """Three seeds that scored the same 12 samples identically hold the evidence of those 12 samples, no more."""
    c = (A + B) / 2 + 0.01 * np.cos(np.arange(12))
    one = seeded({"a": [A], "b": [B], "c": [c]})
    three = seeded({"a": [A] * 3, "b": [B] * 3, "c": [c] * 3})
    columns = ["method_a", "method_b", "n", "statistic", "p_value", "p_holm", "rank_biserial", "cles", "winner"]
    pd.testing.assert_frame_equal(st.pairwise_tests(three)[columns], st.pairwise_tests(one)[columns])
    assert (st.pairwise_tests(three)["n"] == 12).all()
    single, triple = summarize(one).set_index("method"), summarize(three).set_index("method")
    assert (triple["n_seeds"] == 3).all()
    for column in ("mean", "ci_low", "ci_high"):
        np.testing.assert_allclose(triple[column], single[column], rtol=0, atol=1e-12)


def test_with_seeds_a_pair_is_a_sample_and_its_difference_the_mean_over_the_seeds_both_scored():
    """Seeds differ (seed 1's model scores everything 1.0 higher); b's score of sample s08 in seed 1 is NaN. The
    test is scipy's on the 12 per-sample mean differences, s08's over seeds 0 and 2 only: averaging each method over
    the seeds it has would add 1.0 / 3 of seed 1's shift to a's side and turn s08's negative difference positive."""
    rng = np.random.default_rng(5)
    a = [A + rng.normal(0, 0.02, 12) + 1.0 * (seed == 1) for seed in range(3)]
    b = [B + rng.normal(0, 0.02, 12) + 1.0 * (seed == 1) for seed in range(3)]
    table = seeded({"a": a, "b": b})
    lost = (table["method"] == "b") & (table["seed"] == 1) & (table["sample_id"] == "s08")
    table.loc[lost, ["value", "status"]] = [np.nan, "nan"]
    differences = np.mean([a[s] - b[s] for s in range(3)], axis=0)
    differences[8] = np.mean([a[s][8] - b[s][8] for s in (0, 2)])
    assert differences[8] < 0
    pair = st.pairwise_tests(table).iloc[0]
    reference = stats.wilcoxon(differences)
    assert pair["n"] == 12 and pair["statistic"] == reference.statistic
    assert pair["p_value"] == pytest.approx(reference.pvalue, rel=1e-12)
    assert (pair["rank_biserial"], pair["cles"]) == pytest.approx(st.paired_effects(differences), rel=1e-12)


def four_methods_table() -> pd.DataFrame:
    """a best; b below a on 8 of 10 samples (|d| = 1..10 hundredths, ranks 1 and 5 the other way: exact
    W = 6, p = 28/1024); c and d far below every other method on every sample (p = 2/1024)."""
    a = np.linspace(0.5, 0.9, 10)
    magnitudes = np.arange(1, 11) / 100.0
    signs = np.where(np.isin(np.arange(1, 11), (1, 5)), -1.0, 1.0)
    c_noise = np.array([3, -1, 4, -1.5, 5, -9, 2, -6, 5.3, -3.5]) / 1000.0
    return pd.concat([rows("a", "faith", a), rows("b", "faith", a - signs * magnitudes),
                      rows("c", "faith", a - 1.0 + c_noise), rows("d", "faith", a - 1.0 - c_noise[::-1])])


def test_versus_best_corrects_over_the_k_minus_1_comparisons_with_the_best_by_hand():
    # The family of "differs from the best" is the best's k - 1 comparisons (Demšar 2006, comparisons with a
    # control), not all k(k-1)/2 pairs: there b differs from a at alpha 0.05 (Holm over 3), while Holm over the 6
    # pairs would not separate them.
    table = four_methods_table()
    pairs = st.pairwise_tests(table)
    best = st.versus_best(pairs, summarize(table)).set_index("method")
    assert set(best["best"]) == {"a"} and list(best.index) == ["b", "c", "d"]
    value = table.set_index(["method", "sample_id"])["value"]
    raw = {m: stats.wilcoxon(value["a"].to_numpy() - value[m].to_numpy()).pvalue for m in "bcd"}
    assert raw["b"] == pytest.approx(28 / 1024) and raw["c"] == pytest.approx(2 / 1024)
    ordered = sorted(raw, key=raw.get)  # Holm by hand: p_(i) * (m - i + 1), monotone, capped at 1
    adjusted, running = {}, 0.0
    for i, m in enumerate(ordered):
        running = max(running, min(1.0, raw[m] * (3 - i)))
        adjusted[m] = running
    for m in "bcd":
        assert best.loc[m, "p_value"] == pytest.approx(raw[m]) and best.loc[m, "p_holm"] == pytest.approx(adjusted[m])
        assert best.loc[m, "n"] == 10 and best.loc[m, "separated"]
    # the effect size beside each test, oriented to the best (Kerby 2014 by hand: b's differences from a have ranks
    # 1..10, ranks 1 and 5 favour b: r = (49 - 6) / 55); c and d are below a on every sample: r = 1
    assert best["rank_biserial"].to_dict() == pytest.approx({"b": 43 / 55, "c": 1.0, "d": 1.0})
    all_pairs = pairs.set_index(["method_a", "method_b"]).loc[("a", "b"), "p_holm"]
    assert all_pairs == pytest.approx(2 * 28 / 1024) and all_pairs > 0.05  # the old family: not separated


def test_tied_bests_each_form_comparisons_and_a_pair_without_shared_samples_is_not_separated():
    table = four_methods_table()
    table = pd.concat([table, table[table["method"] == "a"].assign(method="a2")])  # a2 ties a exactly
    # d: one sample, s01, where a (and a2) beat b: the ranks, on the samples all five scored, keep a and a2 best
    table = pd.concat([table[table["method"] != "d"], rows("d", "faith", np.full(1, 0.0)).assign(sample_id="s01")])
    best = st.versus_best(st.pairwise_tests(table), summarize(table))
    assert sorted(set(best["best"])) == ["a", "a2"] and len(best) == 2 * 3  # two bests x three others
    assert best.loc[best["method"] == "c", "separated"].all()
    d = best[best["method"] == "d"]  # one shared sample: no evidence, never "separated"
    assert (d["n"] == 1).all() and not d["separated"].any()


def test_the_small_sample_friedman_figures_in_the_report_note_are_exact():
    # build.friedman_table says why fewer than 10 groups get a permutation p, quoting 3 methods on 3 groups; the
    # exact p is the share of the (3!)^3 equally likely within-group rank permutations with a chi2 at least as large.
    import itertools

    from xaibench.report.build import friedman_table

    def chi2(ranks):
        sums = np.sum(ranks, axis=0)
        return 12 / (3 * 3 * 4) * np.sum(sums ** 2) - 3 * 3 * 4

    everything = np.array([chi2(c) for c in itertools.product(itertools.permutations([1, 2, 3]), repeat=3)])
    for observed, approx, exact in ((14 / 3, 0.097, 0.194), (6.0, 0.050, 0.028)):
        assert stats.chi2.sf(observed, 2) == pytest.approx(approx, abs=5e-4)
        assert np.mean(everything >= observed - 1e-9) == pytest.approx(exact, abs=5e-4)
    groups = {(f"d{g}", "m", True): {"a": 3, "b": 2, "c": 1} for g in range(3)}
    note = friedman_table({"all": st.friedman_nemenyi(summary_of(groups))}).notes[-1]
    assert note.startswith("p: exact permutation. With fewer than 10 groups")
    assert "chi2 = 4.67 gives 0.097, the exact p is 0.194" in note
    # A table of scopes with 3 and 12 groups named both ways in one note; each row says how its p was computed
    twelve = {(f"d{g}", "m", True): {"a": 3, "b": 2, "c": 1} for g in range(12)}
    table = friedman_table({"all": st.friedman_nemenyi(summary_of(twelve)),
                            "metric: m": st.friedman_nemenyi(summary_of(groups))})
    source = [c.name for c in table.columns].index("p from")
    assert {scope: cells[source].text for scope, cells in table.rows} == {"all": "chi-square",
                                                                          "metric: m": "exact perm."}
    assert "a family scope of several metrics, pool the groups" in " ".join(table.notes)


def test_friedman_p_below_10_groups_is_the_exact_permutation_p_by_enumeration():
    # 3 methods on 3 groups: perfect agreement (chi2 = 6) has exact p 6/216 = 0.0278; one group swapping the first
    # two (chi2 = 4.67) has 42/216 = 0.194 (scipy's chi-square says 0.050 and 0.097).
    agree = {(f"d{g}", "m", True): {"a": 3, "b": 2, "c": 1} for g in range(3)}
    swapped = {**agree, ("d2", "m", True): {"a": 2, "b": 3, "c": 1}}
    for groups, exact in ((agree, 6 / 216), (swapped, 42 / 216)):
        result = st.friedman_nemenyi(summary_of(groups))
        assert result.p_method == "exact permutation" and result.p_value == pytest.approx(exact, abs=1e-12)
        assert result.statistic == pytest.approx(stats.friedmanchisquare(*summary_matrix(groups).T).statistic)


def summary_matrix(groups):
    return np.array([[means[m] for m in sorted(means)] for means in groups.values()], dtype=float)


def test_friedman_permutation_p_by_monte_carlo_agrees_with_enumeration_and_is_seeded(monkeypatch):
    # Ties and 4 methods on 5 groups: the Monte Carlo p (20,000 draws) is within 4 standard errors of the exact one,
    # and the same table gives the same p; from 10 groups on, p is scipy's chi-square p.
    rng = np.random.default_rng(3)
    matrix = np.round(rng.normal(size=(5, 4)) + np.arange(4) * 0.4, 1)
    matrix[0, 1] = matrix[0, 2]
    exact, method = st.friedman_permutation_p(matrix)
    assert method == "exact permutation"
    monkeypatch.setattr(permutation_null, "_EXACT_STATES", 0)
    drawn, method = st.friedman_permutation_p(matrix)
    assert method == "Monte Carlo permutation (20,000 draws)"
    assert abs(drawn - exact) < 4 * np.sqrt(exact * (1 - exact) / 20_000)
    assert drawn == st.friedman_permutation_p(matrix)[0]
    groups = {(f"d{g}", "m", True): dict(zip("abcd", row)) for g, row in enumerate(rng.normal(size=(10, 4)))}
    result = st.friedman_nemenyi(summary_of(groups))
    assert result.p_method == "chi-square"
    assert result.p_value == pytest.approx(stats.friedmanchisquare(*summary_matrix(groups).T).pvalue)


def test_the_nemenyi_cd_on_few_groups_states_its_real_familywise_error_and_the_exact_cd(monkeypatch):
    # 4 methods ranked alike on 3 groups: Demšar's CD is 2.708, so only a range of 3 (one method first, another last
    # in all 3 groups) exceeds it: 12 ordered pairs x (1/12)^3 = 1/144 = 0.007, not alpha = 0.05. Average ranks
    # further apart than 7/3 (a range of 8/3 or 3) have chance 0.049: the exact CD. Checked over all 24^3 orders.
    from xaibench.report.build import friedman_table

    ranges = np.array([np.ptp(np.sum(orders, axis=0)) / 3
                       for orders in itertools.product(itertools.permutations([1, 2, 3, 4]), repeat=3)])
    groups = {(f"d{g}", "m", True): {"a": 4, "b": 3, "c": 2, "d": 1} for g in range(3)}
    result = st.friedman_nemenyi(summary_of(groups))
    assert result.cd == pytest.approx(2.708, abs=1e-3) and not result.post_hoc_reason()
    assert result.cd_familywise_error == pytest.approx(np.mean(ranges > result.cd)) == pytest.approx(1 / 144)
    assert result.cd_exact == pytest.approx(7 / 3) and np.mean(ranges > 7 / 3 + 1e-9) <= 0.05 < np.mean(ranges > 2)
    note = next(n for n in friedman_table({"family: f": result}).notes if n.startswith("CD with fewer than 10"))
    # newuser12: "nominally alpha, is all: 0.060, exact CD 1.111" read as "is all"; the scope now leads its figure
    assert "nominally alpha, is, per scope: family: f 0.007 (exact CD 2.333)." in note
    assert "the CD diagrams and nemenyi.csv use Demšar's" in note
    from xaibench.report.figure_set import caption

    assert "the Friedman table's note gives its real familywise error and the exact CD" in caption("cd_all")
    # 2 groups: even a method first and another last in both (chance 1/12) is no evidence at alpha: no exact CD
    two = st.friedman_nemenyi(summary_of({k: groups[k] for k in list(groups)[:2]}))
    assert two.cd_familywise_error == 0.0 and two.cd_exact == np.inf
    # ... and Demšar's CD (3.32) exceeds k - 1 = 3: no CD diagram, and the note says why (paper14)
    assert two.post_hoc_reason().startswith("CD = 3.32 >= k - 1 = 3 on 2 groups")
    assert "none for: all (CD = 3.32 >= k - 1 = 3 on 2 groups" in " ".join(friedman_table({"all": two}).notes)
    # Monte Carlo draws where enumeration is too large agree; from 10 groups on Demšar's CD stands alone
    monkeypatch.setattr(permutation_null, "_EXACT_STATES", 0)
    drawn = st.friedman_nemenyi(summary_of(groups))
    assert abs(drawn.cd_familywise_error - 1 / 144) < 4 * np.sqrt(1 / 144 / 20_000)
    assert drawn.cd_exact == pytest.approx(7 / 3)
    ten = st.friedman_nemenyi(summary_of({(f"d{g}", "m", True): groups[("d0", "m", True)] for g in range(10)}))
    assert np.isnan(ten.cd_familywise_error) and np.isnan(ten.cd_exact)
    assert not any(n.startswith("CD with fewer") for n in friedman_table({"all": ten}).notes)


def test_ranks_compare_methods_on_the_samples_every_ranked_method_scored():
    # a scores NaN on its two hardest samples: its mean over the other two (0.90) is the highest, so ranking means
    # put it first; on the samples all three scored, b (0.95) is better than a (0.90).
    a = rows("a", "faith", [0.9, 0.9, np.nan, np.nan])
    a.loc[2:, "status"] = "nan"
    table = pd.concat([a, rows("b", "faith", [0.95, 0.95, 0.1, 0.1]), rows("c", "faith", [0.5] * 4)],
                      ignore_index=True)
    # A second group with seeds: a's cell failed in seed 1 (no rows), so only seed 0's samples are shared.
    # Means: a 0.3 (seed 0 only), b 0.5 (0.2 and 0.8) -> b first; on seed 0: a 0.3 > b 0.2 -> a first.
    seeds = pd.concat([rows("a", "sens", [0.3, 0.3]), rows("b", "sens", [0.2, 0.2]),
                       rows("b", "sens", [0.8, 0.8]).assign(seed=1)], ignore_index=True)
    table = pd.concat([table, seeds], ignore_index=True)
    summary = summarize(table)
    shared = {("faith", "a"): 2, ("faith", "b"): 1, ("faith", "c"): 3, ("sens", "a"): 1, ("sens", "b"): 2}
    # summarize (console #rank, xaibench.summarize, W&B) ranks as the report does; by the means, a and b swap
    assert summary.set_index(["metric", "method"])["rank"].to_dict() == shared
    ranked = st.shared_sample_ranks(table, summary)
    frame = ranked.set_index(["metric", "method"])
    assert frame["rank"].to_dict() == shared
    assert frame["shared_mean"].to_dict() == pytest.approx({("faith", "a"): 0.9, ("faith", "b"): 0.95,
                                                            ("faith", "c"): 0.5, ("sens", "a"): 0.3,
                                                            ("sens", "b"): 0.2})
    assert frame["mean"].to_dict() == pytest.approx(summary.set_index(["metric", "method"])["mean"].to_dict())
    assert frame[["shared_n", "group_n"]].loc["faith"].to_numpy().tolist() == [[2, 4]] * 3
    assert frame[["shared_n", "group_n"]].loc["sens"].to_numpy().tolist() == [[2, 2]] * 2  # same ids in both seeds
    faith = st.average_ranks(ranked[ranked["metric"] == "faith"], by="all").set_index("method")["avg_rank"]
    assert faith.to_dict() == {"b": 1.0, "a": 2.0, "c": 3.0}
    # the tests against the best test the shared-sample best
    versus = st.versus_best(st.pairwise_tests(table), ranked)
    assert set(versus.loc[versus["metric"] == "faith", "best"]) == {"b"}


@pytest.mark.parametrize("trial", [3, 24])
def test_summarize_ranks_as_shared_sample_ranks_whole_and_in_chunks(trial):
    # random tables: 2 datasets x 4 methods x 2 metrics, 1-2 seeds, NaN scores, failed seeds and, in some cells, a
    # sample scored twice (the report's pivot averages it first); trial 24 has one that changes a rank
    from xaibench.results.aggregate import Summarizer

    rng, frames = np.random.default_rng(trial), []
    for dataset in ("d1", "d2"):
        for method in "abcd":
            for metric in ("x", "y"):
                for seed in range(rng.integers(1, 3)):
                    if rng.random() < 0.1:
                        continue  # this seed's cell failed
                    values = rng.normal(size=6) + (ord(method) % 3) * 0.1
                    frame = rows(method, metric, values, dataset=dataset, higher=metric == "x").assign(seed=seed)
                    nan = rng.random(6) < 0.2
                    frame.loc[nan, "value"], frame.loc[nan, "status"] = np.nan, "nan"
                    if rng.random() < 0.2:
                        frame = pd.concat([frame, frame.iloc[:1].assign(value=frame["value"].iloc[0] + 1)])
                    frames.append(frame)
    table = pd.concat(frames, ignore_index=True).sort_values(["model", "dataset", "method"], kind="stable")
    summary = summarize(table)
    report = st.shared_sample_ranks(table, summary)
    pd.testing.assert_series_equal(summary["rank"], report["rank"])
    # what the W&B sweep run derives from a streamed summary (no shared_mean) equals the report's
    for by in ("all", "metric"):
        pd.testing.assert_frame_equal(st.average_ranks(summary, by=by), st.average_ranks(report, by=by))
    pd.testing.assert_frame_equal(st.metric_agreement(summary, min_competitors=3),
                                  st.metric_agreement(report, min_competitors=3))
    friedman, expected = st.friedman_nemenyi(summary), st.friedman_nemenyi(report)
    assert (friedman.n_blocks, friedman.statistic) == (expected.n_blocks, expected.statistic) and friedman.n_blocks
    chunked = Summarizer()
    for _, block in table.groupby(["model", "dataset", "method"], sort=True):
        chunked.add(block)
    pd.testing.assert_frame_equal(chunked.result(), summary)
    with pytest.raises(ValueError, match="out of .model, dataset, method. order"):
        backwards = Summarizer()
        for dataset in ("d1", "d2", "d1"):
            backwards.add(table[table["dataset"] == dataset])


def test_no_cd_diagram_where_the_cd_exceeds_every_possible_rank_difference():
    """paper14: 4 methods on 2 groups, ranked identically in both: Friedman's exact p = 0.042 rejects, so a CD
    diagram was drawn, but Demšar's CD (3.32) exceeds k - 1 = 3, the largest difference two average ranks can have:
    every method was joined, whatever the data, and the CD bar ran past the axis."""
    table = pd.concat([rows(m, metric, A + shift) for metric in ("faith", "sens")
                       for m, shift in (("a", 0.3), ("b", 0.2), ("c", 0.1), ("d", 0.0))])
    result = st.friedman_nemenyi(summarize(table), alpha=0.05)
    assert result.p_value < 0.05 and result.cd == pytest.approx(3.317, abs=1e-3)
    assert result.post_hoc_reason() == ("CD = 3.32 >= k - 1 = 3 on 2 groups: no two of the 4 methods can be "
                                        "separated, whatever their ranks")


def test_the_console_flags_a_control_ahead_exactly_where_the_report_does_on_the_shared_samples():
    """paper17: the console's control warning compared each row's own ``mean`` (over the samples it scored), the
    report's the ``shared_mean`` (over the samples every competitor scored). ``a`` is NaN on its two hardest
    samples. On ``faith`` the control's own mean (0.55) is below a's (1.0) but on the shared samples it is ahead
    (1.1 > 1.0): the console said nothing where the report warned. On ``other`` its own mean (1.45) is ahead, on
    the shared samples it is not (0.9 < 1.0): the console warned where the report did not."""
    from xaibench.report.build import analyse
    from xaibench.report.console import format_summary

    def method_a(metric):
        frame = rows("a", metric, [1.0, 1.0, np.nan, np.nan])
        frame.loc[2:, "status"] = "nan"
        return frame

    table = pd.concat([method_a("faith"), rows("random", "faith", [1.1, 1.1, 0.0, 0.0]),
                       method_a("other"), rows("random", "other", [0.9, 0.9, 2.0, 2.0])], ignore_index=True)
    summary = summarize(table)
    assert summary.set_index(["metric", "method"])["shared_mean"].to_dict() == pytest.approx(
        {("faith", "a"): 1.0, ("faith", "random"): 1.1, ("other", "a"): 1.0, ("other", "random"): 0.9})
    report = analyse(table).warnings
    (warning,) = report
    assert "on faith for" in warning and "other" not in warning
    console = [line for line in format_summary(summary).splitlines() if line.startswith("WARNING")]
    assert console == list(report)


def test_a_sweep_of_controls_only_says_in_every_output_that_there_is_nothing_to_rank():
    """paper17: a sweep of ``method=random,constant`` ranks nobody. Its tables said "every non-bold cell differs
    significantly from the best in its column" (there is no best) under a caption "Bold: best method per column",
    and the console's legend explained ``#rank (1 = best method ...)``: now one line says there is nothing to rank
    (console, report.md/.html, summary -o), the captions (LaTeX too) say why nothing is bold."""
    from xaibench.report.build import analyse, markdown_report
    from xaibench.report.console import format_summary
    from xaibench.report.tables.render import latex_tables

    table = pd.concat([rows("random", metric, A + shift) for metric, shift in (("faith", 0.0), ("sens", 0.1))]
                      + [rows("constant", metric, np.zeros(A.size)) for metric in ("faith", "sens")],
                      ignore_index=True)
    analysis = analyse(table)
    line = st.nothing_to_rank(analysis.summary)
    assert line.startswith("NOTE: nothing to rank: every scored row is a control (constant, random)")
    assert analysis.warnings == (line,) and st.control_warnings(summarize(table)) == [line]
    assert not analysis.best_tables and not analysis.stat_tables
    for result in analysis.tables:
        assert "Only controls (constant, random) have a score" in result.caption and "Bold: best" not in result.caption
        assert not any("differs significantly" in note for note in result.notes)
        assert not any(cell.best or cell.tie for _, cells in result.rows for cell in cells)
    assert "Only controls (constant, random) have a score" in latex_tables(list(analysis.tables))
    assert f"> **{line}**" in markdown_report(analysis, "r")
    console = format_summary(summarize(table)).splitlines()
    assert console[-1] == line and "#rank" not in console[-2] and "ref (a control" in console[-2]
    # one method beside the controls: ranked, no such line
    with_method = pd.concat([table, rows("ig", "faith", A + 0.2)], ignore_index=True)
    assert st.nothing_to_rank(summarize(with_method)) == ""
    assert "#rank (1 = best method" in format_summary(summarize(with_method))
