"""A cell over arrays the user already has: the engine behind ``xaibench.explain`` and ``xaibench.evaluate``.

The model, inputs and (optionally) attributions come from the caller instead of the registries and the store, but
everything after that is the sweep's own code: explanations through ``stages.explain_arrays``, scores through
``stages.score_frame`` (same parameters, same content-derived seeds, same statuses), rows through the runner's
row factory (same schema). Nothing is written unless a ``store_dir`` is given.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from torch import nn

from xaibench.data.base import content_revision
from xaibench.data.classes import class_name
from xaibench.engine.array_inputs import (
    as_tensor, checked_classes, checked_masks, checked_train, checked_x, modality_of,
)
from xaibench.engine.applicability import metric_not_applicable, size_not_applicable
from xaibench.engine.cell import CellSpec
from xaibench.engine.keys import digest
from xaibench.engine.runner import _describe, _RowFactory
from xaibench.explainers.output_kinds import DEFAULT_EXPLAIN_OUTPUT
from xaibench.engine.stages import ExplanationRecord, explain_arrays, predict, result_from_frame, score_frame
from xaibench.engine.seeding import derive_seed
from xaibench.engine.store import Store
from xaibench.errors import UserError
from xaibench.explainers.base import Explainer
from xaibench.metrics.output_screen import shared_screens
from xaibench.metrics.quantus_adapter import ScoreContext
from xaibench.models.outputs import (
    LogProbabilities, as_float32_model, check_class_scores, check_explain_output, check_outputs_option,
)
from xaibench.registry import EXPLAINERS, METRICS
from xaibench.results.schema import conform, sort_rows
from xaibench.types import Capability, Modality, Split, Status

_MODALITY_BY_NDIM = {2: Modality.TABULAR, 3: Modality.TIME_SERIES, 4: Modality.IMAGE}


@dataclass(frozen=True)
class Declared:
    """What applicability checks read from a model or dataset spec (name, modality, capabilities, masks)."""

    name: str
    modality: Modality | None = None
    capabilities: frozenset[Capability] = frozenset()
    has_ground_truth: bool = False


def metric_params(metrics: str | Sequence[str] | Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Names, ``{name: params}`` or a suite name (``conf/metrics/<suite>.yaml``) -> ``{name: params}``."""
    if isinstance(metrics, str):
        from xaibench.config.paths import conf_dir, group_options

        if metrics in METRICS:
            return {metrics: {}}
        if metrics not in group_options("metrics"):
            raise UserError(f"unknown metric or suite {metrics!r}; suites: {', '.join(group_options('metrics'))}")
        return {k: dict(v or {}) for k, v in
                (yaml.safe_load((conf_dir() / "metrics" / f"{metrics}.yaml").read_text()) or {}).items()}
    if isinstance(metrics, Mapping):
        return {str(k): dict(v or {}) for k, v in metrics.items()}
    return {str(name): {} for name in metrics}


def as_module(model: Any, n_features: int, columns: Sequence[str] = (), text: bool = False
              ) -> tuple[nn.Module, frozenset[Capability]]:
    """The caller's model as a torch module plus the capabilities it offers (declared by its protocols).

    ``columns``: the names of ``x``'s features when ``x`` is a DataFrame; a scikit-learn model fitted on a
    DataFrame gets them in its own column order (matched by name, ``sklearn_estimator.feature_order``). A
    ``transformers`` model is seen through the Hugging Face adapters (``huggingface.wrap_pretrained``; ``text``:
    ``x`` holds token ids).
    """
    from xaibench.explainers.propagation.lrp import unsupported_layers
    from xaibench.models.adapters.huggingface import wrap_pretrained

    pretrained = wrap_pretrained(model, text)
    if pretrained is not None:  # eval: no dropout (the caller's mode is restored afterwards)
        return as_float32_model(pretrained[0].eval()), pretrained[1]
    if not isinstance(model, nn.Module):
        from xaibench.models.adapters.sklearn_estimator import SklearnClassifier, feature_order, no_proba_hint

        if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
            raise UserError(f"model must be a torch.nn.Module or a fitted scikit-learn classifier with predict_proba, "
                            f"got {type(model).__name__}{no_proba_hint(model)}")

        order = feature_order(model, columns, "the scikit-learn model",
                              ("x's columns", "pass x[model.feature_names_in_] (or a numpy array in that order)"))
        classes = np.asarray(model.classes_)
        if classes.dtype.kind in "iu" and classes.min() >= 0:  # integer classes are their own indices
            return (SklearnClassifier(model, int(classes.max()) + 1, n_features, feature_order=order),
                    frozenset({Capability.PROBA}))
        names = tuple(class_name(c) for c in classes.astype(object))  # e.g. strings: indices in classes_ order
        return (SklearnClassifier(model, len(names), n_features, range(len(names)), names, order),
                frozenset({Capability.PROBA}))
    capabilities = {Capability.GRADIENTS, Capability.PROBA}
    if hasattr(model, "embed") and hasattr(model, "forward_embedded"):
        capabilities.add(Capability.EMBEDDING)
    if hasattr(model, "forward_with_attention"):
        capabilities.add(Capability.ATTENTION)
    parts = list(model.modules())
    transformer = Capability.ATTENTION in capabilities or any(
        type(part).__module__.startswith("transformers.") for part in parts)  # a ViT's patch embedding is no CNN
    if not transformer and any(isinstance(part, (nn.Conv1d, nn.Conv2d)) for part in parts):  # the CAM methods' layers
        capabilities.add(Capability.CONV)
    if not transformer and not unsupported_layers(model):  # layers LRP has rules for (its forward is checked too)
        capabilities.add(Capability.LRP)
    if hasattr(model, "estimator"):  # an already-wrapped scikit-learn model
        capabilities = {Capability.PROBA}
    return as_float32_model(model.eval()), frozenset(capabilities)


def _declared_outputs(model: Any, module: nn.Module, x: torch.Tensor, outputs: str) -> tuple[nn.Module, str, int]:
    """The module to explain, what the caller's model returns and how many classes, checked on the first rows of
    ``x``.

    A scikit-learn classifier returns probabilities (its module already gives their logs); a torch module returns
    what ``outputs`` declares, and one that returns probabilities is explained through ``log p``.
    """
    if not isinstance(model, nn.Module) or hasattr(model, "estimator"):
        expected = getattr(module.estimator, "n_features_in_", module.n_features)
        if expected != module.n_features:
            raise UserError(f"the scikit-learn model was fitted on {expected} features, x has {module.n_features} "
                            "per sample")
        return module, "probabilities", module.n_classes
    check_outputs_option(outputs, "", "outputs")
    n_classes = check_class_scores(module, x, None, outputs, "model", option="outputs")
    return (LogProbabilities(module) if outputs == "probabilities" else module), outputs, n_classes


def api_device(device: Any) -> str:
    """``device=`` of the API (a name or a ``torch.device``) checked as the CLI's ``device`` is (``auto``, ``cpu``,
    ``cuda``, ``cuda:N``; CUDA only where visible): one ``UserError`` line instead of torch's assertion."""
    from xaibench.engine.device import resolve_device

    name = resolve_device(str(device))
    return "cpu" if name.startswith("cpu") else name


@dataclass(frozen=True)
class ArrayCell:
    """A model and inputs ``x`` ``(N, ...)`` (with labels, masks and a training split where given)."""

    module: nn.Module
    capabilities: frozenset[Capability]
    x: torch.Tensor
    modality: Modality
    device: str
    y: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    train: Split | None = None
    class_scores: str = "logits"  # what the caller's model returns (``xaibench/models/outputs.py``)
    n_classes: int = 0  # how many class scores the model returns
    class_names: tuple[str, ...] = ()  # a scikit-learn model's classes_ when they are not indices 0..K-1

    @classmethod
    def of(cls, model: Any, x: Any, *, modality: str | None = None, device: str = "cpu", y: Any = None,
           masks: Any = None, train: tuple[Any, Any] | None = None, outputs: str = "logits") -> "ArrayCell":
        device = api_device(device)
        columns = tuple(str(c) for c in getattr(x, "columns", ()))  # a DataFrame's column names
        x = as_tensor(x, "x", hint="; text: pass token ids (N, L) from your tokenizer, e.g. "
                      "tokenizer(texts, padding='max_length', max_length=L)['input_ids']")
        if x.dim() < 2:  # one sample, or one feature per sample: the batch axis is ambiguous, so it is not guessed
            raise UserError(f"x must be a batch (N, ...), got shape {tuple(x.shape)}: pass x[None] for one sample, "
                            "x[:, None] for samples of a single feature")
        kind = modality_of(modality) if modality else cls._infer_modality(x)
        x = checked_x(x, kind)
        module, capabilities = as_module(model, math.prod(x.shape[1:]), columns, kind is Modality.TEXT)
        names = tuple(getattr(module, "class_names", ()))  # a model fitted on class names: y holds names
        module, outputs, n_classes = _declared_outputs(model, module.to(device), x.to(device), outputs)
        labels = None if y is None else checked_classes(y, "y", len(x), n_classes, names)
        gt = None if masks is None else checked_masks(masks, x, kind)
        split = None
        if train is not None:
            tx, ty = checked_train(train, x, kind, n_classes, names)
            split = Split(tx, ty, tuple(map(str, range(len(ty)))))
        return cls(module.to(device), capabilities, x.to(device), kind, device, labels, gt, split, outputs,
                   n_classes, names)

    @staticmethod
    def _infer_modality(x: torch.Tensor) -> Modality:
        if not x.dtype.is_floating_point and x.dim() == 2:
            return Modality.TEXT
        if x.dim() not in _MODALITY_BY_NDIM:
            raise UserError(f"cannot tell the modality of x with shape {tuple(x.shape)}; pass modality=...")
        return _MODALITY_BY_NDIM[x.dim()]

    def explainer(self, method: str, params: Mapping[str, Any]) -> Explainer:
        """The registered method with ``params``, checked to apply to this model and input kind."""
        explainer = EXPLAINERS.create(method, dict(params))
        if self.modality not in explainer.modalities:
            raise UserError(f"method {method} does not handle {self.modality} inputs")
        ignored = sorted(set(params) & set(type(explainer).unused_params.get(self.modality, ())))
        if ignored:  # a sweep names them in method_params.unused_params; the API says so once
            from xaibench.data.user.encoding import warn_once

            warn_once(f"{method}'s {', '.join(ignored)} {'has' if len(ignored) == 1 else 'have'} no effect on "
                      f"{self.modality.value} inputs: explained as with the default")
        missing = explainer.requires - self.capabilities
        if missing:
            eager = Capability.ATTENTION in missing and any(  # a transformers model without eager attention
                type(part).__module__.startswith("transformers.") for part in self.module.modules())
            raise UserError(f"method {method} needs {', '.join(sorted(missing))}, which this model does not offer"
                            + ("; load it with attn_implementation='eager' to return attention maps" if eager else ""))
        return explainer

    def explain(self, explainer: Explainer, targets: Any = None, *, seed: int, batch_size: int,
                explain_output: str = DEFAULT_EXPLAIN_OUTPUT) -> ExplanationRecord:
        check_explain_output("given", self.class_scores, explain_output)
        labels = None if targets is None else checked_classes(targets, "targets", len(self.x), self.n_classes,
                                                              self.class_names)
        labels = None if labels is None else labels.to(self.device)
        return explain_arrays(explainer, self.module, self.x, labels, modality=self.modality,
                              seed=self._explanation_seed(explainer, seed),
                              batch_size=batch_size, device=self.device, explain_output=explain_output,
                              control_seed=seed)

    def _explanation_seed(self, explainer: Explainer, seed: int) -> int:
        """What ``explain`` draws from: ``evaluate`` re-explains with it, so re-explanations draw as ``explain`` did."""
        from xaibench.engine.canonical import canonical_explainer

        return derive_seed("explain", seed, explainer.name, repr(canonical_explainer(explainer, self.modality)),
                           content_revision(self.x.cpu()))

    def targets(self, target: str) -> torch.Tensor:
        if target == "label":
            if self.y is None:
                raise UserError("target='label' needs the labels y")
            return self.y.to(self.device)
        if target != "predicted":
            raise UserError(f"target must be 'predicted' or 'label', got {target!r}")
        return predict(self.module, self.x, 256)

    def evaluate(self, attributions: Any, metrics: dict[str, dict[str, Any]], *, explainer: Explainer | None,
                 target: str, seed: int, sample_ids: Sequence[str] | None, names: Mapping[str, str],
                 store_dir: str | Path | None, explain_output: str = DEFAULT_EXPLAIN_OUTPUT) -> pd.DataFrame:
        """Score ``attributions`` with each metric; one row per metric x sample (see ``xaibench.evaluate``)."""
        check_explain_output(names.get("model") or "given", self.class_scores, explain_output)
        expected = tuple(self.x.shape[:2]) if self.modality is Modality.TEXT else tuple(self.x.shape)
        attributions = as_tensor(attributions, "attributions", torch.float32)
        if tuple(attributions.shape) != expected:
            raise UserError(f"attributions have shape {tuple(attributions.shape)}, expected {expected}")
        finite = torch.isfinite(attributions).reshape(len(attributions), -1).all(dim=1)
        if not bool(finite.all()):  # metrics would score them as 0 or blame "constant sums": refuse instead
            bad = torch.nonzero(~finite).flatten().tolist()
            raise UserError(f"attributions have NaN or infinite values (samples {', '.join(map(str, bad[:5]))}"
                            f"{', ...' if len(bad) > 5 else ''}); replace them before scoring")
        for name, params in metrics.items():
            METRICS.get(name).check_params(params)
        ids = tuple(str(i) for i in sample_ids) if sample_ids is not None else tuple(f"arr-{i:05d}" for i in
                                                                                      range(len(self.x)))
        if len(ids) != len(self.x):
            raise UserError(f"{len(ids)} sample_ids for {len(self.x)} samples")
        targets = self.targets(target)
        record = ExplanationRecord("", attributions, targets.cpu(), None, float("nan"), float("nan"))
        rows = self._rows(metrics, explainer, target, seed, names, ids, explain_output)
        store = Store(store_dir) if store_dir is not None else None
        with shared_screens():  # one constant-output screen for all the metrics
            frames = [self._score_metric(name, metrics[name], rows, record, explainer, seed, ids, store)
                      for name in metrics]
        return sort_rows(conform(pd.concat(frames, ignore_index=True)))

    def _rows(self, metrics: dict, explainer: Explainer | None, target: str, seed: int, names: Mapping[str, str],
              ids: tuple[str, ...], explain_output: str) -> _RowFactory:
        method = {"name": names.get("method") or (explainer.name if explainer else "given")}
        cell = CellSpec(model={"name": names.get("model") or type(self.module).__name__},
                        dataset={"name": names.get("dataset") or "arrays"}, method=method, metrics=metrics,
                        seed=seed, n_samples=len(self.x), target=target, device=self.device,
                        explain_output=explain_output)
        rows = _RowFactory(cell, {name: METRICS.get(name) for name in metrics}, sweep_id="evaluate",
                           model_revision=self._model_revision())
        if explainer is not None:
            rows.method_extra = {**explainer.recorded_params(self.modality), **explainer.recorded_role()}
        rows.modality = self.modality
        rows.dataset_revision = content_revision(self.x.cpu(), self.y, ids, None if self.masks is None else self.masks)
        if self.y is not None:
            rows.model_accuracy = float((predict(self.module, self.x, 256).cpu() == self.y).float().mean())
        return rows

    def _score_metric(self, name: str, params: dict, rows: _RowFactory, record: ExplanationRecord,
                      explainer: Explainer | None, seed: int, ids: tuple[str, ...], store: Store | None
                      ) -> pd.DataFrame:
        spec = METRICS.get(name)
        declared_data = Declared("arrays", self.modality, has_ground_truth=self.masks is not None)
        reason = metric_not_applicable(spec, declared_data, False, Declared("model", capabilities=self.capabilities))
        reason = reason or size_not_applicable(spec, params, tuple(self.x.shape[1:]))
        if reason is None and spec.needs_explain_func and explainer is None:
            reason = f"metric {name} re-explains the inputs; pass method=<the method that made the attributions>"
        if reason:
            return rows.for_metric(name, Status.NOT_APPLICABLE, reason)
        ctx = ScoreContext(model=self.module, modality=self.modality, x=self.x, targets=record.targets.to(self.device),
                           attributions=record.attributions.to(self.device), explainer=explainer,
                           masks=None if self.masks is None else self.masks.to(self.device), train=self.train,
                           n_classes=int(self.module(self.x[:1]).shape[1]), device=self.device,
                           explain_output=rows.cell.explain_output,
                           draw_seed=None if explainer is None else self._explanation_seed(explainer, seed))
        try:
            frame, cached = self._scores(spec, params, ctx, seed, ids, rows, store)
        except Exception as error:  # noqa: BLE001 - a failing metric becomes error rows, as in a sweep
            return rows.for_metric(name, Status.ERROR, _describe(error))
        rows.count(cached)
        return rows.scored(name, ids, record, result_from_frame(frame, cached))

    def _scores(self, spec, params: dict, ctx: ScoreContext, seed: int, ids: tuple[str, ...], rows: _RowFactory,
                store: Store | None) -> tuple[pd.DataFrame, bool]:
        if store is None:
            return score_frame(spec, params, ctx, seed, ids), False
        key = digest("evaluate-scores", rows.model_revision, rows.dataset_revision, spec.name, params, seed,
                     ctx.explain_output,
                     content_revision(ctx.targets.cpu(), ctx.attributions.cpu()),
                     None if ctx.explainer is None else repr(ctx.explainer))
        frame = store.get_frame("scores", key)
        if frame is not None:
            return frame, True
        frame = score_frame(spec, params, ctx, seed, ids)
        store.put_frame("scores", key, frame)
        return frame, False

    def _model_revision(self) -> str:
        """Fingerprint of the model's weights (scikit-learn: its pickled bytes)."""
        estimator = getattr(self.module, "estimator", None)
        if estimator is not None:
            import pickle

            from xaibench.models.adapters.sklearn_estimator import FORWARD_REVISION

            return digest("sklearn", FORWARD_REVISION,
                          content_revision(np.frombuffer(pickle.dumps(estimator), dtype=np.uint8)))
        state = self.module.state_dict()
        return content_revision(tuple(sorted(state)), *(state[k] for k in sorted(state)))
