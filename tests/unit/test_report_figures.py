"""Paper figures: the properties a reader relies on (centred colour maps, one row per method, CD bars joining
exactly the methods within the critical difference, legible text, valid files), on small arrays made here."""
from __future__ import annotations

import itertools
import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from xaibench.report import figures
from xaibench.report.figures.cd_diagram import GROUP_GID

matplotlib.use("Agg")
RNG = np.random.default_rng(0)


def images(ax) -> list[AxesImage]:
    return [artist for artist in ax.get_children() if isinstance(artist, AxesImage)]


def visible_texts(figure):
    figure.canvas.draw()
    return [t for t in figure.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]


def assert_legible(figure, minimum_pt: float = 5.5) -> None:
    small = [(t.get_text(), t.get_fontsize()) for t in visible_texts(figure) if t.get_fontsize() < minimum_pt]
    assert not small, f"text below {minimum_pt} pt at print size: {small[:3]}"


def assert_no_overlap(texts) -> None:
    renderer = texts[0].figure.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"{a!r} overlaps {b!r}"


def test_image_gallery_has_one_row_per_method_and_centred_maps():
    x = RNG.normal(size=(3, 1, 8, 8))
    maps = {"saliency": RNG.normal(size=x.shape) + 0.5, "integrated_gradients": RNG.normal(size=x.shape)}
    figure = figures.attribution_gallery(x, maps, modality="image", sample_ids=["digits-00001", "digits-00012",
                                                                                 "digits-00100"], targets=[0, 1, 2])
    grid = np.array([ax for ax in figure.axes if ax.get_subplotspec() is not None]).reshape(3, 3)
    assert [grid[r, 0].get_ylabel() for r in range(3)] == ["input", "saliency", "integrated\ngradients"]
    for row, method in ((1, "saliency"), (2, "integrated_gradients")):
        for j in range(3):
            (image,) = images(grid[row, j])
            norm = image.norm
            assert norm.vmin == -norm.vmax == -np.abs(maps[method][j].sum(axis=0)).max()
            assert norm(0.0) == pytest.approx(0.5)  # zero is the colour map's centre (white)
            np.testing.assert_allclose(image.get_array(), maps[method][j].sum(axis=0))
    headings = [grid[0, j].title for j in range(3)]
    assert [h.get_text() for h in headings] == ["sample 00001\nclass 0", "sample 00012\nclass 1", "sample 00100\nclass 2"]
    assert_no_overlap(headings)
    assert_legible(figure)


def test_vit_maps_show_the_patch_grid():
    x = RNG.normal(size=(2, 1, 8, 8))
    figure = figures.attribution_gallery(x, {"rollout": np.abs(RNG.normal(size=x.shape))}, modality="image",
                                         patch_size=4)
    ax = figure.axes[2]  # row 1 (rollout), column 0
    lines = [line.get_xdata()[0] for line in ax.get_lines() if line.get_xdata()[0] == line.get_xdata()[1]]
    assert lines == [3.5]  # one vertical patch boundary inside an 8-pixel image with 4-pixel patches


def test_tabular_gallery_bars_are_signed_and_symmetric():
    x = RNG.normal(size=(2, 12))
    attributions = np.zeros((2, 12))
    attributions[:, 3], attributions[:, 7] = 2.0, -1.0
    figure = figures.attribution_gallery(x, {"ig": attributions}, modality="tabular", max_features=4,
                                         feature_names=[f"f{i}" for i in range(12)])
    ax = figure.axes[2]  # row 1, column 0
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["f3", "f7"]  # most attributed first
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    red, blue = bars[0].get_facecolor(), bars[1].get_facecolor()
    assert red[0] > red[2] and blue[2] > blue[0]  # positive red, negative blue
    low, high = ax.get_xlim()
    assert low == pytest.approx(-high)


def test_tabular_gallery_bar_lengths_and_colours_share_one_scale_per_map():
    """paper19: each bar was its raw attribution on the panel's own axis while its colour was scaled to the map's
    max |a|, so a bar of the same length could be dark in one panel and pale in the next. Now length and colour
    are both a / max |a| of the sample's map (over all features, shown or not); the panel gives max |a|."""
    from matplotlib import colormaps

    from xaibench.report.figures._style import SIGNED_CMAP

    x = RNG.normal(size=(2, 6))
    attributions = np.array([[8.0, -2.0, 1.0, 0.5, 0.0, 0.0], [0.2, 0.1, -0.4, 0.0, 0.0, 0.0]])
    figure = figures.attribution_gallery(x, {"ig": attributions}, modality="tabular", max_features=3,
                                         feature_names=[f"f{i}" for i in range(6)])
    for j, expected in enumerate(attributions):
        ax = figure.axes[2 + j]  # row 1 (ig), column j
        names = [t.get_text() for t in figure.axes[2].get_yticklabels()]
        shown = expected[[int(n[1:]) for n in names]]
        peak = np.abs(expected).max()
        bars = [p for p in ax.patches if isinstance(p, Rectangle)]
        lengths = np.array([b.get_width() for b in bars])
        np.testing.assert_allclose(lengths, shown / peak)
        colours = np.array([b.get_facecolor() for b in bars])
        np.testing.assert_allclose(colours, colormaps[SIGNED_CMAP]((lengths + 1) / 2))  # colour = length
        assert ax.get_xlim() == pytest.approx((-1.08, 1.08))
        assert f"max |a| = {peak:.3g}" in [t.get_text() for t in ax.texts]
    key = figure.axes[-1].get_xlabel()
    assert "bar length and colour: a / max |a| of its own map" in key


def test_gallery_rows_name_each_method_as_the_tables_do():
    # method=variant/gradient alone (saliency with abs false) was a gallery row "saliency"; two integrated-gradients
    # variants were rows listing all four of their parameters. The rows now carry the tables' competitor labels.
    from xaibench.report.explanation_figures import cell_gallery, method_labels
    from xaibench.results.explanations import CellExplanations

    def cell(name, **params):
        x = RNG.normal(size=(2, 1, 6, 6))
        return CellExplanations(model="cnn", dataset="digits", method=name, seed=0, modality="image",
                                sample_ids=("s0", "s1"), inputs=x, targets=np.array([0, 1]), attributions=x,
                                counterfactuals=None, method_params=params)

    ig = {"baseline": 0.0, "internal_batch_size": None, "method": "gausslegendre"}
    cells = [cell("saliency", abs=False), cell("integrated_gradients", n_steps=32, **ig),
             cell("integrated_gradients", n_steps=64, **ig), cell("random")]
    assert method_labels(cells) == ["saliency (abs=False)", "integrated_gradients (n_steps=32)",
                                     "integrated_gradients (n_steps=64)", "random"]
    rows = {t.get_text() for ax in cell_gallery(cells).axes for t in ax.texts + [ax.yaxis.label]}
    assert any("abs=False" in r for r in rows) and any("n_steps=64" in r for r in rows), rows
    assert not any("gausslegendre" in r for r in rows), rows
    # roles10: controls last by the role the rows record: a user's own control is, a method named random is not
    by_role = [cell("noise_control", role="control"), cell("random"), cell("saliency", abs=False)]
    order = [ax.yaxis.label.get_text().replace("\n", " ") for ax in cell_gallery(by_role).axes
             if ax.yaxis.label.get_text()]
    assert order == ["input", "random", "saliency (abs=False)", "noise control"], order  # labels wrapped at _


def test_time_series_gallery_draws_the_series_over_a_centred_heat_strip():
    x = RNG.normal(size=(2, 1, 50))
    a = RNG.normal(size=(2, 1, 50))
    figure = figures.attribution_gallery(x, {"saliency": a}, modality="time_series")
    ax = figure.axes[2]
    (strip,) = images(ax)
    assert strip.norm.vmin == -strip.norm.vmax and strip.get_array().shape == (1, 50)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), x[0, 0])


def test_text_gallery_colours_each_token():
    ids = np.array([[5, 9, 2, 7], [1, 1, 3, 4]])
    relevance = np.array([[0.0, 1.0, -1.0, 0.2], [0.5, 0.0, 0.0, -0.5]])
    figure = figures.attribution_gallery(ids, {"ig": relevance}, modality="text",
                                         tokens=[["the", "good", "bad", "film"], ["a", "a", "b", "c"]])
    ax = figure.axes[2]
    boxes = {t.get_text(): t for t in ax.texts}
    assert set(boxes) == {"the", "good", "bad", "film"}
    face = lambda t: t.get_bbox_patch().get_facecolor()  # noqa: E731
    assert face(boxes["the"])[:3] == pytest.approx(matplotlib.colormaps["RdBu_r"](0.5)[:3])
    assert face(boxes["good"])[0] > face(boxes["good"])[2] and face(boxes["bad"])[2] > face(boxes["bad"])[0]
    assert boxes["good"].get_color() == "white"  # dark background, light ink


def test_cd_groups_join_exactly_the_pairs_within_the_critical_difference():
    for trial in range(25):
        k = int(RNG.integers(3, 9))
        ranks = pd.Series(np.round(RNG.uniform(1, k, size=k), 2), index=[f"m{i}" for i in range(k)])
        cd = float(RNG.uniform(0.3, 2.5))
        groups = figures.cd_groups(ranks, cd)
        for a, b in itertools.combinations(ranks.index, 2):
            together = any(a in g and b in g for g in groups)
            assert together == (abs(ranks[a] - ranks[b]) < cd), (trial, a, b)
        assert not any(set(g) < set(h) for g in groups for h in groups)  # maximal groups only


def test_cd_diagram_draws_one_bar_per_group_spanning_its_members():
    ranks = pd.Series({"ig": 1.2, "saliency": 2.0, "smoothgrad": 2.6, "random": 4.4, "constant": 4.8})
    cd = 1.5
    figure = figures.cd_diagram(ranks, cd, title="faithfulness, N = 8")
    bars = [line for line in figure.axes[0].get_lines() if line.get_gid() == GROUP_GID]
    assert sorted(bar.get_label() for bar in bars) == ["ig/saliency/smoothgrad", "random/constant"]
    for bar in bars:
        members = bar.get_label().split("/")
        start, stop = bar.get_xdata()
        assert start == pytest.approx(ranks[members[0]] - 0.03) and stop == pytest.approx(ranks[members[-1]] + 0.03)
    labels = [t for t in figure.axes[0].texts if "(" in t.get_text()]
    assert {t.get_text() for t in labels} == {f"{m} ({r:.2f})" for m, r in ranks.items()}
    assert_no_overlap(labels)
    assert_legible(figure)


def test_metric_agreement_is_centred_and_grouped_by_family():
    metrics = ["sparseness", "faithfulness_correlation", "complexity", "pixel_flipping"]
    tau = pd.DataFrame(np.eye(4), index=metrics, columns=metrics)
    tau.loc["sparseness", "complexity"] = tau.loc["complexity", "sparseness"] = -0.4
    families = {"sparseness": "sparsity", "complexity": "sparsity", "faithfulness_correlation": "faithfulness",
                "pixel_flipping": "faithfulness"}
    figure = figures.metric_agreement(tau, families)
    ax = figure.axes[0]
    (image,) = images(ax)
    assert (image.norm.vmin, image.norm.vmax) == (-1, 1)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["faithfulness_correlation", "pixel_flipping",
                                                            "complexity", "sparseness"]
    assert image.get_array()[2, 3] == pytest.approx(-0.4)
    assert "-0.40" in {t.get_text() for t in ax.texts}
    assert_legible(figure)


def test_metric_agreement_colour_bar_label_fits_beside_its_bar():
    """paper19: the quickstart-sized (3-metric) agreement figure's colour bar label, "Kendall's τ between method
    rankings", ran past the top of the bar to the figure's edge; the label is now "Kendall's τ" (the caption
    says between what) and fits the bar's height."""
    metrics = ["faithfulness_correlation", "sparseness", "max_sensitivity"]
    tau = pd.DataFrame(np.eye(3), index=metrics, columns=metrics)
    figure = figures.metric_agreement(tau, {"faithfulness_correlation": "faithfulness", "sparseness": "sparsity",
                                            "max_sensitivity": "stability"})
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    bar = figure.axes[-1]
    label = bar.yaxis.label
    assert label.get_text() == "Kendall's \u03c4"
    assert label.get_window_extent(renderer).height <= bar.get_window_extent(renderer).height


def test_rank_heatmap_orders_methods_by_mean_rank():
    ranks = pd.DataFrame({"method": ["a", "a", "b", "b", "c", "c"], "scope": ["m1", "m2"] * 3,
                          "avg_rank": [3.0, 2.5, 1.0, 1.5, 2.0, 2.0]})
    figure = figures.rank_heatmap(ranks)
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "c", "a"]
    assert [t.get_text() for t in ax.texts] == ["1.0", "1.5", "2.0", "2.0", "3.0", "2.5"]


def summary_frame() -> pd.DataFrame:
    rows = []
    for dataset, method, mean in itertools.product(["iris", "wine"], ["ig", "random"], [None]):
        mean = 0.8 if method == "ig" else 0.1
        rows.append({"model": "mlp", "dataset": dataset, "method": method, "metric": "faithfulness_correlation",
                     "mean": mean, "ci_low": mean - 0.05, "ci_high": mean + 0.1, "higher_is_better": True})
    return pd.DataFrame(rows)


def score_bars(ax) -> list[tuple[float, float, float]]:
    """(left, width, height) of each bar of a metric-scores panel (a method's bars are one PatchCollection)."""
    return [(path.vertices[0][0], path.vertices[1][0] - path.vertices[0][0], path.vertices[2][1] - path.vertices[0][1])
            for collection in ax.collections if isinstance(collection, matplotlib.collections.PatchCollection)
            for path in collection.get_paths()]


def test_metric_scores_bars_carry_the_confidence_intervals():
    summary = summary_frame().assign(dataset_label=lambda f: f["dataset"].str.upper())
    figure = figures.metric_scores(summary)
    ax = figure.axes[0]
    assert ax.get_title() == "faithfulness_correlation \u2191"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["IRIS / mlp", "WINE / mlp"]  # display names
    assert sorted(round(height, 6) for _, _, height in score_bars(ax)) == [0.1, 0.1, 0.8, 0.8]
    whiskers = [c for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)]
    spans = sorted(round(float(seg[1][1] - seg[0][1]), 6) for coll in whiskers for seg in coll.get_segments())
    assert spans == [0.15] * 4  # ci_high - ci_low of every bar
    # the y axis says what bars and whiskers are, on the first panel of each row (a paper's PDF has no caption)
    assert ax.get_ylabel() == "mean score [95% CI]"
    assert_legible(figure)


def test_cost_points_average_the_table_and_plot_on_a_log_axis():
    table = pd.DataFrame({"model": "mlp", "dataset": "iris", "method": ["ig", "ig", "random", "random"],
                          "metric": "faithfulness_correlation", "status": "ok", "explain_s": [0.02, 0.04, 1e-4, 1e-4]})
    points = figures.cost_score_points(table, summary_frame(), "faithfulness_correlation")
    assert dict(zip(points["method"], points["cost"])) == pytest.approx({"ig": 0.03, "random": 1e-4})
    figure = figures.cost_vs_score(points, metric="faithfulness_correlation")
    assert figure.axes[0].get_xscale() == "log"
    assert figure.axes[0].get_ylabel() == "faithfulness_correlation \u2191"


def test_cost_points_are_per_competitor_and_the_legends_leave_the_axes_their_height():
    # Two variants of saliency (abs true / false) got one cost, the mean over both, and one colour; their
    # "method.abs=..." went into the experiment legend, which with 12 entries squashed the axes to a strip and
    # ran over the axis label.
    from xaibench.results.aggregate import summarize
    from tests.unit.report_fixtures import quickstart_like_table

    table = quickstart_like_table()
    table = table[table["method"] != "random"].replace({"method": {"ig": "saliency"}})
    table["method_params"] = np.where(table["cell_key"].str.contains("-ig"), '{"abs": false}', '{"abs": true}')
    table["explain_s"] = np.where(table["method_params"] == '{"abs": false}', 0.002, 0.0005)
    table.loc[table.index[table["method_params"] == '{"abs": true}'][:8], "explain_s"] = 0.0007  # first cell
    table = table.assign(metric=table["metric"].replace({"faith": "faithfulness_correlation"}))
    points = figures.cost_score_points(table, summarize(table), "faithfulness_correlation")
    ok = table[(table["metric"] == "faithfulness_correlation") & (table["status"] == "ok")]
    expected = ok.groupby(["model", "method_params"])["explain_s"].mean()  # by hand, per variant and model
    got = points.set_index(["group", "method"])["cost"]
    for (model, params), cost in expected.items():
        group = "diabetes / mlp" if model == "mlp" else "digits / tiny"
        label = f"saliency (abs={'False' if 'false' in params else 'True'})"
        assert got[(group, label)] == pytest.approx(cost)
    assert set(points["group"]) == {"diabetes / mlp", "digits / tiny"}  # no "method.abs=..." experiments
    many = pd.DataFrame([{"method": m, "group": f"dataset {g} / model\nmodel.hidden={g}", "cost": 1e-4 * (i + 1),
                          "score": 0.1 * i, "score_low": 0.0, "score_high": 0.2, "higher_is_better": True}
                         for i, m in enumerate(["a", "b", "c"]) for g in range(12)])
    figure = figures.cost_vs_score(many, metric="faithfulness_correlation")
    figure.canvas.draw()
    ax = figure.axes[0]
    assert ax.get_window_extent().height / figure.dpi >= 0.55 * figure.get_figwidth()  # was a strip
    # the markers' legend names what the tables name these groups (it said "experiment")
    assert [legend.get_title().get_text() for legend in figure.legends] == ["method", "dataset / model"]
    label, renderer = ax.xaxis.label, figure.canvas.get_renderer()
    for legend in figure.legends:
        assert not legend.get_window_extent(renderer).overlaps(label.get_window_extent(renderer))


def test_cost_legends_lie_inside_the_saved_figure(tmp_path):
    # The method legend below the axes was cut off the saved PNG/PDF (with five methods the last two were missing):
    # ax.add_artist clips it to the axes, so bbox_inches="tight" could leave it out of the saved area. A saved
    # figure keeps its white pad (pad_inches) on every side; a cut one has ink up to its edge.
    from PIL import Image

    methods = ["input_x_gradient", "integrated_gradients", "saliency", "smoothgrad", "random"]
    groups = ["breast_cancer / mlp", "digits / cnn", "digits / mlp"]
    points = pd.DataFrame([{"method": m, "group": g, "cost": 1e-4 * (i + 1) * (j + 1), "score": 0.1 * i,
                            "score_low": 0.1 * i - 0.05, "score_high": 0.1 * i + 0.05, "higher_is_better": True}
                           for i, m in enumerate(methods) for j, g in enumerate(groups)])
    png, _ = figures.save_figure(figures.cost_vs_score(points, metric="faithfulness_correlation"), tmp_path / "c")
    pixels = np.asarray(Image.open(png).convert("L"))
    pad = 4  # of the 6 pixels pad_inches=0.02 gives at 300 dpi
    for edge in (pixels[:pad], pixels[-pad:], pixels[:, :pad], pixels[:, -pad:]):
        assert edge.min() == 255


def test_counterfactual_examples_mark_changed_features():
    x = np.zeros((2, 5))
    cf = x.copy()
    cf[0, 2], cf[1, [0, 4]] = 1.5, -1.0
    figure = figures.counterfactual_examples(x, cf, modality="tabular", feature_names=list("abcde"),
                                             sample_ids=["s-1", "s-2"], valid=[1.0, 0.0])
    first, second = figure.axes[:2]
    assert first.get_title() == "sample 1: 1 of 5 features changed"
    assert second.get_title() == "sample 2 (not valid): 2 of 5 features changed"
    labels = first.get_yticklabels()
    assert labels[0].get_text() == "* c" and labels[0].get_fontweight() == "bold"
    assert all(not t.get_text().startswith("*") for t in labels[1:])
    x_image = RNG.random(size=(1, 1, 4, 4))
    cf_image = x_image.copy()
    cf_image[0, 0, 1, 2] += 2.0
    image_figure = figures.counterfactual_examples(x_image, cf_image, modality="image")
    (shown_x,), (shown_cf,), (difference,) = (images(ax) for ax in image_figure.axes[:3])
    # one grey scale for both: only the changed pixel looks different
    changed = np.argwhere(shown_x.norm(shown_x.get_array()) != shown_cf.norm(shown_cf.get_array()))
    assert changed.tolist() == [[1, 2]]
    assert difference.norm.vmin == -difference.norm.vmax


def test_counterfactual_examples_draw_every_diverse_counterfactual_of_a_sample():
    # DiCE stores K counterfactuals per sample, (N, K, F): the report of the README's counterfactual sweep crashed
    # (IndexError) drawing them as one. Each sample's panel shows all K; a feature is changed if any changed it.
    x = np.zeros((2, 5))
    cf = np.repeat(x[:, None, :], 3, axis=1)  # (2, 3, 5); the third of sample 1 is padding (x itself: not found)
    cf[0, 0, 2], cf[0, 1, 4], cf[1, :, 1] = 1.5, -0.5, 2.0
    figure = figures.counterfactual_examples(x, cf, modality="tabular", feature_names=list("abcde"),
                                             sample_ids=["s-1", "s-2"], valid=[2 / 3, 1.0])
    first, second = figure.axes[:2]
    assert first.get_title() == "sample 1: 2 of 5 features changed"
    assert second.get_title() == "sample 2: 1 of 5 features changed"
    legend, = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["input", "3 counterfactuals per sample (* = changed by any)"]
    assert [t.get_text() for t in first.get_yticklabels()][:2] == ["* c", "* e"]  # the larger change first
    arrows = [a for a in first.texts if a.arrow_patch is not None]
    assert len(arrows) == 3 * 5  # one arrow per counterfactual and shown feature
    triangles = first.collections[1:]
    assert len(triangles) == 3 and sorted(triangles[0].get_offsets()[:, 0].tolist()) == [0, 0, 0, 0, 1.5]


def test_surrogate_rules_name_features_and_state_fidelity():
    rules = "|--- x1 <= 0.50\n|   |--- class: 0\n|--- x1 >  0.50\n|   |--- class: 1\n"
    figure = figures.surrogate_rules(rules, 0.97, 0.95, feature_names=["age", "dose"], class_names=["no", "yes"])
    texts = [t.get_text() for t in figure.texts]
    assert texts[0] == "fidelity 97.0%, held out 95.0%"
    assert "dose <= 0.50" in texts[1] and "class: yes" in texts[1] and "x1" not in texts[1]
    low = figures.surrogate_rules(rules, 0.7)
    assert "low fidelity" in low.texts[0].get_text()


def test_save_figure_writes_valid_png_and_pdf(tmp_path):
    figure = figures.cd_diagram(pd.Series({"a": 1.0, "b": 2.0}), 0.5)
    paths = figures.save_figure(figure, tmp_path / "cd")
    assert [p.name for p in paths] == ["cd.png", "cd.pdf"]
    png, pdf = (p.read_bytes() for p in paths)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    from PIL import Image

    with Image.open(paths[0]) as image:
        assert 0.9 * 300 * figures.ONE_COLUMN_IN < image.width <= 300 * figures.ONE_COLUMN_IN + 20  # 300 dpi
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cd.pdf", "cd.png"]  # no temp files left


def test_a_figure_saved_again_later_has_the_same_bytes(tmp_path, monkeypatch):
    """A report rerun on the same table rewrote every PDF: matplotlib stamped each with the time it was written."""
    figure = figures.cd_diagram(pd.Series({"a": 1.0, "b": 2.0}), 0.5)
    saved = []
    for when, stem in (("1700000000", "first"), ("1800000000", "later")):  # the clock matplotlib reads
        monkeypatch.setenv("SOURCE_DATE_EPOCH", when)
        saved.append([p.read_bytes() for p in figures.save_figure(figure, tmp_path / stem)])
    assert saved[0] == saved[1]
    assert b"CreationDate" not in saved[0][1]


@pytest.mark.parametrize("costs", [(5.5e-5, 8.3e-4), (2e-4, 6e-4), (1e-4, 3e-1)])
def test_cost_axis_labels_do_not_overlap_and_name_at_least_two_decades(costs):
    # the report's cost_vs_faithfulness printed "2x10^-4 3x10^-4 4x10^-4 6x10^-4" on top of each other
    summary = pd.concat([summary_frame(), summary_frame().assign(method=lambda f: f["method"] + "2")])
    spread = np.geomspace(*costs, 4)
    table = pd.DataFrame({"model": "mlp", "dataset": "iris", "method": ["ig", "ig2", "random", "random2"],
                          "metric": "faithfulness_correlation", "status": "ok", "explain_s": spread})
    figure = figures.cost_vs_score(figures.cost_score_points(table, summary, "faithfulness_correlation"),
                                   metric="faithfulness_correlation")
    ax = figure.axes[0]
    figure.canvas.draw()
    low, high = ax.get_xlim()
    assert low <= spread.min() and spread.max() <= high  # every point in view
    labels = [t for t in ax.get_xticklabels(minor=False) + ax.get_xticklabels(minor=True)
              if t.get_text() and t.get_visible() and low <= t.get_position()[0] <= high]
    assert len(labels) >= 2
    assert_no_overlap(labels)


def test_image_panels_have_a_closed_thin_frame_not_an_l_bracket():
    x = RNG.normal(size=(2, 1, 6, 6))
    figure = figures.attribution_gallery(x, {"saliency": RNG.normal(size=x.shape)}, modality="image")
    panels = [ax for ax in figure.axes if ax.get_subplotspec() is not None and images(ax)]
    assert len(panels) == 4
    for ax in panels:
        assert all(spine.get_visible() for spine in ax.spines.values())
        assert {spine.get_linewidth() for spine in ax.spines.values()} == {0.4}


def test_metric_scores_pack_each_experiments_bars_and_keep_long_labels_off_other_panels():
    import warnings

    rows = []
    for g in range(6):  # six experiments with long names; "occ" only in the first, "ig" in two variants
        dataset = f"synthetic_dataset_number_{g}"
        methods = ["ig (n_steps=16)", "ig (n_steps=64)", "random"] + (["occ"] if g == 0 else [])
        for metric in ("faithfulness_correlation", "sparseness", "max_sensitivity", "pixel_flipping"):
            for i, competitor in enumerate(methods):
                mean = 0.2 + 0.1 * i
                rows.append({"model": "mlp", "dataset": dataset, "method": competitor.split(" ")[0],
                             "competitor": competitor, "metric": metric, "mean": mean,
                             "variant": f"method.{competitor[4:-1]}" if competitor.startswith("ig") else "",
                             "ci_low": mean - 0.05, "ci_high": mean + 0.05, "higher_is_better": True})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "Tight layout not applied"
        figure = figures.metric_scores(pd.DataFrame(rows))
    figure.canvas.draw()
    panels = [ax for ax in figure.axes if ax.get_title()]
    assert len(panels) == 4
    first = panels[0]
    bars = sorted((left + width / 2, height) for left, width, height in score_bars(first))
    assert len(bars) == 6 * 3 + 1  # one bar per scored (experiment, competitor): variants are bars of their own
    for g in range(1, 6):  # three bars centred on their experiment's tick, no slot left for the missing "occ"
        centres = [x for x, _ in bars if abs(x - g) < 0.5]
        assert len(centres) == 3 and np.mean(centres) == pytest.approx(g)
    renderer = figure.canvas.get_renderer()
    for ax in panels:
        labels = [t for t in ax.get_xticklabels() if t.get_text()]
        assert len(labels) == 6
        for label in labels:
            box = label.get_window_extent(renderer)
            for other in panels:
                if other is not ax:
                    assert not box.overlaps(other.get_window_extent(renderer)), (label.get_text(), other.get_title())
        # slanted labels are parallel: they do not touch when the tick spacing across them exceeds a line
        angle = np.radians(labels[0].get_rotation())
        spacing = np.diff([ax.transData.transform((x, 0))[0] for x in range(6)]).min()
        assert angle > 0 and spacing * np.sin(angle) > 1.2 * labels[0].get_fontsize() * figure.dpi / 72


def test_no_cd_diagram_from_a_single_comparison_group():
    from xaibench.report.figure_set import _cd_diagrams
    from xaibench.results import statistics as st

    def summary(n_groups):
        rows = [{"comparison": f"g{g}", "competitor": m, "metric": "faith", "family": "faithfulness",
                 "higher_is_better": True, "mean": mean + 0.01 * g}
                for g in range(n_groups) for m, mean in (("a", 0.9), ("b", 0.5), ("c", 0.1))]
        return pd.DataFrame(rows)

    notes = []
    one, three = st.friedman_nemenyi(summary(1)), st.friedman_nemenyi(summary(3))
    assert one.n_blocks == 1 and np.isfinite(one.cd)  # a CD exists, but one block tests nothing
    figures_drawn = _cd_diagrams({"family: faithfulness": one, "all": three, "metric: faith": one}, notes)
    assert list(figures_drawn) == ["cd_all"]
    # one note per reason, naming its scopes (many metrics scored nowhere had a line each)
    assert notes == ["CD diagrams (family: faithfulness; metric: faith): not drawn, needs two methods ranked in at "
                     "least two groups"]
    # N counts comparison groups, not samples (n everywhere else), and the Nemenyi bars hold at the stated alpha
    titles = [t.get_text() for t in figures_drawn["cd_all"].findobj(matplotlib.text.Text)]
    assert any(t.startswith("all: N = 3 groups, Friedman p = ") and t.endswith("\u03b1 = 0.05") for t in titles)


def test_no_cd_diagram_where_the_friedman_test_does_not_reject():
    # Demšar (2006) applies the Nemenyi post-hoc only after Friedman rejects; a diagram drawn anyway shows ranks
    # spread over the axis and suggests differences the test did not find. Two methods: no Friedman test at all.
    from xaibench.report.build import friedman_table
    from xaibench.report.figure_set import _cd_diagrams
    from xaibench.results import statistics as st

    orders = (("a", "b", "c"), ("b", "c", "a"), ("c", "a", "b"), ("a", "c", "b"))
    rows = [{"comparison": f"g{g}", "competitor": m, "metric": "faith", "family": "faithfulness",
             "higher_is_better": True, "mean": 1.0 - 0.3 * order.index(m)} for g, order in enumerate(orders)
            for m in "abc"]
    summary = pd.DataFrame(rows)
    spread, two = st.friedman_nemenyi(summary), st.friedman_nemenyi(summary[summary["competitor"] != "c"])
    reference = stats.friedmanchisquare([1, 3, 2, 1], [2, 1, 3, 3], [3, 2, 1, 2])
    assert spread.statistic == pytest.approx(reference.statistic)
    assert spread.p_method == "exact permutation"
    assert spread.p_value > 0.05 and spread.avg_ranks.max() - spread.avg_ranks.min() > 0.4
    notes = []
    assert _cd_diagrams({"all": spread, "family: faithfulness": two}, notes) == {}
    assert notes == [f"CD diagram (all): not drawn, Friedman p = {spread.p_value:.3g} >= alpha = 0.05: no evidence "
                     "that the average ranks differ",
                     "CD diagram (family: faithfulness): not drawn, Friedman needs >= 3 competitors and >= 2 groups "
                     "with every one scored (have 2 competitors and 4 groups)"]
    table = friedman_table({"all": spread, "family: faithfulness": two})
    table_notes = table.notes
    cd_column = [c.name for c in table.columns].index("CD")
    assert np.isfinite(spread.cd) and table.rows[0][1][cd_column].text == "-"  # no post-hoc test, so no CD shown
    assert any(n.startswith("p: exact permutation. With fewer than 10 groups") for n in table_notes)
    assert any(n.startswith("CD diagrams are drawn only where the Friedman test rejects (Demšar 2006) and its CD is "
                            "below k - 1 (else no two methods can be separated); none for: "
                            f"all (Friedman p = {spread.p_value:.3g} >= alpha") for n in table_notes)


def test_rank_heatmap_stars_methods_ranked_in_fewer_groups():
    ranks = pd.DataFrame({"method": ["a", "b", "c", "a", "b"], "scope": ["m1", "m1", "m1", "m2", "m2"],
                          "avg_rank": [1.5, 1.5, 1.0, 1.0, 2.0], "n_groups": [4, 4, 1, 3, 3]})
    ax = figures.rank_heatmap(ranks).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "a", "b"]
    assert [t.get_text() for t in ax.texts] == ["1.0*", "1.5", "1.0", "1.5", "2.0"]  # c won its one group only
    assert ax.get_xlabel().startswith("* ranked in fewer")
    plain = figures.rank_heatmap(ranks.drop(columns="n_groups")).axes[0]
    assert "*" not in "".join(t.get_text() for t in plain.texts) and plain.get_xlabel() == ""


def test_rank_heatmap_and_its_caption_say_over_how_many_comparison_groups_ranks_are_averaged():
    """paper19: the heatmap and its caption said "average rank ... over comparison groups" without how many (2
    groups or 200 read the same). Each column's label now gives its N, as the families table's headers do, and the
    report's caption gives the N of its metrics."""
    from tests.unit.report_fixtures import quickstart_like_table
    from xaibench.report import figure_set
    from xaibench.results.aggregate import summarize

    ranks = pd.DataFrame({"method": ["a", "b", "c", "a", "b"], "scope": ["m1", "m1", "m1", "m2", "m2"],
                          "avg_rank": [1.5, 1.5, 1.0, 1.0, 2.0], "n_groups": [4, 4, 1, 3, 3]})
    ax = figures.rank_heatmap(ranks).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["m1 (N=4)", "m2 (N=3)"]
    summary = summarize(quickstart_like_table())  # 2 settings (mlp / diabetes, tiny / digits) per metric
    caption = figure_set.caption("rank_heatmap", summary)
    assert "over the metric's N comparison groups" in caption and caption.endswith("Here N = 2 for every metric.")
    heatmap = figure_set.summary_figures(summary)["rank_heatmap"].axes[0]
    assert {t.get_text() for t in heatmap.get_xticklabels()} == {"faith (N=2)", "sens (N=2)", "mprt (N=2)"}


def test_metric_scores_draw_no_whisker_for_a_mean_without_ci():
    """A one-sample mean (no CI) is a bar without a whisker; the other bars keep theirs (bars are drawn a method
    at a time, split by whether they have a CI)."""
    summary = summary_frame()
    summary.loc[0, ["ci_low", "ci_high"]] = np.nan
    ax = figures.metric_scores(summary).axes[0]
    assert len(score_bars(ax)) == 4
    whiskers = [c for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)]
    assert sum(len(c.get_segments()) for c in whiskers) == 3


def test_a_method_has_the_same_colour_in_the_score_bars_and_the_cost_scatter():
    # The report's metric_scores drew saliency green and random red; its cost_vs_faithfulness drew them the other
    # way round (controls last in one legend, alphabetical in the other): a reader matching colours was misled.
    from xaibench.report import figure_set

    summary = pd.concat([summary_frame(), summary_frame().query("method == 'ig'").assign(method="saliency")])
    summary = summary.assign(competitor=summary["method"], family="faithfulness")
    table = pd.DataFrame({"model": "mlp", "dataset": "iris", "method": ["ig", "random", "saliency"],
                          "metric": "faithfulness_correlation", "status": "ok", "explain_s": [0.02, 1e-4, 3e-3]})
    bars = figure_set.summary_figures(summary)["metric_scores"].legends[0]
    cost = figure_set._cost(table, summary, None)["cost_vs_faithfulness"].legends[0]  # the method legend
    bar_colours = {t.get_text(): h.get_facecolor()[:3] for t, h in zip(bars.get_texts(), bars.legend_handles)}
    cost_colours = {t.get_text(): matplotlib.colors.to_rgb(h.get_color())
                    for t, h in zip(cost.get_texts(), cost.legend_handles)}
    assert list(bar_colours) == list(cost_colours) == ["ig", "saliency", "random"]  # controls last in both
    assert bar_colours == cost_colours


def test_metric_scores_draws_the_pixels_of_one_bar_artist_per_bar(monkeypatch):
    """A method's bars are one PatchCollection, not a Rectangle artist each (~13 KB a bar: the summary of 10,000
    cells held ~1.3 GB in this figure); the figure's PNG is the one ``ax.bar`` drew, byte for byte: bars above
    and below zero, hatched controls, bars with and without whiskers, variants, several panels."""
    import importlib
    import io

    module = importlib.import_module("xaibench.report.figures.metric_scores")
    rng = np.random.default_rng(0)
    rows = []
    for dataset, model, metric in itertools.product(["iris", "wine", "digits"], ["mlp", "cnn"], ["a", "b", "c", "d"]):
        for competitor in ("ig (n_steps=8)", "ig (n_steps=64)", "saliency", "random"):
            mean = float(rng.normal())
            low, high = (np.nan, np.nan) if rng.random() < 0.2 else (mean - rng.random(), mean + rng.random())
            rows.append({"model": model, "dataset": dataset, "method": competitor.split(" ")[0], "metric": metric,
                         "competitor": competitor, "mean": mean, "ci_low": low, "ci_high": high,
                         "higher_is_better": metric != "b"})
    summary = pd.DataFrame(rows)

    def png() -> bytes:
        buffer = io.BytesIO()
        figures.metric_scores(summary).savefig(buffer, format="png", dpi=150, bbox_inches="tight")
        return buffer.getvalue()

    drawn = png()
    with monkeypatch.context() as patch:
        def one_artist_per_bar(ax, x, heights, width, *, facecolor, edgecolor, hatch, yerr):
            ax.bar(x, heights, width=width, color=facecolor, hatch=hatch, edgecolor=edgecolor, linewidth=0,
                   yerr=yerr, error_kw={"elinewidth": 0.7, "capsize": 1.5})

        patch.setattr(module, "_bars", one_artist_per_bar)
        assert png() == drawn
    ax = figures.metric_scores(summary).axes[0]
    assert not [p for p in ax.patches if isinstance(p, Rectangle)] and len(score_bars(ax)) == 6 * 4


def test_metric_scores_of_many_experiments_are_drawn_one_dataset_per_figure(monkeypatch):
    """Above ``MAX_EXPERIMENTS`` experiments the metric-scores figure (one bar per experiment and method, unreadable
    and ~430 MB to draw at 10,000 cells) becomes one figure per dataset, a dataset of more experiments split into
    near-equal pages: every bar drawn once, each method in one colour on every page; fewer experiments: one
    figure, as before. The same for the cost-vs-faithfulness scatter."""
    import importlib

    from xaibench.report import figure_set

    module = importlib.import_module("xaibench.report.figures.metric_scores")
    rows = [{"model": f"m{m}", "dataset": dataset, "method": method, "metric": metric, "mean": 0.1 * m,
             "ci_low": 0.1 * m - 0.05, "ci_high": 0.1 * m + 0.05, "higher_is_better": True}
            for dataset, models in (("iris", 3), ("wine data", 7)) for m in range(models)
            for method in ("ig", "random") for metric in ("sparseness", "pixel_flipping")]
    summary = pd.DataFrame(rows)

    def scores(summary):
        return {name: figure for name, figure in figure_set.summary_figures(summary).items()
                if name.startswith("metric_scores")}

    assert list(scores(summary)) == ["metric_scores"]  # 10 experiments: one figure
    monkeypatch.setattr(module, "MAX_EXPERIMENTS", 3)
    drawn = scores(summary)
    assert list(drawn) == ["metric_scores_iris", "metric_scores_wine_data_1", "metric_scores_wine_data_2",
                           "metric_scores_wine_data_3"]
    ticks = {name: [t.get_text() for t in figure.axes[0].get_xticklabels()] for name, figure in drawn.items()}
    assert ticks["metric_scores_iris"] == ["iris / m0", "iris / m1", "iris / m2"]
    assert [len(t) for t in ticks.values()] == [3, 3, 2, 2]  # 7 experiments: pages of 3, 2, 2
    assert sorted(sum(ticks.values(), [])) == sorted({f"{r['dataset']} / {r['model']}" for r in rows})
    colours = set()
    for name, figure in drawn.items():
        panels = [ax for ax in figure.axes if ax.get_title()]
        assert len(panels) == 2 and all(len(score_bars(ax)) == 2 * len(ticks[name]) for ax in panels)
        legend = figure.legends[0]
        colours |= {(t.get_text(), tuple(h.get_facecolor())) for t, h in zip(legend.get_texts(), legend.legend_handles)}
    assert len(colours) == 2  # ig and random: one colour each on every page
    assert figure_set.caption("metric_scores_iris").startswith(
        "Mean score per method and dataset / model of one dataset")
    # The cost-vs-faithfulness scatter (a point and a legend entry per experiment and method) is cut the same way.
    summary = summary.assign(family=summary["metric"].map({"pixel_flipping": "faithfulness"}).fillna("complexity"))
    table = summary.assign(status="ok", explain_s=0.01)[["model", "dataset", "method", "metric", "status", "explain_s"]]
    costs = figure_set._cost(table, summary, None)
    assert list(costs) == ["cost_vs_faithfulness_iris", "cost_vs_faithfulness_wine_data_1",
                           "cost_vs_faithfulness_wine_data_2", "cost_vs_faithfulness_wine_data_3"]
    assert [len(figure.axes[0].containers) for figure in costs.values()] == [6, 6, 4, 4]  # experiments x 2 methods
    monkeypatch.setattr(module, "MAX_EXPERIMENTS", 24)
    assert list(figure_set._cost(table, summary, None)) == ["cost_vs_faithfulness"]


def test_metric_score_pages_label_each_distinct_experiment_once_with_the_rows_labels():
    """``metric_score_pages`` labels the summary's rows per distinct (dataset, model, variant) instead of per row
    (120,000 label strings at 10,000 cells): the labels ``_experiment_labels`` gives every row, with display names,
    variants (a method's own parameters left out), missing variants, and without label columns."""
    import importlib

    module = importlib.import_module("xaibench.report.figures.metric_scores")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"dataset": rng.choice(["iris", "wine"], 40), "model": rng.choice(["mlp", "cnn"], 40),
                          "variant": rng.choice(["", "seed=1", "method.n_steps=4 seed=2", None], 40)})
    frame["dataset_label"], frame["model_label"] = frame["dataset"].str.upper(), frame["model"] + " net"
    for rows in (frame, frame.drop(columns=["dataset_label", "model_label"]), frame.drop(columns=["variant"]),
                 frame.iloc[:0]):
        assert module._row_labels(rows).tolist() == module._experiment_labels(rows).tolist()


def test_cost_points_keep_two_variants_of_a_model_apart():
    # Two variants of one model (hidden=[32] and [64]) share the name "mlp": their costs were pooled into one mean
    # and both experiments' points drawn at it. Each experiment (setting) now has its own cost.
    from xaibench.results.aggregate import summarize
    from tests.unit.report_fixtures import quickstart_like_table

    base = quickstart_like_table()
    base = base[(base["model"] == "mlp") & (base["metric"] == "faith")]
    small = base.assign(model_params='{"hidden": [32]}', explain_s=0.001)
    large = base.assign(model_params='{"hidden": [64]}', explain_s=0.004)
    table = pd.concat([small, large], ignore_index=True).replace({"metric": {"faith": "faithfulness_correlation"}})
    points = figures.cost_score_points(table, summarize(table), "faithfulness_correlation")
    assert len(points) == 6  # 3 methods x 2 variants
    by_group = points.groupby("group")["cost"].unique().map(list).to_dict()
    assert sorted(by_group.values()) == [[pytest.approx(0.001)], [pytest.approx(0.004)]]
    assert all("hidden=[32]" in g or "hidden=[64]" in g for g in by_group)


def _cielab(rgb) -> np.ndarray:
    """sRGB (0-1) -> CIELAB (D65), the space in which a distance of ~2 is just noticeable."""
    c = np.asarray(rgb[:3], dtype=float)
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ c
    f = np.cbrt(xyz / np.array([0.95047, 1.0, 1.08883]))  # every colour here is far above the linear segment
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_twelve_methods_get_distinguishable_colours_and_controls_grey_in_every_figure():
    # 10 methods and 3 controls took tab20 (blue beside light blue, orange beside light orange: two methods of one
    # hue), and with tab10 two controls took olive and cyan among the methods' colours.
    from xaibench.report.figures._style import method_colours

    methods = [f"method_{i:02d}" for i in range(12)]
    colours = method_colours(methods + ["random", "constant", "sobel"], controls={"random", "constant", "sobel"})
    lab = {m: _cielab(colours[m]) for m in methods}
    closest = min(np.linalg.norm(lab[a] - lab[b]) for a, b in itertools.combinations(methods, 2))
    tab10 = [_cielab(matplotlib.colormaps["tab10"](i)) for i in range(10)]
    assert closest >= min(np.linalg.norm(a - b) for a, b in itertools.combinations(tab10, 2)) - 0.5
    for control in ("random", "constant", "sobel"):
        r, g, b, _ = colours[control]
        assert r == g == b  # grey: never a method's colour
    assert len({colours[c] for c in ("random", "constant", "sobel")}) == 3
    # the same method keeps its colour when a figure shows fewer methods of the same report (one mapping)
    assert method_colours(methods[:3], controls=set())["method_01"] == colours["method_01"]


def test_a_gallery_title_names_the_model_variant_it_shows():
    # Two variants of mlp (hidden=[32], [64]) on one dataset had two galleries titled "breast_cancer / mlp".
    from xaibench.report.explanation_figures import experiment_title

    row = pd.Series({"dataset": "breast_cancer", "dataset_params": '{"test_size": 0.3}', "model": "mlp",
                     "model_params": '{"batch_size": 64, "epochs": 30, "hidden": [32], "lr": 0.01}',
                     "dataset_label": "breast_cancer", "model_label": "mlp"})
    assert experiment_title(row) == "breast_cancer / mlp (model.hidden=[32])"
    shipped = row.copy()
    shipped["model_params"] = '{"batch_size": 64, "epochs": 30, "hidden": [64, 64], "lr": 0.01}'
    assert experiment_title(shipped) == "breast_cancer / mlp"  # the shipped config: nothing to tell apart
    smaller = shipped.copy()
    smaller["dataset_params"] = '{"test_size": 0.5}'
    assert experiment_title(smaller) == "breast_cancer / mlp (dataset.test_size=0.5)"


def test_a_gallery_title_of_your_own_named_model_and_table_fits_its_figure():
    """review24: ``model=torch_module model.label=ShopNet dataset=csv_table`` titled its gallery with every input the
    shipped configs leave unset (``model.state_dict=..., model.target=..., dataset.path=..., dataset.target=...``),
    one line wider than the gallery, so the saved PNG grew to 10.6 in (the panels shrank in a paper column). A
    label now names what it labels, and a long title wraps within the figure."""
    from xaibench.report.explanation_figures import experiment_title
    from xaibench.report.figures import attribution_gallery

    row = pd.Series({"dataset": "csv_table", "model": "torch_module", "dataset_label": "csv_table",
                     "model_label": "ShopNet",
                     "model_params": json.dumps({"epochs": 20, "kwargs": {}, "outputs": "logits", "strict": True,
                                                 "state_dict": "/data/project/shopnet.pt",
                                                 "target": "/data/project/shopnet.py:ShopNet"}),
                     "dataset_params": json.dumps({"path": "/data/project/shop.csv", "target": "bought",
                                                   "missing": "median"})})
    title = experiment_title(row)
    assert title == ("csv_table / ShopNet (model.epochs=20, dataset.missing=median, "
                     "dataset.path=/data/project/shop.csv, dataset.target=bought)")  # unlabelled: its file names it
    named = row.copy()
    named["dataset_label"] = "Shop visits"
    assert experiment_title(named) == "Shop visits / ShopNet (model.epochs=20, dataset.missing=median)"

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5))
    long_title = title + " " + title  # a title no figure width holds on one line
    figure = attribution_gallery(x, {"saliency": rng.normal(size=(3, 5))}, modality="tabular", title=long_title)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    suptitle = figure.get_suptitle()
    assert "\n" in suptitle and suptitle.replace("\n", " ") == long_title
    box = figure._suptitle.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= figure.bbox.width  # within the figure: the saved PNG keeps its width
    panels_top = max(ax.get_tightbbox(renderer).y1 for ax in figure.axes)  # with the sample headings
    assert box.y0 > panels_top  # the wrapped lines stay above the panels


def test_fourteen_methods_stay_apart_in_colour_and_pattern_the_same_in_every_figure():
    """paper14: beyond 12 methods the colours repeated, so the 13th method's bars and points were the 1st's. A
    further round of 12 adds a hatch (bars) and a half-filled marker (points), from the one shared mapping."""
    from tests.unit.report_fixtures import quickstart_like_table
    from xaibench.report.figures._style import method_colours, method_looks
    from xaibench.report.figures.metric_scores import metric_scores
    from xaibench.results.aggregate import summarize

    methods = [f"method_{i:02d}" for i in range(14)]
    base = quickstart_like_table()
    base = base[(base["model"] == "mlp") & (base["metric"] == "faith")]
    ig, random = base[base["method"] == "ig"], base[base["method"] == "random"]
    table = pd.concat([ig.assign(method=m, value=ig["value"] + i / 100) for i, m in enumerate(methods)] + [random])
    summary = summarize(table)
    colours = method_colours(summary["competitor"], controls={"random"})
    looks = method_looks(colours, controls={"random"})
    assert colours["method_12"] == colours["method_00"]  # the colours repeat after 12 ...
    assert (looks["method_12"].hatch, looks["method_12"].fill) != (looks["method_00"].hatch, looks["method_00"].fill)
    drawn = {(look.colour, look.hatch, look.fill) for look in looks.values()}
    assert len(drawn) == 15 and len({(c, h) for c, h, _ in drawn}) == 15 and len({(c, f) for c, _, f in drawn}) == 15
    assert looks["random"].hatch == "////" and looks["random"].fill == "none"  # controls: grey, hatched, hollow
    figure = metric_scores(summary, colours=colours)
    from matplotlib.collections import PatchCollection

    bars = [c for c in figure.axes[0].collections if isinstance(c, PatchCollection)]  # one collection per method
    assert len({(tuple(c.get_facecolor()[0]), c.get_hatch()) for c in bars}) == len(bars) == 15  # each its own look
    assert method_looks(method_colours(methods[10:], controls=set()), controls=set())["method_12"].hatch is None  # a
    # figure of other methods makes its own mapping: a report passes one mapping to all its figures (figure_set)


def test_counterfactuals_are_looked_for_only_in_the_cells_of_counterfactual_methods(tmp_path):
    """paper14: the report read every experiment's cells for counterfactuals, so a sweep of attribution methods whose
    store was elsewhere got "counterfactuals of ...: not in the store" notes about methods that never make any."""
    from tests.unit.report_fixtures import quickstart_like_table
    from xaibench.report.explanation_figures import counterfactual_figures, counterfactual_rows

    table = quickstart_like_table().assign(explanation_key="0" * 32)
    table["method"] = table["method"].replace({"ig": "integrated_gradients"})  # registered names
    notes = []
    assert counterfactual_figures(table, tmp_path / "no-store", notes) == {} and notes == []
    assert counterfactual_rows(table).empty  # registered, and none stores counterfactuals
    with_wachter = pd.concat([table, table[table["method"] == "saliency"].assign(method="wachter")],
                             ignore_index=True)
    assert set(counterfactual_rows(with_wachter)["method"]) == {"wachter"}
    assert counterfactual_figures(with_wachter, tmp_path / "no-store", notes) == {}
    assert notes and all(note.startswith("counterfactuals of ") and "wachter" in note for note in notes)


def test_a_zero_mean_is_marked_in_the_score_bars_and_a_missing_one_is_not():
    # The constant control scores 0 on sparseness and max_sensitivity: its zero-height bar drew no pixel, so a
    # reader could not tell a scored 0 from a method missing there. Now a line at 0 in its colour spans its slot;
    # a method without a mean (n/a) still gets neither bar nor line.
    summary = pd.DataFrame([{"model": "mlp", "dataset": dataset, "method": method, "metric": "sparseness",
                             "mean": mean, "ci_low": np.nan, "ci_high": np.nan, "higher_is_better": True}
                            for dataset in ("iris", "wine")
                            for method, mean in (("ig", 0.6), ("saliency", 0.0 if dataset == "iris" else np.nan),
                                                 ("constant", 0.0))])
    from xaibench.report.figures._style import method_colours

    colours = method_colours(["ig", "saliency", "constant"], {"constant"})
    figure = figures.metric_scores(summary, colours=colours)
    ax = figure.axes[0]
    bars = sorted(score_bars(ax))
    assert len(bars) == 5  # iris: ig, saliency, constant; wine: ig, constant (saliency n/a)
    marks = sorted((round(float(s[0][0]), 6), round(float(s[1][0]), 6), float(s[0][1]))
                   for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)
                   for s in c.get_segments())
    zero_bars = [(round(left, 6), round(left + width, 6), 0.0) for left, width, height in bars if height == 0]
    assert marks == zero_bars and len(marks) == 3  # saliency on iris, constant on both: at each bar's slot

    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3].astype(int)
    box = ax.get_window_extent()
    panel = pixels[int(figure.bbox.height - box.y1):int(figure.bbox.height - box.y0) + 3, int(box.x0):int(box.x1)]
    for method, drawn in (("saliency", 1), ("constant", 2)):
        colour = np.round(np.array(matplotlib.colors.to_rgb(colours[method])) * 255).astype(int)
        ink = (np.abs(panel - colour).max(axis=-1) <= 2).sum()
        assert ink >= drawn * 10, f"{method}'s zero bar is invisible ({ink} pixels of its colour)"


def test_gallery_headings_say_whether_the_class_is_the_prediction_or_the_label():
    # The headings said "class 3" whatever the sweep explained (target: predicted, the default, or label).
    x = RNG.normal(size=(2, 1, 8, 8))
    maps = {"saliency": RNG.normal(size=x.shape)}

    def headings(**kwargs):
        figure = figures.attribution_gallery(x, maps, modality="image", sample_ids=["a-1", "a-2"], targets=[3, 5],
                                             **kwargs)
        bar = figure.axes[-1].xaxis.label.get_text()
        return [ax.get_title().split("\n", 1)[1] for ax in figure.axes[:2]], bar

    assert headings(labels=[3, 7], target_mode="predicted") == (
        ["pred 3 / label 3", "pred 5 / label 7"], "attribution for the predicted class, each map scaled to its own max |a|")
    assert headings(labels=[3, 5], target_mode="label") == (
        ["label 3", "label 5"], "attribution for the labelled class, each map scaled to its own max |a|")
    assert headings(class_names=[f"c{i}" for i in range(6)])[0] == ["class c3", "class c5"]  # not known which
    long = figures.gallery.class_heading(0, ["malignant tumour"], 0, "predicted")
    assert long == "pred malignant tumour\nlabel malignant tumour"  # a long pair on two lines
    figure = figures.attribution_gallery(x[:1].reshape(1, -1), {"saliency": maps["saliency"][:1].reshape(1, -1)},
                                         modality="tabular", targets=[0], labels=[0], target_mode="predicted",
                                         class_names=["malignant tumour"], title="breast_cancer / mlp")
    assert_no_overlap([figure.axes[0].title, figure.texts[0]])  # three heading lines, clear of the figure's title


def test_score_figure_captions_state_samples_seeds_and_the_few_seeds_ci_caveat_as_the_tables():
    """paper17: the metric-scores and cost figures' captions said "95% confidence interval" where the tables'
    captions of the same numbers said over how many samples and seeds, and that with 2 seeds the two-way bootstrap
    interval holds the true mean about 66% of the time where seeds differ more than samples. The captions now say
    what the tables say; the gallery's says which seed's maps it shows."""
    from tests.unit.report_fixtures import quickstart_like_table
    from xaibench.report import figure_set
    from xaibench.report.tables.layouts import interval_text
    from xaibench.results.aggregate import summarize

    one = quickstart_like_table()
    two = pd.concat([one, one.assign(seed=1, value=one["value"] + 0.01)], ignore_index=True)
    for table, seeds in ((one, "(percentile bootstrap over samples)"), (two, "about 66% of such intervals")):
        summary = summarize(table)
        over = interval_text(summary)
        assert seeds in over and over.startswith("mean [95% CI] over n = ")
        text = figure_set.caption("metric_scores", summary)
        assert text.startswith("Mean score per method and dataset / model") and text.endswith(f"Scores: {over}.")
        faithful = summary.assign(family=np.where(summary["metric"] == summary["metric"].iloc[0], "faithfulness",
                                                  summary["family"]))
        assert "wall-clock" in figure_set.caption("cost_vs_faithfulness", faithful)
        assert interval_text(faithful[faithful["family"] == "faithfulness"]) in \
            figure_set.caption("cost_vs_faithfulness", faithful)
    assert "2 seeds" in figure_set.caption("metric_scores", summarize(two))
    assert "lowest seed" in figure_set.caption("gallery_iris_mlp")


def test_the_gallery_caption_says_a_tabular_gallery_shows_only_the_most_attributed_features():
    """newuser19: breast_cancer's gallery drew 10 of its 30 features and its caption did not say so (a reader took
    the bars for the whole map). The caption now names the cut, the same number the gallery draws."""
    from xaibench.report import figure_set
    from xaibench.report.figures.gallery import TABULAR_FEATURES, attribution_gallery

    text = figure_set.caption("gallery_breast_cancer_mlp")
    assert (f"on tabular data at most the {TABULAR_FEATURES} features with the largest mean |a| / max |a| (each "
            "sample's map scaled to its own largest magnitude, so every method weighs the same) over the methods and "
            "samples shown (the others are left out)") in text
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(2, 30))
    weights = np.arange(30, dtype=float)  # feature k attributed k: the last TABULAR_FEATURES are drawn
    figure = attribution_gallery(inputs, {"m": inputs * 0 + weights}, modality="tabular",
                                 feature_names=[f"f{k}" for k in range(30)])
    drawn = {t.get_text() for ax in figure.axes for t in ax.get_yticklabels()} - {""}
    assert drawn == {f"f{k}" for k in range(30 - TABULAR_FEATURES, 30)}


def test_a_tabular_gallery_picks_its_features_by_each_maps_share_not_by_the_largest_methods_values():
    """paper20: the features were those with the largest raw mean |a| over the methods, so the method with the
    largest values (integrated gradients ~10-20 against random's ~1) chose them alone. Here ig puts its mass on f0,
    f1 (values 20, 18) and two methods of small values on f2, f3: by each map's |a| / max |a| the two agree and
    f2, f3 are shown (weights 0.668 and 0.6 against 0.333 and 0.327); the raw rule showed f0, f1."""
    from xaibench.report.figures.gallery import attribution_gallery, tabular_feature_order

    rng = np.random.default_rng(1)
    ig = np.array([[20.0, 18.0, 0.0, 0.0, 0.5], [19.0, 17.0, 0.1, 0.0, 0.5]])
    small = np.array([[0.0, 0.0, 1.0, 0.9, 0.1], [0.0, 0.1, 1.2, 1.08, 0.0]])
    attributions = {"integrated_gradients": ig, "saliency": small, "random": small * 0.5}
    old_rule = np.argsort(-np.mean([np.abs(a).mean(axis=0) for a in attributions.values()], axis=0))[:2]
    assert old_rule.tolist() == [0, 1]
    assert tabular_feature_order(attributions, 2).tolist() == [2, 3]
    figure = attribution_gallery(rng.normal(size=(2, 5)), attributions, modality="tabular", max_features=2,
                                 feature_names=[f"f{k}" for k in range(5)])
    drawn = {t.get_text() for ax in figure.axes for t in ax.get_yticklabels()} - {""}
    assert drawn == {"f2", "f3"}
    zero = {"constant": np.zeros((2, 5)), "saliency": small}  # an all-zero map counts 0, not NaN
    assert tabular_feature_order(zero, 3).tolist() == [2, 3, 4]


def test_the_gallery_caption_does_not_call_a_magnitude_map_support_for_the_class():
    """review24: the quickstart's gallery shows saliency (default ``abs=True``) all red, under a caption saying "red
    supports the explained class": a feature that opposes the class read as supporting it. On a linear model whose
    class-1 weight on feature 0 is negative, saliency's map is positive there (a magnitude); the caption now says
    such maps mark importance, not support."""
    import torch

    import xaibench
    from xaibench.report.figure_set import CAPTIONS

    net = torch.nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]))
        net.bias.zero_()
    x = np.array([[1.0, 2.0]], dtype=np.float32)  # predicted class 1: feature 0 lowers its logit
    signed = xaibench.explain(net, x, method="integrated_gradients", targets=np.array([1]))
    magnitude = xaibench.explain(net, x, method="saliency", targets=np.array([1]))
    assert np.asarray(signed)[0, 0] < 0 < np.asarray(magnitude)[0, 0]
    caption = dict(CAPTIONS)["gallery_"]
    assert ("except in maps of magnitudes (saliency with its default abs=True, SmoothGrad², VarGrad, Grad-CAM after "
            "its ReLU), which are never negative: red there marks an important feature, whichever class it supports"
            ) in caption


def test_counterfactual_panels_say_when_they_leave_changed_features_out():
    """review24: the ci sweep's wachter figure headed a panel "10 of 10 features changed" over 8 rows
    (``max_features``), with no word on the two left out. The heading now says how many it shows."""
    x = np.zeros((1, 10))
    cf = x + np.arange(1, 11) / 10  # every feature changed, x09 most
    figure = figures.counterfactual_examples(x, cf, modality="tabular", sample_ids=["s-3"])
    panel = figure.axes[0]
    assert panel.get_title() == "sample 3: 10 of 10 features changed\n(8 shown, most changed first)"
    assert [t.get_text() for t in panel.get_yticklabels()] == [f"* x{i}" for i in range(9, 1, -1)]  # x1, x0 left out


def test_explanations_from_a_store_folder_that_does_not_exist_say_so(tmp_path, monkeypatch):
    """review24: ``report`` of a sweep folder copied elsewhere noted per gallery that the explanations "are not in
    the store results/store", where no such folder exists (relative to where the report ran): it now says so."""
    import xaibench
    from tests.unit.report_fixtures import quickstart_like_table
    from xaibench.errors import UserError

    table = quickstart_like_table().assign(explanation_key="abc")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as relative:
        xaibench.explanations(table, store="results/store")
    assert f"(key abc): there is no folder results/store in {tmp_path}; pass the sweep's store_dir" in str(relative.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError) as empty:
        xaibench.explanations(table, store=tmp_path / "empty")
    assert f"not in the store {tmp_path / 'empty'} (key abc); pass the sweep's store_dir" in str(empty.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # nothing made


def _sensitivity_summary(random_mean: float) -> pd.DataFrame:
    """max_sensitivity of two methods (0.06..0.19, CIs 0.03 wide) and the random control at ``random_mean``."""
    return pd.DataFrame([{"model": "mlp", "dataset": dataset, "method": method, "metric": "max_sensitivity",
                          "mean": mean, "ci_low": mean - 0.03, "ci_high": mean + 0.03, "higher_is_better": False}
                         for dataset in ("iris", "wine")
                         for method, mean in (("ig", 0.09), ("saliency", 0.19 if dataset == "iris" else 0.06),
                                              ("random", random_mean + (0.4 if dataset == "wine" else 0.0)))])


def test_a_control_far_off_the_methods_scale_is_cut_at_the_edge_with_its_mean_written():
    # random's max_sensitivity (~1.6-2.1) set the panel's y axis and squashed the methods' 0.06..0.19 into a flat
    # strip; now the axis spans the methods (plus a margin) and the control is marked at the edge with its value.
    figure = figures.metric_scores(_sensitivity_summary(1.64))
    ax = figure.axes[0]
    bottom, top = ax.get_ylim()
    assert bottom == 0.0 and 0.22 < top < 0.3  # the methods' highest CI end 0.22 plus a margin, not 2.04
    marks = [a for a in ax.get_children() if a.get_gid() == "off_scale_control"]
    written = sorted(a.get_text() for a in marks if isinstance(a, matplotlib.text.Text))
    assert written == ["1.64", "2.04"]  # each cut control's mean, readable
    triangles = [a for a in marks if isinstance(a, matplotlib.lines.Line2D)]
    assert len(triangles) == 2 and all(a.get_ydata()[0] == top and a.get_marker() == "^" for a in triangles)
    assert sorted(round(height, 6) for _, _, height in score_bars(ax))[-2:] == [1.64, 2.04]  # still drawn, cut
    assert_legible(figure)


def test_a_control_within_the_methods_scale_is_drawn_as_before():
    # random at 0.15 and 0.55 (CI to 0.58): under three times the methods' span (0..0.22), so nothing is cut
    near = figures.metric_scores(_sensitivity_summary(0.15))
    ax = near.axes[0]
    assert not [a for a in ax.get_children() if a.get_gid() == "off_scale_control"]
    assert ax.get_ylim()[1] >= 0.58  # autoscaled over every bar and whisker, the control's too
