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

Per modality, parameters that do not change the result there (``Explainer.unused_params``: occlusion's ``window``
and ``stride`` on tabular data, the perturbation methods' ``patch_size`` on tabular and text data) are set to
their defaults in the key, so ``method.window=4`` on a table explains once with the default's key and seed (a
default config keeps the key it always had), and are left out of the rows' ``method_params``, which name them in
``unused_params`` instead: a sweep over tabular and image datasets keeps its ``window`` for the images and the
tables' rows say it was not used.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


def resolved_method(section: Mapping[str, Any], modality: Any = None) -> dict[str, Any]:
    """``{"name": ..., **params}`` with every parameter of the explainer's dataclass, defaults filled in; with a
    ``modality``, the parameters unused on it (``Explainer.unused_params``) at their defaults whatever was written.

    Sections whose name is not registered, or whose entry is not a dataclass, are returned as written.
    """
    from xaibench.engine.cell import split_name

    cls = _explainer_class(section)
    if cls is None:
        return dict(section)
    _, params = split_name(section, "method")
    defaults = _defaults(cls)
    unused = {name: defaults[name] for name in unused_params(section, modality) if name in defaults}
    return {**{k: v for k, v in section.items() if k == "name"}, **defaults, **params, **unused}


def recorded_method(section: Mapping[str, Any], modality: Any = None) -> dict[str, Any]:
    """What the rows record as ``method_params``: :func:`resolved_method` without the parameters unused on
    ``modality``, which are named (sorted) under ``unused_params``, so every spelling of them records the same."""
    unused = unused_params(section, modality)
    resolved = {k: v for k, v in resolved_method(section, modality).items() if k not in unused}
    return {**resolved, "unused_params": sorted(unused)} if unused else resolved


def canonical_explainer(explainer: Any, modality: Any) -> Any:
    """``explainer`` with its parameters unused on ``modality`` at their defaults (the Python API seeds its draws
    from the explainer's repr: ``patch_size=3`` on a table then draws as the default does)."""
    unused = getattr(type(explainer), "unused_params", {}).get(modality, ())
    if not unused or not dataclasses.is_dataclass(explainer):
        return explainer
    defaults = _defaults(type(explainer))
    return dataclasses.replace(explainer, **{name: defaults[name] for name in unused if name in defaults})


def unused_params(section: Mapping[str, Any], modality: Any) -> tuple[str, ...]:
    """The method's parameters that do not change its result on ``modality`` (none without a modality)."""
    cls = _explainer_class(section)
    if cls is None or modality is None:
        return ()
    return tuple(getattr(cls, "unused_params", {}).get(modality, ()))


def _explainer_class(section: Mapping[str, Any]) -> type | None:
    """The registered dataclass of the section's method, None when unregistered or not a dataclass."""
    from xaibench.engine.cell import split_name
    from xaibench.registry import EXPLAINERS

    name, _ = split_name(section, "method")
    if name not in EXPLAINERS:
        return None
    cls = EXPLAINERS.get(name)
    return cls if dataclasses.is_dataclass(cls) else None


def _defaults(cls: type) -> dict[str, Any]:
    defaults = {}
    for field in dataclasses.fields(cls):
        if field.init and field.name != "name" and field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.init and field.name != "name" and field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
    return defaults


def resolved_metric(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The metric's parameters over its registered defaults (``MetricSpec.check_params``'s resolution, without
    its checks: the pre-flight made them); an unregistered metric's as written."""
    from xaibench.metrics.spec import ADAPTER_KEYS
    from xaibench.registry import METRICS

    if name not in METRICS:
        return dict(params)
    spec = METRICS.get(name)
    return {**spec.defaults, **spec.call_defaults, **{k: v for k, v in params.items() if k not in ADAPTER_KEYS}}
