"""Synthetic images: one planted shape per image in Gaussian noise; the class is the shape, the mask is the shape.

A controlled localisation setting in the spirit of ground-truth benchmarks such as CLEVR-XAI (Arras et al., 2022,
"CLEVR-XAI: A benchmark dataset for the ground truth evaluation of neural network explanations"): the only
evidence for the label lies on the object's pixels, so the ground-truth mask is exactly those pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from xaibench.data.base import DatasetSpec
from xaibench.data.synthetic._common import assemble, balanced_labels, require
from xaibench.registry import DATASETS
from xaibench.types import Dataset, Modality

Shape = Literal["hbar", "vbar", "square", "cross", "frame"]


def shape_template(shape: str) -> np.ndarray:
    """Binary ``(h, w)`` stencil of a shape: ``hbar`` 2x10, ``vbar`` 10x2, ``square`` 6x6, ``cross`` 8x8 plus
    with 2-pixel arms, ``frame`` 8x8 hollow square with a 2-pixel border."""
    if shape == "hbar":
        return np.ones((2, 10))
    if shape == "vbar":
        return np.ones((10, 2))
    if shape == "square":
        return np.ones((6, 6))
    if shape == "cross":
        stencil = np.zeros((8, 8))
        stencil[3:5, :] = 1.0
        stencil[:, 3:5] = 1.0
        return stencil
    if shape == "frame":
        stencil = np.ones((8, 8))
        stencil[2:-2, 2:-2] = 0.0
        return stencil
    raise ValueError(f"unknown shape {shape!r}")


@dataclass(frozen=True)
class ImageTask:
    """Generated arrays: ``x (N, 1, S, S)``, ``y (N,)``, ``masks (N, 1, S, S)``, object top-left corners ``(N, 2)``."""

    x: np.ndarray
    y: np.ndarray
    masks: np.ndarray
    corners: np.ndarray


@DATASETS.register("synthetic_image")
@dataclass(frozen=True)
class SyntheticImage(DatasetSpec):
    """Grey images ``(N, 1, S, S)``: ``x = noise * eps + intensity * mask``, class = index of the planted shape.

    Attributes:
        n_samples: images generated (classes balanced).
        image_size: ``S``.
        shapes: one class per shape (see :func:`shape_template`).
        noise: standard deviation of the Gaussian background.
        intensity: value added on the object's pixels.
        data_seed: seeds the content; the cell seed only picks the split.
    """

    modality: ClassVar[Modality] = Modality.IMAGE
    has_ground_truth: ClassVar[bool] = True
    n_samples: int = 600
    image_size: int = 32
    shapes: tuple[Shape, ...] = ("hbar", "vbar", "square")
    noise: float = 0.5
    intensity: float = 1.5
    data_seed: int = 0

    def generate(self) -> ImageTask:
        size = self.image_size
        templates = [shape_template(s) for s in self.shapes]
        require(len(templates) >= 2, f"dataset {self.name}: need at least two shapes (one class each)")
        require(size >= max(max(t.shape) for t in templates),
                f"dataset {self.name}: image_size {size} is smaller than the largest shape")
        rng = np.random.default_rng(self.data_seed)
        y = balanced_labels(rng, self.n_samples, len(templates))
        masks = np.zeros((self.n_samples, 1, size, size))
        corners = np.zeros((self.n_samples, 2), dtype=np.int64)
        for i, label in enumerate(y):
            stencil = templates[label]
            h, w = stencil.shape
            top, left = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
            masks[i, 0, top : top + h, left : left + w] = stencil
            corners[i] = top, left
        x = self.noise * rng.standard_normal(masks.shape) + self.intensity * masks
        return ImageTask(x, y, masks, corners)

    def build(self, seed: int) -> Dataset:
        task = self.generate()
        return assemble(self.name, self.modality, task.x, task.y, task.masks, n_classes=len(self.shapes),
                        test_size=self.test_size, seed=seed)
