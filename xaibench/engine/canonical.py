"""A method's and a metric's parameters with their defaults filled in: what the stage keys hash.

A method or metric configured two ways that mean the same thing (``+metrics.sparseness={}`` and the suite's
``sparseness: {abs: true, normalise: true, ...}``, which are its registered defaults; a method section in an
experiment or the Python API that leaves out parameters at their defaults) computes the same explanations and
scores, so its explanation and score stages get the same keys, and so does the seed its explanations draw from:
the second spelling reads the first one's stages instead of computing them again.

The resolved form is the written parameters over the registered defaults (a metric's ``MetricSpec.defaults`` and
``call_defaults``, without the adapter's fixed keys; an explainer's dataclass field defaults), values as
written. Every shipped method config and metric suite spells out exactly these defaults
(``tests/unit/test_canonical_keys.py`` checks it), so their keys and seeds are what they were: stores and
baselines stay valid. The cell key itself still hashes the sections as written (a stored cell is found without
importing the registries, hence torch): two spellings are two cells with their own ``cell_key``, sharing stages.
Models are not resolved: their keys seed training, and two shipped model configs leave a default out.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def resolved_method(section: Mapping[str, Any]) -> dict[str, Any]:
    """``{"name": ..., **params}`` with every parameter of the explainer's dataclass, defaults filled in.

    Sections whose name is not registered, or whose entry is not a dataclass, are returned as written.
    """
    from xaibench.engine.cell import split_name
    from xaibench.registry import EXPLAINERS

    name, params = split_name(section, "method")
    if name not in EXPLAINERS:
        return dict(section)
    cls = EXPLAINERS.get(name)
    if not dataclasses.is_dataclass(cls):
        return dict(section)
    defaults = {}
    for field in dataclasses.fields(cls):
        if field.init and field.name != "name" and field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.init and field.name != "name" and field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
    return {**{k: v for k, v in section.items() if k == "name"}, **defaults, **params}


def resolved_metric(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The metric's parameters over its registered defaults (``MetricSpec.check_params``'s resolution, without
    its checks: the pre-flight made them); an unregistered metric's as written."""
    from xaibench.metrics.spec import ADAPTER_KEYS
    from xaibench.registry import METRICS

    if name not in METRICS:
        return dict(params)
    spec = METRICS.get(name)
    return {**spec.defaults, **spec.call_defaults, **{k: v for k, v in params.items() if k not in ADAPTER_KEYS}}
