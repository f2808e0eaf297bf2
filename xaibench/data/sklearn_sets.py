"""scikit-learn's bundled datasets: shipped inside the wheel, so they load offline."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import datasets as skd

from xaibench.data.base import DatasetSpec, make_dataset, scaling, split_arrays, standardize, unsplit_revision
from xaibench.registry import DATASETS
from xaibench.types import Dataset, Modality


@dataclass(frozen=True)
class _BundledTabular(DatasetSpec):
    """A standardised tabular set from ``sklearn.datasets``; ids are the row numbers of the bundled file."""

    modality = Modality.TABULAR
    loader = None  # set by subclasses

    def build(self, seed: int) -> Dataset:
        bunch = type(self).loader()  # type: ignore[misc]
        x = np.asarray(bunch.data, dtype=np.float64)
        y = np.asarray(bunch.target, dtype=np.int64)
        ids = np.array([f"{self.name}-{i:05d}" for i in range(len(y))])
        train, test = split_arrays(x, y, ids, test_size=self.test_size, seed=seed)
        raw_scaling = scaling(train["x"])
        train["x"], test["x"] = standardize(train["x"], test["x"])
        names = tuple(str(n) for n in bunch.feature_names)
        return make_dataset(self.name, self.modality, train, test, n_classes=int(y.max()) + 1, feature_names=names,
                            revision=unsplit_revision(x, y, ids, test_size=self.test_size), feature_scaling=raw_scaling,
                            class_names=tuple(str(n) for n in bunch.target_names))


@DATASETS.register("breast_cancer")
@dataclass(frozen=True)
class BreastCancer(_BundledTabular):
    """Wisconsin diagnostic breast cancer: 569 x 30, 2 classes."""

    loader = staticmethod(skd.load_breast_cancer)


@DATASETS.register("wine")
@dataclass(frozen=True)
class Wine(_BundledTabular):
    """Wine recognition: 178 x 13, 3 classes."""

    loader = staticmethod(skd.load_wine)


@DATASETS.register("iris")
@dataclass(frozen=True)
class Iris(_BundledTabular):
    """Fisher's iris: 150 x 4, 3 classes."""

    loader = staticmethod(skd.load_iris)


@DATASETS.register("digits")
@dataclass(frozen=True)
class Digits(DatasetSpec):
    """Handwritten digits, images ``(N, 1, 8, 8)`` scaled to [0, 1], 10 classes (1,797 samples)."""

    modality = Modality.IMAGE

    def build(self, seed: int) -> Dataset:
        bunch = skd.load_digits()
        x = (np.asarray(bunch.images, dtype=np.float64) / 16.0)[:, None, :, :]
        y = np.asarray(bunch.target, dtype=np.int64)
        ids = np.array([f"digits-{i:05d}" for i in range(len(y))])
        train, test = split_arrays(x, y, ids, test_size=self.test_size, seed=seed)
        return make_dataset(self.name, self.modality, train, test, n_classes=10,
                            revision=unsplit_revision(x, y, ids, test_size=self.test_size))
