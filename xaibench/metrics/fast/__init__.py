"""The fast scoring engine: Quantus metric subclasses that forward and re-explain in chunks (``engine: fast``).

``fast_class(quantus_class)`` gives the fast subclass of a Quantus metric class, or None when the metric has none
(it then runs as plain Quantus). Plain Quantus stays the reference (``engine: quantus``).
"""
from __future__ import annotations

import quantus

from xaibench.engine.cell import ENGINES

from xaibench.metrics.fast._forward import DEFAULT_CHUNK_SIZE, ChunkedForward
from xaibench.metrics.fast.faithfulness import (
    FastFaithfulnessCorrelation,
    FastFaithfulnessEstimate,
    FastMonotonicityCorrelation,
    FastPixelFlipping,
)
from xaibench.metrics.fast.stability import (
    FastAvgSensitivity,
    FastLocalLipschitzEstimate,
    FastMaxSensitivity,
    FastRelativeInputStability,
    FastRelativeInputStabilityFloored,
    FastRelativeOutputStability,
    FastRelativeOutputStabilityFloored,
)
from xaibench.metrics.stability import RelativeInputStabilityFloored, RelativeOutputStabilityFloored


FAST_CLASSES: dict[type, type] = {
    quantus.FaithfulnessCorrelation: FastFaithfulnessCorrelation,
    quantus.FaithfulnessEstimate: FastFaithfulnessEstimate,
    quantus.PixelFlipping: FastPixelFlipping,
    quantus.MonotonicityCorrelation: FastMonotonicityCorrelation,
    quantus.MaxSensitivity: FastMaxSensitivity,
    quantus.AvgSensitivity: FastAvgSensitivity,
    quantus.LocalLipschitzEstimate: FastLocalLipschitzEstimate,
    quantus.RelativeInputStability: FastRelativeInputStability,
    quantus.RelativeOutputStability: FastRelativeOutputStability,
    RelativeInputStabilityFloored: FastRelativeInputStabilityFloored,  # the suite's RIS/ROS (per-sample floor)
    RelativeOutputStabilityFloored: FastRelativeOutputStabilityFloored,
}


def fast_class(quantus_class: type | None) -> type | None:
    """The fast subclass of ``quantus_class`` (exact class match), or None."""
    return FAST_CLASSES.get(quantus_class) if quantus_class is not None else None


__all__ = ["DEFAULT_CHUNK_SIZE", "ENGINES", "FAST_CLASSES", "ChunkedForward", "fast_class"]
