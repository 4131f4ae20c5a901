"""Target lists as the maps, report, QA and GIS layers use them, placed in the CRS and WGS84.

A target list is read from a CSV of ours (``uxo process`` output, docs/formats.md)
or any CSV with at least ``x, y, depth``, or ``easting, northing, depth``
(turned into the survey's local frame; read without a survey, as QA compares
two lists, the eastings/northings are the plane itself); rows that cannot
be used are errors naming the file and line. `place` adds easting/northing
and lat/lon from the survey's frame: the one function to swap when target
lists carry them themselves.
The dig list is sorted for safety: bomb-sized first, then deep first.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.coords import CoordinateError, SurveyFrame
from acquisition.events import SIZE_CLASSES, size_class
from acquisition.maps.inputs import InputError

#: Size classes from the largest (dug first) to the smallest.
SAFETY_ORDER = tuple(name for name, _, _ in reversed(SIZE_CLASSES))

#: How far beyond the walked samples a target may lie and still belong to the survey (m).
EXTENT_MARGIN_M = 2.0


@dataclass(slots=True)
class MapTarget:
    """One target: local position (m), depth (m, positive down), and where it lies on Earth."""

    id: str
    x: float
    y: float
    depth: float
    sigma_depth: float = math.nan
    moment: float = math.nan
    size_class: str = ""
    quality: float = math.nan
    flags: tuple[str, ...] = ()
    line: int = 0
    #: What x, y are: "local" grid metres, or "crs" eastings/northings (a list
    #: read without its survey that has only easting/northing columns).
    plane: str = "local"
    easting: float = math.nan
    northing: float = math.nan
    lat: float = math.nan
    lon: float = math.nan
    extra: dict[str, str] = field(default_factory=dict)


def _num(row: dict[str, str], key: str) -> float:
    v = (row.get(key) or "").strip()
    return float(v) if v else math.nan


def read_target_list(path: str | Path, frame: SurveyFrame | None = None) -> list[MapTarget]:
    """Targets of a CSV: x, y from ``x, y``, or from ``easting, northing`` in ``frame``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such target list")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read as UTF-8 text: {exc}") from None
    lines = text.splitlines()
    start = 0
    while start < len(lines) and lines[start].lstrip().startswith("#"):
        start += 1
    if start >= len(lines):
        raise InputError(f"{path}: no header row (expected a target list with columns "
                         "id, x, y, depth)")
    reader = csv.DictReader(lines[start:])
    cols = {c.strip() for c in (reader.fieldnames or [])}
    local = {"x", "y"} <= cols
    crs_cols = {"easting", "northing"} <= cols
    if "depth" not in cols or not (local or crs_cols):
        raise InputError(f"{path}:{start + 1}: header {sorted(cols)} lacks columns "
                         "x, y, depth (or easting, northing, depth)")
    if not local and frame is not None and not frame.georeferenced:
        raise InputError(f"{path}: positions are easting/northing but the survey has no "
                         "CRS: give --crs (and --grid-origin for a taped grid)")
    # Without a survey (QA compares two lists), eastings/northings are the plane.
    plane = "local" if local else ("crs" if frame is None else "local")
    out: list[MapTarget] = []
    for k, row in enumerate(reader):
        line = start + 2 + k
        row = {(a or "").strip(): (b or "") for a, b in row.items() if a is not None}
        try:
            if local:
                x, y = _num(row, "x"), _num(row, "y")
            elif frame is None:
                x, y = _num(row, "easting"), _num(row, "northing")
            else:
                lx, ly = frame.crs_to_local(_num(row, "easting"),
                                            _num(row, "northing"))
                x, y = float(lx), float(ly)
            depth = _num(row, "depth")
            moment = _num(row, "moment")
            t = MapTarget(id=(row.get("id") or str(k + 1)).strip(), x=x, y=y, depth=depth,
                          sigma_depth=_num(row, "sigma_depth"), moment=moment,
                          size_class=(row.get("size_class") or "").strip()
                          or (size_class(moment) if math.isfinite(moment) else ""),
                          quality=_num(row, "quality"),
                          flags=tuple(f for f in (row.get("flags") or "").split(";") if f),
                          line=line, plane=plane)
        except ValueError as exc:
            raise InputError(f"{path}:{line}: not a number: {exc}") from None
        if not (math.isfinite(t.x) and math.isfinite(t.y) and math.isfinite(t.depth)):
            raise InputError(f"{path}:{line}: target {t.id!r} needs finite x, y and depth")
        if t.depth < 0:
            raise InputError(f"{path}:{line}: depth {t.depth} is negative (depth is metres "
                             "below ground, positive down)")
        out.append(t)
    return out


def from_results(targets: list[Any]) -> list[MapTarget]:
    """`MapTarget`s from the DSP's `Target` events (what ``uxo process`` writes)."""
    return [MapTarget(id=str(t.target_id), x=float(t.x), y=float(t.y), depth=float(t.depth),
                      sigma_depth=float(t.sigma_depth), moment=float(t.moment_abs),
                      size_class=t.size_class, quality=float(t.quality), flags=tuple(t.flags))
            for t in targets]


def place(targets: list[MapTarget], frame: SurveyFrame) -> list[MapTarget]:
    """The targets with easting/northing (CRS) and lat/lon (WGS84), when the frame is placed."""
    if not targets or not frame.georeferenced:
        return list(targets)
    x = np.array([t.x for t in targets])
    y = np.array([t.y for t in targets])
    e, n = frame.local_to_crs(x, y)
    try:
        lat, lon = frame.to_wgs84(x, y)
    except CoordinateError:
        lat = lon = np.full(x.size, math.nan)
    return [replace(t, easting=float(e[i]), northing=float(n[i]), lat=float(lat[i]),
                    lon=float(lon[i])) for i, t in enumerate(targets)]


def safety_key(t: MapTarget) -> tuple[int, float, str]:
    """Sort key of the dig list: largest size class first, then deepest first."""
    cls = t.size_class if t.size_class in SAFETY_ORDER else ""
    rank = SAFETY_ORDER.index(cls) if cls else len(SAFETY_ORDER)
    return (rank, -t.depth, t.id)


def dig_list(targets: list[MapTarget]) -> list[MapTarget]:
    return sorted(targets, key=safety_key)


def check_within(targets: list[MapTarget], x: np.ndarray, y: np.ndarray, what: str,
                 margin: float = EXTENT_MARGIN_M) -> None:
    """`InputError` when a target lies outside the survey's extent (its samples' box + margin)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x0, x1 = float(x[ok].min()) - margin, float(x[ok].max()) + margin
    y0, y1 = float(y[ok].min()) - margin, float(y[ok].max()) + margin
    out = [t for t in targets if not (x0 <= t.x <= x1 and y0 <= t.y <= y1)]
    if out:
        t = out[0]
        where = f":{t.line}" if t.line else ""
        raise InputError(
            f"{what}{where}: {len(out)} of {len(targets)} targets lie outside the survey's "
            f"extent (x {x0 + margin:.1f}..{x1 - margin:.1f}, y {y0 + margin:.1f}.."
            f"{y1 - margin:.1f} m local), first {t.id!r} at x {t.x:.2f}, y {t.y:.2f}: "
            "is it the target list of another survey, or another CRS/grid origin?")
