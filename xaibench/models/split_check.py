"""A model used as given (pre-fitted weights or estimator) meets the seed's train/test split.

The suite's splits are drawn from the run's seed (bundled sets, CSV tables without ``split_column``, arrays, image
folders), and bundled tabular sets are standardised with their training split's statistics. A model the suite
trains is fitted on each seed's own training split. A model used as given was fitted once, on one split: under
another seed, its test rows can be rows it learnt from (its accuracy and every score then describe training data)
and the standardised inputs shift. So a run on a seed whose test split differs from seed 0's says so, once.
"""
from __future__ import annotations

from xaibench.data.base import DatasetSpec
from xaibench.models.base import ModelSpec
from xaibench.types import Dataset

_SEED0_TEST_IDS: dict[str, frozenset[str]] = {}


def warn_if_the_split_moves(model: ModelSpec, spec: DatasetSpec, dataset: Dataset, seed: int) -> None:
    """One warning line when ``model`` is used as given and ``seed``'s test split is not seed 0's."""
    if model.trains_weights() or seed == 0:
        return
    from xaibench.data.user.encoding import warn_once
    from xaibench.engine.datasets import build_dataset

    key = repr(spec)
    if key not in _SEED0_TEST_IDS:
        _SEED0_TEST_IDS[key] = frozenset(build_dataset(spec, 0).test.ids)
    if frozenset(dataset.test.ids) == _SEED0_TEST_IDS[key]:
        return
    warn_once(f"model {model.name} is used as given, but seed {seed} draws another train/test split of "
              f"{dataset.name} than seed 0: its test rows may be rows the model was fitted on (and standardised "
              "features move with the split); keep seed=0 with the split the model was fitted on, or fix the split "
              "(csv_table: dataset.split_column)")
