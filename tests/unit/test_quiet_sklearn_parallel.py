"""The per-thread quiet filter (``xaibench/metrics/quiet.py``) and scikit-learn's ``Parallel``: scikit-learn >= 1.9
copies ``warnings.filters`` into its jobs reading each message filter's ``pattern``, which the quiet filter lacked,
so after the first quiet block every forest ``predict_proba`` failed (a random forest with LIME: an error cell
"AttributeError: '_ThreadRules' object has no attribute 'pattern' (at parallel.py:180)")."""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.utils.parallel import Parallel, delayed

from xaibench.metrics.quiet import ignore_warnings, quiet


def _warns(i: int) -> int:
    warnings.warn("from a job", UserWarning)
    return i * i


def test_scikit_learn_parallel_jobs_run_inside_and_after_quiet_blocks():
    x = np.random.default_rng(0).random((40, 3))
    forest = RandomForestClassifier(n_estimators=4, random_state=0).fit(x, (x[:, 0] > 0.5).astype(int))
    expected = forest.predict_proba(x[:5])
    with quiet() as out, ignore_warnings("nothing"):
        assert Parallel(n_jobs=1)(delayed(_warns)(i) for i in range(3)) == [0, 1, 4]
        np.testing.assert_array_equal(forest.predict_proba(x[:5]), expected)
        print("kept")
    assert out.getvalue() == "kept\n"
    np.testing.assert_array_equal(forest.predict_proba(x[:5]), expected)  # the filter stays installed after
    with warnings.catch_warnings(record=True) as caught:  # outside quiet blocks a job's warning is shown
        warnings.simplefilter("always")
        assert Parallel(n_jobs=1)(delayed(_warns)(i) for i in range(2)) == [0, 1]
    assert [str(w.message) for w in caught] == ["from a job", "from a job"]
