"""Lanes of a multi-sensor cart whose survey file has no lane column.

docs/formats.md writes a multi-sensor cart as one row per sensor per instant, and
makes the ``lane`` column optional. Read in file order, such rows jump a
sensor spacing across the lanes at every row, and `LaneSegmenter` (which
splits one sensor's trace by position and order) would start a new lane at
nearly every row. Rows of one instant share their time stamp, so:

1. runs of rows with one time stamp are the instants, and the usual run
   length k (at least 2, for at least half of the rows, the rows of an
   instant half a lane spacing apart or more) is the cart's number of
   sensors; a row's place in a full run is its sensor. In a run with rows
   missing, each row goes to the sensor it lies nearest at the full instant
   before or after (whichever fits the run better);
2. the cart's centre (the mean position of each instant's rows) is split
   into passes by `LaneSegmenter`, k lane spacings apart;
3. a row's lane is its pass times k plus its sensor's rank across the pass
   (by the sensor's mean x in that pass), counted the way the passes
   progress, so lanes next to each other in space get numbers next to each
   other, whichever way the cart was turned.

Without time stamps, or with one row per time stamp, there is nothing to
split: `cart_lanes` returns None and the lanes come from the trace as it is.
"""

from __future__ import annotations

import numpy as np

from acquisition.dsp.segment import LaneSegmenter

#: Share of the rows that must lie in runs of the cart's size.
MIN_REGULAR_SHARE = 0.5


def _instant_starts(t: np.ndarray) -> np.ndarray:
    # NaN != NaN, so a row without a time stamp is an instant of its own
    return np.concatenate(([0], np.flatnonzero(t[1:] != t[:-1]) + 1))


def sensor_of_rows(t: np.ndarray, x: np.ndarray, y: np.ndarray,
                   spacing_m: float) -> tuple[np.ndarray, int] | None:
    """Each row's sensor, and the number of sensors; None for a single sensor.

    See `_sensors` for the rules.
    """
    found = _sensors(t, x, y, spacing_m)
    return None if found is None else found[:2]


def _sensors(t: np.ndarray, x: np.ndarray, y: np.ndarray,
             spacing_m: float) -> tuple[np.ndarray, int, np.ndarray] | None:
    """Each row's sensor, the number of sensors and the instants' first rows.

    ``t``: time stamps in file order (rows of one instant share theirs; NaN
    stamps are instants of their own). ``x``, ``y``: positions; the rows of
    an instant must lie at least half a lane spacing apart (``spacing_m``),
    so one sensor whose clock ticks slower than it samples (ten rows per
    whole second, a few cm apart) is not taken for a cart.
    """
    t = np.asarray(t, dtype=np.float64).ravel()
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    n = t.size
    if n < 2:
        return None
    starts = _instant_starts(t)
    lengths = np.diff(np.concatenate((starts, [n])))
    k = int(np.argmax(np.bincount(lengths)))
    if k < 2 or lengths[lengths == k].sum() < MIN_REGULAR_SHARE * n:
        return None
    sensor = np.arange(n) - np.repeat(starts, lengths)
    within = sensor[1:] > 0  # pairs of consecutive rows of one instant
    apart = np.hypot(np.diff(x), np.diff(y))[within]
    if not np.median(apart) >= 0.5 * spacing_m:
        return None
    regular = lengths == k
    reg_starts = starts[regular]
    for s0, ln in zip(starts[~regular], lengths[~regular], strict=True):
        # the sensors' positions at the full instants just before and after
        # this one; at a pass's first or last instant only one of them is on
        # the same pass, and it is the one these rows lie nearest
        j = int(np.searchsorted(reg_starts, s0))
        m = min(int(ln), k)
        best: tuple[float, list[int]] = (np.inf, list(range(m)))
        for r0 in reg_starts[max(j - 1, 0):j + 1]:
            ref = x[r0:r0 + k]
            cost, free, picks = 0.0, list(range(k)), []
            for r in range(s0, s0 + m):
                d = [abs(x[r] - ref[c]) for c in free]
                i = int(np.argmin(d))
                cost += d[i]
                picks.append(free.pop(i))
            if cost < best[0]:
                best = (cost, picks)
        sensor[s0:s0 + m] = best[1]
        for r in range(s0 + k, s0 + ln):  # more rows than sensors: keep the order
            sensor[r] = (r - s0) % k
    return sensor, k, starts


def cart_lanes(x: np.ndarray, y: np.ndarray, t: np.ndarray,
               spacing_m: float) -> np.ndarray | None:
    """Lane number of each row of a multi-sensor cart survey; None for one sensor.

    ``x``, ``y``, ``t``: finite positions (m) and time stamps (s) in file
    order; ``spacing_m``: the spacing of the lanes, that is of the sensors.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    t = np.asarray(t, dtype=np.float64).ravel()
    found = _sensors(t, x, y, spacing_m)
    if found is None:
        return None
    sensor, k, starts = found
    instant = np.repeat(np.arange(starts.size), np.diff(np.concatenate((starts, [x.size]))))
    count = np.bincount(instant)
    cx = np.bincount(instant, weights=x) / count
    cy = np.bincount(instant, weights=y) / count
    passes = LaneSegmenter(k * spacing_m).assign(cx, cy)[instant]
    n_pass = int(passes.max()) + 1
    # mean x of each sensor in each pass, then the sensors' rank across it
    key = passes * k + sensor
    sums = np.bincount(key, weights=x, minlength=n_pass * k)
    cnt = np.bincount(key, minlength=n_pass * k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x = (sums / cnt).reshape(n_pass, k)
    centre = np.array([np.mean(r[np.isfinite(r)]) for r in mean_x])
    step = -1.0 if n_pass > 1 and centre[-1] < centre[0] else 1.0
    # a sensor absent from a pass ranks last there (its lane has no rows)
    across = np.where(np.isfinite(mean_x), step * mean_x, np.inf)
    rank = np.argsort(np.argsort(across, axis=1, kind="stable"), axis=1)
    return passes * k + rank[passes, sensor]
