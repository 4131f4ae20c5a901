"""Joint location: fit point dipoles to the logs of all holes within reach.

The data are the conditioned logs of every hole within ``reach_m`` of a
source, in a depth window around it. Unknowns: each source's position (x, y,
depth) and moment vector, plus one offset per hole (and per component for
3-axis probes) so a residual probe offset cannot masquerade as signal.

The readings are linear in the moments and offsets, so they are solved
exactly for each trial position (variable projection) and only the three
position parameters per source go to the nonlinear least-squares solver.
The covariance of the positions comes from the projected Jacobian, scaled by
the reduced chi-square when the model fits worse than the noise (elongated
bodies, deviated holes), so the stated uncertainty widens honestly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from acquisition.borehole.logs import ProcessedLog
from acquisition.forward import dipole_rows
from acquisition.numfail import swallowed


@dataclass(slots=True)
class Obs:
    """Stacked observations from several holes (one row per binned reading/component)."""

    x: np.ndarray
    y: np.ndarray
    depth: np.ndarray
    sep: np.ndarray  # sensor separation per row (gradient rows)
    comp: np.ndarray  # -1 axial gradient, 0/1/2 vector component
    hole: np.ndarray  # index into ``holes``
    value: np.ndarray
    sigma: np.ndarray
    rows: list[np.ndarray]  # per hole: grid indices of its rows (same order)
    holes: list[str]
    #: Cached sensor geometry (ENU, z up): lower sensor per row, field
    #: component per row (2 for gradients), upper sensors of gradient rows.
    lower: np.ndarray = field(init=False, repr=False)
    fcomp: np.ndarray = field(init=False, repr=False)
    grad: np.ndarray = field(init=False, repr=False)
    upper: np.ndarray = field(init=False, repr=False)
    all_grad: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.lower = np.column_stack([self.x, self.y, -self.depth]).reshape(-1, 3)
        self.grad = self.comp < 0
        self.fcomp = np.where(self.grad, 2, self.comp)
        self.upper = self.lower[self.grad].copy()
        self.upper[:, 2] += self.sep[self.grad]
        self.all_grad = bool(np.all(self.grad))

    @property
    def n(self) -> int:
        return len(self.value)

    def nuisance(self) -> np.ndarray:
        """One offset column per (hole, component)."""
        keys = self.hole * 4 + (self.comp + 1)
        uniq, inv = np.unique(keys, return_inverse=True)
        a = np.zeros((self.n, len(uniq)))
        a[np.arange(self.n), inv] = 1.0
        return a


def build_obs(plogs: Sequence[ProcessedLog], centres: Sequence[tuple[float, float, float]],
              reach_m: float, window_m: float,
              values: Mapping[str, np.ndarray] | None = None, rel_error: float = 0.0,
              extra_sigma: Mapping[str, np.ndarray] | None = None) -> Obs:
    """Rows of every hole within ``reach_m`` of a centre and ``window_m`` of its depth.

    Each row's sigma is the log's noise plus ``rel_error`` times the reading in
    quadrature: near a body the point dipole is only an approximation
    (elongated bodies, deviated holes), and without this floor a few huge
    readings next to one hole would outvote every other hole's data.
    ``extra_sigma`` (per hole, per bin) adds further terms in quadrature, e.g.
    the expected misfit of targets already subtracted from ``values``.
    """
    xs, ys, ds, seps, comps, hs, vs, sg = [], [], [], [], [], [], [], []
    rows: list[np.ndarray] = []
    holes: list[str] = []
    for pl in plogs:
        if len(pl.depth) == 0:
            continue
        sel = np.zeros(len(pl.depth), dtype=bool)
        for cx, cy, cd in centres:
            if math.hypot(pl.x - cx, pl.y - cy) <= reach_m:
                sel |= np.abs(pl.depth - cd) <= window_m
        v = pl.values if values is None else values.get(pl.hole, pl.values)
        v2 = v.reshape(len(pl.depth), -1)
        sel &= np.all(np.isfinite(v2), axis=1)
        idx = np.flatnonzero(sel)
        if len(idx) < 4:
            continue
        hi = len(holes)
        holes.append(pl.hole)
        rows.append(idx)
        ncomp = v2.shape[1]
        for c in range(ncomp):
            n = len(idx)
            xs.append(np.full(n, pl.x))
            ys.append(np.full(n, pl.y))
            ds.append(pl.depth[idx])
            seps.append(np.full(n, pl.separation))
            comps.append(np.full(n, -1 if pl.kind == "gradient" else c))
            hs.append(np.full(n, hi))
            vs.append(v2[idx, c])
            base = pl.sigma if pl.sigma > 0 else 1.0
            var = base * base + (rel_error * v2[idx, c]) ** 2
            if extra_sigma is not None and pl.hole in extra_sigma:
                var = var + extra_sigma[pl.hole].reshape(len(pl.depth), -1)[idx, c] ** 2
            sg.append(np.sqrt(var))

    def cat(a: list[np.ndarray], dtype: type = float) -> np.ndarray:
        return np.concatenate(a).astype(dtype) if a else np.zeros(0, dtype=dtype)

    return Obs(cat(xs), cat(ys), cat(ds), cat(seps), cat(comps, int), cat(hs, int), cat(vs),
               cat(sg), rows, holes)


def obs_basis(obs: Obs, source: np.ndarray) -> np.ndarray:
    """(n, 3): each row's reading per unit moment component of a dipole at ``source``."""
    return _basis_points(obs, np.asarray(source, dtype=float).reshape(1, 3))


def _basis_points(obs: Obs, sources: np.ndarray) -> np.ndarray:
    """(n, 3): the mean basis of dipoles at ``sources`` (k, 3), in one vectorised pass."""
    k, n = len(sources), obs.n
    lower = (obs.lower[None, :, :] - sources[:, None, :]).reshape(-1, 3)
    if obs.all_grad:
        out = dipole_rows(lower, 2)
        out -= dipole_rows((obs.upper[None, :, :] - sources[:, None, :]).reshape(-1, 3), 2)
    else:
        out = dipole_rows(lower, np.tile(obs.fcomp, k))
        if obs.upper.shape[0]:
            up = dipole_rows((obs.upper[None, :, :] - sources[:, None, :]).reshape(-1, 3), 2)
            out[np.tile(obs.grad, k)] -= up
    return out.reshape(k, n, 3).mean(axis=0) if k > 1 else out


#: Points along a line source (an elongated body: a uniform line of dipoles).
LINE_POINTS = 5
_LINE_T = (np.arange(LINE_POINTS) + 0.5) / LINE_POINTS * 2.0 - 1.0


def source_basis(obs: Obs, p: np.ndarray) -> np.ndarray:
    """(n, 3) basis of a source: ``p`` is (x, y, depth) for a point, or (x, y, depth,
    hx, hy, hz) for a line from centre - h to centre + h (h in ENU, metres)."""
    c = np.array([p[0], p[1], -p[2]], dtype=float)
    if len(p) == 3 or not np.any(p[3:]):
        return _basis_points(obs, c[None, :])
    h = np.asarray(p[3:6], dtype=float)
    return _basis_points(obs, c[None, :] + _LINE_T[:, None] * h[None, :])


def predict(obs: Obs, positions: Sequence[np.ndarray] | np.ndarray,
            moments: np.ndarray) -> np.ndarray:
    """Readings at ``obs`` rows from sources (each (x, y, depth[, hx, hy, hz])) with moments."""
    out = np.zeros(obs.n)
    for p, m in zip(positions, moments, strict=True):
        out += source_basis(obs, np.asarray(p, dtype=float)) @ m
    return out


@dataclass(slots=True)
class FitResult:
    positions: np.ndarray  # (k, 3) x, y, depth
    params: list[np.ndarray]  # per source: (x, y, depth) or (x, y, depth, hx, hy, hz)
    moments: np.ndarray  # (k, 3)
    sigmas: np.ndarray  # (k, 3) sigma x, y, depth
    chi2: float
    chi2_null: float
    dof: int
    success: bool
    offsets: np.ndarray

    @property
    def reduced_chi2(self) -> float:
        return self.chi2 / max(self.dof, 1)


class _Projector:
    """Removes per-(hole, component) offset and slope analytically.

    Each hole's probe offset, and what is left of its drift, are nuisance
    terms: solving them in closed form (a weighted straight line in depth per
    group) keeps the least-squares problem at three columns per source, which
    is what makes the fits fast.
    """

    def __init__(self, obs: Obs, slope: bool = True) -> None:
        keys = obs.hole * 4 + (obs.comp + 1)
        _, self.inv = np.unique(keys, return_inverse=True)
        self.ng = int(self.inv.max()) + 1 if obs.n else 0
        self.w = 1.0 / obs.sigma
        self.w2 = self.w * self.w
        self.s0 = self._sum(np.ones(obs.n))
        dmean = self._sum(obs.depth) / self.s0
        self.dc = obs.depth - dmean[self.inv]
        self.s2 = self._sum(self.dc * self.dc)
        self.slope = slope
        self.y = self.project(obs.value[:, None])[:, 0]

    def _sum(self, v: np.ndarray) -> np.ndarray:
        return np.bincount(self.inv, weights=self.w2 * v, minlength=self.ng)

    def _fit(self, v: np.ndarray) -> np.ndarray:
        """The nuisance line through ``v`` evaluated at every row."""
        mean = self._sum(v) / self.s0
        out = mean[self.inv]
        if self.slope:
            with np.errstate(invalid="ignore", divide="ignore"):
                b = np.where(self.s2 > 1e-9, self._sum(self.dc * v) / self.s2, 0.0)
            out = out + b[self.inv] * self.dc
        return out

    def project(self, m: np.ndarray) -> np.ndarray:
        """Weighted rows of ``m`` with each group's nuisance line removed."""
        out = np.empty_like(m, dtype=float)
        for j in range(m.shape[1]):
            out[:, j] = (m[:, j] - self._fit(m[:, j])) * self.w
        return out

    def offsets(self, obs: Obs, model: np.ndarray) -> np.ndarray:
        return self._sum(obs.value - model) / self.s0


def _split(params: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    out, i = [], 0
    for n in sizes:
        out.append(params[i:i + n])
        i += n
    return out


def _solve(obs: Obs, params: np.ndarray, proj: _Projector,
           sizes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    sizes = sizes or [3] * (len(params) // 3)
    cols = [source_basis(obs, p) for p in _split(params, sizes)]
    a = proj.project(np.column_stack(cols))
    coef, *_ = np.linalg.lstsq(a, proj.y, rcond=None)
    return proj.y - a @ coef, coef


def chi2_at(obs: Obs, positions: Sequence[Sequence[float] | np.ndarray]) -> float:
    """Weighted residual sum of squares with moments and offsets solved at fixed positions."""
    sizes = [len(p) for p in positions]
    flat = np.concatenate([np.asarray(p, float) for p in positions])
    r, _ = _solve(obs, flat, _Projector(obs), sizes)
    return float(r @ r)


def _squash(u: np.ndarray, limit: float) -> np.ndarray:
    """Half-axis ``h`` with ``|h| < limit`` from an unconstrained vector ``u`` (smooth, 1:1)."""
    return u / math.sqrt(1.0 + float(u @ u) / (limit * limit))


def _unsquash(h: np.ndarray, limit: float) -> np.ndarray:
    n = float(np.linalg.norm(h))
    if n >= 0.99 * limit:
        h = h * (0.99 * limit / n)
        n = 0.99 * limit
    return h / math.sqrt(1.0 - (n / limit) ** 2)


def fit(obs: Obs, init: Sequence[Sequence[float] | np.ndarray], min_depth: float = 0.1,
        max_depth: float = 40.0, pad_m: float = 5.0, max_half_length: float = 1.2,
        max_nfev: int = 40, capped: bool = False) -> FitResult:
    """Fit sources starting at ``init``: each (x, y, depth) for a point dipole or
    (x, y, depth, hx, hy, hz) for a line source (an elongated body).

    A line's half-axis components are bounded by ``max_half_length``; with
    ``capped`` its length is: the half-axis is parameterised as
    ``h = u / sqrt(1 + |u|^2 / L^2)`` (L = ``max_half_length``), so a line
    that would run longer ends at the cap rather than past it.
    """
    proj = _Projector(obs)
    sizes = [len(p) for p in init]
    k = len(sizes)
    x0, x1 = float(obs.x.min()) - pad_m, float(obs.x.max()) + pad_m
    y0, y1 = float(obs.y.min()) - pad_m, float(obs.y.max()) + pad_m
    lo_l: list[float] = []
    hi_l: list[float] = []
    for n in sizes:
        # Capped: the free vector u may be long (|u| -> inf as |h| -> L).
        lim = 20.0 * max_half_length if capped else max_half_length
        lo_l += [x0, y0, min_depth] + [-lim] * (n - 3)
        hi_l += [x1, y1, max_depth] + [lim] * (n - 3)
    lo, hi = np.array(lo_l), np.array(hi_l)
    p0 = np.concatenate([np.concatenate([np.asarray(p[:3], dtype=float),
                                         _unsquash(np.asarray(p[3:], dtype=float),
                                                   max_half_length)])
                         if len(p) == 6 and capped else np.asarray(p, dtype=float)
                         for p in init])
    p0 = np.clip(p0, lo + 1e-6, hi - 1e-6)

    def params_of(x: np.ndarray) -> np.ndarray:
        if not capped:
            return x
        out = x.copy()
        i = 0
        for n in sizes:
            if n == 6:
                out[i + 3:i + 6] = _squash(x[i + 3:i + 6], max_half_length)
            i += n
        return out

    chi2_null = float(proj.y @ proj.y)
    res = least_squares(lambda p: _solve(obs, params_of(p), proj, sizes)[0], p0,
                        bounds=(lo, hi), x_scale=0.1, diff_step=1e-4, max_nfev=max_nfev,
                        xtol=1e-5, ftol=1e-6)
    xf = params_of(res.x)
    r, coef = _solve(obs, xf, proj, sizes)
    chi2 = float(r @ r)
    dof = max(obs.n - len(p0) - 3 * k - 2 * proj.ng, 1)
    scale = max(chi2 / dof, 1.0)
    params = _split(xf, sizes)
    try:
        cov = np.linalg.pinv(res.jac.T @ res.jac) * scale
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        sig = np.array([s_[:3] for s_ in _split(sd, sizes)])
    except (np.linalg.LinAlgError, ValueError) as exc:
        swallowed("locate.fit", exc)
        sig = np.full((k, 3), math.nan)
    pos = np.array([p[:3] for p in params])
    mom = coef[: 3 * k].reshape(k, 3)
    offsets = proj.offsets(obs, predict(obs, params, mom))
    return FitResult(pos, params, mom, sig, chi2, chi2_null, dof, bool(res.success), offsets)
