"""Controls (reference rows, never ranked): whether each method beats each control, where a control scores as well
as the best method, and the warnings that say so."""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from xaibench.metrics.spec import Family
from xaibench.results.roles import summary_controls, table_controls
from xaibench.results.statistics.levels import ALPHA, snap_ties
from xaibench.results.statistics.pairwise import pairwise_tests
from xaibench.results.statistics.ranks import ranked_mean

# What each built-in control's map is, and why a control can be first (by whether the metric is a stability metric):
# the top warning and the tables' ``c`` lines (report/tables/layouts.py) say the same. The top warning said "a map
# that ignores the input (the constant control) is perfectly stable by construction" of sobel and random too.
CONTROL_MAPS = {"constant": "the same map for every input", "sobel": "an edge map of the input, blind to the model",
                "random": "noise drawn independently of the model"}
WHY_CONTROL_FIRST = {True: "A map that does not depend on the model changes little (constant: not at all) when the "
                           "input is perturbed, so a stability metric rates it well without it explaining the model: "
                           "read stability together with faithfulness and randomisation.",
                     False: "On this data the metric does not tell the methods apart from a reference that does not "
                            "explain the model."}


def named_controls(controls: Sequence[str]) -> str:
    """``the control sobel (an edge map of the input, blind to the model)``, ``the controls a (...), b``."""
    named = ", ".join(f"{name} ({CONTROL_MAPS[name]})" if name in CONTROL_MAPS else name for name in controls)
    return f"the control{'s' if len(controls) > 1 else ''} {named}" if controls else "a control"


CONTROL_COLUMNS = ["comparison", "model", "dataset", "metric", "method", "control", "n", "p_holm", "rank_biserial",
                   "beats"]


def control_checks(table: pd.DataFrame, summary: pd.DataFrame | None = None, *,
                   pairs: pd.DataFrame | None = None, alpha: float = ALPHA) -> pd.DataFrame:
    """Per comparison group (one metric) x non-control competitor x control: does the method beat the control?

    Controls are the competitors whose rows record the control role (``roles.table_controls``; the built-in
    names in a table written before roles were recorded). ``beats`` is True when the paired Wilcoxon test
    (Holm-corrected over the group's pairs) is significant at ``alpha`` and favours the method. ``summary`` is
    accepted for the published interface and unused; pass ``pairs`` (:func:`pairwise_tests` output) to reuse tests
    already run.
    """
    del summary
    pairs = pairwise_tests(table, alpha=alpha) if pairs is None else pairs
    controls = table_controls(table)
    records = []
    for row in pairs.itertuples(index=False):
        for method, control, sign in ((row.method_a, row.method_b, 1), (row.method_b, row.method_a, -1)):
            if control in controls and method not in controls:
                records.append({"comparison": row.comparison, "model": row.model, "dataset": row.dataset,
                                "metric": row.metric, "method": method, "control": control, "n": row.n,
                                "p_holm": row.p_holm, "rank_biserial": sign * row.rank_biserial,
                                "beats": bool(row.winner == method)})
    return pd.DataFrame.from_records(records, columns=CONTROL_COLUMNS)


def controls_ahead(summary: pd.DataFrame) -> pd.Series:
    """Whether each row is a control that scores at least as well as the best method of its comparison group.

    Controls are not ranked (:func:`shared_sample_ranks`): the best is the best non-control method (``rank`` 1).
    A control's ranked mean (:func:`ranked_mean`: over the samples every competitor of the group scored, or the
    ``mean`` of a summary without ``shared_mean``) equal to the best's up to float rounding (:data:`TIE_RTOL`) or
    better is ahead: the constant control on a stability metric, or a metric that does not discriminate.
    """
    if summary.empty:
        return pd.Series(False, index=summary.index, dtype=bool)
    control = summary["competitor"].astype(str).isin(summary_controls(summary)).to_numpy(dtype=bool)
    mean = ranked_mean(summary).astype("float64")
    oriented = mean.where(summary["higher_is_better"].astype(bool), -mean)
    snapped = snap_ties(oriented, summary["comparison"])  # a control tied with the best up to rounding is ahead
    best = snapped.where(summary["rank"].eq(1).fillna(False).to_numpy(dtype=bool)).groupby(
        summary["comparison"]).transform("max")
    return pd.Series(control & (snapped >= best).fillna(False).to_numpy(dtype=bool), index=summary.index)


def control_first(summary: pd.DataFrame) -> pd.DataFrame:
    """Comparison groups in which a control (by its rows' role: the summary's ``role`` column) scores at least as
    well as the best method (:func:`controls_ahead`; controls are not ranked): the metric does not discriminate
    there, or, on a stability metric, a map that ignores the input is stable by construction.

    Returns:
        Columns ``comparison``, ``model_label``, ``dataset_label``, ``metric``, ``control``.
    """
    columns = ["comparison", "model_label", "dataset_label", "metric", "control"]
    if summary.empty:
        return pd.DataFrame(columns=columns)
    first = summary[controls_ahead(summary)]
    out = first.assign(control=first["competitor"])
    return out[columns].sort_values(["metric", "model_label", "dataset_label"], ignore_index=True)


def control_warnings(summary: pd.DataFrame) -> list[str]:
    """One line per reason (stable by construction on a stability metric, else not discriminating) for which a
    control scores at least as well as the best method somewhere, naming the metrics and where: the constant
    control on five stability metrics gave five lines of the same words, at the top of every report. A summary
    whose scored rows are all controls gets one line instead: there is nothing to rank (:func:`nothing_to_rank`)."""
    if nothing_to_rank(summary):
        return [nothing_to_rank(summary)]
    first = control_first(summary)
    families = summary.drop_duplicates("metric").set_index("metric")["family"] if "family" in summary else {}
    stability = first["metric"].map(lambda metric: families.get(metric) == Family.STABILITY)
    lines = []
    for stable in (True, False):
        rows = first[stability == stable]
        if rows.empty:
            continue
        rows = rows.sort_values(["metric", "dataset_label", "model_label"], kind="stable")
        # "dataset / model", as every table, caption and Warning (c) line names a setting (it read "mlp/iris")
        places = [(r.metric, f"{r.dataset_label} / {r.model_label} ({r.control})") for r in rows.itertuples()]
        single = rows["metric"].nunique() == 1
        if stable:
            named = named_controls(list(dict.fromkeys(rows["control"].astype(str))))
            why = f"{named[0].upper()}{named[1:]}: {WHY_CONTROL_FIRST[True][0].lower()}{WHY_CONTROL_FIRST[True][1:-1]}"
        else:
            why = (f"{'this metric does' if single else 'these metrics do'} not discriminate between methods on this "
                   "data")
        lines.append(f"WARNING: a control matches or beats the best method on {metrics_where(places)}: {why}")
    return lines


def nothing_to_rank(summary: pd.DataFrame) -> str:
    """The line every output prints where each scored row of ``summary`` is a control (a sweep of
    ``method=random,constant``): controls are never ranked, so no column has a best, a ``†`` or a rank; "" where
    some method under test has a mean (or nothing has one)."""
    if summary.empty or "mean" not in summary.columns:
        return ""
    scored = summary[summary["mean"].notna()]
    names = scored["competitor"] if "competitor" in scored.columns else scored["method"]
    controls = summary_controls(summary)
    if scored.empty or not names.astype(str).isin(controls).all():
        return ""
    shown = ", ".join(sorted(set(names.astype(str))))
    return (f"NOTE: nothing to rank: every scored row is a control ({shown}), a reference row that is never ranked; "
            "no column has a best method, a † or a rank, and there are no average ranks, Friedman tests or tests "
            "against a best. Run the methods to compare beside the controls (e.g. method=saliency,random).")


def metrics_where(places: Sequence[tuple[str, str]]) -> str:
    """``(metric, where)`` pairs as one phrase, metrics that share every place named together, in the order the
    metrics first come: ``a, b for iris / mlp, digits / cnn; c for iris / mlp``."""
    where: dict[str, list[str]] = {}
    for metric, place in places:
        where.setdefault(metric, [])
        if place not in where[metric]:
            where[metric].append(place)
    together: dict[tuple[str, ...], list[str]] = {}
    for metric, metric_places in where.items():
        together.setdefault(tuple(metric_places), []).append(metric)
    return "; ".join(f"{', '.join(metrics)} for {', '.join(shared)}" for shared, metrics in together.items())
