"""A reused score stage reports the device it was computed on, not the device of the sweep that reuses it."""
from __future__ import annotations

from dataclasses import replace

from xaibench.engine.cell import CellSpec
from xaibench.engine.stages import build_dataset, get_explanations, get_model, get_scores
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
