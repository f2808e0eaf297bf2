"""Run one cell end to end: config -> (model, data) -> explanations -> scores -> rows.

A cell never raises for a computational failure (unless ``strict``): the failure becomes rows with
``status="error"`` and the message, and the sweep goes on. User errors (unknown names, bad parameters) do raise
``UserError``, because they are caught before any compute. Successful cells are cached in the store under their
key, so a rerun returns the stored rows without touching the model.
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from xaibench.engine.applicability import cell_not_applicable, metric_not_applicable
from xaibench.engine.cell import CellSpec, split_name
from xaibench.engine.cell_result import CellResult  # noqa: F401  (re-exported: engine.runner.CellResult)
from xaibench.engine.device import peak_memory_mb, resolve_device
from xaibench.engine.provenance import provenance
from xaibench.engine.stages import build_dataset, get_explanations, get_model, get_scores
from xaibench.engine.store import Store
from xaibench.errors import UserError
from xaibench.registry import DATASETS, EXPLAINERS, METRICS, MODELS
from xaibench.results.schema import SCHEMA_VERSION, conform, sort_rows
from xaibench.types import Status


@dataclass(frozen=True)
class ResolvedCell:
    """The registry objects a cell uses, validated (raises UserError before any compute)."""

    cell: CellSpec
    model: object
    dataset: object
    method: object
    metrics: dict

    @classmethod
    def resolve(cls, cell: CellSpec) -> "ResolvedCell":
        model = MODELS.create(*split_name(cell.model, "model"))
        dataset = DATASETS.create(*split_name(cell.dataset, "dataset"))
        method = EXPLAINERS.create(*split_name(cell.method, "method"))
        metrics = {}
        for name, params in cell.metrics.items():
            metrics[name] = METRICS.get(name)
            metrics[name].check_params(params)
        resolve_device(cell.device, check_available=False)  # availability: checked where the job runs
        return cls(cell, model, dataset, method, metrics)


def run_cell(cell: CellSpec, store: Store, *, sweep_id: str = "") -> CellResult:
    """Compute (or load) one cell's rows. See the module docstring for the failure contract."""
    started = time.perf_counter()
    resolved = ResolvedCell.resolve(cell)
    cell = _with_device(cell)
    rows = _RowFactory(cell, resolved, sweep_id)
    reason = cell_not_applicable(resolved.model, resolved.dataset, resolved.method)
    if reason:
        cached = store.get_frame("cells", cell.key)
        if cached is None:
            cached = rows.for_all(Status.NOT_APPLICABLE, reason)
            store.put_frame("cells", cell.key, cached)
        cached["sweep_id"] = sweep_id
        return CellResult(cell.key, conform(cached), True, time.perf_counter() - started)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        dataset = build_dataset(resolved.dataset, cell.seed)
        if cell.n_samples > len(dataset.test):
            raise UserError(f"n_samples={cell.n_samples} exceeds the {len(dataset.test)} test samples of {dataset.name}")
        cached = store.get_frame("cells", cell.key)
        if cached is not None and _still_valid(cached, dataset.revision, resolved.model.source_revision()):
            cached["sweep_id"] = sweep_id
            return CellResult(cell.key, conform(cached), True, time.perf_counter() - started)
        frame = _compute(cell, resolved, dataset, store, rows)
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - recorded as rows; strict re-raises for CI
        if cell.strict:
            raise
        frame = rows.for_all(Status.ERROR, _describe(error))
    if not (frame["status"] == Status.ERROR.value).any():
        store.put_frame("cells", cell.key, frame)
    return CellResult(cell.key, frame, False, time.perf_counter() - started)


def _compute(cell: CellSpec, resolved: ResolvedCell, dataset, store: Store, rows: "_RowFactory") -> pd.DataFrame:
    model = get_model(store, resolved.model, dataset, cell)
    rows.model_accuracy = model.accuracy
    rows.model_flag = "underfit" if model.underfit else ""
    rows.dataset_revision = dataset.revision
    explanations = get_explanations(store, resolved.method, model, dataset, cell)
    sample_ids = dataset.test.ids[: cell.n_samples]
    frames = []
    progress = tqdm(resolved.metrics.items(), desc=f"score {cell.method_name}", leave=False, disable=None)
    for name, metric in progress:
        reason = metric_not_applicable(metric, resolved.dataset, explanations.counterfactuals is not None,
                                       resolved.model)
        if reason:
            frames.append(rows.for_metric(name, Status.NOT_APPLICABLE, reason))
            continue
        try:
            result = get_scores(store, metric, resolved.method, model, dataset, explanations, cell)
        except Exception as error:  # noqa: BLE001 - one failing metric does not sink the others
            if cell.strict:
                raise
            frames.append(rows.for_metric(name, Status.ERROR, _describe(error)))
            continue
        frames.append(rows.scored(name, sample_ids, explanations, result))
    return sort_rows(conform(pd.concat(frames, ignore_index=True)))


def _still_valid(cached: pd.DataFrame, dataset_revision: str, model_revision: str) -> bool:
    """A cached cell is reused only if its data and (user-supplied) weights are byte-identical to today's."""
    return bool((cached["dataset_revision"] == dataset_revision).all() and (cached["model_revision"] == model_revision).all())


def _with_device(cell: CellSpec) -> CellSpec:
    from dataclasses import replace

    return replace(cell, device=resolve_device(cell.device))


def _describe(error: BaseException) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" (at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})" if frame else ""
    return f"{type(error).__name__}: {error}{where}"


class _RowFactory:
    """Builds schema rows for one cell; common columns are filled once."""

    def __init__(self, cell: CellSpec, resolved: ResolvedCell, sweep_id: str) -> None:
        self.cell, self.resolved, self.sweep_id = cell, resolved, sweep_id
        self.model_accuracy = float("nan")
        self.model_flag = ""
        self.dataset_revision = ""
        self.model_revision = resolved.model.source_revision()

    def _base(self, metric: str, n: int) -> dict:
        spec = self.resolved.metrics[metric]
        _, method_params = split_name(self.cell.method, "method")
        _, model_params = split_name(self.cell.model, "model")
        _, dataset_params = split_name(self.cell.dataset, "dataset")
        return {
            "schema_version": [SCHEMA_VERSION] * n,
            "sweep_id": [self.sweep_id] * n,
            "cell_key": [self.cell.key] * n,
            "model": [self.cell.model_name] * n,
            "dataset": [self.cell.dataset_name] * n,
            "method": [self.cell.method_name] * n,
            "metric": [metric] * n,
            "family": [spec.family] * n,
            "higher_is_better": [spec.higher_is_better] * n,
            "seed": [self.cell.seed] * n,
            "device": [self.cell.device] * n,
            "method_params": [json.dumps(method_params, sort_keys=True)] * n,
            "model_params": [json.dumps(model_params, sort_keys=True)] * n,
            "dataset_params": [json.dumps(dataset_params, sort_keys=True)] * n,
            "n_samples": [self.cell.n_samples] * n,
            "dataset_revision": [self.dataset_revision] * n,
            "model_revision": [self.model_revision] * n,
            "model_accuracy": [self.model_accuracy] * n,
            "model_flag": [self.model_flag] * n,
            "peak_mem_mb": [peak_memory_mb(self.cell.device)] * n,
            "created_at": [datetime.now(timezone.utc).isoformat(timespec="seconds")] * n,
            **{k: [v] * n for k, v in provenance().items()},
        }

    def for_metric(self, metric: str, status: Status, message: str) -> pd.DataFrame:
        frame = pd.DataFrame(self._base(metric, 1))
        frame = frame.assign(sample_id="", target=-1, value=np.nan, status=status.value, message=message,
                             explain_s=np.nan, score_s=np.nan, n_forward=np.nan,
                             params=json.dumps(self.cell.metrics.get(metric, {}), sort_keys=True))
        return conform(frame)

    def for_all(self, status: Status, message: str) -> pd.DataFrame:
        frames = [self.for_metric(m, status, message) for m in self.cell.metrics]
        frame = pd.concat(frames, ignore_index=True)
        if status is Status.NOT_APPLICABLE:
            frame["peak_mem_mb"] = np.nan  # nothing ran
        return sort_rows(conform(frame))

    def scored(self, metric: str, sample_ids, explanations, result) -> pd.DataFrame:
        n = len(sample_ids)
        frame = pd.DataFrame(self._base(metric, n)).assign(
            sample_id=list(sample_ids),
            target=explanations.targets.numpy().astype(np.int64),
            value=result.values,
            status=result.status,
            message=result.message,
            explain_s=explanations.explain_s,
            score_s=result.seconds,  # per sample (the score stage stores per-sample seconds)
            n_forward=explanations.n_forward,
            params=json.dumps(result.params, sort_keys=True),
        )
        for column, value in result.provenance.items():  # a reused score stage keeps its own provenance
            frame[column] = value
        return conform(frame)
