"""What one fitted window reports: `FitResult` per source, with 1-sigma
uncertainties and a quality, or the cheap estimate when no fit is possible.

One-sigma uncertainties come from the full Jacobian (positions, moments and
offset) at the solution, for sample errors as large as the residual near
each source (never under the noise: a model that does not fit the data is
not allowed to claim a small error) and correlated along the walk as that
residual is (model error is smooth, so its samples are not independent).
What the survey itself cannot know (position, sensor height, a body's
shape) is added in quadrature (`SurveySigma`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from acquisition.dsp.fitcore import (
    MAX_DEPTH,
    centre_depth,
    design_points,
    design_srcs,
    solve_linear,
    src_design,
)
from acquisition.forward import (
    SensorGeometry,
    describe,
    line_points,
)
from acquisition.numfail import swallowed

__all__ = ["FitResult", "SurveySigma", "cheap_estimate", "cheap_result", "full_jacobian",
           "report_sources"]





@dataclass(slots=True)
class FitResult:
    """One located source (depth positive down, metres below ground)."""

    x: float
    y: float
    depth: float
    moment: tuple[float, float, float]
    quality: float
    sigma_x: float = math.nan
    sigma_y: float = math.nan
    sigma_depth: float = math.nan
    flags: tuple[str, ...] = ()
    method: str = "dipole_fit"
    rms_nT: float = math.nan
    n_samples: int = 0
    offset_nT: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
    #: A line source's end points (x1, y1, d1, x2, y2, d2); None for a point.
    ends: tuple[float, ...] | None = None

    @property
    def moment_abs(self) -> float:
        return float(np.linalg.norm(self.moment))

    def point_sources(self) -> np.ndarray:
        """(k, 6) rows (x, y, depth, mx, my, mz) of point dipoles with this field:
        one row for a point, the line's dipoles (sharing the moment) for a line."""
        m = np.asarray(self.moment, dtype=np.float64)
        if self.ends is None:
            return np.array([[self.x, self.y, self.depth, *m]])
        pts = line_points(np.asarray(self.ends))
        return np.hstack((pts, np.repeat(m[None, :] / len(pts), len(pts), axis=0)))


def cheap_estimate(x: np.ndarray, y: np.ndarray, v: np.ndarray,
                   geom: SensorGeometry) -> tuple[float, float, float]:
    """Centre from the |reading|²-weighted centroid, depth from the half-width.

    The half-width rule measures the full width at half maximum of the strongest
    lobe along its lane (samples within 0.3 m of the peak's x) and takes depth ≈
    0.5 × FWHM − sensor height: rough (15-25 % error) but a fine seed and the
    fall-back answer when no fit is possible.
    """
    a = np.abs(v)
    if a.size == 0 or not np.isfinite(a).any() or a.max() <= 0:
        return float(np.mean(x)) if x.size else 0.0, float(np.mean(y)) if y.size else 0.0, 0.5
    w = np.where(a >= 0.3 * a.max(), a * a, 0.0)
    cx = float(np.sum(w * x) / np.sum(w))
    cy = float(np.sum(w * y) / np.sum(w))
    p = int(np.argmax(a))
    on = np.abs(x - x[p]) < 0.3
    yy, aa = y[on], a[on] * np.sign(v[on]) * np.sign(v[p])
    half = 0.5 * a[p]
    order = np.argsort(yy)
    yy, aa = yy[order], aa[order]
    k = int(np.searchsorted(yy, y[p]))
    k = min(max(k, 0), len(yy) - 1)
    lo = k
    while lo > 0 and aa[lo - 1] >= half:
        lo -= 1
    hi = k
    while hi < len(yy) - 1 and aa[hi + 1] >= half:
        hi += 1
    fwhm = max(float(yy[hi] - yy[lo]), 0.1)
    depth = max(0.05, 0.5 * fwhm - geom.sensor_height_m * 0.5)
    return cx, cy, float(min(depth, MAX_DEPTH))


def full_jacobian(srcs: list[np.ndarray], lin: np.ndarray, x: np.ndarray, y: np.ndarray,
                   geom: SensorGeometry) -> np.ndarray:
    """d(model)/d(all parameters): per source its position parameters (3 for a
    point, 6 for a line's end points), then its moment (3); last the offset."""
    cols = []
    for s_i, ps in enumerate(srcs):
        m = lin[3 * s_i:3 * s_i + 3]
        for j in range(len(ps)):
            h = 1e-4 * max(1.0, abs(ps[j]))
            a, b = ps.copy(), ps.copy()
            a[j] += h
            b[j] -= h
            cols.append((src_design(x, y, a, geom) @ m - src_design(x, y, b, geom) @ m)
                        / (2 * h))
        cols.extend(src_design(x, y, ps, geom).T)
    cols.append(np.ones(len(x)))
    return np.column_stack(cols)


def _influence(srcs: list[np.ndarray], J: np.ndarray) -> np.ndarray:
    """(n, 3k): how each sample moves each source's x, y and depth (of a
    line, its centre) in the least-squares solution, (JᵀJ)⁺Jᵀ transposed.
    With sample errors of covariance C the covariance of those estimates is
    ``infl.T @ C @ infl``; the marginal one over every parameter of the
    joint fit (the neighbours' positions and moments, the offset)."""
    rows = np.linalg.pinv(J.T @ J) @ J.T
    cols, at = [], 0
    for s in srcs:
        if len(s) == 3:
            cols += [rows[at], rows[at + 1], rows[at + 2]]
        else:  # centre = mean of the two ends
            cols += [0.5 * (rows[at + j] + rows[at + 3 + j]) for j in range(3)]
        at += len(s) + 3
    return np.column_stack(cols)


@dataclass(frozen=True)
class SurveySigma:
    """What the data cannot tell a fit, added in quadrature to its 1-sigma.

    The fit's own covariance counts sensor noise only. A survey also carries
    errors every sample of one anomaly shares: where the sensor really was
    (rope or GNSS, the lane's wander; correlated over a metre of walk, so the
    whole anomaly moves with it) and how high (gait bob, the operator's
    height), and a real body is neither a point nor a uniform line. Measured
    on the simulator's default walk (3 cm position error, 8 cm wander, 2 cm
    bob), reported sigmas without these covered the true error a third as
    often as they claim (`docs/dsp.md`, "Uncertainty"); a team with RTK
    GNSS sets ``position_m`` lower.
    """

    #: Horizontal position uncertainty per axis (m).
    position_m: float = 0.05
    #: Sensor height uncertainty (m): adds to depth.
    height_m: float = 0.04
    #: Depth uncertainty per metre of depth (model error of real bodies: a
    #: munition case is neither a point nor a uniform line). 3.5 %: with 2 %
    #: the true depth of objects deeper than 1.5 m lay within 1 sigma for
    #: 29-73 % of them; 3.5 % brings the scenarios'
    #: coverage to 0.6-0.85 (`docs/dsp.md`, "Uncertainty").
    depth_rel: float = 0.035


#: Longest correlation length (m along the walk) taken for the misfit: an
#: anomaly's width; longer ones are lane levels, which the levelling and
#: the window's offset take out.
MAX_WALK_CORR_M = 2.0


def _walk_links(x: np.ndarray, y: np.ndarray, lanes: np.ndarray | None) -> np.ndarray:
    """(n - 1,) bool: sample i and i + 1 are neighbours along one walked pass
    (a window holds each lane's samples in walking order, lane after lane):
    same lane if known, and a step no longer than twice the median step."""
    if x.size < 2:
        return np.zeros(0, dtype=bool)
    step = np.hypot(np.diff(x), np.diff(y))
    links = step <= 2.0 * float(np.median(step)) + 1e-9
    if lanes is not None and len(lanes) == x.size:
        ln = np.asarray(lanes)
        links &= ln[1:] == ln[:-1]
    return links


def _local_misfit(srcs: list[np.ndarray], res: np.ndarray, x: np.ndarray, y: np.ndarray,
                  links: np.ndarray, geom: SensorGeometry, floor: float,
                  npar: int) -> list[tuple[float, float, float]]:
    """Per source (scale, rho, share): the residual's rms where its anomaly
    is (within 2 × its distance below the sensor, at least 1 m), never under
    ``floor`` (the noise), and how it is correlated along the walk
    (`_ar1_part`).

    The rms is local: in a wide window of quiet ground the window-wide rms
    is the noise and a source's own misfit would not count; in a wide
    window of many big bodies it is their misfit, which a small body's
    depth does not share. What a residual holds beyond white noise is model
    error (a body that is no point, the walk's position and height errors
    times the field's slope, soil, lane levels, a neighbour's misfit):
    smooth along the walk, so neighbouring samples share it, and n samples
    of it say less than n independent ones.
    """
    h = geom.sensor_height_m
    step = np.hypot(np.diff(x), np.diff(y))[links]
    top = math.exp(-float(np.median(step)) / MAX_WALK_CORR_M) if step.size else 0.0
    out = []
    for s in srcs:
        cx, cy, d = centre_depth(s)
        near = np.hypot(x - cx, y - cy) < max(1.0, 2.0 * (d + h))
        m = int(near.sum())
        if m <= npar:
            out.append((floor, 0.0, 0.0))
            continue
        r = res[near]
        scale = max(floor, float(np.sqrt(r @ r / (m - npar))))
        rho, share = _ar1_part(res, near, links, top)
        out.append((scale, rho, share))
    return out


def _ar1_part(res: np.ndarray, near: np.ndarray, links: np.ndarray,
              top: float) -> tuple[float, float]:
    """(rho, share): the residual at ``near`` split into white noise and an
    AR(1) part along the walk, of lag-1 correlation ``rho`` (at most
    ``top``) and ``share`` of the variance, from the residual's covariances
    c0, c1, c2 at lags 0, 1 and 2: white noise adds to c0 only, an AR(1)
    part of variance v adds v·rho^k at lag k, so rho = c2 / c1 and
    v = c1 / rho. The data say how much is white: the background (sensor
    or soil) need not be."""
    l1 = links & near[1:] & near[:-1]
    l2 = l1[:-1] & l1[1:]
    c0 = float(np.mean(res[near] ** 2))
    if c0 <= 0 or not l1.any():
        return 0.0, 0.0
    c1 = float(np.mean(res[:-1][l1] * res[1:][l1]))
    c2 = float(np.mean(res[:-2][l2] * res[2:][l2])) if l2.any() else 0.0
    if c1 <= 0:
        return 0.0, 0.0
    if c2 <= 0:  # correlated over a sample or so: one AR(1) of it all
        return min(c1 / c0, top), 1.0
    rho = min(c2 / c1, top)
    return rho, min(c1 / rho / c0, 1.0)


def _walk_quadratic(infl: np.ndarray, links: np.ndarray, rhos: np.ndarray) -> np.ndarray:
    """Per column c of ``infl``, Σ_ij infl[i,c] infl[j,c] rhos[c]^|i-j| over
    samples i, j on one unbroken pass (`_walk_links`): the variance an
    estimate gets from unit-variance errors with AR(1) correlation along the
    walk. Lags whose weight is under 1e-3 are left out."""
    tot = np.einsum("ij,ij->j", infl, infl)
    top = float(rhos.max()) if rhos.size else 0.0
    if top <= 0.0 or infl.shape[0] < 2:
        return tot
    kmax = min(math.ceil(math.log(1e-3) / math.log(top)), infl.shape[0] - 1)
    run = links.copy()
    for k in range(1, kmax + 1):
        if k > 1:
            run = run[:-1] & links[k - 1:]
        if not run.any():
            break
        lag = np.einsum("ij,ij->j", infl[:-k][run], infl[k:][run])
        tot += 2.0 * rhos ** k * lag
    return tot


def _misfit_sigmas(srcs: list[np.ndarray], lin: np.ndarray, x: np.ndarray, y: np.ndarray,
                   geom: SensorGeometry, misfit: list[tuple[float, float, float]],
                   links: np.ndarray,
                   judge_floor: float) -> list[tuple[float, float, float, float]]:
    """1-sigma (x, y, depth) per source (`report_sources`), for sample
    errors as `_local_misfit` measured them near that source: variance
    scale², of which ``share`` is correlated along the walk (AR(1), lag-1
    ``rho``) and the rest white. Fourth: the depth's as if all were white
    and never under ``judge_floor`` (the window's rms): what the fit's
    quality judges."""
    J = full_jacobian(srcs, lin, x, y, geom)
    try:
        infl = _influence(srcs, J)
    except np.linalg.LinAlgError as exc:
        swallowed("fitresult._misfit_sigmas", exc)
        return [(math.inf, math.inf, math.inf, math.inf)] * len(srcs)
    scale = np.repeat([m[0] for m in misfit], 3)
    rho = np.repeat([m[1] for m in misfit], 3)
    share = np.repeat([m[2] for m in misfit], 3)
    white = np.einsum("ij,ij->j", infl, infl)
    var = scale * scale * ((1.0 - share) * white + share * _walk_quadratic(infl, links, rho))
    sd = np.sqrt(np.clip(var, 0.0, None))
    sw = np.maximum(scale, judge_floor) * np.sqrt(white)
    return [(float(sd[3 * i]), float(sd[3 * i + 1]), float(sd[3 * i + 2]), float(sw[3 * i + 2]))
            for i in range(len(srcs))]


def report_sources(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
            geom: SensorGeometry, noise: float, converged: bool,
            edge_margin: float, survey_sigma: SurveySigma | None = None,
            lanes: np.ndarray | None = None) -> list[FitResult]:
    """The sources' `FitResult`: moments, 1-sigma uncertainties, quality.

    Each source's covariance is the marginal one of the window's joint fit
    (its neighbours' parameters, moments and the offset free), for sample
    errors as large as the residual near that source (never under
    ``noise``) and correlated along the walk as that residual is
    (`_local_misfit`; ``lanes`` tells where one pass ends). What the data
    cannot tell is then added in quadrature (`SurveySigma`).
    """
    ss = survey_sigma or SurveySigma()
    n = v.size
    G = design_srcs(x, y, srcs, geom)
    lin = solve_linear(G, v)
    res = G @ lin - v
    k = len(srcs)
    npar = sum(len(s) + 3 for s in srcs) + 1
    rms = float(np.sqrt(np.mean(res * res)))
    s = max(noise, rms * math.sqrt(n / max(n - npar, 1)))
    links = _walk_links(x, y, lanes)
    misfit = _local_misfit(srcs, res, x, y, links, geom, noise, 7)
    sig = _misfit_sigmas(srcs, lin, x, y, geom, misfit, links, s)
    ss_tot = float(np.sum(v * v))
    r2 = 1.0 - float(np.sum(res * res)) / ss_tot if ss_tot > 0 else 0.0
    out: list[FitResult] = []
    for si in range(k):
        extra: dict[str, float] = {}
        if len(srcs[si]) == 3:
            px, py, pd = (float(t) for t in srcs[si])
            method = "dipole_fit"
        else:
            extra = describe(srcs[si])
            px, py, pd = extra.pop("x"), extra.pop("y"), extra.pop("depth")
            method = "line_fit"
        m = (float(lin[3 * si]), float(lin[3 * si + 1]), float(lin[3 * si + 2]))
        sx_, sy_, sd_fit, sd_white = sig[si]
        sx_ = math.hypot(sx_, ss.position_m)
        sy_ = math.hypot(sy_, ss.position_m)
        sd_ = math.sqrt(sd_fit * sd_fit + ss.height_m ** 2 + (ss.depth_rel * pd) ** 2)
        flags: list[str] = []
        if not converged:
            flags.append("no_converge")
        if _at_edge(x, y, px, py, edge_margin):
            flags.append("edge")
        q = max(0.0, min(1.0, r2))
        if sd_white > 0.3 * pd + 0.1:  # the data themselves leave depth open
            q *= 0.7
        if "edge" in flags:
            q *= 0.8
        if "no_converge" in flags:
            q = min(q, 0.2)
        out.append(FitResult(x=px, y=py, depth=pd, moment=m, quality=q, sigma_x=sx_,
                             sigma_y=sy_, sigma_depth=sd_, flags=tuple(flags),
                             method=method, rms_nT=rms, n_samples=n,
                             offset_nT=float(lin[-1]), extra=extra,
                             ends=None if len(srcs[si]) == 3 else tuple(
                                 float(t) for t in srcs[si])))
    return out


def _at_edge(x: np.ndarray, y: np.ndarray, px: float, py: float, margin: float) -> bool:
    near_y = np.abs(y - py) < 1.5
    near_x = np.abs(x - px) < 1.5
    has_w = bool(np.any((x < px - margin) & near_y))
    has_e = bool(np.any((x > px + margin) & near_y))
    has_s = bool(np.any((y < py - 1.0) & near_x))
    has_n = bool(np.any((y > py + 1.0) & near_x))
    return not (has_w and has_e and has_s and has_n)


def cheap_result(x: np.ndarray, y: np.ndarray, v: np.ndarray, geom: SensorGeometry,
                  cx: float, cy: float, cd: float, flags: tuple[str, ...]) -> FitResult:
    m = (0.0, 0.0, 0.0)
    if v.size >= 4:
        try:
            G = design_points(x, y, np.array([cx, cy, cd]), geom)
            lin = solve_linear(G, v)
            m = (float(lin[0]), float(lin[1]), float(lin[2]))
        except np.linalg.LinAlgError as exc:
            swallowed("fit.cheap_result", exc)
            pass
    fl = flags + (("edge",) if v.size and _at_edge(x, y, cx, cy, 0.4) else ())
    return FitResult(x=cx, y=cy, depth=cd, moment=m, quality=0.1, flags=fl,
                     method="cheap_estimate", n_samples=int(v.size),
                     sigma_x=0.5, sigma_y=0.5, sigma_depth=max(0.5 * cd, 0.2))
