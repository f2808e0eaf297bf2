"""The one place where tensors become numpy: build a fresh Quantus metric, call it, return one score per sample.

Quantus pitfalls handled here (pitfalls.md): fresh metric object per call (they keep state), global numpy/torch
RNGs seeded right before the call, copies of ``a_batch`` (some metrics mutate it), model in eval mode,
channel-first layouts, ``return_aggregate=False`` always, a fixed internal batch size so draws happen in the
same order whatever the user's batch size.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import quantus
import torch
from torch import nn

from xaibench.engine.seeding import seed_everything
from xaibench.explainers.base import Explainer
from xaibench.metrics import _compat  # noqa: F401  (np.trapz shim)
from xaibench.metrics.layout import (
    QuantusModel,
    from_quantus_inputs,
    to_quantus_attributions,
    to_quantus_inputs,
)
from xaibench.metrics.spec import MetricSpec
from xaibench.types import Modality, Split, Status


@dataclass
class ScoreContext:
    """Everything a metric may need for one cell's samples (native layouts, on the cell's device)."""

    model: nn.Module
    modality: Modality
    x: torch.Tensor
    targets: torch.Tensor
    attributions: torch.Tensor
    explainer: Explainer
    masks: torch.Tensor | None = None
    counterfactuals: torch.Tensor | None = None
    train: Split | None = None
    n_classes: int = 0
    device: str = "cpu"


@dataclass
class ScoreResult:
    """One value per sample, with a status and message per sample and the parameters actually used."""

    values: np.ndarray
    status: list[str]
    message: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def score(spec: MetricSpec, params: dict[str, Any], ctx: ScoreContext, seed: int) -> ScoreResult:
    """Score ``ctx.attributions`` with ``spec``; raises on failure (the runner records it as error rows)."""
    resolved = resolve_params(spec, params, ctx)
    started = time.perf_counter()
    seed_everything(seed)
    if spec.native is not None:
        raw = spec.native(ctx, **resolved)
    else:
        raw = _call_quantus(spec, resolved, ctx)
    values = np.asarray(raw, dtype=np.float64).reshape(len(ctx.x), -1)
    if values.shape[1] != 1:
        raise ValueError(f"metric {spec.name} returned {values.shape[1]} values per sample, expected 1")
    values = values[:, 0]
    status, message = [], []
    for value in values:
        ok = math.isfinite(value)
        status.append(Status.OK.value if ok else Status.NAN.value)
        message.append("" if ok else f"{spec.name} returned {value} for this sample")
    return ScoreResult(values, status, message, params=jsonable(resolved), seconds=time.perf_counter() - started)


def resolve_params(spec: MetricSpec, params: dict[str, Any], ctx: ScoreContext) -> dict[str, Any]:
    """Defaults + user params; fractions of the feature count become integers (e.g. ``subset_size: 0.25``)."""
    resolved = spec.check_params(params)
    n_features = int(np.prod(to_quantus_attributions(ctx.attributions[:1], ctx.modality).shape[1:]))
    for key in spec.fraction_params:
        value = resolved.get(key)
        if isinstance(value, float) and 0 < value <= 1:
            resolved[key] = max(1, min(n_features - 1, int(round(value * n_features))))
    return resolved


def _call_quantus(spec: MetricSpec, resolved: dict[str, Any], ctx: ScoreContext) -> list[float]:
    init = {k: _resolve_callable(v) if k.endswith("_func") else v for k, v in resolved.items() if k not in spec.call_defaults}
    call = {k: v for k, v in resolved.items() if k in spec.call_defaults}
    metric = spec.quantus_class(  # type: ignore[misc]
        **init, return_aggregate=False, disable_warnings=True, display_progressbar=False
    )
    native_shape = tuple(ctx.x.shape[1:])
    wrapped = QuantusModel(ctx.model, ctx.modality, native_shape).eval()
    x_batch = to_quantus_inputs(ctx.model, ctx.x, ctx.modality)
    a_batch = to_quantus_attributions(ctx.attributions, ctx.modality).copy()
    s_batch = None if ctx.masks is None else to_quantus_attributions(ctx.masks, ctx.modality).copy()
    kwargs: dict[str, Any] = {}
    if spec.needs_explain_func:
        kwargs["explain_func"] = make_explain_func(ctx.explainer, ctx.modality, native_shape)
    scores = metric(
        model=wrapped,
        x_batch=x_batch,
        y_batch=ctx.targets.detach().cpu().numpy(),
        a_batch=a_batch,
        s_batch=s_batch,
        channel_first=True,
        device=ctx.device,
        batch_size=max(len(x_batch), 1),
        **call,
        **kwargs,
    )
    return list(scores)


def make_explain_func(explainer: Explainer, modality: Modality, native_shape: tuple[int, ...]) -> Callable[..., np.ndarray]:
    """Quantus ``explain_func`` that re-explains through the same explainer adapter (batched, on device)."""

    def explain_func(model: nn.Module, inputs: np.ndarray, targets: np.ndarray, **_: Any) -> np.ndarray:
        native = model.model if isinstance(model, QuantusModel) else model
        device = next(native.parameters()).device
        x = from_quantus_inputs(inputs, modality, native_shape).to(device)
        target = torch.as_tensor(np.asarray(targets), dtype=torch.long, device=device).reshape(-1)
        forward = _EmbeddedForward(native) if modality is Modality.TEXT else native
        attributions = explainer.explain(forward, x, target).attributions
        if modality is Modality.TEXT and attributions.dim() == 3:
            attributions = attributions.sum(dim=-1)
        return to_quantus_attributions(attributions, modality)

    return explain_func


class _EmbeddedForward(nn.Module):
    """A text model seen as a function of its embeddings ``(N, L, D)`` (for re-explaining perturbed inputs)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.model.forward_embedded(embeddings)


def _resolve_callable(value: Any) -> Any:
    """Config strings naming Quantus functions (``perturb_func: baseline_replacement_by_indices``) -> callables."""
    if not isinstance(value, str):
        return value
    for module in (quantus.functions.perturb_func, quantus.functions.similarity_func, quantus.functions.normalise_func,
                   quantus.functions.norm_func, quantus.functions.loss_func):
        if hasattr(module, value):
            return getattr(module, value)
    raise ValueError(f"unknown Quantus function {value!r}")


def jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as recorded in the row: callables by name, numpy scalars as Python numbers."""
    out: dict[str, Any] = {}
    for key, value in sorted(params.items()):
        if callable(value):
            value = getattr(value, "__name__", repr(value))
        elif isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out
