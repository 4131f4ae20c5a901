"""Per-lane levelling, despiking and robust noise estimates.

Zig-zag walking and imperfect zeroing give every lane its own offset (a
fluxgate gradiometer's heading error flips sign with walking direction), and
the sensors drift slowly. A lane's level is the median of its samples with
anomalies masked, iterated twice; slow drift along a long lane is removed by a
running median of the masked samples over `drift_window_m`. Noise is the MAD
of second differences (insensitive to offsets and slow trends), scaled to a
Gaussian sigma; a lane's background is the MAD of its high-pass, for which
`block_highpass` approximates a 5 m running median at a fraction of its cost.

Medians are exact order statistics by one single-pivot partition
(`fast_median`, `row_median`): they equal `np.median` value for value at a
fraction of its cost, which at lane sizes is most of the cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.ndimage import median_filter

MAD_TO_SIGMA = 1.482602218505602


def fast_median(a: np.ndarray, overwrite: bool = False) -> float:
    """Median of a 1-D float array via one partition, equal to `np.median`.

    One pivot, not two: numpy partitions around a single k with its SIMD
    selection (2-3 ns a sample), around a pair of k (what `np.median` asks)
    with a scalar introselect about 4x slower on fresh data. The lower middle
    of an even count is then the max of the lower part, exactly. With
    ``overwrite``, ``a`` (a scratch array of the caller's) is partitioned in place.
    """
    n = a.size
    if n == 0:
        return float("nan")
    k = n // 2
    if overwrite:
        a.partition(k)
        p = a
    else:
        p = np.partition(a, k)
    if n % 2:
        return float(p[k])
    return 0.5 * float(p[:k].max() + p[k])


def row_median(a: np.ndarray) -> np.ndarray:
    """`fast_median` of each row of a 2-D array (one single-pivot partition)."""
    n = a.shape[1]
    k = n // 2
    p = np.partition(a, k, axis=1)
    if n % 2:
        return p[:, k].copy()
    return 0.5 * (p[:, :k].max(axis=1) + p[:, k])


def diff_noise_rows(v: np.ndarray) -> np.ndarray:
    """`diff_noise` of each row of a 2-D array, equal value for value."""
    if v.shape[1] < 4:
        return np.zeros(v.shape[0])
    d = np.multiply(v[:, 1:-1], 2.0)
    np.subtract(v[:, 2:], d, out=d)
    d += v[:, :-2]
    # Rows partitioned in place: the same multiset per row, the same medians.
    np.subtract(d, _row_median_inplace(d)[:, None], out=d)
    np.abs(d, out=d)
    return MAD_TO_SIGMA * _row_median_inplace(d) / np.sqrt(6.0)


def _row_median_inplace(a: np.ndarray) -> np.ndarray:
    """`row_median` of a scratch array, each row partitioned in place."""
    n = a.shape[1]
    k = n // 2
    a.partition(k, axis=1)
    if n % 2:
        return a[:, k].copy()
    return 0.5 * (a[:, :k].max(axis=1) + a[:, k])


def percentile_sorted(s: Sequence[float], q: float) -> float:
    """`np.percentile(s, q)` (method "linear") of a sorted, non-empty sequence of
    finite floats: the same arithmetic on the two neighbouring order statistics,
    without np.percentile's fixed cost (~40 µs a call)."""
    n = len(s)
    virtual = (n - 1) * (q / 100)
    if virtual >= n - 1:
        return float(s[-1])
    if virtual < 0:
        return float(s[0])
    prev = math.floor(virtual)
    gamma = virtual - prev
    a, b = float(s[prev]), float(s[prev + 1])
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1 - gamma)
    return a + diff * gamma


def mad_sigma(v: np.ndarray, overwrite: bool = False) -> float:
    """Robust sigma of a sample: 1.4826 × median absolute deviation (0 if empty).

    With ``overwrite``, ``v`` (a scratch array of the caller's) is used as workspace.
    """
    v = np.asarray(v, dtype=np.float64)
    if v.size == 0:
        return 0.0
    med = fast_median(v, overwrite=overwrite)  # (in place: the same multiset after)
    d = np.subtract(v, med, out=v if overwrite else None)
    np.abs(d, out=d)
    return float(MAD_TO_SIGMA * fast_median(d, overwrite=True))


def diff_noise(v: np.ndarray) -> float:
    """White-noise sigma from second differences: MAD(Δ²)/√6.

    Offsets and linear trends (the flanks of wide anomalies) cancel, so the
    estimate stays at the sensor noise even across a strong signal.
    """
    v = np.asarray(v, dtype=np.float64)
    if v.size < 4:
        return 0.0
    # (v[2:] - 2 v[1:-1]) + v[:-2], the same roundings, in one scratch array
    d = np.multiply(v[1:-1], 2.0)
    np.subtract(v[2:], d, out=d)
    d += v[:-2]
    # Partitioned in place: the deviations from the median are the same
    # multiset in any order, so their median is too.
    med = fast_median(d, overwrite=True)
    np.subtract(d, med, out=d)
    np.abs(d, out=d)
    return float(MAD_TO_SIGMA * fast_median(d, overwrite=True) / np.sqrt(6.0))


def running_median(v: np.ndarray, size: int) -> np.ndarray:
    """``median_filter(v, size=size, mode="nearest")``: the one place the lane
    code takes a running median.

    Its ~10 µs of argument handling per call is as much as the filtering of a
    1000-sample lane; scipy's private 1-D kernel skips it, but a private
    kernel (which crashes the process on a 1-sample window) has no place in a
    service that runs beside the detector in the field, so we pay the 10 µs.
    """
    return median_filter(v, size=size, mode="nearest")


def block_highpass(v: np.ndarray, size: int, noise: float) -> np.ndarray:
    """``v`` minus an approximation of ``running_median(v, size)``: the high-pass
    the lane background estimate takes the MAD of, at 1/4 to 1/2 of the cost
    on lanes of a few thousand samples (about the same at 1000).

    What it approximates: the exact running median with "nearest" edges. How:
    ``v`` padded by ``size // 2`` copies of its end values (what "nearest"
    does), means of 3-sample blocks, the exact running median of those over
    ``(size // 3) | 1`` blocks (scipy, a third of the samples), linearly
    interpolated between block centres. One rule keeps what the exact filter
    does on the flanks of strong anomalies, where the samples are sorted over
    the window and the running median is the sample itself (high-pass 0):
    between two block centres whose values differ by more than 3 x ``noise``
    (the white-noise sigma: the trend then outruns the noise sample to
    sample), a sample lying between them (give or take ``noise``) gets 0 too.
    Without it the background of total-field lanes came out 4-5 % high (an
    earlier block-median attempt without it was rejected, `docs/dsp.md`).

    Why it is good enough: the result only feeds a robust spread (MAD), an
    order statistic of ``|high-pass|`` near 0.67 sigma. On quiet ground the
    median of 3-sample means has about the exact median's variance, and on a
    slope it follows the samples as closely, so the spread agrees to ~1-2 %
    a lane; the differences are the size of the ones the exact filter itself
    shows between windows of 49 and 51 samples.
    Lanes shorter than twice the window (or windows under 9 samples) take the
    exact filter. NaN-free input is assumed (guaranteed upstream).
    """
    v = np.asarray(v, dtype=np.float64)
    n = v.size
    h = size // 2
    nb = (n + 2 * h) // 3
    if h < 4 or nb < 8 or n < 2 * size:
        return v - running_median(v, size) if n else v.copy()
    p = np.empty(n + 2 * h)
    p[:h] = v[0]
    p[h:h + n] = v
    p[h + n:] = v[-1]
    # Block means, not medians: on a sloping background the running median of
    # block medians (less noisy than samples) turns into the identity at gentler
    # slopes than the exact filter does, and the spread came out 3-9 % low;
    # means of 3 keep it within ~1 %. (Spikes are gone upstream; the outer
    # median is what makes the baseline robust to anomalies.)
    # (as a + ((b - a) + (c - a)) / 3: a flat stretch gives exactly its value)
    a = p[0:3 * nb:3]
    blk = p[1:3 * nb:3] - a
    blk += p[2:3 * nb:3]
    blk -= a
    blk *= 1.0 / 3.0
    blk += a
    m = median_filter(blk, size=(size // 3) | 1, mode="nearest")
    # Block centres at p-index 3 j + 1; samples 3 j + 1 + t (t = 0, 1, 2) lie
    # between centres j and j + 1: the baseline there, by strided writes
    # (a broadcast over a last axis of 3 costs 3 ns a sample more).
    m0, m1 = m[:-1], m[1:]
    d = m1 - m0
    base = np.empty(3 * (nb - 1))
    base[0::3] = m0
    d3 = d * (1.0 / 3.0)
    np.add(m0, d3, out=base[1::3])
    np.add(base[1::3], d3, out=base[2::3])
    hp = np.subtract(v, base[h - 1:h - 1 + n])
    steep = np.flatnonzero(np.abs(d) > 3.0 * noise)
    if steep.size:
        # samples (p-index 3 j + 1 + t) of steep intervals lying between the two
        # block values: the exact filter follows them (sorted window)
        lo = np.minimum(m0, m1) - noise
        hi = np.maximum(m0, m1) + noise
        i = (3 * steep[:, None] + _STEPS).ravel() - (h - 1)
        j = np.repeat(steep, 3)
        ok = (i >= 0) & (i < n)
        i, j = i[ok], j[ok]
        x = v[i]
        inside = (x >= lo[j]) & (x <= hi[j])
        hp[i[inside]] = 0.0
    return hp


_STEPS = np.arange(3)


def despike(v: np.ndarray, noise: float, k: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """Replace isolated one-sample spikes by the mean of their neighbours.

    A spike stands out from *both* neighbours by more than ``k`` × noise while
    the neighbours agree with each other; a real anomaly at walking speed
    spans several samples, so it is left alone. Returns (cleaned, spike mask).
    """
    v = np.asarray(v, dtype=np.float64)
    out = v.copy()
    mask = np.zeros(v.shape, dtype=bool)
    idx = spike_index(v, noise, k)
    if idx.size:
        out[idx] = 0.5 * (v[idx - 1] + v[idx + 1])
        mask[idx] = True
    return out, mask


def spike_index(v: np.ndarray, noise: float, k: float = 8.0) -> np.ndarray:
    """Indices of the samples `despike` replaces (ascending): without its copies,
    for callers that usually find none."""
    if v.size < 3 or noise <= 0:
        return np.empty(0, dtype=np.intp)
    thr = k * noise
    # Candidates first: both steps around the sample over thr (|mid - a| is
    # |d[i-1]|, |mid - b| is |d[i]| exactly); only they get the other tests.
    d = np.subtract(v[1:], v[:-1])
    np.abs(d, out=d)
    # Steps over thr are few: sample i is a candidate when steps i - 1 and i
    # both are, i.e. two consecutive entries of the (sorted) step list.
    big = np.flatnonzero(d > thr)
    i = big[:-1][big[1:] - big[:-1] == 1] + 1
    if i.size:
        mid, a, b = v[i], v[i - 1], v[i + 1]
        i = i[(np.abs(a - b) < 0.5 * thr) & (np.sign(mid - a) == np.sign(mid - b))]
    return i


def dilate(m: np.ndarray, grow: int) -> np.ndarray:
    """``m`` grown by ``grow`` samples on each side (any over the centred window)."""
    n = m.size
    w = 2 * grow + 1
    cur = np.zeros(n + 2 * grow, dtype=bool)
    cur[grow:grow + n] = m
    # Window ORs by doubling: cur[j] = any(padded[j:j + span]); 4 ops for w = 11.
    span = 1
    while span < w:
        s = min(span, w - span)
        cur = cur[:-s] | cur[s:]
        span += s
    return cur


def anomaly_mask(dev: np.ndarray, thr: float, grow: int) -> np.ndarray:
    """Samples over ``thr`` in magnitude, grown by ``grow`` samples on each side."""
    m = np.abs(dev) > thr
    if grow > 0 and m.any():
        m = dilate(m, grow)
    return m


def masked_level(v: np.ndarray, noise: float, *, k_mask: float = 3.0,
                 grow: int = 5) -> tuple[float, np.ndarray]:
    """A lane's constant level: median with anomalies masked, iterated.

    Returns (level, mask of the samples left out). ``v`` must be non-empty.
    """
    n = v.size
    level = fast_median(v)
    thr = max(k_mask * noise, 1e-9)
    mask = np.zeros(n, dtype=bool)
    over = None
    for it in range(3):
        new_over = np.abs(v - level) > thr
        if it and over is not None and np.array_equal(new_over, over):
            break  # same samples over thr: the same grown mask again
        over = new_over
        new_mask = dilate(over, grow) if grow > 0 and over.any() else over
        if it and np.array_equal(new_mask, mask):
            break
        mask = new_mask
        masked = int(np.count_nonzero(mask))
        if n - masked < max(5, n // 5):
            break
        if masked == 0:
            # Level = median of all samples: what the level already is (it = 0),
            # and the next mask would repeat this one.
            if it == 0:
                break
            level = fast_median(v)
        else:
            level = fast_median(v[~mask], overwrite=True)
    return level, mask


def level_lane(v: np.ndarray, noise: float, *, k_mask: float = 3.0, grow: int = 5,
               drift_window: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Level one lane: subtract a masked median (and slow drift if asked).

    ``noise`` is the sigma used to mask anomalies (k_mask × noise). With
    ``drift_window`` > 0 samples, a running median of the masked samples (masked
    gaps filled by linear interpolation) is subtracted instead of a constant.
    Returns (levelled values, baseline that was subtracted).
    """
    v = np.asarray(v, dtype=np.float64)
    n = v.size
    if n == 0:
        return v.copy(), v.copy()
    level, mask = masked_level(v, noise, k_mask=k_mask, grow=grow)
    base = np.full(n, level)
    if drift_window > 0 and n > 2 * drift_window:
        keep = ~mask
        if keep.sum() >= max(10, n // 3):
            idx = np.arange(n)
            filled = np.interp(idx, idx[keep], v[keep])
            base = median_filter(filled, size=drift_window, mode="nearest")
    return v - base, base
