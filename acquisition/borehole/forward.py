"""Point-dipole field at borehole probe sensors, linear in the moment.

Conventions (docs/developing.md): ENU metres, z up, ground at z = 0, a source
at depth d sits at z = -d. B = 100 nT (3 (m.r^) r^ - m) / |r|^3 with m in A m^2.

A gradiometer probe reads the axial component: lower sensor minus upper
sensor. In a vertical hole that is Bz(lower) - Bz(upper), with the lower
sensor at the logged depth and the upper one `separation` metres above it.
Processing assumes vertical holes (their deviation is unknown to it).

acquisition/dsp/dipole.py did not exist when this was written, so the
borehole package carries its own small forward model here.
"""

from __future__ import annotations

import numpy as np

MU0_4PI_NT = 100.0  # mu0/(4 pi) * 1e9: nT m^3 / (A m^2)


def dipole_basis(points: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Field per unit moment component: shape (n, 3 field comps, 3 moment comps).

    ``B[i] = basis[i] @ m``. Points closer than 1 mm to the source are clamped
    to 1 mm so a fit that wanders onto a sensor does not produce infinities.
    """
    r = np.asarray(points, dtype=float) - np.asarray(source, dtype=float)[None, :]
    d2 = np.einsum("ij,ij->i", r, r)
    d2 = np.maximum(d2, 1e-6)
    inv_d3 = d2 ** -1.5
    inv_d5 = inv_d3 / d2
    # 3 r r^T / r^5 - I / r^3
    out = 3.0 * r[:, :, None] * r[:, None, :] * inv_d5[:, None, None]
    out[:, 0, 0] -= inv_d3
    out[:, 1, 1] -= inv_d3
    out[:, 2, 2] -= inv_d3
    return MU0_4PI_NT * out


def dipole_rows(r: np.ndarray, comp: np.ndarray | int) -> np.ndarray:
    """One field component per point, per unit moment: shape (n, 3 moment comps).

    ``r`` is (n, 3) point minus source, ``comp`` the field component (0 E,
    1 N, 2 U) per point or for all. The same numbers as
    ``dipole_basis(...)[i, comp[i], :]`` without building the (n, 3, 3)
    tensor: this is the inner loop of every fit.
    """
    d2 = np.maximum(np.einsum("ij,ij->i", r, r), 1e-6)
    inv_d3 = d2 ** -1.5
    inv_d5 = inv_d3 / d2
    n = len(r)
    if np.isscalar(comp):
        rc = r[:, int(comp)]
        out = (3.0 * rc * inv_d5)[:, None] * r
        out[:, int(comp)] -= inv_d3
    else:
        rows = np.arange(n)
        rc = r[rows, comp]
        out = (3.0 * rc * inv_d5)[:, None] * r
        out[rows, comp] -= inv_d3
    return MU0_4PI_NT * out


def dipole_field(points: np.ndarray, source: np.ndarray, moment: np.ndarray) -> np.ndarray:
    """Anomalous field (n, 3) in nT at ``points`` from one dipole."""
    return dipole_basis(points, source) @ np.asarray(moment, dtype=float)


def gradient_basis(x: np.ndarray, y: np.ndarray, depth: np.ndarray, separation: float,
                   source: np.ndarray) -> np.ndarray:
    """Axial-gradient reading per unit moment, (n, 3), for a vertical probe.

    ``depth`` is the lower sensor's depth below ground; the upper sensor is
    ``separation`` metres higher.
    """
    lower = np.column_stack([x, y, -np.asarray(depth, dtype=float)])
    upper = lower.copy()
    upper[:, 2] += separation
    return dipole_basis(lower, source)[:, 2, :] - dipole_basis(upper, source)[:, 2, :]


def vector_basis(x: np.ndarray, y: np.ndarray, depth: np.ndarray,
                 source: np.ndarray) -> np.ndarray:
    """(n, 3 comps, 3 moment comps) field basis at the lower sensor of a 3-axis probe."""
    pts = np.column_stack([x, y, -np.asarray(depth, dtype=float)])
    return dipole_basis(pts, source)


def gradient_reading(x: np.ndarray, y: np.ndarray, depth: np.ndarray, separation: float,
                     source: np.ndarray, moment: np.ndarray) -> np.ndarray:
    """Axial-gradient readings (n,) in nT of a vertical probe from one dipole."""
    return gradient_basis(x, y, depth, separation, source) @ np.asarray(moment, dtype=float)
