"""Draw a survey map with matplotlib (Agg): hill-shaded colour grid, walked track, targets.

The map carries what a team leader needs to trust it: the walked track (so a
blanked hole is seen as unwalked ground, not as quiet ground), every target
ringed and labelled with its id and depth in metres to the centimetre, a
scale bar, a north arrow, the CRS, the date and the instrument. Axes are CRS
eastings/northings when the grid is placed without rotation, else the local
grid's metres (the north arrow then shows the grid's rotation).

PNG files carry their own placement as text chunks (``uxo:axes_px``: the
axes' left, top, right, bottom in pixels; ``uxo:axes_extent``: x0, x1, y0,
y1 in the axes' coordinates), so a reader can turn any pixel into a position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.coords import SurveyFrame
from acquisition.maps.grid import MapGrid
from acquisition.maps.targets import MapTarget

#: Target rings: pure magenta, a colour neither colour map nor hill shading makes.
TARGET_COLOUR = "#ff00ff"
DPI = 120


@dataclass(slots=True)
class MapInfo:
    """Text of the map's title block."""

    title: str = ""
    date: str = ""
    instrument: str = ""
    extra: list[str] = field(default_factory=list)


def info_from_metadata(md: dict[str, str], source: str) -> MapInfo:
    inst = " ".join(v for v in (md.get("instrument", ""), md.get("serial", "")) if v) or (
        md.get("kind", "") + " survey")
    return MapInfo(title=md.get("site", "") or Path(source).name,
                   date=md.get("date", "") or md.get("survey_date", ""), instrument=inst)


def _offset(frame: SurveyFrame) -> tuple[float, float, bool]:
    """Shift from local to plotted coordinates; True when axes are CRS coordinates."""
    if frame.georeferenced and frame.rotation_deg == 0.0:
        return frame.origin_e, frame.origin_n, True
    return 0.0, 0.0, False


def _limits(v: np.ndarray, product: str) -> tuple[float, float]:
    f = v[np.isfinite(v)]
    if not f.size:
        return -1.0, 1.0
    if product == "analytic_signal":
        return 0.0, float(np.percentile(f, 99)) or 1.0
    # Symmetric about 0, robust: a bomb's hundreds of nT do not wash out the rest.
    m = float(np.percentile(np.abs(f), 98)) or float(np.abs(f).max()) or 1.0
    return -m, m


def figure(grid: MapGrid, frame: SurveyFrame, *, tracks: list[tuple[np.ndarray, np.ndarray]],
           targets: list[MapTarget], info: MapInfo) -> Any:
    """The map as a matplotlib Figure (Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import colormaps
    from matplotlib.colors import LightSource, Normalize
    from matplotlib.figure import Figure
    from matplotlib.patheffects import withStroke
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    ox, oy, in_crs = _offset(frame)
    x0, x1, y0, y1 = grid.extent
    w, h = x1 - x0, y1 - y0
    aspect = h / w if w > 0 else 1.0
    fig_w = 9.0
    ax_w = 6.4
    ax_h = min(max(ax_w * aspect, 2.0), 8.5)
    ax_w = ax_h / aspect if ax_w * aspect > 8.5 else ax_w
    fig_h = ax_h + 2.0
    fig = Figure(figsize=(fig_w, fig_h), dpi=DPI)
    ax = fig.add_axes((0.9 / fig_w, 1.0 / fig_h, ax_w / fig_w, ax_h / fig_h))
    cax = fig.add_axes(((1.1 + ax_w) / fig_w, 1.0 / fig_h, 0.2 / fig_w, ax_h / fig_h))
    cmap = colormaps["viridis" if grid.product == "analytic_signal" else "RdBu_r"]
    lo, hi = _limits(grid.values, grid.product)
    norm = Normalize(lo, hi, clip=True)
    v = grid.values
    blank = ~np.isfinite(v)
    # Shaded as clipped: a bomb's hundreds of nT would make cliffs that the
    # light turns to white and black specks across its anomaly.
    filled = np.clip(np.where(blank, 0.0 if grid.product != "analytic_signal" else lo, v),
                     lo, hi)
    rgb = LightSource(azdeg=315, altdeg=45).shade(
        filled, cmap=cmap, norm=norm, blend_mode="soft", vert_exag=1.0 / max(hi - lo, 1e-9),
        dx=grid.spacing, dy=grid.spacing)
    rgb[..., 3] = np.where(blank, 0.0, 1.0)
    ext = (x0 + ox, x1 + ox, y0 + oy, y1 + oy)
    ax.imshow(rgb, origin="lower", extent=ext, interpolation="nearest")
    for tx, ty in tracks:
        step = max(1, tx.size // 400)
        ax.plot(tx[::step] + ox, ty[::step] + oy, color="0.25", lw=0.4, alpha=0.6)
    halo = [withStroke(linewidth=2.5, foreground="white")]
    for t in targets:
        ax.scatter([t.x + ox], [t.y + oy], s=60, facecolors="none", edgecolors=TARGET_COLOUR,
                   linewidths=1.6, zorder=5)
        ax.annotate(f"{t.id}\n{t.depth:.2f} m", (t.x + ox, t.y + oy), xytext=(6, 6),
                    textcoords="offset points", fontsize=7, color="black", zorder=6,
                    path_effects=halo)
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    ax.set_aspect("equal")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=7)
    ax.set_xlabel("Easting (m)" if in_crs else "x (m, local grid)", fontsize=8)
    ax.set_ylabel("Northing (m)" if in_crs else "y (m, local grid)", fontsize=8)
    # scale bar: a round length near a fifth of the map's width
    nice = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    bar = max([n for n in nice if n <= w / 4] or [1])
    ax.add_artist(AnchoredSizeBar(ax.transData, bar, f"{bar} m", "lower left", pad=0.4,
                                  frameon=True, size_vertical=max(w, h) / 150, fontproperties={
                                      "size": 7}))
    # north arrow: grid north is rotated by the grid's rotation in the local plot
    rot = 0.0 if in_crs else frame.rotation_deg
    a = math.radians(-rot)
    cx, cy, ln = 0.92, 0.86, 0.08
    ax.annotate("", xy=(cx + ln * math.sin(a), cy + ln * math.cos(a)),
                xytext=(cx - ln * math.sin(a) * 0.2, cy - ln * math.cos(a) * 0.2),
                xycoords="axes fraction", arrowprops={"arrowstyle": "-|>", "color": "black",
                                                      "lw": 1.5})
    ax.text(cx + ln * 1.35 * math.sin(a), cy + ln * 1.35 * math.cos(a), "N",
            transform=ax.transAxes, ha="center", va="center", fontsize=9, weight="bold",
            path_effects=halo)
    from matplotlib.cm import ScalarMappable

    cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    label = {"levelled": "levelled reading", "analytic_signal": "analytic signal",
             "rtp": "reduced to the pole", "vertical_derivative": "vertical derivative"}
    cb.set_label(f"{label.get(grid.product, grid.product)} ({grid.unit})", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    crs = frame.crs or "none (local grid, not placed)"
    if frame.georeferenced and not in_crs:
        crs += (f"; grid origin E {frame.origin_e:.2f} N {frame.origin_n:.2f}, "
                f"rotated {frame.rotation_deg:g}°")
    fig.text(0.9 / fig_w, 1 - 0.35 / fig_h, info.title, fontsize=11, weight="bold")
    fig.text(0.9 / fig_w, 1 - 0.62 / fig_h,
             " · ".join(s for s in (f"date {info.date}" if info.date else "",
                                    info.instrument, f"{len(targets)} targets") if s),
             fontsize=8)
    fig.text(0.9 / fig_w, 0.25 / fig_h, f"CRS: {crs}", fontsize=7)
    for i, line in enumerate(info.extra):
        fig.text(0.9 / fig_w, 1 - (0.85 + 0.22 * i) / fig_h, line, fontsize=7)
    # attr-defined: the map's axes ride on the Figure for callers; matplotlib has no slot
    fig._uxo_axes = ax  # type: ignore[attr-defined]
    return fig


def axes_placement(fig: Any) -> dict[str, str]:
    """PNG text chunks saying where the axes lie in the image and what they span."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    ax = fig._uxo_axes
    bb = ax.get_window_extent()
    height = fig.get_figheight() * fig.dpi
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    return {"uxo:axes_px": f"{bb.x0:.3f},{height - bb.y1:.3f},{bb.x1:.3f},{height - bb.y0:.3f}",
            "uxo:axes_extent": f"{float(x0)!r},{float(x1)!r},{float(y0)!r},{float(y1)!r}"}


def save(fig: Any, path: str | Path) -> Path:
    """Write the figure as PNG (with its placement chunks) or PDF, by suffix."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    FigureCanvasAgg(fig)
    suffix = path.suffix.lower()
    if suffix == ".png":
        fig.savefig(path, dpi=fig.dpi, metadata={"Software": "uxo-acquisition",
                                                 **axes_placement(fig)})
    elif suffix == ".pdf":
        fig.savefig(path, dpi=fig.dpi, metadata={"Creator": "uxo-acquisition"})
    else:
        raise ValueError(f"{path}: a map is .png, .pdf or .tif")
    return path


def png_bytes(fig: Any) -> bytes:
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return buf.getvalue()
