"""Datasets: synthetic generators are correct by construction (analytic checks against the declared rule),
every dataset is deterministic (split, ids, revision), and user data fails with one clear line."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from xaibench.data.synthetic.image import shape_template
from xaibench.data.synthetic.tabular import ADDITIVE_SHAPES, tabular_score
from xaibench.data.synthetic.text import PAD_ID, key_token_class
from xaibench.data.synthetic.timeseries import motif_template
from xaibench.errors import UserError
from xaibench.registry import DATASETS
from xaibench.types import Modality

SYNTHETIC = ("synthetic_tabular", "synthetic_image", "synthetic_timeseries", "synthetic_text", "synthetic_shapes")
SMALL = {"n_samples": 90}


def by_id(dataset) -> dict[str, int]:
    return {sample_id: i for i, sample_id in enumerate(dataset.test.ids)}


# Synthetic tabular -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["linear", "additive", "interaction"])
@pytest.mark.parametrize("n_informative", [3, 4])
def test_tabular_label_is_exactly_the_declared_function_of_the_informative_features(variant, n_informative):
    spec = DATASETS.create("synthetic_tabular", {"n_samples": 400, "n_features": 9, "n_informative": n_informative,
                                                 "variant": variant, "data_seed": 3})
    task = spec.generate()
    z = task.x[:, task.informative]
    np.testing.assert_array_equal(task.y, (tabular_score(z, variant, task.weights) > 0).astype(np.int64))
    expected_mask = np.zeros(9)
    expected_mask[task.informative] = 1.0
    np.testing.assert_array_equal(task.masks, np.broadcast_to(expected_mask, task.masks.shape))
    assert len(task.informative) == n_informative and np.all(np.abs(task.weights) >= 1.0)
    assert 0.3 < task.y.mean() < 0.7  # zero-mean scores: both classes well represented


def test_tabular_score_functions_by_hand():
    z = np.array([[1.0, 2.0, -1.0]])
    w = np.array([1.0, -2.0, 0.5])
    assert tabular_score(z, "linear", w)[0] == pytest.approx(1.0 - 4.0 - 0.5)
    additive = 1.0 * np.sin(2.0) - 2.0 * (4.0 - 1.0) + 0.5 * (1.0 - np.sqrt(2 / np.pi))
    assert tabular_score(z, "additive", w)[0] == pytest.approx(additive)
    assert tabular_score(z, "interaction", w)[0] == pytest.approx(1.0 * 1.0 * 2.0 + 0.5 * -1.0)  # odd K: last linear
    samples = np.random.default_rng(0).standard_normal(200_000)
    assert all(abs(g(samples).mean()) < 0.01 for g in ADDITIVE_SHAPES)  # zero-mean shapes, as documented


def test_tabular_nuisance_columns_correlate_with_their_parent_and_never_decide_the_label():
    task = DATASETS.create("synthetic_tabular", {"n_samples": 4000, "correlation": 0.6}).generate()
    for column, parent in enumerate(task.parents):
        if parent >= 0:
            assert np.corrcoef(task.x[:, column], task.x[:, parent])[0, 1] == pytest.approx(0.6, abs=0.05)
    # The label is a function of the informative columns alone: rebuilding it ignores every nuisance column.
    shuffled = task.x.copy()
    nuisance = task.parents >= 0
    shuffled[:, nuisance] = np.random.default_rng(1).permutation(shuffled[:, nuisance])
    z = shuffled[:, task.informative]
    np.testing.assert_array_equal((tabular_score(z, "linear", task.weights) > 0).astype(np.int64), task.y)


def test_tabular_build_keeps_generated_rows_under_their_ids():
    spec = DATASETS.create("synthetic_tabular", {"n_samples": 200})
    task, dataset = spec.generate(), spec.build(seed=5)
    for split in (dataset.train, dataset.test):
        rows = np.array([int(i.rsplit("-", 1)[1]) for i in split.ids])
        np.testing.assert_array_equal(split.x.numpy(), task.x[rows].astype(np.float32))
        np.testing.assert_array_equal(split.y.numpy(), task.y[rows])
        np.testing.assert_array_equal(split.masks.numpy(), task.masks[rows])
    assert dataset.feature_names == tuple(f"x{i:02d}" for i in range(10))


# Synthetic image -------------------------------------------------------------------------------------------
def test_image_mask_is_exactly_the_planted_object():
    shapes = ("hbar", "vbar", "square", "cross", "frame")
    spec = DATASETS.create("synthetic_image", {"n_samples": 50, "image_size": 16, "shapes": list(shapes),
                                               "noise": 0.0, "intensity": 2.0})
    task = spec.generate()
    np.testing.assert_array_equal(task.x, 2.0 * task.masks)  # no noise: the image *is* the object
    for x_mask, label, (top, left) in zip(task.masks, task.y, task.corners):
        stencil = shape_template(shapes[label])
        expected = np.zeros((16, 16))
        expected[top : top + stencil.shape[0], left : left + stencil.shape[1]] = stencil
        np.testing.assert_array_equal(x_mask[0], expected)
    assert np.bincount(task.y).tolist() == [10] * 5


def test_image_noise_lies_off_the_object_too():
    task = DATASETS.create("synthetic_image", {"n_samples": 60, "noise": 0.5, "intensity": 1.5}).generate()
    background = task.x - 1.5 * task.masks
    assert background.std() == pytest.approx(0.5, rel=0.02) and abs(background.mean()) < 0.01
    assert task.x.shape == task.masks.shape == (60, 1, 32, 32)


def test_shape_stencils_are_what_their_names_say():
    assert shape_template("hbar").shape == (2, 10) and shape_template("vbar").shape == (10, 2)
    frame = shape_template("frame")
    assert frame.sum() == 8 * 8 - 4 * 4 and frame[0].all() and not frame[4, 4]
    cross = shape_template("cross")
    assert cross.sum() == 2 * 8 + 2 * 8 - 4 and cross[3].all() and not cross[0, 0]


# Synthetic time series -------------------------------------------------------------------------------------
def test_series_mask_is_exactly_the_motif_span_in_its_channel():
    motifs = ("sine", "square", "triangle", "chirp")
    spec = DATASETS.create("synthetic_timeseries", {"n_samples": 40, "length": 64, "n_channels": 3,
                                                    "motifs": list(motifs), "motif_length": 16, "noise": 0.0,
                                                    "background": 0.0, "amplitude": 2.0})
    task = spec.generate()
    for x, mask, label, (channel, start) in zip(task.x, task.masks, task.y, task.placements):
        expected = np.zeros((3, 64))
        expected[channel, start : start + 16] = 1.0
        np.testing.assert_array_equal(mask, expected)
        np.testing.assert_allclose(x[channel, start : start + 16], 2.0 * motif_template(motifs[label], 16))
        assert not x[mask == 0].any()
    assert len(set(task.placements[:, 0])) == 3  # the motif moves between channels


def test_motif_templates():
    assert motif_template("square", 4).tolist() == [1.0, 1.0, -1.0, -1.0]
    assert motif_template("triangle", 4).tolist() == [-1.0, 0.0, 1.0, 0.0]
    np.testing.assert_allclose(motif_template("sine", 4), [0.0, 1.0, 0.0, -1.0], atol=1e-12)


# Synthetic text --------------------------------------------------------------------------------------------
def test_text_label_equals_the_rule_over_planted_key_tokens():
    spec = DATASETS.create("synthetic_text", {"n_samples": 300, "n_classes": 3, "keys_per_class": 2,
                                              "min_keys": 1, "max_keys": 4, "seq_len": 12, "vocab_size": 20})
    task = spec.generate()
    owners = key_token_class(task.x, 3, 2)
    for ids, owner, mask, label in zip(task.x, owners, task.masks, task.y):
        keys = owner >= 0
        assert set(owner[keys].tolist()) == {label}  # every key token belongs to the label's class
        np.testing.assert_array_equal(mask, keys.astype(float))  # the mask marks exactly the key tokens
        assert 1 <= keys.sum() <= 4
    assert task.x.dtype == np.int64 and task.x.min() > PAD_ID and task.x.max() < 20
    dataset = spec.build(seed=0)
    assert dataset.vocab_size == 20 and dataset.train.x.dtype == torch.int64
    assert dataset.test.masks.shape == dataset.test.x.shape


def test_key_token_class_layout():
    ids = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    assert key_token_class(ids, n_classes=2, keys_per_class=3).tolist() == [-1, 0, 0, 0, 1, 1, 1, -1]


# Every synthetic set: determinism, stable ids, revision --------------------------------------------------
@pytest.mark.parametrize("name", SYNTHETIC)
def test_same_seed_same_split_ids_and_revision(name):
    spec = DATASETS.create(name, SMALL)
    a, b = spec.build(seed=7), spec.build(seed=7)
    assert a.revision == b.revision and a.train.ids == b.train.ids and a.test.ids == b.test.ids
    for left, right in ((a.train, b.train), (a.test, b.test)):
        assert torch.equal(left.x, right.x) and torch.equal(left.y, right.y) and torch.equal(left.masks, right.masks)
    assert spec.has_ground_truth and a.has_ground_truth


@pytest.mark.parametrize("name", SYNTHETIC)
def test_split_seed_moves_samples_not_their_content(name):
    spec = DATASETS.create(name, SMALL)
    a, b = spec.build(seed=0), spec.build(seed=1)
    assert a.test.ids != b.test.ids
    assert a.revision == b.revision  # seeds are replicates of one dataset: the summary pools them
    assert set(a.train.ids) | set(a.test.ids) == set(b.train.ids) | set(b.test.ids)
    assert not set(a.train.ids) & set(a.test.ids) and len(a.test) == len(b.test) == 27
    rows_a = {i: (x, m) for i, x, m in zip(a.train.ids + a.test.ids, torch.cat([a.train.x, a.test.x]),
                                         torch.cat([a.train.masks, a.test.masks]))}
    for i, x, m in zip(b.test.ids, b.test.x, b.test.masks):  # an id names the same sample under any split
        assert torch.equal(rows_a[i][0], x) and torch.equal(rows_a[i][1], m)
    assert DATASETS.create(name, {**SMALL, "data_seed": 1}).build(seed=0).revision != a.revision


@pytest.mark.parametrize("name", SYNTHETIC)
def test_bad_generator_parameters_are_user_errors(name):
    bad = {"synthetic_tabular": {"n_informative": 11}, "synthetic_image": {"image_size": 4},
           "synthetic_timeseries": {"motif_length": 500}, "synthetic_text": {"vocab_size": 7},
           "synthetic_shapes": {"image_size": 6}}[name]
    with pytest.raises(UserError, match=name):
        DATASETS.create(name, bad).build(seed=0)


# User data: CSV / Parquet ----------------------------------------------------------------------------------
def table(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"sid": [f"s{i}" for i in range(n)], "a": rng.normal(size=n), "b": rng.integers(0, 5, n),
                         "flag": rng.random(n) > 0.5, "label": np.where(np.arange(n) % 2, "yes", "no")})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_loads_with_target_by_name(tmp_path, suffix):
    frame = table()
    path = tmp_path / f"data{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    spec = DATASETS.create("csv_table", {"path": str(path), "target": "label", "id_column": "sid",
                                         "standardize": False, "test_size": 0.25})
    dataset = spec.build(seed=0)
    assert dataset.modality is Modality.TABULAR and dataset.n_classes == 2
    assert dataset.feature_names == ("a", "b", "flag") and len(dataset.test) == 10
    row = frame.set_index("sid").loc[dataset.test.ids[0]]
    np.testing.assert_allclose(dataset.test.x[0].numpy(), [row.a, row.b, float(row.flag)], rtol=1e-6)
    assert int(dataset.test.y[0]) == ["no", "yes"].index(row.label)  # sorted label values -> 0..K-1
    assert spec.build(seed=0).revision == dataset.revision
    standardized = DATASETS.create("csv_table", {"path": str(path), "target": "label", "features": ["a", "b"]}).build(0)
    assert standardized.train.x.mean(0).abs().max() < 1e-5 and standardized.test.ids[0].startswith("row-")


@pytest.mark.parametrize(
    ("frame", "params", "message"),
    [
        (table(), {"target": "class"}, r"target column 'class' not in the file; columns: sid, a, b, flag, label"),
        (table(), {"target": "label", "categorical": "refuse"}, r"non-numeric feature column\(s\) sid"),
        (table().assign(a=np.nan), {"target": "label", "id_column": "sid"}, r"missing values in column\(s\) a"),
        (table(1), {"target": "b", "features": ["a"]}, r"1 distinct value|empty train or test split"),
        (table(2), {"target": "label", "id_column": "sid", "test_size": 0.9}, r"leave an empty train or test split"),
        (table(9), {"target": "label", "id_column": "sid", "test_size": 1.5}, r"test_size must be in \(0, 1\)"),
        (table(), {"target": "label", "features": ["a", "zz"]}, r"feature column\(s\) zz not in the file"),
        (table().assign(sid="same"), {"target": "label", "id_column": "sid"}, r"duplicate"),
    ],
)
def test_table_errors_are_one_clear_line(tmp_path, frame, params, message):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(UserError, match=message) as caught:
        DATASETS.create("csv_table", {"path": str(path), **params}).build(seed=0)
    assert "\n" not in str(caught.value)


def test_table_file_errors(tmp_path):
    with pytest.raises(UserError, match="file not found: .*nope.csv"):
        DATASETS.create("csv_table", {"path": str(tmp_path / "nope.csv"), "target": "y"}).build(seed=0)
    with pytest.raises(UserError, match=r"no path given; set dataset.path"):
        DATASETS.create("csv_table", {"target": "y"}).build(seed=0)
    (tmp_path / "data.xlsx").write_bytes(b"x")
    with pytest.raises(UserError, match="unsupported file type '.xlsx'"):
        DATASETS.create("csv_table", {"path": str(tmp_path / "data.xlsx"), "target": "y"}).build(seed=0)
    (tmp_path / "empty.csv").write_text("a,y\n")
    with pytest.raises(UserError, match="has no rows"):
        DATASETS.create("csv_table", {"path": str(tmp_path / "empty.csv"), "target": "y"}).build(seed=0)


# User data: .npz -------------------------------------------------------------------------------------------
def test_npz_images_with_masks_and_ids(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((20, 6, 6))  # (N, H, W): the channel axis is added
    masks = (x > 0.5).astype(np.float32)
    ids = np.array([f"img{i:02d}" for i in range(20)])
    np.savez(tmp_path / "d.npz", images=x, labels=np.arange(20) % 2, m=masks, names=ids)
    spec = DATASETS.create("npz_arrays", {"path": str(tmp_path / "d.npz"), "x_key": "images", "y_key": "labels",
                                          "modality": "image", "masks_key": "m", "ids_key": "names"})
    assert spec.modality is Modality.IMAGE and spec.has_ground_truth
    dataset = spec.build(seed=0)
    assert dataset.modality is Modality.IMAGE and dataset.input_shape == (1, 6, 6)
    index = int(dataset.test.ids[0][3:])
    np.testing.assert_allclose(dataset.test.x[0, 0].numpy(), x[index], rtol=1e-6)
    np.testing.assert_array_equal(dataset.test.masks[0, 0].numpy(), masks[index])


def test_npz_text_ids(tmp_path):
    x = np.random.default_rng(0).integers(0, 30, (24, 10))
    np.savez(tmp_path / "t.npz", x=x, y=np.arange(24) % 3)
    dataset = DATASETS.create("npz_arrays", {"path": str(tmp_path / "t.npz"), "modality": "text"}).build(seed=0)
    assert dataset.modality is Modality.TEXT and dataset.train.x.dtype == torch.int64
    assert dataset.vocab_size == int(x.max()) + 1 and dataset.n_classes == 3 and not dataset.has_ground_truth


@pytest.mark.parametrize(
    ("arrays", "params", "message"),
    [
        ({"x": np.zeros((8, 3)), "y": np.arange(8) % 2}, {"y_key": "label"}, r"no array 'label' .*arrays: x, y"),
        ({"x": np.zeros((8, 3, 2, 2)), "y": np.arange(8) % 2}, {"modality": "time_series"},
         r"modality=time_series needs x with 3 dimensions, got shape \(8, 3, 2, 2\)"),
        ({"x": np.zeros((8, 3)), "y": np.arange(7) % 2}, {}, r"8 inputs but 7 labels"),
        ({"x": np.zeros((8, 3)), "y": np.arange(8) % 2, "m": np.zeros((8, 4))}, {"masks_key": "m"},
         r"masks \(8, 4\) do not have the shape of x \(8, 3\)"),
        ({"x": np.full((8, 3), np.nan), "y": np.arange(8) % 2}, {}, r"NaN or infinite"),
        ({"x": np.zeros((8, 3)), "y": np.arange(8) % 2}, {"modality": "text"}, r"integer token ids"),
        ({"x": np.array([["a"]] * 8), "y": np.arange(8) % 2}, {}, r"non-numeric dtype"),
    ],
)
def test_npz_errors_are_one_clear_line(tmp_path, arrays, params, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(UserError, match=message) as caught:
        DATASETS.create("npz_arrays", {"path": str(tmp_path / "d.npz"), **params}).build(seed=0)
    assert "\n" not in str(caught.value)


def test_npz_refuses_pickled_objects(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.array([{"a": 1}] * 4, dtype=object), y=np.arange(4) % 2)
    with pytest.raises(UserError, match="pickled object arrays"):
        DATASETS.create("npz_arrays", {"path": str(tmp_path / "d.npz")}).build(seed=0)


# User data: image folder -----------------------------------------------------------------------------------
def write_image(path, value: int, size: int = 10) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, dtype=np.uint8)).save(path)


def test_image_folder_labels_ids_and_pixels(tmp_path):
    for i in range(5):
        write_image(tmp_path / "cat" / f"{i}.png", 0)
        write_image(tmp_path / "dog" / f"{i}.png", 255)
    dataset = DATASETS.create("image_folder", {"path": str(tmp_path), "image_size": 8, "test_size": 0.4}).build(0)
    assert dataset.input_shape == (1, 8, 8) and dataset.n_classes == 2 and len(dataset.test) == 4
    for sample_id, x, y in zip(dataset.test.ids, dataset.test.x, dataset.test.y):
        folder = sample_id.split("/")[0]
        assert int(y) == ["cat", "dog"].index(folder) and float(x.mean()) == (0.0 if folder == "cat" else 1.0)
    rgb = DATASETS.create("image_folder", {"path": str(tmp_path), "image_size": 8, "channels": 3}).build(0)
    assert rgb.input_shape == (3, 8, 8)


def test_image_folder_says_when_the_default_grey_read_loses_colour(tmp_path, capsys):
    """``channels`` defaults to 1: colour photos were turned grey without a word (red and green squares of equal
    luminance become the same image). Grey images, also saved as RGB, read without a warning."""
    from PIL import Image

    for i in range(3):
        write_image(tmp_path / "grey" / "a" / f"{i}.png", 10)
        (tmp_path / "grey" / "b").mkdir(exist_ok=True)
        Image.fromarray(np.full((6, 6, 3), 40 * i, dtype=np.uint8)).save(tmp_path / "grey" / "b" / f"{i}.png")
        for name, colour in (("red", (255, 0, 0)), ("green", (0, 130, 0))):
            (tmp_path / "rgb" / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.tile(np.array(colour, np.uint8), (6, 6, 1))).save(tmp_path / "rgb" / name / f"{i}.png")
    DATASETS.create("image_folder", {"path": str(tmp_path / "grey"), "image_size": 6}).build(0)
    assert capsys.readouterr().err == ""
    grey = DATASETS.create("image_folder", {"path": str(tmp_path / "rgb"), "image_size": 6}).build(0)
    assert grey.train.x.unique().numel() == 1  # red and green: one grey level
    assert (f"dataset image_folder: 6 of 6 images in {tmp_path / 'rgb'} are in colour (e.g. green/0.png); "
            "channels=1 reads them as grey, losing colour: set dataset.channels=3 to keep it") in capsys.readouterr().err
    DATASETS.create("image_folder", {"path": str(tmp_path / "rgb"), "image_size": 6, "channels": 3}).build(0)
    assert capsys.readouterr().err == ""


def test_image_folder_errors(tmp_path):
    with pytest.raises(UserError, match="folder not found"):
        DATASETS.create("image_folder", {"path": str(tmp_path / "missing")}).build(0)
    write_image(tmp_path / "only" / "a.png", 3)
    with pytest.raises(UserError, match="one sub-folder per class .* found 1"):
        DATASETS.create("image_folder", {"path": str(tmp_path)}).build(0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="class folder .*empty has no images"):
        DATASETS.create("image_folder", {"path": str(tmp_path)}).build(0)
    (tmp_path / "empty" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read image .*broken.png"):
        DATASETS.create("image_folder", {"path": str(tmp_path)}).build(0)
