"""A value change (``values.ValueChange``) in words, as every output says it: the finding's sentence
(``describe_change``), how many samples moved (``moved_text``), why a large change is not significant
(``why_not_significant``) and the test that decided (``describe_test``: the report's and JUnit's ``test`` column)."""
from __future__ import annotations

import numpy as np

from xaibench.results.compare.policy import Tolerance
from xaibench.results.compare.values import WORSE, ValueChange, wilcoxon_min_pairs


def describe_change(change: ValueChange, unconfirmed: str = "", tol: Tolerance | None = None) -> str:
    """One sentence on a value change; ``unconfirmed``: the direction ("worse"/"better") of a large change whose
    test is not significant (``tol``: the tolerance that applied)."""
    word = unconfirmed or ("worse" if change.verdict == WORSE else "better")
    if change.n_beyond and not unconfirmed:  # elementwise: one value beyond its own bound decides, not the mean
        word += (f" (elementwise: {change.n_beyond} of {change.n} values beyond their bound, "
                 f"{'at least one' if change.verdict == WORSE else 'none'} worse)")
    relative = f" ({change.relative:+.1%})" if np.isfinite(change.relative) else ""
    text = (f"{word}: mean {change.baseline_mean:.4g} -> {change.current_mean:.4g}, "
            f"delta {change.delta:+.4g}{relative} over {change.n} pairs{moved_text(change)}")
    if not unconfirmed:
        return text
    return (f"{text}: beyond the size bound {change.tolerance:.3g} but not significant"
            f"{why_not_significant(change, tol)}, passed as noise")


def moved_text(change: ValueChange) -> str:
    """``; 4 of 10 samples beyond tolerance, all worse`` (the samples the tests weigh), or "" when none is."""
    moved = change.n_worse + change.n_better
    if not moved:
        return ""
    ways = (f"all {'worse' if change.n_worse else 'better'}" if not (change.n_worse and change.n_better)
            else f"{change.n_worse} worse, {change.n_better} better")
    return f"; {moved} of {change.n_samples} samples beyond tolerance, {ways}"


def why_not_significant(change: ValueChange, tol: Tolerance | None) -> str:
    """Why a large change is not significant: too few samples moved one way for the test to tell them from
    samples that flip on another machine (or they moved both ways)."""
    p_value = f"one-sided p={change.p_value:.2g}" if change.p_value is not None else ""
    moved = max(change.n_worse, change.n_better)
    if tol is None or tol.mode != "wilcoxon" or moved >= wilcoxon_min_pairs(tol.alpha):
        return f" ({p_value})" if p_value else ""
    return (f" ({p_value}: at least {wilcoxon_min_pairs(tol.alpha)} samples must move one way at "
            f"alpha={tol.alpha:g}; fewer can be samples that flip on another machine)")


def describe_test(change: ValueChange, tol: Tolerance) -> str:
    """The test that decided a change and what it saw: ``wilcoxon p=0.00098 one-sided (10 of 10 samples beyond
    tol.: all worse)``, a bootstrap CI, the elementwise count, or why no test ran."""
    moved = f"{change.n_worse + change.n_better} of {change.n_samples} samples beyond tol.{_ways(change)}"
    if change.note:
        return f"{tol.mode} (n={change.n_samples}; {change.note})"
    if change.p_value is not None:
        return f"wilcoxon p={change.p_value:.2g} one-sided ({moved})"
    if change.ci is not None:
        level = f"{1 - 2 * tol.alpha:.0%}"
        return f"bootstrap {level} CI [{change.ci[0]:.3g}, {change.ci[1]:.3g}] ({moved})"
    if tol.mode == "elementwise":
        return f"elementwise: {change.n_beyond}/{change.n} beyond"
    return f"mean (n={change.n})"


def _ways(change: ValueChange) -> str:
    """``: all worse``, ``: 3 worse, 1 better`` (which way the samples beyond tolerance moved), or ""."""
    if change.n_worse and change.n_better:
        return f": {change.n_worse} worse, {change.n_better} better"
    return ": all worse" if change.n_worse else ": all better" if change.n_better else ""
