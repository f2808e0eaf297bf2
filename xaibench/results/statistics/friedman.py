"""Friedman's test over comparison groups and Nemenyi's post-hoc with the critical difference of Demšar (2006),
"Statistical comparisons of classifiers over multiple data sets", JMLR 7."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from xaibench.results.statistics.levels import ALPHA
from xaibench.results.statistics.permutation_null import friedman_permutation_p, nemenyi_small_sample
from xaibench.results.statistics.ranks import goodness, tied_goodness

@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over blocks (comparison groups) x competitors, Nemenyi post-hoc and its critical difference."""

    statistic: float
    p_value: float
    avg_ranks: pd.Series  # competitor -> mean rank, 1 = best, ascending
    cd: float  # Nemenyi critical difference at ``alpha`` (Demšar 2006, sec. 3.2.2)
    pairwise_p: pd.DataFrame  # competitor x competitor Nemenyi p-values
    n_blocks: int
    alpha: float = ALPHA
    dropped: tuple[str, ...] = field(default=())  # competitors left out: missing from most blocks
    note: str = ""  # why a test could not be run, else ""
    p_method: str = "chi-square"  # how ``p_value`` was computed (:func:`friedman_permutation_p` below 10 blocks)
    # Below 10 blocks: the chance, under Friedman's permutation null, that some two average ranks lie further apart
    # than ``cd`` (the CD's real familywise error; Demšar's CD is a large-sample approximation), and the exact CD
    # whose familywise error is at most ``alpha`` (:func:`nemenyi_small_sample`). NaN from 10 blocks on.
    cd_familywise_error: float = float("nan")
    cd_exact: float = float("nan")

    def post_hoc_reason(self) -> str:
        """Why no post-hoc comparison (Nemenyi, a CD diagram) should be shown for this scope, or "" when the
        Friedman test rejects equal average ranks at ``alpha``: Demšar (2006, sec. 3.2.2) proceeds to the post-hoc
        test only then; drawn after a non-rejection, a CD diagram suggests differences the data do not show. Nor
        where the CD is at least ``k - 1``, the largest possible difference of two average ranks (4 methods on 2
        groups: CD 3.32): the diagram joins every method whatever the data, its CD bar past the axis."""
        if len(self.avg_ranks) < 2 or self.n_blocks < 2 or not np.isfinite(self.cd):
            return "needs two methods ranked in at least two groups"
        if not np.isfinite(self.p_value):
            return self.note or "the Friedman test could not be run"
        if self.p_value >= self.alpha:
            k, floor = len(self.avg_ranks), smallest_friedman_p(len(self.avg_ranks), self.n_blocks)
            if floor >= self.alpha:  # the test could not have rejected: say so, not "no evidence"
                return (f"Friedman p = {self.p_value:.3g} >= alpha = {self.alpha:g}; with {k} methods on "
                        f"{self.n_blocks} groups no p below {floor:.3g} is possible (every group ranking them "
                        "alike), so the test cannot reject here: too few groups, not evidence that the ranks agree")
            return (f"Friedman p = {self.p_value:.3g} >= alpha = {self.alpha:g}: no evidence that the average ranks "
                    "differ")
        k = len(self.avg_ranks)
        if self.cd >= k - 1:  # average ranks lie in [1, k]: no two can be further apart than k - 1
            return (f"CD = {self.cd:.2f} >= k - 1 = {k - 1} on {self.n_blocks} groups: no two of the {k} methods can "
                    "be separated, whatever their ranks")
        return ""


def smallest_friedman_p(k: int, n_blocks: int) -> float:
    """The smallest exact (permutation) Friedman p that ``k`` competitors on ``n_blocks`` groups can give:
    ``(k!)^-(n_blocks - 1)``, reached when every group ranks them in one order without ties (the ``k!`` common
    orders are the only arrangements with the largest statistic). 3 methods on 2 groups: 1/6, so at alpha = 0.05
    the test cannot reject whatever the data (paper25)."""
    import math

    if k < 2 or n_blocks < 1:
        return 1.0
    return float(math.factorial(k) ** -(n_blocks - 1))


# With fewer comparison groups than this the Friedman p is a permutation p (Friedman 1937's exact null: every block's
# ranks equally likely in any order), not scipy's chi-square approximation, which is off by up to 2x there (3
# methods on 3 groups: chi2 = 4.67 gives 0.097 where the exact p is 0.194).
PERMUTATION_P_BELOW = 10


def nemenyi_critical_difference(k: int, n_blocks: int, alpha: float = ALPHA) -> float:
    """Demšar (2006) eq. for the Nemenyi test: ``CD = q_alpha sqrt(k (k + 1) / (6 N))``.

    ``q_alpha`` is the studentized range quantile for ``k`` groups and infinite degrees of freedom divided by
    sqrt(2) (Demšar's Table 5: 2.343 for k=3, 2.728 for k=5 at alpha=0.05).
    """
    from scipy import stats

    q_alpha = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    return float(q_alpha * np.sqrt(k * (k + 1) / (6.0 * n_blocks)))


def block_matrix(summary: pd.DataFrame, metric: str | None = None, family: str | None = None
                 ) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Complete blocks x competitors matrix of goodness (larger = better) for a metric, a family, or all.

    Competitors missing from more than half of the blocks are dropped (and named), then incomplete blocks.
    """
    rows = summary[goodness(summary).notna()]
    if metric is not None:
        rows = rows[rows["metric"] == metric]
    if family is not None:
        rows = rows[rows["family"] == family]
    matrix = pd.DataFrame({"comparison": rows["comparison"], "method": rows["competitor"], "g": tied_goodness(rows)})
    matrix = matrix.pivot_table(index="comparison", columns="method", values="g", aggfunc="first")
    keep = matrix.notna().mean() > 0.5
    dropped = tuple(sorted(matrix.columns[~keep]))
    return matrix.loc[:, keep].dropna(), dropped


def friedman_nemenyi(summary: pd.DataFrame, metric: str | None = None, family: str | None = None, *,
                     alpha: float = ALPHA) -> FriedmanResult:
    """Friedman test of equal average ranks over comparison groups, then Nemenyi's all-pairs post-hoc.

    Args:
        summary: :func:`summarize` output; blocks are its comparison groups (one metric each), restricted to
            ``metric`` or ``family`` when given.
    """
    from scipy import stats

    import scikit_posthocs as sp

    matrix, dropped = block_matrix(summary, metric, family)
    n, k = matrix.shape
    ranks = (-matrix).rank(axis=1, method="average").mean().sort_values()
    empty_p = pd.DataFrame(np.nan, index=matrix.columns, columns=matrix.columns)
    if k < 3 or n < 2:
        note = f"Friedman needs >= 3 competitors and >= 2 groups with every one scored (have {k} competitors and {n} groups)"
        cd = nemenyi_critical_difference(k, n, alpha) if k >= 2 and n >= 1 else float("nan")
        return FriedmanResult(float("nan"), float("nan"), ranks, cd, empty_p, n, alpha, dropped, note)
    statistic, p_value = stats.friedmanchisquare(*(matrix[c].to_numpy() for c in matrix.columns))
    p_method, cd = "chi-square", nemenyi_critical_difference(k, n, alpha)
    cd_familywise_error = cd_exact = float("nan")
    if n < PERMUTATION_P_BELOW and np.isfinite(statistic):
        p_value, p_method = friedman_permutation_p(matrix.to_numpy())
        cd_familywise_error, cd_exact = nemenyi_small_sample(matrix.to_numpy(), cd, alpha=alpha)
    pairwise = sp.posthoc_nemenyi_friedman(matrix.to_numpy())
    pairwise.index, pairwise.columns = matrix.columns, matrix.columns
    return FriedmanResult(float(statistic), float(p_value), ranks, cd, pairwise, n, alpha, dropped,
                          p_method=p_method, cd_familywise_error=cd_familywise_error, cd_exact=cd_exact)
