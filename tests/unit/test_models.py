"""Model zoo: capability protocols, deterministic training through the engine, checkpoint cache integrity, and
ground-truth masks reaching the results table."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
import yaml

from xaibench.engine.applicability import cell_not_applicable
from xaibench.engine.cell import CellSpec
from xaibench.engine.datasets import build_dataset
from xaibench.engine.runner import run_cell
from xaibench.engine.stages import get_model
from xaibench.engine.store import Store
from xaibench.metrics.spec import Family, MetricSpec
from xaibench.registry import DATASETS, EXPLAINERS, METRICS, MODELS
from xaibench.types import Capability, Dataset, Modality

CONF = Path(__file__).resolve().parents[2] / "conf"

# Tiny versions of the synthetic sets (same generators, fewer/smaller samples) and of the zoo models.
TINY_DATA = {
    "synthetic_tabular": {"n_samples": 120},
    "synthetic_image": {"n_samples": 60, "image_size": 16},
    "synthetic_timeseries": {"n_samples": 60, "length": 32, "motif_length": 8},
    "synthetic_text": {"n_samples": 80, "seq_len": 10, "vocab_size": 20},
}
TINY_MODEL = {
    "logreg": ("synthetic_tabular", {"epochs": 3}),
    "mlp": ("synthetic_tabular", {"epochs": 3, "hidden": [8]}),
    "cnn": ("synthetic_image", {"epochs": 2, "channels": [4]}),
    "cnn1d": ("synthetic_timeseries", {"epochs": 2, "channels": [4, 4]}),
    "vit": ("synthetic_image", {"epochs": 2, "dim": 8, "depth": 1}),
    "text_transformer": ("synthetic_text", {"epochs": 2, "dim": 8, "depth": 1}),
}


@functools.lru_cache(maxsize=None)
def tiny_dataset(name: str, seed: int = 0) -> Dataset:
    return build_dataset(DATASETS.create(name, TINY_DATA.get(name, {})), seed)


def cell_for(model: str, model_params: dict, dataset: str, seed: int = 0, **extra) -> CellSpec:
    extra.setdefault("metrics", {})
    return CellSpec(model={"name": model, **model_params}, dataset={"name": dataset, **TINY_DATA.get(dataset, {})},
                    method={"name": "saliency"}, seed=seed, **extra)


def train(store_root: Path, model: str, params: dict, dataset: str, seed: int = 0):
    return get_model(Store(store_root), MODELS.create(model, params), tiny_dataset(dataset, seed),
                     cell_for(model, params, dataset, seed))


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert list(state_a) == list(state_b)
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


@pytest.fixture
def count_fits(monkeypatch):
    """Patch a spec class so each ``fit`` (a training run) is counted."""
    calls = []

    def patch(spec_class):
        original = spec_class.fit

        def fit(self, module, dataset, seed):
            calls.append(seed)
            return original(self, module, dataset, seed)

        monkeypatch.setattr(spec_class, "fit", fit)
        return calls

    return patch


# Forward shapes and protocols --------------------------------------------------------------------------------
@pytest.mark.parametrize("model", sorted(TINY_MODEL))
def test_zoo_models_forward_logits_for_their_dataset(model):
    dataset_name, params = TINY_MODEL[model]
    dataset = tiny_dataset(dataset_name)
    module = MODELS.create(model, params).build(dataset).eval()
    logits = module(dataset.test.x[:5])
    assert logits.shape == (5, dataset.n_classes) and torch.isfinite(logits).all()
    if Capability.GRADIENTS in MODELS.get(model).capabilities and dataset.modality is not Modality.TEXT:
        x = dataset.test.x[:5].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(module(x)[:, 0].sum(), x)
        assert grad.shape == x.shape and grad.abs().sum() > 0


@pytest.mark.parametrize("model", ["vit", "text_transformer"])
def test_attention_protocol(model):
    dataset_name, params = TINY_MODEL[model]
    dataset = tiny_dataset(dataset_name)
    module = MODELS.create(model, params | {"depth": 2}).build(dataset).eval()
    x = dataset.test.x[:3]
    logits, maps = module.forward_with_attention(x)
    tokens = 1 + (16 // 4) ** 2 if model == "vit" else 1 + 10  # CLS + patches / CLS + tokens
    assert torch.equal(logits, module(x)) and module.cls_index == 0
    assert len(maps) == 2 and all(m.shape == (3, 2, tokens, tokens) for m in maps)
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(3, 2, tokens))  # softmax rows
    grads = torch.autograd.grad(logits[:, 1].sum(), maps)  # the probabilities are in the autograd graph
    assert all(g.abs().sum() > 0 for g in grads)
    assert Capability.ATTENTION in MODELS.get(model).capabilities


def test_vit_tokens_to_input_places_each_patch_on_its_pixels():
    dataset = tiny_dataset("synthetic_image")  # 16x16, patch 4 -> a 4x4 grid
    module = MODELS.create("vit", TINY_MODEL["vit"][1]).build(dataset)
    relevance = torch.zeros(2, 16)
    relevance[0, 6] = 1.0  # row 1, column 2 of the grid
    relevance[1] = torch.arange(16.0)
    pixels = module.tokens_to_input(relevance)
    assert pixels.shape == (2, 1, 16, 16)
    expected = torch.zeros(16, 16)
    expected[4:8, 8:12] = 1.0
    assert torch.equal(pixels[0, 0], expected)
    assert pixels[1, 0, 13, 2] == 12.0 and pixels[1, 0, 0, 15] == 3.0


def test_text_transformer_embedding_protocol():
    dataset = tiny_dataset("synthetic_text")
    module = MODELS.create("text_transformer", TINY_MODEL["text_transformer"][1]).build(dataset).eval()
    ids = dataset.test.x[:4]
    embeddings = module.embed(ids)
    assert embeddings.shape == (4, 10, 8) and module.pad_id == 0
    assert torch.equal(module(ids), module.forward_embedded(embeddings))
    relevance = torch.rand(4, 10)
    assert torch.equal(module.tokens_to_input(relevance), relevance)
    assert {Capability.EMBEDDING, Capability.ATTENTION, Capability.GRADIENTS} <= MODELS.get("text_transformer").capabilities


def test_declared_capabilities_drive_applicability():
    saliency = EXPLAINERS.create("saliency")
    image = DATASETS.create("synthetic_image")
    assert cell_not_applicable(MODELS.create("vit"), image, saliency) is None
    assert cell_not_applicable(MODELS.create("text_transformer"), DATASETS.create("synthetic_text"), saliency) is None
    reason = cell_not_applicable(MODELS.create("sklearn_estimator"), image, saliency)
    assert reason and "gradients" in reason
    reason = cell_not_applicable(MODELS.create("cnn1d"), image, saliency)
    assert reason and "time_series" in reason
    if "rollout" in EXPLAINERS:
        assert "attention" in cell_not_applicable(MODELS.create("cnn"), image, EXPLAINERS.create("rollout"))
        assert cell_not_applicable(MODELS.create("vit"), image, EXPLAINERS.create("rollout")) is None


# Determinism ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", sorted(TINY_MODEL))
def test_same_seed_gives_bitwise_identical_weights(tmp_path, model):
    dataset_name, params = TINY_MODEL[model]
    first = train(tmp_path / "a", model, params, dataset_name)
    second = train(tmp_path / "b", model, params, dataset_name)  # a fresh store: trained again, not loaded
    assert Store(tmp_path / "b").files("models") and first.key == second.key
    assert_same_weights(first.module, second.module)
    assert first.accuracy == second.accuracy and 0.0 <= first.accuracy <= 1.0
    other = train(tmp_path / "c", model, params, dataset_name, seed=1)
    assert other.key != first.key
    assert any(not torch.equal(a, b) for a, b in zip(first.module.state_dict().values(),
                                                      other.module.state_dict().values()))


def test_weights_do_not_depend_on_the_process_thread_count(tmp_path):
    """Launchers limit threads per worker (joblib/loky, Slurm); CPU reductions split by thread would otherwise
    change the last bits of the weights. Training pins its thread count, so the weights stay identical."""
    dataset_name, params = TINY_MODEL["vit"]
    single = train(tmp_path / "one", "vit", params, dataset_name)
    torch.set_num_threads(2)
    try:
        double = train(tmp_path / "two", "vit", params, dataset_name)
    finally:
        torch.set_num_threads(1)
    assert_same_weights(single.module, double.module)


def test_a_cached_model_is_loaded_not_retrained(tmp_path, count_fits):
    fits = count_fits(type(MODELS.create("cnn1d")))
    dataset_name, params = TINY_MODEL["cnn1d"]
    first = train(tmp_path, "cnn1d", params, dataset_name)
    again = train(tmp_path, "cnn1d", params, dataset_name)
    assert len(fits) == 1
    assert_same_weights(first.module, again.module)
    assert again.accuracy == first.accuracy and not again.module.training


def test_accuracy_is_recorded_and_underfit_flagged(tmp_path):
    trained = train(tmp_path, "logreg", {"epochs": 30, "min_accuracy": 0.8}, "synthetic_tabular")
    test = tiny_dataset("synthetic_tabular").test
    correct = (trained.module(test.x).argmax(1) == test.y).float().mean().item()
    assert trained.accuracy == pytest.approx(correct) and trained.accuracy > 0.8 and not trained.underfit
    assert train(tmp_path, "logreg", {"epochs": 30, "min_accuracy": 1.01}, "synthetic_tabular").underfit


@pytest.mark.parametrize("dataset_name", ["iris", "wine", "breast_cancer"])
def test_logreg_reaches_scikit_learns_accuracy_with_its_config(tmp_path, dataset_name):
    """The shipped logreg recipe trains to convergence: its test accuracy is scikit-learn's LogisticRegression's on
    the same split, within one test sample (30 epochs at lr 0.01 stopped at 0.78 on iris, scikit-learn 0.98)."""
    from sklearn.linear_model import LogisticRegression

    model_cfg = yaml.safe_load((CONF / "model" / "logreg.yaml").read_text())
    model_cfg.pop("name")
    dataset = build_dataset(DATASETS.create(dataset_name, {}), 0)
    cell = CellSpec(model={"name": "logreg", **model_cfg}, dataset={"name": dataset_name},
                    method={"name": "saliency"}, metrics={})
    trained = get_model(Store(tmp_path), MODELS.create("logreg", model_cfg), dataset, cell)
    reference = LogisticRegression(max_iter=5000).fit(dataset.train.x.numpy(), dataset.train.y.numpy())
    expected = reference.score(dataset.test.x.numpy(), dataset.test.y.numpy())
    assert trained.accuracy >= expected - 1 / len(dataset.test) and trained.accuracy >= 0.95, (trained.accuracy,
                                                                                               expected)


def test_a_model_no_better_than_the_majority_class_is_underfit_whatever_min_accuracy_says():
    """min_accuracy is absolute: on a 90/10 split a constant prediction passes 0.7, so the majority-class rate is a
    floor of its own, and the reason names the bound that was missed."""
    from xaibench.models.base import TrainedModel, majority_rate

    labels = torch.tensor([0] * 9 + [1])
    assert majority_rate(labels) == 0.9 and majority_rate(torch.tensor([], dtype=torch.long)) == 0.0
    spec = MODELS.create("logreg", {"min_accuracy": 0.7})
    constant = TrainedModel(torch.nn.Identity(), spec, "key", accuracy=0.9)
    assert not constant.underfit and "not above 0.90, the majority-class rate" in constant.underfit_reason(0.9)
    assert TrainedModel(torch.nn.Identity(), spec, "key", accuracy=0.95).underfit_reason(0.9) == ""
    assert TrainedModel(torch.nn.Identity(), spec, "key", accuracy=1.0).underfit_reason(1.0) == ""  # one class
    low = TrainedModel(torch.nn.Identity(), spec, "key", accuracy=0.6).underfit_reason(0.5)
    assert low == "test accuracy 0.60 below its min_accuracy 0.70"


def test_rows_flag_a_model_at_the_majority_rate_and_the_cell_line_says_why(tmp_path, monkeypatch):
    """The runner checks the trained model against the test split's majority-class rate (patched to 0.99 here: the
    tiny logreg scores about 0.9) and the per-cell line names that bound, not min_accuracy."""
    import xaibench.engine.runner as runner
    from xaibench.sweep.progress_line import _underfit_reason

    cell = cell_for("logreg", {"epochs": 3, "min_accuracy": 0.5}, "synthetic_tabular", n_samples=2,
                    metrics={"sparseness": {}})
    monkeypatch.setattr(runner, "majority_rate", lambda labels: 0.99)
    rows = run_cell(cell, Store(tmp_path)).rows
    accuracy = rows["model_accuracy"].iloc[0]
    assert 0.5 <= accuracy <= 0.99 and set(rows["model_flag"]) == {"underfit"}
    assert _underfit_reason(rows, accuracy) == (f"test accuracy {accuracy:.2f} not above the majority-class rate "
                                                "(a constant prediction scores as much)")
    # the reason is in the table too (it was only printed): in the message of every scored row, kept in the store
    reason = (f"model underfit: test accuracy {accuracy:.2f} not above 0.99, the majority-class rate (always "
              "predicting the most frequent test class scores as much)")
    assert (rows["status"] == "ok").all() and set(rows["message"]) == {reason}
    assert set(run_cell(cell, Store(tmp_path)).rows["message"]) == {reason}
    rows = rows.assign(model_params='{"min_accuracy": 1.0}')
    assert _underfit_reason(rows, accuracy) == f"test accuracy {accuracy:.2f} below its min_accuracy 1.00"


# Checkpoint integrity -------------------------------------------------------------------------------------
def checkpoint_path(root: Path, key: str) -> Path:
    return Store(root).path("models", key, "pt")


def test_corrupted_checkpoint_is_detected_and_retrained(tmp_path, count_fits):
    fits = count_fits(type(MODELS.create("logreg")))
    params = TINY_MODEL["logreg"][1]
    first = train(tmp_path, "logreg", params, "synthetic_tabular")
    path = checkpoint_path(tmp_path, first.key)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    assert Store(tmp_path).get("models", first.key, "pt") is None  # the checksum catches the flipped byte
    retrained = train(tmp_path, "logreg", params, "synthetic_tabular")
    assert len(fits) == 2
    assert_same_weights(first.module, retrained.module)
    assert Store(tmp_path).get("models", first.key, "pt") is not None  # rewritten, valid again


@pytest.mark.parametrize("impostor", ["other_architecture", "not_a_checkpoint"])
def test_mismatched_checkpoint_with_a_valid_checksum_is_retrained(tmp_path, count_fits, impostor):
    fits = count_fits(type(MODELS.create("logreg")))
    params = TINY_MODEL["logreg"][1]
    first = train(tmp_path, "logreg", params, "synthetic_tabular")
    if impostor == "other_architecture":
        other = MODELS.create("mlp", {"hidden": [3]})
        payload = other.save(other.build(tiny_dataset("synthetic_tabular")))
    else:
        payload = b"PK\x03\x04 definitely not a torch checkpoint"
    Store(tmp_path).put("models", first.key, "pt", payload, meta={"accuracy": 1.0, "model": "impostor"})
    retrained = train(tmp_path, "logreg", params, "synthetic_tabular")
    assert len(fits) == 2
    assert_same_weights(first.module, retrained.module)
    assert retrained.accuracy == first.accuracy  # the impostor's recorded accuracy is not trusted


# Ground truth into the results table ---------------------------------------------------------------------
def _mask_size(ctx, **_):
    return ctx.masks.flatten(1).sum(1).cpu().numpy()


MASK_SIZE = MetricSpec(name="mask_size", family=Family.LOCALISATION, higher_is_better=True, native=_mask_size,
                       needs_ground_truth=True, description="test probe: size of the ground-truth mask it receives")


@pytest.mark.parametrize(("dataset_name", "model", "params"), [
    ("synthetic_tabular", "logreg", {"epochs": 1}),
    ("synthetic_image", "logreg", {"epochs": 1}),
    ("synthetic_timeseries", "logreg", {"epochs": 1}),
    ("synthetic_text", "text_transformer", {"epochs": 1, "dim": 8, "depth": 1}),
])
def test_ground_truth_masks_reach_localisation_metrics_row_by_row(tmp_path, monkeypatch, dataset_name, model, params):
    monkeypatch.setitem(METRICS._entries, "mask_size", MASK_SIZE)  # a probe metric, removed after the test
    cell = cell_for(model, params, dataset_name, n_samples=12, metrics={"mask_size": {}})
    rows = run_cell(cell, Store(tmp_path)).rows
    dataset = tiny_dataset(dataset_name)
    assert (rows["status"] == "ok").all() and len(rows) == 12
    expected = {i: float(m.sum()) for i, m in zip(dataset.test.ids, dataset.test.masks)}
    for sample_id, value in zip(rows["sample_id"], rows["value"]):
        assert value == expected[sample_id]
    assert (rows["dataset_revision"] == dataset.revision).all()
    if dataset_name == "synthetic_text":
        assert rows["value"].nunique() > 1  # 1..3 key tokens: a per-sample mask, not a constant


def test_a_real_localisation_metric_scores_the_synthetic_masks(tmp_path):
    if "pointing_game" not in METRICS:
        pytest.skip("no pointing_game metric registered")
    cell = cell_for("logreg", {"epochs": 5}, "synthetic_image", n_samples=8, metrics={"pointing_game": {}})
    rows = run_cell(cell, Store(tmp_path)).rows
    assert set(rows["status"]) == {"ok"} and set(rows["value"]) <= {0.0, 1.0}


# Stated accuracies ---------------------------------------------------------------------------------------
DEFAULT_DATASET = {"logreg": "breast_cancer", "mlp": "breast_cancer", "cnn": "digits",
                   "cnn1d": "synthetic_timeseries", "vit": "synthetic_image", "text_transformer": "synthetic_text"}


# vit's old recipe (15 epochs at lr 0.003) scored 0.65 on synthetic_shapes' seed-0 split (min_accuracy 0.8); 30 at
# 0.001 give 0.93-0.94 over seeds 0-2 (benchmarks/bench_training.py --pair vit:synthetic_shapes --seeds 0 1 2)
STATED = sorted(DEFAULT_DATASET.items()) + [("vit", "synthetic_shapes")]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "dataset_name"), STATED)
def test_zoo_model_reaches_its_stated_accuracy_with_its_config(tmp_path, model, dataset_name):
    from xaibench.models.base import majority_rate

    model_cfg = yaml.safe_load((CONF / "model" / f"{model}.yaml").read_text())
    dataset_cfg = yaml.safe_load((CONF / "dataset" / f"{dataset_name}.yaml").read_text())
    spec = MODELS.create(model_cfg.pop("name"), model_cfg)
    dataset = build_dataset(DATASETS.create(dataset_cfg.pop("name"), dataset_cfg), 0)
    cell = CellSpec(model={"name": model, **model_cfg}, dataset={"name": dataset.name, **dataset_cfg},
                    method={"name": "saliency"}, metrics={})
    trained = get_model(Store(tmp_path), spec, dataset, cell)
    assert spec.min_accuracy > 0.5 and not trained.underfit_reason(majority_rate(dataset.test.y)), (
        model, trained.accuracy, spec.min_accuracy)


@pytest.mark.parametrize("side", [8, 16, 10])
def test_cnn_pooling_is_adaptive_pooling_bit_for_bit(side):
    """The cnn pools with a fixed window where the sides divide by 4 (faster), with the adaptive pool's values."""
    from types import SimpleNamespace

    spec = MODELS.create("cnn", {"channels": [4]})
    torch.manual_seed(0)
    module = spec.build(SimpleNamespace(input_shape=(1, side, side), n_classes=3))
    fixed = isinstance(module[2], torch.nn.AvgPool2d)
    assert fixed == (side % 4 == 0)
    reference = torch.nn.Sequential(*module[:2], torch.nn.AdaptiveAvgPool2d(4), *module[3:])
    x = torch.randn(5, 1, side, side, requires_grad=True)
    out, expected = module(x), reference(x)
    assert torch.equal(out, expected)
    assert torch.equal(torch.autograd.grad(out[:, 1].sum(), x)[0], torch.autograd.grad(expected[:, 1].sum(), x)[0])
