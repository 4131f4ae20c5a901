"""Hole plans: the staggered (quincunx) layout the national procedure asks for.

Holes sit on a triangular lattice: rows ``spacing * sqrt(3)/2`` apart, holes
``spacing`` apart along a row, every other row shifted by half a spacing, so
each hole is ``spacing`` from its six neighbours. The farthest any point lies
from a hole is the triangle's circumradius, ``spacing / sqrt(3)`` (1.155 m for
2 m holes).

By default (``edge="cover"``) holes just outside the area are kept when they
are needed for that coverage to reach the area's edge; ``edge="inside"`` keeps
only holes inside the polygon (the coverage figure then says what that costs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from acquisition.borehole.geometry import as_polygon, distance_to_edges, inside, sample_polygon
from acquisition.errors import SettingError

#: Most holes a plan may list: a mistyped spacing (mm for m) must not hang the planner.
MAX_HOLES = 1e6

MIN_DIAMETER_MM = 105.0
DIAMETER_NOTE = ("holes at least 105 mm in diameter, lined with plastic pipe; drill and probe "
                 "one 5 m layer at a time, never straight past 10 m")


@dataclass(frozen=True, slots=True)
class PlannedHole:
    hole: str
    x: float
    y: float
    row: int
    col: int
    inside: bool = True


@dataclass(slots=True)
class HolePlan:
    """A layer's holes plus the coverage the layout gives."""

    holes: list[PlannedHole]
    polygon: np.ndarray
    spacing_m: float
    layer: int
    layer_top_m: float
    layer_bottom_m: float
    #: Largest horizontal distance from any point of the area to its nearest hole.
    max_distance_m: float
    #: The lattice's theoretical value, spacing / sqrt(3).
    nominal_max_distance_m: float
    min_diameter_mm: float = MIN_DIAMETER_MM
    notes: list[str] = field(default_factory=list)

    def xy(self) -> np.ndarray:
        return np.array([[h.x, h.y] for h in self.holes], dtype=float).reshape(-1, 2)


def quincunx(area: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
             spacing: float = 2.0, layer_depth: float = 5.0, layer: int = 2,
             azimuth_deg: float = 0.0, edge: str = "cover",
             min_diameter_mm: float = MIN_DIAMETER_MM, hole_prefix: str = "") -> HolePlan:
    """Plan the staggered holes for ``area`` (rectangle x0,y0,x1,y1 or polygon vertices).

    ``layer`` counts 5 m layers from the surface (layer 2 spans 5-10 m);
    ``azimuth_deg`` turns the rows (0: rows run east, clockwise from north as
    in the field). Hole ids are ``<prefix>R<row>C<col>``, in serpentine order
    (the order a rig would drill them).
    """
    if not (spacing > 0 and math.isfinite(spacing)):
        raise ValueError(f"spacing must be positive, got {spacing}")
    if not (layer_depth > 0 and math.isfinite(layer_depth)):
        raise ValueError(f"layer depth must be positive, got {layer_depth}")
    if layer < 1:
        raise ValueError("layers count from 1")
    if edge not in ("cover", "inside"):
        raise ValueError("edge must be 'cover' or 'inside'")
    if not math.isfinite(azimuth_deg):
        raise SettingError(f"azimuth_deg = {azimuth_deg!r} is not a finite number")
    poly = as_polygon(area)
    span = float(np.max(np.ptp(poly, axis=0)))
    n_max = (span / spacing + 2.0) ** 2  # at most: the bounding square's lattice
    if n_max > MAX_HOLES:
        raise SettingError(f"spacing = {spacing!r} m would plan up to {n_max:.3g} holes over "
                           f"{span:g} m (limit {MAX_HOLES:g}): check the spacing and area")
    row_step = spacing * math.sqrt(3.0) / 2.0
    circumradius = spacing / math.sqrt(3.0)
    # Work in a frame turned so rows run along u; the lattice origin is the
    # area's first vertex so the same area always gives the same holes.
    theta = math.radians(90.0 - azimuth_deg)  # azimuth 0 -> rows along +x (east)
    c, s = math.cos(theta - math.pi / 2), math.sin(theta - math.pi / 2)
    rot = np.array([[c, s], [-s, c]])  # world -> lattice frame
    origin = poly[0]
    local = (poly - origin) @ rot.T
    u0, v0 = local.min(axis=0) - spacing
    u1, v1 = local.max(axis=0) + spacing
    r0, r1 = math.floor(v0 / row_step), math.ceil(v1 / row_step)
    k0, k1 = math.floor(u0 / spacing) - 1, math.ceil(u1 / spacing) + 1
    cand: list[tuple[int, int, float, float]] = []
    for r in range(r0, r1 + 1):
        shift = 0.5 * spacing if r % 2 else 0.0
        for k in range(k0, k1 + 1):
            cand.append((r, k, k * spacing + shift, r * row_step))
    luv = np.array([[u, v] for _, _, u, v in cand])
    world = luv @ rot + origin
    ins = inside(world, poly)
    if edge == "cover":
        keep = ins | (distance_to_edges(world, poly) <= circumradius + 1e-9)
    else:
        keep = ins
    rows = sorted({cand[i][0] for i in np.flatnonzero(keep)})
    row_index = {r: i for i, r in enumerate(rows)}
    holes: list[PlannedHole] = []
    by_row: dict[int, list[int]] = {}
    for j in np.flatnonzero(keep):
        by_row.setdefault(cand[j][0], []).append(int(j))
    for r in rows:
        idx = sorted(by_row[r], key=lambda i: cand[i][1])
        kmin = min(cand[i][1] for i in idx)
        if row_index[r] % 2:
            idx = idx[::-1]
        for i in idx:
            ri, ci = row_index[r] + 1, cand[i][1] - kmin + 1
            holes.append(PlannedHole(f"{hole_prefix}R{ri:02d}C{ci:02d}", float(world[i, 0]),
                                     float(world[i, 1]), ri, ci, bool(ins[i])))
    notes = [DIAMETER_NOTE]
    maxd = max_distance_to_holes(poly, np.array([[h.x, h.y] for h in holes]).reshape(-1, 2),
                                 step=min(0.05, spacing / 20))
    if edge == "inside" and maxd > circumradius + 0.01:
        notes.append(f"only holes inside the area: points near the edge are up to {maxd:.2f} m "
                     f"from a hole (lattice value {circumradius:.3f} m)")
    return HolePlan(holes=holes, polygon=poly, spacing_m=float(spacing), layer=layer,
                    layer_top_m=(layer - 1) * layer_depth, layer_bottom_m=layer * layer_depth,
                    max_distance_m=maxd, nominal_max_distance_m=circumradius,
                    min_diameter_mm=min_diameter_mm, notes=notes)


def max_distance_to_holes(poly: np.ndarray, holes_xy: np.ndarray, step: float = 0.05) -> float:
    """Largest distance from any point of the polygon to its nearest hole (sampled)."""
    if len(holes_xy) == 0:
        return math.inf
    pts = sample_polygon(poly, step)
    d, _ = cKDTree(holes_xy).query(pts)
    return float(np.max(d))
