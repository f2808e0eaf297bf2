"""Synthetic time series: one planted motif per signal; the class is the motif, the mask is its time span.

Stands in for sensor/audio data, following the planted-motif benchmarks for time-series attribution
(Ismail et al., 2020, "Benchmarking Deep Learning Interpretability in Time Series Predictions"): the label is
decided only by the motif, placed at a random time and channel over a noisy background.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from xaibench.data.base import DatasetSpec
from xaibench.data.synthetic._common import assemble, balanced_labels, require
from xaibench.registry import DATASETS
from xaibench.types import Dataset, Modality

Motif = Literal["sine", "square", "triangle", "chirp"]


def motif_template(motif: str, length: int) -> np.ndarray:
    """``(length,)`` waveform in [-1, 1]: one sine period, a +1/-1 square pulse, a -1 -> 1 -> -1 triangle, or a
    linear chirp (frequency rising from 1 to 3 cycles)."""
    t = np.arange(length) / length
    if motif == "sine":
        return np.sin(2 * np.pi * t)
    if motif == "square":
        return np.where(t < 0.5, 1.0, -1.0)
    if motif == "triangle":
        return 1.0 - 4.0 * np.abs(t - 0.5)
    if motif == "chirp":
        return np.sin(2 * np.pi * (t + t**2))
    raise ValueError(f"unknown motif {motif!r}")


@dataclass(frozen=True)
class SeriesTask:
    """Generated arrays: ``x (N, C, T)``, ``y (N,)``, ``masks (N, C, T)``, motif (channel, start) ``(N, 2)``."""

    x: np.ndarray
    y: np.ndarray
    masks: np.ndarray
    placements: np.ndarray


@DATASETS.register("synthetic_timeseries")
@dataclass(frozen=True)
class SyntheticTimeSeries(DatasetSpec):
    """Signals ``(N, C, T)``: ``noise * eps + background * sin(slow, random phase) + amplitude * motif``.

    Attributes:
        n_samples: signals generated (classes balanced).
        length: ``T``; ``n_channels``: ``C`` (the motif lies in one random channel).
        motifs: one class per motif (see :func:`motif_template`); ``motif_length`` time steps each.
        noise, background, amplitude: Gaussian noise std, slow-sine amplitude, motif amplitude.
        data_seed: seeds the content; the cell seed only picks the split.
    """

    modality: ClassVar[Modality] = Modality.TIME_SERIES
    has_ground_truth: ClassVar[bool] = True
    n_samples: int = 600
    length: int = 128
    n_channels: int = 1
    motifs: tuple[Motif, ...] = ("sine", "square", "triangle")
    motif_length: int = 24
    noise: float = 0.3
    background: float = 0.5
    amplitude: float = 1.5
    data_seed: int = 0

    def generate(self) -> SeriesTask:
        require(len(self.motifs) >= 2, f"dataset {self.name}: need at least two motifs (one class each)")
        require(2 <= self.motif_length <= self.length,
                f"dataset {self.name}: motif_length must be in [2, length={self.length}]")
        require(self.n_channels >= 1, f"dataset {self.name}: n_channels must be positive")
        rng = np.random.default_rng(self.data_seed)
        templates = [motif_template(m, self.motif_length) for m in self.motifs]
        y = balanced_labels(rng, self.n_samples, len(templates))
        shape = (self.n_samples, self.n_channels, self.length)
        steps = np.arange(self.length)
        periods = rng.uniform(0.5 * self.length, 2.0 * self.length, (self.n_samples, self.n_channels, 1))
        phases = rng.uniform(0, 2 * np.pi, (self.n_samples, self.n_channels, 1))
        x = self.noise * rng.standard_normal(shape) + self.background * np.sin(2 * np.pi * steps / periods + phases)
        masks = np.zeros(shape)
        placements = np.zeros((self.n_samples, 2), dtype=np.int64)
        for i, label in enumerate(y):
            channel = int(rng.integers(0, self.n_channels))
            start = int(rng.integers(0, self.length - self.motif_length + 1))
            span = slice(start, start + self.motif_length)
            x[i, channel, span] += self.amplitude * templates[label]
            masks[i, channel, span] = 1.0
            placements[i] = channel, start
        return SeriesTask(x, y, masks, placements)

    def build(self, seed: int) -> Dataset:
        task = self.generate()
        return assemble(self.name, self.modality, task.x, task.y, task.masks, n_classes=len(self.motifs),
                        test_size=self.test_size, seed=seed)
