"""Shims for Quantus 0.6 on current numpy (pitfalls.md): ``np.trapz`` was removed in numpy 2.4."""
import numpy as np

if not hasattr(np, "trapz"):  # Quantus' PixelFlipping/RegionPerturbation/Selectivity/IROF call np.trapz
    np.trapz = np.trapezoid  # type: ignore[attr-defined]
