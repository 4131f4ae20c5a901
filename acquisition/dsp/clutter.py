"""The soil's clutter level: the amplitude magnetic ground's own peaks exceed
at a given rate per area, from a survey's peak statistics."""

from __future__ import annotations

import math

import numpy as np


def abs_peaks(lev: np.ndarray) -> np.ndarray:
    """|lev| at its local maxima: the peaks a clutter level is counted from."""
    a = np.abs(lev)
    return a[np.flatnonzero((a[1:-1] > a[:-2]) & (a[1:-1] >= a[2:])) + 1]


#: Share of lanes that must read like soil for the clutter threshold to apply.
CLUTTER_LANE_SHARE = 0.8


def clutter_threshold(peaks: np.ndarray, area_m2: float, rate_per_1000m2: float,
                      min_peaks: int = 100) -> float:
    """The amplitude soil peaks exceed ``rate_per_1000m2`` times per 1000 m².

    ``peaks`` are the local maxima of |levelled signal| over ``area_m2`` of
    magnetic ground. Their bulk is soil (targets make a percent or so of
    them, all in the top), so the median and 90th percentile are the soil's;
    the count of soil peaks over an amplitude falls about exponentially
    (simulated laterite: the noise-free soil's largest peak over 1200 m²
    lies within 15 % of that line), so an exponential tail through those two
    percentiles is extrapolated to the wanted rate. NaN with fewer than
    ``min_peaks`` peaks.
    """
    n = int(peaks.size)
    if n < min_peaks or area_m2 <= 0 or rate_per_1000m2 <= 0:
        return math.nan
    q50, q90 = (float(t) for t in np.percentile(peaks, (50.0, 90.0)))
    rarity = min(rate_per_1000m2 * area_m2 / 1000.0 / n, 0.1)
    # Exponential: P(a > t) = exp(-(t - shift) / scale), so q90 - q50 = scale ln 5.
    return q90 + (q90 - q50) / math.log(5.0) * math.log(0.1 / rarity)
