"""Anomaly detection on levelled lanes, both polarities, noise-adaptive.

Two detectors share one idea (|levelled reading| over k × robust noise):

- `find_segments` runs on a finished, levelled lane and returns the anomaly
  segments that feed grouping and the dipole fit. Runs of either sign that lie
  within `merge_gap` samples of each other are one segment, so the negative main
  lobe of a low-inclination anomaly and its positive side lobes stay together.
- `LiveDetector` runs sample by sample on the lane being walked, with a level
  from the lane so far (refreshed at fixed sample counts, so chunking cannot
  change it), and raises an event at the latest `max_delay` samples after the
  reading first crosses the threshold: fast feedback, like a detector's tone.

On magnetic ground a second pass runs `find_segments` on the lane low-passed
along the walk (`lane_lowpass`) against its own threshold, and keeps what the
raw pass did not find (`lowpass_segments`): wide anomalies of deep bodies
under the soil's short-wave clutter.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import uniform_filter1d

from acquisition.dsp.levelling import diff_noise, diff_noise_rows, fast_median


@dataclass(frozen=True, slots=True)
class Segment:
    """One anomaly on one lane (indices into the lane's arrays, inclusive)."""

    lane: int
    i0: int
    i1: int
    peak: int
    amplitude: float
    x: float
    y: float
    y0: float
    y1: float
    x_mean: float
    #: Found by the low-pass pass (`lowpass_segments`): ``amplitude`` is the
    #: low-passed lane's value, to be judged against the low-passed threshold.
    lowpass: bool = False


def find_segments(lev: np.ndarray, thr: float, x: np.ndarray, y: np.ndarray, lane: int,
                  merge_gap: int = 10, min_len: int = 2, low_frac: float = 0.5) -> list[Segment]:
    """Anomaly segments on one levelled lane (hysteresis, both polarities).

    A segment is a run of ``|lev| > low_frac × thr`` (runs closer than
    ``merge_gap`` samples merged, so opposite-sign lobes stay together) that
    holds at least ``min_len`` samples over ``thr``: a lone spike is not a
    signal, and at 10 cm sample spacing even a shallow nail covers several
    samples. The low threshold lets a wide anomaly's flanks join its core.
    """
    a = np.abs(lev)
    low = low_frac * thr
    if low <= thr:
        # The usual case: every strong sample is a weak one too, so the strong
        # counts of the runs come from the (few) weak samples alone.
        idx = np.flatnonzero(a > low)
        st = a[idx] > thr
        if not st.any():
            return []
        gaps = np.flatnonzero(idx[1:] - idx[:-1] > merge_gap)
        r0 = np.concatenate(([0], gaps + 1))
        r1 = np.concatenate((gaps, [idx.size - 1]))
        cs = np.cumsum(st)
        keep = (cs[r1] - cs[r0] + st[r0]) >= min_len
        starts, ends = idx[r0[keep]], idx[r1[keep]]
    else:
        strong = a > thr
        if not strong.any():
            return []
        idx = np.flatnonzero(a > low)
        breaks = np.flatnonzero(np.diff(idx) > merge_gap)
        starts = np.concatenate((idx[:1], idx[breaks + 1]))
        ends = np.concatenate((idx[breaks], idx[-1:]))
        cs = np.concatenate(([0], np.cumsum(strong)))
        keep = (cs[ends + 1] - cs[starts]) >= min_len
        starts, ends = starts[keep], ends[keep]
    if starts.size == 0:
        return []
    # Per-segment reductions in one go: reduceat over [start, end + 1) pairs.
    # A last end + 1 == n is not a legal index, and not needed: reduceat's last
    # slice runs to the end of the array anyway.
    n = a.size
    bounds = np.empty(2 * starts.size, dtype=np.intp)
    bounds[0::2] = starts
    bounds[1::2] = ends + 1
    if bounds[-1] >= n:
        bounds = bounds[:-1]
    amax = np.maximum.reduceat(a, bounds)[0::2].tolist()
    y0 = np.minimum.reduceat(y, bounds)[0::2].tolist()
    y1 = np.maximum.reduceat(y, bounds)[0::2].tolist()
    xm = (np.add.reduceat(x, bounds)[0::2] / (ends - starts + 1)).tolist()
    out: list[Segment] = []
    for k, (s0, s1) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        am = amax[k]
        # The first sample at the maximum (argmax does that); a NaN maximum
        # matches no sample: the segment's start, as a ">= max" test gives.
        p = s0 + int(a[s0:s1 + 1].argmax()) if am == am else s0
        out.append(Segment(lane=lane, i0=s0, i1=s1, peak=p, amplitude=float(lev[p]),
                           x=float(x[p]), y=float(y[p]), y0=float(y0[k]), y1=float(y1[k]),
                           x_mean=float(xm[k])))
    return out


def lane_lowpass(lev: np.ndarray, n: int) -> np.ndarray:
    """Running mean of ``n`` samples along a levelled lane (ends: nearest value).

    Magnetic soil's field is short-wave (grains near the surface: it
    decorrelates within a few decimetres along a lane), a body metres deep
    gives an anomaly metres wide: a mean over a window shorter than that
    anomaly keeps most of the body's peak and averages the soil down.
    """
    if n < 3 or lev.size < 3:
        return lev.astype(np.float64, copy=True)
    return uniform_filter1d(np.asarray(lev, dtype=np.float64), n, mode="nearest")


def lowpass_segments(lp: np.ndarray, thr: float, x: np.ndarray, y: np.ndarray, lane: int,
                     raw: list[Segment], merge_gap: int = 10) -> list[Segment]:
    """Segments of the low-passed lane ``lp`` over its own threshold ``thr``
    that no raw segment of the lane (``raw``) reaches within ``merge_gap``
    samples: wide anomalies the raw pass missed, marked ``lowpass``.

    What the raw pass found keeps its raw segment (sharper, and judged
    against the raw threshold); a wide anomaly's low-passed run only adds
    what is new.
    """
    if not thr > 0:
        return []
    out = []
    for s in find_segments(lp, thr, x, y, lane, merge_gap=merge_gap):
        if any(s.i0 <= r.i1 + merge_gap and r.i0 <= s.i1 + merge_gap for r in raw):
            continue
        out.append(replace(s, lowpass=True))
    return out


@dataclass(frozen=True, slots=True)
class LiveHit:
    """What the live detector found; the pipeline turns it into an `Anomaly`."""

    lane_pos: int      # index within the lane of the strongest sample so far
    amplitude: float   # levelled value there (signed)
    width_m: float     # along-track length of the run so far
    emit_pos: int      # index within the lane of the sample that triggered the event


class LiveDetector:
    """Causal per-lane detector with a level refreshed at fixed lane sample counts.

    Samples must be finite (`LanePipeline` drops the others before feeding).
    """

    UPDATE_AT = (20, 40, 80, 160)
    UPDATE_EVERY = 160
    LEVEL_WINDOW = 600

    def __init__(self, k: float = 5.0, max_delay: int = 5, end_gap: int = 5,
                 min_thr: float = 0.0, quiet_path: bool = True) -> None:
        self.k = float(k)
        self.max_delay = max(0, int(max_delay))
        self.end_gap = max(1, int(end_gap))
        self.min_thr = float(min_thr)
        #: Take whole blocks at once while nothing crosses the threshold (same
        #: results; False = the sample-run reference path, for tests).
        self.quiet_path = bool(quiet_path)
        #: Noise sigma from outside (finished lanes or soil calibration); None = own estimate.
        self.noise: float | None = None
        self._vals = np.empty(0)
        self._flag = np.empty(0, dtype=bool)
        self._ypos = np.empty(0)
        self._n = 0
        self._last_flag = -1  # lane index of the last flagged sample (-1: none yet)
        self._level: float | None = None
        #: Lane count of an update whose level is not computed yet (0: none): the
        #: median of its window, unflagged; computed when first asked for.
        self._pending = 0
        self._own_noise = 0.0
        self._reset_run()

    @property
    def level(self) -> float | None:
        """The level (median of the last update's window), or the prior level."""
        if self._pending:
            u, self._pending = self._pending, 0
            self._level = fast_median(self._vals[max(0, u - self.LEVEL_WINDOW):u])
        return self._level

    @level.setter
    def level(self, value: float | None) -> None:
        self._level = value
        self._pending = 0

    def _reset_run(self) -> None:
        self._in_run = False
        self._ext = 0.0
        self._ext_pos = 0
        self._start_pos = 0
        self._below = 0
        self._emitted = False

    def start_lane(self, prior_level: float | None) -> None:
        self._n = 0
        self._last_flag = -1
        self.level = prior_level
        self._reset_run()

    @classmethod
    def _update_after(cls, n: int) -> int:
        """The first level-update count above ``n`` samples."""
        for u in cls.UPDATE_AT:
            if u > n:
                return u
        last = cls.UPDATE_AT[-1]
        return last + ((n - last) // cls.UPDATE_EVERY + 1) * cls.UPDATE_EVERY

    def _next_update(self) -> int:
        return self._update_after(self._n)

    def _grow(self, need: int) -> None:
        if need <= self._vals.size:
            return
        size = max(need, 2 * self._vals.size, 4096)
        for name in ("_vals", "_flag", "_ypos"):
            old = getattr(self, name)
            new = np.empty(size, dtype=old.dtype)
            new[:self._n] = old[:self._n]
            setattr(self, name, new)

    def _window_level(self, end: int, level: float | None, masked: bool) -> float | None:
        """Level after an update at lane count ``end`` (masked median of the window)."""
        lo = max(0, end - self.LEVEL_WINDOW)
        v = self._vals[lo:end]
        if masked:
            keep = v[~self._flag[lo:end]]
            if keep.size >= 10:
                return fast_median(keep, overwrite=True)  # == np.median, finite samples
        elif v.size >= 10:
            return fast_median(v)
        if level is None:
            return fast_median(v)
        return level

    def _update_level(self) -> None:
        # (reading `level` has cleared any pending level: no setter needed)
        self._level = self._window_level(self._n, self.level, True)
        if self.noise is None:  # only needed until the first lane is finished
            lo = max(0, self._n - self.LEVEL_WINDOW)
            self._own_noise = diff_noise(self._vals[lo:self._n])

    def threshold(self) -> float:
        sigma = self.noise if self.noise is not None else self._own_noise
        return max(self.k * sigma, self.min_thr)

    def feed(self, v: np.ndarray, y: np.ndarray) -> list[LiveHit]:
        """Push the next samples of the current lane; return events raised by them."""
        v = np.asarray(v, dtype=np.float64)
        m = len(v)
        self._grow(self._n + m)
        hits: list[LiveHit] = []
        i = 0
        if self.quiet_path and m and not self._in_run:
            i = self._feed_quiet(v, y)
        while i < m:
            upd = self._next_update()
            stop = min(m, i + (upd - self._n))
            self._chunk(v[i:stop], y[i:stop], hits)
            i = stop
            if self._n == upd:
                self._update_level()
        return hits

    def _feed_quiet(self, v: np.ndarray, y: np.ndarray) -> int:
        """Take the block's leading stretch that stays under the threshold, at once.

        The sample-run path alternates "flag samples against the level" and
        "refresh the level from unflagged samples" at every update count, a
        dozen numpy calls per step. Here every level of the block is computed
        first on the guess that no new sample is flagged (one batched partition
        when the windows are full), then the guess is checked per stretch
        between updates with its max and min. Stretches up to the first one
        that has a sample over the threshold are committed; that one and the
        rest go the sample-run way. With full windows, a count first checks
        whether any level could matter at all (`_all_under`); if not, only the
        last level is computed. Returns the number of samples committed.
        """
        base = self._n
        m = len(v)
        end = base + m
        self._vals[base:end] = v
        self._ypos[base:end] = y
        self._flag[base:end] = False
        u = self._update_after(base)
        ups = []
        while u <= end and u <= self.UPDATE_AT[-1]:
            ups.append(u)
            u = self._update_after(u)
        if u <= end:  # past the fixed counts: every UPDATE_EVERY samples
            ups += range(u, end + 1, self.UPDATE_EVERY)
        own = self.noise is None  # own noise, refreshed with the level (first lane only)
        w = self.LEVEL_WINDOW
        if ups and not own and self._last_flag < max(0, ups[0] - w) and self._all_under(
                v, ups, self.threshold()):
            # Nothing crosses (full windows or, at a lane's start, growing
            # ones): only the last level is kept, and computed only when asked
            # for (a quiet block after this one counts in its window instead).
            self._n = end
            self._pending = ups[-1]
            return m
        levels: list[float | None] = [None]  # [0]: the level now, filled in below
        noises = [self._own_noise]
        if ups:
            lo0 = max(0, ups[0] - w)
            masked = self._last_flag >= lo0
            if not masked and ups[0] >= w and len(ups) > 1 and ups[0] >= self.UPDATE_AT[-1]:
                # The windows of the updates: one strided view.
                win = np.ndarray((len(ups), w), dtype=np.float64, buffer=self._vals,
                                 offset=(ups[0] - w) * self._vals.itemsize,
                                 strides=(self.UPDATE_EVERY * self._vals.itemsize,
                                          self._vals.itemsize))
                if own:
                    rows = diff_noise_rows(win).tolist()
                    thr_min = min(max(self.k * s, self.min_thr) for s in noises + rows)
                    if self._all_under(v, ups, thr_min):
                        # Nothing crosses: only the last level (computed when
                        # asked for) and noise are kept.
                        self._n = end
                        self._pending = ups[-1]
                        self._own_noise = rows[-1]
                        return m
                # Every level: one partition, one pivot (SIMD select); the lower
                # middle is the max below it.
                k = w // 2
                p = np.partition(win, k, axis=1)
                if w % 2:
                    levels += p[:, k].tolist()
                else:
                    levels += (0.5 * (p[:, :k].max(axis=1) + p[:, k])).tolist()
                if own:
                    noises += rows
            else:
                lev = self.level
                for u in ups:
                    lev = self._window_level(u, lev, masked)
                    levels.append(lev)
                    if own:
                        noises.append(diff_noise(self._vals[max(0, u - w):u]))
        levels[0] = self.level
        bounds = [0] + [u - base for u in ups if u < end]
        thr = self.threshold()
        used = levels[:len(bounds)]
        if not own and thr > 0 and None not in used:
            # The whole block first: max(v) - min(levels) and max(levels) - min(v)
            # bound every stretch's test (rounding is monotone), so if neither
            # is over thr no stretch is, and the block is committed in one go.
            known = [u for u in used if u is not None]  # all of them: None not in used
            lo_l, hi_l = min(known), max(known)
            if float(v.max()) - lo_l <= thr and hi_l - float(v.min()) <= thr:
                self._n = end
                self.level = levels[-1]
                return m
        starts = np.asarray(bounds)
        hi = np.maximum.reduceat(v, starts).tolist()
        lo = np.minimum.reduceat(v, starts).tolist()
        for j, lev in enumerate(levels[:len(bounds)]):
            if own:
                thr = max(self.k * noises[j], self.min_thr)
            # |v - L| > thr for some v <=> max(v) - L > thr or L - min(v) > thr
            # (rounding is monotone, so this is exact in floating point).
            if lev is not None and thr > 0 and (hi[j] - lev > thr or lev - lo[j] > thr):
                self._n = base + bounds[j]
                self.level = levels[j]
                if own:
                    self._own_noise = noises[j]
                return bounds[j]
        self._n = end
        self.level = levels[-1]
        if own:
            self._own_noise = noises[-1]
        return m

    def _all_under(self, v: np.ndarray, ups: list[int], thr: float) -> bool:
        """True if no sample of the block can cross the threshold, whatever the
        levels at the update counts ``ups`` (unmasked windows) turn out to be.

        Then only the last level is needed, not one median per update. The
        test: every level lies in [a, b] with max(v) - a <= thr and b - min(v)
        <= thr (so the per-stretch test fails for each: rounding is monotone,
        and the mean of two middle samples in [a, b] is in [a, b] too). A
        window of s samples has its median >= a if at most (s - 1) // 2 of them
        are below a, and all windows lie in the span from the first window's
        start to the last update, so counting in the span against the smallest
        window (the first: windows grow to LEVEL_WINDOW at a lane's start, then
        keep that size) is enough; likewise <= b if at most s - 1 - s // 2 are
        above b. ``thr`` is the smallest threshold of the block's stretches. A
        level of None before the first update tests nothing (as in `_chunk`).
        """
        if not thr > 0:
            return False
        hi, lo = float(v.max()), float(v.min())
        a, b = hi - thr, lo + thr
        # the bounds as rounded, and the level before the first update
        if not (hi - a <= thr and b - lo <= thr):
            return False
        if self._pending:
            # A level not computed yet is one more window to count: same test.
            ups = [self._pending, *ups]
        elif self._level is not None and not (hi - self._level <= thr
                                              and self._level - lo <= thr):
            return False
        w = self.LEVEL_WINDOW
        s = min(ups[0], w)
        if s < 10:  # (a window under 10 samples keeps the old level: not a median)
            return False
        lo_s = max(0, ups[0] - w)
        span = self._vals[lo_s:ups[-1]]
        below, above = span < a, span > b
        if (int(np.count_nonzero(below)) <= (s - 1) // 2
                and int(np.count_nonzero(above)) <= s - 1 - s // 2):
            return True
        # The span holds too many for the smallest window (at a lane's start,
        # 20 samples against a span of up to 1000): count window by window,
        # by bisection in the (few) positions below a and above b.
        lows, highs = np.flatnonzero(below).tolist(), np.flatnonzero(above).tolist()
        for u in ups:
            size = min(u, w)
            first, last = u - size - lo_s, u - lo_s
            if (bisect_left(lows, last) - bisect_left(lows, first) > (size - 1) // 2
                    or bisect_left(highs, last) - bisect_left(highs, first)
                    > size - 1 - size // 2):
                return False
        return True

    def _chunk(self, v: np.ndarray, y: np.ndarray, hits: list[LiveHit]) -> None:
        base = self._n
        m = len(v)
        self._vals[base:base + m] = v
        self._ypos[base:base + m] = y
        self._n += m
        level = self.level
        if level is None:
            self._flag[base:base + m] = False
            return
        thr = self.threshold()
        dev = v - level
        above = np.abs(dev) > thr if thr > 0 else np.zeros(m, dtype=bool)
        self._flag[base:base + m] = above
        if not self._in_run and not above.any():
            return
        nxt = np.flatnonzero(above)
        if nxt.size:
            self._last_flag = base + int(nxt[-1])
        j = 0 if self._in_run else int(nxt[0])
        # Plain Python lists: per-sample access is several times faster than
        # indexing numpy arrays, and only samples near a signal get here.
        dev_l = dev.tolist()
        above_l = above.tolist()
        while j < m:
            pos = base + j
            d = dev_l[j]
            if self._in_run:
                if above_l[j]:
                    self._below = 0
                    if abs(d) > abs(self._ext):
                        self._ext, self._ext_pos = d, pos
                else:
                    self._below += 1
                if not self._emitted and (
                    (pos - self._start_pos >= self.max_delay)
                    or (abs(self._ext) - abs(d) > max(0.1 * abs(self._ext), 0.4 * thr))
                    or self._below >= self.end_gap
                ):
                    self._emit(pos, hits)
                if self._below >= self.end_gap:
                    self._reset_run()
                    k = np.searchsorted(nxt, j, side="right")
                    if k >= nxt.size:
                        return
                    j = int(nxt[k])
                    continue
            elif above_l[j]:
                self._in_run = True
                self._ext, self._ext_pos = d, pos
                self._start_pos = pos
                self._below = 0
                self._emitted = False
                if self.max_delay == 0:
                    self._emit(pos, hits)
            j += 1

    def _emit(self, pos: int, hits: list[LiveHit]) -> None:
        self._emitted = True
        width = abs(float(self._ypos[pos] - self._ypos[self._start_pos]))
        hits.append(LiveHit(lane_pos=self._ext_pos, amplitude=self._ext, width_m=width,
                            emit_pos=pos))
