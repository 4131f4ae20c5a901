"""Second round of exact speed-ups (issue #4, "Speed") equal their plain twins.

- `find_segments` without padded copies and with strong counts from the weak
  samples equals the version it replaced (kept here), segment for segment.
- `diff_noise`, `diff_noise_rows` and `mad_sigma` with in-place partitions
  equal the formulas they replaced; `spike_index` is `despike`'s mask.
- The live detector's lazy level (a quiet block's level computed only when
  asked for) and its quiet-block shortcut on a lane's growing windows give the
  same hits and levels as the sample-run path when nobody reads the level
  between blocks.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_dsp_speed_paths import chunks
from test_dsp_speed_shortcuts import busy_lane

from acquisition.dsp.detect import LiveDetector, Segment, find_segments
from acquisition.dsp.levelling import (
    MAD_TO_SIGMA,
    despike,
    diff_noise,
    diff_noise_rows,
    fast_median,
    mad_sigma,
    spike_index,
)

# ----------------------------------------------------------------- reference twins


def ref_find_segments(lev: np.ndarray, thr: float, x: np.ndarray, y: np.ndarray, lane: int,
                      merge_gap: int = 10, min_len: int = 2,
                      low_frac: float = 0.5) -> list[Segment]:
    """`find_segments` as it was before this round (padded reduceat copies)."""
    a = np.abs(lev)
    strong = a > thr
    if not strong.any():
        return []
    idx = np.flatnonzero(a > low_frac * thr)
    breaks = np.flatnonzero(np.diff(idx) > merge_gap)
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
    pad = np.append
    amax = np.maximum.reduceat(pad(a, 0.0), bounds)[0::2]
    y0 = np.minimum.reduceat(pad(y, 0.0), bounds)[0::2]
    y1 = np.maximum.reduceat(pad(y, 0.0), bounds)[0::2]
    xm = np.add.reduceat(pad(x, 0.0), bounds)[0::2] / (ends - starts + 1)
    out = []
    for k, (s0, s1) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        p = s0 + int(np.argmax(a[s0:s1 + 1] >= amax[k]))
        out.append(Segment(lane=lane, i0=s0, i1=s1, peak=p, amplitude=float(lev[p]),
                           x=float(x[p]), y=float(y[p]), y0=float(y0[k]), y1=float(y1[k]),
                           x_mean=float(xm[k])))
    return out


def ref_diff_noise(v: np.ndarray) -> float:
    if v.size < 4:
        return 0.0
    d = v[2:] - 2.0 * v[1:-1] + v[:-2]
    d = np.abs(d - float(np.median(d)))
    return float(MAD_TO_SIGMA * float(np.median(d)) / np.sqrt(6.0))


# ------------------------------------------------------------------------ helpers


def _lane(seed: int, n: int, signals: int, decimals: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) * 0.1 + rng.normal(0, 0.01, n)
    x = rng.normal(0.5, 0.05, n)
    v = rng.normal(0, 0.5, n)
    for c in rng.uniform(0, max(y[-1], 0.1), signals):
        amp = rng.choice([-1, 1]) * rng.uniform(1.0, 30.0)
        v += amp * np.exp(-0.5 * ((y - c) / rng.uniform(0.1, 1.5)) ** 2)
    return np.round(v, decimals), x, y


# -------------------------------------------------------------------------- tests


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 400), signals=st.integers(0, 6),
       decimals=st.integers(0, 3), thr=st.sampled_from([0.0, 1.0, 2.5, 4.0, -1.0]),
       gap=st.integers(1, 15), min_len=st.integers(1, 4),
       low=st.sampled_from([0.5, 0.2, 1.0, 1.5]), end_hit=st.booleans(),
       nan=st.booleans())
def test_find_segments_equals_reference(seed: int, n: int, signals: int, decimals: int,
                                        thr: float, gap: int, min_len: int, low: float,
                                        end_hit: bool, nan: bool) -> None:
    v, x, y = _lane(seed, n, signals, decimals)
    if end_hit:  # a segment running to the last sample (reduceat's edge)
        v[-3:] += 50.0
    if nan and n > 5:
        v[n // 2] = np.nan
    got = find_segments(v, thr, x, y, 3, merge_gap=gap, min_len=min_len, low_frac=low)
    assert got == ref_find_segments(v, thr, x, y, 3, merge_gap=gap, min_len=min_len,
                                    low_frac=low)


def test_find_segments_reference_finds_the_end_segment() -> None:
    """The edge case above is really exercised: a segment ending at the last sample."""
    v, x, y = _lane(1, 200, 0, 2)
    v[-4:] += 40.0
    segs = find_segments(v, 2.5, x, y, 0)
    assert segs and segs[-1].i1 == 199 and segs[-1].peak >= 196
    assert segs == ref_find_segments(v, 2.5, x, y, 0)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 400), decimals=st.integers(0, 3),
       rows=st.integers(1, 6), spikes=st.integers(0, 5))
def test_noise_estimates_and_spikes_equal_reference(seed: int, n: int, decimals: int, rows: int,
                                                    spikes: int) -> None:
    rng = np.random.default_rng(seed)
    v = np.round(rng.normal(0, 0.5, n) + rng.standard_t(2, n) * 0.2, decimals)
    if n > 2 and spikes:
        v[rng.integers(1, n - 1, spikes)] += rng.choice([-30.0, 30.0], spikes)
    assert diff_noise(v) == ref_diff_noise(v)
    w = v.copy()
    assert mad_sigma(w, overwrite=True) == mad_sigma(v)
    if n:
        med = float(np.median(v))
        assert mad_sigma(v) == float(MAD_TO_SIGMA * np.median(np.abs(v - med)))
    m = np.round(rng.normal(0, 1, (rows, max(n, 1))), decimals)
    assert diff_noise_rows(m).tolist() == [ref_diff_noise(r) for r in m]
    s = diff_noise(v)
    assert np.array_equal(spike_index(v, s), np.flatnonzero(despike(v, s)[1]))


def _feed_unread(v: np.ndarray, y: np.ndarray, sizes: list[int], quiet: bool,
                 noise: float | None, lanes: int, prior: float | None) -> tuple[list, list]:
    """Hits of every block, and the level only at each lane's end (never between
    blocks, so the lazy level stays lazy over a whole lane)."""
    det = LiveDetector(k=6.0, max_delay=3, quiet_path=quiet)
    det.noise = noise
    hits, levels = [], []
    per = v.size // lanes
    for ln in range(lanes):
        det.start_lane(prior if ln == 0 else levels[-1])
        lv, ly = v[ln * per:(ln + 1) * per], y[ln * per:(ln + 1) * per]
        for s in chunks(lv.size, sizes):
            hits += det.feed(lv[s], ly[s])
        levels.append(det.level)
    return hits, levels


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(200, 5000),
       sizes=st.lists(st.integers(20, 1500), min_size=1, max_size=4),
       noise=st.sampled_from([0.5, 0.3, None]), signals=st.integers(0, 4),
       lanes=st.integers(1, 3), prior=st.sampled_from([None, 0.0, 1.5]),
       tail=st.floats(0.0, 1.0))
def test_live_lazy_level_equals_sample_runs(seed: int, n: int, sizes: list[int],
                                            noise: float | None, signals: int, lanes: int,
                                            prior: float | None, tail: float) -> None:
    y, v = busy_lane(np.random.default_rng(seed), n, signals, tail, offset_sd=1.0, amp_hi=8.0)
    assert (_feed_unread(v, y, sizes, True, noise, lanes, prior)
            == _feed_unread(v, y, [10**9], False, noise, lanes, prior))


def test_live_lazy_level_is_taken_and_exact() -> None:
    """Quiet lanes in blocks of 1000: the level is left uncomputed after each
    block (also the lane's first, on growing windows), and when asked for it is
    the median of the last update's window."""
    rng = np.random.default_rng(4)
    v = rng.normal(0, 0.5, 5000)
    y = np.arange(5000) * 0.1
    det = LiveDetector(k=6.0)
    det.noise = 0.5
    det.start_lane(0.0)
    pend = []
    for i in range(0, 5000, 1000):
        assert det.feed(v[i:i + 1000], y[i:i + 1000]) == []
        pend.append(det._pending)
    assert pend == [960, 1920, 2880, 4000, 4960]
    assert det.level == fast_median(v[4960 - 600:4960]) and det._pending == 0


def test_live_lazy_level_is_counted_in_the_next_block() -> None:
    """A quiet block's uncomputed level still bounds the next block's first
    stretch: here only that level puts the first samples over the threshold.

    Lane: 0 nT, with -2.9 nT over samples 360-659 (under the threshold of 3
    nT). The level after the first block (window 360-959) is then -1.45; the
    second block reads 1.6 nT, 3.05 above it before the next update (1120),
    though the later windows (from 520 on) hold too few low samples to say so.
    """
    v = np.zeros(2000)
    v[360:660] = -2.9
    v[1000:] = 1.6
    y = np.arange(2000) * 0.1
    got = []
    for quiet in (True, False):
        det = LiveDetector(k=6.0, max_delay=0, quiet_path=quiet)
        det.noise = 0.5
        det.start_lane(0.0)
        hits = det.feed(v[:1000], y[:1000])
        if quiet:
            assert det._pending == 960  # left uncomputed
        hits += det.feed(v[1000:], y[1000:])
        got.append(hits)
    assert got[0] == got[1]
    assert [h.emit_pos for h in got[0]] == [1000]
