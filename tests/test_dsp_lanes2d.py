"""The 2-D (many lanes at once) levelling and detection equal the per-lane path."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.dsp.detect import find_segments
from acquisition.dsp.lanes2d import diff_noise_2d, level_detect_lanes
from acquisition.dsp.levelling import despike, diff_noise, level_lane


def _lanes(seed: int, n_lanes: int, n: int, spikes: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.arange(n) * 0.1
    v = rng.normal(0, 0.5, (n_lanes, n)) + rng.normal(0, 2, (n_lanes, 1))
    for r in range(n_lanes):
        for c in rng.uniform(0, y[-1], 2):
            v[r] += rng.uniform(-30, 30) * np.exp(-0.5 * ((y - c) / rng.uniform(0.2, 2.0)) ** 2)
        idx = rng.integers(1, n - 1, spikes)
        v[r, idx] += rng.choice([-20.0, 20.0], spikes)
    return v


def _per_lane(v: np.ndarray, x: np.ndarray, y: np.ndarray, gap: int) -> tuple[list, list]:
    levs, segs = [], []
    for r in range(v.shape[0]):
        s = diff_noise(v[r])
        c, _ = despike(v[r], s)
        lev, _ = level_lane(c, s)
        levs.append(lev)
        segs += find_segments(lev, 5 * s, x[r], y[r], r, merge_gap=gap) if s > 0 else []
    return levs, segs


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_lanes=st.integers(1, 6), n=st.integers(5, 400),
       spikes=st.integers(0, 5), gap=st.integers(1, 15))
def test_2d_equals_per_lane(seed: int, n_lanes: int, n: int, spikes: int, gap: int) -> None:
    v = _lanes(seed, n_lanes, n, spikes)
    y = np.broadcast_to(np.arange(n) * 0.1, v.shape)
    x = np.broadcast_to(np.arange(n_lanes)[:, None] + 0.5, v.shape)
    lev, noise, segs = level_detect_lanes(v, x, y, merge_gap=gap)
    ref_lev, ref_segs = _per_lane(v, x, y, gap)
    for r in range(n_lanes):
        assert np.array_equal(lev[r], ref_lev[r])
        assert noise[r] == diff_noise(v[r])
    assert segs == ref_segs


def test_finds_the_planted_signals_on_every_lane() -> None:
    n = 1000
    y = np.arange(n) * 0.1
    rng = np.random.default_rng(4)
    v = rng.normal(0, 0.5, (3, n)) + np.array([[1.0], [-2.0], [0.5]])
    v += 25 * np.exp(-0.5 * ((y - 40.0) / 0.5) ** 2)
    lev, noise, segs = level_detect_lanes(v, np.zeros_like(v), np.broadcast_to(y, v.shape))
    assert [s.lane for s in segs] == [0, 1, 2]
    assert all(abs(s.y - 40.0) <= 0.2 for s in segs)
    assert np.allclose(noise, 0.5, rtol=0.2)
    assert abs(float(np.median(lev))) < 0.1


def test_short_rows() -> None:
    assert np.array_equal(diff_noise_2d(np.ones((2, 3))), np.zeros(2))
