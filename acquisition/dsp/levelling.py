"""Per-lane levelling, despiking and robust noise estimates.

Zig-zag walking and imperfect zeroing give every lane its own offset (a
fluxgate gradiometer's heading error flips sign with walking direction), and
the sensors drift slowly. A lane's level is the median of its samples with
anomalies masked, iterated twice; slow drift along a long lane is removed by a
running median of the masked samples over `drift_window_m`. Noise is the MAD
of first differences (insensitive to offsets and slow trends), scaled to a
Gaussian sigma.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter

MAD_TO_SIGMA = 1.482602218505602


def fast_median(a: np.ndarray) -> float:
    """Median of a 1-D float array via one partition (np.median's overhead dominates
    at lane sizes)."""
    n = a.size
    if n == 0:
        return float("nan")
    k = n // 2
    if n % 2:
        return float(np.partition(a, k)[k])
    p = np.partition(a, (k - 1, k))
    return 0.5 * float(p[k - 1] + p[k])


def mad_sigma(v: np.ndarray) -> float:
    """Robust sigma of a sample: 1.4826 × median absolute deviation (0 if empty)."""
    v = np.asarray(v, dtype=np.float64)
    if v.size == 0:
        return 0.0
    return float(MAD_TO_SIGMA * fast_median(np.abs(v - fast_median(v))))


def diff_noise(v: np.ndarray) -> float:
    """White-noise sigma from second differences: MAD(Δ²)/√6.

    Offsets and linear trends (the flanks of wide anomalies) cancel, so the
    estimate stays at the sensor noise even across a strong signal.
    """
    v = np.asarray(v, dtype=np.float64)
    if v.size < 4:
        return 0.0
    d = v[2:] - 2.0 * v[1:-1] + v[:-2]
    return float(MAD_TO_SIGMA * fast_median(np.abs(d - fast_median(d))) / np.sqrt(6.0))


def despike(v: np.ndarray, noise: float, k: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """Replace isolated one-sample spikes by the mean of their neighbours.

    A spike stands out from *both* neighbours by more than ``k`` × noise while
    the neighbours agree with each other; a real anomaly at walking speed
    spans several samples, so it is left alone. Returns (cleaned, spike mask).
    """
    v = np.asarray(v, dtype=np.float64)
    out = v.copy()
    mask = np.zeros(v.shape, dtype=bool)
    if v.size < 3 or noise <= 0:
        return out, mask
    mid = v[1:-1]
    a, b = v[:-2], v[2:]
    thr = k * noise
    spike = (np.abs(mid - a) > thr) & (np.abs(mid - b) > thr) & (np.abs(a - b) < 0.5 * thr) & (
        np.sign(mid - a) == np.sign(mid - b))
    idx = np.flatnonzero(spike) + 1
    out[idx] = 0.5 * (v[idx - 1] + v[idx + 1])
    mask[idx] = True
    return out, mask


def anomaly_mask(dev: np.ndarray, thr: float, grow: int) -> np.ndarray:
    """Samples over ``thr`` in magnitude, grown by ``grow`` samples on each side."""
    m = np.abs(dev) > thr
    if grow > 0 and m.any():
        # Dilation by a running window count (cumsum): much cheaper than ndimage here.
        c = np.concatenate(([0], np.cumsum(m, dtype=np.int64)))
        n = m.size
        idx = np.arange(n)
        lo = np.maximum(idx - grow, 0)
        hi = np.minimum(idx + grow + 1, n)
        m = (c[hi] - c[lo]) > 0
    return m


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
    level = fast_median(v)
    thr = max(k_mask * noise, 1e-9)
    mask = np.zeros(n, dtype=bool)
    for _ in range(3):
        new_mask = anomaly_mask(v - level, thr, grow)
        if _ and np.array_equal(new_mask, mask):
            break
        mask = new_mask
        keep = ~mask
        if keep.sum() < max(5, n // 5):
            break
        level = fast_median(v[keep])
    base = np.full(n, level)
    if drift_window > 0 and n > 2 * drift_window:
        keep = ~mask
        if keep.sum() >= max(10, n // 3):
            idx = np.arange(n)
            filled = np.interp(idx, idx[keep], v[keep])
            base = median_filter(filled, size=drift_window, mode="nearest")
    return v - base, base
