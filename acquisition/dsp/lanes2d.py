"""Levelling and detection of many finished lanes at once (2-D arrays).

The per-lane functions in `levelling` and `detect` cost a few dozen numpy
calls per lane; at 1000 samples a call's fixed cost (2-10 µs) caps them near
4-5 M samples/s. Here the same steps run on a (lanes, samples) array with one
call per step for all lanes: white noise from second differences, despiking,
masked-median levelling (iterated, per-lane stop rules kept), then segments
per lane. Results equal the per-lane functions exactly (tests check it), so
batch processing may use either.

Plain row medians come from one single-pivot partition per row; masked
medians from one sort per iteration: masked samples are set to +inf, so a
lane's median is the middle of its first ``kept`` sorted values.
"""

from __future__ import annotations

import numpy as np

from acquisition.dsp.detect import Segment
from acquisition.dsp.levelling import MAD_TO_SIGMA, row_median


def _row_median(a: np.ndarray) -> np.ndarray:
    """Median of each row (exact, as `fast_median`)."""
    # One pivot per row (numpy's SIMD select, ~30 % faster than a row sort;
    # a pair of pivots, as np.median asks, takes a scalar path 4x slower).
    return row_median(a)


def diff_noise_2d(v: np.ndarray) -> np.ndarray:
    """`levelling.diff_noise` of each row: MAD(Δ²)/√6."""
    if v.shape[1] < 4:
        return np.zeros(v.shape[0])
    d = v[:, 2:] - 2.0 * v[:, 1:-1] + v[:, :-2]
    m = _row_median(d)
    return MAD_TO_SIGMA * _row_median(np.abs(d - m[:, None])) / np.sqrt(6.0)


def despike_2d(v: np.ndarray, noise: np.ndarray, k: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """`levelling.despike` of each row with its own noise."""
    out = v.copy()
    mask = np.zeros(v.shape, dtype=bool)
    if v.shape[1] < 3:
        return out, mask
    d = np.diff(v, axis=1)
    d1, d2 = d[:, :-1], -d[:, 1:]  # mid - left, mid - right
    thr = (k * noise)[:, None]
    # Same sign and both over thr > 0 <=> product over thr² (as sign(·) == sign(·)).
    spike = ((np.abs(d1) > thr) & (np.abs(d2) > thr) & (np.abs(d2 - d1) < 0.5 * thr)
             & (d1 * d2 > 0))
    spike &= (noise > 0)[:, None]
    r, c = np.nonzero(spike)
    c = c + 1
    out[r, c] = 0.5 * (v[r, c - 1] + v[r, c + 1])
    mask[r, c] = True
    return out, mask


def _mask_2d(dev: np.ndarray, thr: np.ndarray, grow: int) -> np.ndarray:
    m = np.abs(dev) > thr[:, None]
    if grow > 0:
        # Dilation by a running window count on a zero-padded cumsum (slices only).
        nl, n = m.shape
        c = np.zeros((nl, n + 2 * grow + 1), dtype=np.int32)
        np.cumsum(m, axis=1, out=c[:, grow + 1:n + grow + 1])
        c[:, n + grow + 1:] = c[:, n + grow:n + grow + 1]
        w = 2 * grow + 1
        m = (c[:, w:] - c[:, :-w]) > 0
    return m


def level_2d(v: np.ndarray, noise: np.ndarray, *, k_mask: float = 3.0,
             grow: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """`levelling.level_lane` (constant level) of each row; returns (levelled, level)."""
    nl, n = v.shape
    level = _row_median(v)
    thr = np.maximum(k_mask * noise, 1e-9)
    mask = np.zeros(v.shape, dtype=bool)
    active = np.ones(nl, dtype=bool)
    for it in range(3):
        new_mask = _mask_2d(v - level[:, None], thr, grow)
        if it:
            active &= ~np.all(new_mask == mask, axis=1)
        mask = np.where(active[:, None], new_mask, mask)
        kept = n - mask.sum(axis=1)
        active &= kept >= max(5, n // 5)
        if not active.any():
            break
        s = np.sort(np.where(mask, np.inf, v), axis=1)
        rows = np.arange(nl)
        lo = np.clip((kept - 1) // 2, 0, n - 1)
        hi = np.clip(kept // 2, 0, n - 1)
        med = np.where(kept % 2 == 1, s[rows, hi], 0.5 * (s[rows, lo] + s[rows, hi]))
        level = np.where(active, med, level)
    return v - level[:, None], level


def level_detect_lanes(v: np.ndarray, x: np.ndarray, y: np.ndarray, k: float = 5.0,
                       merge_gap: int = 10, first_lane: int = 0,
                       ) -> tuple[np.ndarray, np.ndarray, list[Segment]]:
    """Noise, despike, level and find segments on equal-length lanes (rows).

    ``x`` and ``y`` have the shape of ``v``. Returns (levelled, noise per lane,
    segments of all lanes), the segments' ``lane`` being ``first_lane + row``.
    """
    v = np.asarray(v, dtype=np.float64)
    s = diff_noise_2d(v)
    c, _ = despike_2d(v, s)
    lev, _ = level_2d(c, s)
    return lev, s, segments_2d(lev, k * s, x, y, merge_gap=merge_gap, first_lane=first_lane)


def segments_2d(lev: np.ndarray, thr: np.ndarray, x: np.ndarray, y: np.ndarray,
                merge_gap: int = 10, min_len: int = 2, low_frac: float = 0.5,
                first_lane: int = 0) -> list[Segment]:
    """`detect.find_segments` on every row at once (runs never cross rows)."""
    n = lev.shape[1]
    a = np.abs(lev)
    thr = np.where(thr > 0, thr, np.inf)
    strong = (a > thr[:, None]).ravel()
    if not strong.any():
        return []
    af = a.ravel()
    idx = np.flatnonzero(a > (low_frac * thr)[:, None])
    row = idx // n
    breaks = np.flatnonzero((np.diff(idx) > merge_gap) | (np.diff(row) != 0))
    starts = np.concatenate((idx[:1], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks], idx[-1:]))
    cs = np.concatenate(([0], np.cumsum(strong)))
    keep = (cs[ends + 1] - cs[starts]) >= min_len
    starts, ends = starts[keep], ends[keep]
    if starts.size == 0:
        return []
    bounds = np.empty(2 * starts.size, dtype=np.int64)
    bounds[0::2] = starts
    bounds[1::2] = ends + 1
    xf, yf, lf = x.ravel(), y.ravel(), lev.ravel()
    pad = np.append
    amax = np.maximum.reduceat(pad(af, 0.0), bounds)[0::2]
    y0 = np.minimum.reduceat(pad(yf, 0.0), bounds)[0::2]
    y1 = np.maximum.reduceat(pad(yf, 0.0), bounds)[0::2]
    xm = np.add.reduceat(pad(xf, 0.0), bounds)[0::2] / (ends - starts + 1)
    out: list[Segment] = []
    for k, (s0, s1) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        p = s0 + int(np.argmax(af[s0:s1 + 1] >= amax[k]))
        r = s0 // n
        out.append(Segment(lane=first_lane + r, i0=s0 - r * n, i1=s1 - r * n, peak=p - r * n,
                           amplitude=float(lf[p]), x=float(xf[p]), y=float(yf[p]),
                           y0=float(y0[k]), y1=float(y1[k]), x_mean=float(xm[k])))
    return out
