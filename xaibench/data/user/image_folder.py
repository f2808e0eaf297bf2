"""Images from a folder tree ``<path>/<class name>/<image file>`` (the torchvision ``ImageFolder`` layout)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from xaibench.data.base import DatasetSpec, make_dataset, unsplit_revision
from xaibench.data.user._common import checked_split, require_path
from xaibench.errors import UserError
from xaibench.registry import DATASETS
from xaibench.types import Dataset, Modality

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def read_image(path: Path, size: int, channels: int) -> np.ndarray:
    """One image as ``(C, size, size)`` float in [0, 1] (grey ``L`` or ``RGB``, bilinear resize)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float64) / 255.0
    except (OSError, UnidentifiedImageError) as error:
        raise UserError(f"cannot read image {path}: {error}") from None
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


@DATASETS.register("image_folder")
@dataclass(frozen=True)
class ImageFolder(DatasetSpec):
    """Images ``(N, C, S, S)`` in [0, 1]; class folders sorted by name give labels ``0..K-1``.

    Sample ids are the image paths relative to ``path`` (``cat/001.png``), stable whatever the split seed.

    Attributes:
        path: root folder holding one sub-folder per class.
        image_size: ``S``, every image is resized to ``S x S``.
        channels: 1 (greyscale) or 3 (RGB).
    """

    modality: ClassVar[Modality] = Modality.IMAGE
    path: str | None = None
    image_size: int = 32
    channels: Literal[1, 3] = 1

    def build(self, seed: int) -> Dataset:
        what = f"dataset {self.name}"
        root = require_path(self.path, what, directory=True)
        files, labels, names = self._index(root, what)
        x = np.stack([read_image(f, self.image_size, self.channels) for f in files])
        ids = np.array([f.relative_to(root).as_posix() for f in files])
        train, test = checked_split(x, np.asarray(labels, dtype=np.int64), ids, test_size=self.test_size, seed=seed,
                                    what=what)
        return make_dataset(self.name, self.modality, train, test, n_classes=len(names), class_names=names,
                            revision=unsplit_revision(x, np.asarray(labels, dtype=np.int64), ids,
                                                     test_size=self.test_size))

    def _index(self, root: Path, what: str) -> tuple[list[Path], list[int], tuple[str, ...]]:
        class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(class_dirs) < 2:
            raise UserError(f"{what}: {root} needs one sub-folder per class (at least two), found {len(class_dirs)}")
        files: list[Path] = []
        labels: list[int] = []
        for label, folder in enumerate(class_dirs):
            images = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise UserError(f"{what}: class folder {folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            files += images
            labels += [label] * len(images)
        return files, labels, tuple(p.name for p in class_dirs)
