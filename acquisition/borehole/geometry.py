"""Small 2-D geometry helpers: polygons, point-in-polygon, distances to edges."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_polygon(area: Sequence[float] | Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """A rectangle ``(x0, y0, x1, y1)`` or a vertex list to an (n, 2) polygon array.

    The polygon is not closed (last vertex != first). Raises ValueError for fewer
    than three distinct vertices, non-finite values or a zero-area shape.
    """
    arr = np.asarray(area, dtype=float)
    if arr.ndim == 1:
        if arr.size != 4:
            raise ValueError("a rectangle is x0,y0,x1,y1")
        x0, y0, x1, y1 = arr
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        arr = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"polygon must be (n, 2), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("polygon has non-finite coordinates")
    if len(arr) > 1 and np.allclose(arr[0], arr[-1]):
        arr = arr[:-1]
    if len(arr) < 3:
        raise ValueError("a polygon needs at least three vertices")
    if abs(polygon_area(arr)) < 1e-9:
        raise ValueError("polygon has zero area")
    return arr


def polygon_area(poly: np.ndarray) -> float:
    """Signed area (shoelace), positive for counter-clockwise vertices."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def inside(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule point-in-polygon for (n, 2) points; boundary points may go either way."""
    px, py = points[:, 0][:, None], points[:, 1][:, None]
    x0, y0 = poly[:, 0][None, :], poly[:, 1][None, :]
    x1, y1 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
    crosses = (y0 > py) != (y1 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        xint = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    return (np.sum(crosses & (px < xint), axis=1) % 2) == 1


def distance_to_edges(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distance from each point to the polygon's boundary."""
    a = poly[None, :, :]
    b = np.roll(poly, -1, axis=0)[None, :, :]
    p = points[:, None, :]
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, axis=2) / np.maximum(np.sum(ab * ab, axis=2), 1e-300),
                0.0, 1.0)
    proj = a + t[:, :, None] * ab
    return np.min(np.linalg.norm(p - proj, axis=2), axis=1)


def sample_polygon(poly: np.ndarray, step: float) -> np.ndarray:
    """Points filling the polygon on a ``step`` grid, plus its vertices and edge points."""
    x0, y0 = poly.min(axis=0)
    x1, y1 = poly.max(axis=0)
    xs = np.arange(x0, x1 + step / 2, step)
    ys = np.arange(y0, y1 + step / 2, step)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    grid = grid[inside(grid, poly)]
    edge_pts = [poly]
    for i in range(len(poly)):
        a, b = poly[i], poly[(i + 1) % len(poly)]
        n = max(2, int(np.ceil(np.linalg.norm(b - a) / step)) + 1)
        t = np.linspace(0.0, 1.0, n)[:, None]
        edge_pts.append(a + t * (b - a))
    return np.vstack([grid, *edge_pts])
