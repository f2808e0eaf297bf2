"""A reused score stage reports the device it was computed on, not the device of the sweep that reuses it."""
from __future__ import annotations

from dataclasses import replace

from xaibench.engine.cell import CellSpec
from xaibench.engine.datasets import build_dataset
from xaibench.engine.stages import get_explanations, get_model, get_scores
from xaibench.engine.store import Store
from xaibench.registry import DATASETS, EXPLAINERS, METRICS, MODELS


def test_cached_score_stage_keeps_its_device(tmp_path):
    cell = CellSpec(model={"name": "logreg"}, dataset={"name": "iris"}, method={"name": "saliency"},
                    metrics={"sparseness": {}}, n_samples=4, device="cpu")
    store = Store(tmp_path)
    dataset = build_dataset(DATASETS.create("iris", {}), cell.seed)
    model = get_model(store, MODELS.create("logreg", {}), dataset, cell)
    explainer = EXPLAINERS.create("saliency", {})
    explanations = get_explanations(store, explainer, model, dataset, cell)
    metric = METRICS.get("sparseness")
    computed = get_scores(store, metric, explainer, model, dataset, explanations, cell)
    assert computed.provenance["device"] == "cpu"
    # The same stage requested by a sweep on another device is read back, not recomputed there.
    reused = get_scores(store, metric, explainer, model, dataset, explanations, replace(cell, device="cuda:7"))
    assert reused.provenance["device"] == "cpu"
    assert list(reused.values) == list(computed.values)


def test_peak_memory_is_read_from_the_cells_gpu(monkeypatch):
    """A job holding cuda:1 (device slots never change the current device) reports GPU 1's allocator peak."""
    import torch

    from xaibench.engine.stamp import peak_memory_mb

    asked = []
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: asked.append(device) or 3 * 2**20)
    assert peak_memory_mb("cuda:1") == 3.0 and peak_memory_mb("cuda") == 3.0
    assert asked == [torch.device("cuda:1"), torch.device("cuda")]
    assert peak_memory_mb("cpu") > 0 and len(asked) == 2  # CPU: the max RSS, torch's allocator untouched


def test_not_applicable_rows_name_no_device_cold_or_warm(workdir, monkeypatch):
    """Nothing is computed for a not_applicable cell: its rows said ``cpu`` when the cell was first seen and ``""``
    when read back from the store with ``device=auto`` (the stored path does not import torch to resolve it), so
    the same sweep's table differed between a cold and a warm run. Now ``""`` on every path and any device."""
    import xaibench

    monkeypatch.setenv("XAIBENCH_CACHE", str(workdir / "cache"))
    cell = ["model=cnn", "dataset=iris", "method=saliency", "n_samples=4", "metrics=sparsity"]
    for device in ("auto", "auto", "cpu:1"):  # cold, warm, warm on another device
        table = xaibench.run([*cell, f"device={device}"])
        assert set(table["status"]) == {"not_applicable"} and set(table["device"]) == {""}


def test_rows_record_where_their_explanation_stage_was_computed(tmp_path):
    """``explain_device`` (schema v3): a score computed on one device next to explanations reused from another
    reported the scoring device for ``explain_s`` too."""
    from xaibench.engine.runner import run_cell

    store = Store(tmp_path)
    first = CellSpec(model={"name": "logreg"}, dataset={"name": "iris"}, method={"name": "saliency"},
                     metrics={"sparseness": {}}, n_samples=4, device="cpu")
    rows = run_cell(first, store).rows
    assert set(rows["device"]) == set(rows["explain_device"]) == {"cpu"}
    later = run_cell(replace(first, metrics={"complexity": {}}, device="cpu:1"), store).rows  # explanations reused
    assert set(later["device"]) == {"cpu:1"} and set(later["explain_device"]) == {"cpu"}
    assert later["explanation_key"].iat[0] == rows["explanation_key"].iat[0]
    idle = run_cell(replace(first, method={"name": "rollout"}), store).rows  # attention rollout on a linear model
    assert set(idle["status"]) == {"not_applicable"} and set(idle["explain_device"]) == {""}  # nothing explained


def test_rows_record_where_their_model_was_trained_and_a_cached_model_keeps_it(tmp_path, monkeypatch):
    """``model_device`` (schema v4): the model stage records where ``fit`` left the weights in the checkpoint's
    metadata; a sweep on another device that reuses the checkpoint reports the training device, not its own."""
    import torch

    from xaibench.engine import stages
    from xaibench.engine.runner import run_cell

    store = Store(tmp_path)
    first = CellSpec(model={"name": "logreg"}, dataset={"name": "iris"}, method={"name": "saliency"},
                     metrics={"sparseness": {}}, n_samples=4, device="cpu")
    rows = run_cell(first, store).rows
    assert set(rows["model_device"]) == {"cpu"}  # the suite trains on the CPU
    model_key = stages.get_model(store, MODELS.create("logreg", {}), build_dataset(DATASETS.create("iris", {}), 0),
                                 first).key
    assert store.get("models", model_key, "pt")[1]["device"] == "cpu"
    # A spec whose fit leaves the weights on a GPU (faked: CPU weights reported as cuda:0), reused on cpu:1.
    monkeypatch.setattr(stages, "module_device", lambda module: torch.device("cuda:0"))
    gpu_trained = replace(first, seed=1)
    assert set(run_cell(gpu_trained, store).rows["model_device"]) == {"cuda:0"}
    monkeypatch.setattr(stages.ModelSpec, "fit", _no_training)
    later = run_cell(replace(gpu_trained, metrics={"complexity": {}}, device="cpu:1"), store).rows
    assert set(later["model_device"]) == {"cuda:0"} and set(later["device"]) == {"cpu:1"}
    idle = run_cell(replace(first, method={"name": "rollout"}), store).rows  # not applicable: no model stage ran
    assert set(idle["model_device"]) == {""}


def _no_training(*args, **kwargs):
    raise AssertionError("a cached checkpoint was retrained")


def test_a_checkpoint_cached_before_v4_reads_as_unknown_device_without_retraining(tmp_path, monkeypatch):
    from xaibench.engine import stages

    store = Store(tmp_path)
    cell = CellSpec(model={"name": "logreg"}, dataset={"name": "iris"}, method={"name": "saliency"},
                    metrics={"sparseness": {}}, n_samples=4)
    dataset = build_dataset(DATASETS.create("iris", {}), cell.seed)
    spec = MODELS.create("logreg", {})
    trained = get_model(store, spec, dataset, cell)
    payload, meta = store.get("models", trained.key, "pt")
    store.put("models", trained.key, "pt", payload, meta={k: v for k, v in meta.items() if k != "device"})
    monkeypatch.setattr(stages.ModelSpec, "fit", _no_training)
    old = get_model(store, spec, dataset, cell)
    assert old.device == "" and old.accuracy == trained.accuracy
    assert all(torch_equal(a, b) for a, b in zip(old.module.parameters(), trained.module.parameters()))


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_only_models_the_suite_trains_name_a_model_device():
    """Pre-fitted weights (a fitted estimator file, ``epochs: 0`` adapters) were not made here: ``""``, as
    ``explain_device`` is for attributions the caller passed in; in-suite fits and fine-tunes name the device."""
    import torch

    from xaibench.engine.stages import trained_on
    from xaibench.models.adapters.huggingface import HFSequenceClassifierSpec
    from xaibench.models.adapters.sklearn_estimator import SklearnEstimator
    from xaibench.models.adapters.torch_module import TorchModule

    module = torch.nn.Linear(2, 2)
    assert trained_on(MODELS.create("mlp", {}), module) == "cpu"
    assert trained_on(SklearnEstimator(), module) == "cpu"
    assert trained_on(SklearnEstimator(path="fitted.skops"), module) == ""
    for adapter in (TorchModule, HFSequenceClassifierSpec):
        assert trained_on(adapter(epochs=0), module) == ""
        assert trained_on(adapter(epochs=2), module) == "cpu"  # fine-tuned here
