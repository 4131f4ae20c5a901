"""The point-dipole field, linear in the moment: one vectorised kernel and its plain twin.

Conventions (docs/developing.md): ENU metres, z up, ground at z = 0, a source
at depth d sits at z = -d. B = 100 nT (3 (m.r^) r^ - m) / |r|^3 with m in
A m^2 and r the vector from the source to the sensor.

Every fit in the project (lane surveys, boreholes, line sources) builds its
design matrices from `field_rows`; `reference_field` is the textbook formula
for one point, kept beside it so tests can check one against the other.
"""

from __future__ import annotations

import math

import numpy as np

MU0_4PI_NT = 100.0  # mu0/(4 pi) in nT m/A: B[nT] = 100 (3(m.r^)r^ - m)/r^3 for m in A m^2
#: Squared distance floor (m^2): a source within 1 mm of a sensor gives a huge
#: but finite value, so a fit wandering onto a sensor does not produce infinities.
R2_MIN = 1e-6

UP = np.array([0.0, 0.0, 1.0])
_AXES = np.eye(3)


def field_rows(dx: np.ndarray | float, dy: np.ndarray | float, dz: np.ndarray | float,
               comp: np.ndarray) -> np.ndarray:
    """Field component along ``comp`` per unit moment (e_x, e_y, e_z): shape (..., 3).

    ``dx, dy, dz`` (sensor minus source, broadcast together) may have any
    shape; ``comp`` is one direction (3,) or one per point (..., 3), a unit
    vector (an axis, the up direction, the Earth-field direction).
    ``reading = field_rows(...) @ m``.
    """
    c = np.asarray(comp, dtype=np.float64)
    c0, c1, c2 = c[..., 0], c[..., 1], c[..., 2]
    r2 = np.maximum(dx * dx + dy * dy + dz * dz, R2_MIN)
    inv_r3 = r2 ** -1.5
    t = 3.0 * (dx * c0 + dy * c1 + dz * c2) * inv_r3 / r2
    # The three columns written in place of a stack of three temporaries
    # (the same operations on the same numbers): on the few hundred to few
    # thousand samples of a fit the copies cost as much as the arithmetic.
    out = np.empty((*np.shape(t), 3))
    for k, (d, ck) in enumerate(((dx, c0), (dy, c1), (dz, c2))):
        col = out[..., k]
        np.multiply(t, d, out=col)
        col -= ck * inv_r3
    out *= MU0_4PI_NT
    return out


def dipole_rows(r: np.ndarray, comp: np.ndarray | int) -> np.ndarray:
    """One field component per point, per unit moment: shape (n, 3 moment comps).

    ``r`` is (n, 3) point minus source, ``comp`` the field component's axis
    (0 E, 1 N, 2 U), per point or for all.
    """
    r = np.asarray(r, dtype=np.float64)
    axes = _AXES[np.asarray(comp, dtype=np.intp)]
    return field_rows(r[:, 0], r[:, 1], r[:, 2], axes)


def dipole_basis(points: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Field per unit moment component: shape (n, 3 field comps, 3 moment comps).

    ``B[i] = basis[i] @ m``.
    """
    r = np.asarray(points, dtype=np.float64) - np.asarray(source, dtype=np.float64)[None, :]
    return np.stack([field_rows(r[:, 0], r[:, 1], r[:, 2], _AXES[k]) for k in range(3)], axis=1)


def dipole_field(points: np.ndarray, source: np.ndarray, moment: np.ndarray) -> np.ndarray:
    """Anomalous field (n, 3) in nT at ``points`` from one dipole at ``source``."""
    return dipole_basis(points, source) @ np.asarray(moment, dtype=np.float64)


def reference_field(sensor: tuple[float, float, float], source: tuple[float, float, float],
                    moment: tuple[float, float, float]) -> tuple[float, float, float]:
    """Plain scalar dipole field B (nT, ENU) at one point: the textbook formula."""
    rx, ry, rz = (sensor[0] - source[0], sensor[1] - source[1], sensor[2] - source[2])
    r = math.sqrt(rx * rx + ry * ry + rz * rz)
    ux, uy, uz = rx / r, ry / r, rz / r
    mdotu = moment[0] * ux + moment[1] * uy + moment[2] * uz
    k = MU0_4PI_NT / r**3
    return (k * (3 * mdotu * ux - moment[0]), k * (3 * mdotu * uy - moment[1]),
            k * (3 * mdotu * uz - moment[2]))
