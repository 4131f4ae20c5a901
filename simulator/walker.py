"""The operator walking lanes: where the sensor really was, and where it was recorded.

Lanes run north-south, ``lane_spacing_m`` apart, the first at
``x0 + spacing / 2`` walked northward, the next southward (zig-zag). The
instrument samples on a regular clock: sample ``index`` is taken at
``index / rate_hz`` seconds. While turning between lanes the device keeps
counting but sends nothing, so ``index`` jumps by ``turn_time_s * rate_hz``
(a gap the driver sees through the device counter).

The walk is imperfect in the ways field data are: smooth lateral wander off
the rope, a varying pace, the sensor bobbing with each step, and recorded
positions with a correlated (AR(1)) error of a few centimetres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.scenario import Area, SurveySpec


@dataclass(frozen=True, slots=True, eq=False)
class WalkPath:
    """Per-sample arrays of one simulated walk (all shape (n,))."""

    index: np.ndarray  # int64 device sample counter
    t_s: np.ndarray  # device time, s (= index / rate)
    x_true: np.ndarray
    y_true: np.ndarray
    z_sensor: np.ndarray  # height of the (lower) sensor above ground, m
    x_rec: np.ndarray
    y_rec: np.ndarray
    lane: np.ndarray  # int64 lane number, 0 = westmost
    heading: np.ndarray  # +1 walking north, -1 walking south

    @property
    def n(self) -> int:
        return int(self.index.shape[0])


def _smooth(rng: np.random.Generator, s: np.ndarray, wavelength: float, std: float,
            k: int = 4) -> np.ndarray:
    """Random smooth function of ``s`` (sum of k sinusoids) with the given std."""
    if std == 0 or s.size == 0:
        return np.zeros_like(s, dtype=float)
    lam = wavelength * rng.uniform(0.5, 2.0, k)
    phase = rng.uniform(0, 2 * math.pi, k)
    amp = std * math.sqrt(2.0 / k)
    return amp * np.sin(2 * math.pi * s[:, None] / lam[None, :] + phase[None, :]).sum(axis=1)


def _ar1(rng: np.random.Generator, index: np.ndarray, rate_hz: float, std: float,
         tau_s: float) -> np.ndarray:
    """Stationary AR(1) error sampled at ``index`` (correlation time ``tau_s``)."""
    n = index.size
    if std == 0 or n == 0:
        return np.zeros(n)
    w = rng.standard_normal(n)
    if tau_s <= 0:
        return std * w
    dt = np.diff(index).astype(float) / rate_hz
    a = np.exp(-dt / tau_s)
    out = np.empty(n)
    out[0] = std * w[0]
    b = std * np.sqrt(1.0 - a * a)
    for i in range(1, n):  # sequential by nature; n is at most a few 1e6
        out[i] = a[i - 1] * out[i - 1] + b[i - 1] * w[i]
    return out


def walk(area: Area, survey: SurveySpec, sensor_height_m: float,
         rng: np.random.Generator) -> WalkPath:
    """Simulate the walk over ``area`` (seeded by ``rng``)."""
    spacing = survey.lane_spacing_m
    n_lanes = max(1, math.floor(area.width / spacing + 1e-9))
    dt = 1.0 / survey.rate_hz
    step = survey.speed_m_s * dt
    turn_ticks = round(survey.turn_time_s * survey.rate_hz)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                          ("index", "x", "y", "lane", "head", "dist")}
    start = 0
    walked = 0.0
    for lane in range(n_lanes):
        if survey.speed_variation > 0:
            # Enough ticks even at the slowest pace the clip allows.
            max_ticks = math.ceil(area.length / (step * 0.2)) + 2
            t_local = np.arange(max_ticks) * dt
            mult = 1.0 + _smooth(rng, t_local, 4.0, survey.speed_variation)
            np.clip(mult, 0.2, None, out=mult)
            d = np.concatenate(([0.0], np.cumsum(mult[:-1] * step)))
            d = d[d <= area.length + 1e-9]
        else:
            d = np.arange(math.floor(area.length / step + 1e-9) + 1) * step
        n = d.size
        north = lane % 2 == 0
        y = area.y0 + d if north else area.y0 + area.length - d
        x = area.x0 + spacing * (lane + 0.5) + _smooth(
            rng, d, survey.wander_wavelength_m, survey.lateral_wander_m)
        parts["index"].append(start + np.arange(n, dtype=np.int64))
        parts["x"].append(x)
        parts["y"].append(y)
        parts["lane"].append(np.full(n, lane, dtype=np.int64))
        parts["head"].append(np.full(n, 1 if north else -1, dtype=np.int64))
        parts["dist"].append(walked + d)
        walked += float(d[-1]) + spacing
        start += n + turn_ticks
    index = np.concatenate(parts["index"])
    x_true = np.concatenate(parts["x"])
    y_true = np.concatenate(parts["y"])
    dist = np.concatenate(parts["dist"])
    phase = rng.uniform(0, 2 * math.pi)
    z = sensor_height_m + survey.gait_bob_m * np.sin(
        2 * math.pi * dist / survey.step_length_m + phase)
    ex = _ar1(rng, index, survey.rate_hz, survey.position_error_m, survey.position_error_tau_s)
    ey = _ar1(rng, index, survey.rate_hz, survey.position_error_m, survey.position_error_tau_s)
    return WalkPath(
        index=index, t_s=index / survey.rate_hz, x_true=x_true, y_true=y_true, z_sensor=z,
        x_rec=x_true + ex, y_rec=y_true + ey, lane=np.concatenate(parts["lane"]),
        heading=np.concatenate(parts["head"]),
    )
