"""What a borehole probe reads of one dipole, for a vertical hole.

A gradiometer probe reads the axial component: lower sensor minus upper
sensor, Bz(lower) - Bz(upper) in a vertical hole, with the lower sensor at
the logged depth and the upper one ``separation`` metres above it. A 3-axis
probe reads the field vector at its sensor. Processing assumes vertical
holes (their deviation is unknown to it).
"""

from __future__ import annotations

import numpy as np

from acquisition.forward.dipole import dipole_basis


def vector_basis(x: np.ndarray, y: np.ndarray, depth: np.ndarray,
                 source: np.ndarray) -> np.ndarray:
    """(n, 3 comps, 3 moment comps) field basis at the lower sensor of a 3-axis probe."""
    pts = np.column_stack([x, y, -np.asarray(depth, dtype=float)])
    return dipole_basis(pts, source)


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


def gradient_reading(x: np.ndarray, y: np.ndarray, depth: np.ndarray, separation: float,
                     source: np.ndarray, moment: np.ndarray) -> np.ndarray:
    """Axial-gradient readings (n,) in nT of a vertical probe from one dipole."""
    return gradient_basis(x, y, depth, separation, source) @ np.asarray(moment, dtype=float)
