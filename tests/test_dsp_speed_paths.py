"""The fast paths of the live lane pipeline equal their plain reference twins.

Levelling and detection were sped up (issue #4, "Speed") without changing a
single result: every fast path here is checked against a plain twin (the code
it replaced, kept in this file) on random input and in any chunking.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from dsp_synth import induced, survey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acquisition.dsp.batch import make_descriptor
from acquisition.dsp.detect import LiveDetector
from acquisition.dsp.lanes2d import diff_noise_2d
from acquisition.dsp.levelling import (
    despike,
    diff_noise,
    diff_noise_rows,
    dilate,
    fast_median,
    level_lane,
    mad_sigma,
    masked_level,
    percentile_sorted,
    row_median,
)
from acquisition.dsp.pipeline import LanePipeline
from acquisition.dsp.segment import LaneSegmenter
from acquisition.dsp.walkgeom import end_turns, walk_step
from acquisition.events import Anomaly
from acquisition.geomag import QUANG_TRI
from acquisition.types import SampleBlock

# ----------------------------------------------------------------- reference twins


def ref_despike(v: np.ndarray, noise: float, k: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """The dense despike the candidate version replaced."""
    out, mask = v.copy(), np.zeros(v.shape, dtype=bool)
    if v.size < 3 or noise <= 0:
        return out, mask
    mid, a, b = v[1:-1], v[:-2], v[2:]
    thr = k * noise
    spike = (np.abs(mid - a) > thr) & (np.abs(mid - b) > thr) & (np.abs(a - b) < 0.5 * thr) & (
        np.sign(mid - a) == np.sign(mid - b))
    idx = np.flatnonzero(spike) + 1
    out[idx] = 0.5 * (v[idx - 1] + v[idx + 1])
    mask[idx] = True
    return out, mask


def ref_dilate(m: np.ndarray, grow: int) -> np.ndarray:
    n = m.size
    return np.array([m[max(0, i - grow):i + grow + 1].any() for i in range(n)], dtype=bool)


def ref_level(v: np.ndarray, noise: float, k_mask: float = 3.0, grow: int = 5) -> float:
    """The masked-median level as first written (np.median, loop dilation)."""
    n = v.size
    level = float(np.median(v))
    thr = max(k_mask * noise, 1e-9)
    mask = np.zeros(n, dtype=bool)
    for it in range(3):
        m = np.abs(v - level) > thr
        new_mask = ref_dilate(m, grow) if grow > 0 and m.any() else m
        if it and np.array_equal(new_mask, mask):
            break
        mask = new_mask
        if (~mask).sum() < max(5, n // 5):
            break
        level = float(np.median(v[~mask]))
    return level


def ref_end_turns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    side = np.abs(np.diff(x)) > np.abs(np.diff(y))
    out = np.zeros(x.size, dtype=bool)
    k = 0
    while k < side.size and side[k]:
        out[k] = True
        k += 1
    if k:
        out[k] = True
    k = side.size - 1
    while k >= 0 and side[k]:
        out[k + 1] = True
        k -= 1
    if k < side.size - 1:
        out[k + 1] = True
    return out


class RefSegmenter(LaneSegmenter):
    """The lane segmenter as first written: settling sample by sample, one lane
    number per sample."""

    def assign(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        n = len(x)
        out = np.empty(n, dtype=np.int64)
        i = 0
        while i < n:
            if self.lane < 0:
                self._new_lane(float(x[i]))
            if self.x_ref is None:
                xi, yi = float(x[i]), float(y[i])
                if self._count > 0 and abs(xi - self._x_first) > 1.5 * self.spacing:
                    self._new_lane(xi)
                self._prov_x.append(xi)
                self._prov_y.append(yi)
                self._count += 1
                out[i] = self.lane
                if self._count >= self.settle:
                    self.x_ref = float(np.median(self._prov_x[self.skip:]))
                    self._y_anchor = float(np.median(self._prov_y[self.skip:]))
                i += 1
                continue
            xs, ys = x[i:], y[i:]
            brk = np.abs(xs - self.x_ref) > 0.5 * self.spacing
            j0 = 0
            if self._dir == 0:
                far = np.flatnonzero(np.abs(ys - self._y_anchor) > self.direction_m)
                if far.size:
                    j0 = int(far[0])
                    self._dir = 1 if ys[j0] > self._y_anchor else -1
                else:
                    j0 = len(xs)
            if j0 < len(xs):
                along = (ys[j0:] - self._y_anchor) * self._dir
                ext = np.maximum.accumulate(np.maximum(along, self._ext))
                brk[j0:] |= (ext - along) > self.reversal_m
            hits = np.flatnonzero(brk)
            stop = int(hits[0]) if hits.size else len(xs)
            out[i:i + stop] = self.lane
            self._count += stop
            if j0 < stop:
                reach = float(np.max((ys[j0:stop] - self._y_anchor) * self._dir))
                self._ext = max(self._ext, reach)
            i += stop
            if hits.size:
                self._new_lane(float(x[i]))
        return out


def chunks(n: int, sizes: list[int]) -> list[slice]:
    out, i, k = [], 0, 0
    while i < n:
        m = max(1, sizes[k % len(sizes)])
        out.append(slice(i, min(n, i + m)))
        i += m
        k += 1
    return out


# ----------------------------------------------------------------------- medians

floats = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(floats, min_size=1, max_size=60), st.integers(0, 3))
def test_fast_median_equals_numpy(vals: list[float], dup: int) -> None:
    a = np.array(vals + vals[:dup])  # repeated values too
    assert fast_median(a) == float(np.median(a))
    b = a.copy()
    assert fast_median(b, overwrite=True) == float(np.median(a))


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.integers(1, 7), cols=st.integers(1, 40))
def test_row_median_and_row_noise_equal_per_row(seed: int, rows: int, cols: int) -> None:
    rng = np.random.default_rng(seed)
    a = np.round(rng.normal(0, 1, (rows, cols)), int(rng.integers(0, 3)))  # ties
    assert row_median(a).tolist() == [fast_median(r) for r in a]
    assert diff_noise_rows(a).tolist() == [diff_noise(r) for r in a]
    assert np.array_equal(diff_noise_rows(a), diff_noise_2d(a))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=50),
       st.floats(0, 100))
def test_percentile_sorted_equals_numpy(vals: list[float], q: float) -> None:
    assert percentile_sorted(sorted(vals), q) == float(np.percentile(vals, q))


def test_mad_sigma_overwrite_same_value() -> None:
    v = np.random.default_rng(1).standard_t(3, 501)
    w = v.copy()
    assert mad_sigma(w, overwrite=True) == mad_sigma(v)


# -------------------------------------------------------------- levelling pieces


def _lane(seed: int, n: int, spikes: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.arange(n) * 0.1
    v = rng.normal(0, 0.5, n) + rng.normal(0, 2)
    for c in rng.uniform(0, y[-1], 2):
        v += rng.uniform(-30, 30) * np.exp(-0.5 * ((y - c) / rng.uniform(0.2, 2.0)) ** 2)
    idx = rng.integers(0, n, spikes)
    v[idx] += rng.choice([-20.0, 20.0], spikes)
    return np.round(v, int(rng.integers(1, 4)))  # instrument resolution: ties


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 300), spikes=st.integers(0, 6),
       noise=st.sampled_from([0.0, 0.3, 0.5, 2.0]), grow=st.integers(0, 7))
def test_levelling_pieces_equal_reference(seed: int, n: int, spikes: int, noise: float,
                                          grow: int) -> None:
    v = _lane(seed, n, spikes)
    for got, ref in zip(despike(v, noise), ref_despike(v, noise), strict=True):
        assert np.array_equal(got, ref)
    m = np.abs(v - np.median(v)) > 1.0
    assert np.array_equal(dilate(m, grow), ref_dilate(m, grow))
    level, _ = masked_level(v, noise, grow=grow)
    assert level == ref_level(v, noise, grow=grow)
    lev, _ = level_lane(v, noise, grow=grow)
    assert np.array_equal(lev, v - ref_level(v, noise, grow=grow))


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 60), lead=st.integers(0, 25),
       trail=st.integers(0, 25))
def test_end_turns_equal_reference(seed: int, n: int, lead: int, trail: int) -> None:
    rng = np.random.default_rng(seed)
    y = np.arange(n) * 0.1 + rng.normal(0, 0.01, n)
    x = rng.normal(0, 0.02, n)
    lead, trail = min(lead, n), min(trail, n)
    x[:lead] -= 0.2 * np.arange(lead, 0, -1)  # side-steps into the lane
    y[:lead] = y[min(lead, n - 1)]
    if trail:
        x[n - trail:] += 0.2 * np.arange(1, trail + 1)  # and out of it
        y[n - trail:] = y[n - trail - 1] if trail < n else y[0]
    assert np.array_equal(end_turns(x, y), ref_end_turns(x, y))


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 200),
       step=st.floats(1e-4, 2.0), gap=st.floats(0.1, 3.0), drift=st.sampled_from([0.0, 3.0]))
def test_walk_step_decides_like_the_exact_median(seed: int, n: int, step: float, gap: float,
                                                 drift: float) -> None:
    rng = np.random.default_rng(seed)
    y = np.cumsum(np.full(n, step) * rng.uniform(0.8, 1.2, n))
    x = rng.normal(0, step / 5, n)
    exact = float(np.median(np.hypot(np.diff(x), np.diff(y))))
    got = walk_step(x, y, (5.0, gap, drift))
    assert (got > 1e-3) == (exact > 1e-3)
    for c in (5.0, gap, drift):
        assert round(c / got) == round(c / exact)
    # A step that lands exactly on a rounding boundary is computed exactly.
    y2 = np.arange(n) * 0.2
    assert walk_step(np.zeros(n), y2, (0.5,)) == float(np.median(np.hypot(np.diff(y2) * 0,
                                                                           np.diff(y2))))


# -------------------------------------------------------------------- segmenter


def walk_track(seed: int, lanes: int, length: float, *, sidestep: int = 3, jitter: float = 0.02,
               stand: int = 0, back: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A zig-zag walk at 10 cm over ``lanes`` lanes 1 m apart: 5 cm across-lane
    wander, ``jitter`` of along-lane position noise, ``sidestep`` samples
    between lanes, optionally standing still ``stand`` samples a third of the
    way along each lane and, on lane 1, walking back 1.5 m halfway."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    ny = round(length / 0.1) + 1
    for k in range(lanes):
        y = np.arange(ny) * 0.1
        if stand and ny > 10:  # the walker stands still: equal consecutive y
            j = ny // 3
            y = np.concatenate((y[:j], np.full(stand, y[j]), y[j:]))
        if back and k == 1 and y.size > 40:  # walks back 1.5 m halfway
            j = y.size // 2
            y = np.concatenate((y[:j], y[j - 15:j][::-1], y[j - 15:]))
        y = y if k % 2 == 0 else y[::-1]
        xs.append(np.full(y.size, 0.5 + k) + rng.normal(0, 0.05, y.size))
        ys.append(y + (rng.normal(0, jitter, y.size) if jitter else 0.0))
        if sidestep and k < lanes - 1:
            xs.append(0.5 + k + np.arange(1, sidestep + 1) / (sidestep + 1))
            ys.append(np.full(sidestep, ys[-1][-1]))
    return np.concatenate(xs), np.concatenate(ys)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 1000), lanes=st.integers(1, 5), length=st.floats(0.5, 12.0),
       sidestep=st.integers(0, 6), back=st.booleans(),
       sizes=st.lists(st.integers(1, 300), min_size=1, max_size=6))
def test_segmenter_any_chunking_equals_reference(seed: int, lanes: int, length: float,
                                                 sidestep: int, back: bool,
                                                 sizes: list[int]) -> None:
    x, y = walk_track(seed, lanes, length, sidestep=sidestep, back=back)
    ref = RefSegmenter(1.0).assign(x, y)
    seg = LaneSegmenter(1.0)
    got = np.concatenate([seg.assign(x[s], y[s]) for s in chunks(x.size, sizes)])
    assert np.array_equal(got, ref)
    seg = LaneSegmenter(1.0)
    runs = [r for s in chunks(x.size, sizes) for r in
            [(a + s.start, b + s.start, ln) for a, b, ln in seg.runs(x[s], y[s])]]
    assert all(a < b for a, b, _ in runs)
    flat = np.empty(x.size, dtype=np.int64)
    for a, b, ln in runs:
        flat[a:b] = ln
    assert np.array_equal(flat, ref)
    if length >= 3.0:  # lanes long enough to settle (15 samples) are all found
        assert int(ref.max()) >= lanes - 1


# ------------------------------------------------------------------ live detector


def _live_run(v: np.ndarray, y: np.ndarray, sizes: list[int], quiet: bool, noise: float | None,
              max_delay: int, min_thr: float, lanes: int) -> list:
    det = LiveDetector(k=6.0, max_delay=max_delay, min_thr=min_thr, quiet_path=quiet)
    det.noise = noise
    out = []
    per = v.size // lanes
    for ln in range(lanes):
        det.start_lane(det.level)
        lv, ly = v[ln * per:(ln + 1) * per], y[ln * per:(ln + 1) * per]
        for s in chunks(lv.size, sizes):
            hits = det.feed(lv[s], ly[s])
            out.append((hits, det._n, det.level, det._own_noise, det.threshold()))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(50, 3000),
       sizes=st.lists(st.integers(1, 1200), min_size=1, max_size=5),
       noise=st.sampled_from([None, 0.5, 0.0]), signals=st.integers(0, 6),
       max_delay=st.integers(0, 6), min_thr=st.sampled_from([0.0, 4.0]),
       lanes=st.integers(1, 3))
def test_live_quiet_path_equals_sample_runs(seed: int, n: int, sizes: list[int],
                                            noise: float | None, signals: int, max_delay: int,
                                            min_thr: float, lanes: int) -> None:
    rng = np.random.default_rng(seed)
    y = np.arange(n) * 0.1
    v = rng.normal(0, 0.5, n) + rng.normal(0, 2)
    for c in rng.uniform(0, y[-1], signals):
        # strong ones, and ones just around the threshold (6 x 0.5 nT)
        amp = rng.uniform(-40, 40) if rng.random() < 0.5 else rng.choice([-1, 1]) * rng.uniform(
            2.5, 5.0)
        v += amp * np.exp(-0.5 * ((y - c) / rng.uniform(0.1, 1.5)) ** 2)
    v = np.round(v, 2)
    fast = _live_run(v, y, sizes, True, noise, max_delay, min_thr, lanes)
    plain = _live_run(v, y, [10**9], False, noise, max_delay, min_thr, lanes)
    # Same hits, and the same level and noise after every lane: any chunking.
    hits = [h for f in fast for h in f[0]]
    assert hits == [h for p in plain for h in p[0]]
    assert fast[-1][1:] == plain[-1][1:]


def test_live_quiet_path_finds_the_signal_early() -> None:
    y = np.arange(3000) * 0.1
    v = np.random.default_rng(3).normal(0, 0.5, 3000)
    v += -30 * np.exp(-0.5 * ((y - 200.0) / 0.4) ** 2)  # a negative lobe at y = 200 m
    det = LiveDetector(k=6.0, max_delay=4)
    det.noise = 0.5
    det.start_lane(0.0)
    hits = [h for i in range(0, 3000, 1000) for h in det.feed(v[i:i + 1000], y[i:i + 1000])]
    assert len(hits) == 1
    h = hits[0]
    # the strongest sample so far when the event goes out: on the lobe's flank
    assert abs(y[h.lane_pos] - 200.0) <= 0.5 and h.amplitude < -10
    assert h.lane_pos <= h.emit_pos
    first = int(np.flatnonzero(np.abs(v - det.level) > det.threshold())[0])
    assert 0 <= h.emit_pos - first <= 4  # latency unchanged: <= max_delay samples


# --------------------------------------------------------------------- pipeline


def _blocks(x, y, v, sizes):
    out = []
    for seq, s in enumerate(chunks(x.size, sizes)):
        out.append(SampleBlock("s", seq, s.start, round(s.start * 1e8), 10.0, v[s, None].copy(),
                               np.column_stack((x[s], y[s]))))
    return out


def _pipe_run(blocks, geo, quiet: bool) -> tuple[list, list]:
    pipe = LanePipeline(make_descriptor(geo, 10.0, "s"), QUANG_TRI)
    pipe.live.quiet_path = quiet
    ev = []
    for b in blocks:
        ev += pipe.process(b)
    lanes = [(r.lane, r.lev.tolist(), r.noise, r.level) for r in pipe.lanes.values()]
    return [e.to_dict() for e in ev if isinstance(e, Anomaly)], [*lanes, pipe.noise_nT]


@pytest.fixture(scope="module")
def busy():
    src = [induced(3.3, 10.2, 1.5, 2.0), induced(6.1, 4.0, 0.4, 0.05),
           induced(1.2, 15.0, 0.3, 0.02)]
    return survey(src, noise=0.3, offsets=2.0, sidestep=5, seed=3)


@settings(max_examples=10, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 1000), min_size=1, max_size=5))
def test_pipeline_any_chunking_same_anomalies_and_levels(busy, sizes: list[int]) -> None:
    x, y, v, _, geo = busy
    ref = _pipe_run(_blocks(x, y, v, [10**9]), geo, quiet=False)
    got = _pipe_run(_blocks(x, y, v, sizes), geo, quiet=True)
    assert got == ref
    assert len(ref[0]) >= 3 and math.isfinite(ref[1][-1])


def test_pipeline_sample_times_equal_block_times() -> None:
    x, y, v, _, geo = survey([], noise=0.3, seed=2, n_lanes=2, length=5.0)
    pipe = LanePipeline(make_descriptor(geo, 10.0, "s"), QUANG_TRI)
    blocks = _blocks(x, y, v, [7, 7, 30])
    for b in blocks:
        pipe.process(b)
    pipe.finish()
    want = np.concatenate([b.times_ns() for b in blocks])
    got = np.concatenate([r.t_ns for r in pipe.lanes.values()])
    idx = np.concatenate([r.gidx for r in pipe.lanes.values()])
    assert np.array_equal(got, want[idx])
