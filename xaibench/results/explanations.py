"""Stored explanations out, as arrays: what ``xaibench.explanations(...)`` returns (never recomputed).

Each scored row records the store key of its cell's explanation stage (column ``explanation_key``). The
attributions, targets, counterfactuals and per-sample extras are read from that stored artefact. Inputs are not
stored: they are rebuilt from the dataset spec in the row (``dataset`` + ``dataset_params`` + ``seed``), which
is deterministic and cheap (no model is built or run), and checked against the row's ``dataset_revision`` and
sample ids so a changed data file is reported, not silently mismatched.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xaibench.engine.store import Store
from xaibench.errors import UserError
from xaibench.results.folder_paths import file_in_the_way, missing_folder
from xaibench.types import Vocabulary


@dataclass(frozen=True)
class CellExplanations:
    """The stored explanations of one cell, aligned on ``sample_ids``.

    Attributes:
        model, dataset, method: registry names; ``model_label``/``dataset_label`` the display names.
        seed: the cell's seed.
        modality: ``tabular`` | ``image`` | ``time_series`` | ``text``.
        sample_ids: ``(N,)`` stable sample ids.
        inputs: ``(N, ...)`` the explained inputs, rebuilt from the dataset spec (tabular ``(N, F)``, image
            ``(N, C, H, W)``, time series ``(N, C, T)``, text token ids ``(N, L)``).
        targets: ``(N,)`` the explained class per sample: the model's predicted class or the label, as
            ``target_mode`` says.
        attributions: shaped like ``inputs`` (text: per token ``(N, L)``).
        counterfactuals: shaped like ``inputs`` for counterfactual methods, else None.
        extras: per-sample arrays the method recorded, e.g. ``fidelity``, ``rules`` (surrogates), ``valid``.
        feature_names: tabular feature names (may be empty).
        feature_scaling: tabular ``(mean, std)`` per feature when the model saw standardised inputs
            (``raw = inputs * std + mean``; ``Dataset.feature_scaling``), else empty.
        class_names: the dataset's class names by index (``Dataset.class_names``; empty: the indices).
        vocabulary: text only: the dataset's token strings by id (``Dataset.vocabulary``), or None.
        explanation_key, cell_keys: store keys (one explanation stage may serve several cells).
        model_params, method_params: the parameters from the table.
        explain_s, n_forward: explanation cost per sample.
        labels: ``(N,)`` the samples' labels (from the rebuilt dataset), or None.
        target_mode: the sweep's ``target`` config (the table's ``target_mode``): ``predicted`` | ``label``; empty
            when the table does not say (written before it had the column).
    """

    model: str
    dataset: str
    method: str
    seed: int
    modality: str
    sample_ids: tuple[str, ...]
    inputs: np.ndarray
    targets: np.ndarray
    attributions: np.ndarray
    counterfactuals: np.ndarray | None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    feature_names: tuple[str, ...] = ()
    feature_scaling: tuple[tuple[float, float], ...] = ()
    class_names: tuple[str, ...] = ()
    vocabulary: Vocabulary | None = None
    explanation_key: str = ""
    cell_keys: tuple[str, ...] = ()
    model_label: str = ""
    dataset_label: str = ""
    model_params: dict[str, Any] = field(default_factory=dict)
    method_params: dict[str, Any] = field(default_factory=dict)
    explain_s: float = float("nan")
    n_forward: float = float("nan")
    labels: np.ndarray | None = None
    target_mode: str = ""

    def __len__(self) -> int:
        return len(self.sample_ids)


def explanations(
    selection: pd.DataFrame | str | os.PathLike[str],
    *,
    store: str | os.PathLike[str] | None = None,
    samples: int | Sequence[str] | None = None,
    **filters: Any,
) -> list[CellExplanations]:
    """The stored attributions, inputs, targets (and counterfactuals) of the chosen cells.

    Args:
        selection: a results table (DataFrame, possibly already filtered), a ``.parquet``/``.csv`` path, or a
            sweep folder.
        store: the store the sweep used (default: the store_dir the sweep ran with, for a sweep folder or a table
            from ``xaibench.load(sweep folder)``, else ``$XAIBENCH_STORE`` or ``results/store``).
        samples: keep the first ``n`` samples, or these sample ids (in this order).
        **filters: ``column=value`` or ``column=[values]`` on table columns, e.g. ``method="saliency"``,
            ``dataset=["digits"]``, ``seed=0``.

    Returns:
        One :class:`CellExplanations` per explained cell, ordered by dataset, model, method, seed.

    Raises:
        UserError: no matching explained cell, a table without ``explanation_key`` (written before schema 2),
            explanations missing from the store, or a dataset whose content changed since the sweep.
    """
    root = Path(store or _sweeps_store(selection) or os.environ.get("XAIBENCH_STORE", "results/store"))
    if file_in_the_way(root) is not None:  # each cell said its explanations "are not in the store <file>"
        raise UserError(f"{missing_folder(root, 'store', 'store folder')}; pass the store_dir the sweep used")
    rows = _select(_as_table(selection), filters)
    datasets: dict[tuple, Any] = {}
    out = []
    for key, group in rows.groupby("explanation_key", sort=False):
        out.append(_cell(Store(root), str(key), group, datasets, samples))
    return sorted(out, key=lambda c: (c.dataset, c.model, c.method, c.seed, c.explanation_key))


def _sweeps_store(selection: pd.DataFrame | str | os.PathLike[str]) -> str | None:
    """The store the selection's sweep ran with (report's default too): a relative ``results/store`` is taken from
    where the sweep ran; ``explanations(xaibench.load(sweep))`` in a notebook elsewhere looked in its own folder."""
    from xaibench.results.sweep_store import STORE_ATTR, sweep_store

    if isinstance(selection, pd.DataFrame):
        return selection.attrs.get(STORE_ATTR)
    return sweep_store(Path(selection)) if isinstance(selection, (str, os.PathLike)) else None


def _as_table(selection: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    if isinstance(selection, pd.DataFrame):
        return selection
    if isinstance(selection, (str, os.PathLike)):
        from xaibench.results.collect import load_table

        return load_table(selection)
    raise UserError(f"explanations() takes a results table, a table path or a sweep folder; got {type(selection).__name__}")


NAMED_COLUMNS = ("model", "dataset", "method")  # a value absent from the table is a misspelling: name what it has


def _select(table: pd.DataFrame, filters: Mapping[str, Any]) -> pd.DataFrame:
    if "explanation_key" not in table.columns:
        raise UserError("this table has no explanation_key column (written before results schema 2); rerun its "
                        "sweep with the same store_dir (scores come from the store) and use the new table")
    for column, wanted in filters.items():
        if column not in table.columns:
            raise UserError(f"explanations(): unknown column {column!r} to filter on; columns: {', '.join(table.columns)}")
        values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
        present = table[column]
        if column in NAMED_COLUMNS and not present.isin(values).any():
            have = sorted({str(v) for v in present.dropna().unique()})
            raise UserError(f"explanations(): no {column} {', '.join(map(str, values))} in this table; its "
                            f"{column}s: {', '.join(have) or 'none'}")
        table = table[present.isin(values)]
    rows = table[table["explanation_key"].fillna("") != ""]
    if rows.empty:
        chosen = ", ".join(f"{k}={v}" for k, v in filters.items()) or "the whole table"
        raise UserError(f"explanations(): no explained cell in {chosen} (cells that errored or were not applicable "
                        "have no explanations)")
    return rows


def _absent(root) -> str:
    """``: no folder results/store here (in /where/you/are)`` when the store folder does not exist, else "": a report
    of a sweep folder copied elsewhere said its explanations "are not in the store results/store", as if that store
    existed and lacked them (review24)."""
    root = Path(root)
    if root.is_dir():
        return ""
    return f": there is no folder {root}" + ("" if root.is_absolute() else f" in {os.getcwd()}")


def _cell(store: Store, key: str, rows: pd.DataFrame, datasets: dict, samples) -> CellExplanations:
    first = rows.iloc[0]
    what = f"{first['model']} x {first['dataset']} x {first['method']} (seed {int(first['seed'])})"
    hit = store.get_arrays("explanations", key)
    if hit is None:
        raise UserError(f"the explanations of {what} are not in the store {store.root} (key {key})"
                        f"{_absent(store.root)}; pass the sweep's store_dir (xaibench report --store DIR; "
                        "explanations(store=DIR)) or rerun the sweep to recompute them")
    arrays, meta = hit
    dataset = _dataset(first, datasets)
    n = int(first["n_samples"])
    ids = tuple(dataset.test.ids[:n])
    _check_alignment(rows, ids, arrays["targets"], what)
    index = _sample_index(ids, samples, what)
    counterfactuals = arrays.get("counterfactuals")
    return CellExplanations(
        model=str(first["model"]), dataset=str(first["dataset"]), method=str(first["method"]),
        seed=int(first["seed"]), modality=str(dataset.modality),
        sample_ids=tuple(ids[i] for i in index),
        inputs=dataset.test.x[:n].numpy()[index],
        targets=arrays["targets"][index],
        attributions=arrays["attributions"][index],
        counterfactuals=None if counterfactuals is None else counterfactuals[index],
        extras={k.removeprefix("extra__"): v[index] for k, v in arrays.items() if k.startswith("extra__")},
        feature_names=tuple(dataset.feature_names),
        feature_scaling=tuple(dataset.feature_scaling),
        class_names=tuple(dataset.class_names),
        vocabulary=dataset.vocabulary,
        explanation_key=key,
        cell_keys=tuple(dict.fromkeys(rows["cell_key"].astype(str))),
        model_label=str(first.get("model_label", "") or first["model"]),
        dataset_label=str(first.get("dataset_label", "") or first["dataset"]),
        model_params=json.loads(first.get("model_params", "") or "{}"),
        method_params=json.loads(first.get("method_params", "") or "{}"),
        explain_s=float(meta.get("explain_s", np.nan)),
        n_forward=float(meta.get("n_forward", np.nan)),
        labels=dataset.test.y[:n].numpy()[index],
        target_mode=str(first.get("target_mode", "") or ""),
    )


def _dataset(row: pd.Series, cache: dict):
    """Rebuild the row's dataset (deterministic from its spec and seed) and check its content revision."""
    from xaibench.engine.datasets import build_dataset
    from xaibench.registry import DATASETS

    recorded = json.loads(row.get("dataset_params", "") or "{}")
    fields = _init_fields(DATASETS.get(str(row["dataset"])))  # rows also record what the spec derived, which
    params = {k: v for k, v in recorded.items()  # its constructor refuses (a table's encoded_columns)
              if k != "label" and (fields is None or k in fields)}
    cache_key = (str(row["dataset"]), json.dumps(params, sort_keys=True), int(row["seed"]))
    if cache_key not in cache:
        cache[cache_key] = build_dataset(DATASETS.create(str(row["dataset"]), params), int(row["seed"]))
    dataset = cache[cache_key]
    expected = str(row.get("dataset_revision", "") or "")
    if expected and dataset.revision != expected:
        raise UserError(f"dataset {row['dataset']} changed since the sweep (revision {dataset.revision}, the table "
                        f"has {expected}): its inputs cannot be rebuilt; restore the data or rerun the sweep")
    return dataset


def _init_fields(cls: type) -> set[str] | None:
    """The constructor's field names of a dataclass spec; None for another class (its parameters kept as recorded)."""
    import dataclasses

    return {f.name for f in dataclasses.fields(cls) if f.init} if dataclasses.is_dataclass(cls) else None


def _check_alignment(rows: pd.DataFrame, ids: tuple[str, ...], targets: np.ndarray, what: str) -> None:
    """The stored arrays follow the dataset's first ``n_samples`` test ids; the table's targets must agree."""
    if len(targets) != len(ids):
        raise UserError(f"stored explanations of {what} hold {len(targets)} samples, the table {len(ids)}")
    position = {sample: i for i, sample in enumerate(ids)}
    scored = rows[rows["sample_id"].astype(str) != ""].drop_duplicates("sample_id")
    unknown = [s for s in scored["sample_id"].astype(str) if s not in position]
    if unknown:
        raise UserError(f"sample ids {unknown[:3]} of {what} are not in the rebuilt dataset; rerun the sweep")
    if "target" in scored:
        stored = targets[[position[s] for s in scored["sample_id"].astype(str)]]
        if not np.array_equal(stored.astype(np.int64), scored["target"].to_numpy(dtype=np.int64)):
            raise UserError(f"stored explanations of {what} do not match the table's targets; rerun the sweep")


def _sample_index(ids: tuple[str, ...], samples: int | Sequence[str] | None, what: str) -> list[int]:
    if samples is None:
        return list(range(len(ids)))
    if isinstance(samples, (int, np.integer)):
        return list(range(min(int(samples), len(ids))))
    position = {sample: i for i, sample in enumerate(ids)}
    missing = [str(s) for s in samples if str(s) not in position]
    if missing:
        raise UserError(f"samples {missing[:3]} were not explained in {what}; it has {ids[0]} ... {ids[-1]}")
    return [position[str(s)] for s in samples]
