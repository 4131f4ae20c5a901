"""Lanes walked against the plan: walked strips, coverage %, gaps with coordinates.

A walked lane covers a strip one lane spacing wide centred on the lane's line
(the detector's footprint between stakes 1 m apart). A lane is cut where its
samples are farther apart than `BREAK_M` (a dropout, an obstacle), so the
strip does not bridge it. The plan is a rectangle in local metres (``--plan``
or the metadata key ``plan_area``: ``x0,y0,x1,y1``); without one, the
rectangle the walked lanes span. Coverage is the share of the plan the
strips cover, counted on a 0.1 m raster; gaps are the uncovered patches of
at least `MIN_GAP_M2`, each with its box and centre in local, CRS and WGS84
coordinates. The strips are also the coverage polygons of the GIS export.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from acquisition.coords import CoordinateError, SurveyFrame
from acquisition.maps.inputs import InputError
from acquisition.maps.levelled import Levelled

#: Samples of one lane farther apart than this (m) break it in two.
BREAK_M = 1.0
#: Uncovered patches smaller than this (m²) are not listed as gaps.
MIN_GAP_M2 = 1.0
RASTER_M = 0.1
PLAN_KEY = "plan_area"


@dataclass(slots=True)
class LaneRun:
    """One unbroken stretch of a walked lane: its line x, y extent and its track."""

    lane: int
    x_ref: float
    y0: float
    y1: float
    x: np.ndarray
    y: np.ndarray

    @property
    def length_m(self) -> float:
        return self.y1 - self.y0


@dataclass(slots=True)
class Gap:
    x0: float
    y0: float
    x1: float
    y1: float
    area_m2: float
    easting: float = math.nan
    northing: float = math.nan
    lat: float = math.nan
    lon: float = math.nan


@dataclass(slots=True)
class Coverage:
    plan: tuple[float, float, float, float]
    spacing: float
    runs: list[LaneRun]
    covered_m2: float
    plan_m2: float
    planned_lanes: int
    walked_lanes: int
    missing_lanes: list[float]
    gaps: list[Gap]

    @property
    def percent(self) -> float:
        return 100.0 * self.covered_m2 / self.plan_m2 if self.plan_m2 > 0 else math.nan

    @property
    def walked_m2(self) -> float:
        """Area of the strips walked (the same measure as the DSP's survey area)."""
        return sum(r.length_m for r in self.runs) * self.spacing


def parse_box(text: str, what: str = "box") -> tuple[float, float, float, float]:
    """``"x0,y0,x1,y1"`` -> a box with x0 < x1 and y0 < y1."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise InputError(f"{what}: {text!r} is not X0,Y0,X1,Y1 (four numbers, metres)")
    x0, y0, x1, y1 = vals
    if not (x1 > x0 and y1 > y0):
        raise InputError(f"{what}: {text!r} needs X0 < X1 and Y0 < Y1")
    return x0, y0, x1, y1


def lane_runs(lev: Levelled) -> list[LaneRun]:
    """The walked lanes as unbroken runs (cut at gaps over `BREAK_M`)."""
    runs: list[LaneRun] = []
    for k in np.unique(lev.lane):
        g = np.flatnonzero(lev.lane == k)
        if g.size < 2:
            continue
        x, y = lev.x[g], lev.y[g]
        jumps = np.flatnonzero(np.hypot(np.diff(x), np.diff(y)) > BREAK_M) + 1
        for a, b in zip(np.r_[0, jumps], np.r_[jumps, g.size], strict=True):
            if b - a < 2:
                continue
            rx, ry = x[a:b], y[a:b]
            runs.append(LaneRun(lane=int(k), x_ref=float(np.median(rx)), y0=float(ry.min()),
                                y1=float(ry.max()), x=rx, y=ry))
    return runs


def coverage(lev: Levelled, spacing: float, frame: SurveyFrame,
             plan: tuple[float, float, float, float] | None = None) -> Coverage:
    from scipy import ndimage

    runs = lane_runs(lev)
    if not runs:
        raise InputError("no walked lane (every lane has fewer than 2 samples)")
    half = spacing / 2
    if plan is None:
        plan = (min(r.x_ref for r in runs) - half, min(r.y0 for r in runs),
                max(r.x_ref for r in runs) + half, max(r.y1 for r in runs))
    x0, y0, x1, y1 = plan
    nx = max(1, round((x1 - x0) / RASTER_M))
    ny = max(1, round((y1 - y0) / RASTER_M))
    if nx * ny > 5e7:
        raise InputError(f"plan {plan} is too large to rasterise at {RASTER_M} m")
    cx = x0 + (np.arange(nx) + 0.5) * RASTER_M
    cy = y0 + (np.arange(ny) + 0.5) * RASTER_M
    cov = np.zeros((ny, nx), dtype=bool)
    for r in runs:
        ci = (cx >= r.x_ref - half) & (cx < r.x_ref + half)
        ri = (cy >= r.y0) & (cy <= r.y1)
        if ci.any() and ri.any():
            cov[np.ix_(ri, ci)] = True
    cell = RASTER_M * RASTER_M
    planned = max(1, round((x1 - x0) / spacing))
    centres = x0 + (np.arange(planned) + 0.5) * spacing
    xs = np.array([r.x_ref for r in runs])
    missing = [float(c) for c in centres if not (np.abs(xs - c) < half).any()]
    walked = sum(1 for c in centres if (np.abs(xs - c) < half).any())
    labels, _ = ndimage.label(~cov)
    gaps: list[Gap] = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        area = float((labels[sl] == k).sum()) * cell
        if area < MIN_GAP_M2:
            continue
        rows, cols = sl
        gaps.append(Gap(x0=x0 + cols.start * RASTER_M, y0=y0 + rows.start * RASTER_M,
                        x1=x0 + cols.stop * RASTER_M, y1=y0 + rows.stop * RASTER_M,
                        area_m2=area))
    gaps.sort(key=lambda g: -g.area_m2)
    if frame.georeferenced and gaps:
        gx = np.array([(g.x0 + g.x1) / 2 for g in gaps])
        gy = np.array([(g.y0 + g.y1) / 2 for g in gaps])
        e, n_ = frame.local_to_crs(gx, gy)
        try:
            lat, lon = frame.to_wgs84(gx, gy)
        except CoordinateError:
            lat = lon = np.full(gx.size, math.nan)
        for i, g in enumerate(gaps):
            g.easting, g.northing, g.lat, g.lon = (float(e[i]), float(n_[i]), float(lat[i]),
                                                  float(lon[i]))
    return Coverage(plan=plan, spacing=spacing, runs=runs, covered_m2=float(cov.sum()) * cell,
                    plan_m2=nx * ny * cell, planned_lanes=planned, walked_lanes=walked,
                    missing_lanes=missing, gaps=gaps)
