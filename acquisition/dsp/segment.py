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
