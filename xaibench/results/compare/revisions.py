"""``revision`` findings: a model's or dataset's fingerprint differs between the tables (its weights, the code
defining its class, the data's content), or a model of the same parameters and revision now has another test
accuracy (retrained to other weights). Scores measured on a changed model or dataset are still compared; these
findings say what may explain their changes."""
from __future__ import annotations

import numpy as np
import pandas as pd

from xaibench.results.compare.findings import Finding
from xaibench.results.compare.names import named
from xaibench.results.compare.stable_names import stable_part_name
from xaibench.results.compare.tables import REVISION_COLUMNS


def revision_changes(baseline: pd.DataFrame, current: pd.DataFrame, strict: bool,
                     display: dict[tuple[str, str, str], str] | None = None) -> list[Finding]:
    """A model's or dataset's fingerprint that differs between the tables (same name and parameters), naming the
    part that changed -- a revision joins parts with ``+``: the weights file's (or data's) digest, then tagged ones
    such as ``code:<digest>`` of the file defining a model class -- and, for a model, its test accuracy. A model or
    dataset with a display name (``display``: ``names.display_labels``) is named ``My net (torch_module)`` in the
    message and by its label in the finding's ``unit["labels"]`` (the line's prefix, ``revision: My net: ...``, as
    every other finding names it)."""
    display = display or {}
    findings = []
    for column, axis in zip(REVISION_COLUMNS, ("model", "dataset")):
        if column not in baseline or column not in current:
            continue
        key = [axis, f"{axis}_params"]
        before = baseline.loc[baseline[column] != "", key + [column]].drop_duplicates(key)
        after = current.loc[current[column] != "", key + [column]].drop_duplicates(key)
        joined = before.merge(after, on=key, suffixes=("_base", "_cur"))
        for row in joined[joined[f"{column}_base"] != joined[f"{column}_cur"]].itertuples(index=False):
            row = row._asdict()
            old, new = row[f"{column}_base"], row[f"{column}_cur"]
            what = changed_parts(str(old), str(new), "weights" if axis == "model" else "content")
            accuracy = _accuracy_change(baseline, current, key, (row[axis], row[f"{axis}_params"])) if axis == "model" \
                else ""
            label = display.get((axis, str(row[axis]), str(row[f"{axis}_params"])), "")
            text = (f"{axis} {named(str(row[axis]), label)} {what}{accuracy}: its scores are measured on a changed "
                    f"{'model' if axis == 'model' else 'dataset'}")
            unit = {axis: row[axis], f"{axis}_params": row[f"{axis}_params"],
                    "labels": {axis: label or _shown(axis, row[axis], row[f"{axis}_params"])}}
            findings.append(Finding("revision", strict, unit, text, details={"before": old, "after": new}))
    return findings + _retrained(baseline, current, {(f.unit.get("model"), f.unit.get("model_params"))
                                                      for f in findings if "model" in f.unit}, strict, display)


def _retrained(baseline: pd.DataFrame, current: pd.DataFrame, reported: set, strict: bool,
               display: dict[tuple[str, str, str], str]) -> list[Finding]:
    """Models of the same name, parameters and revision whose test accuracy on the same dataset (name and parameters)
    differs: trained to other weights (a built-in model retrained under another torch, BLAS or training code).
    Scores moving with them are explained. A model is trained and tested per dataset: its accuracy on another
    dataset, or a mean over other datasets (one dropped from the sweep), says nothing about its weights."""
    key = ["model", "model_params", "dataset", "dataset_params"]
    if "model_accuracy" not in baseline or "model_accuracy" not in current:
        return []
    means = [frame.groupby(key, sort=True)["model_accuracy"].mean().rename(side)
             for frame, side in ((baseline, "before"), (current, "after"))]
    joined = pd.concat(means, axis=1, join="inner").dropna()
    findings = []
    for (model, params, dataset, dataset_params), row in joined[(joined["before"] - joined["after"]).abs()
                                                                > 1e-9].iterrows():
        if (model, params) in reported:
            continue
        labels = {"model": display.get(("model", str(model), str(params)), "") or str(model),
                  "dataset": display.get(("dataset", str(dataset), str(dataset_params)), "") or str(dataset)}
        model_name, dataset_name = named(str(model), labels["model"]), named(str(dataset), labels["dataset"])
        labels = {"model": display.get(("model", str(model), str(params)), "") or _shown("model", model, params),
                  "dataset": display.get(("dataset", str(dataset), str(dataset_params)), "")
                  or _shown("dataset", dataset, dataset_params)}
        text = (f"model {model_name} test accuracy {row['before']:.3g} -> {row['after']:.3g} on {dataset_name} with "
                "the same parameters and revision: trained to other weights (training code, torch or BLAS changed); "
                "its scores are measured on a changed model")
        unit = {"model": model, "model_params": params, "dataset": dataset, "dataset_params": dataset_params,
                "labels": labels}
        findings.append(Finding("revision", strict, unit, text,
                                details={"accuracy": [float(row["before"]), float(row["after"])]}))
    return findings


def _shown(axis: str, name, params) -> str:
    """The name a revision's line and report row give a model or dataset without a display name: with its
    parameters that differ from its shipped config (``mlp (hidden=[32])``, ``stable_part_name``), so two retrained
    variants of one model no longer read as the same ``revision: mlp/...`` line (ciuser25)."""
    return stable_part_name(axis, str(name), "" if params is None else str(params))


def _revision_parts(revision: str, first: str) -> dict[str, str]:
    """``{"weights": digest, "code": digest, ...}`` of a revision (``<digest>+code:<digest>``); ``first`` names the
    untagged part."""
    parts = {}
    for index, piece in enumerate(revision.split("+")):
        tag, _, value = piece.partition(":")
        tagged = bool(value) and tag.replace("_", "").replace("-", "").isalpha()
        parts[tag if tagged else first if index == 0 else f"part {index + 1}"] = value if tagged else piece
    return parts


def changed_parts(old: str, new: str, first: str) -> str:
    """``code changed (509c4cc9018f -> 611e833b9a40; weights unchanged)``: which parts of a revision differ."""
    before, after = _revision_parts(old, first), _revision_parts(new, first)
    changed = [name for name in dict.fromkeys([*before, *after]) if before.get(name) != after.get(name)]
    same = [name for name in before if name not in changed]
    shown = "; ".join(f"{name} {before.get(name, '')[:12] or 'none'} -> {after.get(name, '')[:12] or 'none'}"
                      for name in changed)
    return (f"{' and '.join(changed)} changed ({shown}" + (f"; {' and '.join(same)} unchanged" if same else "") + ")")


def _accuracy_change(baseline: pd.DataFrame, current: pd.DataFrame, key: list[str], value: tuple) -> str:
    """``; test accuracy 1 -> 0.7`` when the model's recorded accuracy differs (the mean over the datasets both tables
    test it on: a dataset only one of them has would move the mean by itself), else ""."""
    if "model_accuracy" not in baseline or "model_accuracy" not in current:
        return ""
    rows = [_select(frame, key, value) for frame in (baseline, current)]
    data = ["dataset", "dataset_params"]
    shared = rows[0][data].drop_duplicates().merge(rows[1][data].drop_duplicates())
    means = [frame.merge(shared, on=data)["model_accuracy"].astype(float).mean() for frame in rows]
    if not all(np.isfinite(means)) or abs(means[0] - means[1]) < 1e-9:
        return ""
    return f"; test accuracy {means[0]:.3g} -> {means[1]:.3g}"


def _select(frame: pd.DataFrame, columns: list[str], key: tuple) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for column, value in zip(columns, key):
        mask &= (frame[column] == value).to_numpy()
    return frame[mask]
