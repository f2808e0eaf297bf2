"""A Hugging Face image model folder's ``preprocessor_config.json``: the normalisation its inputs need.

A checkpoint fine-tuned with an image processor saw ``(pixels / 255 - image_mean) / image_std``; given the suite's
[0, 1] images as they are, it classifies inputs it was never trained on, silently. The suite's image datasets give
pixels in [0, 1] (``image_folder`` normalises them itself when ``dataset.mean``/``dataset.std`` are set, and says
so in ``Dataset.pixel_normalisation``), so the adapter:

- normalises [0, 1] images inside the model's forward (explanations stay in pixel space: a baseline of 0 is black)
  when the dataset did not normalise them;
- uses the images as they are when the dataset normalised them as the processor does;
- refuses, in one line naming the fix, a dataset normalised otherwise (or normalised for a model whose processor
  does not normalise);
- warns, and uses them as they are, when undeclared images are outside [0, 1] (arrays normalised beforehand).

Read as JSON (no ``transformers`` processor is built: nothing is downloaded, nothing else is run). Resizing is
not done here: the model's ``image_size`` is checked against the dataset's images when the model is built.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xaibench.errors import UserError
from xaibench.types import Dataset

FILE = "preprocessor_config.json"
Normalisation = tuple[tuple[float, ...], tuple[float, ...]]  # (mean per channel, std per channel)


@dataclass(frozen=True)
class ImageProcessing:
    """What ``preprocessor_config.json`` asks of the inputs: ``normalisation`` None when ``do_normalize`` is false."""

    path: Path
    normalisation: Normalisation | None


def read_image_processing(folder: Path, channels: int, what: str) -> ImageProcessing | None:
    """The folder's processor settings for ``channels``-channel images; None when the folder has no such file."""
    path = folder / FILE
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"{what}: cannot read {path}: {error}") from None
    if not config.get("do_normalize", "image_mean" in config):
        return ImageProcessing(path, None)
    values = []
    for key, default in (("image_mean", 0.0), ("image_std", 1.0)):
        value = np.atleast_1d(np.asarray(config.get(key, default), dtype=np.float64))
        if value.ndim != 1 or len(value) not in (1, channels):
            raise UserError(f"{what}: {path} gives {key} {value.tolist()} for a model with {channels} channel(s)")
        values.append(tuple(float(v) for v in np.broadcast_to(value, (channels,))))
    if min(values[1]) <= 0:
        raise UserError(f"{what}: {path} gives image_std {list(values[1])}; it must be positive")
    return ImageProcessing(path, (values[0], values[1]))


def inside_normalisation(processing: ImageProcessing | None, dataset: Dataset, what: str) -> Normalisation | None:
    """The normalisation the model must apply to the dataset's images itself (None: use them as they are);
    ``UserError`` when the dataset normalised them otherwise than the processor does (see the module docstring)."""
    if processing is None:
        return None
    wanted, given = processing.normalisation, dataset.pixel_normalisation
    if given is not None:
        if wanted is None:
            raise UserError(f"{what}: {processing.path} does not normalise images (do_normalize: false), but dataset "
                            f"{dataset.name} normalises them (mean {_shown(given[0])}, std {_shown(given[1])}); leave "
                            "out dataset.mean and dataset.std")
        if not (np.allclose(given[0], wanted[0], atol=1e-4) and np.allclose(given[1], wanted[1], atol=1e-4)):
            raise UserError(f"{what}: {processing.path} normalises images with mean {_shown(wanted[0])}, std "
                            f"{_shown(wanted[1])}, dataset {dataset.name} with mean {_shown(given[0])}, std "
                            f"{_shown(given[1])}; leave out dataset.mean and dataset.std (the model then normalises "
                            "the [0, 1] pixels as its processor does) or set them to the processor's values")
        return None
    if wanted is None:
        return None
    x = dataset.test.x
    low, high = float(x.min()), float(x.max())
    if low < -1e-6 or high > 1 + 1e-6:
        print(f"xaibench: warning: {what}: {processing.path} normalises [0, 1] pixels (mean {_shown(wanted[0])}, std "
              f"{_shown(wanted[1])}), but dataset {dataset.name}'s images span [{low:.3g}, {high:.3g}]: used as "
              "they are (already normalised?); give [0, 1] images to have the model normalise them",
              file=sys.stderr, flush=True)
        return None
    return wanted


def normalise(x: torch.Tensor, normalisation: Normalisation | None) -> torch.Tensor:
    """``(x - mean) / std`` per channel of ``x (N, C, H, W)``; ``x`` itself for None."""
    if normalisation is None:
        return x
    mean, std = (torch.tensor(v, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1) for v in normalisation)
    return (x - mean) / std


def _shown(values: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"
