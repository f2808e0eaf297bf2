"""Run one cell end to end: config -> (model, data) -> explanations -> scores -> rows.

A cell never raises for a computational failure (unless ``strict``): the failure becomes rows with
``status="error"`` and the message, and the sweep goes on. User errors (unknown names, bad parameters) do raise
``UserError``, because they are caught before any compute. Successful cells are cached in the store under their
key, so a rerun returns the stored rows without touching the model.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import torch

from xaibench.engine.applicability import (
    cell_not_applicable, metric_not_applicable, size_not_applicable, untrained_not_applicable,
)
from xaibench.engine.cell import CellSpec, split_name
from xaibench.engine.cell_result import CellResult  # noqa: F401  (re-exported: engine.runner.CellResult)
from xaibench.engine.canonical import recorded_method
from xaibench.engine.datasets import build_dataset
from xaibench.engine.device import resolve_device
from xaibench.engine.provenance import provenance
from xaibench.engine.stages import get_explanations, get_model, get_scores, untrained_model
from xaibench.engine.stamp import peak_memory_mb, shared_rows, stamp_rows
from xaibench.engine.store import Store
from xaibench.errors import NotApplicable, StorageError, UserError
from xaibench.metrics.output_screen import shared_screens
from xaibench.models.base import majority_rate
from xaibench.models.split_check import warn_if_the_split_moves
from xaibench.registry import DATASETS, EXPLAINERS, METRICS, MODELS
from xaibench.report.progress import Progress
from xaibench.results.schema import SCHEMA_VERSION, conform, frame_of, sort_rows
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
        _check_explain_output(model, cell.explain_output)
        metrics = {}
        for name, params in cell.metrics.items():
            metrics[name] = METRICS.get(name)
            metrics[name].check_params(params)
        resolve_device(cell.device, check_available=False)  # availability: checked where the job runs
        return cls(cell, model, dataset, method, metrics)


def _check_explain_output(model, explain_output: str) -> None:
    """``explain_output`` must read the model's class scores as what they are (``ModelSpec.class_scores``)."""
    from xaibench.models.outputs import check_explain_output

    check_explain_output(model.name, model.class_scores(), explain_output)


def run_cell(cell: CellSpec, store: Store, *, sweep_id: str = "") -> CellResult:
    """Compute (or load) one cell's rows. See the module docstring for the failure contract.

    The ``cells`` artefact is shared by every sweep that runs this cell, so it holds no writer-specific values:
    ``stamp.WRITER_COLUMNS`` are filled here, per run, on the rows returned (and written to the sweep folder).

    Raises:
        UserError: bad input. StorageError: the store cannot be written (full disk, read-only).
    """
    started = time.perf_counter()
    resolved = ResolvedCell.resolve(cell)
    cell = _with_device(cell)
    rows = _RowFactory(cell, resolved.metrics, sweep_id, resolved.model.source_revision())
    method = resolved.method
    rows.method_extra = {**method.recorded_params(resolved.dataset.modality), **method.recorded_role()}
    rows.modality = resolved.dataset.modality
    reason = cell_not_applicable(resolved.model, resolved.dataset, resolved.method)
    if reason:
        cached = store.get_frame("cells", cell.key)
        if cached is None:
            cached = rows.for_all(Status.NOT_APPLICABLE, reason)
            _save_cell(store, cell.key, cached, {})
        return CellResult(cell.key, _stamp(cached, cell, sweep_id, ran=False), True, time.perf_counter() - started)
    stages: dict[str, list[str]] = {}
    try:
        dataset = build_dataset(resolved.dataset, cell.seed)
        if cell.n_samples > len(dataset.test):
            raise UserError(f"n_samples={cell.n_samples} exceeds the {len(dataset.test)} test samples of {dataset.name}")
        cached = store.get_frame("cells", cell.key)
        if cached is not None and _still_valid(cached, dataset.revision, resolved.model.source_revision()):
            return CellResult(cell.key, _stamp(cached, cell, sweep_id, ran=False), True, time.perf_counter() - started)
        deterministic_kernels()  # after the cache check
        frame = _compute(cell, resolved, dataset, store, rows, stages)
    except (UserError, StorageError):
        raise
    except NotApplicable as error:  # found only on the built model (a method that cannot run on a TorchScript module)
        frame = rows.for_all(Status.NOT_APPLICABLE, str(error))
    except Exception as error:  # noqa: BLE001 - recorded as rows; strict re-raises for CI
        if cell.strict:
            raise
        frame = rows.for_all(Status.ERROR, _describe(error))
    if not (frame["status"] == Status.ERROR.value).any():
        _save_cell(store, cell.key, frame, stages)
    return CellResult(cell.key, _stamp(frame, cell, sweep_id), False, time.perf_counter() - started, rows.computed,
                      rows.reused)


def deterministic_kernels() -> None:
    """Switch on torch's deterministic kernels, warn-only: ``torch.use_deterministic_algorithms(True, warn_only=True)``.

    That call also sets ``torch._inductor.config.deterministic`` (for ``torch.compile``d code only), importing
    ``torch._inductor`` and ``torch._dynamo`` to do so: ~1.6 CPU-s in every fresh process that computes a cell.
    ``torch.set_deterministic_debug_mode("warn")`` sets the same flags for eager code without that import, and
    inductor's flag is set where it lives: on the loaded config, or in ``TORCHINDUCTOR_DETERMINISTIC``, which the
    config reads when it is first imported (a ``torch.compile``d user model compiled later in the cell).
    """
    torch.set_deterministic_debug_mode("warn")
    inductor_config = sys.modules.get("torch._inductor.config")
    if inductor_config is not None:
        inductor_config.deterministic = True
    else:
        os.environ["TORCHINDUCTOR_DETERMINISTIC"] = "1"


def _save_cell(store: Store, key: str, frame: pd.DataFrame, stages: dict[str, list[str]]) -> None:
    """Store the cell's rows without writer-specific values; ``stages`` (kind -> keys) lets ``store gc`` see use."""
    store.put_frame("cells", key, shared_rows(frame), meta={"stages": stages})


def _stamp(frame: pd.DataFrame, cell: CellSpec, sweep_id: str, *, ran: bool = True) -> pd.DataFrame:
    """Fill ``stamp.WRITER_COLUMNS`` for this run (``engine/stamp.py``); ``ran=False``: read from the store (no memory
    peak is reported for work this run did not do)."""
    return stamp_rows(frame, sweep_id=sweep_id, device=cell.device, model_label=cell.model_label,
                      dataset_label=cell.dataset_label, ran=ran)


def _compute(cell: CellSpec, resolved: ResolvedCell, dataset, store: Store, rows: "_RowFactory",
             stages: dict[str, list[str]]) -> pd.DataFrame:
    """Run the three stages; records the stage keys it used in ``stages`` (kind -> keys). A method that can tell
    from an untrained instance of the model that it does not apply raises ``NotApplicable`` before any training."""
    rows.dataset_revision = dataset.revision  # what the stored cell is checked against (_still_valid)
    rows.dataset_extra = encoded_columns(dataset)
    reason = untrained_not_applicable(resolved.method, lambda: untrained_model(resolved.model, dataset, cell),
                                      dataset.test.x[:1])
    if reason:
        raise NotApplicable(reason)
    model = get_model(store, resolved.model, dataset, cell)
    warn_if_the_split_moves(resolved.model, resolved.dataset, dataset, cell.seed)
    stages["models"] = [model.key]
    rows.model_accuracy = model.accuracy
    rows.model_device = model.device
    underfit = model.underfit_reason(majority_rate(dataset.test.y))
    rows.model_flag = "underfit" if underfit else ""
    explanations = get_explanations(store, resolved.method, model, dataset, cell)
    stages["explanations"] = [explanations.key]
    stages["scores"] = []
    sample_ids = dataset.test.ids[: cell.n_samples]
    frames = []
    with Progress(f"scoring {cell.method_name}", total=len(resolved.metrics), unit="metric") as progress, \
            shared_screens():  # the cell's metrics screen its model for a constant output once
        for name, metric in resolved.metrics.items():
            frames.append(_score_metric(cell, resolved, name, metric, model, dataset, explanations, store, rows,
                                        sample_ids, stages["scores"]))
            progress.update()
    return _noted_underfit(sort_rows(conform(pd.concat(frames, ignore_index=True))), underfit)


def _noted_underfit(frame: pd.DataFrame, reason: str) -> pd.DataFrame:
    """``frame`` whose rows without a message of their own (scored rows) say why the model is underfit: ``model
    underfit: <reason>`` (``TrainedModel.underfit_reason``); the flag alone does not name the bound that was missed,
    and the test split's majority-class rate is in no other column."""
    if reason:
        frame.loc[frame["message"].fillna("") == "", "message"] = f"model underfit: {reason}"
    return frame


def encoded_columns(dataset) -> dict:
    """``{"encoded_columns": {column: [feature names]}}`` when table columns were encoded into several features."""
    if not any(len(index) != 1 for _, index in dataset.feature_groups):
        return {}
    names = dataset.feature_names
    return {"encoded_columns": {column: [names[i] for i in index] for column, index in dataset.feature_groups}}


def _score_metric(cell: CellSpec, resolved: ResolvedCell, name: str, metric, model, dataset, explanations,
                  store: Store, rows: "_RowFactory", sample_ids, score_keys: list[str]) -> pd.DataFrame:
    """One metric's rows: not_applicable, error (the others still run), or the scores (stored or computed).

    Appends the score stage's key to ``score_keys`` (``store gc`` keeps what a cell uses)."""
    reason = metric_not_applicable(metric, resolved.dataset, explanations.counterfactuals is not None, resolved.model)
    reason = reason or size_not_applicable(metric, cell.metrics[name], tuple(dataset.test.x.shape[1:]))
    if reason:
        return rows.for_metric(name, Status.NOT_APPLICABLE, reason)
    try:
        result = get_scores(store, metric, resolved.method, model, dataset, explanations, cell)
        score_keys.append(cell.score_key(explanations.key, name))
    except StorageError:
        raise
    except Exception as error:  # noqa: BLE001 - one failing metric does not sink the others
        if cell.strict:
            raise
        return rows.for_metric(name, Status.ERROR, _describe(error))
    rows.count(result.cached)
    return rows.scored(name, sample_ids, explanations, result)


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

    def __init__(self, cell: CellSpec, metrics: dict, sweep_id: str, model_revision: str = "") -> None:
        self.cell, self.metrics, self.sweep_id = cell, metrics, sweep_id
        self.model_accuracy = float("nan")
        self.model_device = ""  # the model stage's device (TrainedModel.device), once it has run
        self.model_flag = ""
        self.dataset_revision = ""
        self.model_revision = model_revision
        self.computed = self.reused = 0
        self.dataset_extra: dict = {}  # recorded with the dataset's params (e.g. how table columns were encoded)
        self.method_extra: dict = {}  # recorded with the method's params (e.g. a perturbation method's grouping)
        self.modality = None  # the dataset's: method parameters unused on it are left out of method_params

    def count(self, cached: bool) -> None:
        """Tally a score stage as read from the store or computed now (the per-cell console line says which)."""
        if cached:
            self.reused += 1
        else:
            self.computed += 1

    def _base(self, metric: str, n: int) -> dict:
        spec = self.metrics[metric]
        # as its explanation key, without the parameters unused on the dataset's modality (named instead)
        _, method_params = split_name(recorded_method(self.cell.method, self.modality), "method")
        method_params = {**method_params, **self.method_extra}
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
            "dataset_params": [json.dumps({**dataset_params, **self.dataset_extra}, sort_keys=True)] * n,
            "n_samples": [self.cell.n_samples] * n,
            "target_mode": [self.cell.target] * n,
            "explain_output": [self.cell.explain_output] * n,
            "dataset_revision": [self.dataset_revision] * n,
            "model_revision": [self.model_revision] * n,
            "model_accuracy": [self.model_accuracy] * n,
            "model_flag": [self.model_flag] * n,
            "model_device": [self.model_device] * n,
            "peak_mem_mb": [peak_memory_mb(self.cell.device)] * n,
            "created_at": [datetime.now(timezone.utc).isoformat(timespec="seconds")] * n,
            "model_label": [self.cell.model_label] * n,
            "dataset_label": [self.cell.dataset_label] * n,
            **{k: [v] * n for k, v in provenance().items()},
        }

    def for_metric(self, metric: str, status: Status, message: str) -> pd.DataFrame:
        return frame_of({**self._base(metric, 1), "sample_id": "", "target": -1, "value": np.nan,
                         "status": status.value, "message": message, "explain_s": np.nan, "score_s": np.nan,
                         "n_forward": np.nan, "explanation_key": "", "explain_device": "", "oom_backoffs": 0,
                         "params": json.dumps(self.cell.metrics.get(metric, {}), sort_keys=True)}, 1)

    def for_all(self, status: Status, message: str) -> pd.DataFrame:
        frames = [self.for_metric(m, status, message) for m in self.cell.metrics]
        frame = pd.concat(frames, ignore_index=True)
        if status is Status.NOT_APPLICABLE:
            frame["peak_mem_mb"] = np.nan  # nothing ran
        return sort_rows(conform(frame))

    def scored(self, metric: str, sample_ids, explanations, result) -> pd.DataFrame:
        n = len(sample_ids)
        return frame_of({
            **self._base(metric, n),
            "sample_id": list(sample_ids),
            "target": explanations.targets.numpy().astype(np.int64),
            "value": result.values,
            "status": result.status,
            "message": result.message,
            "explain_s": explanations.explain_s,
            "score_s": result.seconds,  # per sample (the score stage stores per-sample seconds)
            "n_forward": explanations.n_forward,
            "explanation_key": explanations.key,
            "explain_device": explanations.device,
            "oom_backoffs": explanations.backoffs + result.backoffs,  # CUDA out-of-memory halvings, both stages
            "params": json.dumps(result.params, sort_keys=True),
            **result.provenance,  # a reused score stage keeps its own provenance
        }, n)
