"""Images from a folder tree ``<path>/<class name>/<image file>`` (the torchvision ``ImageFolder`` layout)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from xaibench.data.base import DatasetSpec, make_dataset, unsplit_revision
from xaibench.data.user._common import checked_split, require_path
from xaibench.data.user.encoding import warn_once
from xaibench.errors import UserError
from xaibench.registry import DATASETS
from xaibench.types import Dataset, Modality

_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})  # Pillow modes without colour
_DEEP_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})  # more than 8 bits per pixel
_SYSTEM_NAMES = frozenset({"thumbs.db", "desktop.ini"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def read_image(path: Path, size: int, channels: int) -> tuple[np.ndarray, bool]:
    """One image as ``(C, size, size)`` float in [0, 1] (grey ``L`` or ``RGB``, bilinear resize), and whether a grey
    read (``channels`` 1) lost colour (channels that differ somewhere; a grey image saved as RGB holds none).

    An EXIF orientation tag (a phone's or camera's JPEG, stored sideways with the tag saying how to turn it) is
    applied first (``ImageOps.exif_transpose``), so the image is read upright, as viewers show it.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)  # a copy when turned, ``opened`` itself otherwise
            if image.mode in _DEEP_GREY_MODES:  # 16-bit scans, 32-bit or float images: convert("L") would clip
                pixels = _deep_grey(image, size, path)
                return np.repeat(pixels[None], channels, axis=0), False
            colour = channels == 1 and image.mode not in _GREY_MODES and _coloured(image.convert("RGB"))
            image = image.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float64) / 255.0
    except (OSError, UnidentifiedImageError) as error:
        reason = " ".join(str(error).split()).replace(f"'{path}'", "").replace(str(path), "").strip(" :")
        raise UserError(f"dataset image_folder: cannot read image {path} ({reason}); replace it with a readable "
                        "image or move it out of the class folder") from None
    return (pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)), colour


def _deep_grey(image, size: int, path: Path) -> np.ndarray:
    """A 16-bit (``I;16*``), 32-bit integer (``I``) or float (``F``) grey image as ``(size, size)`` in [0, 1].

    Integers are divided by 65535 (the 16-bit range, which also holds 12-bit camera data: a 12-bit image reads
    as at most 0.0625, as its file says); floats must already lie in [0, 1]. Values outside are refused in one
    line: scaling them per image would make images incomparable.
    """
    from PIL import Image

    values = np.asarray(image, dtype=np.float64)
    scale = 1.0 if image.mode == "F" else 65535.0
    finite = bool(np.isfinite(values).all())
    if values.size and (not finite or values.min() < 0 or values.max() > scale):
        held = f"values in [{values.min():g}, {values.max():g}]" if finite else "NaN or infinite values"
        raise UserError(f"image {path} (mode {image.mode}) holds {held}, outside [0, {scale:g}]; save it as 8- or "
                        f"16-bit, or as float in [0, 1]")
    scaled = Image.fromarray((values / scale).astype(np.float32))  # mode F
    return np.asarray(scaled.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float64).clip(0.0, 1.0)


def _coloured(image) -> bool:
    rgb = np.asarray(image)
    return bool((rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 0] != rgb[..., 2]).any())


@DATASETS.register("image_folder")
@dataclass(frozen=True)
class ImageFolder(DatasetSpec):
    """Images ``(N, C, S, S)`` in [0, 1]; class folders sorted by name give labels ``0..K-1``.

    Sample ids are the image paths relative to ``path`` (``cat/001.png``), stable whatever the split seed.

    Attributes:
        path: root folder holding one sub-folder per class.
        image_size: ``S``, every image is resized to ``S x S``.
        channels: 1 (greyscale) or 3 (RGB).
        mean, std: per-channel normalisation ``(x - mean) / std`` after scaling to [0, 1], as the model was trained
            with (a pretrained ViT: 0.5 and 0.5; ImageNet CNNs: [0.485, 0.456, 0.406] and [0.229, 0.224, 0.225]):
            one value for every channel or one per channel. None: pixels stay in [0, 1].
    """

    modality: ClassVar[Modality] = Modality.IMAGE
    path: str | None = None
    image_size: int = 32
    channels: Literal[1, 3] = 1
    mean: float | tuple[float, ...] | None = None
    std: float | tuple[float, ...] | None = None

    def build(self, seed: int) -> Dataset:
        what = f"dataset {self.name}"
        root = require_path(self.path, what, directory=True)
        files, labels, names = self._index(root, what)
        normalisation = self._normalisation(what)
        images, colour = zip(*(read_image(f, self.image_size, self.channels) for f in files))
        if self.channels == 1 and any(colour):
            warn_once(f"{what}: {sum(colour)} of {len(files)} images in {root} are in colour (e.g. "
                      f"{files[colour.index(True)].relative_to(root).as_posix()}); channels=1 reads them as grey, "
                      "losing colour: set dataset.channels=3 to keep it")
        x = np.stack(images)
        if normalisation is not None:
            mean, std = (np.asarray(v, dtype=np.float64).reshape(1, -1, 1, 1) for v in normalisation)
            x = (x - mean) / std
        ids = np.array([f.relative_to(root).as_posix() for f in files])
        train, test = checked_split(x, np.asarray(labels, dtype=np.int64), ids, test_size=self.test_size, seed=seed,
                                    what=what)
        return make_dataset(self.name, self.modality, train, test, n_classes=len(names), class_names=names,
                            revision=unsplit_revision(x, np.asarray(labels, dtype=np.int64), ids,
                                                     test_size=self.test_size), pixel_normalisation=normalisation)

    def _normalisation(self, what: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """``(mean, std)`` per channel of ``(x - mean) / std``; None without ``mean`` and ``std`` (pixels in [0, 1])."""
        if self.mean is None and self.std is None:
            return None
        values = []
        for option, value in (("mean", self.mean), ("std", self.std)):
            per_channel = np.atleast_1d(np.asarray(0.0 if value is None and option == "mean" else
                                                   1.0 if value is None else value, dtype=np.float64))
            if per_channel.ndim != 1 or len(per_channel) not in (1, self.channels):
                raise UserError(f"{what}: {option} must be one number or one per channel ({self.channels}), got "
                                f"{value!r}")
            values.append(tuple(float(v) for v in np.broadcast_to(per_channel, (self.channels,))))
        if min(values[1]) <= 0:
            raise UserError(f"{what}: std must be positive, got {self.std!r}")
        return values[0], values[1]

    def _index(self, root: Path, what: str) -> tuple[list[Path], list[int], tuple[str, ...]]:
        class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(class_dirs) < 2:
            raise UserError(f"{what}: {root} needs one sub-folder per class (at least two), found {len(class_dirs)}")
        files: list[Path] = []
        labels: list[int] = []
        skipped: list[Path] = []
        for label, folder in enumerate(class_dirs):
            found = sorted(p for p in folder.rglob("*") if p.is_file() and not _system_file(p.relative_to(folder)))
            images = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
            if not images:
                raise UserError(f"{what}: class folder {folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            files += images
            labels += [label] * len(images)
            skipped += [p for p in found if p.suffix.lower() not in IMAGE_SUFFIXES]
        if skipped:
            warn_once(f"{what}: {len(skipped)} file(s) in the class folders of {root} are not images and are left out "
                      f"(e.g. {skipped[0].relative_to(root).as_posix()}); images end in "
                      f"{', '.join(sorted(IMAGE_SUFFIXES))}: convert or move the others")
        return files, labels, tuple(p.name for p in class_dirs)


def _system_file(relative: Path) -> bool:
    """Hidden files and folders (``.DS_Store``, ``.ipynb_checkpoints/``) and Windows' ``Thumbs.db``/``desktop.ini``:
    written by the system, not by the user, so left out without a word."""
    return any(part.startswith(".") for part in relative.parts) or relative.name.lower() in _SYSTEM_NAMES
