"""What a lane sensor reads of one buried dipole, by `SensorGeometry` kind.

* ``gradient``: Bz(lower, at h) - Bz(upper, at h + s), Bz the up component;
* ``total``: dT = B.F_hat at h;
* ``tf_gradient``: B.F_hat at h minus B.F_hat at h + s.

The reading is linear in the moment, so the model is written as a design
matrix ``G`` (n, 3) with ``reading = G @ m``. `design_matrix` and
`design_batch` are the vectorised versions the fits use; `reference_reading`
is a plain per-sample loop kept beside them so tests can check one against
the other.
"""

from __future__ import annotations

import functools

import numpy as np

from acquisition.forward.dipole import UP, field_rows, reference_field
from acquisition.forward.geometry import SensorGeometry
from acquisition.geomag import EarthField


def sensor_levels(geom: SensorGeometry) -> list[tuple[float, np.ndarray, float]]:
    """(height above ground, field direction read, sign) of each sensor the reading sums."""
    h = geom.sensor_height_m
    if geom.kind == "total":
        return [(h, np.asarray(geom.field_unit, dtype=np.float64), 1.0)]
    comp = UP if geom.kind == "gradient" else np.asarray(geom.field_unit, dtype=np.float64)
    return [(h, comp, 1.0), (h + geom.sensor_separation_m, comp, -1.0)]


@functools.lru_cache(maxsize=64)
def _levels(geom: SensorGeometry) -> tuple[tuple[float, np.ndarray, float], ...]:
    """`sensor_levels` of a geometry, built once per geometry (a fit asks
    for them on every design), their directions read-only."""
    out = []
    for h, comp, sign in sensor_levels(geom):
        c = np.array(comp, dtype=np.float64)
        c.flags.writeable = False
        out.append((h, c, sign))
    return tuple(out)


def _design(dx: np.ndarray, dy: np.ndarray, depth: np.ndarray | float,
            geom: SensorGeometry) -> np.ndarray:
    (h, comp, _), *others = _levels(geom)
    g = field_rows(dx, dy, h + depth, comp)
    for h, comp, sign in others:  # sign * rows is exact: the upper sensor is subtracted
        g += sign * field_rows(dx, dy, h + depth, comp)
    return g


def design_matrix(x: np.ndarray, y: np.ndarray, x0: float, y0: float, depth: float,
                  geom: SensorGeometry) -> np.ndarray:
    """Readings per unit moment component: ``reading = G @ (mx, my, mz)``; G is (n, 3)."""
    dx = np.asarray(x, dtype=np.float64) - x0
    dy = np.asarray(y, dtype=np.float64) - y0
    return _design(dx, dy, float(depth), geom)


def design_batch(x: np.ndarray, y: np.ndarray, x0: np.ndarray, y0: np.ndarray,
                 depth: np.ndarray, geom: SensorGeometry) -> np.ndarray:
    """`design_matrix` for many candidate positions at once: shape (c, n, 3)."""
    dx = np.asarray(x, dtype=np.float64)[None, :] - np.asarray(x0, dtype=np.float64)[:, None]
    dy = np.asarray(y, dtype=np.float64)[None, :] - np.asarray(y0, dtype=np.float64)[:, None]
    d = np.asarray(depth, dtype=np.float64)[:, None]
    return _design(dx, dy, d, geom)


def forward(x: np.ndarray, y: np.ndarray, x0: float, y0: float, depth: float,
            moment: np.ndarray | tuple[float, float, float], geom: SensorGeometry) -> np.ndarray:
    """Sensor readings (nT) of one dipole at (x0, y0, -depth) with moment (A m^2)."""
    return design_matrix(x, y, x0, y0, depth, geom) @ np.asarray(moment, dtype=np.float64)


def induced_moment(magnitude_Am2: float, field: EarthField) -> np.ndarray:
    """A purely induced moment: along the Earth field, of the given magnitude."""
    return magnitude_Am2 * field.unit_vector()


def reference_reading(x: np.ndarray, y: np.ndarray, x0: float, y0: float, depth: float,
                      moment: tuple[float, float, float], geom: SensorGeometry) -> np.ndarray:
    """Loop twin of `forward`, one sample and one sensor at a time, for tests."""
    out = np.empty(len(x))
    src = (x0, y0, -depth)
    h, s, f = geom.sensor_height_m, geom.sensor_separation_m, geom.field_unit
    for i in range(len(x)):
        lo = reference_field((float(x[i]), float(y[i]), h), src, moment)
        if geom.kind == "total":
            out[i] = lo[0] * f[0] + lo[1] * f[1] + lo[2] * f[2]
            continue
        hi = reference_field((float(x[i]), float(y[i]), h + s), src, moment)
        if geom.kind == "gradient":
            out[i] = lo[2] - hi[2]
        else:  # tf_gradient
            out[i] = (lo[0] - hi[0]) * f[0] + (lo[1] - hi[1]) * f[1] + (lo[2] - hi[2]) * f[2]
    return out
