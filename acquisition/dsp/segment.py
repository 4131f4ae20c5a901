"""Split a walked trace into lanes from positions and sample order alone.

Lanes run north-south; the operator walks them zig-zag and side-steps about one
lane spacing at each end. A new lane starts at the first sample that is more
than half a spacing east or west of the current lane's reference x, or that
walks back more than `reversal_m` against the lane's established direction.

The reference x is the median of the lane's samples ``skip..settle`` (the first
samples may still be the side-step). Before it is set, only a jump of more
than 1.5 spacings from the lane's first sample starts a new lane. Every
decision depends on the samples alone, never on how they were chunked, so a
trace segments identically in any block sizes.
"""

from __future__ import annotations

import numpy as np

from acquisition.dsp.levelling import fast_median


def _list_median(vals: list[float]) -> float:
    """`fast_median` (== np.median) of a few floats, without making an array:
    the same order statistics and the same mean of the middle pair (only a tie
    of -0.0 and 0.0 may come out with the other sign; every use of it is a
    difference or a distance, the same either way)."""
    if not vals or any(v != v for v in vals):  # empty or NaN: numpy's rules
        return fast_median(np.array(vals, dtype=np.float64))
    s = sorted(vals)
    k = len(s) // 2
    if len(s) % 2:
        return s[k]
    return 0.5 * (s[k - 1] + s[k])


class LaneSegmenter:
    """Stateful lane numbering of a position stream (x, y in metres)."""

    def __init__(self, spacing_m: float = 1.0, settle: int = 15, skip: int = 5,
                 reversal_m: float = 1.0, direction_m: float = 1.0) -> None:
        if not spacing_m > 0:
            raise ValueError("lane spacing must be positive")
        self.spacing = float(spacing_m)
        self.settle = int(settle)
        self.skip = min(int(skip), self.settle - 1)
        self.reversal_m = float(reversal_m)
        self.direction_m = float(direction_m)
        self.lane = -1
        self._count = 0
        self._x_first = 0.0
        self._prov_x: list[float] = []
        self._prov_y: list[float] = []
        self.x_ref: float | None = None
        self._y_anchor = 0.0
        self._dir = 0
        self._ext = -np.inf

    def _new_lane(self, x: float) -> None:
        self.lane += 1
        self._count = 0
        self._x_first = x
        self._prov_x = []
        self._prov_y = []
        self.x_ref = None
        self._dir = 0
        self._ext = -np.inf

    def assign(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Lane number of each sample (finite positions only), in order."""
        out = np.empty(len(x), dtype=np.int64)
        for a, b, lane in self.runs(x, y):
            out[a:b] = lane
        return out

    def runs(self, x: np.ndarray, y: np.ndarray) -> list[tuple[int, int, int]]:
        """The samples as runs ``(start, stop, lane)`` of one lane each, in order.

        Same decisions as `assign`, without a per-sample lane array: a block
        of a live stream is one run, or two where a lane ends.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        n = len(x)
        out: list[tuple[int, int, int]] = []
        i = 0
        while i < n:
            if self.lane < 0:
                self._new_lane(float(x[i]))
            a = i
            if self.x_ref is None:
                # Settling: only a jump of 1.5 spacings from the first sample
                # breaks, and never at the lane's first sample.
                # At most `settle` samples: plain floats beat numpy calls here.
                xs = x[i:i + (self.settle - self._count)].tolist()
                x_first, lim = self._x_first, 1.5 * self.spacing
                take, jumped = len(xs), False
                for j, xv in enumerate(xs):
                    if abs(xv - x_first) > lim and (j or self._count):
                        take, jumped = j, True
                        break
                self._prov_x += xs[:take]
                self._prov_y += y[i:i + take].tolist()
                self._count += take
                i += take
                if self._count >= self.settle:
                    self.x_ref = _list_median(self._prov_x[self.skip:])
                    self._y_anchor = _list_median(self._prov_y[self.skip:])
                if jumped:
                    if i > a:
                        out.append((a, i, self.lane))
                    self._new_lane(float(x[i]))
                    continue
                if i >= n:
                    out.append((a, i, self.lane))
                    break
            xs, ys = x[i:], y[i:]
            m = len(xs)
            # Sideways break: the first |x - x_ref| > spacing / 2. Extremes first
            # (rounding is monotone, so the test on them is exact): usually none.
            stop = m
            xr, half = self.x_ref, 0.5 * self.spacing
            assert xr is not None  # settled: the branch above set it or left the loop
            if float(xs.max()) - xr > half or xr - float(xs.min()) > half:
                stop = int(np.flatnonzero(np.abs(xs - xr) > half)[0])
            j0 = 0
            if self._dir == 0:
                far = np.flatnonzero(np.abs(ys[:stop] - self._y_anchor) > self.direction_m)
                if far.size:
                    j0 = int(far[0])
                    self._dir = 1 if ys[j0] > self._y_anchor else -1
                else:
                    j0 = stop
            if j0 < stop:
                # Walking back: the first sample reversal_m behind the furthest reached.
                yw = ys[j0:stop]
                anchor, sign = self._y_anchor, self._dir
                first = (float(yw[0]) - anchor) * sign  # == along[0] below, same rounding
                if (self.reversal_m >= 0 and self._ext - first <= self.reversal_m
                        and bool((yw[1:] >= yw[:-1]).all() if sign > 0
                                 else (yw[1:] <= yw[:-1]).all())):
                    # Never a step back (the usual case): along = (y - anchor) * dir
                    # is then non-decreasing (rounding is monotone), the running
                    # max is max(ext, along), and ext - along <= ext - along[0]: no
                    # sample is reversal_m behind. Same result as the running max
                    # below, without its scalar loop.
                    self._ext = max(self._ext, (float(yw[-1]) - anchor) * sign)
                else:
                    along = (yw - anchor) * sign
                    if self._ext > along[0]:
                        ext = np.maximum.accumulate(np.maximum(along, self._ext))
                    else:  # the running max starts at along[0] anyway
                        ext = np.maximum.accumulate(along)
                    back = np.flatnonzero((ext - along) > self.reversal_m)
                    if back.size:
                        stop = j0 + int(back[0])
                    if stop > j0:
                        self._ext = float(ext[stop - j0 - 1])
            self._count += stop
            i += stop
            if i > a:
                out.append((a, i, self.lane))
            if stop < m:
                self._new_lane(float(x[i]))
        return out
