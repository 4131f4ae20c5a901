"""Elongated bodies: a straight line of dipoles as the source model.

A point dipole is the right model for an object small beside its distance
from the sensor. A bomb 1.8 m long at 0.4 m, or at 1.3 m lying steeply, is
not: the field near one end is stronger than a dipole at the centre gives,
the point fit sits too deep, and what it cannot explain looks like a second,
weak, shallow object beyond the body's upper end. So strong sources are also
fitted as a *line source*: ``LINE_POINTS`` dipoles evenly spread between two
end points, sharing one moment vector (solved linearly, like a point
source's). The body's shape and the distribution of steel along it remain
unknown; a uniform line is the simplest model with a length and an axis.

Parameters: the end points ``(x1, y1, d1, x2, y2, d2)``, depths positive down
and folded as |d| (as the point fit does), so both ends stay below ground
without bounds and a line shrinking to a point is the point dipole.
"""

from __future__ import annotations

import math

import numpy as np

from acquisition.forward.geometry import SensorGeometry
from acquisition.forward.lane import design_batch

#: Dipoles along a line source. Nine points 1.8 m apart from each other at
#: most 0.23 m: closer than the sensor height, so their sum is smooth.
LINE_POINTS = 9


def fold_ends(q: np.ndarray) -> np.ndarray:
    """End points with both depths made non-negative (|d|)."""
    e = np.array(q, dtype=np.float64).reshape(6)
    e[2] = abs(e[2])
    e[5] = abs(e[5])
    return e


def line_points(ends: np.ndarray, k: int = LINE_POINTS) -> np.ndarray:
    """(k, 3) positions (x, y, depth) evenly spread along the line (cell centres)."""
    e = np.asarray(ends, dtype=np.float64).reshape(6)
    t = (np.arange(k) + 0.5) / k
    return e[None, :3] + t[:, None] * (e[3:] - e[:3])[None, :]


def line_design(x: np.ndarray, y: np.ndarray, ends: np.ndarray, geom: SensorGeometry,
                k: int = LINE_POINTS) -> np.ndarray:
    """Readings per unit of the line's total moment: ``reading = G @ m``, G is (n, 3)."""
    pts = line_points(ends, k)
    # the mean over the points (`np.mean`'s sum and division, without its
    # per-call overhead: the fits build this design thousands of times)
    return np.add.reduce(design_batch(x, y, pts[:, 0], pts[:, 1], pts[:, 2], geom), axis=0) / k


def ends_from(centre: tuple[float, float, float], length: float, azimuth_deg: float,
              plunge_deg: float = 0.0) -> np.ndarray:
    """End points of a line from its centre (x, y, depth), length and axis.

    Azimuth clockwise from north, plunge down from level toward the azimuth
    (as the simulator's bodies): the second end lies deeper for a positive plunge.
    """
    az, pl = math.radians(azimuth_deg), math.radians(plunge_deg)
    h = 0.5 * length * np.array([math.sin(az) * math.cos(pl), math.cos(az) * math.cos(pl),
                                 math.sin(pl)])
    c = np.asarray(centre, dtype=np.float64)
    return fold_ends(np.concatenate((c - h, c + h)))


def describe(ends: np.ndarray) -> dict[str, float]:
    """Centre (x, y, depth), length, azimuth (0-180°, the axis has no sense) and plunge."""
    e = fold_ends(ends)
    d = e[3:] - e[:3]
    horiz = math.hypot(d[0], d[1])
    length = float(math.sqrt(horiz * horiz + d[2] * d[2]))
    az = math.degrees(math.atan2(d[0], d[1])) % 360.0
    plunge = math.degrees(math.atan2(d[2], horiz)) if length > 0 else 0.0
    if az >= 180.0:  # report the axis pointing into 0-180°, plunge signed accordingly
        az -= 180.0
        plunge = -plunge
    c = 0.5 * (e[:3] + e[3:])
    return {"x": float(c[0]), "y": float(c[1]), "depth": float(c[2]), "length_m": length,
            "azimuth_deg": float(az), "plunge_deg": float(plunge)}
