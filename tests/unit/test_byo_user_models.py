"""Bring your own, as researchers' own models really come: scikit-learn models fitted on a DataFrame (columns in
their own order), networks in float64, single-feature data and channel-last images. Each either works, with
numbers checked against the model itself, or is refused in one line (cases in tests/reliability/test_bad_input.py).
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import pandas as pd
import skops.io as sio
import torch
from sklearn.linear_model import LogisticRegression

import xaibench
from xaibench.errors import UserError
from xaibench.registry import DATASETS, MODELS

RNG = np.random.default_rng(0)
FRAME = pd.DataFrame(RNG.normal(size=(40, 3)), columns=["age", "dose", "weight"])
FRAME["outcome"] = np.where(FRAME["age"] + 2 * FRAME["dose"] > 0, "worse", "better")
REVERSED = ["weight", "dose", "age"]  # the model's own column order, not the table's


class Float64Net(torch.nn.Module):
    """A network whose weights are float64 (``.double()`` in its constructor), as numpy-minded code makes them."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def test_a_prefitted_model_gets_the_tables_columns_by_name_without_warnings(tmp_path, capsys):
    model = LogisticRegression().fit(FRAME[REVERSED], FRAME["outcome"])  # fitted on a DataFrame
    FRAME.to_csv(tmp_path / "visits.csv", index=False)
    sio.dump(model, tmp_path / "model.skops")
    data = DATASETS.create("csv_table", {"path": str(tmp_path / "visits.csv"), "target": "outcome",
                                         "standardize": False}).build(0)
    assert data.feature_names == ("age", "dose", "weight")
    module = MODELS.create("sklearn_estimator", {"path": str(tmp_path / "model.skops")}).build(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names" per call
        log_p = module(data.test.x)
    expected = model.predict_proba(pd.DataFrame(data.test.x.numpy(), columns=data.feature_names)[REVERSED])
    np.testing.assert_allclose(log_p.exp().numpy(), expected, rtol=1e-5)  # classes: better, worse (sorted)
    assert capsys.readouterr().err == ""
    standardised = DATASETS.create("csv_table", {"path": str(tmp_path / "visits.csv"), "target": "outcome"}).build(0)
    MODELS.create("sklearn_estimator", {"path": str(tmp_path / "model.skops")}).build(standardised)
    assert "model.skops was fitted on a DataFrame (named columns), but dataset csv_table standardises its features: " \
           "if the model was fitted on raw values, explain it on a csv_table with dataset.standardize=false" in \
           capsys.readouterr().err


def test_the_api_matches_a_dataframes_columns_to_the_model_by_name():
    model = LogisticRegression().fit(FRAME[REVERSED], FRAME["outcome"])
    x = FRAME[["age", "dose", "weight"]].iloc[:5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        by_name = xaibench.explain(model, x, method="feature_ablation", explain_output="probability",
                                   targets=FRAME["outcome"][:5])
        in_model_order = xaibench.explain(model, x[REVERSED], method="feature_ablation",
                                          explain_output="probability", targets=FRAME["outcome"][:5])
        as_array = xaibench.explain(model, x.to_numpy()[:, ::-1], method="feature_ablation",  # weight, dose, age
                                    explain_output="probability", targets=FRAME["outcome"][:5])
    torch.testing.assert_close(by_name, in_model_order.flip(1), rtol=0, atol=0)  # same model, same attributions
    torch.testing.assert_close(as_array, in_model_order, rtol=0, atol=0)  # a negative-stride view is read too
    index = np.searchsorted(model.classes_, FRAME["outcome"][:5])
    ablated = x.copy()
    ablated["dose"] = 0.0
    p = model.predict_proba(x[REVERSED])[np.arange(5), index]
    p_ablated = model.predict_proba(ablated[REVERSED])[np.arange(5), index]
    np.testing.assert_allclose(by_name[:, 1].numpy(), p - p_ablated, atol=1e-6)  # occluding dose to 0


def test_a_torch_model_takes_a_dataframe_and_a_series_without_warnings():
    from xaibench.engine.array_inputs import as_tensor

    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    x, targets = FRAME[["age", "dose", "weight"]].iloc[:5], pd.Series([0, 1, 0, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warned "The given NumPy array is not writable" (pandas copy-on-write)
        attributions = xaibench.explain(net, x, method="saliency", targets=targets, explain_output="logit")
    expected = net.weight.detach()[list(targets)].abs()  # saliency of a linear logit: |w_t|
    torch.testing.assert_close(attributions, expected, rtol=0, atol=0)
    read_only = np.arange(4.0)
    read_only.flags.writeable = False
    tensor = as_tensor(read_only, "x")
    tensor[0] = 9.0  # a tensor over read-only memory would write into the caller's array (or crash)
    assert read_only[0] == 0.0 and tensor[0] == 9.0


def test_a_float64_network_is_explained_as_it_is_and_keeps_its_dtype():
    torch.manual_seed(0)
    net = Float64Net()
    x = torch.randn(5, 3)
    targets = [0, 1, 0, 1, 1]
    attributions = xaibench.explain(net, x, method="integrated_gradients", targets=targets, explain_output="logit")
    weight = net.linear.weight.detach()
    expected = (weight[targets] * x.double()).float()  # IG of a linear logit from a zero baseline: w_t * x
    torch.testing.assert_close(attributions, expected, rtol=0, atol=1e-6)
    assert net.linear.weight.dtype == torch.float64 and attributions.dtype == torch.float32
    rows = xaibench.evaluate(net, x, targets, attributions, metrics=["sparseness", "random_logit"],
                             method="integrated_gradients", explain_output="logit")
    assert set(rows["status"]) == {"ok"}


def test_a_torch_module_of_float64_weights_runs_in_the_sweep(tmp_path):
    torch.manual_seed(0)
    torch.save(Float64Net().state_dict(), tmp_path / "net64.pt")
    FRAME.to_csv(tmp_path / "visits.csv", index=False)
    data = DATASETS.create("csv_table", {"path": str(tmp_path / "visits.csv"), "target": "outcome"}).build(0)
    spec = MODELS.create("torch_module", {"target": f"{__name__}.Float64Net",
                                          "state_dict": str(tmp_path / "net64.pt")})
    module = spec.build(data)
    scores = module(data.test.x[:4])
    assert scores.dtype == torch.float32
    assert spec.load(spec.build(data), spec.save(module))(data.test.x[:4]).equal(scores)  # cached and read back



def test_on_a_single_feature_quantus_metrics_do_not_apply_and_the_others_score():
    torch.manual_seed(0)
    net = torch.nn.Linear(1, 2)
    x = torch.randn(6, 1)
    attributions = xaibench.explain(net, x, method="integrated_gradients", explain_output="logit", targets=[1] * 6)
    weight = net.weight.detach()
    torch.testing.assert_close(attributions, weight[1] * x, rtol=0, atol=1e-6)  # w_t * (x - 0)
    rows = xaibench.evaluate(net, x, [0, 1] * 3, attributions, metrics=["sparseness", "conditional_shapley_distance"],
                             train=(torch.randn(20, 1), [0, 1] * 10), explain_output="logit")
    status = rows.groupby("metric")["status"].unique().map(list).to_dict()
    assert status == {"sparseness": ["not_applicable"], "conditional_shapley_distance": ["ok"]}
    assert set(rows.loc[rows.metric == "sparseness", "message"]) == {
        "metric sparseness compares the attributions of several features; the inputs have a single feature"}
    assert np.isfinite(rows.loc[rows.metric == "conditional_shapley_distance", "value"]).all()


def test_boolean_masks_are_ground_truth():
    torch.manual_seed(0)
    x = torch.randn(4, 6)
    masks = torch.zeros(4, 6, dtype=torch.bool)
    masks[:, :2] = True
    hits = torch.zeros(4, 6)
    hits[:, 0] = 1.0  # the peak inside the mask: pointing game 1
    rows = xaibench.evaluate(torch.nn.Linear(6, 2), x, [0] * 4, hits, metrics=["pointing_game"], masks=masks)
    assert rows["value"].tolist() == [1.0] * 4


def test_a_transformers_model_is_explained_as_it_is():
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(image_size=8, patch_size=4, num_channels=1, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=16, num_labels=3)
    torch.manual_seed(0)
    vit = transformers.ViTForImageClassification(config)  # returns an ImageClassifierOutput, not a tensor
    x, targets = torch.randn(3, 1, 8, 8), [0, 1, 2]
    attributions = xaibench.explain(vit, x, method="integrated_gradients", targets=targets, explain_output="logit",
                                    n_steps=64)
    with torch.no_grad():
        gap = vit(pixel_values=x).logits - vit(pixel_values=torch.zeros_like(x)).logits
    torch.testing.assert_close(attributions.flatten(1).sum(1), gap[range(3), targets], rtol=1e-2, atol=1e-4)
    with pytest.raises(UserError, match="needs attention, which this model does not offer; load it with "
                                        "attn_implementation='eager'"):
        xaibench.explain(vit, x, method="rollout")  # sdpa attention returns no maps
    bert = transformers.BertForSequenceClassification(transformers.BertConfig(
        vocab_size=12, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
        max_position_embeddings=8, num_labels=2, pad_token_id=0))
    ids = torch.tensor([[2, 5, 6, 3, 0, 0], [2, 7, 3, 0, 0, 0]])
    per_token = xaibench.explain(bert, ids, method="saliency")
    assert per_token.shape == (2, 6) and not per_token[ids == 0].any()  # padding is masked out: no attribution
    assert bert.training  # as the caller left it, but explained in eval mode (no dropout):
    torch.testing.assert_close(per_token, xaibench.explain(bert.eval(), ids, method="saliency"), rtol=0, atol=0)


def test_a_training_checkpoint_gives_its_state_dict(tmp_path):
    torch.manual_seed(0)
    trained = Float64Net()
    optimiser = torch.optim.SGD(trained.parameters(), lr=0.1, momentum=0.9)
    torch.save({"epoch": 3, "model_state_dict": trained.state_dict(), "optimizer_state_dict": optimiser.state_dict()},
               tmp_path / "checkpoint.pt")  # as training loops save them
    FRAME.to_csv(tmp_path / "visits.csv", index=False)
    data = DATASETS.create("csv_table", {"path": str(tmp_path / "visits.csv"), "target": "outcome"}).build(0)
    module = MODELS.create("torch_module", {"target": f"{__name__}.Float64Net",
                                            "state_dict": str(tmp_path / "checkpoint.pt")}).build(data)
    torch.testing.assert_close(module(data.test.x), trained(data.test.x.double()).float(), rtol=0, atol=0)
    torch.save({"state_dict": {f"net.{k}": v for k, v in trained.state_dict().items()}, "epoch": 3},
               tmp_path / "lightning.pt")  # a LightningModule holding the network as self.net
    torch.save(torch.nn.DataParallel(trained).state_dict(), tmp_path / "parallel.pt")  # keys module.linear...
    for name in ("lightning.pt", "parallel.pt"):
        module = MODELS.create("torch_module", {"target": f"{__name__}.Float64Net",
                                                "state_dict": str(tmp_path / name)}).build(data)
        torch.testing.assert_close(module(data.test.x), trained(data.test.x.double()).float(), rtol=0, atol=0)


def test_a_torchscript_archive_gives_its_weights_and_a_pickled_model_is_refused_in_one_line(tmp_path):
    torch.manual_seed(0)
    trained = Float64Net()
    torch.jit.script(trained).save(str(tmp_path / "scripted.pt"))  # torch.jit.save: weights and code, no pickle
    torch.save(trained, tmp_path / "whole.pt")  # a whole pickled model: loading it runs code
    FRAME.to_csv(tmp_path / "visits.csv", index=False)
    data = DATASETS.create("csv_table", {"path": str(tmp_path / "visits.csv"), "target": "outcome"}).build(0)
    spec = {"target": f"{__name__}.Float64Net", "state_dict": str(tmp_path / "scripted.pt")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "looks like a TorchScript archive" warning would be a second line
        module = MODELS.create("torch_module", spec).build(data)
    torch.testing.assert_close(module(data.test.x), trained(data.test.x.double()).float(), rtol=0, atol=0)
    with pytest.raises(UserError) as refused:
        MODELS.create("torch_module", {**spec, "state_dict": str(tmp_path / "whole.pt")}).build(data)
    message = str(refused.value)
    assert "\n" not in message and f"pickled {__name__}.Float64Net" in message
    assert "torch.save(model.state_dict(), path)" in message and "WeightsUnpickler" not in message


class ReluNet(torch.nn.Module):
    """A small ReLU network: DeepLIFT and guided backprop hook its ``nn.ReLU``."""

    def __init__(self, n_out: int = 2) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class GpuNet(ReluNet):
    """A network whose code fixes a GPU device, as code written for (or traced on) a GPU does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x) + torch.zeros(1, device="cuda")


def test_a_torchscript_file_runs_without_its_class_and_hooked_methods_do_not_apply(tmp_path):
    torch.manual_seed(0)
    net = ReluNet()
    torch.jit.script(net).save(str(tmp_path / "scripted.pt"))
    torch.jit.trace(ReluNet(), torch.zeros(1, 3)).save(str(tmp_path / "traced.pt"))
    torch.jit.script(torch.nn.Sequential(torch.nn.Linear(5, 2))).save(str(tmp_path / "five.pt"))
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    FRAME.to_csv(tmp_path / "visits.csv", index=False)
    data = DATASETS.create("csv_table", {"path": str(tmp_path / "visits.csv"), "target": "outcome"}).build(0)
    module = MODELS.create("torch_module", {"state_dict": str(tmp_path / "scripted.pt")}).build(data)  # no target
    torch.testing.assert_close(module(data.test.x), net(data.test.x), rtol=0, atol=0)
    MODELS.create("torch_module", {"state_dict": str(tmp_path / "traced.pt")}).build(data)
    refusals = {  # what cannot be inferred, each in one line naming the fix
        "weights.pt": "weights.pt holds weights only (not a TorchScript archive); set model.target=",
        "five.pt": "forward fails on inputs of shape (3,) per sample: RuntimeError: mat1 and mat2 shapes cannot be "
                   "multiplied (8x3 and 5x2); the dataset gives 3 features (age, dose, weight)",  # was the first 200
        # characters of TorchScript's code listing
    }
    if not torch.cuda.is_available():  # was NotImplementedError: registered at ...PythonFallbackKernel.cpp:196
        torch.jit.script(GpuNet()).save(str(tmp_path / "gpu.pt"))
        refusals["gpu.pt"] = ("NotImplementedError: Could not run 'aten::empty.memory_format' with arguments from the "
                              "'CUDA' backend")
        refusals["gpu.pt "] = "its code creates tensors on a GPU ('cuda'), but models are built and checked on the CPU"
    for file, expected in refusals.items():
        with pytest.raises(UserError) as refused:
            MODELS.create("torch_module", {"state_dict": str(tmp_path / file.strip())}).build(data)
        assert expected in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(UserError, match="model.kwargs .n_in. configure model.target's class"):
        MODELS.create("torch_module", {"state_dict": str(tmp_path / "scripted.pt"), "kwargs": {"n_in": 3}}).build(data)
    x = data.test.x[:4]
    for method in ("deeplift", "deeplift_shap", "guided_backprop"):  # were plain gradients under the method's name
        with pytest.raises(xaibench.NotApplicable, match="a TorchScript model does not run"):
            xaibench.explain(module, x, method=method)
    torch.testing.assert_close(torch.as_tensor(xaibench.explain(module, x, method="integrated_gradients")),
                               torch.as_tensor(xaibench.explain(net, x, method="integrated_gradients")))
    from xaibench.engine.cell import CellSpec
    from xaibench.engine.runner import run_cell
    from xaibench.engine.store import Store

    cell = CellSpec(model={"name": "torch_module", "state_dict": str(tmp_path / "scripted.pt")},
                    dataset={"name": "csv_table", "path": str(tmp_path / "visits.csv"), "target": "outcome"},
                    method={"name": "deeplift"}, metrics={"sparseness": {}}, n_samples=2)
    rows = run_cell(cell, Store(tmp_path / "store")).rows  # a sweep records the reason, not an error
    assert set(rows["status"]) == {"not_applicable"} and rows["message"].str.contains("TorchScript").all()


class SmallCnn(torch.nn.Module):
    """A researcher's CNN for 8 x 8 grey images."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU())
        self.head = torch.nn.Linear(3 * 8 * 8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def test_your_own_cnn_gets_the_cam_methods_and_a_network_without_convolutions_does_not():
    from captum.attr import LayerAttribution, LayerGradCam

    from xaibench.data.sklearn_sets import Digits
    from xaibench.engine.applicability import cell_not_applicable
    from xaibench.explainers.cam._layers import feature_layer
    from xaibench.registry import EXPLAINERS

    spec = MODELS.create("torch_module", {"target": f"{__name__}.SmallCnn", "epochs": 1})
    for name in ("grad_cam", "grad_cam_pp", "score_cam"):  # were not_applicable: "needs conv, which model
        assert cell_not_applicable(spec, Digits(), EXPLAINERS.create(name, {})) is None  # torch_module does not offer"
    torch.manual_seed(0)
    net, x = SmallCnn().eval(), torch.rand(3, 1, 8, 8)
    target = net(x).argmax(1)
    expected = LayerAttribution.interpolate(LayerGradCam(net, net.features[1]).attribute(x, target=target), (8, 8),
                                            interpolate_mode="bilinear")
    attributions = xaibench.explain(net, x, method="grad_cam", targets=target, explain_output="logit")
    torch.testing.assert_close(torch.as_tensor(attributions), expected, rtol=1e-5, atol=1e-6)
    flat = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    with pytest.raises(UserError, match="method grad_cam needs conv, which this model does not offer"):
        xaibench.explain(flat, x, method="grad_cam")
    with pytest.raises(xaibench.NotApplicable, match="CAM methods need a model with nn.Conv1d / nn.Conv2d layers"):
        feature_layer(flat)  # a torch_module without convolutions: not_applicable rows, was a TypeError (error rows)


class BatchNormNet(torch.nn.Module):
    """A network with batch norm and dropout, as users bring them."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                          torch.nn.Dropout(0.2), torch.nn.Linear(8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def test_a_batch_norm_network_trains_in_suite_when_the_last_batch_holds_one_sample():
    from xaibench.models.training import accuracy, pinned_threads, train_classifier
    from xaibench.types import Split

    x = torch.tensor(np.random.default_rng(0).normal(size=(65, 3)), dtype=torch.float32)  # 64 + 1: a batch of one
    split = Split(x=x, y=(x[:, 0] > 0).long(), ids=tuple(map(str, range(65))))
    spec = MODELS.create("torch_module", {"target": f"{__name__}.BatchNormNet", "epochs": 40, "lr": 0.05})
    torch.manual_seed(0)
    module = train_classifier(BatchNormNet(), split, spec, seed=0)  # torch refused to batch-normalise one sample
    assert not module.training and accuracy(module, split) > 0.9
    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Linear(3, 2))
    expected = copy.deepcopy(plain)
    train_classifier(plain, split, spec, seed=0)
    optimiser = torch.optim.Adam(expected.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(0)
    with pinned_threads():  # as train_classifier: same summation order
        for _ in range(40):  # without batch norm every batch is used, the one-sample batch too, as before
            order = torch.randperm(65, generator=generator)
            for batch in (order[:64], order[64:]):
                optimiser.zero_grad()
                torch.nn.functional.cross_entropy(expected(x[batch]), split.y[batch]).backward()
                optimiser.step()
    torch.testing.assert_close(plain.state_dict(), expected.state_dict(), rtol=0, atol=0)


def test_the_index_pandas_writes_is_not_a_feature(tmp_path, capsys):
    FRAME.to_csv(tmp_path / "with_index.csv")  # index=True, pandas' default: a header-less column of row numbers
    FRAME.to_csv(tmp_path / "plain.csv", index=False)
    spec = {"target": "outcome"}
    data = DATASETS.create("csv_table", {**spec, "path": str(tmp_path / "with_index.csv")}).build(0)
    plain = DATASETS.create("csv_table", {**spec, "path": str(tmp_path / "plain.csv")}).build(0)
    assert data.feature_names == plain.feature_names == ("age", "dose", "weight")
    assert data.test.x.equal(plain.test.x) and data.test.ids == plain.test.ids
    assert capsys.readouterr().err == (
        "xaibench: warning: dataset csv_table: column(s) Unnamed: 0 have no header (the row index df.to_csv writes "
        "unless index=False) and are left out; name them in dataset.features to use them\n")
    named = DATASETS.create("csv_table", {**spec, "path": str(tmp_path / "with_index.csv"),
                                          "features": ["Unnamed: 0", "age"]}).build(0)
    assert named.feature_names == ("Unnamed: 0", "age")


def test_a_count_target_needs_a_declared_task_and_class_codes_pass(tmp_path):
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"a": rng.normal(size=300), "visits": np.arange(300) % 30})  # 30 whole numbers, 10 rows each
    table.assign(digit=np.arange(300) % 10).to_csv(tmp_path / "visits.csv", index=False)
    spec = {"path": str(tmp_path / "visits.csv"), "target": "visits", "features": ["a"]}
    with pytest.raises(UserError) as refused:  # was 30 classes, silently (flagged underfit at best)
        DATASETS.create("csv_table", spec).build(0)
    assert str(refused.value) == (
        "dataset csv_table: the target column 'visits' holds 30 distinct whole numbers (0 to 29, 10 rows per value on "
        "average): counts or measurements would become as many unordered classes; if they are class codes set "
        "dataset.task=classification, otherwise bin them into classes first (e.g. pandas.cut)")
    with pytest.raises(UserError, match="task=regression: xaibench benchmarks classifiers; bin the target column"):
        DATASETS.create("csv_table", {**spec, "task": "regression"}).build(0)
    declared = DATASETS.create("csv_table", {**spec, "task": "classification"}).build(0)
    assert declared.n_classes == 30 and declared.class_names[:3] == ("0", "1", "2")
    assert DATASETS.create("csv_table", {**spec, "target": "digit"}).build(0).n_classes == 10  # ten codes: as before
    np.savez(tmp_path / "counts.npz", x=rng.normal(size=(300, 2)), y=np.arange(300) % 30 + 0.0)
    with pytest.raises(UserError, match="the label array 'y' holds 30 distinct whole numbers .0 to 29"):
        DATASETS.create("npz_arrays", {"path": str(tmp_path / "counts.npz")}).build(0)
    np.savez(tmp_path / "images.npz", x=rng.normal(size=(300, 1, 4, 4)), y=np.arange(300) % 30)  # CIFAR-100-like codes
    images = DATASETS.create("npz_arrays", {"path": str(tmp_path / "images.npz"), "modality": "image"}).build(0)
    assert images.n_classes == 30 and images.class_names[-1] == "29"  # image labels are class codes: not asked


def test_files_in_class_folders_that_are_not_images_are_named_in_one_warning(tmp_path, capsys):
    from PIL import Image

    for label in ("bar", "dot"):
        (tmp_path / "shapes" / label / ".ipynb_checkpoints").mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((4, 4), 40 * i, dtype=np.uint8)).save(tmp_path / "shapes" / label / f"{i}.png")
        (tmp_path / "shapes" / label / ".DS_Store").write_bytes(b"\0")  # system files: left out without a word
        (tmp_path / "shapes" / label / "Thumbs.db").write_bytes(b"\0")
        Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / "shapes" / label / ".ipynb_checkpoints" /
                                                               "0-checkpoint.png")  # was a duplicate sample
    (tmp_path / "shapes" / "bar" / "scan.dcm").write_bytes(b"DICM")
    (tmp_path / "shapes" / "dot" / "notes.txt").write_text("dots are round")
    data = DATASETS.create("image_folder", {"path": str(tmp_path / "shapes"), "image_size": 4}).build(0)
    images = [f"{label}/{i}.png" for label in ("bar", "dot") for i in range(3)]
    assert sorted((*data.train.ids, *data.test.ids)) == images
    assert capsys.readouterr().err == (  # they were left out silently
        f"xaibench: warning: dataset image_folder: 2 file(s) in the class folders of {tmp_path / 'shapes'} are not "
        "images and are left out (e.g. bar/scan.dcm); images end in .bmp, .gif, .jpeg, .jpg, .png, .tif, .tiff, "
        ".webp: convert or move the others\n")
    torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))).save(str(tmp_path / "n.pt"))
    with pytest.raises(UserError, match=r"multiplied \(2x16 and 64x2\); the dataset gives images of \(1, 4, 4\) "
                                        r"\(channels, height, width\): set dataset.image_size and dataset.channels"):
        MODELS.create("torch_module", {"state_dict": str(tmp_path / "n.pt")}).build(data)  # trained on 8 x 8 images
    (tmp_path / "shapes" / "dot" / "3.png").write_text("not an image")
    with pytest.raises(UserError) as refused:
        DATASETS.create("image_folder", {"path": str(tmp_path / "shapes"), "image_size": 4}).build(0)
    assert str(refused.value) == (f"dataset image_folder: cannot read image {tmp_path / 'shapes' / 'dot' / '3.png'} "
                                  "(cannot identify image file); replace it with a readable image or move it out of "
                                  "the class folder")


def test_image_folder_images_are_normalised_as_the_model_was_trained(tmp_path):
    from PIL import Image

    for folder in ("cat", "dog"):
        (tmp_path / folder).mkdir()
        for i in range(3):
            Image.fromarray(RNG.integers(0, 255, (4, 4, 3)).astype(np.uint8)).save(tmp_path / folder / f"{i}.png")
    spec = {"path": str(tmp_path), "image_size": 4, "channels": 3, "test_size": 0.5}
    raw = DATASETS.create("image_folder", spec).build(0)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # ImageNet's
    normalised = DATASETS.create("image_folder", {**spec, "mean": mean, "std": std}).build(0)
    expected = (raw.test.x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(normalised.test.x, expected)
    vit = DATASETS.create("image_folder", {**spec, "mean": 0.5, "std": 0.5}).build(0)  # one value for all channels
    torch.testing.assert_close(vit.test.x, raw.test.x * 2 - 1)
    with pytest.raises(UserError, match=r"std must be positive, got 0"):
        DATASETS.create("image_folder", {**spec, "std": 0}).build(0)


def test_16_bit_and_float_images_keep_their_values_and_out_of_range_floats_are_refused(tmp_path):
    from PIL import Image

    from xaibench.data.user.image_folder import read_image

    scan = RNG.integers(0, 4000, (4, 4)).astype(np.uint16)  # a dark 16-bit scan (microscopy, X-ray)
    scan[1, 1] = 60000
    Image.fromarray(scan).save(tmp_path / "scan.png")
    assert Image.open(tmp_path / "scan.png").mode.startswith("I")
    pixels, _ = read_image(tmp_path / "scan.png", 4, 1)  # convert("L") clipped every value above 255 to white
    np.testing.assert_allclose(pixels, scan[None] / 65535.0, rtol=0, atol=1e-7)
    np.testing.assert_allclose(read_image(tmp_path / "scan.png", 4, 3)[0], np.repeat(scan[None] / 65535.0, 3, 0),
                               rtol=0, atol=1e-7)
    Image.fromarray(np.full((4, 4), 0.25, dtype=np.float32)).save(tmp_path / "float.tif")
    np.testing.assert_allclose(read_image(tmp_path / "float.tif", 2, 1)[0], 0.25, rtol=0, atol=1e-7)
    Image.fromarray(np.full((4, 4), 300.0, dtype=np.float32)).save(tmp_path / "raw.tif")
    with pytest.raises(UserError, match=r"raw.tif \(mode F\) holds values in \[300, 300\], outside \[0, 1\]"):
        read_image(tmp_path / "raw.tif", 4, 1)
    holed = np.full((4, 4), 0.5, dtype=np.float32)
    holed[0, 0] = np.nan  # the message formatted "nan" with :g and raised ValueError instead of the one line
    Image.fromarray(holed).save(tmp_path / "holed.tif")
    with pytest.raises(UserError, match=r"holed.tif \(mode F\) holds NaN or infinite values, outside \[0, 1\]"):
        read_image(tmp_path / "holed.tif", 4, 1)


def test_a_model_used_as_given_is_warned_when_the_seed_moves_the_split(tmp_path, capsys):
    """Weights trained on iris' seed-0 split, run with seed=1: another split (test rows the net may have learnt from,
    other standardisation statistics), said once; a model the suite trains, seed 0, or a fixed split say nothing."""
    from xaibench.engine.datasets import build_dataset
    from xaibench.models.split_check import warn_if_the_split_moves

    given = MODELS.create("torch_module", {"target": "torch.nn.Identity", "epochs": 0})
    trained = MODELS.create("torch_module", {"target": "torch.nn.Identity", "epochs": 3})
    iris = DATASETS.create("iris", {})
    for model, seed in ((given, 1), (given, 1), (trained, 1), (given, 0)):
        warn_if_the_split_moves(model, iris, build_dataset(iris, seed), seed)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("xaibench: warning: model torch_module is used as given, but "
                                                   "seed 1 draws another train/test split of iris than seed 0")
    frame = pd.DataFrame({"a": RNG.normal(size=20), "y": np.arange(20) % 2,
                          "part": np.where(np.arange(20) < 14, "train", "test")})
    frame.to_csv(tmp_path / "fixed.csv", index=False)
    fixed = DATASETS.create("csv_table", {"path": str(tmp_path / "fixed.csv"), "target": "y", "split_column": "part"})
    warn_if_the_split_moves(given, fixed, build_dataset(fixed, 3), 3)
    assert capsys.readouterr().err == ""
