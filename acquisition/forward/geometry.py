"""How a lane instrument samples the field: `SensorGeometry`, typed and validated.

Sensor kinds (docs/developing.md, "Conventions"), all in nT:

* ``gradient``: vertical-component gradiometer (fluxgate), Bz(lower) - Bz(upper);
* ``total``: one total-field sensor, the anomaly along the Earth field, dT = B.F_hat;
* ``tf_gradient``: two total-field sensors one above the other (caesium or
  Overhauser gradiometer), F(lower) - F(upper), each F = B.F_hat.

The lower (or only) sensor is ``sensor_height_m`` above ground, the upper one
``sensor_separation_m`` above it. On the wire and in files the geometry stays
a plain dict (`StreamDescriptor.geometry`); `from_geometry` / `to_dict`
convert at that edge, and the defaults below are the only ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from acquisition.geomag import EarthField
from acquisition.validate import finite_float

#: Reading kinds a lane survey may declare.
KINDS = ("gradient", "total", "tf_gradient")
#: Kinds that read the difference between a lower and an upper sensor.
GRADIENT_KINDS = ("gradient", "tf_gradient")
#: Height of the lower sensor above ground when a survey does not say (m).
DEFAULT_SENSOR_HEIGHT_M = 0.3
#: Distance from the lower to the upper sensor when a survey does not say (m).
DEFAULT_SEPARATION_M = 0.65


@dataclass(frozen=True, slots=True)
class SensorGeometry:
    """Reading kind, sensor height and separation (m), unit Earth-field direction (ENU)."""

    kind: str = "gradient"
    sensor_height_m: float = DEFAULT_SENSOR_HEIGHT_M
    sensor_separation_m: float = DEFAULT_SEPARATION_M
    field_unit: tuple[float, float, float] = (0.0, 1.0, 0.0)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"sensor kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        h = self.sensor_height_m
        if not (isinstance(h, (int, float)) and math.isfinite(h) and h >= 0):
            raise ValueError(f"sensor_height_m must be a finite number >= 0, got {h!r}")
        s = self.sensor_separation_m
        if self.kind in GRADIENT_KINDS and not (
                isinstance(s, (int, float)) and math.isfinite(s) and s > 0):
            raise ValueError(f"sensor_separation_m must be a finite number > 0 for kind "
                             f"{self.kind!r}, got {s!r}")
        f = self.field_unit
        if len(f) != 3 or not all(math.isfinite(c) for c in f) or \
                abs(math.fsum(c * c for c in f) - 1.0) > 1e-6:
            raise ValueError(f"field_unit must be a finite unit vector (E, N, U), got {f!r}")

    @property
    def is_gradient(self) -> bool:
        """Whether the reading is a lower-minus-upper difference."""
        return self.kind in GRADIENT_KINDS

    @classmethod
    def from_geometry(cls, geometry: dict[str, Any] | None, field: EarthField) -> SensorGeometry:
        """From a `StreamDescriptor.geometry` dict (missing keys take the defaults).

        Raises ValueError naming the key when a value is not a number.
        """
        g = dict(geometry or {})
        kind = str(g.get("kind") or "gradient").strip() or "gradient"
        ux, uy, uz = (float(v) for v in field.unit_vector())
        return cls(kind=kind,
                   sensor_height_m=_number(g, "sensor_height_m", DEFAULT_SENSOR_HEIGHT_M),
                   sensor_separation_m=_number(g, "sensor_separation_m", DEFAULT_SEPARATION_M),
                   field_unit=(ux, uy, uz))

    def to_dict(self) -> dict[str, Any]:
        """The `StreamDescriptor.geometry` keys this geometry stands for."""
        d: dict[str, Any] = {"kind": self.kind, "sensor_height_m": self.sensor_height_m}
        if self.is_gradient:
            d["sensor_separation_m"] = self.sensor_separation_m
        return d


def _number(g: dict[str, Any], key: str, default: float) -> float:
    v = g.get(key)
    if v is None:
        return default
    return finite_float(f"geometry {key}", v, ValueError)
