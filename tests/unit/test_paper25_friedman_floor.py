"""A Friedman test that cannot reject (3 methods on 2 groups: no exact p below 1/6) is said to be powerless, not
read as "no evidence that the average ranks differ"."""
import itertools

import numpy as np
import pandas as pd
import pytest

from xaibench.results import statistics as st
from xaibench.results.statistics.friedman import smallest_friedman_p


def _summary(orders: list[str]) -> pd.DataFrame:
    """One comparison group per order (best first), three methods, a higher-is-better metric."""
    return pd.DataFrame([{"comparison": f"g{g}", "competitor": m, "metric": "faith", "family": "faithfulness",
                          "higher_is_better": True, "mean": 1.0 - 0.3 * order.index(m)}
                         for g, order in enumerate(orders) for m in order])


def _exact_floor(k: int, n: int) -> float:
    """By enumeration: the share of the (k!)^n rank arrangements whose Friedman statistic is the largest."""
    sums = [np.sum(c, axis=0) for c in itertools.product(itertools.permutations(range(k)), repeat=n)]
    stat = np.array([np.sum((s - s.mean()) ** 2) for s in sums])
    return float(np.mean(stat >= stat.max() - 1e-9))


@pytest.mark.parametrize("k, n", [(3, 2), (3, 3), (4, 2), (2, 4)])
def test_the_smallest_p_is_that_of_every_group_ranking_alike(k, n):
    assert smallest_friedman_p(k, n) == pytest.approx(_exact_floor(k, n))


def test_two_groups_ranking_three_methods_alike_cannot_reject_and_the_reason_says_so():
    result = st.friedman_nemenyi(_summary(["abc", "abc"]))
    assert result.p_method == "exact permutation" and result.p_value == pytest.approx(1 / 6)
    reason = result.post_hoc_reason()
    assert "no p below 0.167 is possible" in reason and "cannot reject" in reason
    assert "no evidence that the average ranks differ" not in reason


def test_where_the_test_could_reject_a_non_rejection_is_still_no_evidence():
    result = st.friedman_nemenyi(_summary(["abc", "bca", "cab", "acb"]))  # 4 groups: the floor is 1/216
    assert result.p_value > 0.05
    assert result.post_hoc_reason().endswith("no evidence that the average ranks differ")
