"""How compare names a unit (one method on one metric in one experiment), in every output: the report's tables,
the terminal's finding lines, the JUnit testcases, the GitHub annotations and the JSON's ``unit.labels``.

``UnitNames`` gives each unit of a comparison its names as the report gives them (``saliency (abs=False)``, the
parameters that tell same-named units apart; a model or dataset by its display name, ``model.label=...``, where the
sweep set one: ``display_labels``); ``unit_text`` / ``unit_path`` write a finding's unit from them. JUnit testcases
are named by ``UnitNames.identity`` instead, names a unit keeps from run to run whatever else the tables hold (a CI
system tracks a testcase by its name: a renamed one reads as a test removed and another added): every part by its
registry name, which a label does not change, with its parameters that differ from its shipped config, which
another variant added to the sweep does not change (``stable_names``).
"""
from __future__ import annotations

import json

import pandas as pd

from xaibench.results.compare.stable_names import stable_identities, stable_method_name
from xaibench.results.groups import competitor_columns, competitor_labels, labelled

__all__ = ["NAMES", "UnitNames", "display_labels", "named", "stable_method_name", "unit_path",
           "unit_text"]

NAMES = ["model", "dataset", "method", "metric"]
LABEL_COLUMNS = {"model": "model_label", "dataset": "dataset_label"}  # display names (``model.label=...``)


class UnitNames:
    """How findings name units: as the report does (``groups.competitor_labels``), plus the ``variant`` text.

    A unit's method is its competitor label over both tables (``saliency (abs=False)``: the parameters its
    variants differ in or that differ from the method's shipped config), the label the report's tables, figures
    and summary files give it; the other parameters that tell units of the same names apart follow their name in
    the same style (``pixel_flipping (features_in_step=4)``, ``mlp (hidden=32)``; the run's settings, such as
    ``n_samples``, follow the dataset in brackets: ``synthetic_tabular (n_samples=1000) [n_samples=8]``).
    ``variant`` keeps the differing parameters as ``method.abs=False`` (the summary's ``variant`` column), for
    the JSON verdict. ``display``: the models' and datasets' display names
    (``display_labels``), which stand in for their registry names (``My net (hidden=32)``).
    """

    def __init__(self, keys: list[tuple], units: list[str], baseline: pd.DataFrame, current: pd.DataFrame,
                 display: dict[tuple[str, str, str], str] | None = None) -> None:
        self.units = units
        self.keys = keys
        self.display = display or {}
        self._identities: dict[tuple, dict[str, str]] | None = None  # ``identity`` of every key, made on first use
        self.differing = differing_parameters(keys, units)
        columns = competitor_columns(pd.DataFrame(columns=units))
        pairs = pd.concat([frame[columns].drop_duplicates() for frame in (baseline, current)]).astype(str)
        pairs = pairs.drop_duplicates()
        self.competitors = dict(zip(pairs.itertuples(index=False, name=None), competitor_labels(pairs).astype(str)))
        self.columns = columns

    def variant(self, key: tuple) -> str:
        return " ".join(f"{k}={v}" for k, v in self.differing.get(key, {}).items())

    def labels(self, key: tuple) -> dict[str, str]:
        """The unit's model, dataset, method and metric as the report names them: a display name where one is set."""
        return self._names(key, display=True)

    def identity(self, key: tuple) -> dict[str, str]:
        """What a JUnit testcase is named by, the same from run to run while the unit is the same
        (``stable_names.stable_identities``): each part by its registry name, whatever its display name, with its
        parameters that differ from its shipped config (``mlp (hidden=[32])``, ``saliency (abs=False)``,
        ``faithfulness_correlation (nr_runs=10)``; the setting after the dataset, ``synthetic_tabular
        [n_samples=10]``), which do not depend on the other variants the tables hold, as the labels do
        (``integrated_gradients`` at its shipped parameters would read ``integrated_gradients (n_steps=32)`` once a
        ``n_steps=64`` variant joins the sweep)."""
        if self._identities is None:
            self._identities = stable_identities(self.keys, self.units)
        return dict(self._identities[key] if key in self._identities else stable_identities([key], self.units)[key])

    def _names(self, key: tuple, display: bool) -> dict[str, str]:
        unit = dict(zip(self.units, key))
        extra: dict[str, list[str]] = {name: [] for name in NAMES}
        settings: list[str] = []  # the run's (``synthetic_tabular (n_samples=1000) [n_samples=8]``), as JUnit's
        for item, value in self.differing.get(key, {}).items():
            prefix, _, param = item.partition(".")
            if prefix in extra and prefix != "method" and param:
                extra[prefix].append(f"{param}={value}")
            elif not param:  # a setting column (n_samples, target_mode, ...): after the dataset, in brackets
                settings.append(f"{item}={value}")
        method = self.competitors.get(tuple(str(unit.get(c, "")) for c in self.columns), str(unit.get("method", "")))
        out = {}
        for name in NAMES:
            text = method if name == "method" else str(unit.get(name, ""))
            if display and name in LABEL_COLUMNS:
                text = self.display.get((name, text, str(unit.get(f"{name}_params", ""))), text)
            out[name] = labelled(text, extra[name], settings if name == "dataset" else [])
        return out

    def method(self, key: tuple) -> str:
        return self.labels(key)["method"]

    def described(self, key: tuple) -> str:
        """The names of ``key`` that carry parameters (``integrated_gradients (n_steps=32)``), for "the
        baseline's ..."; "other parameters" where none does."""
        labels, identity = self.labels(key), self._names(key, display=False)
        unit = dict(zip(self.units, key))
        shown = [labels[n] for n in NAMES if identity[n] != str(unit.get(n, ""))]
        return ", ".join(shown) or "other parameters"

    def unit(self, key: tuple) -> dict:
        """The unit's columns plus ``variant``, ``labels`` and ``identity`` (see ``Finding.unit``)."""
        return {**dict(zip(self.units, key)), "variant": self.variant(key), "labels": self.labels(key),
                "identity": self.identity(key)}


def display_labels(*frames: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    """``("model" | "dataset", registry name, its params JSON) -> display name``: the ``model_label`` /
    ``dataset_label`` the rows record where the sweep set one (``model.label=...``; a row without one records ""
    or the registry name). The first frame's, in row order, wins: pass the current table first, so a renamed
    label shows as it is now."""
    labels: dict[tuple[str, str, str], str] = {}
    for frame in frames:
        for axis, column in LABEL_COLUMNS.items():
            columns = [axis, f"{axis}_params", column]
            if frame.empty or not set(columns) <= set(frame.columns):
                continue
            label = frame[column]
            set_ = ((label != "") & (label != frame[axis])).fillna(False).to_numpy(bool)  # NA: no label
            rows = frame.loc[set_, columns].drop_duplicates(columns[:2]).astype(str)
            for name, params, text in rows.itertuples(index=False, name=None):
                labels.setdefault((axis, name, params), text)
    return labels


def named(name: str, label: str) -> str:
    """``My net (torch_module)``: a display name with the registry name it stands for, or the name alone."""
    return f"{label} ({name})" if label and label != name else name


def differing_parameters(keys: list[tuple], units: list[str]) -> dict[tuple, dict]:
    """For units sharing model/dataset/method/metric names, the flattened parameters that differ between them
    (``{"method.abs": False}``; none for a unit alone under its names)."""
    name_index = [units.index(n) for n in NAMES if n in units]
    by_names: dict[tuple, list[tuple]] = {}
    for key in keys:
        by_names.setdefault(tuple(key[i] for i in name_index), []).append(key)
    out: dict[tuple, dict] = {key: {} for key in keys}
    for group in by_names.values():
        if len(group) < 2:
            continue
        flat = {key: _flatten(dict(zip(units, key))) for key in group}
        present = dict.fromkeys(k for v in flat.values() for k in v)
        differing = sorted(k for k in present if len({repr(f.get(k)) for f in flat.values()}) > 1)
        for key, values in flat.items():
            out[key] = {k: values.get(k) for k in differing}
    return out


def _flatten(unit: dict) -> dict:
    prefixes = {"model_params": "model.", "dataset_params": "dataset.", "method_params": "method.", "params": "metric."}
    out = {}
    for column, value in unit.items():
        if column in prefixes:
            try:
                out.update({prefixes[column] + k: v for k, v in json.loads(value or "{}").items()})
            except (TypeError, ValueError):
                out[column] = value
        elif column not in NAMES:
            out[column] = value
    return out


def unit_text(unit: dict) -> list[str]:
    """The unit's model, dataset, method and metric as the report names them (``labels``: ``saliency
    (abs=False)``, ``UnitNames``), the metric with its direction; "" for a name the unit lacks."""
    labels = unit.get("labels") or {}
    model, dataset, method, metric = (str(labels.get(n, unit.get(n, ""))) for n in NAMES)
    if metric and "higher_is_better" in unit:
        metric += " ↑" if unit["higher_is_better"] else " ↓"
    return [model, dataset, method, metric]


def unit_path(unit: dict) -> str:
    """``mlp/synthetic_tabular/saliency/faithfulness_correlation ↑``: ``unit_text`` joined, the names it has; ""
    for a finding that names no unit."""
    return "/".join(part for part in unit_text(unit) if part)
