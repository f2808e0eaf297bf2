"""Comparison groups: which rows are competitors and which belong to different experiments.

Methods are compared (ranked, tested) only within one **comparison group**: the same model *and* its parameters
and weights revision, the same dataset *and* its parameters and content revision, the same metric *and* its
parameters, the same sample count, target mode and explained output. Within a group, a **competitor** is a method
*with* its parameters (``integrated_gradients`` with ``n_steps=32`` and with ``n_steps=64`` are two competitors). Seeds are
replicates of one competitor, not separate competitors. Ranks, statistics, reports and ``compare`` all use these
definitions, so two CSV datasets or two variants of a model are never ranked against each other.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re

import numpy as np
import pandas as pd

from xaibench.results.roles import ROLE_KEY

# Row columns that together identify one experiment in which methods compete (those a table has are used).
COMPARISON_COLUMNS = ["model", "model_params", "model_revision", "dataset", "dataset_params", "dataset_revision",
                      "metric", "params", "n_samples", "target_mode", "explain_output"]
# Row columns that identify one competitor within a comparison group.
COMPETITOR_COLUMNS = ["method", "method_params"]
# Comparison columns that vary between the metrics scored in one setting.
SETTING_EXCLUDED = ("metric", "params")
# The run's own settings among the comparison columns (not a part's parameters): labels show them in brackets after
# the dataset, ``synthetic_tabular (n_samples=1000) [n_samples=8]``, apart from the dataset's own parameters.
RUN_SETTINGS = ("n_samples", "target_mode", "explain_output")
# ``method_params`` keys that annotate a method rather than set it (its role, the parameters unused on the data):
# never part of a label.
ANNOTATION_KEYS = frozenset({ROLE_KEY, "unused_params"})


# Comparison columns a ``not_applicable`` cell leaves unresolved: it never builds the data or the model (no content
# revision) nor resolves its metric parameters against the data (``subset_size: 0.25`` stays a fraction).
UNRESOLVED_WHEN_NOT_APPLICABLE = ("dataset_revision", "model_revision", "params")


def attach_not_applicable(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each ``not_applicable`` row moved into the comparison group it was planned for.

    A cell that cannot apply (``sobel`` on a table) writes rows without the data's revision and with its metric
    parameters unresolved, so on their own they form a comparison group and a setting of their own next to the
    one the other methods scored (a phantom group in tables and ranks). Each such row takes the unresolved
    columns (:data:`UNRESOLVED_WHEN_NOT_APPLICABLE`) of the rows of its setting that did run, matched on every
    other comparison column, and so shows ``n/a`` in that group's table. Where the rows that ran hold no match
    (a cnn on tabular data: no method ran in the setting) or several (two parameter variants of one metric), the
    row keeps its own group and the report lists it among the settings without any score.

    Returns:
        A copy with those columns filled (``table`` itself when nothing is to move).
    """
    unresolved = [c for c in UNRESOLVED_WHEN_NOT_APPLICABLE if c in table.columns]
    if "status" not in table.columns or not unresolved:
        return table
    na = (table["status"] == "not_applicable").to_numpy(dtype=bool)
    if not na.any() or na.all():
        return table
    keys = [c for c in comparison_columns(table) if c not in unresolved]
    ran = table.loc[~na, keys + unresolved].drop_duplicates().astype(str).drop_duplicates()  # few rows: text after
    candidates = ran.groupby(keys, sort=False, dropna=False)
    unique = ran[candidates[unresolved[0]].transform("size") == 1]  # exactly one group to join
    moved = table.loc[na, keys].astype(str).rename_axis("_row").reset_index().merge(unique, on=keys, how="inner")
    if moved.empty:
        return table
    out = table.copy()
    for column in unresolved:
        out.loc[moved["_row"].to_numpy(), column] = moved[column].to_numpy()
    return out


def comparison_columns(frame: pd.DataFrame) -> list[str]:
    """The comparison-group columns present in ``frame`` (older or hand-made tables may lack some)."""
    return [c for c in COMPARISON_COLUMNS if c in frame.columns]


def competitor_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in COMPETITOR_COLUMNS if c in frame.columns]


def comparison_id(frame: pd.DataFrame) -> pd.Series:
    """A short stable id per row naming its comparison group (the same id for the same group in any table)."""
    return _hashed(frame, comparison_columns(frame))


def setting_id(frame: pd.DataFrame) -> pd.Series:
    """A short stable id per row naming its setting: the comparison group without the metric and its params.

    Rows of one setting are the same methods explaining the same model on the same data, scored by different
    metrics (what metric agreement compares).
    """
    return _hashed(frame, [c for c in comparison_columns(frame) if c not in SETTING_EXCLUDED])


def competitor_labels(frame: pd.DataFrame) -> pd.Series:
    """One label per row naming its competitor: the method, plus the parameters in which its variants differ and
    those that differ from the method's shipped defaults (``conf/method/<method>.yaml``).

    ``integrated_gradients`` when the table holds it at its defaults only, else e.g.
    ``integrated_gradients (n_steps=64)``; ``method=variant/gradient`` (registered as ``saliency`` with
    ``abs: false``) is ``saliency (abs=False)`` even alone, since ``saliency`` names the absolute gradient. The
    same (method, params) gets the same label throughout a table.
    """
    if "method_params" not in frame.columns:
        return frame["method"].astype(str).astype("string")
    pairs = frame[["method", "method_params"]].astype(str).drop_duplicates()
    labels = {}
    for method, group in pairs.groupby("method", sort=False):
        params = {p: json.loads(p or "{}") for p in group["method_params"]}
        keys = sorted({k for v in params.values() for k in v} - ANNOTATION_KEYS)
        defaults = shipped_method_defaults(method)
        differing = [k for k in keys if len({repr(v.get(k)) for v in params.values()}) > 1
                     or any(k in v and k in defaults and not _same(v[k], defaults[k]) for v in params.values())]
        for text, values in params.items():
            detail = ", ".join(f"{k}={values.get(k)}" for k in differing)
            labels[(method, text)] = f"{method} ({detail})" if detail else method
    keys = pd.MultiIndex.from_frame(frame[["method", "method_params"]].astype(str))
    return pd.Series(keys.map(labels), index=frame.index, dtype="string")


def split_settings(items: list[str]) -> tuple[list[str], list[str]]:
    """``(others, settings)``: the ``name=value`` items naming a run setting (:data:`RUN_SETTINGS`, no prefix)
    apart from the rest (``dataset.n_samples=1000``, ``model.hidden=32``), each in its given order."""
    is_setting = [item.partition("=")[0] in RUN_SETTINGS for item in items]
    return ([i for i, s in zip(items, is_setting) if not s], [i for i, s in zip(items, is_setting) if s])


@functools.lru_cache(maxsize=4096)
def variant_text(variant: str) -> str:
    """A summary's ``variant`` (``dataset.n_samples=1000 n_samples=8``) as printed: the run's settings in brackets
    after the parts' parameters, ``dataset.n_samples=1000 [n_samples=8]``; ``""`` stays ``""``."""
    others, settings = split_settings([p for p in re.split(r" (?=[\w.]+=)", str(variant)) if p])
    return " ".join(others + ([f"[{', '.join(settings)}]"] if settings else []))


def labelled(name: str, params: list[str], settings: list[str] = ()) -> str:
    """``name (p=1, q=2) [n_samples=8]``: a part's name, its parameters in parentheses and the run's settings in
    brackets (each left out when empty): the dataset's ``n_samples`` parameter and the run's ``n_samples`` read
    apart, as the JUnit testcases name them."""
    text = f"{name} ({', '.join(params)})" if params else name
    return f"{text} [{', '.join(settings)}]" if settings else text


def shipped_method_defaults(method: str) -> dict:
    """The parameters of the method's shipped config ``conf/method/<method>.yaml`` (its registered defaults,
    ``tests/unit/test_canonical_keys.py``), without ``name``; empty for a method without one (bring your own).
    Read from the YAML, not the explainer registry, so that labelling a table never imports torch."""
    from xaibench.config.paths import conf_dir

    return dict(_config_params(str(conf_dir() / "method" / f"{method}.yaml")))


@functools.lru_cache(maxsize=256)
def _config_params(path: str) -> tuple[tuple[str, object], ...]:
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            config = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError):
        return ()
    if not isinstance(config, dict):
        return ()
    return tuple((str(k), v) for k, v in config.items() if k != "name" and not str(k).startswith("_"))


def _same(value, default) -> bool:
    """Equal as recorded (JSON) and as shipped (YAML): ``0`` and ``0.0`` are, ``False`` and ``0`` are not."""
    if isinstance(value, bool) or isinstance(default, bool):
        return isinstance(value, bool) and isinstance(default, bool) and value == default
    try:
        return bool(value == default)
    except Exception:  # noqa: BLE001 - incomparable values differ
        return False


def _hashed(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """sha256 of the row's values in ``columns`` joined by ``\x1f`` (hashed once per distinct combination)."""
    if not columns:
        digest = hashlib.sha256(b"").hexdigest()[:12]
        return pd.Series(digest, index=frame.index, dtype="string")
    keys = frame[columns].astype(str)
    text = keys[columns[0]].str.cat([keys[c] for c in columns[1:]], sep="\x1f") if len(columns) > 1 else keys[columns[0]]
    codes, uniques = pd.factorize(text)
    digests = np.array([hashlib.sha256(text.encode()).hexdigest()[:12] for text in uniques], dtype=object)
    return pd.Series(digests[codes], index=frame.index, dtype="string")
