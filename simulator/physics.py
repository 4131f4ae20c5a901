"""Magnetic physics of buried ferrous objects: point dipoles, elongated bodies, soil.

Conventions (docs/developing.md): local ENU metres, z up, ground at z = 0, a
buried object at depth d sits at z = -d. Fields in nT, moments in A m^2:

    B(r) = 100 nT * (3 (m . r_hat) r_hat - m) / |r|^3      (mu0 / 4 pi = 1e-7 -> 100 nT)

with ``r`` the vector from the dipole to the observation point.

Readings:
* ``gradient``: Bz(lower sensor) - Bz(upper sensor), Bz the UP component;
* ``total``: anomaly projected on the Earth-field direction, dT = B . F_hat;
* ``tf_gradient``: two total-field sensors (caesium/Overhauser gradiometer),
  B . F_hat at the lower sensor minus B . F_hat at the upper one.

This module keeps its own implementation of the physics, independent of the
processing's (`acquisition.forward`), so tests comparing the two check both.

Everything is vectorised over observation points and sources; large
source x point products are evaluated in chunks so memory stays bounded
(thousands of soil dipoles against tens of thousands of samples).

An elongated body (bomb, projectile) is modelled as a line of K dipoles along
its axis sharing the total moment, in the surveys by the steel of a munition
case (`shell_weights`: tail cone, body, heavy nose): close to the body this
differs from a point dipole and from a uniform line, the two models the DSP
fits, so the simulated world is harder than the model used to invert it. Far
away it converges to the point dipole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from acquisition.geomag import EarthField

#: mu0 / (4 pi) in nT m^3 / (A m^2).
CM_NT = 100.0
#: Pairs (points x sources) evaluated per chunk: ~5e5 pairs = ~30 MB of float64 temporaries.
_CHUNK_PAIRS = 500_000
#: Distance floor (m) so a source exactly at a sensor gives a huge but finite value.
_R_MIN = 1e-3


def _as_points(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (n, 3), got {np.shape(a)}")
    return arr


def dipole_field(obs: np.ndarray, src_pos: np.ndarray, src_moment: np.ndarray) -> np.ndarray:
    """Summed field (N, 3) in nT at ``obs`` (N, 3) from dipoles at ``src_pos`` (M, 3).

    ``src_moment`` is (M, 3) in A m^2. All vectors ENU, metres.
    """
    obs = _as_points(obs, "obs")
    pos = _as_points(src_pos, "src_pos")
    mom = _as_points(src_moment, "src_moment")
    if pos.shape[0] != mom.shape[0]:
        raise ValueError(f"{pos.shape[0]} source positions but {mom.shape[0]} moments")
    n, m = obs.shape[0], pos.shape[0]
    out = np.zeros((n, 3))
    if n == 0 or m == 0:
        return out
    step = max(1, _CHUNK_PAIRS // m)
    px, py, pz = pos[:, 0], pos[:, 1], pos[:, 2]
    for a in range(0, n, step):
        b = min(n, a + step)
        # Component arrays (n, m) keep temporaries few and contiguous.
        dx = obs[a:b, 0:1] - px
        dy = obs[a:b, 1:2] - py
        dz = obs[a:b, 2:3] - pz
        r2 = dx * dx
        r2 += dy * dy
        r2 += dz * dz
        np.maximum(r2, _R_MIN * _R_MIN, out=r2)
        inv_r2 = 1.0 / r2
        inv_r3 = np.sqrt(inv_r2)
        inv_r3 *= inv_r2
        mdotr = dx * mom[:, 0]
        mdotr += dy * mom[:, 1]
        mdotr += dz * mom[:, 2]
        # f = 3 (m.r) / r^5; B = 100 (f r - m / r^3), summed over sources
        mdotr *= inv_r3
        mdotr *= inv_r2
        mdotr *= 3.0
        out[a:b, 0] = np.einsum("nm,nm->n", mdotr, dx)
        out[a:b, 1] = np.einsum("nm,nm->n", mdotr, dy)
        out[a:b, 2] = np.einsum("nm,nm->n", mdotr, dz)
        out[a:b] -= inv_r3 @ mom
    out *= CM_NT
    return out


def dipole_field_reference(obs: np.ndarray, src_pos: np.ndarray,
                           src_moment: np.ndarray) -> np.ndarray:
    """Plain loop implementation of `dipole_field` (tests check one against the other)."""
    obs = _as_points(obs, "obs")
    pos = _as_points(src_pos, "src_pos")
    mom = _as_points(src_moment, "src_moment")
    out = np.zeros((obs.shape[0], 3))
    for i in range(obs.shape[0]):
        for j in range(pos.shape[0]):
            r = obs[i] - pos[j]
            d = max(float(np.linalg.norm(r)), _R_MIN)
            rh = r / d
            out[i] += CM_NT * (3.0 * np.dot(mom[j], rh) * rh - mom[j]) / d**3
    return out


def _obs_points(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    x, y, z = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float),
                                  np.asarray(z, float))
    return np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)


def gradient_reading(x: np.ndarray, y: np.ndarray, z_lower: np.ndarray,
                     src_pos: np.ndarray, src_moment: np.ndarray,
                     separation_m: float = 0.65) -> np.ndarray:
    """Vertical gradiometer reading (nT): Bz at ``z_lower`` minus Bz at ``z_lower + sep``.

    ``z_lower`` is the lower sensor's height above ground (z up). Returns (N,).
    """
    lower = _obs_points(x, y, z_lower)
    upper = lower.copy()
    upper[:, 2] += separation_m
    both = dipole_field(np.concatenate([lower, upper]), src_pos, src_moment)
    n = lower.shape[0]
    return both[:n, 2] - both[n:, 2]


def total_field_reading(x: np.ndarray, y: np.ndarray, z: np.ndarray,
                        src_pos: np.ndarray, src_moment: np.ndarray,
                        field: EarthField) -> np.ndarray:
    """Total-field anomaly (nT), dT = B . F_hat, at sensor height ``z``. Returns (N,)."""
    b = dipole_field(_obs_points(x, y, z), src_pos, src_moment)
    return b @ field.unit_vector()


def tf_gradient_reading(x: np.ndarray, y: np.ndarray, z_lower: np.ndarray,
                        src_pos: np.ndarray, src_moment: np.ndarray, field: EarthField,
                        separation_m: float = 0.65) -> np.ndarray:
    """Total-field gradiometer reading (nT): dT at ``z_lower`` minus dT at ``z_lower + sep``.

    Two caesium or Overhauser sensors one above the other (G-858 in gradient
    mode, GSM-19GW, two G-882s); each reads dT = B . F_hat. Returns (N,).
    """
    lower = _obs_points(x, y, z_lower)
    upper = lower.copy()
    upper[:, 2] += separation_m
    both = dipole_field(np.concatenate([lower, upper]), src_pos, src_moment) @ field.unit_vector()
    n = lower.shape[0]
    return both[:n] - both[n:]


#: Sensor kinds `reading` knows.
SENSOR_KINDS = ("gradient", "total", "tf_gradient")


def reading(kind: str, x: np.ndarray, y: np.ndarray, z: np.ndarray, src_pos: np.ndarray,
            src_moment: np.ndarray, *, field: EarthField,
            separation_m: float = 0.65) -> np.ndarray:
    """Dispatch on sensor ``kind`` (one of `SENSOR_KINDS`); ``z`` is the lower sensor's height."""
    if kind == "gradient":
        return gradient_reading(x, y, z, src_pos, src_moment, separation_m)
    if kind == "total":
        return total_field_reading(x, y, z, src_pos, src_moment, field)
    if kind == "tf_gradient":
        return tf_gradient_reading(x, y, z, src_pos, src_moment, field, separation_m)
    raise ValueError(f"sensor kind must be one of {', '.join(SENSOR_KINDS)}, got {kind!r}")


def axis_vector(azimuth_deg: float, plunge_deg: float) -> np.ndarray:
    """Unit vector (ENU) of a body axis: azimuth clockwise from north, plunge down from level."""
    az, pl = math.radians(azimuth_deg), math.radians(plunge_deg)
    return np.array([math.sin(az) * math.cos(pl), math.cos(az) * math.cos(pl), -math.sin(pl)])


def induced_moment(magnitude_Am2: float, field: EarthField, *,
                   axis: np.ndarray | None = None, axial_gain: float = 1.0) -> np.ndarray:
    """Induced moment (3,) of the given magnitude along the Earth field.

    With ``axis`` and ``axial_gain`` > 1 the component along the body axis is
    boosted (shape anisotropy of an elongated steel body) and the result is
    rescaled to ``magnitude_Am2``, so the moment leans toward the axis.
    """
    f = field.unit_vector()
    if axis is not None and axial_gain != 1.0:
        a = np.asarray(axis, float) / np.linalg.norm(axis)
        f = f + (axial_gain - 1.0) * np.dot(f, a) * a
        norm = np.linalg.norm(f)
        f = field.unit_vector() if norm == 0 else f / norm
    return magnitude_Am2 * f


#: Body profiles for `line_of_dipoles`.
PROFILES = ("uniform", "shell")


def shell_weights(k: int) -> np.ndarray:
    """Share of the moment per point along a munition body, tail (0) to nose (k-1).

    A bomb or shell is a steel case: a tail cone (the case's radius rising from
    half to full over the first 20 %), a cylindrical body, and an ogive nose
    over the last 25 % whose last 15 % is thick steel (nose plug, fuze well).
    The moment per unit length follows the steel in the cross-section: about
    the radius for the thin case, 1.6x that in the nose. Normalised to 1.
    The processing fits a *uniform* line, so this keeps the simulated world a
    step harder than its model: the moment's centre lies 2-3 % of the length
    toward the nose, and the ends do not look alike.
    """
    u = (np.arange(k) + 0.5) / k
    r = np.where(u < 0.2, 0.5 + 2.5 * u, 1.0)
    nose = u > 0.75
    r = np.where(nose, np.sqrt(np.clip(1.0 - ((u - 0.75) / 0.25) ** 2, 0.0, None)), r)
    w = r * np.where(u > 0.85, 1.6, 1.0)
    return w / w.sum()


def line_of_dipoles(center: np.ndarray, moment: np.ndarray, length_m: float,
                    azimuth_deg: float = 0.0, plunge_deg: float = 0.0,
                    k: int | None = None,
                    profile: str = "uniform") -> tuple[np.ndarray, np.ndarray]:
    """K dipoles along a body axis, sharing ``moment`` (3,).

    ``center`` is (3,) ENU (z = -depth), the body's geometric centre. With
    ``length_m`` <= 0 it is one dipole. ``k`` defaults to one dipole per 10 cm
    of length (at least 3). ``profile``: "uniform" (equal shares) or "shell"
    (`shell_weights`; the nose is the end toward the azimuth and plunge, so a
    body that went in nose first has its nose deeper).
    Returns (positions (K, 3), moments (K, 3)).
    """
    c = np.asarray(center, float).reshape(3)
    m = np.asarray(moment, float).reshape(3)
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if length_m <= 0:
        return c.reshape(1, 3), m.reshape(1, 3)
    if k is None:
        k = max(3, math.ceil(length_m / 0.1))
    if k < 1:
        raise ValueError("k must be >= 1")
    s = length_m * ((np.arange(k) + 0.5) / k - 0.5)
    pos = c + s[:, None] * axis_vector(azimuth_deg, plunge_deg)
    w = np.full(k, 1.0 / k) if profile == "uniform" else shell_weights(k)
    mom = w[:, None] * m[None, :]
    return pos, mom


@dataclass(frozen=True, slots=True)
class SoilSpec:
    """Lateritic soil: many weak shallow dipoles (maghemite/magnetite concretions).

    ``density_per_m2`` sources per square metre over the area plus ``margin_m``;
    moments log-normal around ``moment_Am2`` with log-sigma ``moment_spread``;
    a share ``remanent_fraction`` of each moment points in a random direction,
    the rest along the Earth field. Depths uniform in [depth_min_m, depth_max_m].
    """

    density_per_m2: float = 20.0
    moment_Am2: float = 2e-4
    moment_spread: float = 0.8
    depth_min_m: float = 0.02
    depth_max_m: float = 0.3
    remanent_fraction: float = 0.3
    margin_m: float = 1.0

    def __post_init__(self) -> None:
        if not (self.density_per_m2 >= 0 and math.isfinite(self.density_per_m2)):
            raise ValueError("soil density_per_m2 must be >= 0")
        if not (self.moment_Am2 >= 0 and math.isfinite(self.moment_Am2)):
            raise ValueError("soil moment_Am2 must be >= 0")
        if not (0 <= self.moment_spread <= 5):
            raise ValueError("soil moment_spread must be within 0..5")
        if not (0 <= self.depth_min_m <= self.depth_max_m <= 10):
            raise ValueError("soil depths must satisfy 0 <= depth_min_m <= depth_max_m <= 10")
        if not (0 <= self.remanent_fraction <= 1):
            raise ValueError("soil remanent_fraction must be within 0..1")
        if not (0 <= self.margin_m <= 100):
            raise ValueError("soil margin_m must be within 0..100")


def soil_dipoles(x0: float, y0: float, width: float, length: float, spec: SoilSpec,
                 field: EarthField, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random soil dipoles (positions (M, 3), moments (M, 3)) over the padded area."""
    w = width + 2 * spec.margin_m
    h = length + 2 * spec.margin_m
    n = int(rng.poisson(spec.density_per_m2 * w * h)) if spec.density_per_m2 > 0 else 0
    pos = np.empty((n, 3))
    pos[:, 0] = x0 - spec.margin_m + rng.random(n) * w
    pos[:, 1] = y0 - spec.margin_m + rng.random(n) * h
    pos[:, 2] = -rng.uniform(spec.depth_min_m, spec.depth_max_m, n)
    mag = spec.moment_Am2 * np.exp(spec.moment_spread * rng.standard_normal(n))
    rand_dir = rng.standard_normal((n, 3))
    rand_dir /= np.maximum(np.linalg.norm(rand_dir, axis=1, keepdims=True), 1e-12)
    direction = ((1 - spec.remanent_fraction) * field.unit_vector()[None, :]
                 + spec.remanent_fraction * rand_dir)
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    return pos, mag[:, None] * direction
