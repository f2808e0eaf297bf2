"""Synthetic shapes on smooth fields: the class is the *outline* of a flat object of random contrast.

Made for ROAD's class-information leak (Rong et al., 2022, "A Consistent and Efficient Evaluation Strategy for
Attribution Methods", ICML): on natural images a region removed by a fixed value (each image's channel mean) still
draws the object's contour, so its shape reveals the class. Here the object is a flat offset of random sign and
size on a smooth, non-flat background, so a model learns the class from the outline whatever the object's
brightness; a flat fill of the object's pixels by the channel mean is then itself an object of the same shape
(wherever the local background differs from that mean), while interpolating the pixels from their neighbours
(noisy linear imputation) continues the smooth background and leaves no outline. Unlike ``synthetic_image``
(Gaussian-noise background, fixed bright objects) the fill value matters: that set's channel mean looks like
background.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from scipy.ndimage import gaussian_filter

from xaibench.data.base import DatasetSpec
from xaibench.data.synthetic._common import assemble, balanced_labels, require
from xaibench.registry import DATASETS
from xaibench.types import Dataset, Modality

Outline = Literal["square", "disc", "cross", "triangle", "ring"]
MAX_IMAGE_SIZE = 128  # the generator and every image model are sized for small images; larger is a typo
MIN_PER_CLASS = 5  # a stratified split needs a few images of each class on both sides


def outline_stencil(shape: str) -> np.ndarray:
    """Binary ``(h, w)`` stencil, 25-33 pixels each except the ring: ``square`` 5x5; ``disc`` the 7x7 pixels with
    ``i^2 + j^2 <= 9`` (29); ``cross`` 7x7 plus with 3-pixel arms (33); ``triangle`` the 7x7 lower-left half,
    diagonal included (28); ``ring`` a 7x7 square with a 3x3 hole (40)."""
    i, j = np.mgrid[-3:4, -3:4]
    if shape == "square":
        return np.ones((5, 5))
    if shape == "disc":
        return (i**2 + j**2 <= 9).astype(float)
    if shape == "cross":
        return ((np.abs(i) <= 1) | (np.abs(j) <= 1)).astype(float)
    if shape == "triangle":
        return (j <= i).astype(float)
    if shape == "ring":
        return ((np.abs(i) > 1) | (np.abs(j) > 1)).astype(float)
    raise ValueError(f"unknown shape {shape!r}")


def smooth_field(rng: np.random.Generator, n: int, size: int, scale: float) -> np.ndarray:
    """``(n, size, size)`` low-frequency random fields: white noise blurred by a Gaussian of std ``scale`` pixels
    (reflecting edges), then each field shifted and scaled to mean 0, std 1."""
    fields = gaussian_filter(rng.standard_normal((n, size, size)), sigma=(0, scale, scale), mode="reflect")
    fields -= fields.mean(axis=(1, 2), keepdims=True)
    return fields / fields.std(axis=(1, 2), keepdims=True)


@dataclass(frozen=True)
class ShapesTask:
    """Generated arrays: ``x (N, 1, S, S)``, ``y (N,)``, ``masks (N, 1, S, S)``, object top-left corners ``(N, 2)``,
    object contrasts ``(N,)`` (signed: the offset added on the object's pixels)."""

    x: np.ndarray
    y: np.ndarray
    masks: np.ndarray
    corners: np.ndarray
    contrasts: np.ndarray


@DATASETS.register("synthetic_shapes")
@dataclass(frozen=True)
class SyntheticShapes(DatasetSpec):
    """Grey images ``(N, 1, S, S)``: ``x = background * field + contrast * mask + noise * eps``.

    ``field`` is a smooth random field (:func:`smooth_field`), ``contrast = sign * U(contrast_min, contrast_max)``
    with a random sign per image, the class is the index of the object's shape.

    Attributes:
        n_samples: images generated (classes balanced).
        image_size: ``S``.
        shapes: one class per shape (see :func:`outline_stencil`).
        background: standard deviation of the smooth background field.
        smoothness: the field's blur (Gaussian std in pixels); larger is smoother.
        contrast_min, contrast_max: range of the object's offset magnitude.
        noise: standard deviation of white pixel noise on top.
        data_seed: seeds the content; the cell seed only picks the split.
    """

    modality: ClassVar[Modality] = Modality.IMAGE
    has_ground_truth: ClassVar[bool] = True
    n_samples: int = 2000
    image_size: int = 16
    shapes: tuple[Outline, ...] = ("square", "disc", "cross", "triangle")
    background: float = 1.0
    smoothness: float = 3.0
    contrast_min: float = 1.0
    contrast_max: float = 2.0
    noise: float = 0.1
    data_seed: int = 0

    def generate(self) -> ShapesTask:
        size, n = self.image_size, self.n_samples
        stencils = self._checked_stencils()
        rng = np.random.default_rng(self.data_seed)
        y = balanced_labels(rng, n, len(stencils))
        masks = np.zeros((n, 1, size, size))
        corners = np.zeros((n, 2), dtype=np.int64)
        for i, label in enumerate(y):
            h, w = stencils[label].shape
            top, left = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
            masks[i, 0, top : top + h, left : left + w] = stencils[label]
            corners[i] = top, left
        contrasts = rng.choice([-1.0, 1.0], size=n) * rng.uniform(self.contrast_min, self.contrast_max, size=n)
        field = self.background * smooth_field(rng, n, size, self.smoothness)[:, None]
        x = field + contrasts[:, None, None, None] * masks + self.noise * rng.standard_normal(masks.shape)
        return ShapesTask(x, y, masks, corners, contrasts)

    def _checked_stencils(self) -> list[np.ndarray]:
        """The shapes' stencils, after checking every parameter (``UserError`` naming the fix, before any work)."""
        what = f"dataset {self.name}:"
        shapes = tuple(self.shapes)
        require(len(set(shapes)) == len(shapes), f"{what} each shape may appear once (one class each), got "
                                                 f"{list(shapes)}")
        require(len(shapes) >= 2, f"{what} need at least two shapes (one class each)")
        stencils = [outline_stencil(s) for s in shapes]
        largest = max(max(t.shape) for t in stencils)
        require(largest <= self.image_size <= MAX_IMAGE_SIZE,
                f"{what} image_size must be in [{largest}, {MAX_IMAGE_SIZE}] (the largest shape is "
                f"{largest} pixels wide), got {self.image_size!r}")
        least = MIN_PER_CLASS * len(shapes)
        require(self.n_samples >= least,
                f"{what} n_samples must be >= {least} ({MIN_PER_CLASS} per class, {len(shapes)} classes),"
                f" got {self.n_samples!r}")
        require(self.background >= 0, f"{what} background must be >= 0, got {self.background}")
        require(self.noise >= 0, f"{what} noise must be >= 0, got {self.noise}")
        require(self.contrast_max > 0, f"{what} contrast_max must be > 0 (the object is the class), got "
                                       f"{self.contrast_max}")
        require(0.0 <= self.contrast_min <= self.contrast_max,
                f"{what} need 0 <= contrast_min <= contrast_max, got {self.contrast_min} and {self.contrast_max}")
        require(self.smoothness > 0, f"{what} smoothness must be > 0, got {self.smoothness}")
        return stencils

    def build(self, seed: int) -> Dataset:
        task = self.generate()
        return assemble(self.name, self.modality, task.x, task.y, task.masks, n_classes=len(self.shapes),
                        test_size=self.test_size, seed=seed)
