"""Figures built from stored explanations (``xaibench.explanations``): galleries, counterfactuals, surrogate rules.

Used by ``xaibench report`` and the W&B sink. Everything is read from the table and the store; a cell whose
explanations are not in the store is skipped with a note, never recomputed.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from xaibench.errors import UserError
from xaibench.report.figures import attribution_gallery, counterfactual_examples, surrogate_rules
from xaibench.results.explanations import CellExplanations, explanations
from xaibench.results.groups import competitor_labels
from xaibench.results.roles import CONTROL, pair_roles

SAMPLES = {"image": 4, "time_series": 3, "tabular": 3, "text": 2}
EXPERIMENT = ["dataset", "dataset_params", "model", "model_params"]


def cell_gallery(cells: Sequence[CellExplanations], title: str | None = None) -> Figure:
    """Gallery of cells that share dataset, model and samples: one row per cell's method, controls (by the role
    their rows record: ``results/roles.py``) last."""
    keys = [(c.method, json.dumps(c.method_params, sort_keys=True)) for c in cells]
    roles = pair_roles(keys)
    ordered = [cells[i] for i in sorted(range(len(cells)), key=lambda i: (roles[keys[i]] == CONTROL, keys[i]))]
    first = ordered[0]
    labels = method_labels(ordered)
    patch = first.model_params.get("patch_size") if isinstance(first.model_params.get("patch_size"), int) else None
    tokens = None if first.vocabulary is None else [first.vocabulary.decode(ids) for ids in first.inputs]
    return attribution_gallery(
        first.inputs, {label: c.attributions for label, c in zip(labels, ordered)}, modality=first.modality,
        sample_ids=first.sample_ids, targets=first.targets, feature_names=first.feature_names, patch_size=patch,
        tokens=tokens, class_names=first.class_names, labels=first.labels, target_mode=first.target_mode,
        title=title if title is not None else f"{first.dataset_label} / {first.model_label}",
    )


def experiment_title(row: pd.Series) -> str:
    """``dataset / model`` of a table row (display names where it has them), plus the model's and dataset's
    parameters that differ from their shipped configs (``conf/model/<model>.yaml``, ``conf/dataset/<dataset>.yaml``)
    as the tables write them: ``breast_cancer / mlp (model.hidden=[32])``. Two variants of a model had two
    galleries of one title. Where the user named the model or dataset (``model.label``, ``dataset.label``), its
    inputs that the shipped config leaves unset (``null``: ``model.target``, ``model.state_dict``, ``dataset.path``,
    ``dataset.target``) are left out: the label names them. Listed, they made ``torch_module`` on ``csv_table`` a
    title of six file names, wider than the gallery (review24)."""
    from xaibench.config.paths import conf_dir
    from xaibench.results.groups import _config_params, _same

    parts = []
    for group in ("model", "dataset"):
        shipped = dict(_config_params(str(conf_dir() / group / f"{row[group]}.yaml")))
        params = json.loads(str(row.get(f"{group}_params", "") or "{}"))
        labelled = str(row.get(f"{group}_label", "") or row[group]) != str(row[group])
        parts += [f"{group}.{key}={value}" for key, value in sorted(params.items())
                  if key in shipped and not _same(value, shipped[key]) and not (labelled and shipped[key] is None)]
    title = f"{row.get('dataset_label', '') or row['dataset']} / {row.get('model_label', '') or row['model']}"
    return f"{title} ({', '.join(parts)})" if parts else title


def method_labels(cells: Sequence[CellExplanations]) -> list[str]:
    """The cells' competitor labels, as the tables name them (``groups.competitor_labels``): the method plus the
    parameters in which its variants differ or differ from its shipped config (``saliency (abs=False)`` for
    ``variant/gradient``, alone or not). A gallery labelled a method by its name alone when it was the only
    variant, and by every parameter it has otherwise."""
    frame = pd.DataFrame({"method": [c.method for c in cells],
                          "method_params": [json.dumps(c.method_params, sort_keys=True) for c in cells]})
    return [str(label) for label in competitor_labels(frame)]


def experiments(table: pd.DataFrame) -> list[pd.DataFrame]:
    """The explained rows of each (dataset, model) experiment at its lowest seed, in a stable order."""
    explained = table[table.get("explanation_key", pd.Series("", index=table.index)).fillna("") != ""]
    columns = [c for c in EXPERIMENT if c in explained.columns]
    out = []
    for _, rows in explained.groupby(columns, sort=True):
        out.append(rows[rows["seed"] == rows["seed"].min()])
    return out


def galleries(table: pd.DataFrame | None, store: str | os.PathLike[str], notes: list[str] | None = None, *,
              groups: Iterable[pd.DataFrame] | None = None) -> dict[str, Figure]:
    """One gallery per experiment: ``gallery_<dataset>_<model>`` -> Figure (notes collect skipped ones).
    ``groups``: what ``experiments(table)`` gives, made otherwise (a table read an experiment at a time)."""
    return dict(gallery_items(table, store, notes, groups=groups))


def gallery_items(table: pd.DataFrame | None, store: str | os.PathLike[str], notes: list[str] | None = None, *,
                  groups: Iterable[pd.DataFrame] | None = None) -> Iterator[tuple[str, Figure]]:
    """:func:`galleries` as (name, figure) pairs, each drawn when asked for (the W&B sweep run logs and frees one
    before the next: a sweep of many experiments held all its galleries at once)."""
    names: set[str] = set()
    for rows in experiments(table) if groups is None else groups:
        first = rows.iloc[0]
        name = _unique(names, f"gallery_{first['dataset']}_{first['model']}")
        try:
            probe = explanations(rows, store=store, samples=1)
            cells = explanations(rows, store=store, samples=SAMPLES.get(probe[0].modality, 3))
            figure = cell_gallery(cells, title=experiment_title(first))
        except UserError as error:
            _note(notes, f"{name}: {error}")
            continue
        names.add(name)
        yield name, figure


def counterfactual_figures(table: pd.DataFrame | None, store: str | os.PathLike[str], notes: list[str] | None = None,
                           n_samples: int = 3, *, groups: Iterable[pd.DataFrame] | None = None) -> dict[str, Figure]:
    """``counterfactuals_<dataset>_<model>_<method>`` for each counterfactual method's cell (``groups``: as for
    :func:`galleries`)."""
    return dict(counterfactual_items(table, store, notes, n_samples, groups=groups))


def counterfactual_items(table: pd.DataFrame | None, store: str | os.PathLike[str], notes: list[str] | None = None,
                         n_samples: int = 3, *, groups: Iterable[pd.DataFrame] | None = None
                         ) -> Iterator[tuple[str, Figure]]:
    """:func:`counterfactual_figures` as (name, figure) pairs, each drawn when asked for. Only the cells of
    counterfactual methods (:func:`counterfactual_rows`) are read: a sweep without any has nothing to look for, and
    its report no "not in the store" note about counterfactuals."""
    names: set[str] = set()
    for rows in experiments(counterfactual_rows(table)) if groups is None else groups:
        rows = counterfactual_rows(rows)
        if rows.empty:
            continue
        try:
            cells = explanations(rows, store=store, samples=n_samples)
        except UserError as error:
            _note(notes, f"counterfactuals of {rows.iloc[0]['dataset']}/{rows.iloc[0]['model']}: {error}")
            continue
        for cell, label in zip(cells, method_labels(cells)):
            if cell.counterfactuals is None or cell.modality == "text":
                continue
            name = _unique(names, f"counterfactuals_{cell.dataset}_{cell.model}_{cell.method}")
            names.add(name)
            yield name, counterfactual_examples(
                cell.inputs, cell.counterfactuals, modality=cell.modality, feature_names=cell.feature_names,
                sample_ids=cell.sample_ids, valid=cell.extras.get("valid"),
                title=f"{label} on {cell.dataset_label} / {cell.model_label}")


def counterfactual_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of methods that store counterfactuals (``Explainer.counterfactual``: ``wachter``,
    ``growing_spheres``, ``dice``, a user's own), and of methods the registry does not know (nothing tells)."""
    from xaibench.registry import EXPLAINERS  # its first lookup imports every method (not the metrics: Quantus)

    names = table["method"].astype(str).unique() if len(table) else []
    looked = [n for n in names if n not in EXPLAINERS or getattr(EXPLAINERS.get(n), "counterfactual", False)]
    return table[table["method"].isin(looked)]


def surrogate_figures(table: pd.DataFrame | None, store: str | os.PathLike[str], notes: list[str] | None = None, *,
                      groups: Iterable[pd.DataFrame] | None = None) -> dict[str, Figure]:
    """``rules_<dataset>_<model>`` for each decision-tree surrogate cell that stored its rules (``groups``: what
    ``experiments(surrogate_rows(table))`` gives)."""
    return dict(surrogate_items(table, store, notes, groups=groups))


def surrogate_items(table: pd.DataFrame | None, store: str | os.PathLike[str], notes: list[str] | None = None, *,
                    groups: Iterable[pd.DataFrame] | None = None) -> Iterator[tuple[str, Figure]]:
    """:func:`surrogate_figures` as (name, figure) pairs, each drawn when asked for."""
    names: set[str] = set()
    if groups is None:
        trees = surrogate_rows(table)
        groups = experiments(trees) if len(trees) else []
    for rows in groups:
        try:
            cells = explanations(rows, store=store, samples=1)
        except UserError as error:
            _note(notes, f"surrogate rules: {error}")
            continue
        for cell in cells:
            if "rules" not in cell.extras:
                _note(notes, f"{cell.dataset}/{cell.model}: the stored surrogate predates stored rules; rerun with a "
                             "fresh store_dir to show them")
                continue
            name = _unique(names, f"rules_{cell.dataset}_{cell.model}")
            names.add(name)
            holdout = cell.extras.get("holdout_fidelity")
            yield name, surrogate_rules(
                str(cell.extras["rules"][0]), float(cell.extras["fidelity"][0]),
                None if holdout is None else float(np.asarray(holdout)[0]), feature_names=cell.feature_names,
                feature_scaling=cell.feature_scaling, class_names=cell.class_names,
                title=f"decision-tree surrogate of {cell.model_label} on {cell.dataset_label}")


def surrogate_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of decision-tree surrogates (what :func:`surrogate_figures` draws from)."""
    return table[table["method"] == "decision_tree"]


def _unique(existing: dict | set, name: str) -> str:
    candidate, index = name, 2
    while candidate in existing:
        candidate, index = f"{name}_{index}", index + 1
    return candidate


def _note(notes: list[str] | None, message: str) -> None:
    if notes is not None:
        notes.append(message)
