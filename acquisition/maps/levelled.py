"""The levelled survey, lane by lane, as the detector saw it.

Each lane gets its own level (zig-zag heading error, zeroing): the map shows
the data after the DSP's own per-lane levelling (`acquisition.dsp.levelling.
level_lane`, masked median with anomalies left out), with lanes numbered as
the batch DSP numbers them (the file's ``lane`` column, a cart's time stamps,
or the position segmenter), so the colours are what detection thresholded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from acquisition.dsp.cart import cart_lanes
from acquisition.dsp.levelling import diff_noise, level_lane
from acquisition.dsp.pipeline import LaneConfig
from acquisition.dsp.segment import LaneSegmenter
from acquisition.survey import Survey


@dataclass(slots=True)
class Levelled:
    """Finite samples with their lane and levelled value (nT)."""

    x: np.ndarray
    y: np.ndarray
    value: np.ndarray
    lane: np.ndarray
    t: np.ndarray | None


def lane_numbers(x: np.ndarray, y: np.ndarray, lane: np.ndarray | None, t: np.ndarray | None,
                 spacing: float) -> np.ndarray:
    """A lane number per sample, decided as `acquisition.dsp.batch.process_survey` decides."""
    if lane is not None:
        return np.asarray(lane, dtype=np.float64).astype(np.int64)
    if t is not None:
        cart = cart_lanes(x, y, t, spacing)
        if cart is not None:  # a multi-sensor cart; one sensor: segment by position
            return np.asarray(cart, dtype=np.int64)
    out = np.empty(x.size, dtype=np.int64)
    for a, b, k in LaneSegmenter(spacing).runs(x, y):
        out[a:b] = k
    return out


def level_survey(s: Survey, spacing: float, noise_nT: float | None = None) -> Levelled:
    """Level every lane of ``s`` with the DSP's levelling (masking at 3 x the noise)."""
    ok = np.isfinite(s.x) & np.isfinite(s.y) & np.isfinite(s.value)
    lane_in = None
    if s.lane is not None:
        lf = np.asarray(s.lane, dtype=np.float64)
        ok &= np.isfinite(lf)
        lane_in = lf[ok]
    x, y, v = s.x[ok], s.y[ok], s.value[ok]
    t = None if s.t is None else np.asarray(s.t, dtype=np.float64)[ok]
    lanes = lane_numbers(x, y, lane_in, t, spacing)
    out = np.empty_like(v)
    groups = [np.flatnonzero(lanes == k) for k in np.unique(lanes)]
    whites = [diff_noise(v[g]) for g in groups]
    floor = noise_nT if noise_nT is not None and math.isfinite(noise_nT) else (
        float(np.median(whites)) if whites else 0.0)
    drift_m = LaneConfig().drift_window_m
    for g, white in zip(groups, whites, strict=True):
        drift = 0
        if drift_m > 0 and g.size > 2:
            step = float(np.median(np.hypot(np.diff(x[g]), np.diff(y[g])))) or 0.1
            drift = round(drift_m / step)
        out[g], _ = level_lane(v[g], max(floor, white), drift_window=drift)
    return Levelled(x=x, y=y, value=out, lane=lanes, t=t)
