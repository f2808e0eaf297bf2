"""Bring your own, as a new user would: scikit-learn models fitted on class names, tables with id-like text
columns, the caller's torch module after ``xaibench.explain``, and text shown as tokens."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import torch
from sklearn.linear_model import LogisticRegression

import xaibench
from xaibench.data.user.encoding import ColumnEncoder
from xaibench.engine.caller_state import left_as_it_was
from xaibench.errors import UserError
from xaibench.registry import DATASETS, MODELS

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3)).astype(np.float32)
NAMES = np.array(["benign", "malignant", "unclear"])[np.argmax(X @ RNG.normal(size=(3, 3)), axis=1)]


def test_a_model_fitted_on_class_names_is_explained_and_scored_through_the_api():
    model = LogisticRegression().fit(X, NAMES)  # classes_ = benign, malignant, unclear
    by_name = xaibench.explain(model, X[:6], method="feature_ablation", targets=NAMES[:6], explain_output="log_softmax")
    by_index = xaibench.explain(model, X[:6], method="feature_ablation", explain_output="log_softmax",
                                targets=np.searchsorted(model.classes_, NAMES[:6]))
    torch.testing.assert_close(by_name, by_index, rtol=0, atol=0)
    proba = model.predict_proba(X[:6].astype(np.float64))  # ablating feature f to 0 moves log p_target by:
    for f in range(3):
        ablated = X[:6].astype(np.float64).copy()
        ablated[:, f] = 0.0
        index = np.searchsorted(model.classes_, NAMES[:6])
        expected = np.log(proba[np.arange(6), index]) - np.log(model.predict_proba(ablated)[np.arange(6), index])
        np.testing.assert_allclose(by_name[:, f].numpy(), expected, atol=1e-4)
    rows = xaibench.evaluate(model, X[:6], NAMES[:6], by_name, metrics=["sparseness"], target="label")
    assert rows["target"].tolist() == np.searchsorted(model.classes_, NAMES[:6]).tolist()
    predicted = xaibench.evaluate(model, X[:6], NAMES[:6], by_name, metrics=["sparseness"])
    assert predicted["target"].tolist() == np.searchsorted(model.classes_, model.predict(X[:6])).tolist()
    with pytest.raises(UserError, match=r"^y holds 'Benign', not a class of the model \(classes: benign, "
                                        r"malignant, unclear\)$"):
        xaibench.evaluate(model, X[:6], ["Benign", *NAMES[1:6]], by_name, metrics=["sparseness"])


def _table(tmp_path, labels):
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=labels)
    frame.to_csv(tmp_path / "table.csv", index=False)
    return DATASETS.create("csv_table", {"path": str(tmp_path / "table.csv"), "target": "label",
                                         "standardize": False}).build(0)


def test_the_table_and_the_model_agree_on_classes_by_name(tmp_path):
    data = _table(tmp_path, NAMES)
    assert data.class_names == ("benign", "malignant", "unclear")
    model = LogisticRegression().fit(X, NAMES)
    sio.dump(model, tmp_path / "model.skops")
    module = MODELS.create("sklearn_estimator", {"path": str(tmp_path / "model.skops")}).build(data)
    x = data.test.x
    np.testing.assert_allclose(module(x).softmax(-1).numpy(), model.predict_proba(x.numpy().astype(np.float64)),
                               atol=1e-6)
    names = np.array(data.class_names)[data.test.y.numpy()]  # the dataset's labels are the model's classes
    assert (module(x).argmax(1).numpy() == data.test.y.numpy()).mean() == pytest.approx(
        (model.predict(x.numpy()) == names).mean())

    numbers = np.where(NAMES == "benign", 10, np.where(NAMES == "malignant", 2, 1))  # the table reads 1, 2, 10
    data = _table(tmp_path, numbers)
    text = LogisticRegression().fit(X, numbers.astype(str))  # classes_ "1", "10", "2": another order
    sio.dump(text, tmp_path / "text.skops")
    module = MODELS.create("sklearn_estimator", {"path": str(tmp_path / "text.skops")}).build(data)
    np.testing.assert_allclose(module(data.test.x).softmax(-1).numpy(),
                               text.predict_proba(data.test.x.numpy().astype(np.float64))[:, [0, 2, 1]], atol=1e-6)

    sio.dump(LogisticRegression().fit(X[NAMES != "unclear"], NAMES[NAMES != "unclear"]), tmp_path / "two.skops")
    with pytest.raises(UserError, match=r"predicts classes \[benign, malignant\], dataset csv_table has \[1, 2, 10\]"):
        MODELS.create("sklearn_estimator", {"path": str(tmp_path / "two.skops")}).build(data)


@pytest.mark.slow
def test_sweep_and_report_of_a_model_fitted_on_class_names(workdir):
    binary = np.where(X[:, 0] + X[:, 1] > 0, "malignant", "benign")
    pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=binary).to_csv("table.csv", index=False)
    model = LogisticRegression().fit(X, binary)
    sio.dump(model, "model.skops")
    table = xaibench.run(["model=sklearn_estimator", "model.path=model.skops", "dataset=csv_table",
                          "dataset.path=table.csv", "dataset.target=label", "dataset.standardize=false",
                          "method=feature_ablation", "n_samples=3", "metrics=sparsity"])
    assert set(table["status"]) == {"ok"}
    from xaibench.report.explanation_figures import cell_gallery
    from xaibench.results.explanations import explanations

    (cell,) = explanations(table, store="results/store")
    predicted = model.predict(cell.inputs)
    assert [np.array(cell.class_names)[t] for t in cell.targets] == predicted.tolist()
    headings = [ax.get_title() for ax in cell_gallery([cell]).axes[:3]]
    # the sweep explained the predictions (target=predicted): the heading says so and shows the label beside it
    labels = np.array(cell.class_names)[cell.labels]
    assert [h.split("\n", 1)[1].replace("\n", " / ") for h in headings] == [
        f"pred {p} / label {y}" for p, y in zip(predicted, labels)]


def test_id_like_text_columns_are_refused_or_warned_about(capsys):
    n = 150
    frame = pd.DataFrame({"a": RNG.normal(size=n), "user": [f"u{i:03d}" for i in range(n)],
                          "device": RNG.choice(["mobile", "desktop"], n)})
    train, test = np.arange(120), np.arange(120, n)
    with pytest.raises(UserError, match=r"^t: one-hot encoding user \(120 distinct values\) would add more than "
                                        r"dataset.max_categories=100 features per column; .*dataset.features=\[...\]"):
        ColumnEncoder().fit_transform(frame, train, test, "t")
    declared = ColumnEncoder(categorical_columns=("user",))
    assert declared.fit_transform(frame, train, test, "t")[0].shape == (120, 1 + 120 + 2)
    assert capsys.readouterr().err == ""  # declared on purpose: no warning
    ordinal = ColumnEncoder(categorical="ordinal")
    assert ordinal.fit_transform(frame, train, test, "t")[0].shape == (120, 3)  # one feature, but still an id:
    ColumnEncoder(categorical="ordinal").fit_transform(frame, train, test, "t")  # warned once per process
    assert capsys.readouterr().err == ("xaibench: warning: t: column(s) user (120 distinct values in 120 training "
                                       "rows) look like ids or free text: each value says little about other rows; "
                                       "leave them out with dataset.features=[...] (declare them in "
                                       "dataset.categorical_columns to silence this)\n")
    few = ColumnEncoder(max_categories=1)
    with pytest.raises(UserError, match="device \\(2 distinct values\\)"):
        few.fit_transform(frame[["a", "device"]], train, test, "t")


def test_explain_and_evaluate_leave_the_callers_module_as_it_was():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    net.train()
    net[0].bias.requires_grad_(False)
    net(torch.as_tensor(X)).sum().backward()  # the caller's pending gradients
    before = {name: (p, p.data_ptr(), p.requires_grad, p.grad, p.grad.clone() if p.grad is not None else None)
              for name, p in net.named_parameters()}
    stats = net[1].running_mean.clone()
    attributions = xaibench.explain(net, X[:6], method="saliency")
    xaibench.evaluate(net, X[:6], [0, 1] * 3, attributions, metrics=["sparseness"], method="saliency")
    assert all(module.training for module in net.modules())  # explain put it in eval mode, and back
    for name, p in net.named_parameters():
        same, pointer, requires_grad, grad, values = before[name]
        assert p is same and p.data_ptr() == pointer and p.requires_grad == requires_grad and p.grad is grad
        assert values is None or torch.equal(p.grad, values)
    torch.testing.assert_close(net[1].running_mean, stats, rtol=0, atol=0)  # eval mode: batch stats not updated


def test_a_device_move_is_undone_with_the_original_tensors():
    """Without a GPU here: a move to the ``meta`` device drops the values, so getting them back proves the
    original tensors (storage and device) are restored, not copies moved back."""
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    pointers = [t.data_ptr() for t in net.state_dict().values()]
    parameters = list(net.parameters())
    with left_as_it_was(net):
        net.to("meta").eval().requires_grad_(False)
        assert net[0].weight.device.type == "meta"
    assert net.training and all(p.requires_grad and p.device.type == "cpu" for p in net.parameters())
    assert [t.data_ptr() for t in net.state_dict().values()] == pointers
    assert all(p is q for p, q in zip(net.parameters(), parameters, strict=True))  # .to("meta") replaced them
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, weights[key], rtol=0, atol=0)


def test_text_datasets_name_their_tokens(tmp_path):
    data = DATASETS.create("synthetic_text", {"n_samples": 40}).build(0)
    tokens = [data.vocabulary.decode(ids) for ids in data.test.x[:5]]
    keys = [[t.startswith("k") for t in sample] for sample in tokens]
    assert keys == data.test.masks[:5].bool().tolist()  # the planted keys are the k<class>.<j> tokens
    owner = {int(t[1]) for sample, y in zip(tokens, data.test.y[:5]) for t in sample if t.startswith("k")}
    assert owner <= {0, 1} and all(t[1] == str(int(y)) for sample, y in zip(tokens, data.test.y[:5])
                                   for t in sample if t.startswith("k"))
    np.savez(tmp_path / "ids.npz", x=np.array([[2, 1, 0, 0], [3, 3, 1, 0]] * 5), y=np.arange(10) % 2,
             vocab=np.array(["<pad>", "good", "bad", "film"]))
    npz = DATASETS.create("npz_arrays", {"path": str(tmp_path / "ids.npz"), "modality": "text",
                                         "vocab_key": "vocab"}).build(0)
    assert npz.vocabulary.decode([3, 3, 1, 7]) == ["film", "film", "good", "#7"]
    with pytest.raises(UserError, match="vocab_key names token strings, for modality=text only"):
        DATASETS.create("npz_arrays", {"path": str(tmp_path / "ids.npz"), "vocab_key": "vocab"}).build(0)


def test_text_gallery_shows_tokens_aligned_and_shortened():
    from xaibench.report.figures import attribution_gallery

    tokens = [["[CLS]", "tokenization", "is", "hard", "[SEP]", "x", "y", "z"], ["[CLS]", "short", "[SEP]"]]
    relevance = np.arange(16, dtype=float).reshape(2, 8) - 8.0
    figure = attribution_gallery(np.zeros((2, 8), dtype=int), {"ig": relevance}, modality="text", tokens=tokens,
                                 targets=[1, 0], class_names=("negative", "positive"))
    first, second = figure.axes[2].texts, figure.axes[3].texts
    assert [t.get_text() for t in first] == ["[CLS]", "tokeni\u2026", "is", "hard", "[SEP]", "x", "y", "z"]
    assert [t.get_text() for t in second] == ["[CLS]", "short", "[SEP]"]  # padding left out, not drawn
    assert first[0].get_position()[1] == second[0].get_position()[1]  # lines at the same heights side by side
    assert [ax.get_title().split("\n")[1] for ax in figure.axes[:2]] == ["class positive", "class negative"]


def test_bundled_datasets_name_their_classes_and_take_models_fitted_on_names_or_indices(tmp_path):
    data = DATASETS.create("breast_cancer").build(0)
    assert data.class_names == ("malignant", "benign")  # class 0 is malignant: not the names' sorted order
    x = data.train.x.numpy().astype(np.float64)
    by_name = LogisticRegression(max_iter=500).fit(x, np.array(data.class_names)[data.train.y.numpy()])
    by_index = LogisticRegression(max_iter=500).fit(x, data.train.y.numpy())
    for model, name in ((by_name, "names.skops"), (by_index, "indices.skops")):
        sio.dump(model, tmp_path / name)
        module = MODELS.create("sklearn_estimator", {"path": str(tmp_path / name)}).build(data)
        predicted = module(data.test.x).argmax(1).numpy()
        assert (predicted == data.test.y.numpy()).mean() > 0.9  # both read the same classes
    np.testing.assert_allclose(module(data.test.x).softmax(-1).numpy(),  # by_index: columns as they are
                               by_index.predict_proba(data.test.x.numpy().astype(np.float64)), atol=1e-6)
