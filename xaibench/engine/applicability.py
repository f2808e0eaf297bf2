"""Declared applicability -> a reason string (``not_applicable`` rows) or None. Nothing is run to decide, but by
:func:`untrained_not_applicable`: a method that can only tell from the model's forward (DeepLIFT on a network calling
``torch.exp``) reads it off an untrained instance, before the model is trained."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from xaibench.data.base import DatasetSpec
from xaibench.explainers.base import Explainer
from xaibench.metrics.spec import MetricSpec
from xaibench.models.base import ModelSpec
from xaibench.errors import NotApplicable
from xaibench.types import Capability

if TYPE_CHECKING:
    import torch
    from torch import nn


def cell_not_applicable(model: ModelSpec, dataset: DatasetSpec, method: Explainer) -> str | None:
    modality = dataset.modality
    if modality not in model.modalities:
        return f"model {model.name} does not take {modality} inputs (takes {', '.join(sorted(model.modalities))})"
    if modality not in method.modalities:
        return f"method {method.name} does not handle {modality} inputs"
    missing = method.requires - model.capabilities
    if missing:
        return f"method {method.name} needs {', '.join(sorted(missing))}, which model {model.name} does not offer"
    return None


def metric_not_applicable(metric: MetricSpec, dataset: DatasetSpec, has_counterfactuals: bool,
                          model: ModelSpec | None = None) -> str | None:
    if dataset.modality not in metric.modalities:
        return f"metric {metric.name} does not support {dataset.modality} inputs"
    if metric.needs_ground_truth and not dataset.has_ground_truth:
        return f"metric {metric.name} needs ground-truth masks, which dataset {dataset.name} does not have"
    if metric.needs_counterfactuals and not has_counterfactuals:
        return f"metric {metric.name} needs counterfactuals; the method returns none"
    if model is not None:
        missing = metric.requirements(dataset.modality) - model.capabilities
        if metric.coefficient_truth and getattr(dataset, "has_coefficients", False):
            missing -= {Capability.LINEAR}  # compared with the generator's coefficients, not the model's
        if missing:
            return f"metric {metric.name} needs {', '.join(sorted(missing))}, which model {model.name} does not offer"
    return None


def size_not_applicable(metric: MetricSpec, params: Mapping[str, Any], input_shape: Sequence[int]) -> str | None:
    """Reason why ``metric`` cannot score inputs of ``input_shape`` (one sample, e.g. ``(F,)``), or None.

    Metrics that enumerate all ``2^F`` feature coalitions (``MetricSpec.max_features_param``) cap ``F``; the data's
    shape is known once the dataset is built, before any model is trained or explained. Quantus metrics compare,
    rank or perturb feature positions against each other: on a single feature Quantus fails an internal shape
    assertion (or every attribution is "constant"), so they do not apply.
    """
    if metric.quantus_class is not None and math.prod(input_shape) == 1:
        return (f"metric {metric.name} compares the attributions of several features; the inputs have a single "
                "feature")
    if metric.max_features_param is None:
        return None
    key = metric.max_features_param
    limit = {**metric.defaults, **params}[key]
    n_features = math.prod(input_shape)
    if len(input_shape) != 1 or n_features > limit:
        return (f"metric {metric.name} enumerates all 2^F feature coalitions: {n_features} features exceed {key}="
                f"{limit} (raise {key}, at 2^F model calls per sample, or use fewer features)")
    return None


def untrained_not_applicable(method: Explainer, build: Callable[[], "nn.Module"], x: "torch.Tensor") -> str | None:
    """Reason why ``method`` cannot explain the model ``build`` makes, found on that untrained instance (same
    architecture, weights not trained yet), or None.

    A method that reads its applicability off the model's forward (``refuse_model(model, x)``: DeepLIFT and
    DeepLIFT-SHAP on a network calling ``torch.exp`` or ``F.relu``, guided backprop on ``F.relu``) is asked here,
    before training: the cell is ``not_applicable`` without a model trained for nothing. The operations a forward
    runs do not depend on the weights' values (a forward that branches on them is asked again at explain time, on
    the trained model). Only ``NotApplicable`` decides: a forward that fails untrained (it checks a state ``fit``
    sets) leaves the question to the trained model, as before. ``build`` is not called for other methods.

    Args:
        method: the cell's explainer.
        build: makes the untrained model, as the model stage would before training (seeded the same way).
        x: a batch of the dataset's inputs ``(N, ...)`` (one sample is enough).
    """
    refuse_model = getattr(method, "refuse_model", None)
    if refuse_model is None:
        return None
    model = build()
    try:
        refuse_model(model, x)
    except NotApplicable as error:
        return str(error)
    except Exception:  # noqa: BLE001 - a forward that runs only once fit set its state: the trained model decides
        return None
    return None
