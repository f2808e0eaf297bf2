"""A report's method colours stay apart for colour-blind readers: in tab10's order the third method (green) could not
be told from the second (orange) under protanopia (CIELAB distance 4.6), and in the cost scatter colour alone names
the method."""
import itertools

import matplotlib
import numpy as np

from xaibench.report.figures._style import method_colours

# Machado, Oliveira & Fernandes (2009), severity 1.0, on linear RGB.
SIMULATIONS = {
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
}


def _cielab_seen(rgb, simulation: np.ndarray) -> np.ndarray:
    """sRGB (0-1) as a reader with the simulated deficiency sees it, in CIELAB (D65)."""
    c = np.asarray(rgb[:3], dtype=float)
    linear = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    linear = np.clip(simulation @ linear, 0.0, 1.0)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _closest_seen(colours: list) -> float:
    return min(np.linalg.norm(_cielab_seen(a, m) - _cielab_seen(b, m))
               for m in SIMULATIONS.values() for a, b in itertools.combinations(colours, 2))


def test_tab10_order_puts_two_colours_a_protanope_cannot_tell_apart_among_three():
    tab10 = [matplotlib.colormaps["tab10"](i) for i in range(3)]
    assert _closest_seen(tab10) < 5  # the reference the palette is measured against: orange and green


def test_the_first_six_methods_stay_apart_under_deuteranopia_and_protanopia():
    methods = [f"method_{i}" for i in range(6)]
    colours = method_colours(methods + ["random"], controls={"random"})
    for k in range(2, 7):
        assert _closest_seen([colours[m] for m in methods[:k]]) >= 25, k
