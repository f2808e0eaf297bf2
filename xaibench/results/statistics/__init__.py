"""Statistics for comparing explanation methods, derived only from a results table and its summary.

- :func:`pairwise_tests`: paired Wilcoxon signed-rank tests (Wilcoxon 1945) between every two competitors on the
  same samples of one comparison group, Holm-corrected across the pairs of that group (Holm 1979), with the
  matched-pairs rank-biserial correlation (Kerby 2014) and the paired common-language effect size (McGraw & Wong
  1992: the chance that a competitor scores better than the other on a random sample).
- :func:`average_ranks`: mean rank per competitor over comparison groups, following each metric's direction.
- :func:`friedman_nemenyi`: Friedman test over comparison groups (blocks) and Nemenyi post-hoc with the
  critical difference of Demšar (2006), "Statistical comparisons of classifiers over multiple data sets", JMLR 7.
- :func:`metric_agreement`: Kendall's tau between the competitor rankings that two metrics induce in the same
  setting, averaged over settings (metrics disagreeing is a known open problem: Tomsett et al. 2020).
- :func:`control_checks` / :func:`control_first`: whether each method significantly beats each control (a method
  whose rows record ``"role": "control"``: ``random``, ``constant``, ``sobel``, a user's own; ``results/roles.py``),
  and metrics on which a control scores as well as the best method (controls are reference rows, never ranked).

scipy does the tests, scikit-posthocs the Nemenyi p-values; Holm's correction equals statsmodels'. Competitors are
:func:`xaibench.results.groups.competitor_labels` (a method with its parameters).

The unit of replication is the sample (``sample_id``, one dataset row), also with several seeds: two competitors
are paired on each (seed, sample) both scored, and a sample's paired difference is the mean of its differences
over those seeds. So a sample scored in three seeds is one pair, not three (seeds share the sample and mostly the
model's quirks, so their differences are not independent), and three identical seeds give the tests of one.

Modules: ``levels`` (``ALPHA``, ``TIE_RTOL``, ``snap_ties``), ``wilcoxon``, ``effect_sizes``, ``holm``, ``pairwise``
(the tests of each comparison group, ``versus_best``), ``ranks``, ``friedman`` (with ``permutation_null`` for few
groups), ``agreement``, ``controls``. scipy.stats is imported inside the functions that test: a sweep's printed
summary (``control_warnings``) needs none of it, and importing it costs about 0.7 CPU-s per process.
"""
from xaibench.results.statistics.agreement import (agreement_by_family, compared_metrics, has_metric_pairs,
                                                  metric_agreement)
from xaibench.results.statistics.controls import (CONTROL_COLUMNS, control_checks, control_first, control_warnings,
                                                 controls_ahead, metrics_where, nothing_to_rank)
from xaibench.results.statistics.effect_sizes import paired_effects
from xaibench.results.statistics.friedman import (PERMUTATION_P_BELOW, FriedmanResult, block_matrix, friedman_nemenyi,
                                                 nemenyi_critical_difference)
from xaibench.results.statistics.holm import holm
from xaibench.results.statistics.levels import ALPHA, TIE_RTOL, snap_ties
from xaibench.results.statistics.pairwise import (PAIR_COLUMNS, VERSUS_BEST_COLUMNS, pairwise_tests, per_sample_scores,
                                                 versus_best)
from xaibench.results.statistics.permutation_null import PERMUTATIONS, friedman_permutation_p, nemenyi_small_sample
from xaibench.results.statistics.ranks import (RANKED_MEAN, average_ranks, fractional_ranks, goodness, metric_order,
                                              ranked_mean, shared_sample_ranks, tied_goodness)
from xaibench.results.statistics.wilcoxon import wilcoxon_pair

__all__ = ["ALPHA", "CONTROL_COLUMNS", "PAIR_COLUMNS", "PERMUTATIONS", "PERMUTATION_P_BELOW", "RANKED_MEAN", "TIE_RTOL",
           "VERSUS_BEST_COLUMNS", "FriedmanResult", "agreement_by_family", "average_ranks", "block_matrix",
           "compared_metrics", "control_checks", "control_first", "control_warnings", "controls_ahead",
           "fractional_ranks", "friedman_nemenyi", "friedman_permutation_p", "goodness", "has_metric_pairs", "holm",
           "metric_agreement", "metric_order", "metrics_where", "nemenyi_critical_difference", "nemenyi_small_sample",
           "nothing_to_rank", "paired_effects", "pairwise_tests", "per_sample_scores", "ranked_mean",
           "shared_sample_ranks", "snap_ties", "tied_goodness", "versus_best", "wilcoxon_pair"]
