"""Paper tables: the right cells bold, ties within the CI marked, footnotes and warnings in every format."""
import re

import numpy as np
import pandas as pd
import pytest

from tests.unit.report_fixtures import quickstart_like_table
from xaibench.report.html_document import Figure, html_document
from xaibench.report.tables import build_tables, metrics_table, to_html, to_latex, to_markdown
from xaibench.report.tables.render import latex_escape
from xaibench.results.aggregate import summarize


@pytest.fixture(scope="module")
def summary():
    return summarize(quickstart_like_table())


def cell_text(summary, model, metric, method):
    row = summary[(summary["model"] == model) & (summary["metric"] == metric) & (summary["method"] == method)].iloc[0]
    return f"{row['mean']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


def md_row(text, method):
    return next(line for line in text.splitlines() if line.startswith(f"| {method} |")).split(" | ")[1:]


def test_markdown_metrics_table_bolds_best_marks_nan_and_warns_on_controls(summary):
    mlp = to_markdown(metrics_table(summary[summary["model"] == "mlp"]))
    assert "mlp on diabetes (test accuracy 0.95)" in mlp  # display name, not csv_table
    assert "| method | faith ↑ | mprt ↑<sup>c</sup> | sens ↓ |" in mlp
    ig, saliency, random = (md_row(mlp, m) for m in ("ig", "saliency", "random"))
    assert ig[0] == f"**{cell_text(summary, 'mlp', 'faith', 'ig')}**"
    assert saliency[2].startswith(f"**{cell_text(summary, 'mlp', 'sens', 'saliency')}**<sup>a</sup>")
    # the random control scores best on mprt: a reference row, never bold; the best method is, and the reader is told
    assert random[1] == f"{cell_text(summary, 'mlp', 'mprt', 'random')}<sup>c</sup>"
    assert saliency[1] == f"**{cell_text(summary, 'mlp', 'mprt', 'saliency')}**"
    assert ("Warning (c): the control random (noise drawn independently of the model) scores as well as the best "
            "method or better on mprt for diabetes / mlp.") in mlp
    assert "controls (random; last rows) are references, never ranked or bold" in mlp
    assert "up to 25%: saliency on sens" in mlp
    assert sum(line.count("**") for line in mlp.splitlines() if line.startswith("| ")) == 6  # 3 bold cells


def test_the_nan_footnote_gives_the_reason_the_rows_record():
    """newuser12: docs/meaning.md promises a NaN score "with its reason", and the rows carry it (the constant
    control: "constant attribution: no ranking of the features"), but the report's footnote named only the share
    and where; the error footnote already gave the error's first line."""
    table = quickstart_like_table()
    nan = table["status"] == "nan"
    table.loc[nan, "message"] = "constant attribution: no ranking of the features"
    text = to_markdown(metrics_table(summarize(table)[lambda s: s["model"] == "mlp"]))
    assert ("- a NaN scores, excluded from the mean (up to 25%: saliency on sens: constant attribution: no ranking "
            "of the features).") in text
    table.loc[nan, "message"] = ("the map at x and a re-explained map differ in norm by more than float32 resolution "
                                 "(relative change > 2^23, or a norm that underflows): the map at x is numerically "
                                 "zero next to it, or the re-explanation blew up")  # 208 characters
    text = to_markdown(metrics_table(summarize(table)[lambda s: s["model"] == "mlp"]))
    assert ("(relative change > 2^23, or a norm that underflows): the map at x is...).") in text  # was
    # cut mid-word at 160 characters: "the map at x is numerica)."


def test_ties_within_the_ci_and_underfit_models_are_marked(summary):
    tiny = to_markdown(metrics_table(summary[summary["model"] == "tiny"]))
    assert md_row(tiny, "saliency")[0] == f"{cell_text(summary, 'tiny', 'faith', 'saliency')}†"
    assert "UNDERFIT" in tiny and "tiny is underfit (test accuracy 0.100)" in tiny
    assert "CI overlaps the best's CI" in tiny


def test_every_layout_and_format_carries_the_same_bold_cells(summary):
    tables = build_tables(summary)
    assert [t.key for t in tables] == ["metrics-diabetes-mlp", "metrics-digits-tiny", "datasets-faith",
                                       "datasets-mprt", "datasets-sens", "families"]
    for table in tables[:-1]:
        n_best = sum(c.best for _, cells in table.rows for c in cells)
        body = [line for line in to_markdown(table).splitlines() if line.startswith("| ")]
        assert sum(line.count("**") for line in body) == 2 * n_best
        assert to_latex(table).count(r"\textbf{") == n_best + len(table.warnings)
        assert len(re.findall(r"<td class=\"best\"><b>", to_html(table))) == n_best
    families = tables[-1]
    ranks = {label: [c.text for c in cells] for label, cells in families.rows}
    # faith: ig 1, saliency 2, random 3 in both settings; sens ranks ig 2 then 1: average 1.5.
    assert ranks["ig"][0] == "1.000" and ranks["saliency"][0] == "2.000" and ranks["ig"][2] == "1.500"
    assert "random" not in ranks  # a control is a reference row: not ranked, so not in a table of ranks
    assert any("Controls (random) are reference rows, not ranked" in note for note in families.notes)
    assert any("mprt" in w for w in families.warnings)


def test_latex_escapes_and_uses_booktabs(summary):
    tex = to_latex(metrics_table(summary[summary["model"] == "mlp"]))
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"faith $\uparrow$" in tex and r"sens $\downarrow$" in tex
    assert latex_escape("a_b & 50% #1 {x} ~^\\") == r"a\_b \& 50\% \#1 \{x\} \textasciitilde{}\textasciicircum{}\textbackslash{}"
    # the default OT1 text font sets < and > as ¡ and ¿ (the Friedman and pairwise tables print "<1e-4")
    assert latex_escape("p <1e-4, r > 0") == "p $<$1e-4, r $>$ 0"
    # a negative number in a cell is set with a minus sign, not a hyphen; exponents, a lone "-" and hyphens in
    # captions stay
    from xaibench.report.tables import Cell, Column, Table

    cells = (Cell("0.010 [-0.038, 0.064]"), Cell("-0.652"), Cell("1.20e-05"), Cell("-"))
    negative = to_latex(Table(key="k", caption="two-sided, n = 6-8", corner="m", columns=(Column("x"),) * 4,
                              rows=(("a", cells),)))
    assert r"a & 0.010 [$-$0.038, 0.064] & $-$0.652 & 1.20e-05 & - \\" in negative
    assert "two-sided, n = 6-8" in negative


def test_html_document_is_self_contained_with_embedded_figures(summary):
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    page = html_document("t", figures=[Figure(buffer.getvalue(), "a line <b>", "fig-1")],
                         warnings=["WARNING: x"])
    assert page.startswith("<!DOCTYPE html>") and 'src="data:image/png;base64,iVBORw0KGgo' in page
    assert "a line &lt;b&gt;" in page and '<p class="xb-warning">WARNING: x</p>' in page
    assert not re.search(r"(src|href)=\"(https?:|//)", page) and "<script" not in page and "<link" not in page
    with pytest.raises(ValueError, match="not PNG"):
        html_document("t", figures=[Figure(b"GIF89a", "x")])


def test_display_names_fall_back_to_registry_names():
    table = quickstart_like_table().drop(columns=["dataset_label", "model_label"])
    tables = build_tables(summarize(table), ("metrics",))
    assert tables[0].caption.startswith("mlp on csv_table")


def test_families_table_does_not_crown_a_method_scored_in_fewer_groups():
    # "late" ranks first in the one group it was scored in and errored in the other two; "ig" is ranked in all
    # three. A lone scored method ("ig" on the third metric) wins nothing and that group is not counted.
    table = quickstart_like_table()
    table = table[(table["model"] == "mlp") & (table["method"] != "random")]
    late = table[(table["metric"] == "faith") & (table["method"] == "ig")].assign(method="late", value=0.99)
    failed = table[(table["metric"] != "faith") & (table["method"] == "ig")].assign(
        method="late", value=float("nan"), status="error", message="boom")
    table = pd.concat([table, late, failed], ignore_index=True)
    table = table[~((table["metric"] == "mprt") & (table["method"] == "saliency"))]  # ig alone on mprt
    families = build_tables(summarize(table), ("families",))[0]
    columns = [c.name for c in families.columns]
    assert columns == ["faithfulness (N=1)", "stability (N=1)", "all (N=2)"]  # N: groups (n: samples)
    cells = {label: cells for label, cells in families.rows}
    # all: ig ranks 2 (faith) and 2 (sens) -> 2.0 over 2 groups; late 1.0 but in 1 of 2 groups only
    assert [c.text for c in cells["late"]] == ["1.000", "-", "1.000 (1/2)"]
    assert cells["late"][2].marks == ("r",) and not cells["late"][2].best
    assert cells["late"][0].best  # in its own family column it was ranked in every group
    assert cells["saliency"][2].text == "2.000" and cells["saliency"][2].best  # faith 3, sens 1
    assert any(note.startswith("r ranked in k of the column's N groups") for note in families.notes)
    # review9: the error footnote said only "see the summary's message column"; it names the worst share, where
    # and the error's first line, as the NaN footnote names its worst
    text = to_markdown(metrics_table(summarize(table)))
    assert md_row(text, "late")[1] == "error<sup>b</sup>"
    assert ("- b cells that errored on this metric: up to 100% of seeds (late on mprt: boom); every message is in "
            "the summary's message column.") in text


def test_the_controls_table_states_the_alpha_its_verdicts_use():
    from xaibench.report.build import analyse

    table = quickstart_like_table()
    table = table[table["model"] == "mlp"]
    for alpha in (0.05, 0.001):
        analysis = analyse(table, layouts=("metrics",), alpha=alpha)
        controls = next(t for t in analysis.stat_tables if t.key == "controls")
        assert f"alpha={alpha:g}" in controls.caption
        assert "Holm-corrected over the group's k(k-1)/2 pairs" in controls.caption  # which family, as the tests
        won = {label: [c.text for c in cells] for label, cells in controls.rows}
        # 8 samples: the smallest exact two-sided Wilcoxon p is 2/2**8 = 0.0078 (Holm x3 = 0.023 in a group)
        assert won["ig"][0] == ("1/1" if alpha == 0.05 else "0/1")


def test_friedman_table_names_no_best_method_where_one_method_was_ranked():
    from xaibench.report.build import friedman_scopes, friedman_table

    table = quickstart_like_table()
    table = table[(table["metric"] != "faith") | (table["method"] == "ig")]  # faithfulness: ig alone
    friedman = friedman_table(friedman_scopes(summarize(table), 0.05))
    assert any("not independent blocks" in note for note in friedman.notes)
    rows = {scope: [c.text for c in cells] for scope, cells in friedman.rows}
    assert rows["family: faithfulness"][0] == "1" and rows["family: faithfulness"][-1] == "-"
    # stability: saliency ranks first on mlp, ig on tiny: both average 1.5, and the table names both, not one
    assert rows["family: stability"][-1] == "ig, saliency (1.50)"


def test_friedman_table_has_no_scope_for_a_metric_scored_nowhere_and_no_nan_chi2():
    # `metrics=stability` on a table: continuity is not_applicable everywhere (an n/a column). The Friedman table
    # had a row "metric: continuity | 0 | 0 | nan | - | ..." for it, and printed chi2 as "nan" where p is "-".
    from xaibench.report.build import friedman_scopes, friedman_table

    table = quickstart_like_table()
    sens = table[table["metric"] == "sens"]
    nowhere = sens.assign(metric="cont", value=np.nan, status="not_applicable", message="not on tabular inputs")
    friedman = friedman_table(friedman_scopes(summarize(pd.concat([table, nowhere], ignore_index=True)), 0.05))
    rows = {scope: [c.text for c in cells] for scope, cells in friedman.rows}
    assert "metric: cont" not in rows and "metric: sens" not in rows  # sens is its family's one scored metric
    assert "family: stability" in rows
    assert all(cells[2] != "nan" for cells in rows.values())  # chi2: "-" where Friedman was not run
    assert any(cells[2] == "-" and cells[3] == "-" for cells in rows.values())


def test_a_table_of_one_method_has_no_empty_families_table():
    # The bring-your-own csv_table example explains with one method: its report printed the families table's
    # header "| method | all (N=0) ↓ |" and no row (no comparison group has two methods to rank).
    table = quickstart_like_table()
    one = table[table["method"] == "ig"]
    assert not [t for t in build_tables(summarize(one), ("metrics", "families")) if t.key == "families"]
    # nor a Friedman table of k = 1 rows holding only "-" (with a control too: controls are never ranked)
    from xaibench.report.build import analyse
    for methods in (["ig"], ["ig", "random"]):
        analysis = analyse(table[table["method"].isin(methods)], layouts=("metrics",))
        assert "friedman" not in [t.key for t in analysis.stat_tables] and len(analysis.friedman)
    two = [t for t in build_tables(summarize(table), ("families",)) if t.key == "families"]
    assert len(two) == 1 and two[0].rows


def test_a_method_not_applicable_in_a_shown_setting_says_why_under_its_table():
    # DeepLIFT on a TorchScript model (no hooks run) is not_applicable on every metric while the model's other
    # methods are scored: its row read n/a everywhere and no table, note or footnote of the report said why.
    table = quickstart_like_table()
    ig = table[table["method"] == "ig"]
    why = "method dl changes gradients with hooks, which a TorchScript model does not run"
    dl = ig.assign(method="dl", value=np.nan, status="not_applicable", message=why)
    tables = build_tables(summarize(pd.concat([table, dl], ignore_index=True)), ("metrics", "datasets"))
    assert "unscored" not in [t.key for t in tables]  # still no phantom "settings without any score" line
    for t in tables:
        assert {c.text for c in dict(t.rows)["dl"]} == {"n/a"} and f"n/a: dl not applicable: {why}." in t.notes
    assert not [n for t in build_tables(summarize(table), ("metrics",)) for n in t.notes if n.startswith("n/a")]


def test_dagger_marks_what_the_paired_test_does_not_separate_from_the_best_not_ci_overlap():
    # On tiny/digits saliency scores 0.01 below ig on every one of the 8 samples: the CIs overlap, yet the paired
    # Wilcoxon test separates them (exact p = 2/2**8, Holm over ig's 2 comparisons = 0.016). A paper reader takes †
    # for "not significantly different", so † follows the test at the report's alpha and the note names test and
    # correction.
    from xaibench.report.build import analyse

    table = quickstart_like_table()
    table = table[table["model"] == "tiny"]
    for alpha, dagger in ((0.05, False), (0.01, True)):
        md = to_markdown(next(t for t in analyse(table, layouts=("metrics",), alpha=alpha).tables))
        saliency = md_row(md, "saliency")[0]
        assert saliency.endswith("†") == dagger, (alpha, saliency)
        assert "paired Wilcoxon signed-rank test over the samples both methods scored, Holm-corrected" in md
        assert f"alpha = {alpha:g}" in md and "CI overlaps" not in md
        # The † footnote only under a table that shows a †; a table whose cells were all separated says so instead
        assert ("†" in md) == dagger, md
        assert ("No cell is marked: every non-bold cell differs significantly" in md) == (not dagger), md
    # From a summary alone (xaibench summary -o x.md) there is no test: † says only that the CIs overlap.
    alone = to_markdown(metrics_table(summarize(table)))
    assert md_row(alone, "saliency")[0].endswith("†") and "not a significance test" in alone


def test_dagger_corrects_over_the_columns_comparisons_with_its_best():
    # b vs the best a: p = 28/1024; Holm over a's 3 comparisons gives 0.027 (b differs from a: no †), Holm over all
    # 6 pairs 0.055 (it used to carry †). The footnote names the family.
    from tests.unit.test_statistics import four_methods_table
    from xaibench.report.build import analyse

    md = to_markdown(analyse(four_methods_table(), layouts=("metrics",)).tables[0])
    assert not md_row(md, "b")[0].rstrip(" |").endswith("†"), md
    # the family counts the control rows too (versus_best.csv tests them), while the Friedman table's k counts
    # methods only: "k methods" here read as the same k and undercounted the tests
    assert "Holm-corrected over the column's comparisons with its best (k - 1 tests for k rows, controls " \
        "included)" in md


def test_captions_state_the_number_of_samples_and_seeds():
    # Two seeds that scored the same 8 samples: n is 8 samples (each counted once), not 16 (seed, sample) values.
    one = quickstart_like_table()
    two = pd.concat([one, one.assign(seed=1)], ignore_index=True)
    summary = summarize(two)
    assert set(summary["n"]) == {6, 8} and set(summary["n_values"]) == {12, 16}  # saliency/sens: 2 NaN samples
    tables = {t.key: t for t in build_tables(summary, ("metrics", "datasets"))}
    assert "over n = 6-8 samples per cell and 2 seeds (a sample scored in several seeds counts once" in \
        tables["metrics-diabetes-mlp"].caption
    assert "over n = 8 samples and 2 seeds" in tables["metrics-digits-tiny"].caption
    assert "over n = 8 samples (percentile bootstrap over samples)" in metrics_table(summarize(one)[
        lambda s: s["model"] == "tiny"]).caption
    assert "n = 6-8 samples per cell" in tables["datasets-sens"].caption


def test_a_setting_without_any_score_is_listed_with_its_reason_not_dropped():
    # A CNN on tabular data is not applicable for every method; the result tables have no row for it, and a last
    # table says so (in every format), instead of the setting vanishing from the paper's tables.
    table = quickstart_like_table()
    na = table[table["model"] == "mlp"].assign(model="cnn", model_accuracy=np.nan, value=np.nan,
                                              status="not_applicable", sample_id="",
                                              message="model cnn does not take tabular inputs (takes image)")
    tables = build_tables(summarize(pd.concat([table, na], ignore_index=True)))
    assert tables[-1].key == "unscored" and all("cnn" not in t.caption for t in tables[:-1])
    (label, (methods, status, reason)), = tables[-1].rows
    assert label == "diabetes / cnn" and methods.text == "ig, saliency, random"
    assert status.text == "not_applicable (3)" and reason.text.startswith("model cnn does not take tabular")
    assert "diabetes / cnn" in to_latex(tables[-1]) and "not_applicable (3)" in to_markdown(tables[-1])
    # its words are left-aligned and wrap in LaTeX: one long reason on one line had the whole table shrunk to fit
    assert r"\begin{tabular}{lp{0.25\linewidth}p{0.25\linewidth}p{0.25\linewidth}}" in to_latex(tables[-1])
    assert "| --- | --- | --- | --- |" in to_markdown(tables[-1]) and '<td class="text">' in to_html(tables[-1])
    assert tables[-1].caption.startswith("Settings without any score, left out of the tables above")


def test_a_setting_whose_methods_are_not_applicable_for_different_reasons_lists_each_reason_with_its_methods():
    # paper16: the last table gave only the first reason, so a method that was not applicable for another reason
    # (grad_cam: no convolution; sobel: an image method) read as if the model's reason held for it too
    table = quickstart_like_table()
    na = table[table["model"] == "mlp"].assign(model="cnn", model_accuracy=np.nan, value=np.nan,
                                              status="not_applicable", sample_id="",
                                              message="model cnn does not take tabular inputs (takes image)")
    na.loc[na["method"] == "saliency", "message"] = "saliency needs a differentiable model"
    tables = build_tables(summarize(pd.concat([table, na], ignore_index=True)))
    (label, (methods, status, reason)), = tables[-1].rows
    assert reason.text == ("model cnn does not take tabular inputs (takes image) (ig, random); "
                           "saliency needs a differentiable model (saliency)")
    assert "each distinct reason" in tables[-1].caption and "first reason" not in tables[-1].caption
    same = build_tables(summarize(pd.concat([table, na.assign(message="one reason")], ignore_index=True)))
    assert same[-1].rows[0][1][2].text == "one reason"  # one reason for all: no method list


def test_a_method_not_applicable_in_a_scored_setting_shows_n_a_in_that_settings_table():
    """newuser12: ``method=saliency,sobel`` on breast_cancer listed "breast_cancer / mlp" under "Settings without any
    score", right below that setting's results: a method skipped as not applicable never builds the data (no
    dataset revision) nor resolves its metric parameters, so its rows formed a comparison group and a setting of
    their own (a phantom group). paper11: they join the group they were planned for and show n/a in its table."""
    from xaibench.report.build import analyse

    table = quickstart_like_table().assign(dataset_revision="r1", params='{"subset_size": 2}')
    mlp = table[(table["model"] == "mlp") & (table["method"] == "ig")]
    sobel = mlp.assign(method="sobel", dataset_revision="", params='{"subset_size": 0.25}', model_accuracy=np.nan,
                       value=np.nan, status="not_applicable", message="method sobel does not handle tabular inputs")
    joined = pd.concat([sobel, table], ignore_index=True)  # sobel's rows first: the caption keeps the accuracy
    analysis = analyse(joined, layouts=("metrics",))
    assert [t.key for t in analysis.tables] == ["metrics-diabetes-mlp", "metrics-digits-tiny"]  # no unscored table
    mlp_table = to_markdown(analysis.tables[0])
    assert "mlp on diabetes (test accuracy 0.95)" in mlp_table
    assert md_row(mlp_table, "sobel") == ["n/a", "n/a", "n/a |"]
    summary = analysis.summary
    assert summary.loc[summary["method"] == "sobel", "comparison"].isin(
        summary.loc[summary["method"] == "ig", "comparison"]).all()  # sobel is in ig's groups
    assert summary["comparison"].nunique() == 6  # 2 settings x 3 metrics, no phantom group
    # where the rows that ran hold two groups it could belong to (faith scored with two parameter variants), it
    # keeps its own group and is listed, with its reason, among the settings without any score
    variant = table[(table["model"] == "mlp") & (table["metric"] == "faith")].assign(params='{"subset_size": 3}')
    tables = analyse(pd.concat([table, variant, sobel], ignore_index=True), layouts=("metrics",)).tables
    (label, (methods, status, reason)), = tables[-1].rows
    assert (label, methods.text, status.text) == ("diabetes / mlp (other methods above)", "sobel", "not_applicable (1)")


def test_two_variants_of_a_model_have_captions_that_tell_them_apart():
    # mlp with hidden=[32] and hidden=[64] on one dataset: both tables were captioned "mlp on diabetes".
    table = quickstart_like_table()
    mlp = table[table["model"] == "mlp"]
    both = pd.concat([mlp.assign(model_params='{"hidden": [32]}'), mlp.assign(model_params='{"hidden": [64]}')],
                     ignore_index=True)
    captions = [t.caption for t in build_tables(summarize(both), ("metrics",))]
    assert [c.split(":")[0] for c in captions] == ["mlp on diabetes (model.hidden=[32]) (test accuracy 0.95)",
                                                   "mlp on diabetes (model.hidden=[64]) (test accuracy 0.95)"]


def test_the_runs_settings_are_bracketed_apart_from_the_datasets_parameters_in_captions_and_columns():
    # a sweep varying the dataset's own n_samples parameter and the run's n_samples setting: the run's setting was
    # in the dataset's parentheses, "(dataset.n_samples=100, n_samples=8)"; now in brackets, as JUnit names it
    table = quickstart_like_table()
    mlp = table[table["model"] == "mlp"]
    both = pd.concat([mlp.assign(dataset_params=f'{{"n_samples": {rows}}}', n_samples=explained)
                      for rows in (100, 200) for explained in (8, 16)], ignore_index=True)
    captions = [t.caption.split(" (test accuracy")[0] for t in build_tables(summarize(both), ("metrics",))]
    assert captions == [f"mlp on diabetes (dataset.n_samples={rows}) [n_samples={explained}]"
                        for rows in (100, 200) for explained in (16, 8)]
    (faith, *_) = build_tables(summarize(both), ("datasets",))
    assert "diabetes / mlp (dataset.n_samples=100) [n_samples=8]" in to_markdown(faith)
    from xaibench.report.console import format_summary

    assert " dataset.n_samples=100 [n_samples=8] " in format_summary(summarize(both))  # the console's variant
    # a table where only the run's setting differs: brackets alone; where nothing differs: the label as before
    only = [t.caption.split(" (test accuracy")[0] for t in build_tables(summarize(both[both["dataset_params"]
                                                                                      .str.contains("100")]),
                                                                         ("metrics",))]
    assert only == ["mlp on diabetes [n_samples=16]", "mlp on diabetes [n_samples=8]"]
    assert [t.caption.split(" (test accuracy")[0] for t in build_tables(summarize(mlp), ("metrics",))] == [
        "mlp on diabetes"]


def test_pairwise_tables_show_every_test_of_the_csv_in_markdown_and_latex():
    # The pairwise tests were only a CSV; a paper needs them as tables (appendix): per comparison group, each
    # method pair with n, W, p, both Holm families and the effect sizes, the same numbers as pairwise_tests.csv.
    from scipy import stats

    from xaibench.report.build import analyse
    from xaibench.report.tables.model import p_text

    table = quickstart_like_table().replace({"method": {"ig": "integrated_gradients"}})
    analysis = analyse(table, layouts=("metrics",))
    tables = {t.key: t for t in analysis.pair_tables}
    assert list(tables) == [f"pairwise-{setting}-{metric}" for setting in ("diabetes-mlp", "digits-tiny")
                            for metric in ("faith", "mprt", "sens")]
    best = analysis.versus_best.set_index(["comparison", "best", "method"])["p_holm"]
    for pair in analysis.pairs.itertuples():
        setting = "diabetes-mlp" if pair.model == "mlp" else "digits-tiny"
        cells = md_row(to_markdown(tables[f"pairwise-{setting}-{pair.metric}"]), f"{pair.method_a} vs {pair.method_b}")
        vs_best = [best.get((pair.comparison, a, b)) for a, b in ((pair.method_a, pair.method_b),
                                                                  (pair.method_b, pair.method_a))]
        vs_best = next((p for p in vs_best if p is not None), None)
        expected = [str(pair.n), f"{pair.statistic:g}", p_text(pair.p_value), p_text(pair.p_holm),
                    p_text(vs_best) if vs_best is not None else "-", f"{pair.rank_biserial:.3f}",
                    f"{pair.cles:.3f}", pair.winner or "-"]
        assert [c.strip(" |*") for c in cells] == expected, (pair.metric, pair.method_a, pair.method_b)
    # against scipy directly: saliency's 2 NaN samples on diabetes/sens leave 6 pairs
    values = table[(table["model"] == "mlp") & (table["metric"] == "sens")].pivot(index="sample_id", columns="method",
                                                                                   values="value").dropna()
    reference = stats.wilcoxon(values["integrated_gradients"] - values["saliency"])
    row = md_row(to_markdown(tables["pairwise-diabetes-mlp-sens"]), "integrated_gradients vs saliency")
    assert row[0] == "6" and row[2] == p_text(reference.pvalue) and row[3] == p_text(min(1.0, 2 * reference.pvalue))
    latex = to_latex(tables["pairwise-digits-tiny-faith"])
    assert "\\toprule" in latex and "\\label{tab:pairwise-digits-tiny-faith}" in latex
    assert "Pairwise tests, faith $\\uparrow$ on digits / tiny" in latex
    assert ("integrated\\_gradients vs random & 8 & 0 & 0.0078 & \\textbf{0.0234} & \\textbf{0.0156} & "
            "1.000 & 1.000 & integrated\\_gradients \\\\") in latex


def test_a_method_run_with_other_than_its_shipped_parameters_is_labelled_with_them():
    # method=variant/gradient records method=saliency with abs=false: the signed gradient. Alone in a table it was
    # labelled "saliency", the name of the absolute gradient; a label must say what the method is.
    from xaibench.results.groups import competitor_labels

    table = quickstart_like_table()
    params = {"saliency": '{"abs": false}', "ig": '{"n_steps": 64}', "random": "{}"}
    table["method"] = table["method"].replace({"ig": "integrated_gradients"})
    table["method_params"] = table["method"].map({"saliency": params["saliency"], "integrated_gradients":
                                                   '{"baseline": 0, "method": "gausslegendre", "n_steps": 32}',
                                                   "random": "{}"})
    summary = summarize(table)
    # integrated_gradients at its shipped defaults (a 0 recorded for the config's 0.0 is the same value) keeps its name
    assert set(summary["competitor"]) == {"saliency (abs=False)", "integrated_gradients", "random"}
    md = to_markdown(metrics_table(summary[summary["model"] == "mlp"]))
    assert md_row(md, "saliency (abs=False)") and "| saliency |" not in md
    from xaibench.report.console import format_summary  # the console table a sweep ends with, too

    assert "saliency (abs=False)" in format_summary(summary)
    # the shipped saliency (abs: true) keeps its name; a method without a shipped config (bring your own) too
    frame = pd.DataFrame({"method": ["saliency", "saliency", "my_method", "integrated_gradients"],
                          "method_params": ['{"abs": true}', '{"abs": true}', '{"abs": false}', '{"n_steps": 64}']})
    assert list(competitor_labels(frame)) == ["saliency", "saliency", "my_method", "integrated_gradients (n_steps=64)"]
    both = pd.DataFrame({"method": ["saliency", "saliency"], "method_params": ['{"abs": true}', '{"abs": false}']})
    assert list(competitor_labels(both)) == ["saliency (abs=True)", "saliency (abs=False)"]
    # keys that annotate rather than set a method (its role, parameters unused on the data) are never in a label,
    # even where some rows lack them (rows stored before they were recorded)
    annotated = pd.DataFrame({"method": ["random", "random", "occlusion", "occlusion"],
                              "method_params": ['{"role": "control"}', "{}", '{"unused_params": ["stride"]}', "{}"]})
    assert list(competitor_labels(annotated)) == ["random", "random", "occlusion", "occlusion"]


def test_the_report_body_shows_each_method_against_the_best_and_every_pair_goes_to_the_appendix(tmp_path):
    # A report printed every pair of every comparison group in its body (16 tables of 15 pairs for 6 methods on 4
    # settings x 4 metrics). The body now has one table per setting, shaped like its results table: each method's
    # Holm p against its column's best (the test behind †) and the rank-biserial r; every pair is in the appendix.
    from scipy import stats

    from tests.unit.test_statistics import four_methods_table
    from xaibench.report.build import analyse, write_report

    table = four_methods_table()
    value = table.set_index(["method", "sample_id"])["value"]
    raw = {m: stats.wilcoxon(value["a"].to_numpy() - value[m].to_numpy()).pvalue for m in "bcd"}
    holm_b = max(min(1.0, 3 * raw["c"]), min(1.0, 2 * raw["d"]), raw["b"])  # Holm by hand: b has the largest p
    d = value["a"].to_numpy() - value["b"].to_numpy()
    ranks = stats.rankdata(np.abs(d))
    r_b = (ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum()  # Kerby 2014: 43/55, a (the best) better
    assert holm_b == pytest.approx(28 / 1024) and r_b == pytest.approx(43 / 55)
    for alpha, dagger in ((0.05, False), (0.01, True)):
        analysis = analyse(table, layouts=("metrics",), alpha=alpha)
        (versus,) = analysis.best_tables
        md = to_markdown(versus)
        assert md_row(md, "a")[0].strip(" |") == "**best**"
        assert md_row(md, "b")[0].strip(" |") == f"{holm_b:.4f} ({r_b:.3f})" + ("†" if dagger else "")
        assert md_row(md, "c")[0].strip(" |") == f"{min(1.0, 3 * raw['c']):.4f} (1.000)"  # c below a everywhere
        assert ("p Holm >= alpha = 0.01" in md) == dagger
    files = {p.name for p in write_report(analysis, tmp_path, formats=("md", "latex", "html"))}
    assert files == {"report.md", "appendix_pairwise.md", "tables.tex", "appendix_pairwise.tex", "report.html"}
    body, appendix = (tmp_path / "report.md").read_text(), (tmp_path / "appendix_pairwise.md").read_text()
    assert "## Tests against the best" in body and "| b vs c |" not in body and "appendix_pairwise.md" in body
    assert "| b vs c |" in appendix and "| a vs b |" in appendix  # all 6 pairs, b vs c included
    tex, html = (tmp_path / "tables.tex").read_text(), (tmp_path / "report.html").read_text()
    assert "tab:versus-best-" in tex and "b vs c" not in tex
    assert "b vs c" in (tmp_path / "appendix_pairwise.tex").read_text()
    assert "<details><summary><h2>Every pairwise test (1 table)</h2></summary>" in html and "b vs c" in html


def test_every_shipped_method_config_keeps_its_plain_name_on_every_modality():
    # Labels name parameters that differ from the shipped config: what a default run records (its parameters as
    # the rows write them, per modality) must not differ from it, or every label would grow parameters.
    import glob
    import json

    import yaml

    from xaibench.engine.canonical import recorded_method
    from xaibench.results.groups import competitor_labels

    for path in sorted(glob.glob("conf/method/*.yaml")):
        section = yaml.safe_load(open(path))
        for modality in (None, "tabular", "image", "text", "time_series"):
            params = {k: v for k, v in recorded_method(section, modality).items() if k != "name"}
            frame = pd.DataFrame({"method": [section["name"]], "method_params": [json.dumps(params, sort_keys=True)]})
            assert competitor_labels(frame).iloc[0] == section["name"], (path, modality)


def test_a_metric_without_any_score_is_listed_not_a_crash():
    # metrics=faithfulness on tabular data: IROF, ROAD, ... are not applicable in every setting. The datasets layout
    # used to take int(NaN) for such a metric's sample count (ValueError: `xaibench report` and the W&B sweep
    # run failed); its column stays n/a in the metrics tables and the last table names it with the reason.
    table = quickstart_like_table()
    na = table[table["metric"] == "faith"].assign(metric="irof", value=np.nan, status="not_applicable",
                                                 sample_id="", message="irof needs image inputs")
    summary = summarize(pd.concat([table, na], ignore_index=True))
    tables = {t.key: t for t in build_tables(summary)}
    assert "datasets-irof" not in tables and {"datasets-faith", "datasets-sens"} <= set(tables)
    mlp = tables["metrics-diabetes-mlp"]
    column = [c.name for c in mlp.columns].index("irof")
    assert {cells[column].text for _, cells in mlp.rows} == {"n/a"}
    rows = dict(tables["unscored"].rows)
    methods, status, reason = rows["metric irof"]
    assert methods.text == "ig, saliency, random" and status.text == "not_applicable (3)"
    assert reason.text == "irof needs image inputs"
    assert "metric irof" in to_markdown(tables["unscored"]) and "diabetes / mlp" not in rows


def _one_column(values: dict[str, np.ndarray]) -> pd.DataFrame:
    """A conformed table of one metric column (mlp/digits, seed 0): ``{method: per-sample values}``, NaN as status
    ``nan``."""
    from tests.unit.report_fixtures import _defaults
    from xaibench.results.schema import conform

    return conform(pd.concat([pd.DataFrame({
        **_defaults(), "schema_version": 1, "model": "mlp", "dataset": "digits", "method": method, "metric": "faith",
        "family": "faithfulness", "higher_is_better": True, "sample_id": [f"s{i}" for i in range(len(v))], "seed": 0,
        "value": v, "status": np.where(np.isnan(v), "nan", "ok"), "params": "{}", "method_params": "{}",
        "model_params": "{}", "dataset_params": "{}", "n_samples": len(v), "model_accuracy": 0.95,
        "cell_key": method}) for method, v in values.items()], ignore_index=True))


def test_a_best_whose_mean_skips_its_nan_samples_is_not_bold_over_a_method_better_on_the_shared_samples():
    # a scores NaN on the two hard samples (8, 9), so its mean (0.70) is over the easy ones only; b, scored
    # everywhere (0.64), beats a on each of their 8 shared samples. Ranked on the means, a was bold and b carried
    # the `s` mark. Ranks now compare the methods on the 8 samples all three scored: b is bold and a, worse on every
    # one of them (exact two-sided p = 2/2**8, Holm over the best's 2 comparisons 0.016, r = 1), is not.
    from xaibench.report.build import analyse

    n, wiggle = 10, np.linspace(0.0, 0.009, 10)
    values = {"a": np.r_[np.full(8, 0.70), np.nan, np.nan] + wiggle, "b": np.r_[np.full(8, 0.80), 0.0, 0.0] + wiggle,
              "c": np.full(n, 0.10) + wiggle}
    analysis = analyse(_one_column(values), layouts=("metrics",))
    test = analysis.versus_best.set_index("method").loc["a"]
    assert test["best"] == "b" and test["n"] == 8 and test["separated"] and test["rank_biserial"] == 1.0
    assert test["p_holm"] == pytest.approx(2 * 2 / 2 ** 8)
    results = to_markdown(analysis.tables[0])
    assert md_row(results, "b")[0].startswith("**0.64") and md_row(results, "a")[0].startswith("0.70")
    assert "<sup>s</sup>" not in results
    assert "as few as 8 of 10 (faith for digits / mlp)" in results


def test_a_cell_significantly_better_than_the_bold_best_on_shared_samples_is_marked_not_read_as_worse():
    # The ranks compare a, b and c on the samples all three scored (s0, s1: c lacks the others), where a is best;
    # the paired test of a and b uses the 10 samples both scored, on 8 of which b is better by far: b is
    # significantly better than the bold a (r < 0). Without `s` the table read "b differs significantly from the
    # best", i.e. worse.
    from xaibench.report.build import analyse

    wiggle = np.linspace(0.0, 0.009, 10)
    values = {"a": np.r_[0.71, 0.71, np.full(8, 0.5)] + wiggle, "b": np.r_[0.70, 0.70, np.full(8, 0.8)] + wiggle,
              "c": np.r_[0.1, 0.1, np.full(8, np.nan)]}
    analysis = analyse(_one_column(values), layouts=("metrics",))
    test = analysis.versus_best.set_index("method").loc["b"]
    assert test["best"] == "a" and test["n"] == 10 and test["separated"] and test["rank_biserial"] < 0
    results = to_markdown(analysis.tables[0])
    assert md_row(results, "a")[0].startswith("**0.5") and md_row(results, "b")[0].endswith("<sup>s</sup> |")
    assert "s significantly better than its column's best on the samples both scored" in results
    versus = to_markdown(analysis.best_tables[0])
    assert md_row(versus, "b")[0].endswith("<sup>s</sup> |") and "s significantly better" in versus
    latex = to_latex(analysis.tables[0])
    assert r"\textsuperscript{s}" in latex and "s significantly better" in latex


def test_with_tied_bests_the_s_mark_follows_the_test_that_decides_as_in_the_tests_against_the_best():
    # a and b tie for best on the one sample all four scored (s19: d lacks the others); c beats a on their 20
    # shared samples (19 of 20) but not b (mixed signs). The tests-against-the-best table shows c's least separated
    # test (vs b: no s); the results table marked c `s` from its test against a: the two tables disagreed (review12).
    from xaibench.report.build import analyse

    wiggle = np.linspace(0.0, 0.019, 20)
    values = {"a": np.r_[np.full(19, 0.70), 0.9] + wiggle, "b": np.r_[np.tile([1.0, 0.4], 9), 1.0, 0.9] + wiggle,
              "c": np.r_[np.full(19, 0.80), 0.5] + wiggle, "d": np.r_[np.full(19, np.nan), 0.0]}
    analysis = analyse(_one_column(values), layouts=("metrics",))
    tests = analysis.versus_best[analysis.versus_best["method"] == "c"].set_index("best")
    assert set(tests.index) == {"a", "b"} and tests.loc["a", "separated"] and tests.loc["a", "rank_biserial"] < 0
    assert not tests.loc["b", "separated"]
    results, versus = to_markdown(analysis.tables[0]), to_markdown(analysis.best_tables[0])
    assert md_row(results, "a")[0].startswith("**") and md_row(results, "b")[0].startswith("**")
    assert "<sup>s</sup>" not in md_row(results, "c")[0] and "<sup>s</sup>" not in md_row(versus, "c")[0]


def test_the_average_ranks_of_the_friedman_table_and_cd_diagrams_are_in_a_csv():
    # c has no score on d2, so Friedman (and the CD diagram drawn from its result) ranks over the 2 complete groups
    # (a 1, b 2, c 3) while average_ranks.csv averages every group a method was ranked in (a 4/3, b 5/3): the
    # diagram's numbers were in no file.
    from tests.unit.report_fixtures import _defaults
    from xaibench.report.build import analyse, csv_frames
    from xaibench.results.schema import conform

    means = {"d0": {"a": 0.9, "b": 0.5, "c": 0.1}, "d1": {"a": 0.9, "b": 0.5, "c": 0.1}, "d2": {"a": 0.1, "b": 0.9}}
    table = conform(pd.concat([pd.DataFrame({
        **_defaults(), "schema_version": 1, "model": "mlp", "dataset": dataset, "method": method, "metric": "faith",
        "family": "faithfulness", "higher_is_better": True, "sample_id": [f"s{i}" for i in range(4)], "seed": 0,
        "value": mean + np.arange(4) * 0.01, "status": "ok", "params": "{}", "method_params": "{}",
        "model_params": "{}", "dataset_params": "{}", "n_samples": 4, "model_accuracy": 0.95,
        "cell_key": f"{dataset}-{method}"})
        for dataset, methods in means.items() for method, mean in methods.items()], ignore_index=True))
    analysis = analyse(table, layouts=("metrics",))
    frames = csv_frames(analysis)
    ranks = frames["friedman_ranks"]
    overall = ranks[ranks["scope"] == "all"].set_index("method")
    assert overall["avg_rank"].to_dict() == analysis.friedman["all"].avg_ranks.to_dict() == {"a": 1, "b": 2, "c": 3}
    assert (overall["n_blocks"] == 2).all()
    elsewhere = frames["average_ranks"].query("by == 'all'").set_index("method")["avg_rank"]
    assert elsewhere.to_dict() == pytest.approx({"a": 4 / 3, "b": 5 / 3, "c": 3.0})
    friedman = next(t for t in analysis.stat_tables if t.key == "friedman")
    assert any("over the N complete groups (friedman_ranks.csv)" in note for note in friedman.notes)


NOISE_CONTROL = '''
from dataclasses import dataclass

import torch

from xaibench.explainers.base import Explainer
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation


@EXPLAINERS.register("noise_control")
@dataclass(frozen=True)
class NoiseControl(Explainer):
    """A user's own control: every map puts all its weight on the first feature, whatever the model."""

    control = True

    def explain(self, model, x, target):
        return Explanation(torch.zeros_like(x).index_fill_(1, torch.tensor([0]), 1.0))
'''


def test_a_users_own_control_is_a_control_in_the_tables_statistics_and_figures(monkeypatch, tmp_path, request):
    """roles10: the report knew controls by name (random, constant, sobel). A user's control registered through
    $XAIBENCH_PLUGINS (``control = True``) was listed, ranked and bolded first as a competitor without the control
    warning, not checked as a control and not hatched, while a user's method merely named ``random`` was all of
    those. Now both follow the role the rows record."""
    import sys

    import matplotlib
    import torch

    import xaibench
    from xaibench import registry
    from xaibench.report.build import analyse
    from xaibench.report.figure_set import summary_figures

    (tmp_path / "noise_plugin.py").write_text(NOISE_CONTROL)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("XAIBENCH_PLUGINS", "noise_plugin")
    monkeypatch.setattr(registry.EXPLAINERS, "_entries", dict(registry.EXPLAINERS._entries))  # restored after
    monkeypatch.setattr(registry.EXPLAINERS, "_loaded", False)  # its next lookup loads $XAIBENCH_PLUGINS too
    request.addfinalizer(lambda: sys.modules.pop("noise_plugin", None))
    torch.manual_seed(0)
    net, x = torch.nn.Linear(4, 2), torch.randn(12, 4)
    y = torch.arange(12) % 2
    control = xaibench.explain(net, x, method="noise_control")
    assert control[:, 0].eq(1).all() and control[:, 1:].eq(0).all()
    table = pd.concat([
        xaibench.evaluate(net, x, y, control, metrics=["sparseness"], method="noise_control"),
        xaibench.evaluate(net, x, y, xaibench.explain(net, x, method="saliency"), metrics=["sparseness"],
                          method="saliency"),
        # the user's own real method, which they happened to call "random": dense maps, the least sparse
        xaibench.evaluate(net, x, y, x.abs() + 1.0, metrics=["sparseness"], names={"method": "random"}),
    ], ignore_index=True)
    roles = table.drop_duplicates("method").set_index("method")["method_params"]
    assert '"role": "control"' in roles["noise_control"] and '"role"' not in roles["random"]

    analysis = analyse(table)
    assert set(analysis.controls["control"]) == {"noise_control"}  # statistics: checked against the control
    assert set(analysis.controls["method"]) == {"random", "saliency"}
    (warning,) = analysis.warnings  # the one-hot control is the sparsest: it ranks first, and the reader is told
    assert "sparseness" in warning and "(noise_control)" in warning
    markdown = to_markdown(next(t for t in analysis.tables if t.key.startswith("metrics-")))
    assert [line.split(" | ")[0][2:] for line in markdown.splitlines()
            if line.startswith("| ") and not line.startswith(("| method", "| ---"))] == \
        ["random", "saliency", "noise_control"]  # controls last, a method called random among the methods
    assert "| method | sparseness ↑<sup>c</sup> |" in markdown and \
        "Warning (c): the control noise_control scores as well as the best method or better on" in markdown
    controls_table = next(t for t in analysis.stat_tables if t.key == "controls")
    assert [name for name, _ in controls_table.rows] == ["random", "saliency"] and "(noise_control;" in \
        controls_table.caption

    figure = summary_figures(analysis.summary)["metric_scores"]
    legend = figure.legends[0]
    hatched = {t.get_text(): h.get_hatch() for t, h in zip(legend.get_texts(), legend.legend_handles)}
    assert hatched == {"random": None, "saliency": None, "noise_control": "////"}  # legend order: control last
    bars = [c for c in figure.axes[0].collections if isinstance(c, matplotlib.collections.PatchCollection)]
    assert sorted(str(c.get_hatch()) for c in bars) == ["////", "None", "None"]  # one bar per method


def test_a_table_whose_ranks_leave_out_samples_says_so():
    # saliency scored NaN on 2 of the 8 samples of diabetes / mlp on sens: bold and ranks compare the three methods
    # on the 6 samples all three scored, and the table says how many it left out.
    from xaibench.report.build import analyse

    analysis = analyse(quickstart_like_table(), layouts=("metrics",))
    mlp, tiny = (to_markdown(t) for t in analysis.tables)
    assert ("Bold and ranks compare the methods of a column on the samples every one of them scored (a method's NaN "
            "scores or failed seeds leave those samples out for all; the cells' means are over each method's own "
            "samples): 1 column(s) rank on fewer than all samples, as few as 6 of 8 (sens for diabetes / mlp); "
            "shared_n and group_n in summary.csv.") in mlp
    assert "Bold and ranks compare" not in tiny  # nothing left out there
    sens = analysis.summary[(analysis.summary["metric"] == "sens") & (analysis.summary["model"] == "mlp")]
    assert sens[["shared_n", "group_n"]].drop_duplicates().to_numpy().tolist() == [[6, 8]]


@pytest.mark.parametrize("tall", [False, True])
def test_the_console_summary_lists_controls_last_as_the_report_does(summary, monkeypatch, tall):
    # The console listed methods alphabetically, the random control between ig and saliency; every report table
    # lists the controls last.
    from xaibench.report import console

    monkeypatch.setattr(console, "MAX_WIDE", 1 if tall else 99)  # one line per metric, or methods x metrics
    lines = console.format_summary(summary).splitlines()
    methods = [m for line in lines for m in ("ig", "saliency", "random") if f" {m} " in f" {line} "]
    assert methods[:3] == ["ig", "saliency", "random"]
    tables = to_markdown(build_tables(summary, ("metrics",))[0])
    rows = [line.split(" | ")[0][2:] for line in tables.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == ["ig", "saliency", "random"]


def test_a_control_first_on_a_stability_metric_is_warned_as_by_construction_not_as_not_discriminating():
    # The constant control is first on every stability metric (its map ignores the input); the report's top warning
    # said so, while each table's line and footnote said the metric "does not discriminate between methods".
    table = quickstart_like_table()
    first = (table["model"] == "mlp") & (table["metric"] == "sens") & (table["method"] == "random")
    table.loc[first, "value"] = 0.0  # lower is better: random ranks first on sens (stability) and on mprt
    text = to_markdown(metrics_table(summarize(table)[lambda s: s["model"] == "mlp"]))
    assert ("Warning (c): the control random (noise drawn independently of the model) scores as well as the best method "
            "or better on sens for diabetes / mlp. A map that does not depend on the model changes little (constant: "
            "not at all) when the input is perturbed, so a stability metric rates it well without it explaining the "
            "model: read stability together with faithfulness and randomisation.") in text
    assert ("Warning (c): the control random (noise drawn independently of the model) scores as well as the best method "
            "or better on mprt for diabetes / mlp. On this data the metric does not tell the methods apart") in text
    assert "the Warning (c) line above names the control" in text  # the mark's legend, not the reasons again


def test_the_control_warning_names_sobel_and_says_plainly_why_it_can_be_first():
    """paper19: the tables' line read "c WARNING: a control matches or beats the best method on sens for ...:
    perfectly stable by construction (a map that ignores the input)": a bare mark letter glued to WARNING, no
    control named, and for sobel a reason that is not true (its map is an edge map of the input; it ignores the
    model). Now the line starts "Warning (c)", names the control and what its map is, and says why in a sentence."""
    table = quickstart_like_table()
    table["method"] = table["method"].replace({"random": "sobel"})
    table.loc[(table["model"] == "mlp") & (table["metric"] == "sens") & (table["method"] == "sobel"), "value"] = 0.0
    text = to_markdown(metrics_table(summarize(table)[lambda s: s["model"] == "mlp"]))
    assert ("Warning (c): the control sobel (an edge map of the input, blind to the model) scores as well as the best "
            "method or better on sens for diabetes / mlp. " + _STABLE_WHY) in text
    assert "c WARNING" not in text and "ignores the input" not in text
    assert "| sens ↓<sup>c</sup> |" in text


def test_the_top_control_warning_names_the_setting_as_the_tables_do():
    """newuser19: a report's top line said "... on max_sensitivity for mlp/iris (constant)" and its table's Warning (c)
    line under it "... for iris / mlp": the same setting spelt two ways, model first at the top, dataset first in
    every table, caption and figure. Both now say "diabetes / mlp" (the console's line is the top one)."""
    from xaibench.report.build import analyse, markdown_report

    table = quickstart_like_table()
    table.loc[(table["metric"] == "sens") & (table["method"] == "random"), "value"] = 0.0
    analysis = analyse(table)
    top = next(w for w in analysis.warnings if "sens" in w)
    assert "on sens for diabetes / mlp (random), digits / tiny (random): " in top
    assert "mlp/diabetes" not in markdown_report(analysis, "t")
    assert any("on sens for diabetes / mlp. " in w for w in analysis.tables[0].warnings)


_STABLE_WHY = ("A map that does not depend on the model changes little (constant: not at all) when the input is "
               "perturbed, so a stability metric rates it well without it explaining the model: read stability "
               "together with faithfulness and randomisation.")


def test_a_control_ahead_on_several_stability_metrics_is_warned_once_per_reason_naming_the_metrics():
    """paper16: the constant control on five stability metrics put five lines of the same words at the top of the
    report, and each table repeated the reason for every column (`... on a for breast_cancer / mlp, b for
    breast_cancer / mlp, ...`) and again in its footnote. Now: one line per reason at the top naming the metrics
    and settings, one per reason per table, the footnote only the mark's legend."""
    from xaibench.report.build import analyse, markdown_report
    from xaibench.results import statistics as st

    table = quickstart_like_table()
    table = pd.concat([table, table[table["metric"] == "sens"].assign(metric="sens2")], ignore_index=True)
    table.loc[table["metric"].isin(["sens", "sens2"]) & (table["method"] == "random"), "value"] = 0.0
    analysis = analyse(table)
    stable, other = analysis.warnings
    assert stable == ("WARNING: a control matches or beats the best method on sens, sens2 for diabetes / mlp (random), "
                      "digits / tiny (random): The control random (noise drawn independently of the model): a map that "
                      "does not depend on the model changes little (constant: not at all) when the input is perturbed, "
                      "so a stability metric rates it well without it explaining the model: read stability together "
                      "with faithfulness and randomisation")
    assert other.startswith("WARNING: a control matches or beats the best method on mprt for diabetes / mlp (random):")
    tables = {t.key: t for t in analysis.tables}
    assert [w for w in tables["metrics-diabetes-mlp"].warnings if "stability metric" in w] == [
        "Warning (c): the control random (noise drawn independently of the model) scores as well as the best method "
        "or better on sens, sens2 for diabetes / mlp. " + _STABLE_WHY]
    assert "on sens, sens2 for diabetes / mlp, digits / tiny" in " ".join(tables["families"].warnings)
    report = markdown_report(analysis, "t")
    # once at the top, once in each of the 5 tables with a stability column (2 settings, 2 metrics, families)
    # once at the top (statistics.control_warnings: it said "(the constant control) is perfectly stable by
    # construction" of every control), once in each of the 5 tables with a stability column
    assert "perfectly stable by construction" not in report and report.count("The control random (noise") == 1
    assert report.count(_STABLE_WHY) == 5
    # metrics that differ in where the control is ahead are grouped by their places
    assert st.metrics_where([("a", "x"), ("b", "x"), ("b", "y"), ("c", "x")]) == "a, c for x; b for x, y"


def test_a_control_with_the_best_mean_is_a_reference_row_not_the_best_that_methods_are_tested_against():
    """paper14: the random control scores highest on mprt for diabetes / mlp (0.90; saliency 0.30, ig 0.20). It was
    the bold best that every method's † and tests ran against, rank 1 in the console and the CD diagrams. A paper's
    "best method" is the best non-control: controls are reference rows everywhere (bold, †, ranks, Friedman/CD,
    console), and a control at or ahead of the best method is flagged c."""
    from xaibench.report.build import analyse
    from xaibench.report.console import format_summary

    table = quickstart_like_table()
    analysis = analyse(table)
    summary = analysis.summary.set_index(["model", "metric", "competitor"])
    assert summary["rank"].loc[("mlp", "mprt")].to_dict() == {"ig": 2, "random": None, "saliency": 1}
    assert summary["rank"].xs("random", level="competitor").isna().all()  # never ranked, in any column
    versus = analysis.versus_best[(analysis.versus_best["model"] == "mlp") & (analysis.versus_best["metric"] == "mprt")]
    assert set(versus["best"]) == {"saliency"} and sorted(versus["method"]) == ["ig", "random"]  # k - 1 = 2 tests
    assert versus.set_index("method").loc["random", "rank_biserial"] < 0  # the control scores better: shown, tested
    mlp = to_markdown(analysis.tables[0])
    assert md_row(mlp, "saliency")[1].startswith("**") and "**" not in md_row(mlp, "random")[1]
    assert md_row(mlp, "random")[1].endswith("<sup>c</sup>")  # c: the control matches or beats the best method
    assert "controls (random; last rows) are references, never ranked or bold" in mlp
    # ranks, Friedman and the CD diagrams' average ranks compare the methods only
    assert "random" not in set(analysis.ranks["method"])
    assert all("random" not in r.avg_ranks.index for r in analysis.friedman.values())
    friedman = next(t for t in analysis.stat_tables if t.key == "friedman")
    assert any(note.startswith("k counts methods only: controls are reference rows") for note in friedman.notes)
    assert st_control_first(analysis.summary) == [("mlp", "mprt", "random")]
    # the console: ref, not a rank; metric columns by family (faithfulness, randomisation, stability) as the report
    text = format_summary(summarize(table))
    header = text.splitlines()[0].split()
    assert header == ["faith", "↑", "mprt", "↑", "sens", "↓"]
    random_line = next(line for line in text.splitlines() if " random " in line)
    assert random_line.count(" ref") == 3 and "#" not in random_line
    assert "WARNING: a control matches or beats the best method on mprt for diabetes / mlp (random)" in text


def st_control_first(summary):
    from xaibench.results.statistics import control_first

    first = control_first(summary)
    return [(summary.loc[summary["comparison"] == c, "model"].iloc[0], m, str(k))
            for c, m, k in zip(first["comparison"], first["metric"], first["control"])]


def test_every_table_figure_and_the_console_order_metrics_by_family_as_the_results_tables():
    """paper14: the results tables order metrics by family; the controls table, the rank heatmap, the metric-scores
    panels and the console ordered them alphabetically, so a stability metric named "a_sens" came first there."""
    from xaibench.report.build import analyse
    from xaibench.report.console import format_summary
    from xaibench.report.figure_set import summary_figures

    table = quickstart_like_table()
    table["metric"] = table["metric"].replace({"sens": "a_sens"})  # stability, first alphabetically
    analysis = analyse(table, layouts=("metrics", "datasets"))
    family_order = ["faith", "mprt", "a_sens"]  # faithfulness, randomisation, stability
    assert [c.name for c in analysis.tables[0].columns] == family_order
    # the datasets layout's tables (one per metric) came alphabetically: a_sens, faith, mprt
    assert [t.key for t in analysis.tables if t.key.startswith("datasets-")] == \
        [f"datasets-{m.replace('_', '-')}" for m in family_order]
    controls = next(t for t in analysis.stat_tables if t.key == "controls")
    assert [c.name for c in controls.columns] == family_order
    figures = summary_figures(analysis.summary, ranks=analysis.ranks[analysis.ranks["by"] == "metric"])
    heatmap = [t.get_text().split(" (N=")[0] for t in figures["rank_heatmap"].axes[0].get_xticklabels()]
    assert heatmap == family_order
    panels = [ax.get_title().split()[0] for ax in figures["metric_scores"].axes if ax.get_title()]
    assert panels == family_order
    assert format_summary(summarize(table)).splitlines()[0].split()[::2] == family_order


def test_a_caption_over_few_seeds_says_its_95_percent_ci_under_covers():
    """paper14: a table over 2 seeds was captioned "mean [95% CI]" with nothing more; where seeds differ more than
    samples, the percentile bootstrap over 2 seeds holds the true mean about 66% of the time
    (tests/unit/test_aggregate.py::test_two_seeds_ci_under_covers_where_seeds_dominate measures it)."""
    table = quickstart_like_table()
    two = pd.concat([table, table.assign(seed=1, value=table["value"] + 0.01)], ignore_index=True)
    caption = metrics_table(summarize(two)[lambda s: s["model"] == "mlp"]).caption
    assert ("with 2 seeds it under-covers where seeds differ more than samples: about 66% of such intervals hold "
            "the true mean") in caption
    assert "under-covers" not in metrics_table(summarize(table)[lambda s: s["model"] == "mlp"]).caption  # one seed


def test_a_control_better_than_the_best_method_in_the_tests_against_the_best_is_c_not_s():
    """paper14: the constant control, significantly more stable than the best method, was marked s in the tests
    against the best, whose note says "although ranked below it": a control is never ranked."""
    from xaibench.report.build import analyse

    table = quickstart_like_table()
    analysis = analyse(table[table["model"] == "mlp"], layouts=("metrics",))
    (versus,) = analysis.best_tables
    random = md_row(to_markdown(versus), "random")
    assert random[1].endswith("<sup>c</sup>") and "<sup>s</sup>" not in random[1]  # mprt: random is ahead
    assert any(note.startswith("c a control, a reference row that is never ranked") for note in versus.notes)
    assert not any("although ranked below it" in note for note in versus.notes)


def test_the_tests_against_the_best_state_their_shared_notes_once_and_only_the_c_reason_that_applies():
    """paper17: each setting's table of tests against the best repeated the same notes (where the tests are, the
    c note with both reasons in full), once per table. report.md/.html state the notes every table shares once,
    before the tables; each table keeps its own; the c note gives only the reason of its flagged columns (a
    stability metric here: "by construction", not also "does not discriminate"). LaTeX floats keep their notes."""
    from xaibench.report.build import analyse, html_report, markdown_report
    from xaibench.report.tables.render import latex_tables

    analysis = analyse(quickstart_like_table(), layouts=("metrics",))
    best = analysis.best_tables
    assert len(best) == 2
    shared = [n for n in best[0].notes if n in best[1].notes]
    assert any(n.startswith("These tests are in versus_best.csv") for n in shared)
    text = markdown_report(analysis, "r")
    section = text.split("## Tests against the best")[1]
    for note in shared:
        assert section.count(f"- {note}") == 1, note  # once for the section, not once per table
    assert "Notes for every table of this section:" in section
    assert html_report(analysis, (), "r").count("These tests are in versus_best.csv") == 1
    latex = latex_tables(list(best))
    assert latex.count("These tests are in versus\\_best.csv") == 2  # a float taken alone keeps its notes
    family = analysis.summary.drop_duplicates("metric").set_index("metric")["family"]
    flagged = 0
    for table in best:
        c_columns = {column.name for i, column in enumerate(table.columns)
                     if any("c" in cells[i].marks for _, cells in table.rows)}
        if not c_columns:
            continue
        (note,) = [n for n in table.notes if n.startswith("c ")]
        stability = {family[name] == "stability" for name in c_columns}
        assert ("does not depend on the model" in note) == (True in stability), note
        assert ("does not tell the methods apart" in note) == (False in stability), note
        flagged += 1
    assert flagged
    assert "in parentheses, the matched-pairs rank-biserial r" in best[0].caption


def test_the_report_traces_its_table_to_sweep_commit_and_command_or_says_what_is_unknown(tmp_path):
    """paper17: a report said nothing of where its numbers came from. Its provenance table gives the sweep, commit
    and versions the rows record, the grid of cells, and the sweep's command line from sweep.json where the table
    lies in its sweep folder; a table copied out of it keeps the rest and says that the command is unknown; a table
    whose rows record no provenance says "unknown" instead of a guess."""
    import json
    from pathlib import Path

    from xaibench.report.build import analyse, html_report, markdown_report
    from xaibench.report.provenance import provenance_table

    table = quickstart_like_table().assign(sweep_id="paper", git_sha="0123abc", xaibench_version="0.5.0",
                                           torch_version="2.13.0", captum_version="0.9.0", quantus_version="0.6.0",
                                           created_at="2026-12-01T21:05:13+00:00")
    folder = tmp_path / "runs" / "paper"
    folder.mkdir(parents=True)
    table.to_parquet(folder / "table.parquet")
    command = {"overrides": ["experiment=quickstart", "seed=0,1"], "multirun": True, "config_name": "config",
               "cwd": str(tmp_path), "plugins": ""}
    (folder / "sweep.json").write_text(json.dumps({"state": "finished", "expected_cells": 1, "command": command}))

    def facts(source, frame=table):
        """The report's provenance table (``analyse`` makes it with this call; the whole analysis, ~2 CPU-s, once
        below)."""
        provenance = provenance_table(frame, Path(source))
        return {label: cells[0].text for label, cells in provenance.rows}, provenance

    inside, provenance = facts(folder / "table.parquet")
    assert inside["sweep"] == "paper" and inside["xaibench commit (git_sha)"] == "0123abc"
    assert inside["sweep command"] == "xaibench -m experiment=quickstart seed=0,1"
    assert inside["cells"].startswith("model=") and "seed=0" in inside["cells"]
    assert facts(folder)[0]["sweep command"] == inside["sweep command"]  # the folder itself
    copied = tmp_path / "paper_tables" / "table.parquet"
    copied.parent.mkdir()
    copied.write_bytes((folder / "table.parquet").read_bytes())
    outside, provenance = facts(copied)
    assert outside["sweep"] == "paper" and outside["xaibench commit (git_sha)"] == "0123abc"
    assert outside["sweep command"].startswith(f"unknown: {copied} does not lie in its sweep folder")
    assert provenance.notes == ("Unknown: sweep command.",)
    bare, _ = facts(copied, table.assign(git_sha="", sweep_id=""))
    assert bare["xaibench commit (git_sha)"] == "unknown (the table records no git_sha)"
    assert bare["sweep"] == "unknown (the table records no sweep_id)"
    analysis = analyse(table, layouts=("metrics",), source=copied)
    assert analysis.provenance == facts(copied)[1]  # what the report shows is the table checked above
    assert "## Provenance" in markdown_report(analysis, "r") and "0123abc" in html_report(analysis, (), "r")


def test_the_provenance_command_is_the_one_that_reruns_the_sweep(tmp_path):
    """review18: the provenance table joined the recorded overrides with spaces: an override holding a space lost its
    quoting, a sweep of another config (``--config-name``) was shown as one of ``config``, and one of ``xaibench.run``
    as a shell command. It is ``compare``'s ``rerun_command``: what a shell (or Python) runs again."""
    import json

    from xaibench.report.build import analyse

    table = quickstart_like_table().assign(sweep_id="paper")
    folder = tmp_path / "runs" / "paper"
    folder.mkdir(parents=True)
    table.to_parquet(folder / "table.parquet")

    def shown(**command) -> str:
        record = {"overrides": ["dataset.path=my data/x.csv", "seed=0,1"], "multirun": True, "cwd": str(tmp_path),
                  "plugins": "", **command}
        (folder / "sweep.json").write_text(json.dumps({"state": "finished", "expected_cells": 1, "command": record}))
        provenance = analyse(table, layouts=("metrics",), source=folder / "table.parquet").provenance
        return {label: cells[0].text for label, cells in provenance.rows}["sweep command"]

    assert shown(config_name="paper") == "xaibench --config-name paper -m 'dataset.path=my data/x.csv' seed=0,1"
    assert shown(config_name="config", api=True) == \
        "xaibench.run(['dataset.path=my data/x.csv', 'seed=0,1'], multirun=True)"
