"""Position lag: move positions along the track, and measure the lag from a zig-zag survey.

A GNSS receiver or a cable delay makes positions trail the readings: the
position logged with the reading taken at time t is where the sensor was at
t - lag. `apply_lag` gives each reading the position of the track at t + lag
(interpolated along its own lane, extrapolated with the walking speed at the
lane's ends).

`estimate_lag` finds the lag from the survey itself. A lag moves every anomaly
backwards along the walking direction, so on a zig-zag survey the anomalies
seen on lanes walked in opposite directions split apart, the "herringbone"
of uncorrected data. Correlating neighbouring opposite lanes is biased here
(the lanes pass a body at different distances, and an inclined field makes
the along-lane shape depend on that distance: 0.03-0.2 s off on simulated
surveys), so the estimate fits the physics instead: the strongest anomalies
crossed by lanes of both headings each get a point dipole, and one lag shared
by all of them is fitted jointly with the dipoles' positions (moments solved
linearly, with each lane's own level inside a window), each window weighted
by its misfit, once more at the lag found. Measured errors: bench/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from acquisition.forward import SensorGeometry, design_matrix

#: Lags searched by `estimate_lag` (s), both signs.
MAX_LAG_S = 1.0
#: Fewest samples a lane needs to take part.
MIN_LANE_SAMPLES = 20
#: Anomalies used: at most this many, the strongest, at least this many noise sigmas.
MAX_WINDOWS = 12
STRONG_SNR = 10.0
#: Radius (m) of the samples fitted around each anomaly.
WINDOW_M = 2.5


class LagError(ValueError):
    """The lag cannot be applied or estimated (no times, no opposite lanes)."""


@dataclass(frozen=True, slots=True)
class LagEstimate:
    """What `estimate_lag` found."""

    lag_s: float
    #: Anomalies fitted (each crossed by lanes of both headings).
    windows: int
    #: How much better the fits are at the lag found than at zero lag (drop of
    #: the weighted half sum of squares; near 0: the data barely tell).
    improvement: float


def _lanes(lane: np.ndarray) -> list[np.ndarray]:
    """Indices of each lane's rows (lanes < 0 are turns: left out)."""
    lane = np.asarray(lane)
    return [np.flatnonzero(lane == k) for k in np.unique(lane) if k >= 0]


def _shift_track(t: np.ndarray, p: np.ndarray, tq: np.ndarray) -> np.ndarray:
    """Track coordinate ``p(t)`` read at ``tq``: linear inside, extrapolated outside."""
    if t.size < 2:
        return p.copy()
    out = np.interp(tq, t, p)
    lo, hi = tq < t[0], tq > t[-1]
    if lo.any():
        k = min(5, t.size - 1)
        v = (p[k] - p[0]) / (t[k] - t[0]) if t[k] > t[0] else 0.0
        out[lo] = p[0] + v * (tq[lo] - t[0])
    if hi.any():
        k = min(5, t.size - 1)
        v = (p[-1] - p[-1 - k]) / (t[-1] - t[-1 - k]) if t[-1] > t[-1 - k] else 0.0
        out[hi] = p[-1] + v * (tq[hi] - t[-1])
    return out


def _lane_times(t: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lane's rows in time order, and their times; repeated instants are refused."""
    order = idx[np.argsort(t[idx], kind="stable")]
    tt = t[order]
    if tt.size > 1 and not np.all(np.diff(tt) > 0):
        raise LagError("a position lag needs one row per instant on each lane (rows with "
                       "repeated time stamps, e.g. several sensors of a cart, need a lane "
                       "column)")
    return order, tt


def apply_lag(t: np.ndarray, x: np.ndarray, y: np.ndarray, lane: np.ndarray,
              lag_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions of each reading corrected for a lag: the lane's track at t + lag.

    Rows not on a lane (lane < 0) and rows without a finite time keep their
    positions.
    """
    t = np.asarray(t, dtype=np.float64)
    x2 = np.array(x, dtype=np.float64)
    y2 = np.array(y, dtype=np.float64)
    if lag_s == 0.0:
        return x2, y2
    for idx in _lanes(lane):
        idx = idx[np.isfinite(t[idx]) & np.isfinite(x2[idx]) & np.isfinite(y2[idx])]
        if idx.size < 2:
            continue
        order, tt = _lane_times(t, idx)
        x2[order] = _shift_track(tt, x2[order], tt + lag_s)
        y2[order] = _shift_track(tt, y2[order], tt + lag_s)
    return x2, y2


@dataclass(slots=True)
class _Window:
    """The samples around one strong anomaly, and the lane tracks they lie on."""

    v: np.ndarray
    #: Per lane crossing the window: its track (t, x, y) and the window's rows' times.
    tracks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    p: np.ndarray  # source position (x0, y0, depth)
    #: One indicator column per lane: each lane's own level (drift, heading offset).
    levels: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    sigma: float = 1.0

    def positions(self, lag: float) -> tuple[np.ndarray, np.ndarray]:
        px = [_shift_track(tt, xx, tw + lag) for tt, xx, _yy, tw in self.tracks]
        py = [_shift_track(tt, yy, tw + lag) for tt, _xx, yy, tw in self.tracks]
        return np.concatenate(px), np.concatenate(py)


def _robust_sigma(d: np.ndarray) -> float:
    d = d[np.isfinite(d)]
    if d.size < 3:
        return float("nan")
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


def _windows(t: np.ndarray, x: np.ndarray, y: np.ndarray, v: np.ndarray,
             lane: np.ndarray) -> list[_Window]:
    """Samples around the strongest anomalies that lanes of both headings cross."""
    lanes = []
    for idx in _lanes(lane):
        idx = idx[np.isfinite(t[idx]) & np.isfinite(x[idx]) & np.isfinite(y[idx])
                  & np.isfinite(v[idx])]
        if idx.size < MIN_LANE_SAMPLES:
            continue
        order, tt = _lane_times(t, idx)
        xx, yy = x[order], y[order]
        d = np.array([xx[-1] - xx[0], yy[-1] - yy[0]])
        lanes.append((tt, xx, yy, v[order] - np.median(v[order]), d,
                      _robust_sigma(np.diff(v[order]))))
    if len(lanes) < 2:
        return []
    ref = max((ln[4] for ln in lanes), key=lambda d: float(np.hypot(*d)))
    sig = np.array([ln[5] for ln in lanes])
    noise = float(np.nanmedian(sig)) if np.isfinite(sig).any() else 0.0
    floor = max(STRONG_SNR * noise, 1e-12)
    lane_of = np.concatenate([np.full(ln[0].size, i) for i, ln in enumerate(lanes)])
    row = np.concatenate([np.arange(ln[0].size) for ln in lanes])
    xs = np.concatenate([ln[1] for ln in lanes])
    ys = np.concatenate([ln[2] for ln in lanes])
    lev = np.concatenate([ln[3] for ln in lanes])
    heading = np.array([1 if float(ln[4] @ ref) >= 0 else -1 for ln in lanes])
    strength = np.abs(lev)
    out: list[_Window] = []
    taken = np.zeros(xs.size, dtype=bool)
    for k in np.argsort(-strength):
        if len(out) >= MAX_WINDOWS or strength[k] < floor:
            break
        if taken[k]:
            continue
        d2 = (xs - xs[k]) ** 2 + (ys - ys[k]) ** 2
        near = d2 <= WINDOW_M ** 2
        taken |= d2 <= (1.2 * WINDOW_M) ** 2
        heads = heading[lane_of[near]]
        # both walking directions must cross it: that is what measures the lag
        if not ((heads > 0).sum() >= 10 and (heads < 0).sum() >= 10):
            continue
        tracks, vals = [], []
        for i in np.unique(lane_of[near]):
            rows = row[near & (lane_of == i)]
            tt, xx, yy, lv = lanes[i][:4]
            tracks.append((tt, xx, yy, tt[rows]))
            vals.append(lv[rows])
        which = np.concatenate([np.full(v_.size, j) for j, v_ in enumerate(vals)])
        levels = (which[:, None] == np.arange(len(vals))[None, :]).astype(np.float64)
        out.append(_Window(v=np.concatenate(vals), tracks=tracks,
                           p=np.array([xs[k], ys[k], 1.0]), levels=levels))
    return out


def _window_residual(w: _Window, lag: float, q: np.ndarray, geom: SensorGeometry
                     ) -> np.ndarray:
    """Misfit of the best moment (+ constant) for a dipole at ``q`` = (x0, y0, depth)."""
    px, py = w.positions(lag)
    G = np.hstack((design_matrix(px, py, q[0], q[1], q[2], geom), w.levels))
    m, *_ = np.linalg.lstsq(G, w.v, rcond=None)
    return G @ m - w.v


def _fit_alone(w: _Window, geom: SensorGeometry) -> None:
    """Place the window's dipole at zero lag (a few starting depths) and set its sigma."""
    from scipy.optimize import least_squares

    best = None
    for d in (0.3, 1.0, 2.5):
        r = least_squares(lambda q: _window_residual(w, 0.0, q, geom),
                          np.array([w.p[0], w.p[1], d]),
                          bounds=([-np.inf, -np.inf, 0.0], [np.inf, np.inf, 20.0]))
        if best is None or r.cost < best.cost:
            best = r
    assert best is not None
    w.p = best.x
    w.sigma = max(float(np.sqrt(2.0 * best.cost / w.v.size)), 1e-9)


def _joint(windows: list[_Window], lag0: float, geom: SensorGeometry,
           max_lag_s: float) -> tuple[float, float]:
    """One lag and every window's dipole fitted together, from ``lag0``: (lag, cost).

    Updates each window's dipole position."""
    from scipy.optimize import least_squares

    def fun(q: np.ndarray) -> np.ndarray:
        return np.concatenate([
            _window_residual(w, q[0], q[1 + 3 * i: 4 + 3 * i], geom) / w.sigma
            for i, w in enumerate(windows)])

    q0 = np.concatenate([[lag0], *[w.p for w in windows]])
    lo = np.concatenate([[-max_lag_s], *[[-np.inf, -np.inf, 0.0]] * len(windows)])
    hi = np.concatenate([[max_lag_s], *[[np.inf, np.inf, 20.0]] * len(windows)])
    # window i's residuals depend on the lag and its own three parameters only
    sizes = [w.v.size for w in windows]
    sparsity = np.zeros((sum(sizes), q0.size), dtype=bool)
    sparsity[:, 0] = True
    row = 0
    for i, n in enumerate(sizes):
        sparsity[row:row + n, 1 + 3 * i: 4 + 3 * i] = True
        row += n
    r = least_squares(fun, q0, bounds=(lo, hi), x_scale="jac", jac_sparsity=sparsity)
    for i, w in enumerate(windows):
        w.p = r.x[1 + 3 * i: 4 + 3 * i].copy()
    return float(r.x[0]), float(r.cost)


def estimate_lag(t: np.ndarray, x: np.ndarray, y: np.ndarray, v: np.ndarray,
                 lane: np.ndarray, geom: SensorGeometry, *,
                 max_lag_s: float = MAX_LAG_S) -> LagEstimate:
    """The position lag (s) under which dipoles fit the strongest anomalies best.

    ``lane`` numbers the rows' lanes (< 0: turns). Raises `LagError` when no
    strong anomaly is crossed by lanes walked in both directions.
    """
    t = np.asarray(t, dtype=np.float64)
    windows = _windows(t, np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64),
                       np.asarray(v, dtype=np.float64), np.asarray(lane))
    if not windows:
        raise LagError("estimating the position lag needs strong signals crossed by lanes "
                       "walked in opposite directions (a zig-zag survey); none found: "
                       "give the lag in seconds")
    for w in windows:
        _fit_alone(w, geom)
    zero = sum(float(np.sum((_window_residual(w, 0.0, w.p, geom) / w.sigma) ** 2)) / 2
               for w in windows)
    lag, cost = _joint(windows, 0.0, geom, max_lag_s)
    # a window's misfit at zero lag is mostly the lag's own doing (sharpest
    # anomalies worst): weigh again by the misfit left at the lag found
    for w in windows:
        r = _window_residual(w, lag, w.p, geom)
        w.sigma = max(float(np.sqrt(np.mean(r * r))), 1e-9)
    lag, _ = _joint(windows, lag, geom, max_lag_s)
    return LagEstimate(lag_s=lag, windows=len(windows), improvement=zero - cost)
