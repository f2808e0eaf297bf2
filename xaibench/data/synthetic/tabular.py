"""Synthetic tabular classification whose label is a known function of a known feature subset.

In the spirit of XAI-Bench (Liu et al., 2021, "Synthetic Benchmarks for Scientific Research in Explainable Machine
Learning") and OpenXAI's synthetic data (Agarwal et al., 2022): informative features ``z ~ N(0, I)`` decide the
label through a declared score function; nuisance features are correlated copies of informative ones
(``rho * z_parent + sqrt(1 - rho^2) * eps``), so a model *could* use them but the label never does. The
ground-truth mask marks the informative features.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar, Literal

import numpy as np

from xaibench.data.base import DatasetSpec
from xaibench.data.synthetic._common import assemble, require
from xaibench.registry import DATASETS
from xaibench.types import Dataset, Modality

Variant = Literal["linear", "additive", "interaction"]

# Zero-mean shape functions for the additive variant (E[g(z)] = 0 for z ~ N(0, 1)), used round-robin.
ADDITIVE_SHAPES = (
    lambda z: np.sin(2.0 * z),
    lambda z: z**2 - 1.0,
    lambda z: np.abs(z) - math.sqrt(2.0 / math.pi),
    lambda z: np.tanh(2.0 * z),
)


def tabular_score(z: np.ndarray, variant: str, weights: np.ndarray) -> np.ndarray:
    """The declared score of the informative features; the label is ``score > 0``.

    Args:
        z: informative features ``(N, K)``.
        variant: ``linear``: ``sum_i w_i z_i``; ``additive``: ``sum_i w_i g_(i mod 4)(z_i)`` with the zero-mean
            shapes ``sin(2z), z^2 - 1, |z| - sqrt(2/pi), tanh(2z)``; ``interaction``: ``sum_j w_j z_2j z_2j+1``
            over consecutive pairs (an odd last feature enters linearly).
        weights: ``(K,)`` coefficients (nonzero, so every informative feature matters).

    Returns:
        ``(N,)`` scores.
    """
    if variant == "linear":
        return z @ weights
    if variant == "additive":
        return sum(weights[i] * ADDITIVE_SHAPES[i % len(ADDITIVE_SHAPES)](z[:, i]) for i in range(z.shape[1]))
    if variant == "interaction":
        k = z.shape[1]
        score = sum(weights[j] * z[:, j] * z[:, j + 1] for j in range(0, k - 1, 2))
        return score + (weights[k - 1] * z[:, k - 1] if k % 2 else 0.0)
    raise ValueError(f"unknown variant {variant!r}")


@dataclass(frozen=True)
class TabularTask:
    """Generated arrays before the split: ``x (N, F)``, ``y (N,)``, ``masks (N, F)`` plus the declared truth."""

    x: np.ndarray
    y: np.ndarray
    masks: np.ndarray
    informative: np.ndarray  # (K,) column indices of the informative features, ascending
    weights: np.ndarray  # (K,) coefficients of ``tabular_score``
    parents: np.ndarray  # (F,) informative column each nuisance column copies (-1 for informative columns)


@DATASETS.register("synthetic_tabular")
@dataclass(frozen=True)
class SyntheticTabular(DatasetSpec):
    """Binary tabular task ``y = 1[score(x_S) > 0]`` over a known informative subset ``S``.

    Attributes:
        n_samples: rows generated (before the split).
        n_features: total columns ``F``; ``n_informative`` of them (``K``) decide the label.
        variant: score function, see :func:`tabular_score`.
        correlation: ``rho``, correlation of each nuisance column with its informative parent.
        data_seed: seeds the content (features, weights, column positions); the cell seed only picks the split.
    """

    modality: ClassVar[Modality] = Modality.TABULAR
    has_ground_truth: ClassVar[bool] = True
    n_samples: int = 1000
    n_features: int = 10
    n_informative: int = 4
    variant: Variant = "linear"
    correlation: float = 0.5
    data_seed: int = 0

    @property
    def has_coefficients(self) -> bool:
        """The ``linear`` score is ``x @ coefficients``; the other variants have no coefficient vector."""
        return self.variant == "linear"

    def generate(self) -> TabularTask:
        """Deterministic from ``data_seed``: the arrays and the truth they were made from."""
        k, f = self.n_informative, self.n_features
        require(1 <= k <= f, f"dataset {self.name}: need 1 <= n_informative <= n_features, got {k} and {f}")
        require(-1.0 < self.correlation < 1.0, f"dataset {self.name}: correlation must be in (-1, 1)")
        require(self.n_samples >= 10, f"dataset {self.name}: n_samples must be at least 10")
        rng = np.random.default_rng(self.data_seed)
        z = rng.standard_normal((self.n_samples, k))
        weights = rng.uniform(1.0, 2.0, k) * rng.choice([-1.0, 1.0], k)
        informative = np.sort(rng.permutation(f)[:k])
        nuisance = np.setdiff1d(np.arange(f), informative)
        parents = np.full(f, -1)
        x = np.empty((self.n_samples, f))
        x[:, informative] = z
        rho = self.correlation
        for j, column in enumerate(nuisance):
            parents[column] = informative[j % k]
            x[:, column] = rho * z[:, j % k] + math.sqrt(1.0 - rho**2) * rng.standard_normal(self.n_samples)
        y = (tabular_score(z, self.variant, weights) > 0).astype(np.int64)
        masks = np.zeros_like(x)
        masks[:, informative] = 1.0
        return TabularTask(x, y, masks, informative, weights, parents)

    def build(self, seed: int) -> Dataset:
        """The split dataset; the ``linear`` variant carries the generator's coefficients (``true_coefficients``)."""
        task = self.generate()
        names = tuple(f"x{i:02d}" for i in range(self.n_features))
        dataset = assemble(self.name, self.modality, task.x, task.y, task.masks, n_classes=2,
                           test_size=self.test_size, seed=seed, feature_names=names)
        return replace(dataset, coefficients=true_coefficients(task, self.variant))


def true_coefficients(task: TabularTask, variant: str) -> tuple[float, ...]:
    """``(F,)`` coefficients of the class-1 score in the columns' order when the score is linear in ``x`` (the
    informative columns carry ``weights``, nuisance columns 0), else ``()``: the additive and interaction scores
    have no coefficient vector."""
    if variant != "linear":
        return ()
    coefficients = np.zeros(task.x.shape[1])
    coefficients[task.informative] = task.weights
    return tuple(float(c) for c in coefficients)
