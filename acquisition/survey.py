"""`read_survey`: any supported survey file in, one `Survey` out.

The facade every user goes through, Python and CLI alike (``uxo process``,
``uxo convert``, ``uxo map``...):

    >>> from acquisition import read_survey
    >>> s = read_survey("lane-survey.csv")          # format sniffed from content
    >>> s.x, s.y, s.value, s.frame.crs              # local metres, nT, CRS

Steps, the same for every format:
1. pick the reader (``format=`` or sniffed, `acquisition.readers`);
2. merge metadata: the file's, then ``metadata=`` overrides (command-line
   options arrive here as metadata keys, so options override the file);
3. convert values to nT from ``value_unit`` (``nT``, ``nT/m``, ``pT``, ``T``);
4. place positions: lat/lon are projected to the CRS (default: the survey's
   UTM zone), CRS coordinates and taped grids get a `SurveyFrame`, and x, y
   become local metres in that frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.coords import (
    CRS_KEY,
    CoordinateError,
    SurveyFrame,
    check_projected,
    frame_around,
    utm_crs_for,
)
from acquisition.readers import BadRow, RawSurvey, get_reader, sniff

#: Bytes of the file's head given to the readers' sniffers.
SNIFF_BYTES = 64 * 1024

#: Metadata key of the unit of the survey's values (docs/formats.md).
UNIT_KEY = "value_unit"
DEFAULT_SEPARATION_M = 0.65


class SurveyReadError(ValueError):
    """A survey file that cannot be used; the message names the file and, when known, the line."""

    def __init__(self, path: str | Path, line: int | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


@dataclass(slots=True)
class Survey:
    """A lane survey from any source: readings in nT at local positions, placed by ``frame``.

    ``x``, ``y`` are metres in the local frame (x east along the grid, y north);
    `easting_northing` and `lat_lon` give them back in the CRS and in WGS84.
    """

    x: np.ndarray
    y: np.ndarray
    value: np.ndarray
    t: np.ndarray | None
    lane: np.ndarray | None
    metadata: dict[str, str]
    frame: SurveyFrame
    source: str = ""
    format: str = ""
    #: The unit the source gave its values in (they are converted to nT).
    value_unit: str = "nT"
    #: False when the source did not say its unit and nT was assumed.
    unit_stated: bool = False
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    bad_rows: list[BadRow] = field(default_factory=list)
    line_numbers: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    #: Sensor geometry stated by the source (recordings); {} for text files.
    geometry: dict[str, Any] = field(default_factory=dict)
    rows_seen: int = 0
    #: How the source gave positions: "local", "projected" or "geographic".
    positions: str = "local"
    #: What the reader assumed where the file does not say (see `RawSurvey.notes`).
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(self.x.size)

    def easting_northing(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions in the frame's CRS (local metres when the survey is not placed)."""
        return self.frame.local_to_crs(self.x, self.y)

    def lat_lon(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions in WGS84 degrees; `CoordinateError` when the survey is not placed."""
        return self.frame.to_wgs84(self.x, self.y)


# -- units ------------------------------------------------------------------------
#: Unit -> factor to nT. nT/m is handled apart: it needs the sensor separation.
_UNIT_FACTORS = {"nt": 1.0, "pt": 1e-3, "t": 1e9, "nt/m": math.nan}
UNITS = ("nT", "nT/m", "pT", "T")


def to_nT(value: np.ndarray, unit: str, *, separation_m: float = DEFAULT_SEPARATION_M,
          what: str = "values") -> np.ndarray:
    """Values in ``unit`` (one of `UNITS`) converted to nT.

    A gradient in nT/m is the difference of the two sensors over their
    separation, so the reading in nT is the gradient times the separation.
    Raises ValueError for an unknown unit, and for values that overflow once
    scaled (1e308 T is not a field).
    """
    key = unit.strip().lower().replace(" ", "")
    if key not in _UNIT_FACTORS:
        raise ValueError(f"unknown unit {unit!r} for {what} (expected one of "
                         f"{', '.join(UNITS)})")
    v = np.asarray(value, dtype=np.float64)
    if key == "nt/m":
        if not (math.isfinite(separation_m) and separation_m > 0):
            raise ValueError(f"converting nT/m needs a sensor separation > 0 m, "
                             f"got {separation_m!r}")
        factor = separation_m
    else:
        factor = _UNIT_FACTORS[key]
    if factor == 1.0:
        return v
    with np.errstate(over="ignore", invalid="ignore"):
        out = v * factor
    blown = np.isfinite(v) & ~np.isfinite(out)
    if blown.any():
        i = int(np.argmax(blown))
        raise ValueError(f"{what}: {v[i]!r} {unit} overflows once converted to nT")
    return out


# -- the facade -------------------------------------------------------------------
def _head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(SNIFF_BYTES)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise SurveyReadError(path, None, "no such file")
    if path.is_dir():
        raise SurveyReadError(path, None, "is a directory, expected a survey file")


def _float_key(md: dict[str, str], key: str, default: float, path: Path) -> float:
    v = md.get(key)
    if v is None or not str(v).strip():
        return default
    try:
        return float(v)
    except ValueError:
        raise SurveyReadError(path, None, f"metadata {key}: {v!r} is not a number") from None


def _place(raw: RawSurvey, md: dict[str, str], path: Path
           ) -> tuple[np.ndarray, np.ndarray, SurveyFrame]:
    """Local x, y and the frame, from the reader's positions and the metadata."""
    x = np.asarray(raw.x, dtype=np.float64)
    y = np.asarray(raw.y, dtype=np.float64)
    try:
        if raw.positions == "local":
            return x, y, SurveyFrame.from_metadata(md)
        crs = (md.get(CRS_KEY) or "").strip() or None
        if raw.positions == "projected":
            if crs is None:
                raise SurveyReadError(path, None, "positions are eastings/northings but no "
                                      "CRS is given: add '# crs: EPSG:NNNN' or --crs")
            frame = frame_around(check_projected(crs), x, y)
            lx, ly = frame.crs_to_local(x, y)
            return lx, ly, frame
        # geographic: x = longitude, y = latitude (degrees, WGS84)
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            raise SurveyReadError(path, None, "no position with both latitude and longitude")
        if crs is None:
            crs = utm_crs_for(float(np.median(y[ok])), float(np.median(x[ok])))
        probe = SurveyFrame(crs=check_projected(crs))
        e, n = probe.local_to_crs(*probe.from_wgs84(y, x))
        frame = frame_around(crs, e, n)
        lx, ly = frame.crs_to_local(e, n)
        return lx, ly, frame
    except CoordinateError as exc:
        raise SurveyReadError(path, None, str(exc)) from None


def read_survey(path: str | Path, *, format: str | None = None,
                columns: dict[str, str] | None = None,
                metadata: dict[str, Any] | None = None, stream: str | None = None,
                max_bad_share: float = 0.1) -> Survey:
    """Read a survey file of any supported format (see `acquisition.readers`).

    ``format`` forces a reader by name instead of sniffing; ``columns`` maps
    our column names to a generic file's; ``metadata`` overrides the file's
    metadata keys (docs/formats.md), as command-line options do; ``stream``
    picks a stream in a recording. Raises `SurveyReadError` naming the file.
    """
    path = Path(path)
    _check_path(path)
    try:
        head = _head(path)
    except OSError as exc:
        raise SurveyReadError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if format is not None:
        try:
            name = format
            cls = get_reader(format)
        except KeyError as exc:
            raise SurveyReadError(path, None, str(exc.args[0])) from None
    else:
        found = sniff(head, path)
        if found is None:
            from acquisition.readers import readers

            raise SurveyReadError(path, 1, "unknown survey format (expected one of: "
                                  + ", ".join(sorted(readers())) + "; name it with "
                                  "--from FORMAT, or map a CSV's columns with --columns)")
        name, cls = found, get_reader(found)
    raw = cls().read(path, columns=columns, max_bad_share=max_bad_share, stream=stream)
    md = dict(raw.metadata)
    for k, v in (metadata or {}).items():
        if v is not None:
            md[str(k)] = str(v)
    stated = md.get(UNIT_KEY, "").strip() or None
    unit = raw.value_unit or stated or "nT"
    if raw.value_unit and stated and stated.lower() != raw.value_unit.lower():
        raise SurveyReadError(path, None, f"metadata {UNIT_KEY}: {stated!r}, but the "
                              f"{name} format's values are in {raw.value_unit}")
    stated_sep = raw.geometry.get("sensor_separation_m", DEFAULT_SEPARATION_M)
    if isinstance(stated_sep, bool) or not isinstance(stated_sep, int | float):
        # a crafted descriptor is refused in one line, not a TypeError traceback
        raise SurveyReadError(path, None, f"descriptor sensor_separation_m: {stated_sep!r} "
                              "is not a number")
    separation = _float_key(md, "sensor_separation_m", float(stated_sep), path)
    try:
        value = to_nT(raw.value, unit, separation_m=separation)
    except ValueError as exc:
        raise SurveyReadError(path, None, f"{UNIT_KEY}: {exc}") from None
    x, y, frame = _place(raw, md, path)
    md.update(frame.to_metadata())
    return Survey(x=x, y=y, value=value, t=raw.t, lane=raw.lane, metadata=md, frame=frame,
                  source=str(path), format=name, value_unit=unit,
                  unit_stated=bool(raw.value_unit or stated), extra=dict(raw.extra),
                  bad_rows=list(raw.bad_rows), line_numbers=raw.line_numbers,
                  geometry=dict(raw.geometry), rows_seen=raw.rows_seen,
                  positions=raw.positions, notes=list(raw.notes))
