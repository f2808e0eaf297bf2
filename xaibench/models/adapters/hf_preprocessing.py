"""A Hugging Face image model folder's ``preprocessor_config.json``: what its inputs need.

A checkpoint fine-tuned with an image processor saw ``(pixels * rescale_factor - image_mean) / image_std`` of 8-bit
``pixels`` (``do_rescale``, ``do_normalize``; ``rescale_factor`` is 1/255 by default, so [0, 1] pixels), resized to
``size`` (or resized and centre-cropped to ``crop_size``); given other inputs it classifies images it was never
trained on, silently. The suite's image datasets give pixels in [0, 1] (``image_folder`` normalises them itself when
``dataset.mean``/``dataset.std`` are set, and says so in ``Dataset.pixel_normalisation``), so the adapter:

- applies the processor's rescaling and normalisation inside the model's forward, as one per-channel
  ``(x - mean) / std`` (explanations stay in pixel space: a baseline of 0 is black): for [0, 1] images the
  rescaling is folded in (``rescale_factor * 255``: a model fine-tuned with ``do_rescale: false`` gets 0-255
  values); for 8-bit images (whole numbers in [0, 255], as arrays of an ``npz_arrays`` file hold them) it is the
  processor's own, said in one warning line;
- uses the images as they are when the dataset normalised them as the processor does;
- refuses, in one line naming the fix, a dataset normalised otherwise (or normalised for a model whose processor
  does not normalise);
- warns, and uses them as they are, when undeclared images are outside [0, 1] otherwise (arrays normalised
  beforehand);
- refuses images of another size than the processor makes (naming ``dataset.image_size``), and warns that a
  processor that crops the centre (``do_center_crop``) saw a centre crop where the dataset resized whole images.

Read as JSON (no ``transformers`` processor is built: nothing is downloaded, nothing else is run); no resizing or
cropping runs here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xaibench.data.user.encoding import warn_once
from xaibench.errors import UserError
from xaibench.types import Dataset

FILE = "preprocessor_config.json"
Normalisation = tuple[tuple[float, ...], tuple[float, ...]]  # (mean per channel, std per channel)
_EIGHT_BIT = 255.0  # the suite's [0, 1] pixels are 8-bit pixels / 255


@dataclass(frozen=True)
class ImageProcessing:
    """What ``preprocessor_config.json`` asks of 8-bit pixels ``p``: ``(p * scale + offset - mean) / std``.

    ``normalisation`` (mean, std) is None when ``do_normalize`` is false; ``scale`` is ``rescale_factor`` (1 when
    ``do_rescale`` is false), ``offset`` -1 for ``rescale_offset`` (EfficientNet's [-1, 1]); ``size`` the (height,
    width) the processor gives the model (None: it does not resize), ``crop`` the centre crop it takes after
    resizing (None: none), ``resize`` how it resizes (for messages).
    """

    path: Path
    normalisation: Normalisation | None
    scale: float = 1 / _EIGHT_BIT
    offset: float = 0.0
    size: tuple[int, int] | None = None
    crop: tuple[int, int] | None = None
    resize: str = ""

    def on_pixels(self, peak: float) -> Normalisation | None:
        """The per-channel ``(x - mean) / std`` that gives the model its inputs from images whose white is ``peak``
        (1 for [0, 1] images, 255 for 8-bit ones); None when it is the identity."""
        factor = self.scale * _EIGHT_BIT / peak
        mean, std = self.normalisation or ((0.0,), (1.0,))
        channels = max(len(mean), len(std))
        mean = tuple((m - self.offset) / factor for m in np.broadcast_to(mean, (channels,)))
        std = tuple(s / factor for s in np.broadcast_to(std, (channels,)))
        if np.allclose(mean, 0.0, atol=1e-12) and np.allclose(std, 1.0, rtol=1e-9):
            return None
        return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def read_image_processing(folder: Path, channels: int, what: str) -> ImageProcessing | None:
    """The folder's processor settings for ``channels``-channel images; None when the folder has no such file."""
    path = folder / FILE
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"{what}: cannot read {path}: {error}") from None
    if not isinstance(config, dict):
        raise UserError(f"{what}: {path} holds {type(config).__name__}, not a processor's settings")
    scale = float(config.get("rescale_factor", 1 / _EIGHT_BIT)) if config.get("do_rescale", True) else 1.0
    if not np.isfinite(scale) or scale <= 0:
        raise UserError(f"{what}: {path} gives rescale_factor {config.get('rescale_factor')!r}; it must be positive")
    size, crop, resize = _sizes(config, path, what)
    return ImageProcessing(path, _normalisation(config, channels, path, what), scale,
                           -1.0 if config.get("rescale_offset") else 0.0, size, crop, resize)


def _normalisation(config: dict, channels: int, path: Path, what: str) -> Normalisation | None:
    if not config.get("do_normalize", "image_mean" in config):
        return None
    values = []
    for key, default in (("image_mean", 0.0), ("image_std", 1.0)):
        value = np.atleast_1d(np.asarray(config.get(key, default), dtype=np.float64))
        if value.ndim != 1 or len(value) not in (1, channels):
            raise UserError(f"{what}: {path} gives {key} {value.tolist()} for a model with {channels} channel(s)")
        values.append(tuple(float(v) for v in np.broadcast_to(value, (channels,))))
    if min(values[1]) <= 0:
        raise UserError(f"{what}: {path} gives image_std {list(values[1])}; it must be positive")
    return values[0], values[1]


def _sizes(config: dict, path: Path, what: str) -> tuple[tuple[int, int] | None, tuple[int, int] | None, str]:
    """(size the model gets, centre crop or None, how it resizes) from ``size``/``crop_size`` in any of
    transformers' spellings (``{"height", "width"}``, ``{"shortest_edge"}``, one number)."""
    resized = _side(config.get("size"), path, what) if config.get("do_resize", "size" in config) else None
    crop = _side(config.get("crop_size"), path, what) if config.get("do_center_crop", False) else None
    if isinstance(config.get("size"), dict) and "shortest_edge" in config["size"]:
        resize = f"resizes the shorter side to {config['size']['shortest_edge']}"
    else:
        resize = f"resizes to {resized[0]} x {resized[1]}" if resized else "does not resize"
    return crop or resized, crop, resize


def _side(value, path: Path, what: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        if "height" in value and "width" in value:
            return int(value["height"]), int(value["width"])
        edge = value.get("shortest_edge", value.get("longest_edge"))
        return None if edge is None else (int(edge), int(edge))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value), int(value)
    raise UserError(f"{what}: {path} gives an image size {value!r} that is not a number or {{height, width}}")


def check_image_size(processing: ImageProcessing | None, dataset: Dataset, what: str) -> None:
    """``UserError`` when the dataset's images are not the size the processor gives the model; one warning line
    when the processor crops the centre (the dataset's images were resized whole)."""
    if processing is None or processing.size is None:
        return
    height, width = dataset.input_shape[-2:]
    if (height, width) != processing.size:
        raise UserError(f"{what}: {processing.path} gives the model {processing.size[0]} x {processing.size[1]} "
                        f"images, dataset {dataset.name} has {height} x {width}: for an image folder set "
                        f"dataset.image_size={processing.size[0]}, resize arrays before saving them")
    if processing.crop is not None:
        warn_once(f"{what}: {processing.path} {processing.resize} and crops the centre {height} x {width}; dataset "
                  f"{dataset.name}'s images were resized whole: crop them to their centre beforehand to give the "
                  "model what it was fine-tuned on")


def inside_normalisation(processing: ImageProcessing | None, dataset: Dataset, what: str) -> Normalisation | None:
    """The normalisation the model must apply to the dataset's images itself (None: use them as they are);
    ``UserError`` when the dataset normalised them otherwise than the processor does (see the module docstring)."""
    if processing is None:
        return None
    wanted, given = processing.on_pixels(1.0), dataset.pixel_normalisation
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
    x = dataset.test.x
    low, high = float(x.min()), float(x.max())
    if low >= 0 and 1 < high <= _EIGHT_BIT and bool(torch.equal(x, x.round())):
        warn_once(f"{what}: dataset {dataset.name}'s images are whole numbers in [0, 255]: read as 8-bit pixels "
                  f"and rescaled as {processing.path} says (rescale_factor {processing.scale:.6g}); give [0, 1] "
                  "images (x / 255) to keep explanations in [0, 1] pixel units")
        return processing.on_pixels(_EIGHT_BIT)
    if wanted is None:
        return None
    if low < -1e-6 or high > 1 + 1e-6:
        warn_once(f"{what}: {processing.path} normalises [0, 1] pixels (mean {_shown(wanted[0])}, std "
                  f"{_shown(wanted[1])}), but dataset {dataset.name}'s images span [{low:.3g}, {high:.3g}]: used as "
                  "they are (already normalised?); give [0, 1] images to have the model normalise them")
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
