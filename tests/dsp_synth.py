"""Synthetic lane surveys for the DSP tests, made with our own forward model.

Zig-zag lanes 1 m apart running north-south, 0.1 m between samples (1 m/s at
10 Hz), optional side-step samples at lane ends, lane offsets and seeded noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acquisition.forward import SensorGeometry, forward, induced_moment
from acquisition.geomag import QUANG_TRI, EarthField


@dataclass(frozen=True)
class Source:
    x: float
    y: float
    depth: float
    moment: tuple[float, float, float]


def induced(x: float, y: float, depth: float, m_abs: float,
            field: EarthField = QUANG_TRI) -> Source:
    return Source(x, y, depth, tuple(float(v) for v in induced_moment(m_abs, field)))


def lanes_xy(n_lanes: int = 8, length: float = 20.0, step: float = 0.1, x0: float = 0.5,
             sidestep: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, ln = [], [], []
    ny = round(length / step) + 1
    yy = np.arange(ny) * step
    for k in range(n_lanes):
        y = yy if k % 2 == 0 else yy[::-1]
        xs.append(np.full(ny, x0 + k))
        ys.append(y)
        ln.append(np.full(ny, k))
        if sidestep and k < n_lanes - 1:
            frac = (np.arange(1, sidestep + 1) / (sidestep + 1))
            xs.append(x0 + k + frac)
            ys.append(np.full(sidestep, y[-1]))
            ln.append(np.full(sidestep, -1))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ln)


def survey(sources: list[Source], *, kind: str = "gradient", noise: float = 0.0,
           seed: int = 0, n_lanes: int = 8, length: float = 20.0, offsets: float = 0.0,
           sidestep: int = 0, field: EarthField = QUANG_TRI, walk: float = 0.0):
    """``walk``: position error (m, 1 sigma), smooth along each lane over
    about 3 m: the readings are taken off the recorded path."""
    rng = np.random.default_rng(seed)
    geometry = {"kind": kind, "sensor_height_m": 0.3, "sensor_separation_m": 0.65}
    geom = SensorGeometry.from_geometry(geometry, field)
    x, y, lane = lanes_xy(n_lanes, length, sidestep=sidestep)
    xt, yt = x, y
    if walk:
        # its own generator: the draws of the other settings stay as they were
        wr = np.random.default_rng([seed, 1])
        ker = np.hanning(31) / np.hanning(31).sum()
        err = np.zeros((2, x.size))
        for k in np.unique(lane):
            m = lane == k
            n = int(m.sum())
            for e in err:
                e[m] = np.convolve(wr.normal(0, 1, n + 30), ker, "valid")[:n]
        err *= walk / err.std(axis=1, keepdims=True)
        xt, yt = x + err[0], y + err[1]
    v = np.zeros(x.size)
    for s in sources:
        v += forward(xt, yt, s.x, s.y, s.depth, s.moment, geom)
    if offsets:
        off = rng.normal(0, offsets, n_lanes + 1)
        v += off[np.clip(lane, 0, None)]
    if noise:
        v += rng.normal(0, noise, x.size)
    return x, y, v, lane, geometry
