"""Write a `MapGrid` as a GeoTIFF (tifffile) that QGIS and GDAL place by its own tags.

One float32 band, north row first, NaN where blanked (GDAL_NODATA = nan).
Placement tags (GeoTIFF 1.1): a north-up grid gets ModelPixelScale and
ModelTiepoint (the upper-left corner of the upper-left cell in CRS metres);
a rotated taped grid gets a ModelTransformation matrix instead. The
GeoKeyDirectory says: projected model, pixel-is-area, the CRS by its EPSG
code, linear unit metre.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from acquisition.coords import SurveyFrame
from acquisition.maps.grid import MapGrid
from acquisition.maps.inputs import InputError

TAG_PIXEL_SCALE = 33550
TAG_TIEPOINT = 33922
TAG_TRANSFORMATION = 34264
TAG_GEOKEYS = 34735
TAG_GDAL_NODATA = 42113


def epsg_of(crs: str) -> int:
    from pyproj import CRS

    code = CRS.from_user_input(crs).to_epsg()
    if code is None:
        raise InputError(f"CRS {crs!r} has no EPSG code; a GeoTIFF names its CRS by one "
                         "(give the CRS as EPSG:NNNN)")
    return int(code)


def geokeys(epsg: int) -> tuple[int, ...]:
    keys = [(1024, 0, 1, 1),      # GTModelTypeGeoKey: projected
            (1025, 0, 1, 1),      # GTRasterTypeGeoKey: pixel is area
            (3072, 0, 1, epsg),   # ProjectedCSTypeGeoKey
            (3076, 0, 1, 9001)]   # ProjLinearUnitsGeoKey: metre
    head = (1, 1, 0, len(keys))
    return tuple(v for k in [head, *keys] for v in k)


def write_geotiff(path: str | Path, grid: MapGrid, frame: SurveyFrame) -> Path:
    import tifffile

    if not frame.georeferenced:
        raise InputError(f"{path}: a GeoTIFF needs a CRS to place it: give --crs (and "
                         "--grid-origin/--grid-rotation for a taped grid), or write .png")
    assert frame.crs is not None  # georeferenced: it has a CRS
    epsg = epsg_of(frame.crs)
    s = grid.spacing
    x_left = float(grid.x[0]) - s / 2
    y_top = float(grid.y[-1]) + s / 2
    data = np.ascontiguousarray(grid.values[::-1].astype(np.float32))
    tags: list[tuple[int, str, int, object, bool]] = []
    if frame.rotation_deg == 0.0:
        e0, n0 = frame.local_to_crs(x_left, y_top)
        tags.append((TAG_PIXEL_SCALE, "d", 3, (s, s, 0.0), True))
        tags.append((TAG_TIEPOINT, "d", 6, (0.0, 0.0, 0.0, float(e0), float(n0), 0.0), True))
    else:
        a = math.radians(frame.rotation_deg)
        c, sn = math.cos(a), math.sin(a)
        e0, n0 = frame.local_to_crs(x_left, y_top)
        # column i, row j (down) -> local (x_left + i s, y_top - j s) -> CRS
        m = (s * c, -s * sn, 0.0, float(e0),
             -s * sn, -s * c, 0.0, float(n0),
             0.0, 0.0, 0.0, 0.0,
             0.0, 0.0, 0.0, 1.0)
        tags.append((TAG_TRANSFORMATION, "d", 16, m, True))
    tags.append((TAG_GEOKEYS, "H", len(geokeys(epsg)), geokeys(epsg), True))
    tags.append((TAG_GDAL_NODATA, "s", 0, "nan", True))
    path = Path(path)
    tifffile.imwrite(path, data, photometric="minisblack", extratags=tags, metadata=None,
                     description=f"uxo-acquisition {grid.product} ({grid.unit})")
    return path
