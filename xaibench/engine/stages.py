"""The three cached stages of a cell: trained model, explanations, scores. Each is keyed and stored separately.

Every stage seeds torch/numpy/random from its own key before computing, so a stage's result does not depend on
what ran before it in the process (job order, launcher, resumed or not).
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from xaibench.engine.cell import CellSpec
from xaibench.engine.oom import OUT_OF_MEMORY, halving_batches
from xaibench.engine.counting import ForwardCounter
from xaibench.engine.provenance import provenance
from xaibench.engine.seeding import derive_seed, seed_everything
from xaibench.engine.store import Store
from xaibench.explainers.base import Explainer
from xaibench.explainers.output import DEFAULT_EXPLAIN_OUTPUT, explained_output
from xaibench.explainers.seeding import cell_seed, explanation_draws
from xaibench.metrics.quantus_adapter import ScoreContext, ScoreResult, score
from xaibench.metrics.spec import MetricSpec
from xaibench.models.base import ModelSpec, TrainedModel
from xaibench.models.training import accuracy, module_device
from xaibench.report.progress import Progress
from xaibench.types import Dataset, Modality


# Recorded with each score stage: rows reusing a cached stage report when and by which code it was computed.
PROVENANCE = ("xaibench_version", "torch_version", "captum_version", "quantus_version", "git_sha", "created_at")


def get_model(store: Store, spec: ModelSpec, dataset: Dataset, cell: CellSpec) -> TrainedModel:
    """Load the cached checkpoint (weights_only, checksum-verified) or train and cache it.

    A plugin model's key also holds its code (``plugin_code.code_digest_of``: the file defining its spec and the
    user's modules that file imports): after an edit it trains again (the seeds stay those of its identity)."""
    key = _with_plugin_code(cell.model_key(dataset.revision, spec.source_revision()), spec)
    seed_root = cell.model_key(dataset.revision, spec.source_revision(), versioned=False)
    cached = _load_model(store, spec, dataset, key, seed_root)
    if cached is not None:
        return cached
    with store.lock("models", key):
        cached = _load_model(store, spec, dataset, key, seed_root)  # another job may have trained it meanwhile
        if cached is not None:
            return cached
        seed_everything(derive_seed(seed_root))
        module = spec.build(dataset)
        module = spec.fit(module, dataset, derive_seed(seed_root, "fit")).eval()
        device = trained_on(spec, module)
        acc = accuracy(module, dataset.test)
        store.put("models", key, "pt", spec.save(module), meta={"accuracy": acc, "model": spec.name, "device": device})
        return TrainedModel(module, spec, key, acc, seed_root, device)


def _with_plugin_code(key: str, spec: ModelSpec) -> str:
    """``key`` itself for the package's models; joined with the plugin's code digest for a plugin model."""
    from xaibench.engine.keys import digest
    from xaibench.engine.plugin_code import code_digest_of

    code = code_digest_of(type(spec))
    return digest("model-code", key, code) if code else key


def untrained_model(spec: ModelSpec, dataset: Dataset, cell: CellSpec) -> torch.nn.Module:
    """The model :func:`get_model` would train, before training (built after the same seeding), in eval mode."""
    seed_everything(derive_seed(cell.model_key(dataset.revision, spec.source_revision(), versioned=False)))
    return spec.build(dataset).eval()


def trained_on(spec: ModelSpec, module: torch.nn.Module) -> str:
    """Where ``fit`` left the weights (``cpu``; a spec whose ``fit`` trains on a GPU: ``cuda:0``), "" for a model
    the suite did not train (``ModelSpec.trains_weights``: pre-fitted weights are used as given)."""
    return str(module_device(module)) if spec.trains_weights() else ""


def _load_model(store: Store, spec: ModelSpec, dataset: Dataset, key: str, seed_root: str) -> TrainedModel | None:
    hit = store.get("models", key, "pt")
    if hit is None:
        return None
    payload, meta = hit
    seed_everything(derive_seed(seed_root))
    try:
        module = spec.load(spec.build(dataset), payload).eval()
        # Checkpoints cached before schema v4 did not record a device: "" (unknown), not a reason to retrain.
        return TrainedModel(module, spec, key, float(meta["accuracy"]), seed_root, str(meta.get("device", "")))
    except Exception:  # noqa: BLE001 - a checkpoint that does not fit or lacks its metadata is retrained, not trusted
        return None


@dataclass
class ExplanationRecord:
    key: str
    attributions: torch.Tensor
    targets: torch.Tensor
    counterfactuals: torch.Tensor | None
    explain_s: float  # seconds per sample
    n_forward: float  # samples forwarded through the model per explained sample (batch-size invariant)
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    device: str = ""  # where it was computed (a stored record: where it was first computed); "" if not explained
    backoffs: int = 0  # batches halved after CUDA out-of-memory while explaining (``engine/oom.py``)


def get_explanations(
    store: Store, explainer: Explainer, model: TrainedModel, dataset: Dataset, cell: CellSpec
) -> ExplanationRecord:
    key = cell.explanation_key(model.key, modality=dataset.modality)
    cached = _load_explanations(store, key)
    if cached is not None:
        return cached
    with store.lock("explanations", key):
        cached = _load_explanations(store, key)
        if cached is not None:
            return cached
        record = _explain(explainer, model, dataset, cell, key)
        arrays = {"attributions": record.attributions.cpu().numpy(), "targets": record.targets.cpu().numpy()}
        if record.counterfactuals is not None:
            arrays["counterfactuals"] = record.counterfactuals.cpu().numpy()
        arrays.update({f"extra__{k}": v for k, v in record.extras.items()})
        store.put_arrays("explanations", key, arrays,
                         meta={"explain_s": record.explain_s, "n_forward": record.n_forward, "device": record.device,
                               "backoffs": record.backoffs})
        return record


def explanation_seed(cell: CellSpec, model: TrainedModel, modality: Modality | None = None) -> int:
    """The seed a cell's explanations draw from (version-free, so a release redraws nothing by itself).

    The score stage's re-explanations draw from it too (``explainers/seeding.explanation_draws``). ``modality``:
    the dataset's, so parameters unused on it do not change the draws (``engine/canonical.py``).
    """
    return derive_seed(cell.explanation_key(model.seed_root or model.key, versioned=False, modality=modality))


def _explain(explainer: Explainer, model: TrainedModel, dataset: Dataset, cell: CellSpec, key: str) -> ExplanationRecord:
    samples = dataset.test.head(cell.n_samples)
    module = model.module.to(cell.device)
    x = samples.x.to(cell.device)
    labels = samples.y.to(cell.device) if cell.target == "label" else None
    seed = explanation_seed(cell, model, dataset.modality)
    record = explain_arrays(explainer, module, x, labels, modality=dataset.modality, seed=seed,
                            batch_size=cell.batch_size, device=cell.device, explain_output=cell.explain_output,
                            control_seed=cell.seed)
    extras = dict(record.extras)
    if dataset.feature_groups:  # encoded table columns: also per original column (one-hot groups summed)
        from xaibench.data.user.encoding import column_attributions

        extras["column_attributions"] = column_attributions(record.attributions.numpy(), dataset.feature_groups)
    return ExplanationRecord(key, record.attributions, record.targets, record.counterfactuals, record.explain_s,
                             record.n_forward, extras, device=cell.device, backoffs=record.backoffs)


def predict(module: torch.nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Predicted classes ``(N,)`` of ``x`` in batches, without gradients."""
    return predicted(module, x, batch_size)[0]


def predicted(module: torch.nn.Module, x: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, int]:
    """Predicted classes ``(N,)`` and the batch halvings after CUDA out-of-memory (``oom.halving_batches``)."""
    with torch.no_grad():
        parts, backoffs = halving_batches(lambda start, stop: module(x[start:stop]).argmax(dim=1), len(x), batch_size)
    return torch.cat(parts), backoffs


def explain_arrays(explainer: Explainer, module: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor | None, *,
                   modality: Modality, seed: int, batch_size: int, device: str = "cpu",
                   explain_output: str = DEFAULT_EXPLAIN_OUTPUT, control_seed: int = 0) -> ExplanationRecord:
    """Explain ``x`` in batches: the explanation stage without the store (the sweep and ``xaibench.explain``).

    Args:
        x: inputs on ``device``, layout per ``modality``.
        labels: explain these classes ``(N,)``; None explains the predicted classes.
        seed: seeds torch/numpy/random before explaining (stochastic methods draw per sample from it).
        explain_output: the model output explained (``explainers/output.py``).
        control_seed: the seed model-free controls draw from (the cell's config ``seed``).

    Returns:
        A record whose attributions are shaped like ``x`` (text: ``(N, L)``), with seconds and forwards per sample.
    """
    targets, predict_backoffs = predicted(module, x, batch_size) if labels is None else (labels, 0)
    seed_everything(seed)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    # The counter sits under the output transform, not over it: DeepLIFT and LRP find the transform on top
    # (``output_rules.split_output``) and apply its declared rule, as a metric's re-explanation does; each forward of
    # the explained output is one forward of the model, so every other method counts what it counted before.
    counter = ForwardCounter(module)
    started = time.perf_counter()
    progress = Progress(f"explaining with {explainer.name}", total=len(x), unit="sample")
    with cell_seed(control_seed), explanation_draws(seed), progress:
        parts, backoffs = _explain_batches(explainer, counter, explained_output(counter, explain_output), x, targets,
                                           batch_size, progress)
    backoffs += predict_backoffs
    seconds = time.perf_counter() - started
    attributions = torch.cat([p.attributions.detach() for p in parts]).float()
    expected = tuple(x.shape[:2]) if modality is Modality.TEXT else tuple(x.shape)
    if tuple(attributions.shape) != expected:
        raise ValueError(f"{explainer.name} returned attributions {tuple(attributions.shape)}, expected {expected}")
    if not torch.isfinite(attributions).all():
        raise ValueError(f"{explainer.name} returned non-finite attributions")
    counterfactuals = None
    if parts[0].counterfactuals is not None:
        counterfactuals = torch.cat([p.counterfactuals.detach() for p in parts]).cpu()
    extras = {k: np.concatenate([np.asarray(p.extras[k]) for p in parts]) for k in parts[0].extras}
    n = len(x)
    return ExplanationRecord("", attributions.cpu(), targets.cpu(), counterfactuals, seconds / n, counter.rows / n,
                             extras, backoffs=backoffs)


def _explain_batches(explainer: Explainer, counter: ForwardCounter, explained: torch.nn.Module, x: torch.Tensor,
                     targets: torch.Tensor, batch_size: int, progress: Progress) -> tuple[list, int]:
    """``explainer.explain`` of ``explained`` (the output transform over ``counter``) on ``batch_size`` samples at
    a time, halved on CUDA out-of-memory (``oom.halving_batches``). Returns the parts and the number of halvings.

    The maps do not depend on the batch (explainers draw per sample), and a failed attempt's forwards are not
    counted, so ``n_forward`` is what the smaller batches used.
    """
    def explain(start: int, stop: int):
        calls, rows = counter.calls, counter.rows
        try:
            part = explainer.explain(explained, x[start:stop], targets[start:stop])
        except OUT_OF_MEMORY:
            counter.calls, counter.rows = calls, rows
            raise
        progress.update(len(part.attributions))
        return part

    return halving_batches(explain, len(x), batch_size)


def _load_explanations(store: Store, key: str) -> ExplanationRecord | None:
    hit = store.get_arrays("explanations", key)
    if hit is None:
        return None
    arrays, meta = hit
    cf = arrays.get("counterfactuals")
    extras = {k.removeprefix("extra__"): v for k, v in arrays.items() if k.startswith("extra__")}
    try:
        return ExplanationRecord(
            key, torch.from_numpy(arrays["attributions"]), torch.from_numpy(arrays["targets"]),
            None if cf is None else torch.from_numpy(cf), float(meta["explain_s"]), float(meta["n_forward"]), extras,
            device=str(meta.get("device", "")),  # stages stored before v3 did not record it: unknown
            backoffs=int(meta.get("backoffs", 0)),
        )
    except (KeyError, TypeError, ValueError):  # verified but not what this version writes: recompute
        return None


def get_scores(
    store: Store, metric: MetricSpec, explainer: Explainer, model: TrainedModel, dataset: Dataset,
    explanations: ExplanationRecord, cell: CellSpec,
) -> ScoreResult:
    key = cell.score_key(explanations.key, metric.name)
    frame = _load_scores(store, key, cell.n_samples)
    cached = frame is not None
    if frame is None:
        with store.lock("scores", key):
            frame = _load_scores(store, key, cell.n_samples)
            if frame is None:
                frame = _score_frame(metric, explainer, model, dataset, explanations, cell, key)
                store.put_frame("scores", key, frame)
    return result_from_frame(frame, cached)


def result_from_frame(frame: pd.DataFrame, cached: bool = False) -> ScoreResult:
    """A score stage's stored frame (``score_frame``) as a ``ScoreResult``."""
    return ScoreResult(
        values=frame["value"].to_numpy(dtype=np.float64),
        status=frame["status"].tolist(),
        message=frame["message"].tolist(),
        params=json.loads(frame["params"].iloc[0]) if len(frame) else {},
        seconds=float(frame["score_s"].iloc[0]) if len(frame) else 0.0,
        # A reused stage reports where and with what it was computed, not the current sweep's device.
        provenance={c: str(frame[c].iloc[0]) for c in (*PROVENANCE, "device") if c in frame and len(frame)},
        cached=cached,
        backoffs=int(frame["oom_backoffs"].iloc[0]) if "oom_backoffs" in frame and len(frame) else 0,  # v4 on
    )


def _load_scores(store: Store, key: str, n_samples: int) -> pd.DataFrame | None:
    """The stored score frame if it has this version's columns and one row per sample, else None (recompute)."""
    frame = store.get_frame("scores", key)
    needed = {"sample_id", "value", "status", "message", "params", "score_s"}
    if frame is None or not needed <= set(frame.columns) or len(frame) != n_samples:
        return None
    return frame


def _score_frame(metric: MetricSpec, explainer: Explainer, model: TrainedModel, dataset: Dataset,
                 explanations: ExplanationRecord, cell: CellSpec, key: str) -> pd.DataFrame:
    samples = dataset.test.head(cell.n_samples)
    ctx = ScoreContext(
        model=model.module.to(cell.device).eval(),
        modality=dataset.modality,
        x=samples.x.to(cell.device),
        targets=explanations.targets.to(cell.device),
        attributions=explanations.attributions.to(cell.device),
        explainer=explainer,
        masks=None if samples.masks is None else samples.masks.to(cell.device),
        counterfactuals=None if explanations.counterfactuals is None else explanations.counterfactuals.to(cell.device),
        train=dataset.train,
        n_classes=dataset.n_classes,
        device=cell.device,
        explain_output=cell.explain_output,
        engine=cell.engine,
        chunk_size=cell.chunk_size,
        coefficients=np.asarray(dataset.coefficients) if dataset.coefficients else None,
        draw_seed=explanation_seed(cell, model, dataset.modality),
    )
    return score_frame(metric, cell.metrics[metric.name], ctx, cell.seed, samples.ids)


def score_seed(seed: int, metric: str) -> int:
    """The metric's seed: from the cell's config seed and the metric name only.

    Every method scored with one metric under one seed draws the same random numbers (common random numbers:
    the same feature subsets, the same noise), which makes paired comparisons between methods fairer; a sweep
    and ``xaibench.evaluate`` draw alike. Not derived from content: a float hash would draw entirely different
    numbers on another machine whose BLAS differs in the last bit.
    """
    return derive_seed("scores", seed, metric)


def score_frame(metric: MetricSpec, params: dict, ctx: ScoreContext, seed: int, sample_ids) -> pd.DataFrame:
    """Score one metric on a context: one row per sample (value, status, message, params, seconds, provenance).

    ``seed`` is the cell's config seed: model-free controls re-explain exactly as they explained.
    """
    with cell_seed(seed):
        result = score(metric, params, ctx, score_seed(seed, metric.name))
    n = len(sample_ids)
    return pd.DataFrame({
        "sample_id": list(sample_ids),
        "value": result.values,
        "status": result.status,
        "message": result.message,
        "params": [json.dumps(result.params, sort_keys=True)] * n,
        "score_s": [result.seconds / n] * n,
        "device": [ctx.device] * n,
        "oom_backoffs": [result.backoffs] * n,
        **{k: [v] * n for k, v in {**provenance(), "created_at": _now()}.items()},
    })


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
