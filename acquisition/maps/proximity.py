"""Detectors of one session that came closer than the procedure's 7 m.

Two fluxgate detectors working in one area disturb each other nearer than
7 m. Each detector's track (time in seconds, local x, y) is sampled once a
second over the time both were recording (linear between fixes, never
beyond either track's ends); every stretch where they were closer is one
warning with its start, end, the closest distance and where that was.
Tracks come from the position streams of one recording (one per detector),
or from a survey file's ``detector`` column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

#: The procedure's minimum distance between two working detectors (m).
MIN_SEPARATION_M = 7.0
STEP_S = 1.0


@dataclass(slots=True)
class Track:
    name: str
    t: np.ndarray
    x: np.ndarray
    y: np.ndarray


@dataclass(slots=True)
class CloseApproach:
    a: str
    b: str
    t_start: float
    t_end: float
    min_distance_m: float
    x: float
    y: float


def close_approaches(tracks: list[Track], min_m: float = MIN_SEPARATION_M,
                     step_s: float = STEP_S) -> list[CloseApproach]:
    out: list[CloseApproach] = []
    for ta, tb in combinations(tracks, 2):
        t0 = max(float(ta.t.min()), float(tb.t.min()))
        t1 = min(float(ta.t.max()), float(tb.t.max()))
        if not t1 >= t0:
            continue  # never working at the same time
        ts = np.arange(t0, t1 + step_s / 2, step_s)
        oa, ob = np.argsort(ta.t, kind="stable"), np.argsort(tb.t, kind="stable")
        ax = np.interp(ts, ta.t[oa], ta.x[oa])
        ay = np.interp(ts, ta.t[oa], ta.y[oa])
        bx = np.interp(ts, tb.t[ob], tb.x[ob])
        by = np.interp(ts, tb.t[ob], tb.y[ob])
        d = np.hypot(ax - bx, ay - by)
        close = d < min_m
        if not close.any():
            continue
        edges = np.flatnonzero(np.diff(np.r_[0, close.astype(np.int8), 0]))
        for s, e in zip(edges[::2], edges[1::2], strict=True):
            k = s + int(np.argmin(d[s:e]))
            out.append(CloseApproach(a=ta.name, b=tb.name, t_start=float(ts[s]),
                                     t_end=float(ts[e - 1]), min_distance_m=float(d[k]),
                                     x=float((ax[k] + bx[k]) / 2), y=float((ay[k] + by[k]) / 2)))
    out.sort(key=lambda c: c.t_start)
    return out


def tracks_of_recording(path: str) -> list[Track]:
    """One track per stream with positions in an HDF5 recording."""
    from recorder.reader import open_recording  # lazy: h5py only for recordings

    tracks = []
    with open_recording(path) as rec:
        for sid, r in rec.streams.items():
            pos = r.positions
            if pos is None or not len(pos):
                continue
            t = np.asarray(r.times_ns(), dtype=np.float64) / 1e9
            ok = np.isfinite(pos[:, 0]) & np.isfinite(pos[:, 1])
            if ok.sum() >= 2:
                tracks.append(Track(sid, t[ok], pos[ok, 0], pos[ok, 1]))
    return tracks


def tracks_of_column(t: np.ndarray | None, x: np.ndarray, y: np.ndarray,
                     detector: np.ndarray | None) -> list[Track]:
    """Tracks by a survey file's ``detector`` column (none without times or the column)."""
    if t is None or detector is None:
        return []
    ok = np.isfinite(t) & np.isfinite(x) & np.isfinite(y) & np.isfinite(detector)
    out = []
    for k in np.unique(detector[ok]):
        m = ok & (detector == k)
        if m.sum() >= 2:
            name = str(int(k)) if float(k).is_integer() else str(k)
            out.append(Track(f"detector {name}", t[m], x[m], y[m]))
    return out


def fmt_time(t: float) -> str:
    """Seconds as a UTC clock time when they look like epoch seconds, else as seconds."""
    if t > 1e9 and math.isfinite(t):
        import datetime as dt

        return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{t:.0f} s"
