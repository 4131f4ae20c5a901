"""Write (and read back) target lists: CSV per docs/formats.md and GeoJSON.

CSV columns: ``id, x, y, depth, moment, quality, mx, my, mz, sigma_x, sigma_y,
sigma_depth, amplitude_nT, size_class, lanes, flags, method``; list-valued
fields (lanes, flags) are joined with ``;``. Depth is metres below ground,
positive down; moment in A m².

GeoJSON (RFC 7946) and KML are WGS84, so only a placed survey has them: one
Point per target at its longitude, latitude and -depth (below ground, so GIS
tools place it under the surface), the CSV fields as properties. Columns and
flags: docs/formats.md, "Target lists".
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from acquisition.coords import CoordinateError, SurveyFrame
from acquisition.events import SIZE_CLASS_CAVEAT, Target
from acquisition.outfile import write_output

CSV_COLUMNS = ("id", "x", "y", "depth", "moment", "quality", "mx", "my", "mz", "sigma_x",
               "sigma_y", "sigma_depth", "amplitude_nT", "size_class", "lanes", "flags",
               "method")
#: Columns added when the survey is georeferenced.
PLACE_COLUMNS = ("easting", "northing", "lat", "lon")


def _f(v: float, digits: int = 3) -> str:
    return "" if not math.isfinite(v) else f"{v:.{digits}f}"


def _g(v: float) -> str:
    return "" if not math.isfinite(v) else f"{v:.5g}"


def target_row(t: Target) -> dict[str, str]:
    mx, my, mz = t.moment
    return {
        "id": str(t.target_id), "x": _f(t.x), "y": _f(t.y), "depth": _f(t.depth),
        "moment": _g(t.moment_abs), "quality": _f(t.quality, 3),
        "mx": _g(mx), "my": _g(my), "mz": _g(mz),
        "sigma_x": _f(t.sigma_x), "sigma_y": _f(t.sigma_y), "sigma_depth": _f(t.sigma_depth),
        "amplitude_nT": _f(t.amplitude_nT, 2), "size_class": t.size_class,
        "lanes": ";".join(str(v) for v in t.lanes), "flags": ";".join(t.flags),
        "method": t.method,
    }


def place_rows(targets: list[Target], frame: SurveyFrame | None) -> list[dict[str, str]] | None:
    """``easting, northing, lat, lon`` of each target as text; None for an unplaced survey."""
    if frame is None or not frame.georeferenced:
        return None
    if not targets:
        return []
    x = [t.x for t in targets]
    y = [t.y for t in targets]
    e, n = frame.local_to_crs(x, y)
    lat, lon = frame.to_wgs84(x, y)
    # mm in the CRS, ~1 mm in degrees: the fits are good to a few cm
    return [{"easting": _f(float(a)), "northing": _f(float(b)), "lat": _f(float(c), 8),
             "lon": _f(float(d), 8)} for a, b, c, d in zip(e, n, lat, lon, strict=True)]


def format_targets_csv(targets: Iterable[Target], comments: dict[str, Any] | None = None,
                       frame: SurveyFrame | None = None, *, notes: Iterable[str] = (),
                       extra: dict[str, Callable[[Target], str]] | None = None) -> str:
    """The targets file (docs/formats.md): header notes, ``# key: value`` comments, rows.

    `extra` adds columns after the standard ones (name -> value of a target),
    as the borehole target list does; placed surveys then get the place columns.
    """
    targets = list(targets)
    places = place_rows(targets, frame)
    extra = extra or {}
    buf = io.StringIO()
    buf.write("# uxo-targets v1\n")
    buf.write(f"# note: {SIZE_CLASS_CAVEAT}\n")
    for n in notes:
        buf.write(f"# note: {n}\n")
    for k, v in (comments or {}).items():
        # a line break in a value (\n, \r, ...) would end the comment and start
        # a broken row
        buf.write(f"# {' '.join(str(k).splitlines())}: {' '.join(str(v).splitlines())}\n")
    cols = (*CSV_COLUMNS, *extra)
    if places is not None:
        cols = (*cols, *PLACE_COLUMNS)
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for i, t in enumerate(targets):
        row = target_row(t)
        row.update({name: value(t) for name, value in extra.items()})
        if places is not None:
            row.update(places[i])
        w.writerow(row)
    return buf.getvalue()


def write_targets_csv(path: str | Path, targets: Iterable[Target],
                      comments: dict[str, Any] | None = None,
                      frame: SurveyFrame | None = None) -> Path:
    path = Path(path)
    write_output(path, format_targets_csv(targets, comments, frame))
    return path


def read_targets_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a target CSV as dicts (comment lines skipped)."""
    with Path(path).open(encoding="utf-8") as f:
        rows = [ln for ln in f if not ln.startswith("#")]
    return list(csv.DictReader(rows))


def _need_placed(frame: SurveyFrame | None, what: str) -> SurveyFrame:
    if frame is None or not frame.georeferenced:
        raise CoordinateError(
            f"{what} is in WGS84 latitude/longitude, and this survey is a local grid nobody "
            "placed: give its CRS (--crs EPSG:NNNN, e.g. EPSG:32648) and, for a taped grid, "
            "--grid-origin E,N and --grid-rotation DEG (or the metadata keys crs, "
            "grid_origin_e, grid_origin_n, grid_rotation_deg)")
    return frame


def targets_geojson(targets: Iterable[Target], frame: SurveyFrame | None,
                    properties: dict[str, Any] | None = None) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (RFC 7946: WGS84) of the targets of a placed survey."""
    frame = _need_placed(frame, "GeoJSON (RFC 7946)")
    targets = list(targets)
    places = place_rows(targets, frame) or []
    feats = []
    for t, place in zip(targets, places, strict=True):
        row = target_row(t)
        props: dict[str, Any] = {k: row[k] for k in ("size_class", "method")}
        for k in ("x", "y", "depth", "moment", "quality", "mx", "my", "mz", "sigma_x",
                  "sigma_y", "sigma_depth", "amplitude_nT"):
            props[k] = float(row[k]) if row[k] else None
        props["easting"] = float(place["easting"])
        props["northing"] = float(place["northing"])
        props["id"] = t.target_id
        props["lanes"] = list(t.lanes)
        props["flags"] = list(t.flags)
        feats.append({
            "type": "Feature",
            "id": t.target_id,
            "geometry": {"type": "Point",
                         "coordinates": [float(place["lon"]), float(place["lat"]),
                                         round(-t.depth, 3)]},
            "properties": props,
        })
    fc: dict[str, Any] = {
        "type": "FeatureCollection",
        "size_class_note": SIZE_CLASS_CAVEAT,
        "coordinates_note": ("WGS84 longitude, latitude (RFC 7946); z = -depth in metres "
                             f"(below ground); x, y: local grid; easting, northing: "
                             f"{frame.crs}"),
        "features": feats,
    }
    if properties:
        fc["properties"] = properties
    return fc


def write_targets_geojson(path: str | Path, targets: Iterable[Target],
                          frame: SurveyFrame | None,
                          properties: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    write_output(path, json.dumps(targets_geojson(targets, frame, properties), indent=1))
    return path


def targets_kml(targets: Iterable[Target], frame: SurveyFrame | None,
                name: str = "uxo targets") -> str:
    """A KML document with one Placemark per target (WGS84; a placed survey only)."""
    from xml.sax.saxutils import escape

    frame = _need_placed(frame, "KML")
    targets = list(targets)
    places = place_rows(targets, frame) or []
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<kml xmlns="http://www.opengis.net/kml/2.2">', "<Document>",
           f"<name>{escape(name)}</name>",
           f"<description>{escape(SIZE_CLASS_CAVEAT)}</description>"]
    for t, place in zip(targets, places, strict=True):
        sd = f" ± {t.sigma_depth:.2f}" if math.isfinite(t.sigma_depth) else ""
        desc = (f"depth {t.depth:.2f}{sd} m below ground; class {t.size_class}; "
                f"moment {t.moment_abs:.3g} A m2; quality {t.quality:.2f}")
        if t.flags:
            desc += f"; flags {', '.join(t.flags)}"
        out += ["<Placemark>", f"<name>{t.target_id}</name>",
                f"<description>{escape(desc)}</description>",
                f"<Point><coordinates>{place['lon']},{place['lat']},0</coordinates></Point>",
                "</Placemark>"]
    out += ["</Document>", "</kml>", ""]
    return "\n".join(out)


def write_targets_kml(path: str | Path, targets: Iterable[Target],
                      frame: SurveyFrame | None, name: str = "uxo targets") -> Path:
    path = Path(path)
    write_output(path, targets_kml(targets, frame, name))
    return path
