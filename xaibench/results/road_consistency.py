"""MoRF/LeRF consistency of ROAD (Rong et al. 2022, "A Consistent and Efficient Evaluation Strategy for Attribution
Methods", ICML): do the two removal orders rank the explanation methods alike?

The paper's quantity (its RankCorrelation notebook, github.com/tleemann/road_evaluation): for each removal
percentage ``p``, rank the methods by their MoRF accuracy (the ``p`` most relevant pixels removed; lower = better)
and by their LeRF accuracy (the ``p`` most relevant pixels *kept*, i.e. ``100 - p`` least relevant removed; higher =
better), take the Spearman correlation of the two rankings, and average over the percentages. 1 means both orders
agree on every ranking; 0 means they are unrelated. The paper reports it per imputation: about 0 with a fixed
(channel-mean) value, about 0.5 with noisy linear imputation (CIFAR-10, eight IG/GB variants, no retraining).

Input: a results table of single-percentage ``road`` and ``road_lerf`` cells (``conf/experiment/paper_rong2022.yaml``
sweeps ``metrics.road.percentages`` one value at a time; each row's value is 1 if the model still predicts the
target, so a cell's mean is the accuracy at that percentage).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from xaibench.errors import UserError

MORF, LERF = "road", "road_lerf"
GROUP = ["model", "dataset", "seed", "imputation", "road_params"]
PAIRED = ("percentages", "order", "perturb_func")  # what differs between the cells one consistency compares


def removal_accuracies(table: pd.DataFrame) -> pd.Series:
    """Accuracy per (model, dataset, seed, imputation, road_params, metric, percentage, method): the mean over
    samples. ``road_params`` is the JSON of the other ROAD parameters that vary in the table (``abs``, ``noise``,
    ...; ``{}`` when none does), so settings a sweep varies besides the imputation are never pooled.

    Raises:
        UserError: no ok ROAD rows, or a cell scored several percentages at once (its value is then a mean over
            percentages and cannot be split).
    """
    rows = table[table["metric"].isin([MORF, LERF]) & (table["status"] == "ok")].copy()
    if rows.empty:
        raise UserError("no ok road/road_lerf rows in the table; run xaibench -m experiment=paper_rong2022")
    params = rows["params"].map(json.loads)
    if (params.map(lambda p: len(p["percentages"])) != 1).any():
        raise UserError("road consistency needs one removal percentage per cell: sweep metrics.road.percentages "
                        "one value at a time, as conf/experiment/paper_rong2022.yaml does")
    rows["imputation"] = params.map(lambda p: p["perturb_func"])
    rows["percentage"] = params.map(lambda p: float(p["percentages"][0]))
    rows["road_params"] = _varying(params)
    return rows.groupby(GROUP + ["metric", "percentage", "method"])["value"].mean()


def rank_agreement(morf: pd.Series, lerf: pd.Series) -> float:
    """Spearman correlation between the method ranking by MoRF (ascending) and by LeRF (descending); ties share
    their average rank. NaN when either order cannot tell the methods apart (all tied) or fewer than 3 methods."""
    methods = morf.index.intersection(lerf.index)
    if len(methods) < 3 or morf[methods].nunique() < 2 or lerf[methods].nunique() < 2:
        return float("nan")
    return float(spearmanr(-morf[methods].to_numpy(), lerf[methods].to_numpy()).statistic)


def morf_lerf_consistency(table: pd.DataFrame) -> pd.DataFrame:
    """The paper's MoRF/LeRF rank correlation per imputation, per percentage and averaged.

    Returns:
        One row per (model, dataset, seed, imputation, road_params) with a column per MoRF removal percentage
        ``p`` (paired with LeRF keeping the top ``p``, i.e. ``road_lerf`` at ``100 - p``), ``consistency`` (their
        mean over the percentages where both orders separate the methods) and ``n_methods``.

    Raises:
        UserError: see :func:`removal_accuracies`; or no MoRF percentage has its LeRF partner ``100 - p``.
    """
    accuracy = removal_accuracies(table)
    records = []
    for key, group in accuracy.groupby(level=GROUP):
        group = group.droplevel(GROUP)
        morf, lerf = _curves(group, MORF), _curves(group, LERF)
        record = dict(zip(GROUP, key))
        for p in sorted(morf):
            if 100.0 - p in lerf:
                record[p] = rank_agreement(morf[p], lerf[100.0 - p])
        per_percentage = [v for k, v in record.items() if k not in GROUP]
        if not per_percentage:
            raise UserError(f"{key}: no LeRF percentage 100-p for any MoRF percentage p; sweep symmetric "
                            "percentages (e.g. 10,30,50,70,90)")
        record["consistency"] = float(np.nanmean(per_percentage)) if np.isfinite(per_percentage).any() else np.nan
        record["n_methods"] = int(group.index.get_level_values("method").nunique())
        records.append(record)
    return pd.DataFrame.from_records(records).set_index(GROUP)


def _varying(params: pd.Series) -> pd.Series:
    """Per row: JSON of the parameters (other than the :data:`PAIRED` ones) that take several values in the table."""
    others = params.map(lambda p: {k: json.dumps(v, sort_keys=True) for k, v in p.items() if k not in PAIRED})
    keys = sorted({k for p in others for k in p})
    varying = [k for k in keys if len({p.get(k) for p in others}) > 1]
    return others.map(lambda p: "{" + ", ".join(f'"{k}": {p.get(k)}' for k in varying) + "}")


def _curves(group: pd.Series, metric: str) -> dict[float, pd.Series]:
    """``{percentage: accuracy per method}`` of one order."""
    if metric not in group.index.get_level_values("metric"):
        return {}
    by_metric = group.xs(metric, level="metric")
    return {p: s.droplevel("percentage") for p, s in by_metric.groupby(level="percentage")}
