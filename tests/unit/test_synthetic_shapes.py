"""synthetic_shapes: the generator is what its docstring says (stencils, masks, signed contrasts, smooth field), and
it has the property the ROAD experiment relies on: noisy linear imputation of the object's pixels continues the
background, a channel-mean fill does not. (Determinism, ids, revision and bad parameters: tests/unit/test_datasets.py,
whose SYNTHETIC list includes it.)"""
from __future__ import annotations

import numpy as np
import pytest
from quantus.functions.perturb_func import noisy_linear_imputation

from xaibench.data.synthetic.shapes import outline_stencil
from xaibench.errors import UserError
from xaibench.metrics.functional import channel_mean_imputation
from xaibench.registry import DATASETS

SHAPES = ("square", "disc", "cross", "triangle", "ring")


def test_stencils_are_what_their_names_say():
    counts = {s: int(outline_stencil(s).sum()) for s in SHAPES}
    assert counts == {"square": 25, "disc": 29, "cross": 33, "triangle": 28, "ring": 40}
    disc, cross, triangle, ring = (outline_stencil(s) for s in ("disc", "cross", "triangle", "ring"))
    np.testing.assert_array_equal(disc, disc.T)
    np.testing.assert_array_equal(disc, disc[::-1])
    assert disc[3].all() and not disc[0, 0] and disc[0, 3]
    assert cross[2:5].all() and cross[:, 2:5].all() and not cross[0, 0] and not cross[1, 1]
    np.testing.assert_array_equal(triangle, np.tril(np.ones((7, 7))))
    assert not ring[2:5, 2:5].any() and ring.sum() == 49 - 9
    with pytest.raises(ValueError, match="unknown shape"):
        outline_stencil("star")


def test_image_is_field_plus_signed_contrast_on_exactly_the_planted_stencil():
    spec = DATASETS.create("synthetic_shapes", {"n_samples": 60, "shapes": list(SHAPES), "noise": 0.0,
                                                "contrast_min": 1.0, "contrast_max": 2.0, "data_seed": 4})
    task = spec.generate()
    assert task.x.shape == task.masks.shape == (60, 1, 16, 16) and np.bincount(task.y).tolist() == [12] * 5
    for mask, label, (top, left) in zip(task.masks, task.y, task.corners):
        stencil = outline_stencil(SHAPES[label])
        expected = np.zeros((16, 16))
        expected[top : top + stencil.shape[0], left : left + stencil.shape[1]] = stencil
        np.testing.assert_array_equal(mask[0], expected)
    magnitude = np.abs(task.contrasts)
    assert magnitude.min() >= 1.0 and magnitude.max() <= 2.0
    assert 0.3 < (task.contrasts > 0).mean() < 0.7  # both polarities: the class is the outline, not the brightness
    field = task.x - task.contrasts[:, None, None, None] * task.masks
    np.testing.assert_allclose(field.mean(axis=(1, 2, 3)), 0.0, atol=1e-12)  # each field: mean 0, std background
    np.testing.assert_allclose(field.std(axis=(1, 2, 3)), 1.0, rtol=1e-12)


def test_background_is_smooth_and_its_scale_and_the_noise_are_the_declared_ones():
    task = DATASETS.create("synthetic_shapes", {"n_samples": 40, "noise": 0.0, "background": 2.0}).generate()
    smooth = (task.x - task.contrasts[:, None, None, None] * task.masks)[:, 0]  # the field alone
    assert smooth.std(axis=(1, 2)) == pytest.approx(np.full(40, 2.0))
    assert np.corrcoef(smooth[:, :, :-1].ravel(), smooth[:, :, 1:].ravel())[0, 1] > 0.9  # white noise: about 0
    task = DATASETS.create("synthetic_shapes", {"n_samples": 40, "noise": 0.3, "background": 0.0}).generate()
    noise_only = task.x - task.contrasts[:, None, None, None] * task.masks
    assert noise_only.std() == pytest.approx(0.3, rel=0.05) and abs(noise_only.mean()) < 0.01


def test_noisy_linear_imputation_continues_the_background_a_channel_mean_fill_does_not():
    """ROAD's premise on this set: interpolating the object's pixels from their neighbours restores the smooth
    background (no outline left), the channel mean leaves a patch that differs from it (the outline shows)."""
    task = DATASETS.create("synthetic_shapes", {"n_samples": 40, "noise": 0.0}).generate()
    field = task.x - task.contrasts[:, None, None, None] * task.masks
    interpolated, flat = [], []
    for x, mask, background in zip(task.x, task.masks, field):
        removed, on_object = np.flatnonzero(mask.reshape(-1)), mask > 0
        imputed = noisy_linear_imputation(x, indices=removed, noise=0.0)
        interpolated.append(np.abs(imputed - background)[on_object].mean())
        flat.append(np.abs(channel_mean_imputation(x, indices=removed) - background)[on_object].mean())
    assert np.mean(interpolated) < 0.25 < 0.5 < np.mean(flat)  # measured: 0.15 vs 0.64 (contrasts 1-2)


@pytest.mark.parametrize(("params", "message"), [
    ({"shapes": ["square"]}, "at least two shapes"),
    ({"image_size": 6}, r"image_size must be in \[7, 128\] \(the largest shape is 7 pixels wide\), got 6"),
    ({"image_size": 129}, r"image_size must be in \[7, 128\]"),
    ({"image_size": 16.5}, "parameter 'image_size'"),
    ({"shapes": ["square", "square", "disc"]}, "each shape may appear once"),
    ({"shapes": ["square", "star"]}, "'shapes' must be one of"),
    ({"n_samples": 19}, r"n_samples must be >= 20 \(5 per class, 4 classes\), got 19"),
    ({"noise": -0.1}, "noise must be >= 0"),
    ({"background": -1.0}, "background must be >= 0"),
    ({"contrast_max": 0.0, "contrast_min": 0.0}, "contrast_max must be > 0"),
    ({"contrast_min": -1.0}, "contrast_min <= contrast_max"),
    ({"contrast_min": 2.0, "contrast_max": 1.0}, "contrast_min <= contrast_max"),
    ({"smoothness": 0.0}, "smoothness must be > 0"),
])
def test_bad_parameters_are_user_errors_naming_the_fix(params, message):
    with pytest.raises(UserError, match=message):
        DATASETS.create("synthetic_shapes", params).generate()
