"""Borehole scenarios: a layer of quincunx holes, buried bodies between them, probe logs.

What the simulated world does that the processing does not know:

* holes deviate from vertical by up to ``tilt_max_deg`` (random azimuth), so
  the probe is not where a vertical hole would put it, and its axis (along
  which the gradiometer reads) is tilted;
* the depth counter measures cable paid out with a scale error and a zero
  offset (per hole);
* bodies are munition cases, not the uniform lines the processing fits: a
  line of dipoles along the axis weighted like a steel case (thin tail cone,
  cylinder, heavy nose: `simulator.physics.shell_weights`, as the lane
  surveys use), with moments leaning toward the axis (shape anisotropy) plus
  remanence. The truth position is the body's geometric centre; the moment's
  centre lies 2-3 % of the length toward the nose;
* the probe has an offset, a linear drift over the log and white noise.

Each hole is logged pulling up from its bottom, at ``speed_m_s`` and
``rate_hz``. The ground truth holds, per target, the noise-free peak signal
it gives in every hole, so a benchmark can ask which targets were detectable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from acquisition.borehole.logs import HoleLog
from acquisition.borehole.plan import HolePlan, quincunx
from acquisition.geomag import QUANG_TRI, EarthField
from simulator.physics import (
    PROFILES,
    axis_vector,
    dipole_field,
    induced_moment,
    line_of_dipoles,
)

#: kind -> (moment range A m^2, length range m): docs/field.md rough moments.
BODY_KINDS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "projectile_105": ((0.5, 2.0), (0.45, 0.55)),
    "projectile_155": ((1.0, 3.0), (0.6, 0.8)),
    "aircraft_bomb": ((5.0, 30.0), (1.4, 1.6)),
}


@dataclass(slots=True)
class BodyTruth:
    target_id: int
    kind: str
    x: float
    y: float
    depth: float
    moment: np.ndarray
    length_m: float
    azimuth_deg: float
    plunge_deg: float
    #: How the moment is spread along the body (`simulator.physics.line_of_dipoles`).
    profile: str = "shell"
    #: Noise-free peak |reading| (nT) this body alone gives in each hole.
    peak_by_hole: dict[str, float] = field(default_factory=dict)

    @property
    def max_peak(self) -> float:
        return max(self.peak_by_hole.values(), default=0.0)


@dataclass(slots=True)
class HoleTruth:
    hole: str
    x: float
    y: float
    tilt_deg: float
    tilt_azimuth_deg: float
    depth_scale: float
    depth_offset_m: float
    probe_offset_nT: float
    probe_drift_nT: float


@dataclass(slots=True)
class BoreholeScenario:
    seed: int
    plan: HolePlan
    logs: list[HoleLog]
    bodies: list[BodyTruth]
    holes: list[HoleTruth]
    noise_nT: float
    field: EarthField


def _hole_axis(tilt_deg: float, az_deg: float) -> np.ndarray:
    """Unit vector pointing down the hole (ENU)."""
    t, a = math.radians(tilt_deg), math.radians(az_deg)
    return np.array([math.sin(t) * math.sin(a), math.sin(t) * math.cos(a), -math.cos(t)])


def _body_sources(b: BodyTruth) -> tuple[np.ndarray, np.ndarray]:
    centre = np.array([b.x, b.y, -b.depth])
    return line_of_dipoles(centre, b.moment, b.length_m, b.azimuth_deg, b.plunge_deg,
                           profile=b.profile)


def probe_readings(collar: tuple[float, float], axis_down: np.ndarray, along: np.ndarray,
                   separation: float, src_pos: np.ndarray, src_mom: np.ndarray,
                   kind: str = "gradient") -> np.ndarray:
    """Noise-free readings of a probe at cable lengths ``along`` down a straight hole.

    Gradient: the axial component (along the hole, positive up) at the lower
    sensor minus at the upper sensor. Vector: B at the lower sensor in ENU
    (a north-referenced 3-axis probe).
    """
    c = np.array([collar[0], collar[1], 0.0])
    lower = c[None, :] + along[:, None] * axis_down[None, :]
    if kind == "vector":
        return dipole_field(lower, src_pos, src_mom)
    upper = lower - separation * axis_down[None, :]
    up = -axis_down
    both = dipole_field(np.vstack([lower, upper]), src_pos, src_mom) @ up
    n = len(along)
    return both[:n] - both[n:]


def make_scenario(seed: int, *, area: tuple[float, float, float, float] = (0.0, 0.0, 10.0, 8.0),
                  spacing: float = 2.0, n_targets: int = 3, noise_nT: float = 0.5,
                  tilt_max_deg: float = 1.5, depth_scale_err: float = 0.01,
                  depth_offset_err_m: float = 0.05, probe_offset_nT: float = 20.0,
                  probe_drift_nT: float = 2.0, rate_hz: float = 10.0, speed_m_s: float = 0.1,
                  hole_bottom_m: float = 10.0, log_top_m: float = 3.5,
                  depth_range: tuple[float, float] = (5.5, 9.5),
                  kinds: tuple[str, ...] = ("projectile_105", "projectile_155", "aircraft_bomb"),
                  min_separation_m: float = 2.5, separation: float = 0.65,
                  remanent_fraction: float = 0.3, kind: str = "gradient",
                  body_profile: str = "shell",
                  field_: EarthField = QUANG_TRI) -> BoreholeScenario:
    """A seeded layer-2 scenario: holes, bodies between them, logs and ground truth.

    ``body_profile`` ("shell", default, or "uniform") spreads each body's
    moment along its axis; it draws no random numbers, so a seed gives the
    same bodies, holes and noise with either profile.
    """
    if body_profile not in PROFILES:
        raise ValueError(f"body_profile must be one of {PROFILES}, got {body_profile!r}")
    rng = np.random.default_rng(seed)
    plan = quincunx(area, spacing=spacing, layer=2)
    hole_xy = plan.xy()
    x0, y0, x1, y1 = area
    bodies: list[BodyTruth] = []
    tries = 0
    while len(bodies) < n_targets and tries < 1000:
        tries += 1
        k = kinds[int(rng.integers(len(kinds)))]
        (m0, m1), (l0, l1) = BODY_KINDS[k]
        x, y = rng.uniform(x0 + 0.5, x1 - 0.5), rng.uniform(y0 + 0.5, y1 - 0.5)
        depth = rng.uniform(*depth_range)
        length = rng.uniform(l0, l1)
        az, pl = rng.uniform(0, 360), rng.uniform(-80, 80)
        ax = axis_vector(az, pl)
        # The hole cannot pass through the body: keep its axis 0.3 m from every hole.
        seg = np.linspace(-length / 2, length / 2, 9)[:, None] * ax[None, :] + [x, y, -depth]
        dmin = np.min(np.hypot(seg[:, 0][:, None] - hole_xy[:, 0][None, :],
                               seg[:, 1][:, None] - hole_xy[:, 1][None, :]))
        if dmin < 0.3:
            continue
        if any(math.dist((x, y, depth), (b.x, b.y, b.depth)) < min_separation_m for b in bodies):
            continue
        mag = math.exp(rng.uniform(math.log(m0), math.log(m1)))
        ind = induced_moment(mag, field_, axis=ax, axial_gain=3.0)
        rem = rng.standard_normal(3)
        rem *= remanent_fraction * mag / np.linalg.norm(rem)
        bodies.append(BodyTruth(len(bodies) + 1, k, x, y, depth, ind + rem, length, az, pl,
                                profile=body_profile))
    holes: list[HoleTruth] = []
    logs: list[HoleLog] = []
    along_true = np.arange(hole_bottom_m, log_top_m - 1e-9, -speed_m_s / rate_hz)
    t = np.arange(len(along_true)) / rate_hz
    for ph in plan.holes:
        ht = HoleTruth(ph.hole, ph.x, ph.y, float(rng.uniform(0, tilt_max_deg)),
                       float(rng.uniform(0, 360)),
                       1.0 + float(rng.uniform(-1, 1)) * depth_scale_err,
                       float(rng.uniform(-1, 1)) * depth_offset_err_m,
                       float(rng.uniform(-1, 1)) * probe_offset_nT,
                       float(rng.uniform(-1, 1)) * probe_drift_nT)
        holes.append(ht)
        axis = _hole_axis(ht.tilt_deg, ht.tilt_azimuth_deg)
        # Cable length paid out reaches the true along-hole distance.
        shape = (len(along_true),) if kind == "gradient" else (len(along_true), 3)
        clean = np.zeros(shape)
        for b in bodies:
            sp, sm = _body_sources(b)
            r = probe_readings((ph.x, ph.y), axis, along_true, separation, sp, sm, kind)
            clean += r
            b.peak_by_hole[ph.hole] = float(np.max(np.abs(r)))
        frac = t / max(t[-1], 1e-9)
        noisy = clean + rng.normal(0.0, noise_nT, shape)
        base = ht.probe_offset_nT + ht.probe_drift_nT * frac
        noisy = noisy + (base if kind == "gradient" else base[:, None])
        counted = ht.depth_scale * along_true + ht.depth_offset_m
        logs.append(HoleLog(ph.hole, ph.x, ph.y, counted, noisy, kind=kind, t=t.copy(),
                            separation=separation))
    return BoreholeScenario(seed, plan, logs, bodies, holes, noise_nT, field_)
