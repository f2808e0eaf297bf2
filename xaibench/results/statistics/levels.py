"""The levels every statistic shares: the significance level and the tolerance under which two scores tie."""
from __future__ import annotations

import numpy as np
import pandas as pd

ALPHA = 0.05
# Scores closer than this share of their magnitude (the larger of the two, or the comparison group's median
# magnitude where that is larger: values near 0 of a metric computed on a larger scale) are equal: metrics compute in
# float32 (one unit in the last place is 1.2e-7 relative), so integrated gradients and input x gradient on a linear
# model, identical in exact arithmetic, differ by ~1e-7 and would otherwise be ranked, bolded and "significantly"
# apart. The group's *largest* magnitude was the scale before: one method at 1e6 (DeepLIFT's max_sensitivity) tied
# integrated gradients at 0.15 with the constant control at 0 and zeroed every other pair's differences.
TIE_RTOL = 1e-6


def snap_ties(values: pd.Series, groups: pd.Series, rtol: float = TIE_RTOL) -> pd.Series:
    """``values`` with every run of near-equal values within a group replaced by the run's smallest value.

    Two sorted neighbours are near-equal when they differ by at most ``rtol`` times the larger of their magnitudes
    and the group's median magnitude (float rounding, not a difference between methods; :data:`TIE_RTOL`); the
    scale counts finite values only, and +-inf stay themselves. NaN stays NaN. Ranking the result gives tied ranks.
    """
    frame = pd.DataFrame({"g": groups.to_numpy(), "v": values.to_numpy(dtype=np.float64)}, index=values.index)
    frame = frame[frame["v"].notna()].sort_values(["g", "v"], kind="stable")
    magnitude = frame["v"].abs().where(np.isfinite(frame["v"]))
    floor = magnitude.groupby(frame["g"]).transform("median")
    scale = np.fmax(np.fmax(magnitude, magnitude.shift()), floor).fillna(0.0)  # a group's first row starts a run
    new_group = frame["g"].ne(frame["g"].shift()).to_numpy()
    new_run = new_group | (frame["v"].diff().to_numpy() > rtol * scale.to_numpy())
    snapped = frame["v"].groupby(np.cumsum(new_run)).transform("first")
    return snapped.reindex(values.index)
