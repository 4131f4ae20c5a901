"""Point-dipole forward model for lane sensors (gradiometer or total field).

Conventions (docs/developing.md): ENU, z up, ground at z = 0, a buried object
at z = -depth. B = 100 nT · (3 (m·r̂) r̂ − m) / |r|³ with m in A m² and r in m.
A gradiometer reads Bz(lower sensor at height h) − Bz(upper at h + s) with Bz
the up component; a total-field sensor reads ΔT = B·F̂.

The reading is linear in the moment, so the model is written as a design
matrix ``G`` (n, 3) with ``reading = G @ m``. `design_matrix` is the vectorised
version the fitter uses; `reference_reading` is a plain per-sample loop kept
beside it so tests can check one against the other (ObsPy style).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from acquisition.geomag import EarthField

MU0_4PI_NT = 100.0  # mu0/(4 pi) in nT·m/A: B[nT] = 100 (3(m·r̂)r̂ − m)/r³ for m in A m²


@dataclass(frozen=True, slots=True)
class SensorGeometry:
    """How the instrument samples the field: reading kind, heights, field direction."""

    kind: str = "gradient"
    sensor_height_m: float = 0.3
    sensor_separation_m: float = 0.65
    field_unit: tuple[float, float, float] = (0.0, 1.0, 0.0)

    def __post_init__(self) -> None:
        if self.kind not in ("gradient", "total"):
            raise ValueError(f"kind must be 'gradient' or 'total', got {self.kind!r}")
        if not (self.sensor_height_m >= 0 and math.isfinite(self.sensor_height_m)):
            raise ValueError(f"bad sensor height {self.sensor_height_m!r}")
        if self.kind == "gradient" and not self.sensor_separation_m > 0:
            raise ValueError(f"bad sensor separation {self.sensor_separation_m!r}")

    @classmethod
    def from_geometry(cls, geometry: dict[str, Any] | None, field: EarthField) -> SensorGeometry:
        """Build from a `StreamDescriptor.geometry` dict (missing keys -> defaults)."""
        g = dict(geometry or {})
        return cls(
            kind=str(g.get("kind", "gradient")),
            sensor_height_m=float(g.get("sensor_height_m", 0.3)),
            sensor_separation_m=float(g.get("sensor_separation_m", 0.65)),
            field_unit=tuple(float(v) for v in field.unit_vector()),  # type: ignore[arg-type]
        )


def _unit_field_cols(dx: np.ndarray, dy: np.ndarray, dz: np.ndarray,
                     comp: np.ndarray) -> np.ndarray:
    """Field component along ``comp`` (3,) per unit moment e_x, e_y, e_z -> (n, 3)."""
    r2 = dx * dx + dy * dy + dz * dz
    inv_r = 1.0 / np.sqrt(r2)
    inv_r3 = inv_r * inv_r * inv_r
    inv_r5 = inv_r3 * inv_r * inv_r
    proj = dx * comp[0] + dy * comp[1] + dz * comp[2]  # r·ĉ
    t = 3.0 * proj * inv_r5
    out = np.empty((dx.shape[0], 3))
    out[:, 0] = MU0_4PI_NT * (t * dx - comp[0] * inv_r3)
    out[:, 1] = MU0_4PI_NT * (t * dy - comp[1] * inv_r3)
    out[:, 2] = MU0_4PI_NT * (t * dz - comp[2] * inv_r3)
    return out


_UP = np.array([0.0, 0.0, 1.0])


def design_matrix(x: np.ndarray, y: np.ndarray, x0: float, y0: float, depth: float,
                  geom: SensorGeometry) -> np.ndarray:
    """Readings per unit moment component: ``reading = G @ (mx, my, mz)``; G is (n, 3)."""
    dx = np.asarray(x, dtype=np.float64) - x0
    dy = np.asarray(y, dtype=np.float64) - y0
    h = geom.sensor_height_m
    if geom.kind == "gradient":
        lo = _unit_field_cols(dx, dy, np.full_like(dx, h + depth), _UP)
        hi = _unit_field_cols(dx, dy, np.full_like(dx, h + geom.sensor_separation_m + depth), _UP)
        return lo - hi
    return _unit_field_cols(dx, dy, np.full_like(dx, h + depth), np.asarray(geom.field_unit))


def design_batch(x: np.ndarray, y: np.ndarray, x0: np.ndarray, y0: np.ndarray,
                 depth: np.ndarray, geom: SensorGeometry) -> np.ndarray:
    """`design_matrix` for many candidate positions at once: shape (c, n, 3)."""
    dx = np.asarray(x, dtype=np.float64)[None, :] - np.asarray(x0, dtype=np.float64)[:, None]
    dy = np.asarray(y, dtype=np.float64)[None, :] - np.asarray(y0, dtype=np.float64)[:, None]
    d = np.asarray(depth, dtype=np.float64)[:, None]
    h = geom.sensor_height_m

    def cols(dz: np.ndarray, comp: np.ndarray) -> np.ndarray:
        r2 = dx * dx + dy * dy + dz * dz
        inv_r3 = r2 ** -1.5
        t = 3.0 * (dx * comp[0] + dy * comp[1] + dz * comp[2]) * inv_r3 / r2
        return MU0_4PI_NT * np.stack((t * dx - comp[0] * inv_r3, t * dy - comp[1] * inv_r3,
                                      t * dz - comp[2] * inv_r3), axis=-1)

    if geom.kind == "gradient":
        return cols(h + d + 0 * dx, _UP) - cols(h + geom.sensor_separation_m + d + 0 * dx, _UP)
    return cols(h + d + 0 * dx, np.asarray(geom.field_unit))


def forward(x: np.ndarray, y: np.ndarray, x0: float, y0: float, depth: float,
            moment: np.ndarray | tuple[float, float, float], geom: SensorGeometry) -> np.ndarray:
    """Sensor readings (nT) of one dipole at (x0, y0, -depth) with moment (A m²)."""
    return design_matrix(x, y, x0, y0, depth, geom) @ np.asarray(moment, dtype=np.float64)


def induced_moment(magnitude_Am2: float, field: EarthField) -> np.ndarray:
    """A purely induced moment: along the Earth field, of the given magnitude."""
    return magnitude_Am2 * field.unit_vector()


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


def reference_reading(x: np.ndarray, y: np.ndarray, x0: float, y0: float, depth: float,
                      moment: tuple[float, float, float], geom: SensorGeometry) -> np.ndarray:
    """Loop twin of `forward`, one sample at a time, for tests."""
    out = np.empty(len(x))
    src = (x0, y0, -depth)
    for i in range(len(x)):
        h = geom.sensor_height_m
        if geom.kind == "gradient":
            lo = reference_field((float(x[i]), float(y[i]), h), src, moment)
            hi = reference_field((float(x[i]), float(y[i]), h + geom.sensor_separation_m),
                                 src, moment)
            out[i] = lo[2] - hi[2]
        else:
            b = reference_field((float(x[i]), float(y[i]), h), src, moment)
            f = geom.field_unit
            out[i] = b[0] * f[0] + b[1] * f[1] + b[2] * f[2]
    return out
