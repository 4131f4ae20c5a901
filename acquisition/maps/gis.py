"""GIS layers: one GeoPackage (targets, walked lanes, coverage) and a WGS84 target CSV.

QGIS and IMSMA Core take GeoPackage in; pyogrio (GDAL) writes it with the
survey's CRS on every layer. Layers:

- ``targets``: points with id, depth, sigma_depth, moment, size_class,
  quality, flags, easting, northing, lat, lon;
- ``lanes``: the walked track of each unbroken lane run, as a line;
- ``coverage``: each run's strip (one lane spacing wide) as a polygon.

Geometries are encoded here as WKB (little-endian, 2-D), so no geometry
library is needed beside pyogrio. The CSV beside it has the same targets
with WGS84 latitude/longitude for GNSS handhelds and spreadsheets.
"""

from __future__ import annotations

import csv
import math
import struct
from pathlib import Path

import numpy as np

from acquisition.coords import SurveyFrame
from acquisition.maps.coverage import Coverage
from acquisition.maps.inputs import InputError
from acquisition.maps.targets import MapTarget

WGS84_CSV_COLUMNS = ("id", "lat", "lon", "easting", "northing", "x", "y", "depth",
                     "sigma_depth", "moment", "size_class", "quality", "flags")


def wkb_point(x: float, y: float) -> bytes:
    return struct.pack("<BIdd", 1, 1, x, y)


def wkb_linestring(x: np.ndarray, y: np.ndarray) -> bytes:
    pts = np.column_stack([x, y]).astype("<f8")
    return struct.pack("<BII", 1, 2, len(pts)) + pts.tobytes()


def wkb_polygon(x: np.ndarray, y: np.ndarray) -> bytes:
    """One closed ring (the first point repeated at the end if it is not already)."""
    if x[0] != x[-1] or y[0] != y[-1]:
        x, y = np.r_[x, x[0]], np.r_[y, y[0]]
    pts = np.column_stack([x, y]).astype("<f8")
    return struct.pack("<BIII", 1, 3, 1, len(pts)) + pts.tobytes()


def _fmt(v: float, d: int) -> str:
    return f"{v:.{d}f}" if math.isfinite(v) else ""


def write_wgs84_csv(path: str | Path, targets: list[MapTarget]) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        f.write("# uxo-targets-wgs84 v1\n")
        w = csv.writer(f, lineterminator="\n")
        w.writerow(WGS84_CSV_COLUMNS)
        for t in targets:
            w.writerow([t.id, _fmt(t.lat, 8), _fmt(t.lon, 8), _fmt(t.easting, 3),
                        _fmt(t.northing, 3), _fmt(t.x, 3), _fmt(t.y, 3), _fmt(t.depth, 2),
                        _fmt(t.sigma_depth, 2), _fmt(t.moment, 4), t.size_class,
                        _fmt(t.quality, 3), ";".join(t.flags)])
    return path


def write_geopackage(path: str | Path, targets: list[MapTarget], cov: Coverage,
                     frame: SurveyFrame) -> Path:
    from pyogrio.raw import write

    if not frame.georeferenced:
        raise InputError(f"{path}: GIS layers need a CRS: give --crs (and --grid-origin/"
                         "--grid-rotation for a taped grid)")
    path = Path(path)
    if path.exists():
        path.unlink()  # layers are written fresh, never appended to an old survey's
    crs = frame.crs
    opts = {"driver": "GPKG", "crs": crs}
    geo = np.array([wkb_point(t.easting, t.northing) for t in targets], dtype=object)
    fields = ["id", "depth", "sigma_depth", "moment", "size_class", "quality", "flags",
              "easting", "northing", "lat", "lon"]
    data = [np.array([t.id for t in targets], dtype=object),
            *(np.array([getattr(t, k) for t in targets], dtype=np.float64)
              for k in ("depth", "sigma_depth", "moment")),
            np.array([t.size_class for t in targets], dtype=object),
            np.array([t.quality for t in targets], dtype=np.float64),
            np.array([";".join(t.flags) for t in targets], dtype=object),
            *(np.array([getattr(t, k) for t in targets], dtype=np.float64)
              for k in ("easting", "northing", "lat", "lon"))]
    write(path, geo, data, fields, layer="targets", geometry_type="Point", **opts)
    lines, strips = [], []
    half = cov.spacing / 2
    for r in cov.runs:
        step = max(1, r.x.size // 200)
        idx = np.r_[np.arange(0, r.x.size, step), r.x.size - 1]
        e, n = frame.local_to_crs(r.x[idx], r.y[idx])
        lines.append(wkb_linestring(e, n))
        px = np.array([r.x_ref - half, r.x_ref + half, r.x_ref + half, r.x_ref - half])
        py = np.array([r.y0, r.y0, r.y1, r.y1])
        e, n = frame.local_to_crs(px, py)
        strips.append(wkb_polygon(e, n))
    lane_ids = np.array([r.lane for r in cov.runs], dtype=np.int64)
    lengths = np.array([r.length_m for r in cov.runs], dtype=np.float64)
    write(path, np.array(lines, dtype=object), [lane_ids, lengths], ["lane", "length_m"],
          layer="lanes", geometry_type="LineString", append=True, **opts)
    write(path, np.array(strips, dtype=object), [lane_ids, lengths * cov.spacing],
          ["lane", "area_m2"], layer="coverage", geometry_type="Polygon", append=True, **opts)
    return path
