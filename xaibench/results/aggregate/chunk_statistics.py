"""One chunk's per-configuration statistics (``partial_summary``): display names, family, direction, seed count,
status and message, NaN and error rates, mean, std, ``n``, model accuracy, and the values to bootstrap."""
from __future__ import annotations

import numpy as np
import pandas as pd

from xaibench.results.aggregate.bootstrap_values import bootstrap_shapes
from xaibench.results.aggregate.columns import GROUP, LABELS


def partial_summary(table: pd.DataFrame, config: list[str]) -> tuple[pd.DataFrame, list, tuple[np.ndarray, np.ndarray]]:
    """Per-configuration statistics of one chunk (sorted by the keys) before CIs, labels and ranks, the values to
    bootstrap (``bootstrap_shapes``), and each table row's configuration (its row of the statistics) and ok flag."""
    grouped = table.groupby(GROUP + config, sort=True, dropna=False)
    summary = grouped.size().reset_index().drop(columns=0)
    gid = grouped.ngroup().to_numpy()
    n_groups = len(summary)
    first = _first_rows(gid, n_groups)
    seeds = table["seed"].to_numpy() if "seed" in table.columns else np.zeros(len(table), dtype=np.int64)
    status = table["status"].astype(str)
    ok = _equals(status, "ok")

    summary = summary.assign(**_labels(table, first), **_descriptors(table, gid, first, seeds, status, ok))
    stats, shapes = _scores(table, gid, seeds, ok, n_groups)
    return summary.assign(**stats, **_model_quality(table, gid, seeds, n_groups)), shapes, (gid, ok)


def _first_rows(gid: np.ndarray, n_groups: int) -> np.ndarray:
    """The position of each group's first row (rows in table order)."""
    index = np.full(n_groups, -1)
    order = np.arange(gid.size)[::-1]
    index[gid[order]] = order  # the last assignment wins: the first row of each group
    return index


def _equals(column: pd.Series, value: str) -> np.ndarray:
    """``column == value`` as a numpy bool array (missing values are not equal)."""
    return (column == value).to_numpy(dtype=bool, na_value=False)


def _labels(table: pd.DataFrame, first: np.ndarray) -> dict:
    """Display names: each group's first row's label, its name where the label is empty."""
    out = {}
    for label, name in LABELS.items():
        source = table[label] if label in table.columns else table[name]
        names = table[name].iloc[first].astype(str).to_numpy()
        values = source.iloc[first].astype(str).fillna("").to_numpy()
        out[label] = np.where(values == "", names, values)
    return out


def _descriptors(table: pd.DataFrame, gid: np.ndarray, first: np.ndarray, seeds: np.ndarray, status: pd.Series,
                 ok: np.ndarray) -> dict:
    """Family, direction, seed count, status, message, NaN and error rates per group."""
    n_groups = len(first)
    n_seeds = pd.Series(seeds).groupby(gid, sort=True).nunique().to_numpy()
    counts = {s: np.bincount(gid[_equals(status, s)], minlength=n_groups)
              for s in ("error", "nan", "not_applicable")}  # rows per group with this status
    error = _equals(status, "error")
    error_seeds = pd.Series(seeds[error]).groupby(gid[error]).nunique()
    error_seeds = error_seeds.reindex(range(n_groups), fill_value=0).to_numpy()
    not_ok = np.flatnonzero(~ok)  # the first message of a row that is not ok, per group
    messages = pd.Series(table["message"].iloc[not_ok].astype(str).to_numpy())
    keep = (messages != "").to_numpy()
    message = messages[keep].groupby(gid[not_ok][keep]).first().reindex(range(n_groups), fill_value="")
    scored = (table["sample_id"].astype(str) != "").to_numpy(dtype=bool, na_value=True)
    family, higher = _first_values(table, gid, first)
    return {
        "n_seeds": n_seeds.astype(np.int64),
        "family": family,
        "higher_is_better": higher,
        "nan_rate": counts["nan"] / np.maximum(np.bincount(gid[scored], minlength=n_groups), 1),
        "error_rate": error_seeds / np.maximum(n_seeds, 1),
        "status": np.where(counts["error"] > 0, "error",
                           np.where(counts["not_applicable"] > 0, "not_applicable", "ok")),
        "message": message.to_numpy(dtype=object),
    }


def _first_values(table: pd.DataFrame, gid: np.ndarray, first: np.ndarray) -> tuple[pd.api.extensions.ExtensionArray,
                                                                                  np.ndarray]:
    """Each group's first family and direction that is not missing (the first row's, unless it lacks one)."""
    columns = table[["family", "higher_is_better"]].iloc[first]
    if columns.isna().to_numpy().any():
        columns = table.groupby(gid, sort=True)[["family", "higher_is_better"]].first()
    family = pd.array(columns["family"].to_numpy(dtype=object), dtype=_TEXT)  # typed as text even when all
    # missing: a chunk's summary would otherwise infer object, and a streamed summary's column with it
    return family, columns["higher_is_better"].astype(bool).to_numpy()


_TEXT = pd.Series(["text"]).dtype  # what pandas infers for a column of strings (str on pandas 3, else object)


def _scores(table: pd.DataFrame, gid: np.ndarray, seeds: np.ndarray, ok: np.ndarray,
            n_groups: int) -> tuple[dict, list]:
    """Mean over seeds of per-seed means, pooled std of each group's ok values, ``n`` (its distinct scored sample
    ids: a sample scored in several seeds counts once) and ``n_values`` (its ok values), and the groups' values
    for the bootstrap: ``[(shape, group ids, values (groups, ...))]``, one entry per shape (``bootstrap_shapes``)."""
    values = table["value"].to_numpy(dtype=np.float64)[ok]
    g, s = gid[ok], seeds[ok]
    sample = pd.factorize(table["sample_id"].astype(str)[ok], sort=True)[0]  # codes in the ids' sorted order
    order = np.lexsort((sample, s, g))  # deterministic whatever the row order of the table
    values, g, s, sample = values[order], g[order], s[order], sample[order]
    per_seed = pd.DataFrame({"g": g, "s": s, "v": values}).groupby(["g", "s"], sort=True)["v"].agg(["mean", "size"])
    mean = per_seed["mean"].groupby(level="g").mean().reindex(range(n_groups))
    std = pd.Series(values).groupby(g).std(ddof=1).reindex(range(n_groups))
    dense = _dense_ranks(g, sample)  # 0..N-1: the sample's place among its group's N distinct sample ids
    n = np.zeros(n_groups, dtype=np.int64)
    np.maximum.at(n, g, dense + 1)  # distinct sample ids: a sample scored in several seeds counts once
    stats = {"mean": mean.to_numpy(), "std": std.to_numpy(), "n": n,
             "n_values": np.bincount(g, minlength=n_groups)}
    return stats, bootstrap_shapes(values, dense, per_seed)


def _dense_ranks(g: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each value's code as ``0..N-1`` among the ``N`` distinct codes of its group (in code order)."""
    order = np.lexsort((codes, g))
    group, code = g[order], codes[order]
    new_group = np.r_[True, group[1:] != group[:-1]]
    dense = np.cumsum(new_group | np.r_[True, code[1:] != code[:-1]]) - 1
    ranks = np.empty_like(dense)
    ranks[order] = dense - np.maximum.accumulate(np.where(new_group, dense, 0))
    return ranks


def _model_quality(table: pd.DataFrame, gid: np.ndarray, seeds: np.ndarray, n_groups: int) -> dict:
    """Test accuracy (mean over seeds) and the underfit flag (set when any seed's model underfits)."""
    if "model_accuracy" not in table.columns:
        return {"model_accuracy": np.full(n_groups, np.nan), "model_flag": np.full(n_groups, "", dtype=object)}
    frame = pd.DataFrame({"g": gid, "s": seeds, "acc": table["model_accuracy"].to_numpy(dtype=np.float64)})
    accuracy = frame.groupby(["g", "s"])["acc"].first().groupby(level="g").mean().reindex(range(n_groups))
    underfit = (_equals(table["model_flag"].astype(str), "underfit") if "model_flag" in table.columns
                else np.zeros(len(table), dtype=bool))
    return {"model_accuracy": accuracy.to_numpy(),
            "model_flag": np.where(np.bincount(gid[underfit], minlength=n_groups) > 0, "underfit", "")}
