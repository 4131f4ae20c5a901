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


# Two bodies 1.2 m apart (their fields overlap: every Jacobian column of one
# depends on the other through the shared moment solve) and one 9 m away:
# the fit-core speed tests' world.
NEAR_AND_FAR = [induced(3.2, 6.0, 0.8, 1.0), induced(4.1, 6.8, 0.4, 0.1),
                induced(4.6, 15.0, 1.5, 5.0)]


def near_and_far_case(kind: str, seed: int, line: bool = False):
    """`NEAR_AND_FAR` surveyed with 0.3 nT of noise and 0.5 nT lane offsets,
    as the speed tests fit it: x, y, v, lanes, the `SensorGeometry`, start
    sources near the three bodies (the first a line with ``line``) and
    weights per sample."""
    x, y, v, lane, geometry = survey(NEAR_AND_FAR, kind=kind, noise=0.3, seed=seed,
                                     offsets=0.5)
    geom = SensorGeometry.from_geometry(geometry, QUANG_TRI)
    first = np.array([3.0, 5.4, 0.7, 3.5, 6.6, 0.9]) if line else np.array([3.0, 5.5, 1.0])
    near = np.array([4.2, 6.9, 0.4]) if line else np.array([4.4, 7.2, 0.6])
    far = np.array([4.6, 15.0, 1.5]) if line else np.array([5.0, 14.0, 1.0])
    w = 1.0 / (0.3 + 0.01 * np.abs(v))
    return x, y, v, lane, geom, [first, near, far], w

