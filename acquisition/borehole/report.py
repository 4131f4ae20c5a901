"""Files the borehole commands write: hole plans, target lists, coverage statements.

Target lists reuse `acquisition.targets_io` (docs/formats.md columns) and add the
borehole columns: ``holes`` (the holes that saw the target, ``;``-joined,
strongest first) and ``distance_m`` (for targets seen from one hole with no
logged neighbour: distance from that hole, direction unknown).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from acquisition.borehole.coverage import CoverageResult
from acquisition.borehole.plan import HolePlan
from acquisition.coords import SurveyFrame
from acquisition.events import Target
from acquisition.outfile import write_output
from acquisition.targets_io import CSV_COLUMNS, targets_geojson
from acquisition.targets_io import format_targets_csv as _format_targets_csv

BOREHOLE_COLUMNS = (*CSV_COLUMNS, "holes", "distance_m")


def format_targets_csv(targets: Iterable[Target], details: dict[int, dict[str, Any]] | None = None,
                       comments: dict[str, Any] | None = None,
                       frame: SurveyFrame | None = None) -> str:
    def distance(t: Target) -> str:
        dist = (details or {}).get(t.target_id, {}).get("distance_m", math.nan)
        return "" if not math.isfinite(dist) else f"{dist:.3f}"

    return _format_targets_csv(
        targets, comments, frame,
        notes=("depth in metres below ground; holes = holes that saw the target",),
        extra={"holes": lambda t: ";".join(t.holes), "distance_m": distance})


def write_targets_csv(path: str | Path, targets: Iterable[Target],
                      details: dict[int, dict[str, Any]] | None = None,
                      comments: dict[str, Any] | None = None,
                      frame: SurveyFrame | None = None) -> Path:
    p = Path(path)
    write_output(p, format_targets_csv(targets, details, comments, frame))
    return p


def write_targets_geojson(path: str | Path, targets: list[Target],
                          details: dict[int, dict[str, Any]] | None = None,
                          properties: dict[str, Any] | None = None,
                          frame: SurveyFrame | None = None) -> Path:
    """GeoJSON (WGS84) of the targets; `CoordinateError` when the collars are not placed."""
    fc = targets_geojson(targets, frame, properties)
    for f, t in zip(fc["features"], targets, strict=True):
        f["properties"]["holes"] = list(t.holes)
        dist = (details or {}).get(t.target_id, {}).get("distance_m")
        if dist is not None and math.isfinite(dist):
            f["properties"]["distance_m"] = round(float(dist), 3)
    p = Path(path)
    write_output(p, json.dumps(fc, indent=1))
    return p


def write_plan_csv(path: str | Path, plan: HolePlan) -> Path:
    buf = io.StringIO()
    buf.write("# uxo-holeplan v1\n")
    buf.write(f"# spacing_m: {plan.spacing_m}\n# layer: {plan.layer}\n")
    buf.write(f"# layer_top_m: {plan.layer_top_m}\n# layer_bottom_m: {plan.layer_bottom_m}\n")
    buf.write(f"# min_diameter_mm: {plan.min_diameter_mm:g}\n")
    buf.write(f"# max_distance_m: {plan.max_distance_m:.3f}\n")
    buf.write(f"# nominal_max_distance_m: {plan.nominal_max_distance_m:.3f}\n")
    for n in plan.notes:
        buf.write(f"# note: {n}\n")
    buf.write("hole,x,y,row,col,inside\n")
    for h in plan.holes:
        buf.write(f"{h.hole},{h.x:.3f},{h.y:.3f},{h.row},{h.col},{int(h.inside)}\n")
    p = Path(path)
    write_output(p, buf.getvalue())
    return p


def plan_geojson(plan: HolePlan) -> dict[str, Any]:
    ring = [[round(float(x), 3), round(float(y), 3)] for x, y in plan.polygon]
    ring.append(ring[0])
    feats: list[dict[str, Any]] = [{
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"kind": "area", "spacing_m": plan.spacing_m, "layer": plan.layer,
                       "layer_top_m": plan.layer_top_m, "layer_bottom_m": plan.layer_bottom_m,
                       "max_distance_m": round(plan.max_distance_m, 3),
                       "min_diameter_mm": plan.min_diameter_mm, "notes": plan.notes}}]
    for h in plan.holes:
        feats.append({"type": "Feature", "id": h.hole,
                      "geometry": {"type": "Point", "coordinates": [round(h.x, 3), round(h.y, 3)]},
                      "properties": {"kind": "hole", "hole": h.hole, "row": h.row, "col": h.col,
                                     "inside": h.inside}})
    return {"type": "FeatureCollection",
            "crs_note": "local survey grid: x east, y north, metres", "features": feats}


def write_plan_geojson(path: str | Path, plan: HolePlan) -> Path:
    p = Path(path)
    write_output(p, json.dumps(plan_geojson(plan), indent=1))
    return p


def coverage_summary(cov: CoverageResult) -> str:
    lines = [
        f"layer {cov.layer_top_m:g}-{cov.layer_bottom_m:g} m, smallest moment "
        f"{cov.min_moment_Am2:g} A m2, any direction, peak >= {cov.snr_required:g} x noise",
        f"searched: {100 * cov.fraction:.1f} % of {cov.volume_m3:.1f} m3",
        f"one hole alone reaches {cov.single_hole_reach_m:.2f} m (worst direction in its plane)",
        "signed off: yes" if cov.signed_off else
        f"signed off: NO ({len(cov.gaps)} unsearched cell runs)",
    ]
    lines += [f"note: {n}" for n in cov.notes]
    return "\n".join(lines)


def coverage_geojson(cov: CoverageResult) -> dict[str, Any]:
    h = cov.step_m / 2
    feats = []
    for x, y, d0, d1 in cov.gaps:
        ring = [[x - h, y - h], [x + h, y - h], [x + h, y + h], [x - h, y + h], [x - h, y - h]]
        feats.append({"type": "Feature",
                      "geometry": {"type": "Polygon",
                                   "coordinates": [[[round(a, 3), round(b, 3)] for a, b in ring]]},
                      "properties": {"kind": "unsearched", "depth_from": round(d0, 3),
                                     "depth_to": round(d1, 3)}})
    return {"type": "FeatureCollection",
            "crs_note": "local survey grid: x east, y north, metres",
            "properties": {"fraction_searched": cov.fraction,
                           "min_moment_Am2": cov.min_moment_Am2,
                           "layer_top_m": cov.layer_top_m, "layer_bottom_m": cov.layer_bottom_m,
                           "snr_required": cov.snr_required, "signed_off": cov.signed_off},
            "features": feats}
