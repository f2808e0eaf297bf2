"""Adapters: any torch module from a dotted path + weights-only state_dict, scikit-learn through predict_proba,
Hugging Face classifiers from a local folder (tiny random configs built here; skipped without transformers)."""
from __future__ import annotations

import dataclasses
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from xaibench.engine.cell import CellSpec
from xaibench.engine.datasets import build_dataset
from xaibench.engine.stages import get_model
from xaibench.engine.store import Store
from xaibench.errors import UserError
from xaibench.models.adapters.sklearn_estimator import SklearnClassifier
from xaibench.registry import DATASETS, MODELS
from xaibench.types import Capability

TABULAR = {"n_samples": 120, "n_features": 6}
TEXT = {"n_samples": 60, "seq_len": 10, "vocab_size": 20}


@pytest.fixture(scope="module")
def tabular():
    return build_dataset(DATASETS.create("synthetic_tabular", TABULAR), 0)


def cell(model: dict, dataset: dict) -> CellSpec:
    return CellSpec(model=model, dataset=dataset, method={"name": "saliency"}, metrics={})


def load_via_engine(store_root: Path, model_params: dict, dataset, dataset_params: dict):
    name = model_params["name"]
    spec = MODELS.create(name, {k: v for k, v in model_params.items() if k != "name"})
    return get_model(Store(store_root), spec, dataset, cell(model_params, dataset_params))


# torch_module -------------------------------------------------------------------------------------------
def linear_weights(path: Path, fill: float) -> dict[str, torch.Tensor]:
    state = {"weight": torch.full((2, 6), fill), "bias": torch.tensor([0.5, -0.5])}
    torch.save(state, path)
    return state


def test_torch_module_loads_a_weights_only_state_dict_as_is(tmp_path, tabular):
    state = linear_weights(tmp_path / "w.pt", 0.25)
    params = {"name": "torch_module", "target": "torch.nn.Linear", "kwargs": {"in_features": 6, "out_features": 2},
              "state_dict": str(tmp_path / "w.pt")}
    trained = load_via_engine(tmp_path / "store", params, tabular, {"name": "synthetic_tabular", **TABULAR})
    x = tabular.test.x
    torch.testing.assert_close(trained.module(x), x @ state["weight"].T + state["bias"])  # epochs 0: not trained
    assert trained.capabilities == {Capability.GRADIENTS, Capability.PROBA, Capability.CONV,  # CAM, LRP: their
                                    Capability.LRP}  # layers are checked on the built model


def test_torch_module_checkpoint_follows_its_source_file(tmp_path, tabular):
    """Replacing the weights file at the same path must not serve the stale cached checkpoint."""
    params = {"name": "torch_module", "target": "torch.nn.Linear", "kwargs": {"in_features": 6, "out_features": 2},
              "state_dict": str(tmp_path / "w.pt")}
    dataset_params = {"name": "synthetic_tabular", **TABULAR}
    linear_weights(tmp_path / "w.pt", 0.25)
    first = load_via_engine(tmp_path / "store", params, tabular, dataset_params)
    spec = MODELS.create("torch_module", {k: v for k, v in params.items() if k != "name"})
    revision = spec.source_revision()
    new_state = linear_weights(tmp_path / "w.pt", -1.0)
    assert spec.source_revision() != revision
    second = load_via_engine(tmp_path / "store", params, tabular, dataset_params)
    assert first.key != second.key  # same config, new file contents -> new model key (source revision)
    assert torch.equal(second.module.weight, new_state["weight"])


def test_torch_module_trains_in_suite_without_weights(tmp_path, tabular):
    params = {"name": "torch_module", "target": "torch.nn.Linear", "kwargs": {"in_features": 6, "out_features": 2},
              "epochs": 20}
    trained = load_via_engine(tmp_path, params, tabular, {"name": "synthetic_tabular", **TABULAR})
    assert trained.accuracy > 0.8


@pytest.mark.parametrize(("params", "message"), [
    ({}, r"set model.target=<package.module.Name>"),
    ({"target": "torch.nn.NoSuchLayer", "epochs": 1}, r"cannot import model.target='torch.nn.NoSuchLayer'"),
    ({"target": "torch.nn.Linear"}, r"give weights with model.state_dict=<file> or train it with model.epochs"),
    ({"target": "torch.nn.Linear", "kwargs": {"inn": 6}, "epochs": 1}, r"torch.nn.Linear\(\*\*kwargs\) failed"),
    ({"target": "torch.zeros", "kwargs": {"size": [2]}, "epochs": 1}, r"built a Tensor, not a torch.nn.Module"),
    ({"target": "torch.nn.Linear", "kwargs": {"in_features": 6, "out_features": 2}, "state_dict": "missing.pt"},
     r"file not found: missing.pt"),
])
def test_torch_module_user_errors(tabular, params, message):
    with pytest.raises(UserError, match=message) as caught:
        MODELS.create("torch_module", params).build(tabular)
    assert "\n" not in str(caught.value)


def test_torch_module_rejects_pickles_and_mismatched_weights(tmp_path, tabular):
    params = {"target": "torch.nn.Linear", "kwargs": {"in_features": 6, "out_features": 2}}
    torch.save({"weight": torch.zeros(3, 3), "bias": torch.zeros(3)}, tmp_path / "wrong.pt")
    with pytest.raises(UserError, match=r"wrong.pt does not fit torch.nn.Linear: .*size mismatch"):
        MODELS.create("torch_module", params | {"state_dict": str(tmp_path / "wrong.pt")}).build(tabular)
    (tmp_path / "full.pt").write_bytes(pickle.dumps(torch.nn.Linear(6, 2)))  # a whole pickled module
    with pytest.raises(UserError, match=r"full.pt is not a weights-only state_dict \(UnpicklingError: Unsupported "
                                         r"operand \d+\); save it with torch.save\(model.state_dict\(\), path\)$"), \
            warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "Detected pickle protocol 4" warning was a second line on stderr
        MODELS.create("torch_module", params | {"state_dict": str(tmp_path / "full.pt")}).build(tabular)


# sklearn_estimator --------------------------------------------------------------------------------------
def test_sklearn_estimator_predict_proba_round_trips_through_the_store(tmp_path, tabular):
    params = {"name": "sklearn_estimator", "estimator": "sklearn.ensemble.RandomForestClassifier",
              "kwargs": {"n_estimators": 10}}
    dataset_params = {"name": "synthetic_tabular", **TABULAR}
    first = load_via_engine(tmp_path, params, tabular, dataset_params)
    expected = first.module.estimator.predict_proba(tabular.test.x.numpy().astype(np.float64))
    np.testing.assert_allclose(first.module(tabular.test.x).softmax(-1).numpy(), expected, rtol=1e-5, atol=1e-7)
    assert first.module.estimator.random_state is not None  # seeded from the model key: deterministic fits
    assert first.capabilities == {Capability.PROBA} and first.accuracy > 0.7
    second = load_via_engine(tmp_path, params, tabular, dataset_params)  # unpickled from the store
    assert second.module.estimator is not first.module.estimator
    np.testing.assert_array_equal(second.module(tabular.test.x).numpy(), first.module(tabular.test.x).numpy())
    fresh = load_via_engine(tmp_path / "other", params, tabular, dataset_params)  # refit from scratch: same model
    np.testing.assert_array_equal(fresh.module(tabular.test.x).numpy(), first.module(tabular.test.x).numpy())


def test_sklearn_estimator_refuses_a_cached_estimator_of_another_kind(tmp_path, tabular):
    from sklearn.linear_model import LogisticRegression

    spec = MODELS.create("sklearn_estimator", {"kwargs": {"n_estimators": 5}})
    module = spec.build(tabular)
    other = LogisticRegression().fit(tabular.train.x.numpy(), tabular.train.y.numpy())
    with pytest.raises(ValueError, match="not sklearn.ensemble.RandomForestClassifier"):
        spec.load(module, pickle.dumps(other))
    narrow = type(module.estimator)(n_estimators=2).fit(tabular.train.x[:, :3].numpy(), tabular.train.y.numpy())
    with pytest.raises(ValueError, match="another feature or class count"):
        spec.load(module, pickle.dumps(narrow))


def test_sklearn_classifier_maps_classes_missing_from_training_to_zero():
    from sklearn.linear_model import LogisticRegression

    x = np.array([[0.0], [0.1], [1.0], [1.1]])
    estimator = LogisticRegression().fit(x, np.array([0, 0, 2, 2]))
    log_proba = SklearnClassifier(estimator, n_classes=3, n_features=1)(torch.tensor(x, dtype=torch.float32))
    proba = log_proba.softmax(-1)  # the module returns log-probabilities (logits of predict_proba)
    assert proba.shape == (4, 3) and torch.all(proba[:, 1] < 1e-30)  # 0, floored
    torch.testing.assert_close(proba.sum(1), torch.ones(4))


def test_sklearn_estimator_user_errors(tabular):
    with pytest.raises(UserError, match="not a classifier class with fit and predict_proba"):
        MODELS.create("sklearn_estimator", {"estimator": "sklearn.linear_model.LinearRegression"}).build(tabular)
    with pytest.raises(UserError, match=r"RandomForestClassifier\(\*\*kwargs\) failed"):
        MODELS.create("sklearn_estimator", {"kwargs": {"n_trees": 3}}).build(tabular)


# Hugging Face -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def text_data():
    return build_dataset(DATASETS.create("synthetic_text", TEXT), 0)


def tiny_bert(folder: Path, seed: int = 0, num_labels: int = 2, id2label: dict | None = None) -> Path:
    transformers = pytest.importorskip("transformers")
    labels = {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}} if id2label else {}
    config = transformers.BertConfig(vocab_size=24, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=num_labels,
                                     pad_token_id=0, **labels)
    torch.manual_seed(seed)
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def tiny_vit(folder: Path, num_labels: int = 10) -> Path:
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(image_size=8, patch_size=4, num_channels=1, hidden_size=16, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=32, num_labels=num_labels)
    torch.manual_seed(0)
    transformers.ViTForImageClassification(config).save_pretrained(folder)
    return folder


def test_hf_sequence_classifier_exposes_embeddings_and_attention(tmp_path, text_data):
    folder = tiny_bert(tmp_path / "bert")
    spec = MODELS.create("hf_sequence_classifier", {"path": str(folder), "cls_token_id": 21})
    module = spec.build(text_data).eval()
    ids = text_data.test.x[:3]
    logits = module(ids)
    reference = module.model(input_ids=torch.cat([torch.full((3, 1), 21), ids], dim=1)).logits
    torch.testing.assert_close(logits, reference)  # the adapter is the HF model with [CLS] prepended
    assert torch.equal(module.forward_embedded(module.embed(ids)), logits) and module.pad_id == 0
    out, maps = module.forward_with_attention(ids)
    assert torch.equal(out, logits) and module.cls_index == 0
    assert len(maps) == 2 and maps[0].shape == (3, 2, 11, 11)
    assert all(g.abs().sum() > 0 for g in torch.autograd.grad(out[:, 0].sum(), maps))
    assert {Capability.EMBEDDING, Capability.ATTENTION} <= spec.capabilities
    assert MODELS.create("hf_sequence_classifier", {"path": str(folder)}).build(text_data).cls_index is None


def test_hf_checkpoint_round_trip_and_source_pin(tmp_path, text_data):
    folder = tiny_bert(tmp_path / "bert")
    params = {"name": "hf_sequence_classifier", "path": str(folder)}
    dataset_params = {"name": "synthetic_text", **TEXT}
    first = load_via_engine(tmp_path / "store", params, text_data, dataset_params)
    again = load_via_engine(tmp_path / "store", params, text_data, dataset_params)
    torch.testing.assert_close(again.module(text_data.test.x), first.module(text_data.test.x), rtol=0, atol=0)
    tiny_bert(folder, seed=1)  # the user replaces the model in place
    replaced = load_via_engine(tmp_path / "store", params, text_data, dataset_params)
    assert not torch.equal(replaced.module(text_data.test.x), first.module(text_data.test.x))


def test_hf_image_classifier_attention_and_patch_upsampling(tmp_path):
    digits = build_dataset(DATASETS.create("digits"), 0)  # (1, 8, 8), 10 classes
    module = MODELS.create("hf_image_classifier", {"path": str(tiny_vit(tmp_path / "vit"))}).build(digits).eval()
    x = digits.test.x[:2]
    logits, maps = module.forward_with_attention(x)
    torch.testing.assert_close(logits, module.model(pixel_values=x).logits)
    assert maps[0].shape == (2, 2, 5, 5) and maps[0].grad_fn is not None
    pixels = module.tokens_to_input(torch.tensor([[0.0, 1.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0]]))
    assert pixels.shape == (2, 1, 8, 8)
    assert pixels[0, 0, :4, 4:].eq(1).all() and pixels[0].sum() == 16
    assert pixels[1, 0, 7, 0] == 3.0 and pixels[1, 0, 7, 7] == 4.0


def cat_dog_images(root):
    """An image_folder of 8x8 grey PNGs, 4 random ones per class (cat, dog); returns the dataset's parameters."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (8, 8)).astype(np.uint8)).save(root / name / f"{i}.png")
    return {"path": str(root), "image_size": 8, "test_size": 0.5}


def test_hf_image_classifier_normalises_as_its_preprocessor_config_says(tmp_path, capsys):
    """A fine-tuned ViT folder carries ``preprocessor_config.json`` (mean 0.5, std 0.5 here, as google/vit-*): [0, 1]
    images are normalised inside the model (they went in raw before), images the dataset already normalised the same
    way are used as they are, another normalisation is refused naming both, and arrays outside [0, 1] are warned
    about and used as they are."""
    transformers = pytest.importorskip("transformers")
    from xaibench.models.adapters.hf_preprocessing import inside_normalisation, read_image_processing

    folder = tiny_vit(tmp_path / "vit", num_labels=2)
    plain = tiny_vit(tmp_path / "plain", num_labels=2)  # the same weights, no processor file
    transformers.ViTImageProcessor(image_mean=[0.5], image_std=[0.5], size={"height": 8, "width": 8}) \
        .save_pretrained(folder)
    revision = MODELS.create("hf_image_classifier", {"path": str(folder)}).source_revision()
    assert revision.endswith(":labels-by-name:preprocessor_config.json:rescaled")  # stored before: not reused
    images = cat_dog_images(tmp_path / "images")
    raw = DATASETS.create("image_folder", images).build(0)
    x = raw.test.x
    module = MODELS.create("hf_image_classifier", {"path": str(folder)}).build(raw).eval()
    before = MODELS.create("hf_image_classifier", {"path": str(plain)}).build(raw).eval()
    with torch.no_grad():
        torch.testing.assert_close(module(x), module.model(pixel_values=(x - 0.5) / 0.5).logits)
        torch.testing.assert_close(module.forward_with_attention(x)[0], module(x))
        torch.testing.assert_close(before(x), before.model(pixel_values=x).logits)  # no file: as before
        declared = DATASETS.create("image_folder", {**images, "mean": 0.5, "std": 0.5}).build(0)
        same = MODELS.create("hf_image_classifier", {"path": str(folder)}).build(declared).eval()
        torch.testing.assert_close(same(declared.test.x), module(x))  # normalised once, by the dataset
    imagenet = DATASETS.create("image_folder", {**images, "mean": 0.485, "std": 0.229}).build(0)
    with pytest.raises(UserError, match=r"preprocessor_config.json normalises images with mean \[0.5\], std "
                                        r"\[0.5\], dataset image_folder with mean \[0.485\], std \[0.229\]"):
        MODELS.create("hf_image_classifier", {"path": str(folder)}).build(imagenet)
    processing = read_image_processing(folder, 1, "model m")
    shifted = dataclasses.replace(raw, test=dataclasses.replace(raw.test, x=x * 2 - 1))
    assert inside_normalisation(processing, shifted, "model m") is None
    assert "images span [-1, 0.992]: used as they are" in capsys.readouterr().err
    unnormalised = dataclasses.replace(processing, normalisation=None)
    with pytest.raises(UserError, match="does not normalise images .do_normalize: false., but dataset image_folder"):
        inside_normalisation(unnormalised, declared, "model m")


def test_hf_image_classifier_rescales_and_checks_size_as_its_preprocessor_config_says(tmp_path, capsys):
    """``do_rescale``/``rescale_factor`` and ``size``/``crop_size`` were not read: a model fine-tuned on [0, 2] pixels
    (``rescale_factor`` 1/127.5) got [0, 1] ones, 8-bit arrays went in as 0-255 values, and a processor's size was
    never compared with the dataset's. Now the rescaling is applied inside the model (for 8-bit images the
    processor's own, with a warning), another size is refused naming dataset.image_size, a centre crop warned of."""
    import json

    images = cat_dog_images(tmp_path / "images")
    data = DATASETS.create("image_folder", images).build(0)
    x = data.test.x

    def built(processor: dict, dataset=data):
        folder = tmp_path / f"vit{len(list(tmp_path.glob('vit*')))}"
        tiny_vit(folder, num_labels=2)
        (folder / "preprocessor_config.json").write_text(json.dumps(processor))
        return MODELS.create("hf_image_classifier", {"path": str(folder)}).build(dataset).eval()

    wide = built({"do_rescale": True, "rescale_factor": 1 / 127.5, "do_normalize": False, "size": {"height": 8,
                                                                                                    "width": 8}})
    raw = built({"do_rescale": False, "do_normalize": True, "image_mean": [127.5], "image_std": [127.5]})
    eight_bit = dataclasses.replace(data, test=dataclasses.replace(data.test, x=(x * 255).round()))
    vit_like = built({"image_mean": [0.5], "image_std": [0.5], "do_normalize": True, "rescale_factor": 1 / 255},
                     eight_bit)
    with torch.no_grad():
        torch.testing.assert_close(wide(x), wide.model(pixel_values=x * 2).logits)  # 8-bit pixels / 127.5
        torch.testing.assert_close(raw(x), raw.model(pixel_values=(x * 255 - 127.5) / 127.5).logits)
        assert not torch.allclose(wide(x), wide.model(pixel_values=x).logits)  # what went in before
        torch.testing.assert_close(vit_like(eight_bit.test.x), vit_like.model(pixel_values=(x - 0.5) / 0.5).logits)
    assert "images are whole numbers in [0, 255]: read as 8-bit pixels and rescaled as" in capsys.readouterr().err
    with pytest.raises(UserError, match=r"gives the model 16 x 16 images, dataset image_folder has 8 x 8: for an image "
                                        r"folder set dataset.image_size=16"):
        built({"size": {"height": 16, "width": 16}})
    built({"size": {"shortest_edge": 10}, "do_center_crop": True, "crop_size": {"height": 8, "width": 8}})
    assert ("resizes the shorter side to 10 and crops the centre 8 x 8; dataset image_folder's images were resized "
            "whole" in capsys.readouterr().err)


def test_hf_user_errors(tmp_path, text_data):
    folder = tiny_bert(tmp_path / "bert", num_labels=3)
    with pytest.raises(UserError, match="has 3 labels, dataset synthetic_text has 2 classes"):
        MODELS.create("hf_sequence_classifier", {"path": str(folder)}).build(text_data)
    with pytest.raises(UserError, match="folder not found"):
        MODELS.create("hf_sequence_classifier", {"path": str(tmp_path / "nope")}).build(text_data)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="cannot load .*empty with AutoModelForSequenceClassification"):
        MODELS.create("hf_sequence_classifier", {"path": str(tmp_path / "empty")}).build(text_data)
    image = build_dataset(DATASETS.create("synthetic_image", {"n_samples": 30, "image_size": 16}), 0)
    with pytest.raises(UserError, match=r"expects images \(1, 8, 8\), dataset synthetic_image has \(1, 16, 16\)"):
        MODELS.create("hf_image_classifier", {"path": str(tiny_vit(tmp_path / "vit", 3))}).build(image)


def test_torch_module_revision_follows_the_file_that_defines_its_class(tmp_path, monkeypatch):
    """Editing the user's class (same parameters, another forward) must recompute, not serve the cached cells:
    the defining file is fingerprinted, and such cells are re-validated on every run (``reads_user_files``)."""
    source = tmp_path / "usernet_revision.py"
    source.write_text("from torch import nn\n\nclass Net(nn.Linear):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = MODELS.create("torch_module", {"target": "usernet_revision.Net", "epochs": 1})
    before = spec.source_revision()
    source.write_text("from torch import nn\n\nclass Net(nn.Linear):\n    def forward(self, x):\n"
                      "        return super().forward(x).softmax(-1)\n")
    assert before.startswith("+code:") and spec.source_revision() not in ("", before)
    assert cell({"name": "torch_module", "target": "usernet_revision.Net"}, {"name": "iris"}).reads_user_files()
    assert MODELS.create("torch_module", {"target": "torch.nn.Linear"}).source_revision().startswith("+code:")


def test_hf_outputs_declaration_is_checked_on_the_first_batch(tmp_path):
    """A transformers head returns logits: ``outputs=probabilities`` is refused for it (rows are not probabilities);
    a declared probability head is read through its logs, in every forward the explainers use."""
    digits = build_dataset(DATASETS.create("digits"), 0)
    params = {"path": str(tiny_vit(tmp_path / "vit"))}
    with pytest.raises(UserError, match="model.outputs=probabilities, but forward's rows are not probabilities"):
        MODELS.create("hf_image_classifier", params | {"outputs": "probabilities"}).build(digits)
    module = MODELS.create("hf_image_classifier", params).build(digits).eval()
    x = digits.test.x[:3]
    module.probabilities = True  # as build sets it for a head that passed the probabilities check
    probabilities = module.model(pixel_values=x).logits.softmax(-1)
    module.model.classifier = torch.nn.Sequential(module.model.classifier, torch.nn.Softmax(-1))
    torch.testing.assert_close(module(x), probabilities.log())
    torch.testing.assert_close(module.forward_with_attention(x)[0], probabilities.log())


def test_hf_labels_are_matched_to_the_dataset_classes_by_name(tmp_path, text_data):
    """A checkpoint whose id2label lists the classes in another order than the dataset's sorted labels gives
    scores in the dataset's order (its logit columns swapped); names that are no class of the dataset are refused,
    and placeholder names or integer classes keep ids as class indices."""
    from xaibench.models.adapters.huggingface import label_order

    folder = tiny_bert(tmp_path / "bert", id2label={0: "POSITIVE", 1: "negative"})
    named = dataclasses.replace(text_data, class_names=("negative", "positive"))
    module = MODELS.create("hf_sequence_classifier", {"path": str(folder)}).build(named).eval()
    ids = named.test.x[:3]
    with torch.no_grad():
        raw = module.model(input_ids=ids, attention_mask=(ids != 0).long()).logits
        assert torch.equal(module(ids), raw[:, [1, 0]]) and module.order == (1, 0)
    with pytest.raises(UserError, match="not the dataset's classes"):
        MODELS.create("hf_sequence_classifier", {"path": str(folder)}).build(
            dataclasses.replace(text_data, class_names=("ham", "spam")))
    config = module.model.config
    assert label_order(config, dataclasses.replace(text_data, class_names=("0", "1")), "m") is None
    assert label_order(config, dataclasses.replace(text_data, class_names=("positive", "negative")), "m") is None
    placeholder = type("Config", (), {"num_labels": 2, "id2label": {0: "LABEL_0", 1: "LABEL_1"}})()
    assert label_order(placeholder, named, "m") is None
