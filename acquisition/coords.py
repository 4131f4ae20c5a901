"""Where a survey lies on the Earth: its CRS, a local metric frame, and WGS84.

Processing runs in a local frame: metres, x along the grid's east axis, y along
its north axis, origin near the survey, so coordinates stay small and the
dipole fits well conditioned. A `SurveyFrame` says how that frame sits in a
projected coordinate reference system (CRS): the CRS, the CRS coordinates of
the local origin, and the grid's rotation. Results go back out in the CRS
(easting, northing) and in WGS84 (latitude, longitude).

Rotation convention: ``rotation_deg`` is the azimuth of the local grid's y axis,
clockwise from the CRS's north, as a compass reads a taped baseline:

    E = E0 + x cos(a) + y sin(a)
    N = N0 - x sin(a) + y cos(a)

A taped grid that nobody placed has no CRS: it stays in local metres and
`SurveyFrame.georeferenced` is False. Geographic input (lat/lon) is projected to
the CRS given, or else to the UTM zone of the survey (EPSG:32648 in Quang Tri).

pyproj is imported only when a CRS is used. It ships the PROJ database inside
its wheel, so nothing is fetched at run time (network access in PROJ is off by
default and is never turned on here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from acquisition.validate import finite_float

#: The CRS of results that leave the project for a GIS (GeoJSON is WGS84 by RFC 7946).
WGS84 = "EPSG:4326"

#: Metadata keys that place a survey (docs/formats.md).
CRS_KEY = "crs"
ORIGIN_E_KEY = "grid_origin_e"
ORIGIN_N_KEY = "grid_origin_n"
ROTATION_KEY = "grid_rotation_deg"


class CoordinateError(ValueError):
    """A CRS, origin or rotation that cannot be used, or positions outside a CRS's domain."""


@lru_cache(maxsize=32)
def _crs(spec: str) -> Any:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        crs = CRS.from_user_input(spec)
    except CRSError as exc:
        raise CoordinateError(f"unknown CRS {spec!r} (expected e.g. 'EPSG:32648'): "
                              f"{exc}") from None
    return crs


def check_projected(spec: str) -> str:
    """``spec`` if it names a projected CRS in metres, else a `CoordinateError`."""
    crs = _crs(spec)
    if not crs.is_projected:
        raise CoordinateError(
            f"CRS {spec!r} is not projected ({crs.name}): processing needs metres; "
            "give positions as lat/lon columns, and a projected CRS such as a UTM or "
            "VN-2000 zone with --crs")
    unit = crs.axis_info[0].unit_name if crs.axis_info else "metre"
    if unit not in ("metre", "meter", "m"):
        raise CoordinateError(f"CRS {spec!r} has axes in {unit}, expected metres")
    return spec


@lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Any:
    from pyproj import Transformer

    # always_xy: (lon, lat) and (easting, northing) whatever the CRS's axis order.
    return Transformer.from_crs(_crs(src), _crs(dst), always_xy=True)


def utm_crs_for(lat: float, lon: float) -> str:
    """The WGS84 UTM zone CRS holding (lat, lon): EPSG:326zz north, EPSG:327zz south."""
    if not (math.isfinite(lat) and math.isfinite(lon) and -80 <= lat <= 84
            and -180 <= lon <= 180):
        raise CoordinateError(f"no UTM zone for lat {lat!r}, lon {lon!r} "
                              "(UTM covers 80 S to 84 N)")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


def _finite(name: str, v: Any) -> float:
    return finite_float(name, v, CoordinateError)


@dataclass(frozen=True, slots=True)
class SurveyFrame:
    """A local metric frame placed in a projected CRS (or not placed at all)."""

    crs: str | None = None
    origin_e: float = 0.0
    origin_n: float = 0.0
    rotation_deg: float = 0.0

    def __post_init__(self) -> None:
        for name in ("origin_e", "origin_n", "rotation_deg"):
            _finite(name, getattr(self, name))
        if self.crs is not None:
            check_projected(self.crs)
        elif (self.origin_e, self.origin_n, self.rotation_deg) != (0.0, 0.0, 0.0):
            raise CoordinateError("a grid origin or rotation needs a CRS to place it "
                                  "(metadata 'crs' or --crs, e.g. EPSG:32648)")

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None

    # -- local <-> CRS -----------------------------------------------------------
    def _rot(self) -> tuple[float, float]:
        a = math.radians(self.rotation_deg)
        return math.cos(a), math.sin(a)

    def local_to_crs(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Local metres -> (easting, northing) in the frame's CRS."""
        c, s = self._rot()
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        return self.origin_e + x * c + y * s, self.origin_n - x * s + y * c

    def crs_to_local(self, e: Any, n: Any) -> tuple[np.ndarray, np.ndarray]:
        """(easting, northing) in the frame's CRS -> local metres."""
        c, s = self._rot()
        de = np.asarray(e, dtype=np.float64) - self.origin_e
        dn = np.asarray(n, dtype=np.float64) - self.origin_n
        return de * c - dn * s, de * s + dn * c

    # -- local <-> WGS84 ---------------------------------------------------------
    def _need_crs(self, what: str) -> str:
        if self.crs is None:
            raise CoordinateError(f"{what} needs a georeferenced survey: give its CRS "
                                  "(--crs / metadata 'crs') and, for a taped grid, "
                                  "--grid-origin E,N and --grid-rotation DEG")
        return self.crs

    def to_wgs84(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """Local metres -> (lat, lon) in degrees, WGS84."""
        crs = self._need_crs("latitude/longitude")
        e, n = self.local_to_crs(x, y)
        lon, lat = _transformer(crs, WGS84).transform(e, n)
        return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)

    def from_wgs84(self, lat: Any, lon: Any) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) in degrees, WGS84 -> local metres."""
        crs = self._need_crs("positions in lat/lon")
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        bad = ~((np.abs(lat) <= 90) & (np.abs(lon) <= 180))
        if bad.any():
            i = int(np.argmax(bad))
            raise CoordinateError(f"latitude/longitude out of range: {lat[i]!r}, {lon[i]!r}")
        e, n = _transformer(WGS84, crs).transform(lon, lat)
        return self.crs_to_local(e, n)

    def grid_convergence_deg(self, x: float = 0.0, y: float = 0.0) -> float:
        """Angle from the local grid's y axis to true north at (x, y), degrees clockwise.

        The Earth field's declination is measured from true north; the DSP wants it
        from the grid's y axis. That differs by the grid's rotation and by the CRS's
        meridian convergence (up to ~1-2 degrees at a UTM zone edge).
        """
        if self.crs is None:
            return 0.0
        lat, lon = self.to_wgs84(x, y)
        lat2, lon2 = float(lat) + 1e-4, float(lon)
        e1, n1 = self.local_to_crs(x, y)
        e2, n2 = _transformer(WGS84, self.crs).transform(lon2, lat2)
        # azimuth of true north in CRS coordinates, clockwise from CRS north
        north_in_crs = math.degrees(math.atan2(float(e2) - float(e1), float(n2) - float(n1)))
        return north_in_crs - self.rotation_deg

    # -- metadata ----------------------------------------------------------------
    def to_metadata(self) -> dict[str, str]:
        if self.crs is None:
            return {}
        return {CRS_KEY: self.crs, ORIGIN_E_KEY: repr(self.origin_e),
                ORIGIN_N_KEY: repr(self.origin_n), ROTATION_KEY: repr(self.rotation_deg)}

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> SurveyFrame:
        """The frame the metadata keys ``crs``, ``grid_origin_e/n``, ``grid_rotation_deg`` give.

        Raises `CoordinateError` naming the key for a value that cannot be used.
        """
        def get(key: str) -> Any:
            v = metadata.get(key)
            return None if v is None or (isinstance(v, str) and not v.strip()) else v

        crs = get(CRS_KEY)
        e, n, rot = get(ORIGIN_E_KEY), get(ORIGIN_N_KEY), get(ROTATION_KEY)
        if (e is None) != (n is None):
            raise CoordinateError(f"give both {ORIGIN_E_KEY} and {ORIGIN_N_KEY}, or neither")
        return cls(crs=str(crs).strip() if crs is not None else None,
                   origin_e=_finite(ORIGIN_E_KEY, e) if e is not None else 0.0,
                   origin_n=_finite(ORIGIN_N_KEY, n) if n is not None else 0.0,
                   rotation_deg=_finite(ROTATION_KEY, rot) if rot is not None else 0.0)


def frame_around(crs: str, e: np.ndarray, n: np.ndarray) -> SurveyFrame:
    """A frame in ``crs`` whose origin is a whole 10 m near the south-west of (e, n).

    Used for data already in CRS coordinates, so local numbers stay small while
    easting/northing come back exactly (the origin is a round number).
    """
    e = np.asarray(e, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    ok = np.isfinite(e) & np.isfinite(n)
    if not ok.any():
        return SurveyFrame(crs=crs)
    return SurveyFrame(crs=crs, origin_e=float(np.floor(e[ok].min() / 10.0) * 10.0),
                       origin_n=float(np.floor(n[ok].min() / 10.0) * 10.0))


def parse_origin(text: str) -> tuple[float, float]:
    """``"E,N"`` (as given to --grid-origin) -> (E, N)."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2:
        raise CoordinateError(f"grid origin must be 'E,N' in CRS metres, got {text!r}")
    return _finite("grid origin easting", parts[0]), _finite("grid origin northing", parts[1])
