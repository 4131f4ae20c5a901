"""Coverage statement per layer: which part of the layer's volume the holes searched.

For a chosen smallest moment (e.g. 1 A m^2 for a 105 mm projectile) a point
of the layer counts as searched when, **whatever the moment's direction**, at
least one hole logged around that depth would have seen it with a peak
reading of at least ``snr_required`` times that hole's noise. Using the worst
direction matters: along a single hole a moment pointing tangentially (square
to the hole-to-object line, and level) gives no axial field at all, so one
hole alone never guarantees anything; neighbouring holes at other azimuths do.

A hole counts at depth z only if its log covers [z - w, z + w] without a gap
(``w = window_m``, 0.3 m): a gap in a log is a gap in the coverage.

The peak reading of a unit moment in the plane of the hole and the point is
tabulated once over distance and in-plane angle (`reach_table`), so the
statement for a whole layer is a table look-up per point, hole and direction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from acquisition.borehole.geometry import as_polygon, inside
from acquisition.borehole.logs import HoleLog, LogConfig, ProcessedLog, condition
from acquisition.errors import SettingError
from acquisition.forward import DEFAULT_SEPARATION_M, gradient_basis
from acquisition.validate import Range, check, check_optional, positive

_RHO = np.arange(0.05, 6.0001, 0.05)
_ALPHA = np.linspace(0.0, math.pi, 91)


@dataclass(frozen=True, slots=True)
class HoleSite:
    """A hole for coverage: collar, the logged depth range, gaps and noise."""

    hole: str
    x: float
    y: float
    top: float = 0.0
    bottom: float = math.inf
    gaps: tuple[tuple[float, float], ...] = ()
    noise_nT: float = math.nan

    def covers(self, d0: float, d1: float) -> bool:
        if d0 < self.top - 1e-9 or d1 > self.bottom + 1e-9:
            return False
        return all(g1 <= d0 or g0 >= d1 for g0, g1 in self.gaps)


@dataclass(slots=True)
class CoverageResult:
    layer_top_m: float
    layer_bottom_m: float
    min_moment_Am2: float
    snr_required: float
    step_m: float
    dz_m: float
    #: Share (0-1) of the layer's volume searched.
    fraction: float
    volume_m3: float
    searched_m3: float
    #: Horizontal reach of one hole for the worst in-plane direction (m), at
    #: the median noise: a reference figure for the operator.
    single_hole_reach_m: float
    slice_depths: np.ndarray
    slice_fraction: np.ndarray
    #: Unsearched cells merged down each column: (x, y, depth_from, depth_to).
    gaps: list[tuple[float, float, float, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def signed_off(self) -> bool:
        return not self.gaps


#: Peak-to-noise a sign-off may ask for: below 3 noise peaks pass for objects.
SNR_RANGE = Range(3.0, 1000.0)
#: Most grid cells a coverage map may have (memory: a few arrays of this size).
MAX_CELLS = 4e6

def reach_table(separation: float = DEFAULT_SEPARATION_M) -> np.ndarray:
    """Peak |axial gradient| (nT) of a 1 A m^2 moment in the hole's vertical plane.

    Shape (len(_RHO), len(_ALPHA)): distance from the hole, angle of the moment
    from the radial direction toward vertical. Depth along the hole is searched
    over +-4 m around the source.
    """
    dz = np.arange(-4.0, 4.0001, 0.02)
    out = np.empty((len(_RHO), len(_ALPHA)))
    zeros = np.zeros(len(dz))
    for i, rho in enumerate(_RHO):
        b = gradient_basis(zeros, zeros, 10.0 + dz, separation, np.array([rho, 0.0, -10.0]))
        g = np.outer(b[:, 0], np.cos(_ALPHA)) + np.outer(b[:, 2], np.sin(_ALPHA))
        out[i] = np.max(np.abs(g), axis=0)
    return out


def single_hole_reach(moment: float, noise_nT: float, snr_required: float,
                      separation: float = DEFAULT_SEPARATION_M,
                      table: np.ndarray | None = None) -> float:
    """Largest distance at which every in-plane direction still gives snr_required."""
    t = reach_table(separation) if table is None else table
    worst = moment * np.min(t, axis=1)
    ok = worst >= snr_required * noise_nT
    if not np.any(ok):
        return 0.0
    return float(_RHO[np.flatnonzero(ok)[-1]])


def _directions(n: int) -> np.ndarray:
    """Fibonacci points on the upper hemisphere (a moment and its opposite read the same)."""
    i = np.arange(n) + 0.5
    z = i / n
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    r = np.sqrt(1 - z * z)
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


def as_sites(holes: Sequence[HoleSite | ProcessedLog | HoleLog | tuple[str, float, float]],
             log_config: LogConfig | None = None) -> list[HoleSite]:
    out: list[HoleSite] = []
    for h in holes:
        if isinstance(h, HoleSite):
            out.append(h)
            continue
        if isinstance(h, HoleLog):
            h = condition(h, log_config)
        if isinstance(h, ProcessedLog):
            if len(h.depth) == 0:
                continue
            out.append(HoleSite(h.hole, h.x, h.y, h.top, h.bottom, tuple(h.gaps),
                                h.sigma_sample))
        else:
            hid, x, y = h
            out.append(HoleSite(str(hid), float(x), float(y)))
    return out


def layer_coverage(holes: Sequence[HoleSite | ProcessedLog | HoleLog | tuple[str, float, float]],
                   area: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
                   top: float, bottom: float, *, min_moment: float = 1.0,
                   noise_nT: float | None = None, snr_required: float = 8.0,
                   separation: float = DEFAULT_SEPARATION_M, step_m: float = 0.2,
                   dz_m: float = 0.25,
                   window_m: float = 0.3, n_directions: int = 64, nearest: int = 7,
                   log_config: LogConfig | None = None) -> CoverageResult:
    """Which part of the layer [top, bottom] under ``area`` the holes have searched.

    ``noise_nT`` overrides each hole's measured noise (and is the noise for
    planned holes that have no log yet; default 1 nT).
    """
    if not (bottom > top):
        raise ValueError("layer bottom must be below its top")
    if not (min_moment > 0):
        raise ValueError("min_moment must be positive")
    # a required SNR of 0 signs off any layer: refused, like every value out of range
    check("snr_required", snr_required, SNR_RANGE)
    check_optional("noise_nT", noise_nT, positive(1e5))
    check("separation", separation, positive(10.0))
    check("step_m", step_m, positive(10.0))
    poly = as_polygon(area)
    sites = as_sites(holes, log_config)
    notes: list[str] = []
    table = reach_table(separation)
    x0, y0 = poly.min(axis=0)
    x1, y1 = poly.max(axis=0)
    cells = ((x1 - x0) / step_m) * ((y1 - y0) / step_m)
    if not cells <= MAX_CELLS:
        raise SettingError(f"step_m = {step_m!r} makes {cells:.3g} grid cells over the area "
                           f"(limit {MAX_CELLS:g}): choose a coarser step")
    xs = np.arange(x0 + step_m / 2, x1, step_m)
    ys = np.arange(y0 + step_m / 2, y1, step_m)
    gx, gy = np.meshgrid(xs, ys)
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    pts = pts[inside(pts, poly)]
    zs = np.arange(top + dz_m / 2, bottom, dz_m)
    noise_default = 1.0 if noise_nT is None else float(noise_nT)
    noises = np.array([noise_nT if noise_nT is not None else
                       (s.noise_nT if s.noise_nT > 0 else noise_default) for s in sites])
    if noise_nT is None and any(not (s.noise_nT > 0) for s in sites):
        notes.append("holes without a measured noise assumed at 1 nT")
    reach = single_hole_reach(min_moment, float(np.median(noises)) if len(noises) else
                              noise_default, snr_required, separation, table)
    covered = np.zeros((len(zs), len(pts)), dtype=bool)
    if sites and len(pts):
        hxy = np.array([[s.x, s.y] for s in sites])
        k = min(nearest, len(sites))
        _, nn = cKDTree(hxy).query(pts, k=k)
        nn = nn.reshape(len(pts), k)
        dx = pts[:, 0][:, None] - hxy[nn, 0]
        dy = pts[:, 1][:, None] - hxy[nn, 1]
        rho = np.hypot(dx, dy)
        rhat = np.stack([dx, dy], axis=2) / np.maximum(rho, 1e-9)[:, :, None]
        dirs = _directions(n_directions)
        # In-plane components of every direction for every (point, hole), the
        # sampled sphere plus each hole's exactly blind direction (level and
        # tangential), which a sampled sphere would only ever brush past.
        tang = np.stack([-rhat[:, :, 1], rhat[:, :, 0]], axis=2)  # (p, k, 2)
        m_r = np.concatenate([np.einsum("pkc,dc->pkd", rhat, dirs[:, :2]),
                              np.einsum("pkc,pjc->pkj", rhat, tang)], axis=2)
        m_z = np.concatenate([np.broadcast_to(dirs[:, 2], (len(pts), k, len(dirs))),
                              np.zeros((len(pts), k, k))], axis=2)
        amp = np.hypot(m_r, m_z)
        alpha = np.mod(np.arctan2(m_z, m_r), math.pi)
        ia = np.clip(np.rint(alpha / math.pi * (len(_ALPHA) - 1)).astype(int), 0,
                     len(_ALPHA) - 1)
        fr = np.clip((rho - _RHO[0]) / (_RHO[1] - _RHO[0]), 0, len(_RHO) - 1.000001)
        i0 = np.floor(fr).astype(int)
        w1 = fr - i0
        peak = ((1 - w1)[:, :, None] * table[i0[:, :, None], ia]
                + w1[:, :, None] * table[np.minimum(i0 + 1, len(_RHO) - 1)[:, :, None], ia])
        snr = min_moment * amp * peak / noises[nn][:, :, None]
        snr[rho > _RHO[-1]] = 0.0
        cache: dict[tuple[bool, ...], np.ndarray] = {}
        for iz, z in enumerate(zs):
            valid = tuple(s.covers(z - window_m, z + window_m) for s in sites)
            if valid not in cache:
                vmask = np.array(valid)[nn]  # (p, k)
                best = np.max(np.where(vmask[:, :, None], snr, 0.0), axis=1)  # (p, d)
                cache[valid] = np.min(best, axis=1) >= snr_required
            covered[iz] = cache[valid]
    cell = step_m * step_m * dz_m
    frac_slices = covered.mean(axis=1) if len(pts) else np.zeros(len(zs))
    gaps: list[tuple[float, float, float, float]] = []
    for ip in np.flatnonzero(~np.all(covered, axis=0)):
        col = ~covered[:, ip]
        idx = np.flatnonzero(np.diff(np.concatenate([[0], col.astype(np.int8), [0]])))
        for a, b in zip(idx[::2], idx[1::2], strict=True):
            gaps.append((float(pts[ip, 0]), float(pts[ip, 1]), float(zs[a] - dz_m / 2),
                         float(zs[b - 1] + dz_m / 2)))
    total = len(pts) * len(zs) * cell
    searched = float(np.count_nonzero(covered)) * cell
    return CoverageResult(top, bottom, min_moment, snr_required, step_m, dz_m,
                          searched / total if total else 0.0, total, searched, reach, zs,
                          frac_slices, gaps, notes)
