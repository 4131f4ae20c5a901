"""The inducing Earth field: given, or computed from position and date by IGRF.

Coordinates throughout the project are local East-North-Up (x east, y north,
z up). Inclination is positive when the field points down (northern
hemisphere); declination is east of true north.

IGRF comes from `ppigrf` (pure Python, coefficients ship with the package; no
download at run time), imported only when a position is given.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class EarthField:
    total_nT: float
    inclination_deg: float
    declination_deg: float
    source: str = "given"

    def __post_init__(self) -> None:
        if not (self.total_nT > 0 and math.isfinite(self.total_nT)):
            raise ValueError(f"field total must be positive, got {self.total_nT}")
        if not -90.0 <= self.inclination_deg <= 90.0:
            raise ValueError(f"inclination must be within +-90 deg, got {self.inclination_deg}")
        if not -180.0 <= self.declination_deg <= 360.0:
            raise ValueError(f"declination out of range: {self.declination_deg}")

    def unit_vector(self) -> np.ndarray:
        """Direction of the field in ENU (z up, so a downward field has uz < 0)."""
        inc = math.radians(self.inclination_deg)
        dec = math.radians(self.declination_deg)
        return np.array(
            [math.cos(inc) * math.sin(dec), math.cos(inc) * math.cos(dec), -math.sin(inc)]
        )

    def vector_nT(self) -> np.ndarray:
        return self.total_nT * self.unit_vector()

    def to_dict(self) -> dict[str, float | str]:
        return {
            "field_total_nT": self.total_nT,
            "field_inclination_deg": self.inclination_deg,
            "field_declination_deg": self.declination_deg,
            "field_source": self.source,
        }


#: Quang Tri, IGRF-14 for 2026 (docs/field.md): the default when nothing is given.
QUANG_TRI = EarthField(43600.0, 23.2, -1.4, source="default: Quang Tri IGRF-14 2026")
QUANG_TRI_LAT, QUANG_TRI_LON = 16.75, 107.0


#: The years of the IGRF-14 coefficients ppigrf ships (tests check its file).
IGRF_FIRST, IGRF_LAST = _dt.date(1900, 1, 1), _dt.date(2030, 1, 1)


def from_igrf(lat_deg: float, lon_deg: float, date: _dt.date | str,
              height_km: float = 0.0) -> EarthField:
    """Main field at a place and date from IGRF (via ppigrf)."""
    import ppigrf  # deferred: pulls in pandas, only needed when a site is given

    if isinstance(date, str):
        try:  # a date, or the date of an ISO time stamp
            date = _dt.datetime.fromisoformat(date.strip()).date()
        except ValueError:
            raise ValueError(f"date {date!r} is not YYYY-MM-DD") from None
    elif isinstance(date, _dt.datetime):  # a datetime does not compare with a date
        date = date.date()
    if not -90 <= lat_deg <= 90 or not -180 <= lon_deg <= 360:
        raise ValueError(f"bad latitude/longitude {lat_deg}, {lon_deg}")
    # ppigrf only prints a warning outside its model's years and then returns
    # an extrapolation (or NaN before 1900): refuse instead, with the way out
    if not IGRF_FIRST <= date <= IGRF_LAST:
        raise ValueError(f"IGRF here covers {IGRF_FIRST} to {IGRF_LAST}, "
                         f"not {date.isoformat()}: give the field itself (--field-total, "
                         "--field-inclination, --field-declination)")
    when = _dt.datetime(date.year, date.month, date.day)
    be, bn, bu = (float(np.ravel(v)[0]) for v in ppigrf.igrf(lon_deg, lat_deg, height_km, when))
    h = math.hypot(be, bn)
    return EarthField(
        total_nT=math.sqrt(h * h + bu * bu),
        inclination_deg=math.degrees(math.atan2(-bu, h)),
        declination_deg=math.degrees(math.atan2(be, bn)),
        source=f"IGRF lat={lat_deg} lon={lon_deg} date={date.isoformat()}",
    )


def resolve(
    total_nT: float | None = None,
    inclination_deg: float | None = None,
    declination_deg: float | None = None,
    lat: float | None = None,
    lon: float | None = None,
    date: _dt.date | str | None = None,
) -> EarthField:
    """Pick the field: explicit values win, then IGRF from lat/lon/date, else Quang Tri.

    Explicit values may be partial: missing components come from the IGRF (or
    default) field.
    """
    base = QUANG_TRI
    if lat is not None and lon is not None:
        base = from_igrf(lat, lon, date or _dt.date.today())
    if total_nT is None and inclination_deg is None and declination_deg is None:
        return base
    return EarthField(
        total_nT=base.total_nT if total_nT is None else float(total_nT),
        inclination_deg=base.inclination_deg if inclination_deg is None else float(
            inclination_deg),
        declination_deg=base.declination_deg if declination_deg is None else float(
            declination_deg),
        source="given",
    )
