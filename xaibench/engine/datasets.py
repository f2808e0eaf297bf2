"""Building a cell's dataset: the one stage of a cell that the report and ``compare`` redo outside a sweep.

Kept apart from ``engine.stages`` (models, explanations, scores), which imports Quantus and captum: the report's
galleries rebuild a dataset to show its test samples, and with this module alone they import neither.
"""
from __future__ import annotations

from xaibench.data.base import DatasetSpec
from xaibench.engine.seeding import derive_seed, seed_everything
from xaibench.types import Dataset


def build_dataset(spec: DatasetSpec, seed: int) -> Dataset:
    """``spec.build(seed)`` with every RNG seeded from the dataset's name and ``seed`` first (the same split and
    samples in every process)."""
    seed_everything(derive_seed("dataset", spec.name, seed))
    return spec.build(seed)
