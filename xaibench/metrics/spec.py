"""``MetricSpec``: the declared facts about a metric, which the runner actually uses.

Direction drives ranks and reports; ``needs_*`` and ``modalities`` drive applicability (``not_applicable`` rows
without running); ``defaults`` fixes every parameter Quantus defaults inconsistently, and the resolved parameters
are recorded in each row's ``params``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from xaibench.errors import UserError
from xaibench.registry import METRICS
from xaibench.types import Modality


class Family:
    FAITHFULNESS = "faithfulness"
    SPARSITY = "sparsity"
    STABILITY = "stability"
    LOCALISATION = "localisation"
    RANDOMISATION = "randomisation"
    COUNTERFACTUAL = "counterfactual"


@dataclass(frozen=True)
class MetricSpec:
    """One registered metric.

    Attributes:
        name: registry name (snake_case), used in configs and the ``metric`` column.
        family: one of ``Family``.
        higher_is_better: declared direction.
        quantus_class: the Quantus metric class (a fresh instance is built per call), or None for native metrics.
        native: for native metrics, ``fn(context, **params) -> np.ndarray (N,)``.
        defaults: init parameters set explicitly (Quantus defaults differ between metrics).
        call_defaults: ``__call__`` keyword arguments set explicitly (``softmax``...).
        needs_ground_truth / needs_explain_func / needs_counterfactuals: requirements.
        modalities: input kinds the metric supports.
        fraction_params: init parameters that may be given as a fraction of the number of features (0 < f <= 1).
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
    modalities: frozenset[Modality] = frozenset(Modality)
    fraction_params: tuple[str, ...] = ()
    description: str = ""

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Reject parameters the metric does not take; return defaults overlaid with ``params``."""
        allowed = set(self.defaults) | set(self.call_defaults) | self._init_parameters()
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise UserError(
                f"metric {self.name!r}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}"
            )
        return {**self.defaults, **self.call_defaults, **params}

    def _init_parameters(self) -> set[str]:
        import inspect

        if self.quantus_class is None:
            return set()
        signature = inspect.signature(self.quantus_class.__init__)
        skip = {"self", "args", "kwargs", "default_plot_func", "display_progressbar", "disable_warnings",
                "return_aggregate", "aggregate_func"}
        return {p for p in signature.parameters if p not in skip}


def register_metric(spec: MetricSpec) -> MetricSpec:
    return METRICS.add(spec.name, spec)
