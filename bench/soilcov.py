"""The covariance of a lateritic soil's field: soil as noise of known statistics.

Magnetic soil (`simulator.physics.SoilSpec`) is a Poisson scatter of weak
shallow dipoles: ``density_per_m2`` per m^2, depths uniform in
[depth_min_m, depth_max_m], log-normal moment magnitudes, directions mixed
between the Earth field and random. A method that knows these statistics
but not where the grains lie sees the soil's field as a noise process. It is
stationary along the ground, and by Campbell's theorem its covariance
between sensor positions p and p + d is

    R(d) = density * E|m|^2 * mean over depth of
           integral over the ground of  K(p - s)^T E[u u^T] K(p + d - s) ds,

with K the reading's response (3 components) to a unit moment at s and u the
grains' moment direction. This module computes R on a grid of horizontal
lags (the kernels' cross-correlations by FFT) and the covariance matrix of
any set of samples from it. Correlated along and across the lanes as the
soil is, it is what a generalised least-squares fit must whiten with:
taken as white noise at its variance, the soil's grain clusters buy sources
where nothing is.

Approximations, all small beside the soil's own spread: the sensor at its
nominal height (the gait bob is a few cm against the grains' 0.3-0.6 m
distance), the soil unbounded (it ends `SoilSpec.margin_m` past the survey),
lags beyond `EXTENT_M` uncorrelated (the covariance there is under 1 % of
its variance for every sensor kind).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import physics
from simulator.scenario import Scenario

#: Kernels and lags are computed within this horizontal distance (m).
EXTENT_M = 4.0
#: Grid step (m): a tenth of the nearest grain's distance from the sensor.
STEP_M = 0.025
#: Depth nodes (Gauss-Legendre) over the grains' depth range.
DEPTH_NODES = 6
#: Random directions drawn (fixed seed) for the grains' E[u u^T].
DIRECTIONS = 20000


def direction_moment(spec: physics.SoilSpec, field: physics.EarthField) -> np.ndarray:
    """E[u u^T] (3, 3) of the grains' unit moment direction, as `soil_dipoles` draws it."""
    rng = np.random.default_rng(0x501C)
    r = rng.standard_normal((DIRECTIONS, 3))
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    d = (1 - spec.remanent_fraction) * field.unit_vector()[None, :] + spec.remanent_fraction * r
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    return d.T @ d / len(d)


@dataclass(frozen=True)
class SoilCovariance:
    """R(dx, dy) (nT^2) on a grid of lags ``lags`` (m) in x and y."""

    lags: np.ndarray  # (L,), symmetric about 0, step STEP_M
    grid: np.ndarray  # (L, L), [ix, iy]

    @property
    def variance(self) -> float:
        """R(0): the soil field's variance (nT^2)."""
        c = len(self.lags) // 2
        return float(self.grid[c, c])

    def at(self, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """R at lags (dx, dy) (m), bilinear between grid nodes, 0 beyond the grid."""
        step = self.lags[1] - self.lags[0]
        fx = (np.asarray(dx, float) - self.lags[0]) / step
        fy = (np.asarray(dy, float) - self.lags[0]) / step
        last = len(self.lags) - 1
        inside = (fx >= 0) & (fx < last) & (fy >= 0) & (fy < last)
        ix = np.clip(np.floor(fx).astype(np.int64), 0, last - 1)
        iy = np.clip(np.floor(fy).astype(np.int64), 0, last - 1)
        tx, ty = fx - ix, fy - iy
        g = self.grid
        v = ((1 - tx) * (1 - ty) * g[ix, iy] + tx * (1 - ty) * g[ix + 1, iy]
             + (1 - tx) * ty * g[ix, iy + 1] + tx * ty * g[ix + 1, iy + 1])
        return np.where(inside, v, 0.0)

    def matrix(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Covariance (n, n) of the soil's field at sensor positions (x, y)."""
        return self.at(x[:, None] - x[None, :], y[:, None] - y[None, :])


def soil_covariance(sc: Scenario, kind: str | None = None) -> SoilCovariance | None:
    """The covariance of scenario ``sc``'s soil field as its sensor reads it
    (None: no soil)."""
    spec = sc.soil
    if spec is None or spec.density_per_m2 <= 0 or spec.moment_Am2 <= 0:
        return None
    kind = kind or sc.sensor.kind
    n = round(EXTENT_M / STEP_M)
    ax = np.arange(-n, n + 1) * STEP_M
    gx, gy = np.meshgrid(ax, ax, indexing="ij")
    x, y = gx.ravel(), gy.ravel()
    z = np.full(x.size, sc.sensor.height_m)
    nodes, weights = np.polynomial.legendre.leggauss(DEPTH_NODES)
    half = 0.5 * (spec.depth_max_m - spec.depth_min_m)
    depths = spec.depth_min_m + half * (nodes + 1)
    weights = 0.5 * weights  # a mean over the depth range
    size = 2 * len(ax)  # zero padding: linear, not circular, correlation
    dmom = direction_moment(spec, sc.field)
    spec_sum = np.zeros((size, size))
    for depth, wd in zip(depths, weights, strict=True):
        ffts = []
        for e in np.eye(3):
            k = physics.reading(kind, x, y, z, np.array([[0.0, 0.0, -depth]]), e[None, :],
                                field=sc.field, separation_m=sc.sensor.separation_m)
            ffts.append(np.fft.rfft2(k.reshape(gx.shape), s=(size, size)))
        acc = sum(dmom[a, b] * np.conj(ffts[a]) * ffts[b] for a in range(3) for b in range(3))
        spec_sum = spec_sum + wd * np.fft.irfft2(acc, s=(size, size))
    # irfft2 index j is lag j (j < size/2) or j - size: centre it, keep |lag| <= EXTENT_M.
    corr = np.fft.fftshift(spec_sum)[size // 2 - n:size // 2 + n + 1,
                                     size // 2 - n:size // 2 + n + 1]
    m2 = spec.moment_Am2**2 * np.exp(2 * spec.moment_spread**2)  # E|m|^2, log-normal
    grid = spec.density_per_m2 * m2 * STEP_M**2 * corr
    return SoilCovariance(lags=ax, grid=grid)
