"""The levelled survey on a regular grid, blanked away from the data, and derived products.

Gridding: the samples are averaged in blocks of the grid spacing (as
`verde.BlockReduce` with a mean), then interpolated linearly on the Delaunay
triangles of the blocks (`verde.Linear`'s interpolant, through matplotlib's
faster triangle finder: exact at the blocks, no overshoot between lanes),
cells outside the triangles take the nearest block (`verde.KNeighbors`), and every
cell farther than the blanking distance from a sample is set to NaN with
`verde.distance_mask`, so a missed lane or a hole in the survey is never
painted over. Derived products are harmonica's FFT filters on the gridded
levelled reading (gaps filled with 0, the levelled background, for the FFT,
then blanked again):

- ``vertical_derivative``: d/dz of the reading, nT/m;
- ``analytic_signal``: sqrt(dx² + dy² + dz²), nT/m, peaks over the source
  whatever the Earth field's inclination;
- ``rtp``: reduction to the pole with the survey's Earth field (induced
  magnetisation assumed; unstable near the equator, as RTP always is).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from acquisition.maps.inputs import InputError

if TYPE_CHECKING:  # the DSP (scipy) only when gridding: `uxo` registers this at startup
    from acquisition.maps.levelled import Levelled

PRODUCTS = ("levelled", "analytic_signal", "rtp", "vertical_derivative")
#: Default cell size (m): four cells between lanes 1 m apart.
DEFAULT_SPACING_M = 0.25
#: Default blanking distance in lane spacings: cells between two walked lanes are
#: painted, the middle 0.8 spacing of a missed lane (2 spacings wide) is blanked.
BLANK_LANES = 0.6


@dataclass(slots=True)
class MapGrid:
    """Cell-centre coordinates (local m, ascending), values (ny, nx) with NaN where blanked."""

    x: np.ndarray
    y: np.ndarray
    values: np.ndarray
    spacing: float
    product: str = "levelled"
    unit: str = "nT"

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """Outer edges (x0, x1, y0, y1) of the cells, for imshow."""
        h = self.spacing / 2
        return (float(self.x[0]) - h, float(self.x[-1]) + h,
                float(self.y[0]) - h, float(self.y[-1]) + h)

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        """(row, column) of the cell holding local (x, y)."""
        return (round((y - float(self.y[0])) / self.spacing),
                round((x - float(self.x[0])) / self.spacing))


def grid_levelled(lev: Levelled, *, spacing: float = DEFAULT_SPACING_M,
                  blank_m: float) -> MapGrid:
    """Grid the levelled samples (verde) and blank cells farther than ``blank_m`` from data."""
    import verde as vd

    if lev.x.size < 3:
        raise InputError("too few samples to grid (need at least 3 with positions)")
    if not (spacing > 0 and math.isfinite(spacing)):
        raise InputError(f"grid spacing must be > 0 m, got {spacing!r}")
    # Cell centres on whole multiples of the spacing: grids of one site line up.
    x0 = math.floor(float(lev.x.min()) / spacing) * spacing
    x1 = math.ceil(float(lev.x.max()) / spacing) * spacing
    y0 = math.floor(float(lev.y.min()) / spacing) * spacing
    y1 = math.ceil(float(lev.y.max()) / spacing) * spacing
    if (x1 - x0) / spacing * (y1 - y0) / spacing > 4e7:
        raise InputError(f"a {x1 - x0:.0f} x {y1 - y0:.0f} m grid at {spacing} m is too large; "
                         "give a coarser --spacing")
    coords, data = block_mean(lev.x, lev.y, lev.value, x0, y0, spacing)
    gx = np.round(np.arange(x0, x1 + spacing / 2, spacing), 9)
    gy = np.round(np.arange(y0, y1 + spacing / 2, spacing), 9)
    xx, yy = np.meshgrid(gx, gy)
    nearest = vd.KNeighbors(k=1).fit(coords, data).predict((xx, yy))
    values = np.full(xx.shape, np.nan)
    if coords[0].size >= 3 and np.ptp(coords[0]) > 0 and np.ptp(coords[1]) > 0:
        values = _linear(coords, data, xx, yy)
    # Outside the triangles (the half cell at the ends of the lanes): nearest block.
    values = np.where(np.isfinite(values), values, nearest)
    values = _blank(values, lev, xx, yy, blank_m)
    return MapGrid(x=gx, y=gy, values=values, spacing=spacing)


def _linear(coords: tuple[np.ndarray, np.ndarray], data: np.ndarray, xx: np.ndarray,
            yy: np.ndarray) -> np.ndarray:
    """Linear interpolation on the Delaunay triangles of the blocks; NaN outside them.

    matplotlib's triangulation with its trapezoid-map finder: the same
    interpolant as `verde.Linear` (scipy's LinearNDInterpolator), which on
    lane data takes ~1 s per 1600 cells (a hectare: minutes) against 25 ms.
    """
    import matplotlib.tri as mtri

    try:
        tri = mtri.Triangulation(coords[0], coords[1])
    except (ValueError, RuntimeError):  # all blocks on one line: no triangle
        return np.full(xx.shape, np.nan)
    out = mtri.LinearTriInterpolator(tri, data)(xx, yy)
    return np.ma.filled(out.astype(np.float64), np.nan)


def block_mean(x: np.ndarray, y: np.ndarray, v: np.ndarray, x0: float, y0: float,
               spacing: float) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Mean position and value of the samples in each ``spacing`` block (blocks with data).

    What `verde.BlockReduce` does with ``np.mean``, vectorised: verde's goes
    through pandas block by block (40 s for a hectare with a median).
    """
    ix = np.floor((x - x0) / spacing).astype(np.int64)
    iy = np.floor((y - y0) / spacing).astype(np.int64)
    key = iy * (int(ix.max()) + 1) + ix
    _, inv = np.unique(key, return_inverse=True)
    n = np.bincount(inv).astype(np.float64)
    return ((np.bincount(inv, x) / n, np.bincount(inv, y) / n), np.bincount(inv, v) / n)


def _blank(values: np.ndarray, lev: Levelled, xx: np.ndarray, yy: np.ndarray,
           blank_m: float) -> np.ndarray:
    import verde as vd

    mask = vd.distance_mask((lev.x, lev.y), maxdist=blank_m, coordinates=(xx, yy))
    return np.where(mask, values, np.nan)


def derived(grid: MapGrid, product: str, *, inclination_deg: float = 90.0,
            declination_deg: float = 0.0) -> MapGrid:
    """A derived product of a levelled grid (harmonica's FFT filters), blanked like it."""
    if product == "levelled":
        return grid
    if product not in PRODUCTS:
        raise InputError(f"unknown product {product!r} (expected one of {', '.join(PRODUCTS)})")
    import warnings

    import xarray as xr

    blank = ~np.isfinite(grid.values)
    da = xr.DataArray(np.where(blank, 0.0, grid.values), coords={"northing": grid.y,
                      "easting": grid.x}, dims=("northing", "easting"))
    with warnings.catch_warnings():
        # harmonica 0.7 / xrft call xarray APIs due to change; not ours to fix
        warnings.simplefilter("ignore", FutureWarning)
        out, unit = _filter(da, product, inclination_deg, declination_deg)
    vals = np.asarray(out.values, dtype=np.float64)
    vals[blank] = np.nan
    return MapGrid(x=grid.x, y=grid.y, values=vals, spacing=grid.spacing, product=product,
                   unit=unit)


def _filter(da: Any, product: str, inclination_deg: float, declination_deg: float
            ) -> tuple[Any, str]:
    import harmonica as hm

    if product == "vertical_derivative":
        out, unit = hm.derivative_upward(da), "nT/m"
        # harmonica's upward derivative; depth-positive-down maps show d/dz down
        out = -out
    elif product == "analytic_signal":
        dx = hm.derivative_easting(da, method="fft")
        dy = hm.derivative_northing(da, method="fft")
        dz = hm.derivative_upward(da)
        out, unit = np.sqrt(dx ** 2 + dy ** 2 + dz ** 2), "nT/m"
    else:
        out, unit = hm.reduction_to_pole(da, inclination=inclination_deg,
                                         declination=declination_deg), "nT"
    return out, unit
