"""Write (and read back) target lists: CSV per FORMATS.md and GeoJSON.

CSV columns: ``id, x, y, depth, moment, quality, mx, my, mz, sigma_x, sigma_y,
sigma_depth, amplitude_nT, size_class, lanes, flags, method``; list-valued
fields (lanes, flags) are joined with ``;``. Depth is metres below ground,
positive down; moment in A m².

GeoJSON: a FeatureCollection of Points in the survey's local grid (x east,
y north, metres; the collection says so in its ``crs_note``), one feature per
target with the CSV fields as properties and ``depth`` as the third
coordinate, negative (below ground), so GIS tools place it under the surface.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from acquisition.events import SIZE_CLASS_CAVEAT, Target
from acquisition.outfile import write_output

CSV_COLUMNS = ("id", "x", "y", "depth", "moment", "quality", "mx", "my", "mz", "sigma_x",
               "sigma_y", "sigma_depth", "amplitude_nT", "size_class", "lanes", "flags",
               "method")


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


def format_targets_csv(targets: Iterable[Target], comments: dict[str, Any] | None = None) -> str:
    buf = io.StringIO()
    buf.write("# uxo-targets v1\n")
    buf.write(f"# note: {SIZE_CLASS_CAVEAT}\n")
    for k, v in (comments or {}).items():
        buf.write(f"# {k}: {v}\n")
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for t in targets:
        w.writerow(target_row(t))
    return buf.getvalue()


def write_targets_csv(path: str | Path, targets: Iterable[Target],
                      comments: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    write_output(path, format_targets_csv(targets, comments))
    return path


def read_targets_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a target CSV as dicts (comment lines skipped)."""
    with Path(path).open(encoding="utf-8") as f:
        rows = [ln for ln in f if not ln.startswith("#")]
    return list(csv.DictReader(rows))


def targets_geojson(targets: Iterable[Target], properties: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    feats = []
    for t in targets:
        row = target_row(t)
        props: dict[str, Any] = {k: row[k] for k in ("size_class", "method")}
        for k in ("x", "y", "depth", "moment", "quality", "mx", "my", "mz", "sigma_x",
                  "sigma_y", "sigma_depth", "amplitude_nT"):
            props[k] = float(row[k]) if row[k] else None
        props["id"] = t.target_id
        props["lanes"] = list(t.lanes)
        props["flags"] = list(t.flags)
        feats.append({
            "type": "Feature",
            "id": t.target_id,
            "geometry": {"type": "Point",
                         "coordinates": [round(t.x, 3), round(t.y, 3), round(-t.depth, 3)]},
            "properties": props,
        })
    fc: dict[str, Any] = {
        "type": "FeatureCollection",
        "crs_note": "local survey grid: x east, y north, metres; z = -depth (below ground)",
        "size_class_note": SIZE_CLASS_CAVEAT,
        "features": feats,
    }
    if properties:
        fc["properties"] = properties
    return fc


def write_targets_geojson(path: str | Path, targets: Iterable[Target],
                          properties: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    write_output(path, json.dumps(targets_geojson(targets, properties), indent=1))
    return path
