"""Summary statistics: bootstrap CI, ranks that respect each metric's declared direction, NaN rates."""
import numpy as np
import pandas as pd
import pytest

from xaibench.results.aggregate import bootstrap_ci, summarize


def rows(method, metric, values, higher=True, status=None):
    n = len(values)
    return pd.DataFrame({
        "model": "m", "dataset": "d", "method": method, "metric": metric, "family": "f",
        "higher_is_better": higher, "sample_id": [f"s{i}" for i in range(n)], "value": values,
        "status": status or ["ok"] * n, "message": [""] * n,
    })


def test_bootstrap_ci_of_constant_is_the_constant():
    assert bootstrap_ci(np.full(10, 0.3)) == pytest.approx((0.3, 0.3))


def test_bootstrap_ci_brackets_mean_and_matches_normal_approximation():
    values = np.random.default_rng(0).normal(1.0, 1.0, size=400)
    low, high = bootstrap_ci(values, n_boot=4000)
    half = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert low < values.mean() < high
    assert high - low == pytest.approx(2 * half, rel=0.1)
    assert bootstrap_ci(values, n_boot=4000) == (low, high)  # deterministic


def test_ranks_follow_declared_direction():
    table = pd.concat([
        rows("a", "faith", [0.9, 0.8]), rows("b", "faith", [0.1, 0.2]),
        rows("a", "sens", [0.9, 0.8], higher=False), rows("b", "sens", [0.1, 0.2], higher=False),
    ])
    summary = summarize(table).set_index(["method", "metric"])
    assert summary.loc[("a", "faith"), "rank"] == 1 and summary.loc[("b", "faith"), "rank"] == 2
    assert summary.loc[("a", "sens"), "rank"] == 2 and summary.loc[("b", "sens"), "rank"] == 1
    assert summary.loc[("a", "faith"), "mean"] == pytest.approx(0.85)
    assert summary.loc[("a", "faith"), "std"] == pytest.approx(np.std([0.9, 0.8], ddof=1))


def test_nan_rate_and_status():
    table = rows("a", "faith", [0.5, np.nan, np.nan, 0.7], status=["ok", "nan", "nan", "ok"])
    summary = summarize(table).iloc[0]
    assert summary["n"] == 2 and summary["nan_rate"] == 0.5 and summary["mean"] == pytest.approx(0.6)
    assert summary["status"] == "ok"


def test_ranks_stay_within_comparison_groups():
    """Two datasets of one registry name (different paths/revisions) and two model variants are ranked apart."""
    def group(dataset_params, model_params, revision, a, b):
        frame = pd.concat([rows("ig", "faith", a), rows("sal", "faith", b)])
        return frame.assign(dataset="csv_table", dataset_params=dataset_params, model_params=model_params,
                            dataset_revision=revision, method_params="{}", params="{}", n_samples=2,
                            model_revision="")
    table = pd.concat([
        group('{"path": "a.csv"}', "{}", "ra", [0.9, 0.9], [0.1, 0.1]),
        group('{"path": "b.csv"}', "{}", "rb", [0.3, 0.3], [0.5, 0.5]),
        group('{"path": "a.csv"}', '{"hidden": [4]}', "ra", [0.7, 0.7], [0.8, 0.8]),
    ])
    summary = summarize(table)
    assert sorted(summary["rank"].tolist()) == [1, 1, 1, 2, 2, 2]
    assert summary["comparison"].nunique() == 3
    by = summary.set_index(["comparison", "method"])["rank"]
    for comparison in summary["comparison"].unique():
        assert sorted(by.loc[comparison].tolist()) == [1, 2]


def test_ranks_within_metric_parameterisations_lower_is_better_with_ties():
    """Two parameterisations of one metric are two comparison groups; ties share the best rank (1, 2, 2, 4)."""
    def variant(params, means):
        frame = pd.concat([rows(m, "sens", [v, v], higher=False) for m, v in means.items()])
        return frame.assign(params=params, method_params="{}")
    table = pd.concat([
        variant('{"nr_samples": 10}', {"a": 0.2, "b": 0.2, "c": 0.5, "d": 0.1}),
        variant('{"nr_samples": 50}', {"a": 0.9, "b": 0.3, "c": 0.3, "d": 0.3}),
    ])
    summary = summarize(table)
    assert summary["comparison"].nunique() == 2
    ranks = summary.set_index(["variant", "method"])["rank"].to_dict()
    assert ranks == {
        ("metric.nr_samples=10", "a"): 2, ("metric.nr_samples=10", "b"): 2, ("metric.nr_samples=10", "c"): 4,
        ("metric.nr_samples=10", "d"): 1,
        ("metric.nr_samples=50", "a"): 4, ("metric.nr_samples=50", "b"): 1, ("metric.nr_samples=50", "c"): 1,
        ("metric.nr_samples=50", "d"): 1,
    }


def seeded(method, per_seed, metric="faith"):
    return pd.concat([rows(method, metric, values).assign(seed=seed) for seed, values in enumerate(per_seed)])


def test_several_seeds_average_per_seed_means_and_bootstrap_over_seeds():
    """Seed 0 has 4 samples of 1.0, seed 1 two of 3.0: the mean is 2.0 (pooled would say 1.67). The two seeds
    share samples s0 and s1: n counts 4 samples (each once), n_values the 6 scored (seed, sample) values."""
    summary = summarize(seeded("a", [[1.0] * 4, [3.0] * 2])).iloc[0]
    assert summary["n_seeds"] == 2 and summary["n"] == 4 and summary["n_values"] == 6
    from xaibench.report.console import format_summary  # the console says what n counts
    assert "n = 4 samples per cell, seeds=k: mean over k seeds (a sample scored in several seeds counts once" in \
        format_summary(summarize(seeded("a", [[1.0] * 4, [3.0] * 2])))
    assert summary["mean"] == pytest.approx(2.0)
    # Resampling 2 seeds from {1.0, 3.0}: means 1, 2 or 3 with chances 1/4, 1/2, 1/4: the 95% CI is [1, 3].
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((1.0, 3.0))


def test_one_seed_keeps_the_per_sample_bootstrap():
    values = np.random.default_rng(1).normal(size=25)
    summary = summarize(rows("a", "faith", values).assign(seed=7)).iloc[0]
    assert summary["n_seeds"] == 1
    by_sample_id = values[np.argsort([f"s{i}" for i in range(values.size)])]  # summarize orders by sample id
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx(bootstrap_ci(by_sample_id), abs=1e-12)


def replicate_table(values):
    """A table of R replicate experiments (one method each) from values ``(R, seeds, samples)``."""
    n_rep, n_seeds, n = values.shape
    r, seed, i = np.meshgrid(np.arange(n_rep), np.arange(n_seeds), np.arange(n), indexing="ij")
    return pd.DataFrame({
        "model": "m", "dataset": "d", "method": [f"m{k}" for k in r.ravel()], "metric": "faith", "family": "f",
        "higher_is_better": True, "sample_id": [f"s{k}" for k in i.ravel()], "seed": seed.ravel(),
        "value": values.ravel(), "status": "ok", "message": "",
    })


def coverage(table, truth):
    summary = summarize(table)
    return float(((summary["ci_low"] <= truth) & (truth <= summary["ci_high"])).mean())


def test_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time():
    """400 replicate experiments on known distributions (fixed rng): the nominal 95% CI covers the truth.

    One seed, n=40 samples of N(0.5, 1). Twenty seeds whose means differ (seed effect N(0, 1)) with 8 noisy samples
    each: the two-way CI (seeds resampled too) keeps its coverage while a per-sample CI that pools seeds would cover
    far less often.
    """
    rng = np.random.default_rng(2026)
    single = replicate_table(rng.normal(0.5, 1.0, size=(400, 1, 40)))
    assert 0.92 <= coverage(single, 0.5) <= 0.975

    effects = rng.normal(0.0, 1.0, size=(400, 20, 1))
    hierarchical = replicate_table(effects + rng.normal(0.0, 0.5, size=(400, 20, 8)))
    assert 0.90 <= coverage(hierarchical, 0.0) <= 0.975
    assert coverage(hierarchical.assign(seed=0), 0.0) < 0.7  # pooling seeds as samples: CIs far too narrow


def test_summary_carries_model_accuracy_underfit_flag_and_display_names():
    def cell(model, accuracy, flag, seed, label):
        return rows("ig", "faith", [0.5, 0.6]).assign(model=model, model_accuracy=accuracy, model_flag=flag,
                                                       seed=seed, dataset="csv_table", dataset_label=label,
                                                       model_label="")
    table = pd.concat([cell("mlp", 0.9, "", 0, "diabetes"), cell("mlp", 0.8, "", 1, "diabetes"),
                       cell("tiny", 0.1, "underfit", 0, "diabetes"), cell("tiny", 0.5, "", 1, "diabetes")])
    summary = summarize(table).set_index("model")
    assert summary.loc["mlp", "model_accuracy"] == pytest.approx(0.85)
    assert summary.loc["mlp", "model_flag"] == "" and summary.loc["tiny", "model_flag"] == "underfit"
    assert (summary["dataset_label"] == "diabetes").all()
    assert summary.loc["mlp", "model_label"] == "mlp"  # an empty label falls back to the registry name

    from xaibench.report.console import format_summary
    text = format_summary(summary.reset_index())
    assert "diabetes" in text and "csv_table" not in text
    assert "mlp (acc 0.85)" in text and "tiny (acc 0.30, UNDERFIT)" in text


def test_console_keeps_three_decimals_and_shows_small_scores_with_three_significant_digits():
    from xaibench.report.console import format_summary, number_texts

    assert number_texts(0.41234, 0.3, 0.5) == ["0.412", "0.300", "0.500"]  # today's format (README tables)
    assert number_texts(0.0, 0.0, 0.0) == ["0.000", "0.000", "0.000"]
    assert number_texts(0.02, 0.005, 0.035) == ["0.020", "0.005", "0.035"]  # one value >= 0.01: unchanged
    assert number_texts(0.000123, 4.5e-5, 0.0002) == ["0.000123", "4.5e-05", "0.0002"]
    assert number_texts(-0.004, float("nan"), 2.5e-6) == ["-0.004", "nan", "2.5e-06"]
    table = pd.concat([rows("ks", "mse", [0.0012, 0.0012], higher=False), rows("ig", "mse", [0.3, 0.5], higher=False)])
    text = format_summary(summarize(table))
    assert "0.0012 [0.0012, 0.0012] #1" in text and "0.400 [" in text


def test_the_console_legend_explains_ref_only_where_a_control_is_shown():
    # A sweep without a control (a bring-your-own run of one method) printed "ref: a control, a reference not
    # ranked" under a table with no ref in it.
    from xaibench.report.console import format_summary

    methods = pd.concat([rows("a", "faith", [0.9, 0.8]), rows("b", "faith", [0.1, 0.3])])
    text = format_summary(summarize(methods))
    assert "(1 = best method); n = 2 samples per cell" in text and " ref" not in text
    text = format_summary(summarize(pd.concat([methods, rows("random", "faith", [0.2, 0.1])])))
    assert "(1 = best method; ref: a control, a reference not ranked); n = 2" in text and "] ref" in text


def test_summary_is_independent_of_row_order():
    rng = np.random.default_rng(3)
    table = pd.concat([seeded(m, [rng.normal(size=5), rng.normal(size=5)]) for m in "abc"], ignore_index=True)
    shuffled = table.sample(frac=1.0, random_state=4)
    pd.testing.assert_frame_equal(summarize(table), summarize(shuffled))


def test_one_sample_has_no_ci_and_every_output_says_so():
    from xaibench.report.console import format_summary
    from xaibench.report.tables import metrics_table, to_latex, to_markdown

    table = pd.concat([rows("a", "faith", [0.8]), rows("b", "faith", [0.5])]).assign(seed=0)
    summary = summarize(table)
    assert summary["mean"].tolist() == [0.8, 0.5] and summary["n"].tolist() == [1, 1]
    assert summary["ci_low"].isna().all() and summary["ci_high"].isna().all()  # not a fake [0.8, 0.8]
    assert summary["rank"].tolist() == [1, 2]
    markdown = to_markdown(metrics_table(summary.assign(model_accuracy=np.nan, model_flag="", setting="s")))
    assert "| a | **0.800**<sup>n</sup> |" in markdown and "no confidence interval can be computed" in markdown
    assert "0.800 [" not in markdown and "[0.800, 0.800]" not in to_latex(metrics_table(summary.assign(
        model_accuracy=np.nan, model_flag="", setting="s")))
    assert "0.800 [no CI: n=1] #1" in format_summary(summary)
    # one sample in each of three seeds: the seeds are resampled, so a CI exists
    seeds = pd.concat([rows("a", "faith", [v]).assign(seed=s) for s, v in enumerate([0.7, 0.8, 0.9])])
    three = summarize(seeds).iloc[0]
    assert three["n_seeds"] == 3 and three["mean"] == pytest.approx(0.8)
    assert 0.7 - 1e-12 <= three["ci_low"] < 0.8 < three["ci_high"] <= 0.9 + 1e-12


def test_the_console_shows_a_cell_that_errored_in_some_seeds():
    # b scored in seed 0 and errored in seed 1: its mean is seed 0's alone. The paper tables mark it (b); the
    # console printed "0.500 [...] #2 seeds=2" as if both seeds had counted.
    from xaibench.report.console import format_summary

    failed = rows("b", "faith", [np.nan] * 3, status=["error"] * 3).assign(seed=1, message="boom")
    table = pd.concat([seeded("a", [[0.9, 0.8, 0.7]] * 2), rows("b", "faith", [0.5, 0.4, 0.6]).assign(seed=0),
                       failed])
    summary = summarize(table)
    text = format_summary(summary)
    cell = next(line for line in text.splitlines() if " b " in line)
    assert summary.set_index("method").loc["b", "error_rate"] == 0.5 and "errors=50% (1) seeds=2" in cell
    assert "\n  (1) boom\n" in text  # why the other seed has no score (paper21)
    assert "errors=x%: share of seeds whose cell errored" in text and "errors=" not in text.splitlines()[2]


def test_the_two_way_ci_resamples_sample_ids_across_seeds_and_seeds_as_a_direct_loop_does():
    """Seeds 0 and 1 share samples s2, s3 (a re-split keeps some rows in the test split); the summary's CI is the
    percentile interval of the mean over drawn seeds of each seed's mean over its drawn samples, computed here
    one resample at a time from the same draws (sample ids s0..s5 first, then seeds)."""
    from xaibench.results.bootstrap import resample_counts

    seed0 = {"s0": 0.1, "s1": 0.5, "s2": 0.9, "s3": 0.4}
    seed1 = {"s2": 1.4, "s3": 0.2, "s4": 0.8, "s5": 1.1}
    table = pd.concat([rows("a", "faith", list(v.values())).assign(seed=s, sample_id=list(v))
                       for s, v in enumerate([seed0, seed1])], ignore_index=True)
    summary = summarize(table, n_boot=500).iloc[0]
    rng = np.random.default_rng(0)
    samples, seeds = resample_counts(rng, 500, 6), resample_counts(rng, 500, 2)
    ids = ["s0", "s1", "s2", "s3", "s4", "s5"]
    means = []
    for w, v in zip(samples, seeds):
        per_seed = [(sum(w[ids.index(i)] * x for i, x in scores.items()), sum(w[ids.index(i)] for i in scores))
                    for scores in (seed0, seed1)]
        kept = [(count, total / drawn) for count, (total, drawn) in zip(v, per_seed) if drawn > 0]
        means.append(sum(c * m for c, m in kept) / sum(c for c, _ in kept) if kept and sum(c for c, _ in kept)
                     else np.nan)
    expected = np.nanquantile(means, [0.025, 0.975])
    assert summary["mean"] == pytest.approx((np.mean(list(seed0.values())) + np.mean(list(seed1.values()))) / 2)
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx(tuple(expected), abs=1e-12)


def test_ci_of_seeds_sharing_their_samples_covers_the_true_mean():
    """200 replicate experiments: 5 seeds scoring the same 20 samples, whose difficulty (N(0, 1)) dominates the
    seed effect (N(0, 0.1)). Resampling samples independently within each seed (the nested bootstrap this
    replaced) covers 0.6 of the time on these draws; resampling sample ids across seeds keeps about the coverage
    one seed's 20 samples give (about 0.9: a percentile bootstrap of 20 values is a little narrow)."""
    rng = np.random.default_rng(7)
    values = (rng.normal(0, 1, size=(200, 1, 20)) + rng.normal(0, 0.1, size=(200, 5, 1))
              + rng.normal(0, 0.2, size=(200, 5, 20)))
    crossed = replicate_table(values)
    assert coverage(crossed, 0.0) >= 0.86
    assert coverage(crossed, 0.0) >= coverage(crossed[crossed["seed"] == 0], 0.0) - 0.03


def test_a_negative_zero_prints_without_its_sign():
    """A mean of -0.0 (or a tiny negative rounded to three decimals) printed as ``-0.000 [0.000, 0.000]``."""
    from xaibench.report.console import number_texts
    from xaibench.report.tables.model import number

    assert number_texts(-0.0, 0.0, 0.0) == ["0.000", "0.000", "0.000"]
    assert number_texts(-0.0001, -0.02, 0.02) == ["0.000", "-0.020", "0.020"]
    assert number_texts(-1e-5, 0.0, 1e-5) == ["-1e-05", "0", "1e-05"]  # small values keep their sign
    assert [number(-0.0), number(-0.0001, scale=1.0), number(-0.3)] == ["0.000", "0.000", "-0.300"]


def test_a_method_not_applicable_to_the_data_shows_under_its_model_not_as_a_second_bare_model():
    """newuser12: ``method=saliency,sobel`` on a table printed ``sobel`` under a model line ``mlp`` of its own,
    above ``mlp (acc 0.96)``: a method skipped as not applicable never loads the model (no accuracy, no dataset
    revision, so another comparison group), and the console read it as a second model. The model's one known
    accuracy and flag are shown on its line; a model known nowhere (cnn on a table) stays bare."""
    from xaibench.report.console import format_summary

    def cell(model, method, accuracy, flag, status, revision):
        return rows(method, "faith", [0.5, 0.6], status=[status] * 2).assign(
            model=model, model_accuracy=accuracy, model_flag=flag, dataset_revision=revision, model_label="",
            value=np.nan if status == "not_applicable" else [0.5, 0.6])
    table = pd.concat([cell("mlp", "saliency", 0.96, "underfit", "ok", "r1"),
                       cell("mlp", "random", 0.96, "underfit", "ok", "r1"),
                       cell("mlp", "sobel", np.nan, "", "not_applicable", ""),
                       cell("cnn", "saliency", np.nan, "", "not_applicable", "")])
    summary = summarize(table)
    assert summary["comparison"].nunique() == 3  # the skipped cell is its own group: what split the console
    lines = format_summary(summary).splitlines()
    sobel = next(line for line in lines if " sobel " in f"{line} ")
    assert "n/a" in sobel and "mlp (acc 0.96, UNDERFIT)" in "\n".join(lines)
    assert not any(line.split()[:2] in (["mlp", "sobel"], ["d", "mlp"]) for line in lines)  # no bare mlp line
    assert any(line.split()[:3] == ["d", "cnn", "saliency"] for line in lines)  # not known anywhere: bare


def test_two_seeds_ci_under_covers_where_seeds_dominate():
    """What the report's captions say of a CI over 2 seeds (layouts._FEW_SEEDS_COVERAGE: 0.66 on 1,000 replicates):
    where the seed effect dominates, the percentile bootstrap over 2 seeds spans about the two seed means, and the
    nominal 95% interval holds the true mean far less often."""
    rng = np.random.default_rng(102)
    table = replicate_table(rng.normal(0, 1, size=(200, 2, 1)) + rng.normal(0, 0.5, size=(200, 2, 8)))
    assert 0.55 <= coverage(table, 0.0) <= 0.75
