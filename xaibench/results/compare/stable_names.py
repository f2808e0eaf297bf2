"""Names a unit keeps from run to run, whatever else the tables hold: what its JUnit testcase (and the JSON's
``unit.identity``) is named by (``UnitNames.identity``). A CI system tracks a testcase by its name: a renamed one
reads as a test removed and another added, its history lost.

Each part of the unit is named by its parameters that differ from its **shipped config**, the bare name at the
shipped parameters, never by what the other units of the tables differ in (the report's labels do that, so adding a
second ``mlp (hidden=[32])`` to a sweep would rename the first ``mlp``'s testcases):

- model and dataset: ``conf/model/<name>.yaml``, ``conf/dataset/<name>.yaml`` (``mlp (hidden=[32])``);
- method: ``conf/method/<name>.yaml`` (``saliency (abs=False)``, ``stable_method_name``);
- metric: its entry in the shipped metric suites ``conf/metrics/*.yaml`` (``full.yaml`` first: it names every
  registered metric): ``faithfulness_correlation (nr_runs=10)``. A metric records its parameters as resolved
  against the data, so a size the suite gives as a fraction (``subset_size: 0.25``) and the row records as a count,
  a value the suite leaves ``auto`` (``sign``) and ``positive_attributions`` (set from ``sign``) count as shipped;
- the setting (``n_samples``, ``target_mode``, ``explain_output``): the root ``conf/config.yaml``, after the
  dataset in brackets, ``synthetic_tabular [n_samples=10]`` (a dataset's own ``n_samples`` is in parentheses).

The configs are read from ``config.paths.conf_dir()`` (``$XAIBENCH_CONF_DIR`` where set), as YAML (never the
registries: naming a table imports no torch). Parameters a shipped config does not set (what a run resolved or
added: ``kernel_shap``'s ``feature_grouping``, a metric's ``channel_reduction``, a table's column encoding) are left
out. A part without a shipped config (your own model, dataset, method or metric, registered from a plugin with its
config on ``hydra.searchpath``) is named by every parameter it records (``full_name``: ``my_net (depth=3)``); the
same holds for a setting ``conf/config.yaml`` does not set. Units whose names would still be the same (parameters
that differ only where the shipped config says nothing, or fractions resolved to counts) show every parameter not
at its shipped value in each part they differ in (``stable_identities``).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import pandas as pd

from xaibench.results.groups import ANNOTATION_KEYS, _config_params, _same

PARTS = ["model", "dataset", "method", "metric"]
PARAMS_COLUMNS = {"model": "model_params", "dataset": "dataset_params", "method": "method_params",
                  "metric": "params"}
# setting columns -> their key in conf/config.yaml
SETTINGS = {"n_samples": "n_samples", "target_mode": "target", "explain_output": "explain_output"}
# metric parameters the adapter sets from others whatever the config says (``metrics.localisation.apply_sign``)
DERIVED_METRIC_PARAMS = frozenset({"positive_attributions"})
UNRECORDED = ("", "nan", "None", "<NA>")  # a setting column an older table leaves empty


def stable_identities(keys: list[tuple], units: list[str]) -> dict[tuple, dict[str, str]]:
    """``key -> {"model", "dataset", "method", "metric": name}`` for every unit of ``keys`` (values of ``units``
    columns): each part by ``stable_part_name``, the dataset followed by ``settings_text``. Where two units would
    share every name, each part they differ in shows every parameter not at its shipped value instead
    (``_Parts.name(part, expanded=True)``; the setting: every one recorded)."""
    from xaibench.config.paths import conf_dir

    root = str(conf_dir())
    parts = {key: _Parts(dict(zip(units, key)), root) for key in keys}
    names = {key: {part: each.name(part) for part in _COLLIDING} for key, each in parts.items()}
    by_names: dict[tuple, list[tuple]] = {}
    for key, each in names.items():
        by_names.setdefault(tuple(each.values()), []).append(key)
    for same in (group for group in by_names.values() if len(group) > 1):
        for part in _COLLIDING:
            expanded = {key: parts[key].name(part, expanded=True) for key in same}
            if len(set(expanded.values())) > 1:  # a part they differ in
                for key, name in expanded.items():
                    names[key][part] = name
    return {key: {**{part: each[part] for part in PARTS}, "dataset": each["dataset"] + each["setting"]}
            for key, each in names.items()}


_COLLIDING = [*PARTS, "setting"]  # what a unit's names are made of: the parts and the setting


class _Parts:
    """One unit's parts and setting (``_COLLIDING``) and their names, by the configs under ``root``."""

    def __init__(self, unit: dict, root: str) -> None:
        self.unit = unit
        self.root = root

    def name(self, part: str, expanded: bool = False) -> str:
        if part == "setting":
            return _settings_text(self.root, self.unit, expanded)
        value = self.unit.get(PARAMS_COLUMNS[part], "")
        params = "" if value is None or value is pd.NA else str(value)
        return _part_name(self.root, part, str(self.unit.get(part, "")), params, expanded)


def stable_part_name(part: str, name: str, params: str) -> str:
    """``mlp (hidden=[32])``: a model, dataset, method or metric (``part``) with the parameters it recorded
    (``params``: its JSON) that differ from its shipped config; the bare name at the shipped parameters, every
    parameter where it has no shipped config (see the module docstring)."""
    from xaibench.config.paths import conf_dir

    return _part_name(str(conf_dir()), part, name, params, False)


def stable_method_name(method: str, method_params: str) -> str:
    """A method's name with the parameters it was run with that differ from its shipped config
    (``conf/method/<method>.yaml``): ``saliency (abs=False)``, ``occlusion (stride=4, window=4)``; the bare name at
    the shipped parameters. Unlike the report's label (``groups.competitor_labels``) it depends on this variant
    alone, never on the others a table holds. Parameters the shipped config does not set (what the explainer
    resolved against the data, such as ``kernel_shap``'s ``feature_grouping``) are left out; a method without a
    shipped config (bring your own) shows every parameter it records (``full_name``)."""
    return stable_part_name("method", method, method_params)


@functools.lru_cache(maxsize=16384)
def _part_name(root: str, part: str, name: str, params: str, expanded: bool) -> str:
    shipped = shipped_config(Path(root), part, name)
    recorded = _loads(params)
    if shipped is None or recorded is None:
        return full_name(name, params)
    if expanded:
        shown = [key for key in sorted(recorded) if key not in shipped or not _same(recorded[key], shipped[key])]
    else:
        shown = [key for key in sorted(recorded)
                 if key in shipped and not _as_shipped(part, key, recorded[key], shipped[key])]
    detail = ", ".join(f"{key}={recorded[key]}" for key in shown if key not in ANNOTATION_KEYS)
    return f"{name} ({detail})" if detail else name


def shipped_config(root: Path, part: str, name: str) -> dict | None:
    """The parameters of ``name``'s shipped config under ``root`` (``conf/``), without ``name``; None where it has
    none (a user's own)."""
    if part == "metric":
        return _metric_suites(str(root)).get(name)
    path = root / part / f"{name}.yaml"
    return dict(_config_params(str(path))) if name and path.is_file() else None


@functools.lru_cache(maxsize=8)
def _metric_suites(root: str) -> dict[str, dict]:
    """``metric -> its parameters`` in the metric suites ``<root>/metrics/*.yaml`` (``full.yaml`` first; the
    suites agree, ``tests/unit/test_metrics_contract.py``)."""
    folder = Path(root) / "metrics"
    paths = sorted(folder.glob("*.yaml"), key=lambda path: (path.name != "full.yaml", path.name))
    out: dict[str, dict] = {}
    for path in paths:
        for metric, params in _config_params(str(path)):
            if isinstance(params, dict) or params is None:
                out.setdefault(metric, dict(params or {}))
    return out


def _as_shipped(part: str, key: str, value, shipped) -> bool:
    """Whether a recorded ``value`` is the shipped one: equal, or (a metric) the shipped value resolved against the
    data: a fraction now a count, an ``auto`` now what it chose, a parameter set from another one."""
    if _same(value, shipped):
        return True
    if part != "metric":
        return False
    fraction = isinstance(shipped, float) and 0 < shipped <= 1
    count = isinstance(value, int) and not isinstance(value, bool)
    return key in DERIVED_METRIC_PARAMS or shipped == "auto" or (fraction and count)


def settings_text(unit: dict, every: bool = False) -> str:
    """`` [n_samples=10]``: the unit's setting columns whose values differ from the root config's (``every``: all
    it records), or ""; a setting ``conf/config.yaml`` does not set shows its value."""
    from xaibench.config.paths import conf_dir

    return _settings_text(str(conf_dir()), unit, every)


def _settings_text(root: str, unit: dict, every: bool) -> str:
    shipped = _root_config(root)
    shown = []
    for column, key in SETTINGS.items():
        value = unit.get(column)
        text = "" if value is None or value is pd.NA else str(value)
        if text not in UNRECORDED and (every or key not in shipped or text != str(shipped[key])):
            shown.append(f"{column}={text}")
    return f" [{', '.join(shown)}]" if shown else ""


@functools.lru_cache(maxsize=8)
def _root_config(root: str) -> dict:
    return dict(_config_params(str(Path(root) / "config.yaml")))


def full_name(name: str, params: str) -> str:
    """``my_method (alpha=0.5, steps=10)``: a name with every parameter it records (sorted; not a method's role nor
    ``unused_params``, which annotate rather than set it), or the bare name when it records none."""
    recorded = _loads(params)
    if recorded is None:
        return f"{name} ({params})" if params else name
    detail = ", ".join(f"{k}={recorded[k]}" for k in sorted(recorded) if k not in ANNOTATION_KEYS)
    return f"{name} ({detail})" if detail else name


def _loads(params: str) -> dict | None:
    try:
        value = json.loads(params or "{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
