"""The one place where tensors become numpy: build a fresh Quantus metric, call it, return one score per sample.

``score(spec, params, ctx, seed)`` is the single entry point the runner uses. Around the Quantus call it:

1. resolves parameters: spec defaults + the suite's params, fractions of the feature count -> counts, data-
   dependent values (class count, mask size); everything resolved is recorded in the row's ``params``;
2. converts to the Quantus layout (``layout.py``), on copies (Sparseness/Complexity mutate ``a_batch``): text as
   embeddings ``(N, D, L)``, or as per-token presence ``(N, 1, L)`` for metrics that remove features by index
   (``spec.text_view``); per-token attributions ``(N, 1, L)`` either way;
3. sets degenerate samples aside *before* the call (``spec.screens``: all-zero or constant maps, empty masks, a
   model whose output does not move: ``output_screen.py``, once per cell) with ``status="nan"`` and the reason,
   instead of feeding Quantus a divide-by-zero;
4. seeds numpy's global RNG (Quantus draws from it) and torch right before the call, builds a fresh metric
   (Quantus metrics keep state), passes ``return_aggregate=False`` and the whole cell as one batch so draws happen
   in the same order whatever the user's batch size;
5. reduces Quantus' raw output (curves, per-layer dicts) to one number per sample (``spec.reduce``);
6. if Quantus rejects the batch with an assertion about sample content (a superpixel segmentation with one
   segment, Quantus#375's batch of all-negative maps), scores each sample alone and marks the rejected ones
   ``nan`` with Quantus' message, rather than losing the whole metric; configuration asserts still raise;
7. explains every remaining NaN (which side of a correlation was constant, a flipped prediction).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
import quantus
import torch
from torch import nn

from xaibench.engine.seeding import GLOBAL_RNG_LOCK, derive_seed, seed_everything
from xaibench.explainers.base import EmbeddedForward, Explainer, guessed_call_rows
from xaibench.explainers.output import explained_output
from xaibench.explainers.seeding import TokenTable, explanation_draws, global_draws_kept, known_tokens
from xaibench.metrics import _compat  # noqa: F401  (np.trapz shim)
from xaibench.metrics import functional
from xaibench.metrics.constant_maps import constant_maps_accepted
from xaibench.metrics.fast import ENGINES, fast_class
from xaibench.metrics.functional import CorrelationDiagnostics
from xaibench.metrics.layout import (
    QuantusModel,
    TokenPresenceModel,
    from_quantus_inputs,
    n_positions,
    sum_channels,
    to_quantus_attributions,
    to_quantus_inputs,
    to_quantus_masks,
)
from xaibench.metrics.output_screen import ScreenedOutputs, screen_outputs
from xaibench.metrics.quiet import quiet
from xaibench.metrics.spec import CALLABLE_PARAMS, MetricSpec, Screen
from xaibench.types import Capability, Modality, Split, Status


@dataclass
class ScoreContext:
    """Everything a metric may need for one cell's samples (native layouts, on the cell's device).

    Attributes:
        model: the trained module in eval mode.
        modality: input kind of ``x``.
        x: inputs, native layout (text: token ids ``(N, L)``).
        targets: explained classes ``(N,)``.
        attributions: shape of ``x`` (text: per token ``(N, L)``).
        explainer: the method, re-run by stability/randomisation metrics through ``explain_func``.
        masks: ground truth (image ``(N, C|1, H, W)``, tabular ``(N, F)``, series ``(N, C, T)``, text ``(N, L)``).
        counterfactuals: shape of ``x``, or ``(N, K, ...)`` for K counterfactuals per sample, or None.
        train: the training split (counterfactual plausibility).
        n_classes: number of classes of the dataset.
        device: where the model lives.
        explain_output: the output the attributions explain (``explainers/output.py``); re-explanations use it too.
        engine: ``"fast"`` (chunked Quantus subclasses, ``xaibench.metrics.fast``) or ``"quantus"`` (plain).
        chunk_size: rows per forward / re-explanation call of the fast engine; None (``auto``): forwards of
            ``DEFAULT_CHUNK_SIZE`` rows, re-explanation calls sized by the model (``metrics/fast/_sizing.py``).
        coefficients: the data generator's true coefficients ``(F,)`` of the class-1 score (``Dataset.coefficients``),
            or None when the dataset has none.
        draw_seed: the seed the stored attributions were drawn with (the cell's explanation seed); re-explanations
            draw from it, so an intact sample re-explained draws its stored map's noise. None: the score stage's.
    """

    model: nn.Module
    modality: Modality
    x: torch.Tensor
    targets: torch.Tensor
    attributions: torch.Tensor
    explainer: Explainer | None
    masks: torch.Tensor | None = None
    counterfactuals: torch.Tensor | None = None
    train: Split | None = None
    n_classes: int = 0
    device: str = "cpu"
    explain_output: str = "logit"
    engine: str = "fast"
    chunk_size: int | None = None
    coefficients: np.ndarray | None = None
    draw_seed: int | None = None


@dataclass
class ScoreResult:
    """One value per sample, with a status and message per sample and the parameters actually used."""

    values: np.ndarray
    status: list[str]
    message: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    provenance: dict[str, str] = field(default_factory=dict)  # versions, git SHA and time when it was computed
    cached: bool = False  # read back from the store rather than computed now
    backoffs: int = 0  # chunks halved after CUDA out-of-memory (``engine/oom.py``): the rows' ``oom_backoffs``


@dataclass(frozen=True)
class QuantusBatch:
    """The numpy inputs of one Quantus call (Quantus layout), plus the wrapped model and ``explain_func``."""

    model: nn.Module  # QuantusModel, or TokenPresenceModel for the "tokens" text view
    x: np.ndarray
    y: np.ndarray
    a: np.ndarray
    s: np.ndarray | None
    explain_func: Callable[..., np.ndarray] | None
    device: str
    engine: str = "fast"
    chunk_size: int | None = None
    notes: dict[str, int] = field(default_factory=dict)  # the fast engine's CUDA out-of-memory halvings
    screened: ScreenedOutputs | None = None  # the model's outputs at x, if the constant-output screen made them

    def take(self, index: np.ndarray) -> "QuantusBatch":
        model = self.model.take(index) if isinstance(self.model, TokenPresenceModel) else self.model
        return replace(self, model=model, x=self.x[index], y=self.y[index], a=self.a[index],
                       s=None if self.s is None else self.s[index],
                       screened=None if self.screened is None else self.screened.take(index))

    def __len__(self) -> int:
        return len(self.x)


def score(spec: MetricSpec, params: dict[str, Any], ctx: ScoreContext, seed: int) -> ScoreResult:
    """Score ``ctx.attributions`` with ``spec``; raises on failure (the runner records it as error rows)."""
    resolved = resolve_params(spec, params, ctx)
    started = time.perf_counter()
    n = len(ctx.x)
    if spec.native is not None:
        with GLOBAL_RNG_LOCK:  # seeded and drawn atomically: another thread's draws would interleave (seeding.py)
            seed_everything(seed)
            out = spec.native(ctx, **resolved)
        values, reasons = out if isinstance(out, tuple) else (out, [""] * n)  # a native may say why a NaN is one
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        reasons = [screened or reason for screened, reason in zip(native_screen(spec, ctx), reasons)]
    else:
        batch = build_batch(spec, resolved, ctx)
        with GLOBAL_RNG_LOCK:  # from its seeding to its last draw, as one call alone (seeding.py)
            values, reasons = score_batch(spec, resolved, batch, seed)
    if values.shape != (n,):
        raise ValueError(f"metric {spec.name} returned {values.shape} values, expected ({n},)")
    status, message = [], []
    for value, reason in zip(values, reasons):
        ok = not reason and math.isfinite(value)
        status.append(Status.OK.value if ok else Status.NAN.value)
        message.append("" if ok else reason or _nan_reason(spec, resolved, value))
    values = np.where([s == Status.OK.value for s in status], values, np.nan)
    adapter = {k: v for k, v in spec.adapter_params().items() if k != "text_view" or ctx.modality is Modality.TEXT}
    recorded = {**jsonable(resolved), **adapter}
    # Chunks halved after CUDA out-of-memory: a note on the run, not a parameter (``params`` names the experiment).
    backoffs = int(batch.notes.get("chunk_backoffs", 0)) if spec.native is None else 0
    return ScoreResult(values, status, message, params=recorded, seconds=time.perf_counter() - started,
                       backoffs=backoffs)


def resolve_params(spec: MetricSpec, params: dict[str, Any], ctx: ScoreContext) -> dict[str, Any]:
    """Defaults + user params; fractions of the feature positions become counts (e.g. ``subset_size: 0.25``)."""
    resolved = spec.check_params(params)
    positions = n_positions(ctx.x, ctx.modality)
    for key in spec.fraction_params:
        value = resolved.get(key)
        if isinstance(value, float) and 0 < value <= 1:
            resolved[key] = max(1, min(positions - 1, int(round(value * positions))))
    for key in spec.divisor_params:
        value = resolved.get(key)
        if isinstance(value, float) and 0 < value <= 1:
            proper = positions if positions == 1 else positions - 1
            resolved[key] = functional.nearest_divisor(positions, min(value * positions, proper))
    if spec.resolve is not None:
        resolved = spec.resolve(resolved, ctx)
    return resolved


def build_batch(spec: MetricSpec, resolved: dict[str, Any], ctx: ScoreContext) -> QuantusBatch:
    """Native context -> Quantus layout, as fresh copies (nothing Quantus does can reach ``ctx``)."""
    native_shape = tuple(ctx.x.shape[1:])
    a = to_quantus_attributions(ctx.attributions, ctx.modality).copy()
    s = None
    if ctx.masks is not None and spec.needs_ground_truth:
        s = to_quantus_masks(ctx.masks, ctx.modality)
    if spec.channel_reduction == "sum":
        a = sum_channels(a)
    elif spec.channel_reduction is not None:
        raise ValueError(f"unknown channel_reduction {spec.channel_reduction!r}")
    if resolved.get("sign") == "positive":
        a = np.maximum(a, 0.0)  # evidence against the class counts as no evidence
    if resolved.get("abs") is True:
        # Quantus normalises then takes |a|; |a| first gives identical scores and keeps Quantus#375 (a batch of
        # all-negative maps is rejected before the abs) away from metrics that ignore the sign anyway.
        a = np.abs(a)
    explain_func = None
    if spec.needs_explain_func:
        if ctx.explainer is None:
            raise ValueError(f"metric {spec.name} re-explains inputs and needs the cell's explainer")
        explain_func = make_explain_func(ctx.explainer, ctx.modality, native_shape, ctx.explain_output,
                                         tokens=token_table(ctx.model, ctx.x) if ctx.modality is Modality.TEXT else None,
                                         draw_seed=ctx.draw_seed)
    model: nn.Module
    if ctx.modality is Modality.TEXT and spec.text_view == "tokens":
        model = TokenPresenceModel(ctx.model, ctx.x).eval()
        x = np.ones((len(ctx.x), 1, ctx.x.shape[1]), dtype=np.float32)  # every token present
    else:
        values_of = ctx.model
        if spec.explained_output_values and not resolved.get("softmax"):  # a.(x - x') against the explained output
            values_of = explained_output(ctx.model, ctx.explain_output)
        model = QuantusModel(values_of, ctx.modality, native_shape).eval()
        x = to_quantus_inputs(ctx.model, ctx.x, ctx.modality).copy()
    return QuantusBatch(
        model=model,
        x=x,
        y=ctx.targets.detach().cpu().numpy().astype(np.int64).reshape(-1),
        a=a,
        s=s,
        explain_func=explain_func,
        device=ctx.device,
        engine=ctx.engine,
        chunk_size=ctx.chunk_size,
    )


# Quantus assertions about a sample's content (not about the configuration): a sample they reject gets a NaN
# status with the message. Attribution asserts are batch-wide "all samples ..." checks (Quantus#375 and friends).
SAMPLE_ASSERTIONS = ("less than zero", "all equal to zero", "all equal to one", "uniformly distributed",
                     "number of segments")


def score_batch(spec: MetricSpec, resolved: dict[str, Any], batch: QuantusBatch, seed: int
                ) -> tuple[np.ndarray, list[str]]:
    """Screen, call Quantus once on the kept samples (per sample if Quantus rejects some), explain NaNs."""
    n = len(batch)
    values = np.full(n, np.nan)
    reasons, screened = screen(spec, resolved, batch)
    batch = replace(batch, screened=screened)
    keep = np.array([i for i in range(n) if not reasons[i]], dtype=np.int64)
    if len(keep) == 0:
        return values, reasons
    try:
        seed_everything(seed)
        kept, nan_reasons = call_quantus(spec, resolved, batch.take(keep))
    except AssertionError as error:
        if spec.batch_relational:
            raise
        kept, nan_reasons = _score_one_by_one(spec, resolved, batch.take(keep), seed, error)
    values[keep] = kept
    for row, i in enumerate(keep):
        if not math.isfinite(kept[row]) and nan_reasons[row]:
            reasons[i] = nan_reasons[row]
    return values, reasons


def _score_one_by_one(spec: MetricSpec, resolved: dict[str, Any], batch: QuantusBatch, seed: int,
                      batch_error: AssertionError) -> tuple[np.ndarray, list[str]]:
    """Each sample alone (seeded from the cell seed and its position); samples Quantus rejects get NaN.

    An assertion that is not about a sample's content (a parameter that does not fit the input) is re-raised:
    that is a configuration error for the whole metric, not a degenerate sample.
    """
    values = np.full(len(batch), np.nan)
    reasons = [""] * len(batch)
    single = len(batch) == 1
    for i in range(len(batch)):
        try:
            if single:
                raise batch_error
            seed_everything(derive_seed(seed, "sample", i))
            value, why = call_quantus(spec, resolved, batch.take(np.array([i])))
            values[i], reasons[i] = value[0], why[0]
        except AssertionError as error:
            message = str(error).strip() or type(error).__name__
            if not any(marker in message for marker in SAMPLE_ASSERTIONS):
                raise
            reasons[i] = f"rejected by Quantus: {message}"
    return values, reasons


# Why a screen set a sample aside (its row's message); the native metrics' screen gives the same reasons.
ZERO_MAP = "all-zero attribution"
CONSTANT_MAP = "constant attribution: no ranking of the features"
OTHER_CLASS_IS_NEGATION = ("two classes explained as log-odds: the other class's log-odds is exactly minus the "
                           "explained one, so its map is fixed by the explained map (-1 for maps linear in the "
                           "output, 1 for absolute maps) and the check says nothing about the class; use "
                           "explain_output=logit or more classes")


def screen(spec: MetricSpec, resolved: dict[str, Any], batch: QuantusBatch
           ) -> tuple[list[str], ScreenedOutputs | None]:
    """Per-sample reasons ('' = keep) for the degenerate cases ``spec.screens`` names, and the model's outputs at
    ``x`` if the constant-output screen computed them (the fast engine need not forward ``x`` again)."""
    reasons = [""] * len(batch)
    screened = None

    def mark(flags: np.ndarray, reason: str) -> None:
        for i in np.flatnonzero(flags):
            reasons[i] = reasons[i] or reason

    screens = spec.screens
    if Screen.ZERO in screens:
        mark(functional.is_all_zero(batch.a), ZERO_MAP)
    if Screen.CONSTANT in screens:
        mark(functional.is_constant(batch.a), CONSTANT_MAP)
    if Screen.NO_POSITIVE in screens and not resolved.get("abs", False) and resolved.get("positive_attributions", True):
        mark(functional.has_no_positive(batch.a), "no positive attribution (the metric counts positive mass only)")
    if Screen.EMPTY_MASK in screens and batch.s is not None:
        mark(functional.is_all_zero(batch.s), "empty ground-truth mask")
    if Screen.CONSTANT_OUTPUT in screens:
        constant, screened = screen_outputs(batch)
        mark(constant, "constant model output")
    if Screen.OTHER_CLASS_IS_NEGATION in screens and resolved.get("num_classes") == 2 and \
            getattr(batch.explain_func, "explain_output", None) == "log_odds":
        mark(np.ones(len(batch), dtype=bool), OTHER_CLASS_IS_NEGATION)
    return reasons, screened


def native_screen(spec: MetricSpec, ctx: ScoreContext) -> list[str]:
    """Per-sample reasons ('' = keep) for a native metric that ranks features (``Screen.CONSTANT`` declared): a
    constant or all-zero map has no ranking, and a stable sort would rank its features by index (the first ``k``
    columns become its "top k"). Other native metrics define their value on such maps themselves."""
    if Screen.CONSTANT not in spec.screens:
        return [""] * len(ctx.x)
    a = ctx.attributions.detach().cpu().numpy()
    zero, constant = functional.is_all_zero(a), functional.is_constant(a)
    return [ZERO_MAP if z else CONSTANT_MAP if c else "" for z, c in zip(zero, constant)]


def call_quantus(spec: MetricSpec, resolved: dict[str, Any], batch: QuantusBatch) -> tuple[np.ndarray, list[str]]:
    """One Quantus call on ``batch`` (already seeded): per-sample values and, for NaNs, the reason if known."""
    init, call = quantus_kwargs(spec, resolved)
    diagnostics = None
    if spec.correlation_diagnostics:
        diagnostics = CorrelationDiagnostics(init["similarity_func"])
        init["similarity_func"] = diagnostics
    metric_class, engine_kwargs = metric_class_for(spec, batch)
    with quiet():  # this thread's stdout only (quiet.py): other threads keep printing
        metric = metric_class(
            **init, **engine_kwargs, return_aggregate=False, disable_warnings=True, display_progressbar=False
        )
    kwargs: dict[str, Any] = {}
    if batch.explain_func is not None:
        kwargs["explain_func"] = batch.explain_func
    # A metric that does not screen constant maps scores them (constant_maps.py); Quantus would refuse the batch.
    # Quantus warns and prints per step (statuses carry what matters): silenced in this thread only (quiet.py).
    with quiet(), constant_maps_accepted(Screen.CONSTANT not in spec.screens):
        raw = metric(
            model=batch.model, x_batch=batch.x.copy(), y_batch=batch.y.copy(),
            a_batch=batch.a.copy() if spec.pass_attributions else None,
            s_batch=None if batch.s is None else batch.s.copy(), channel_first=True, device=batch.device,
            batch_size=max(len(batch), 1), **call, **kwargs,
        )
        reduced = spec.reduce(raw, metric, batch) if spec.reduce is not None else raw
    if getattr(metric, "backoffs", 0):
        batch.notes["chunk_backoffs"] = batch.notes.get("chunk_backoffs", 0) + metric.backoffs
    reasons = [""] * len(batch)
    if isinstance(reduced, tuple):  # a reduction that knows why some samples have no number
        reduced, reasons = reduced
    values = np.asarray(reduced, dtype=np.float64).reshape(-1)
    if values.shape != (len(batch),):
        raise ValueError(f"metric {spec.name}: Quantus returned {values.shape} values for {len(batch)} samples")
    if diagnostics is not None:
        reasons = [reasons[i] or (diagnostics.reason(i) if not math.isfinite(v) else "")
                   for i, v in enumerate(values)]
    return values, list(reasons)


def metric_class_for(spec: MetricSpec, batch: QuantusBatch) -> tuple[type, dict[str, Any]]:
    """The class to instantiate (fast subclass when ``engine == "fast"`` and one exists) and its extra kwargs."""
    if batch.engine not in ENGINES:
        raise ValueError(f"unknown scoring engine {batch.engine!r}; valid: {', '.join(ENGINES)}")
    fast = fast_class(spec.quantus_class) if batch.engine == "fast" else None
    if fast is None:
        return spec.quantus_class, {}  # type: ignore[return-value]
    return fast, {"chunk_size": batch.chunk_size, "screened": batch.screened}


def quantus_kwargs(spec: MetricSpec, resolved: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Resolved params -> (init kwargs with functions resolved by name, ``__call__`` kwargs)."""
    init = {k: resolve_callable(v) if k in CALLABLE_PARAMS else copy.deepcopy(v)  # Quantus may mutate dicts
            for k, v in resolved.items() if k not in spec.call_defaults and k not in spec.adapter_only}
    if isinstance(init.get("distance_func"), str) and callable(getattr(functional, init["distance_func"], None)):
        init["distance_func"] = getattr(functional, init["distance_func"])  # else a scipy cdist metric name
    call = {k: v for k, v in resolved.items() if k in spec.call_defaults}
    return init, call


def _nan_reason(spec: MetricSpec, resolved: dict[str, Any], value: float) -> str:
    if resolved.get("return_nan_when_prediction_changes"):
        return "prediction flipped by the perturbation"
    return spec.nan_reason or f"{spec.name} returned {value} for this sample"


def token_table(model: nn.Module, ids: torch.Tensor) -> TokenTable:
    """The intact text model's embedding vectors of the cell's tokens ``ids`` ``(N, L)`` and of its pad token."""
    pad = torch.full_like(ids[:1], int(model.pad_id))
    known = torch.cat([ids, pad])
    with torch.no_grad():
        return TokenTable(model.embed(known), known)


def make_explain_func(explainer: Explainer, modality: Modality, native_shape: tuple[int, ...],
                      explain_output: str = "logit", tokens: TokenTable | None = None,
                      draw_seed: int | None = None) -> Callable[..., np.ndarray]:
    """Quantus ``explain_func`` that re-explains through the same explainer adapter (batched, on device), explaining
    the same output (``explain_output``) as the cell's stored attributions.

    Text: ``tokens`` (:func:`token_table`) maps the embeddings Quantus passes back to token ids for the explainers'
    random draws, so a re-explained sample draws as its stored explanation did (``explainers/seeding.py``): the
    ``random`` control re-explains to its stored map on any model (MPRT exactly 1). ``draw_seed`` (the cell's
    explanation seed) does the same for stochastic methods' per-sample draws on every modality.
    """

    def explain_func(model: nn.Module, inputs: np.ndarray, targets: np.ndarray, **_: Any) -> np.ndarray:
        native = model.model if isinstance(model, QuantusModel) else model
        device = _device_of(native)
        x = from_quantus_inputs(inputs, modality, native_shape).to(device)
        target = torch.as_tensor(np.asarray(targets), dtype=torch.long, device=device).reshape(-1)
        native = explained_output(native, explain_output)
        forward = EmbeddedForward(native) if modality is Modality.TEXT else native
        # Quantus' global RNG streams (its perturbations) stay untouched by whatever the explainer's libraries draw.
        with known_tokens(tokens), explanation_draws(draw_seed), global_draws_kept(device):
            attributions = explainer.explain(forward, x, target).attributions.detach().float()
        if modality is Modality.TEXT and attributions.dim() == 3:
            attributions = attributions.sum(dim=-1)
        return to_quantus_attributions(attributions, modality)

    # Model rows one call holds at once (``Explainer.call_rows``: IG's path steps per input, occlusion's windows per
    # input, SmoothGrad's noisy copies of one sample at a time): the fast engine sizes its re-explanation calls by
    # it, so that a call's largest forward stays within ``chunk_size`` rows.
    declared = getattr(explainer, "call_rows", None)
    explain_func.call_rows = declared(modality, tuple(native_shape)) if callable(declared) else \
        guessed_call_rows(explainer)
    explain_func.rows_per_input = explain_func.call_rows.per_input
    # Gradient-free explainers keep a perturbation step's inputs together and pool exactly inside forwards only.
    explain_func.backpropagates = Capability.GRADIENTS in getattr(explainer, "requires", ())
    # Explainers whose maps amplify batch-composition rounding (``Explainer.batch_sensitive``): the fast engine
    # re-explains them in Quantus' own batches, one perturbation step of the N inputs per call.
    explain_func.quantus_batches = bool(getattr(explainer, "batch_sensitive", False))
    explain_func.explain_output = explain_output  # what the re-explanations explain (screens read it)
    # Maps that read the network only through the summed target logits' input gradient (``Explainer``): the fast
    # engine may fold the network's pooling and last linear layer while re-explaining (the same gradient bits).
    explain_func.target_gradient_only = bool(getattr(explainer, "target_gradient_only", False)) and \
        explain_output == "logit"
    return explain_func


def _device_of(module: nn.Module) -> torch.device:
    for parameter in module.parameters():
        return parameter.device
    return torch.device("cpu")


def resolve_callable(value: Any) -> Any:
    """Config strings naming functions (``normalise_func: normalise_by_max_per_sample``) -> callables.

    Looked up in ``xaibench.metrics.functional`` first, then Quantus' function modules. None stays None.
    """
    if not isinstance(value, str):
        return value
    modules = (functional, quantus.functions.perturb_func, quantus.functions.similarity_func,
               quantus.functions.normalise_func, quantus.functions.norm_func, quantus.functions.loss_func,
               quantus.functions.complexity_func)
    for module in modules:
        candidate = getattr(module, value, None)
        if callable(candidate) and not isinstance(candidate, type):
            return candidate
    raise ValueError(f"unknown function {value!r} (looked in xaibench.metrics.functional and quantus.functions)")


def jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as recorded in the row: callables by name, numpy scalars as Python numbers."""
    out: dict[str, Any] = {}
    for key, value in sorted(params.items()):
        out[key] = _jsonable_value(value)
    return out


def _jsonable_value(value: Any) -> Any:
    if callable(value):
        return getattr(value, "__name__", repr(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_jsonable_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable_value(v) for k, v in sorted(value.items())}
    return value
