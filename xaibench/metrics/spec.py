"""``MetricSpec``: the declared facts about a metric, which the runner actually uses.

Direction drives ranks and reports; ``needs_*`` and ``modalities`` drive applicability (``not_applicable`` rows
without running); ``defaults`` fixes every parameter Quantus defaults inconsistently, and the resolved parameters
are recorded in each row's ``params``. The adapter (``quantus_adapter.score``) reads the remaining fields: how to
reduce Quantus' raw output to one number per sample, which degenerate samples to set aside before the call, and
why a NaN is a NaN.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from xaibench.errors import UserError
from xaibench.registry import METRICS
from xaibench.types import Capability, Modality


class Family:
    FAITHFULNESS = "faithfulness"
    SPARSITY = "sparsity"
    STABILITY = "stability"
    LOCALISATION = "localisation"
    RANDOMISATION = "randomisation"
    COUNTERFACTUAL = "counterfactual"
    AXIOMATIC = "axiomatic"  # properties every explanation should have (Quantus' category): input invariance
    GROUND_TRUTH = "ground_truth"  # agreement with a known attribution (linear coefficients, exact Shapley values)


class Screen:
    """Per-sample checks the adapter runs before calling Quantus; a hit becomes ``status="nan"`` with a reason."""

    ZERO = "zero"  # all-zero attribution (Quantus#145/#110: divide-by-zero, meaningless ranking)
    CONSTANT = "constant"  # a constant map has no ranking: ordering-based metrics would report an arbitrary order
    NO_POSITIVE = "no_positive"  # no positive attribution although the metric only counts positive mass
    CONSTANT_OUTPUT = "constant_output"  # the model's output does not move at all around this sample
    EMPTY_MASK = "empty_mask"  # ground-truth mask without a single marked feature
    # Two classes explained as log-odds: the other class's output is exactly minus the explained one, so a map of
    # "the other class" is determined by the explained map (random_logit measures sign handling, not the class).
    OTHER_CLASS_IS_NEGATION = "other_class_is_negation"


# Parameters that name a function (configs give the name; the adapter resolves it).
CALLABLE_PARAMS = frozenset({
    "similarity_func", "normalise_func", "perturb_func", "norm_numerator", "norm_denominator", "complexity_func",
    "loss_func",
})
# Keys the adapter adds to the recorded params (not Quantus parameters); a recorded dict may be given back as-is.
ADAPTER_KEYS = frozenset({"reduction", "channel_reduction", "text_view"})

ALL_MODALITIES = frozenset(Modality)
NON_TEXT = frozenset({Modality.TABULAR, Modality.IMAGE, Modality.TIME_SERIES})
IMAGE_ONLY = frozenset({Modality.IMAGE})


@dataclass(frozen=True)
class MetricSpec:
    """One registered metric.

    Attributes:
        name: registry name (snake_case), used in configs and the ``metric`` column.
        family: one of ``Family``.
        higher_is_better: declared direction (ranks and reports follow it).
        quantus_class: the Quantus metric class (a fresh instance is built per call), or None for native metrics.
        native: for native metrics, ``fn(context, **params) -> np.ndarray (N,)``, or ``(values, reasons)`` with a
            reason per sample ('' or why its value is NaN).
        defaults: init parameters set explicitly (Quantus defaults differ between metrics).
        call_defaults: ``__call__`` keyword arguments set explicitly (``softmax``...).
        needs_ground_truth / needs_explain_func / needs_counterfactuals: requirements.
        modalities: input kinds the metric supports.
        requires: model capabilities the metric needs (randomisation: a torch model with layers to randomise).
            On text, Quantus-backed metrics also need ``EMBEDDING`` (see ``requirements``).
        fraction_params: init parameters that may be given as a fraction ``0 < f <= 1`` of the number of feature
            positions (Quantus layout ``x.shape[2:]``: features, pixels, time steps, tokens); resolved to a count.
        divisor_params: like ``fraction_params`` but resolved to the nearest divisor of the position count
            (Quantus asserts ``features_in_step`` divides it).
        count_params: integer parameters for which 0 is meaningful (a count of draws, 0: none); checked as
            non-negative integers (an integer default above 0 is already checked as a positive integer).
        max_features_param: the parameter capping the number of tabular features (metrics that enumerate all
            ``2^F`` coalitions); a wider input makes ``not_applicable`` rows, decided before any compute
            (``engine/applicability.py``).
        reduce: ``fn(raw, metric, batch) -> (N,)`` turning Quantus' raw output (curves, per-layer dicts) into one
            number per sample; None when Quantus already returns one float per sample.
        reduction: name of that reduction, recorded in the row's params.
        screens: per-sample degenerate checks (``Screen``) run before the call. Native metrics run only
            ``Screen.CONSTANT`` (a constant or all-zero map: no ranking), where they declare it; they define their
            value on other degenerate maps themselves.
        channel_reduction: ``"sum"``: attributions are summed over channels and masks OR-ed over channels before
            the call (localisation metrics compare one map per position with a ``(N, 1, ...)`` mask).
        text_view: how text reaches Quantus. ``"embedding"``: embeddings ``(N, D, L)`` (noise perturbations act on
            the embeddings); ``"tokens"``: per-token presence ``(N, 1, L)`` through ``TokenPresenceModel``, so index
            perturbations remove whole tokens (replaced by the pad token).
        pass_attributions: False: Quantus recomputes the reference maps itself through ``explain_func`` (Smooth
            MPRT must compare smoothed maps with smoothed maps, not with the cell's plain attributions).
        batch_relational: the score of a sample depends on the other samples (Sufficiency): no per-sample retry.
        correlation_diagnostics: wrap ``similarity_func`` to say which side was constant when a correlation is NaN.
        nan_reason: message for a non-finite score not explained otherwise.
        resolve: ``fn(params, context) -> params`` for parameters that depend on the data (class count, mask size).
        choices: parameters restricted to a few values (checked with the other parameters before any compute).
        adapter_only: parameters the adapter consumes itself (recorded in ``params``, never passed to Quantus).
        coefficient_truth: the metric compares with a coefficient vector: the dataset's true coefficients where it
            has them (``DatasetSpec.has_coefficients``; then the ``LINEAR`` requirement is waived), else the linear
            model's own.
        explained_output_values: Quantus' model returns the cell's explained output (``explain_output``), not the
            logits, unless ``softmax`` is set: for metrics that compare attribution *values* with output changes.
        description: one line with the reference.
    """

    name: str
    family: str
    higher_is_better: bool
    quantus_class: type | None = None
    native: Callable[..., Any] | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    call_defaults: Mapping[str, Any] = field(default_factory=dict)
    needs_ground_truth: bool = False
    needs_explain_func: bool = False
    needs_counterfactuals: bool = False
    modalities: frozenset[Modality] = ALL_MODALITIES
    requires: frozenset[Capability] = frozenset()
    fraction_params: tuple[str, ...] = ()
    divisor_params: tuple[str, ...] = ()
    count_params: tuple[str, ...] = ()
    max_features_param: str | None = None
    reduce: Callable[..., Any] | None = None
    reduction: str = ""
    screens: frozenset[str] = frozenset({Screen.ZERO})
    channel_reduction: str | None = None
    text_view: str = "embedding"
    pass_attributions: bool = True
    batch_relational: bool = False
    correlation_diagnostics: bool = False
    nan_reason: str = ""
    explained_output_values: bool = False
    resolve: Callable[..., Any] | None = None
    choices: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    adapter_only: tuple[str, ...] = ()
    coefficient_truth: bool = False
    description: str = ""

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Reject parameters the metric does not take; return defaults overlaid with ``params``."""
        allowed = set(self.defaults) | set(self.call_defaults) | self._init_parameters() | set(self.adapter_only)
        unknown = sorted(set(params) - allowed - ADAPTER_KEYS)
        if unknown:
            raise UserError(
                f"metric {self.name!r}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}"
            )
        for key in ADAPTER_KEYS & set(params):
            if params[key] != self.adapter_params().get(key):
                raise UserError(f"metric {self.name!r}: {key} is fixed to {self.adapter_params().get(key)!r}, "
                                f"got {params[key]!r}")
        if "sign" in self.adapter_only and "abs" in params:
            raise UserError(f"metric {self.name!r}: set the sign handling with sign={'|'.join(self.choices['sign'])} "
                            f"(it sets Quantus' abs), not abs")
        for key, value in params.items():
            if key not in ADAPTER_KEYS:
                self._check_value(key, value)
        return {**self.defaults, **self.call_defaults, **{k: v for k, v in params.items() if k not in ADAPTER_KEYS}}

    def _check_value(self, key: str, value: Any) -> None:
        """Type-check a user value against the declared default's type, before any compute."""
        default = {**self.defaults, **self.call_defaults}.get(key)
        what = f"metric {self.name!r}: parameter {key!r}"
        if key in self.choices and value not in self.choices[key]:
            raise UserError(f"{what} must be one of {', '.join(map(str, self.choices[key]))}, got {value!r}")
        if key in self.fraction_params or key in self.divisor_params:
            ok = (isinstance(value, int) and not isinstance(value, bool) and value >= 1) or (
                isinstance(value, float) and 0 < value <= 1)
            if not ok:
                raise UserError(f"{what} must be a fraction in (0, 1] or a positive integer count, got {value!r}")
        elif key in self.count_params:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UserError(f"{what} must be a non-negative integer, got {value!r}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise UserError(f"{what} must be true or false, got {value!r}")
        elif isinstance(default, int) and default > 0:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{what} must be a positive integer, got {value!r}")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UserError(f"{what} must be a number, got {value!r}")
        if key.endswith("_func") and isinstance(value, str):
            from xaibench.metrics.quantus_adapter import resolve_callable

            try:
                resolve_callable(value)
            except ValueError as error:
                raise UserError(f"{what}: {error}") from None

    def requirements(self, modality: Modality) -> frozenset[Capability]:
        """Model capabilities needed on ``modality``: ``requires``, plus ``EMBEDDING`` for Quantus on text."""
        if modality is Modality.TEXT and self.quantus_class is not None:
            return self.requires | {Capability.EMBEDDING}
        return self.requires

    def adapter_params(self) -> dict[str, Any]:
        """What the adapter does around Quantus, recorded next to the metric's own parameters."""
        out: dict[str, Any] = {}
        if self.reduction:
            out["reduction"] = self.reduction
        if self.channel_reduction:
            out["channel_reduction"] = self.channel_reduction
        if self.text_view != "embedding":
            out["text_view"] = self.text_view
        return out

    def _init_parameters(self) -> frozenset[str]:
        return _init_parameters(self.quantus_class) if self.quantus_class is not None else frozenset()


@functools.lru_cache(maxsize=None)
def _init_parameters(quantus_class: type) -> frozenset[str]:
    """The user-settable ``__init__`` parameters of a Quantus class (cached: ``inspect.signature`` costs 0.1 ms)."""
    signature = inspect.signature(quantus_class.__init__)
    skip = {"self", "args", "kwargs", "default_plot_func", "display_progressbar", "disable_warnings",
            "return_aggregate", "aggregate_func"}
    return frozenset(p for p in signature.parameters if p not in skip)


def register_metric(spec: MetricSpec) -> MetricSpec:
    if spec.quantus_class is None and spec.native is None:
        raise ValueError(f"metric {spec.name}: needs a quantus_class or a native function")
    return METRICS.add(spec.name, spec)
