"""User tables: categorical/text columns encoded by policy, per-column attributions, missing values, split column."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import xaibench
from tests.conftest import FAST_METRICS
from xaibench.data.user.encoding import column_attributions
from xaibench.errors import UserError
from xaibench.registry import DATASETS


def _table(path, n=60):
    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "green", "blue"], n)
    size = rng.normal(size=n)
    size[[3, 17]] = np.nan
    comment = rng.choice(["great product", "bad", "ok I guess"], n)
    label = np.where((colour == "red") | (size > 1), "yes", "no")
    frame = pd.DataFrame({"colour": colour, "size": size, "comment": comment, "label": label,
                          "part": np.where(np.arange(n) % 4 == 0, "test", "train")})
    frame.to_csv(path, index=False)
    return frame


def _build(path, **params):
    return DATASETS.create("csv_table", {"path": str(path), "target": "label", **params}).build(0)


def test_onehot_groups_and_per_column_attributions_sum_the_group(tmp_path):
    _table(tmp_path / "t.csv")
    data = _build(tmp_path / "t.csv", missing="median", split_column="part")
    groups = dict(data.feature_groups)
    assert list(groups) == ["colour", "size", "comment"]  # original columns, in file order (part is the split)
    assert [data.feature_names[i] for i in groups["colour"]] == ["colour=blue", "colour=green", "colour=red"]
    assert len(groups["comment"]) == 3 and len(groups["size"]) == 1
    assert len(data.test) == 15 and data.train.x.shape[1] == 7
    onehot = data.train.x[:, list(groups["colour"])].numpy()
    assert (onehot.sum(axis=1) == 1).all()  # exactly one category per row
    a = np.random.default_rng(1).normal(size=(4, 7))
    per_column = column_attributions(a, data.feature_groups)
    np.testing.assert_allclose(per_column[:, 0], a[:, list(groups["colour"])].sum(axis=1))
    np.testing.assert_allclose(per_column.sum(axis=1), a.sum(axis=1))


def test_ordinal_policy_keeps_one_feature_per_column(tmp_path):
    _table(tmp_path / "t.csv")
    data = _build(tmp_path / "t.csv", missing="mean", categorical="ordinal", standardize=False)
    assert data.feature_names == ("size", "colour", "comment", "part")
    assert set(np.unique(data.train.x[:, 1].numpy())) <= {0.0, 1.0, 2.0}


def test_missing_values_and_text_columns_are_refused_with_the_column_named(tmp_path):
    _table(tmp_path / "t.csv")
    with pytest.raises(UserError, match=r"missing values in column\(s\) size; impute them with dataset.missing="):
        _build(tmp_path / "t.csv")
    with pytest.raises(UserError, match=r"non-numeric feature column\(s\) colour, comment"):
        _build(tmp_path / "t.csv", missing="mean", categorical="refuse")
    with pytest.raises(UserError, match="split_column 'colour' must hold only train/test"):
        _build(tmp_path / "t.csv", missing="mean", split_column="colour")


@pytest.mark.slow
def test_sweep_records_grouping_and_display_name(workdir):
    _table(workdir / "t.csv")
    table = xaibench.run(["model=mlp", "dataset=csv_table", "dataset.path=t.csv", "dataset.target=label",
                          "dataset.missing=median", "dataset.label=Shop reviews", "method=saliency", "n_samples=5",
                          "model.epochs=5", *FAST_METRICS])
    assert set(table["dataset_label"]) == {"Shop reviews"} and set(table["dataset"]) == {"csv_table"}
    params = json.loads(table["dataset_params"].iloc[0])
    assert params["encoded_columns"]["colour"] == ["colour=blue", "colour=green", "colour=red"]
    assert "label" not in params  # a display name is not a parameter (nor in any key)


def test_a_semicolon_csv_with_decimal_commas_reads_as_the_same_table_with_sep_and_decimal(tmp_path):
    """A European spreadsheet's export (``a;b;c``, numbers ``3,5``) gives the comma file's features bit for bit
    with ``sep=';'`` and ``decimal=','``; a tab file with ``sep`` spelled ``\\t`` as on a command line too."""
    frame = _table(tmp_path / "plain.csv")
    frame.to_csv(tmp_path / "semi.csv", sep=";", decimal=",", index=False)
    frame.to_csv(tmp_path / "tabs.txt", sep="\t", index=False)
    plain = _build(tmp_path / "plain.csv", missing="median")
    semi = _build(tmp_path / "semi.csv", sep=";", decimal=",", missing="median")
    tabs = _build(tmp_path / "tabs.txt", sep="\\t", missing="median")
    for other in (semi, tabs):
        assert other.feature_names == plain.feature_names
        assert np.array_equal(other.train.x.numpy(), plain.train.x.numpy())
        assert np.array_equal(other.test.y.numpy(), plain.test.y.numpy())
    with pytest.raises(UserError, match="decimal comma"):
        _build(tmp_path / "semi.csv", sep=";", missing="median")


def test_numbers_with_thousands_separators_read_as_numbers_with_thousands_and_are_refused_without(tmp_path):
    """``1,234.5`` (a quoted field of a comma file) and ``1.234,5`` (a European export) were read as text and
    one-hot encoded, one feature per amount; ``dataset.thousands`` reads them as the plain file's numbers, bit for
    bit, and without it each is refused naming the option (a bare ``1,234`` names both readings)."""
    frame = _table(tmp_path / "plain.csv").assign(amount=lambda f: np.arange(len(f)) * 1234.5 - 5000.25)
    frame.to_csv(tmp_path / "plain.csv", index=False)
    written = [f"{v:,.2f}" for v in frame["amount"]]
    frame.assign(amount=written).to_csv(tmp_path / "us.csv", index=False)
    european = [w.replace(",", " ").replace(".", ",").replace(" ", ".") for w in written]
    frame.assign(amount=european).to_csv(tmp_path / "eu.csv", sep=";", decimal=",", index=False)
    plain = _build(tmp_path / "plain.csv", missing="median")
    for path, options in (("us.csv", {"thousands": ","}), ("eu.csv", {"sep": ";", "decimal": ",", "thousands": "."})):
        read = _build(tmp_path / path, missing="median", **options)
        assert read.feature_names == plain.feature_names and "amount" in read.feature_names
        assert np.array_equal(read.train.x.numpy(), plain.train.x.numpy())
    with pytest.raises(UserError, match=r"column\(s\) amount of .*us.csv hold numbers written with a decimal point "
                                        r"and commas between thousands \(e.g. '-5,000.25'\), which would be read as "
                                        r"text categories: set \"dataset.thousands=','\""):
        _build(tmp_path / "us.csv", missing="median")
    with pytest.raises(UserError, match=r"hold numbers written with a decimal comma and points between thousands "
                                        r".*set \"dataset.thousands='.'\" \(text on purpose"):
        _build(tmp_path / "eu.csv", sep=";", decimal=",", missing="median")
    frame.assign(amount=["1,234"] * len(frame)).to_csv(tmp_path / "ambiguous.csv", index=False)
    with pytest.raises(UserError, match=r"set \"dataset.thousands=','\" if ',' separates thousands, "
                                        r"\"dataset.decimal=','\" if it is the decimal mark"):
        _build(tmp_path / "ambiguous.csv", missing="median")
    # columns the dataset does not read as numbers are not checked: left out of features, or the target
    assert "amount" not in _build(tmp_path / "us.csv", missing="median", features=["colour", "size"]).feature_names
    frame.assign(label=np.where(frame["label"] == "yes", "1,000", "2,000")).to_csv(tmp_path / "target.csv",
                                                                                 index=False)
    assert _build(tmp_path / "target.csv", missing="median").class_names == ("1,000", "2,000")
    # text on purpose stays text; a bad separator is refused
    assert "amount=1,234" in _build(tmp_path / "ambiguous.csv", missing="median",
                                    categorical_columns=["amount"]).feature_names
    with pytest.raises(UserError, match="thousands must be one character other than the decimal mark"):
        _build(tmp_path / "us.csv", missing="median", thousands=".", decimal=".")


def test_a_row_number_column_and_a_constant_column_are_warned_about_and_an_id_column_is_not(tmp_path, capsys,
                                                                                              monkeypatch):
    monkeypatch.setattr("xaibench.data.user.encoding._WARNED", set())  # warnings are once per process
    frame = _table(tmp_path / "t.csv").assign(customer=np.arange(5000, 5060), country="FR", visits=np.arange(60) % 7)
    frame.to_csv(tmp_path / "t.csv", index=False)
    data = _build(tmp_path / "t.csv", missing="median")
    assert {"customer", "country=FR", "visits"} <= set(data.feature_names)  # still features: a warning, not a refusal
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("xaibench: warning:") and "column(s) customer hold a distinct whole number per row"
               in line and "dataset.id_column=customer" in line for line in lines)
    assert any("column(s) country hold one value on every training row" in line for line in lines)
    assert not any("visits" in line or "size" in line for line in lines)  # small counts and real numbers: no warning
    _build(tmp_path / "t.csv", missing="median", id_column="customer", features=["colour", "size", "comment"])
    assert capsys.readouterr().err == ""  # named as the ids and the constant left out: silent
