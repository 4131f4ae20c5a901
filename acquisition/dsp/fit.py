"""Locate signals: cheap estimates, then a point-dipole least-squares fit.

The reading is linear in the moment, so the fit is separable (variable
projection): the optimiser moves only (x, y, depth) of each source and, for
every trial position, the moments and a constant offset are solved by linear
least squares. That makes the fit fast and free of moment seeds. Several seeds
(weighted centre and peak position, cheap depth and a spread of depths) are
tried and the best kept.

One-sigma uncertainties come from the full Jacobian (positions, moments and
offset) at the solution, scaled by max(noise, residual rms): a model that does
not fit the data is not allowed to claim a small error.

Overlapping signals: after a one-source fit, more sources are seeded where the
residual still holds a signal and fitted jointly with their neighbours; each
is kept only if it clearly explains more (BIC over its own surroundings) and
passes the pair rules that stop an elongated body from splitting in two. In
broad clusters the residual is re-levelled per lane and searched like a lane
for weak signals (`_residual_peaks`). Weak sources beside strong ones are
re-placed on their own near data (`_polish_weak`), and on magnetic ground the
final positions come from a Huber-reweighted refit (`_robust_refine`).

Survey-wide clusters (``joint=True``) add: a refit moving every source at
once on re-levelled lanes (`_joint_refit`), a second judge for isolated new
sources with the far ones held, re-centring of isolated sources on their
own window (`_recentre_isolated`) and the removal of deep sources a free
lane offset explains as well (`_drop_level_explained`). Every window gets
the split of deep sources fitted as one (`_split_deep`: two bombs about
their depth apart give one anomaly on any sensor). Those steps live in
`broadfit`, the
refit of strong points as line sources in `elongate`, and the
least-squares building blocks (designs, LM runs, local views, misfit sigma,
pair rules) in `fitcore`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from acquisition.dsp.broadfit import (
    _add_isolated,
    _drop_level_explained,
    _joint_refit,
    _recentre_isolated,
    _relevel,
    _split_deep,
)
from acquisition.dsp.elongate import _elongate, _replace_beside_lines
from acquisition.dsp.euler import euler_locate
from acquisition.dsp.fitcore import (
    MAX_DEPTH,
    POS_SIGMA_M,
    _bic_gain,
    _centre_depth,
    _centre_point,
    _chi2_drop,
    _design,
    _design_srcs,
    _dist_to_src,
    _Fit,
    _flat,
    _fold,
    _index,
    _inside,
    _local_res,
    _local_view,
    _misfit_sigma,
    _moment_sizes,
    _pairs_plausible,
    _put_back,
    _refit_local,
    _run,
    _run_local,
    _solve_linear,
    _src_design,
    residual,
)
from acquisition.events import SIZE_CLASSES
from acquisition.forward import (
    LINE_POINTS,
    SensorGeometry,
    describe,
    design_batch,
    design_matrix,
    line_points,
)
from acquisition.numfail import swallowed

MIN_DEPTH = 0.0
#: Moment (A m^2) from which a source is an aircraft bomb (`events.SIZE_CLASSES`).
BOMB_MOMENT = next(lo for name, lo, _hi in SIZE_CLASSES if name == "aircraft_bomb")


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


def _full_jacobian(srcs: list[np.ndarray], lin: np.ndarray, x: np.ndarray, y: np.ndarray,
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
            cols.append((_src_design(x, y, a, geom) @ m - _src_design(x, y, b, geom) @ m)
                        / (2 * h))
        cols.extend(_src_design(x, y, ps, geom).T)
    cols.append(np.ones(len(x)))
    return np.column_stack(cols)


def _uncertainty(srcs: list[np.ndarray], lin: np.ndarray, x: np.ndarray, y: np.ndarray,
                 geom: SensorGeometry, scale: float) -> list[tuple[float, float, float]]:
    """1-sigma (x, y, depth) per source; of a line, those of its centre."""
    J = _full_jacobian(srcs, lin, x, y, geom)
    try:
        cov = np.linalg.pinv(J.T @ J) * scale * scale
    except np.linalg.LinAlgError as exc:
        swallowed("fit._uncertainty", exc)
        return [(math.inf, math.inf, math.inf)] * len(srcs)
    out, at = [], 0
    for s in srcs:
        if len(s) == 3:
            d = np.diag(cov)[at:at + 3]
        else:
            # Centre = mean of the two ends: var = (var1 + var2 + 2 cov12) / 4.
            c = cov[at:at + 6, at:at + 6]
            d = np.array([0.25 * (c[j, j] + c[j + 3, j + 3] + 2 * c[j, j + 3]) for j in range(3)])
        sd = np.sqrt(np.clip(d, 0, None))
        out.append((float(sd[0]), float(sd[1]), float(sd[2])))
        at += len(s) + 3
    return out


GRID_DEPTHS = (0.05, 0.2, 0.4, 0.7, 1.1, 1.6, 2.3, 3.2, 4.5, 6.0)
GRID_DX = (-0.5, 0.0, 0.5)
GRID_DY = (-0.8, -0.4, 0.0, 0.4, 0.8)


def _grid_seed(x: np.ndarray, y: np.ndarray, v: np.ndarray, geom: SensorGeometry,
               fixed: np.ndarray, sx: float, sy: float, keep: int = 2,
               sides: bool = False) -> list[np.ndarray]:
    """Best few (x, y, depth) for one more source on a small grid around (sx, sy).

    Existing sources stay where they are; only the moments are re-solved for
    each candidate. All candidates are solved at once (batched normal
    equations), so the grid costs about as much as two or three LM steps and
    removes the local minima a single LM start can fall into (mostly in depth).
    """
    base = [design_matrix(x, y, fixed[3 * k], fixed[3 * k + 1], fixed[3 * k + 2], geom)
            for k in range(len(fixed) // 3)]
    base.append(np.ones((len(x), 1)))
    B = np.hstack(base)
    D, OX, OY = np.meshgrid(GRID_DEPTHS, GRID_DX, GRID_DY, indexing="ij")
    cx, cy, cd = sx + OX.ravel(), sy + OY.ravel(), D.ravel()
    Gc = design_batch(x, y, cx, cy, cd, geom)  # (c, n, 3)
    c = Gc.shape[0]
    G = np.concatenate((np.broadcast_to(B, (c, *B.shape)), Gc), axis=2)
    Gt = G.transpose(0, 2, 1)
    A = Gt @ G
    scale = np.sqrt(np.einsum("cii->ci", A))
    scale[scale == 0] = 1.0
    A = A / (scale[:, :, None] * scale[:, None, :])
    A[:, np.arange(A.shape[1]), np.arange(A.shape[1])] += 1e-10
    b = (Gt @ v) / scale
    try:
        sol = np.linalg.solve(A, b[..., None])[..., 0] / scale
    except np.linalg.LinAlgError as exc:
        swallowed("fit._grid_seed", exc)
        sol = np.stack([np.linalg.lstsq(A[i], b[i], rcond=None)[0] for i in range(c)]) / scale
    r = (G @ sol[..., None])[..., 0] - v[None, :]
    cost = np.einsum("cn,cn->c", r, r)
    out, seen_d = [], set()
    for i in np.argsort(cost):
        d = float(cd[i])
        if d in seen_d:  # keep distinct depths: the grid's worst ambiguity
            continue
        seen_d.add(d)
        out.append(np.array([cx[i], cy[i], d]))
        if len(out) >= keep:
            break
    if sides:
        # Also the best start on each side across the lanes: a weak signal seen
        # on one lane fits nearly as well mirrored across it, and LM started on
        # the wrong side never crosses the lane.
        have = {round(float(o[0]) - sx, 6) for o in out}
        for dx in GRID_DX:
            if round(dx, 6) in have:
                continue
            on = np.flatnonzero(np.isclose(cx - sx, dx))
            i = int(on[np.argmin(cost[on])])
            out.append(np.array([cx[i], cy[i], float(cd[i])]))
    return out


def _new_source_seed(x: np.ndarray, y: np.ndarray, res: np.ndarray, level: np.ndarray,
                     thr: float, rel: float,
                     blocked: np.ndarray | None = None,
                     ) -> tuple[float, float, float, float] | None:
    """Where the residual says another source sits, or None if nothing is left.

    A residual counts only above ``thr`` and above ``rel`` × the model there:
    a single dipole never fits an elongated body perfectly, and that misfit
    scales with the signal, so it must not turn into a phantom neighbour.
    """
    apred = np.abs(level)
    excess = np.abs(res) - np.maximum(thr, rel * apred)
    if blocked is not None:
        excess = np.where(blocked, -1.0, excess)
    a = np.abs(res)
    for j in np.argsort(-excess)[:30]:
        j = int(j)
        if excess[j] <= 0:
            return None
        d = np.hypot(x - x[j], y - y[j])
        # Misfit of a strong source spreads around it (zero crossings move), so
        # compare with the strongest model value within a metre, not at j only.
        if a[j] < rel * float(apred[d < 1.0].max()):
            continue
        near = (d < 2.0) & (a >= 0.3 * a[j])
        w = a[near] ** 2
        return (float(np.sum(w * x[near]) / np.sum(w)), float(np.sum(w * y[near]) / np.sum(w)),
                float(x[j]), float(y[j]))
    return None


#: Step 2b of `fit_sources`: sources of this moment (A m^2; the mortar class)
#: get a try for a weak neighbour from a ring of shallow starts.
RING_MIN_MOMENT = 0.05
RING_MAX_MOMENT = 3.0
#: Under this moment a body is short (mortar class): the long-body pair rule
#: does not apply between it and its ring neighbour.
SHORT_BODY_MOMENT = 0.3
#: Beside a longer body (projectile class) a ring neighbour must be this shallow (m).
RING_MAX_DEPTH_LONG = 0.6
RING_RADII = (0.8, 1.1, 1.4)
RING_DEPTH = 0.25
#: ... and it must pay more than the usual BIC bar: it was not seen on its own.
RING_GAIN = 30.0
#: The body's own misfit (a mortar is no point: 0.35 m long, a few tenths of a
#: metre under the sensor) split off looks like a neighbour by that bar, so
#: the new source is also judged in the chi-square weighted by what the body
#: alone may misfit (`_misfit_sigma`: a few cm of position error on its
#: slopes, 5 % of its field for its shape). Beside a mortar-sized body
#: it must pay `RING_GAIN` there too; beside a projectile-sized one, where
#: the position error on the steeper slopes leaves a real bomblet 0.9 m away
#: little to pay with and the pair rules hold, a positive gain.
RING_WEIGHTED_GAIN_SHORT = RING_GAIN
RING_WEIGHTED_GAIN_LONG = 0.0


def fit_sources(x: np.ndarray, y: np.ndarray, v: np.ndarray, geom: SensorGeometry,
                noise: float, *, max_sources: int = 10, min_samples: int = 12,
                edge_margin: float = 0.4, thr: float = 0.0, rel_misfit: float = 0.15,
                min_sep_m: float = 0.7, close_m: float = 1.6, pair_ratio: float = 0.35,
                hints: list[tuple[float, float]] | None = None, max_hints: int = 12,
                footprint: tuple[float, float, float, float] | None = None,
                max_residual_rounds: int = 3, residual_budget: int = 8,
                polish: bool = True, robust: bool = False, bic_gain: float = 10.0,
                lanes: np.ndarray | None = None, elongate: bool = True,
                joint: bool = False,
                survey_sigma: SurveySigma | None = None) -> list[FitResult]:
    """Fit as many dipoles as the data ask for (up to ``max_sources``).

    Greedy with joint refinement: fit one source; while the residual still
    holds a signal over the detection threshold (and over the misfit a single
    dipole leaves on an elongated body), seed one more source there on a grid,
    refit all jointly, and keep it only if it clearly pays (BIC) and sits at
    least ``min_sep_m`` from the others. Never returns an empty list for
    non-empty input: a failed or impossible fit gives the cheap estimate with
    flags and a low quality. ``footprint`` (x0, x1, y0, y1) is where the
    signal was detected: a source placed outside it is explaining a neighbour's
    field, so it is refused. ``survey_sigma``: what the survey itself cannot
    know (position, sensor height), added to each reported 1-sigma
    (`SurveySigma`; the defaults if None). ``joint``: the window is a broad
    cluster (the caller's call; with ``lanes``, the lane of each sample, it
    also re-levels and tests lane offsets): the steps in the module docstring.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    n = v.size
    noise = max(float(noise), 1e-6)
    thr = max(float(thr), 3.0 * noise)
    if footprint is None and n:
        footprint = (float(x.min()) - 1.0, float(x.max()) + 1.0,
                     float(y.min()) - 1.0, float(y.max()) + 1.0)
    cx, cy, cd = cheap_estimate(x, y, v, geom)
    if n < min_samples:
        return [_cheap_result(x, y, v, geom, cx, cy, cd, ("few_samples", "cheap_estimate"))]

    best = None
    try:
        seeds = _grid_seed(x, y, v, geom, np.empty(0), cx, cy, keep=2)
        for sd in seeds:
            r = _run(sd, x, y, v, geom)
            if np.isfinite(r.cost) and (best is None or r.cost < best.cost):
                best = r
    except (ValueError, np.linalg.LinAlgError) as exc:
        swallowed("fit.fit_sources", exc)
        best = None
    if best is None or not _inside(best.x, footprint):
        return [_cheap_result(x, y, v, geom, cx, cy, cd, ("no_converge", "cheap_estimate"))]
    assert footprint is not None  # _inside is False without one

    p = best.x
    converged = bool(best.status > 0)

    def try_add(p: np.ndarray, pred: np.ndarray, sx: float, sy: float) -> _Fit | None:
        try:
            pts = [p[3 * i:3 * i + 3] for i in range(len(p) // 3)]
            near, vn, lx, ly, lv = _local_view(pts, x, y, v, geom, sx, sy, 3.0)
            pn = _flat([pts[i] for i in near])
            seeds = _grid_seed(lx, ly, lv, geom, pn, sx, sy, keep=2, sides=True)
            cand = expand(pts, near, best_start(pn, seeds[:2], sx, sy, vn, lx, ly, lv))
            verdict = judge(p, pred, cand, sx, sy)
            if verdict == "too_close" and len(seeds) > 2:
                # Beside a strong source a weak signal seen on one lane has a
                # mirror image across that lane, and LM started on the wrong
                # side never crosses it: the mirror lands too close to the
                # neighbour and is refused. Start once more from the other
                # sides of the lane.
                cand = expand(pts, near, best_start(pn, seeds[2:], sx, sy, vn, lx, ly, lv))
                verdict = judge(p, pred, cand, sx, sy)
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("fit.try_add", exc)
            return None
        return cand if verdict == "ok" else None

    def expand(pts: list[np.ndarray], near: list[int], cand: _Fit | None) -> _Fit | None:
        """A candidate fitted among the near sources, back among all of them."""
        if cand is None:
            return None
        sub = [cand.x[3 * j:3 * j + 3] for j in range(len(cand.x) // 3)]
        return _Fit(_flat(_put_back(pts, near, sub)), cand.cost, cand.status)

    def best_start(p: np.ndarray, seeds: list[np.ndarray], sx: float, sy: float,
                   vw: np.ndarray, lx: np.ndarray, ly: np.ndarray,
                   lv: np.ndarray) -> _Fit | None:
        """The cheapest local fit of one more source over the given starts
        (``vw``: the window's data, ``lx, ly, lv``: the part judged)."""
        cand = None
        k = len(p) // 3
        for g in seeds:
            part = _run_local(np.concatenate((p, g)), [k], x, y, vw, geom, (sx, sy), 3.0)
            if not np.isfinite(part.cost):
                continue
            # Refine with the neighbours free too, unless that drags the new
            # source off the signal it was seeded on.
            nx, ny = part.x[-3], part.x[-2]
            nb = [i for i in range(k) if math.hypot(p[3 * i] - nx, p[3 * i + 1] - ny) < 2.5]
            r = part
            if nb:
                joint = _run_local(part.x, [*nb, k], x, y, vw, geom, (nx, ny), 3.5)
                if (np.isfinite(joint.cost)
                        and math.hypot(joint.x[-3] - nx, joint.x[-2] - ny) <= 0.5):
                    r = joint
            res_r = residual(r.x, lx, ly, lv, geom)
            r = _Fit(r.x, 0.5 * float(res_r @ res_r), r.status)
            if cand is None or r.cost < cand.cost:
                cand = r
        return cand

    def judge(p: np.ndarray, pred: np.ndarray, cand: _Fit | None, sx: float,
              sy: float) -> str:
        """"ok" if the new source pays its way, else why not."""
        if cand is None:
            return "no_fit"
        q = cand.x
        if math.hypot(q[-3] - sx, q[-2] - sy) > 1.5 or not _inside(q, footprint):
            return "off_seed"
        Gq = _design(x, y, q, geom)
        # Judge the new source where it acts (2 m around it): elsewhere in a
        # wide window the misfit of a strong neighbour would drown its gain.
        loc = np.hypot(x - q[-3], y - q[-2]) < 2.0
        n_l = int(loc.sum())
        if n_l <= 7:
            return "few_samples"
        lin_q = _solve_linear(Gq, v)
        r_old = (v - pred)[loc]
        r_new = (v - Gq @ lin_q)[loc]
        gain = _bic_gain(float(r_old @ r_old), float(r_new @ r_new), n_l)
        if gain <= bic_gain and joint:
            # A source with no other within reach, judged as the local fits
            # are: on its own samples, every other source held at its
            # whole-window moments. In a survey-wide cluster the moments
            # solved over the whole window serve the strongest source's
            # misfit, and a bomb 10 m from a 6600 nT one bought "no gain"
            # Only when isolated: beside a strong
            # source its re-solved moment takes up its misfit, and phantoms
            # paid.
            pts = [q[3 * j:3 * j + 3] for j in range(len(q) // 3)]
            near, _vw, lx, ly, lv = _local_view(pts, x, y, v, geom, q[-3], q[-2], 2.0)
            if near == [len(pts) - 1] and lx.size > 7:
                r_alone = _local_res(pts[-1:], lx, ly, lv, geom)
                r_none = lv - float(np.mean(lv))
                gain = _bic_gain(float(r_none @ r_none), float(r_alone @ r_alone), lx.size)
        if gain <= bic_gain:
            return "no_gain"
        if not _pairs_plausible(q, lin_q, min_sep_m, close_m, pair_ratio):
            return "too_close"
        return "ok"

    def try_ring(p: np.ndarray, i: int, G: np.ndarray, lin: np.ndarray) -> _Fit | None:
        """One more source beside source ``i`` if it is mortar- or projectile-sized
        (see 2b); ``G``, ``lin``: the window's design and moments for ``p``."""
        k = len(p) // 3
        m_i = float(np.linalg.norm(lin[3 * i:3 * i + 3]))
        if not RING_MIN_MOMENT <= m_i < RING_MAX_MOMENT:
            return None
        keep_i = m_i >= SHORT_BODY_MOMENT  # a long body: its own pair rule holds
        if keep_i and robust:
            # On magnetic ground a grain cluster beside a projectile looks just
            # like the scrap this looks for (one more false pick, no recall).
            return None
        cx, cy = float(p[3 * i]), float(p[3 * i + 1])
        # No fit can gain more than down to the noise: if the misfit left
        # around the source cannot pay the bar even then, there is nothing to
        # find (and six LM runs are saved; 0.8: the noise is an estimate).
        around = np.hypot(x - cx, y - cy) < 2.0
        n_a = int(around.sum())
        if n_a <= 7:
            return None
        r_a = (v - G @ lin)[around]
        if _bic_gain(float(r_a @ r_a), 0.8 * n_a * noise * noise, n_a) <= RING_GAIN:
            return None
        pts = [p[3 * j:3 * j + 3] for j in range(k)]
        try:
            near, vn, lx, ly, lv = _local_view(pts, x, y, v, geom, cx, cy, 2.5)
            pn = _flat([pts[j] for j in near])
            base = _design(lx, ly, pn, geom)
            starts = [np.array([cx + r * math.cos(a), cy + r * math.sin(a), RING_DEPTH])
                      for r in RING_RADII for a in np.radians(np.arange(0.0, 360.0, 45.0))]
            costs = []
            for g in starts:
                Gc = np.hstack((base, design_matrix(lx, ly, g[0], g[1], g[2], geom)))
                r = Gc @ _solve_linear(Gc, lv) - lv
                costs.append(float(r @ r))
            ii = near.index(i)
            best: _Fit | None = None
            # The body and the new source together, from the three best starts:
            # split off the weak one, the body moves back onto its own centre.
            for j in np.argsort(costs)[:3]:
                part = _run_local(np.concatenate((pn, starts[j])), [len(pn) // 3], x, y, vn,
                                  geom, (cx, cy), 2.5)
                joint = _run_local(part.x, [ii, len(pn) // 3], x, y, vn, geom, (cx, cy), 2.5)
                if np.isfinite(joint.cost) and (best is None or joint.cost < best.cost):
                    best = joint
            cand = expand(pts, near, best)
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("fit.try_ring", exc)
            return None
        if cand is None or not np.isfinite(cand.cost):
            return None
        q = cand.x
        if not _inside(q, footprint):
            return None
        Gq = _design(x, y, q, geom)
        lq = _solve_linear(Gq, v)
        loc = np.hypot(x - q[-3], y - q[-2]) < 2.0
        n_l = int(loc.sum())
        if n_l <= 7:
            return None
        r_old = (v - G @ lin)[loc]
        r_new = (v - Gq @ lq)[loc]
        gain = _bic_gain(float(r_old @ r_old), float(r_new @ r_new), n_l)
        m_new = float(np.linalg.norm(lq[-4:-1]))
        m_old = float(np.linalg.norm(lq[3 * i:3 * i + 3]))
        sep = math.hypot(q[-3] - q[3 * i], q[-2] - q[3 * i + 1])
        # The pair rules, with the close-pair radius of a short body: the new
        # source must be weaker and shallower than its neighbour, and clear of
        # every other source by the usual rules.
        others = np.concatenate([q[3 * j:3 * j + 3] for j in range(k) if j != i or keep_i]
                                + [q[-3:]])
        lo = np.concatenate([lq[3 * j:3 * j + 3] for j in range(k) if j != i or keep_i]
                            + [lq[-4:-1]])
        if (gain <= RING_GAIN or sep < min_sep_m or m_new >= m_old
                or q[-1] >= q[3 * i + 2]
                # beside a projectile, only near-surface scrap: deeper, a
                # second source is the body's own misfit split off
                or (keep_i and q[-1] > RING_MAX_DEPTH_LONG)
                or ((k > 1 or keep_i) and not _pairs_plausible(others, lo, min_sep_m, close_m,
                                                   pair_ratio))):
            return None
        sig2 = _misfit_sigma(pts, x, y, v, geom, noise, POS_SIGMA_M)[loc] ** 2
        w_gain = _chi2_drop(r_old, r_new, sig2, robust) - 6 * math.log(n_l)
        if w_gain <= (RING_WEIGHTED_GAIN_LONG if keep_i else RING_WEIGHTED_GAIN_SHORT):
            return None
        return cand

    def misfit_level(p: np.ndarray, falloff: bool = True) -> np.ndarray:
        """How much a single dipole may misfit each sample: |field of each source|
        × (depth + h) / distance, summed. An elongated body's misfit is a
        higher multipole and falls off one power of distance faster than its
        field, so far from a strong source a weak signal still counts."""
        G = _design(x, y, p, geom)
        lin = _solve_linear(G, v)
        out = np.zeros(n)
        zs = geom.sensor_height_m
        for i in range(len(p) // 3):
            f = np.abs(G[:, 3 * i:3 * i + 3] @ lin[3 * i:3 * i + 3])
            z = p[3 * i + 2] + zs
            r = np.sqrt((x - p[3 * i]) ** 2 + (y - p[3 * i + 1]) ** 2 + z * z)
            out += f * (z / r) if falloff else f
        return out

    def model(p: np.ndarray) -> np.ndarray:
        G = _design(x, y, p, geom)
        return G @ _solve_linear(G, v)

    blocked = np.zeros(n, dtype=bool)
    refusals = 0
    room = lambda p: (len(p) // 3 < max_sources  # noqa: E731
                      and n >= (len(p) // 3 + 1) * min_samples)
    # 1) Greedy on the residual's largest unexplained signal.
    while room(p) and refusals < 6:
        pred = model(p)
        seed = _new_source_seed(x, y, v - pred, misfit_level(p), thr, rel_misfit, blocked)
        if seed is None:
            break
        sx, sy, jx, jy = seed
        cand = try_add(p, pred, sx, sy)
        if cand is None:
            # Misfit or a neighbour's field there: look elsewhere, a few times.
            blocked |= (np.hypot(x - sx, y - sy) < 1.5) | (np.hypot(x - jx, y - jy) < 1.5)
            refusals += 1
            continue
        p, converged = cand.x, converged and bool(cand.status > 0)
        refusals = 0
    if joint:
        p, v = _joint_refit(p, x, y, v, geom, lanes, thr, (min_sep_m, close_m, pair_ratio),
                            footprint)
    # 2) Every detected lane peak that no source accounts for yet gets its try:
    #    in a wide cluster the greedy pass can run out of tries near a strong,
    #    elongated source before it reaches a weak signal at the far end.
    tries = 0
    for hx, hy in hints or ():
        if not room(p) or tries >= max_hints:
            break
        k = len(p) // 3
        if min(math.hypot(hx - p[3 * i], hy - p[3 * i + 1]) for i in range(k)) < 1.5:
            continue
        pred = model(p)
        near = np.hypot(x - hx, y - hy) < 1.0
        if not near.any():
            continue
        peak_res = float(np.max(np.abs((v - pred)[near])))
        if peak_res < max(thr, rel_misfit * float(np.max(misfit_level(p)[near]))):
            continue
        a = np.abs((v - pred)[near])
        w = a * a
        sx = float(np.sum(w * x[near]) / np.sum(w))
        sy = float(np.sum(w * y[near]) / np.sum(w))
        tries += 1
        cand = try_add(p, pred, sx, sy)
        if cand is not None:
            p, converged = cand.x, converged and bool(cand.status > 0)
    # 2b) A weak object about a metre from a small body (a bomblet beside a
    #     mortar or projectile) hides in the body's single-dipole fit: the
    #     residual stays under the threshold and its lane peak merges with the
    #     body's. Beside each such source, one more source is tried from a
    #     ring of shallow starts; beside a mortar-sized body the pair rules
    #     meant for long bodies (a bomb's misfit looks like a neighbour) do
    #     not apply.
    G_p = lin_p = None
    for i in range(len(p) // 3):
        if not room(p):
            break
        if G_p is None or lin_p is None:  # once per model, not once per source tried
            G_p = _design(x, y, p, geom)
            lin_p = _solve_linear(G_p, v)
        cand = try_ring(p, i, G_p, lin_p)
        if cand is not None:
            p, converged = cand.x, converged and bool(cand.status > 0)
            G_p = lin_p = None
    # 3) Detection on the residual: with the fitted sources subtracted, every
    #    remaining local maximum over the threshold (and over the misfit level)
    #    is a signal the detector would have found on its own, had the broad
    #    anomaly of a big neighbour not swallowed it into one wide segment.
    #    Rounds repeat while there are untried maxima (a new source changes the
    #    residual); the caller enables this only for broad clusters.
    if lanes is not None and len(p) > 3:
        # A broad anomaly covering most of a lane biases that lane's level
        # (total field, big shallow bombs): re-level each lane of the window
        # on the residual of the sources found so far, before the search for
        # weak signals whose size is that of the bias.
        v = _relevel(v, v - model(p), np.asarray(lanes), thr)
    tried: list[tuple[float, float]] = []
    for _round in range(max_residual_rounds):
        if not room(p):
            break
        picks = _residual_peaks(x, y, v - model(p), misfit_level(p), thr, rel_misfit,
                                p, budget=residual_budget, tried=tried,
                                field=misfit_level(p, falloff=False))
        for sx, sy in picks:
            if not room(p):
                break
            k = len(p) // 3
            # Skipped or tried, it is not picked again: a pick's weighted
            # centre can sit closer to a source than its peak sample, and,
            # skipped every round, it came back every round and took a place
            # of the round's budget.
            tried.append((sx, sy))
            if min(math.hypot(sx - p[3 * i], sy - p[3 * i + 1]) for i in range(k)) < 1.0:
                continue
            cand = try_add(p, model(p), sx, sy)
            if cand is not None:
                p, converged = cand.x, converged and bool(cand.status > 0)
        if not picks:
            break
    if joint and len(p) > 3:
        p = _recentre_isolated(p, x, y, v, geom)
    if polish and len(p) > 3:
        p = _polish_weak(p, x, y, v, geom)
    if robust:
        p = _robust_refine(p, x, y, v, geom, noise)
    srcs = [p[3 * i:3 * i + 3] for i in range(len(p) // 3)]
    if elongate:
        points = srcs
        srcs = _elongate(srcs, x, y, v, geom, noise, thr, bic_gain, robust=robust)
        if joint:
            srcs = _replace_beside_lines(srcs, points, x, y, v, geom, noise, bic_gain)
        # Two bombs a depth apart give one anomaly in any window, not only a
        # survey-wide one: the greedy pair rules refuse the second source.
        srcs = _split_deep(srcs, x, y, v, geom, noise, bic_gain, footprint, lanes=lanes,
                           robust=robust)
        if len(srcs) < max_sources:
            srcs = _search_near_strong(srcs, x, y, v, geom, noise, thr, bic_gain, robust=robust)
        srcs = _drop_tails(srcs, x, y, v, geom, noise, bic_gain, robust=robust)
        srcs = _drop_body_lobes(srcs, x, y, v, geom, noise, bic_gain, robust=robust)
    # A joint refit of a survey-wide window can walk a source out of the
    # signal's footprint or down to the depth bound, where it models a
    # regional level, not an object (e.g. 117 m outside the
    # survey, 12 m deep): it is no target.
    kept = [s for s in srcs if _inside(_centre_point(s), footprint)]
    if not kept:
        return [_cheap_result(x, y, v, geom, cx, cy, cd, ("no_converge", "cheap_estimate"))]
    if joint and lanes is not None and len(kept) > 1:
        kept = _drop_level_explained(kept, x, y, v, geom, noise, lanes, bic_gain, robust=robust)
    if joint and lanes is not None:
        kept = _add_isolated(kept, x, y, v, geom, noise, thr, bic_gain, np.asarray(lanes),
                             footprint)
    srcs = _drop_subthreshold(kept, x, y, v, geom, thr)
    return _finish(srcs, x, y, v, geom, noise, converged, edge_margin, survey_sigma)


def _residual_peaks(x: np.ndarray, y: np.ndarray, res: np.ndarray, level: np.ndarray,
                    thr: float, rel: float, p: np.ndarray, budget: int = 8,
                    radius: float = 1.5, tried: list[tuple[float, float]] | None = None,
                    field: np.ndarray | None = None) -> list[tuple[float, float]]:
    """Distinct residual maxima that look like signals, strongest first.

    A candidate must exceed ``thr`` and ``rel`` × the misfit level, have a
    second such sample within 0.35 m (a lone spike is not a signal, as in the
    detector), and lie at least a metre from every fitted source and every
    place ``tried`` before. They are ranked by how far they stand above what
    the fitted sources may misfit there (|r| / max(thr, rel × level)), not by
    size: next to a strong elongated body the misfit is large in nT but
    expected, while a weak isolated residual is a real signal. Maxima are
    taken greedily with suppression within ``radius`` (vectorised: a few numpy
    passes per pick, not a Python loop over samples).
    """
    a = np.abs(res)
    allow = np.maximum(thr, rel * level)
    excess = a - allow
    # Only where the fitted sources' expected misfit is small: close beside a
    # strong source, the greedy pass and the pair rules of `fit_sources` decide.
    alive = (excess > 0) & (rel * level <= 2.0 * thr)
    if not alive.any():
        return []
    k = len(p) // 3
    for i in range(k):
        alive &= np.hypot(x - p[3 * i], y - p[3 * i + 1]) >= 1.0
    for tx, ty in tried or ():
        alive &= np.hypot(x - tx, y - ty) >= 1.0
    out: list[tuple[float, float]] = []
    ref = allow if field is None else np.maximum(thr, rel * field)
    score = np.where(alive, a / ref, -np.inf)
    over = excess > 0
    while len(out) < budget:
        j = int(np.argmax(score))
        if not np.isfinite(score[j]):
            break
        d = np.hypot(x - x[j], y - y[j])
        score[d < radius] = -np.inf
        if int(np.count_nonzero(over & (d < 0.35))) < 2:
            continue
        near = (d < 1.0) & (a >= 0.3 * a[j])
        w = a[near] ** 2
        out.append((float(np.sum(w * x[near]) / np.sum(w)),
                    float(np.sum(w * y[near]) / np.sum(w))))
    return out


def _polish_weak(p: np.ndarray, x: np.ndarray, y: np.ndarray, v: np.ndarray,
                 geom: SensorGeometry) -> np.ndarray:
    """Re-place each source that has a stronger neighbour on its own near data.

    In a joint fit over a wide window the misfit a point dipole leaves on a big
    elongated neighbour pulls a small shallow source (mostly in depth). Fitted
    again on the samples within about twice its own reach, with the others held
    (their moments re-solved), its depth comes from its own anomaly's shape.
    Kept only if it stays within 0.3 m and the local misfit does not grow.
    """
    k = len(p) // 3
    G = _design(x, y, p, geom)
    lin = _solve_linear(G, v)
    mags = [float(np.linalg.norm(lin[3 * i:3 * i + 3])) for i in range(k)]
    q = np.array(p, dtype=np.float64)
    h = geom.sensor_height_m
    for i in range(k):
        cx, cy, d = q[3 * i:3 * i + 3]
        stronger = [j for j in range(k) if j != i and mags[j] > mags[i]
                    and math.hypot(q[3 * j] - cx, q[3 * j + 1] - cy) < 3.0]
        if not stronger:
            continue
        rad = min(max(1.2, 2.5 * (d + h)), 2.5)
        pts = [q[3 * j:3 * j + 3] for j in range(k)]
        near, _vw, lx, ly, lv = _local_view(pts, x, y, v, geom, cx, cy, rad)
        if lx.size < 20 or lx.size == x.size:
            continue
        qn = _flat([pts[j] for j in near])
        ii = near.index(i)
        try:
            r = _run_local(qn, [ii], lx, ly, lv, geom, (cx, cy), rad)
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("fit._polish_weak", exc)
            continue
        if not np.isfinite(r.cost) or math.hypot(r.x[3 * ii] - cx, r.x[3 * ii + 1] - cy) > 0.3:
            continue
        old = residual(qn, lx, ly, lv, geom)
        if 2.0 * r.cost <= float(old @ old):
            q = q.copy()
            q[3 * i:3 * i + 3] = r.x[3 * ii:3 * ii + 3]
    return q


def _robust_refine(p: np.ndarray, x: np.ndarray, y: np.ndarray, v: np.ndarray,
                   geom: SensorGeometry, noise: float, iters: int = 2,
                   c_sigma: float = 2.0) -> np.ndarray:
    """Iteratively reweighted refit with Huber weights (c = ``c_sigma`` × noise).

    Magnetic soil puts short, strong spikes into a fit window (tiny shallow
    grains under the sensor); a plain least-squares fit bends toward them.
    Huber weights leave samples within c alone and down-weight the rest by
    c/|r|, so the source follows its own anomaly. LM (MINPACK) has no robust
    loss, hence the reweighting. Runs only when the residual has outliers.
    """
    c = c_sigma * noise
    q = np.array(p, dtype=np.float64)
    for _ in range(iters):
        r = residual(q, x, y, v, geom)
        a = np.abs(r)
        if not np.any(a > c) or float(np.mean(a > c)) < 0.02:
            break
        sw = np.sqrt(np.minimum(1.0, c / np.maximum(a, 1e-12)))

        def fun(u: np.ndarray, sw: np.ndarray = sw) -> np.ndarray:
            G = _design(x, y, _fold(u), geom) * sw[:, None]
            return G @ _solve_linear(G, v * sw) - v * sw

        try:
            s = least_squares(fun, q, method="lm", x_scale=np.full(len(q), 0.3),
                              max_nfev=30 * (len(q) + 1), xtol=1e-6, ftol=1e-8)
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("fit._robust_refine", exc)
            break
        new = _fold(s.x)
        new[2::3] = np.minimum(new[2::3], MAX_DEPTH)
        if not np.all(np.isfinite(new)) or np.max(np.hypot(new[0::3] - q[0::3],
                                                           new[1::3] - q[1::3])) > 0.5:
            break
        q = new
    return q


#: Depths (m) tried for a weak source beside a strong one (it must be shallow).
NEAR_DEPTHS = (0.05, 0.15, 0.3, 0.5, 0.8, 1.2)


def _search_near_strong(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                        geom: SensorGeometry, noise: float, thr: float, bic_gain: float,
                        pos_sigma: float = POS_SIGMA_M, shape_rel: float = 0.10,
                        min_moment: float = 0.2, budget: int = 4,
                        ratio: float = 0.35, pick_sigmas: float = 2.0,
                        min_strong_depth: float = 0.4,
                        robust: bool = False) -> list[np.ndarray]:
    """Weak, shallow objects within 2 m of a strong one (scrap beside a bomb).

    The greedy search in `fit_sources` must not take a point dipole's misfit
    of an elongated body for an object, so near a strong source it asks for a
    residual over 15 % of that source's field: a bomblet a metre from a
    projectile stays hidden under that bar. Once strong sources have their
    best model (a line where it paid), the misfit left is smaller and has
    known causes: a few cm of position error on a steep anomaly (``pos_sigma``
    × slope), sensor noise and the body's shape beyond a line (``shape_rel``
    of its field). A residual standing 3 sigma above that on two samples is
    tried as a point source; it is kept if it pays (chi-square with those
    sigmas, BIC), lies shallower than half the strong source's depth and has
    at most ``ratio`` of its moment.
    """
    if not srcs:
        return srcs
    G = _design_srcs(x, y, srcs, geom)
    lin = _solve_linear(G, v)
    mags = [float(np.linalg.norm(lin[3 * i:3 * i + 3])) for i in range(len(srcs))]
    # Beside a strong source shallower than ``min_strong_depth`` there is no
    # room for "clearly shallower": the sensor's own height wobble is that big.
    strong = [i for i in range(len(srcs)) if mags[i] >= min_moment
              and (float(srcs[i][2]) if len(srcs[i]) == 3
                   else describe(srcs[i])["depth"]) >= min_strong_depth]
    if not strong:
        return srcs
    centre = [(float(s[0]), float(s[1])) if len(s) == 3 else
              (0.5 * float(s[0] + s[3]), 0.5 * float(s[1] + s[4])) for s in srcs]
    res = v - G @ lin
    near_strong = np.zeros(v.size, dtype=bool)
    for i in strong:
        near_strong |= np.hypot(x - centre[i][0], y - centre[i][1]) < 2.0
    sig = _misfit_sigma(srcs, x, y, v, geom, noise, pos_sigma, shape_rel)
    allow = np.maximum(thr, pick_sigmas * sig)
    a = np.abs(res)
    over = a > allow
    alive = over & near_strong
    for cx, cy in centre:
        alive &= np.hypot(x - cx, y - cy) >= 0.5
    score = np.where(alive, a / allow, -np.inf)
    picks: list[tuple[float, float]] = []
    while len(picks) < budget:
        j = int(np.argmax(score))
        if not np.isfinite(score[j]):
            break
        d = np.hypot(x - x[j], y - y[j])
        score[d < 1.0] = -np.inf
        if int(np.count_nonzero(over & (d < 0.35))) >= 2:
            picks.append((float(x[j]), float(y[j])))
    for sx, sy in picks:
        k_s = min(strong, key=lambda i: math.hypot(centre[i][0] - sx, centre[i][1] - sy))
        s_strong = srcs[k_s]
        d_strong = float(s_strong[2]) if len(s_strong) == 3 else float(describe(s_strong)["depth"])
        near, _vw, lx, ly, lv = _local_view(srcs, x, y, v, geom, sx, sy, 2.5)
        if lx.size < 30 or k_s not in near:
            continue
        sub = [srcs[i] for i in near]
        ks = near.index(k_s)
        base = _design_srcs(lx, ly, sub, geom)
        best = None
        for dd in NEAR_DEPTHS:
            if dd >= 0.5 * d_strong:
                break
            for ox in (-0.2, 0.0, 0.2):
                for oy in (-0.2, 0.0, 0.2):
                    Gc = np.hstack((base, design_matrix(lx, ly, sx + ox, sy + oy, dd, geom)))
                    r = Gc @ _solve_linear(Gc, lv) - lv
                    c = float(r @ r)
                    if best is None or c < best[0]:
                        best = (c, np.array([sx + ox, sy + oy, dd]))
        if best is None:
            continue
        trial = [*sub, best[1]]
        new = len(sub)
        try:
            trial, _ = _refit_local(trial, [new], lx, ly, lv, geom)
            joint, _ = _refit_local(trial, [new, ks], lx, ly, lv, geom)
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("fit._search_near_strong", exc)
            continue
        if math.hypot(joint[new][0] - trial[new][0], joint[new][1] - trial[new][1]) <= 0.3:
            trial = joint
        q = trial[new]
        Gt = _design_srcs(lx, ly, trial, geom)
        lt = _solve_linear(Gt, lv)
        m_new = float(np.linalg.norm(lt[3 * new:3 * new + 3]))
        m_str = float(np.linalg.norm(lt[3 * ks:3 * ks + 3]))
        d_str = float(trial[ks][2]) if len(trial[ks]) == 3 else describe(trial[ks])["depth"]
        if (math.hypot(q[0] - sx, q[1] - sy) > 0.6 or q[2] >= 0.5 * d_str
                or m_new > ratio * m_str
                or min(math.hypot(q[0] - cx, q[1] - cy) for cx, cy in centre) < 0.5):
            continue
        sig2 = _misfit_sigma(sub, lx, ly, lv, geom, noise, pos_sigma, shape_rel) ** 2
        r_old = _local_res(sub, lx, ly, lv, geom)
        r_new = Gt @ lt - lv
        gain = _chi2_drop(r_old, r_new, sig2, robust) - 6 * math.log(lx.size)
        if gain > bic_gain:
            srcs = _put_back(srcs, near, trial)
            centre.append((float(q[0]), float(q[1])))
    return srcs


def _taper_design(x: np.ndarray, y: np.ndarray, ends: np.ndarray, geom: SensorGeometry,
                  k: int = LINE_POINTS) -> np.ndarray:
    """Readings per unit of a moment that grows linearly along a line (from
    -1/2 at the first end to +1/2 at the second): with `line_design` it
    models a body whose steel is not evenly spread (a heavy nose)."""
    pts = line_points(ends, k)
    t = (np.arange(k) + 0.5) / k - 0.5
    g = design_batch(x, y, pts[:, 0], pts[:, 1], pts[:, 2], geom)
    return np.tensordot(t, g, axes=(0, 0)) / k


def _drop_body_lobes(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                     geom: SensorGeometry, noise: float, bic_gain: float, *,
                     pos_sigma: float = POS_SIGMA_M, robust: bool = False, ratio: float = 0.1,
                     reach: float = 2.0) -> list[np.ndarray]:
    """Drop weak sources that a line source's uneven steel explains.

    A munition's steel is not spread evenly along it (a thick nose, a thin
    tail cone); a uniform line misfits the heavy end, and beside a shallow
    bomb that misfit is a sharp lobe a weak shallow source fits. Each source
    (point or line) under ``ratio`` of a line source's moment within
    ``reach`` m of the line must pay its own parameters (position and
    moment) against the line alone with a moment growing linearly along it
    (3 more), in the misfit-sigma-weighted chi-square of `_drop_tails`.
    """
    if len(srcs) < 2 or not any(len(s) == 6 for s in srcs):
        return srcs
    srcs = list(srcs)
    h = geom.sensor_height_m
    mag = _moment_sizes(srcs, x, y, v, geom)
    dropped: set[int] = set()
    for k in sorted(range(len(srcs)), key=lambda t: mag[t]):
        kx, ky, kd = _centre_depth(srcs[k])
        lines = [j for j in range(len(srcs)) if len(srcs[j]) == 6 and j not in dropped
                 and j != k and mag[k] < ratio * mag[j] and _dist_to_src(srcs[j], kx, ky) < reach]
        if not lines:
            continue
        j = min(lines, key=lambda t: _dist_to_src(srcs[t], kx, ky))
        jx, jy, _jd = _centre_depth(srcs[j])
        dist = math.hypot(jx - kx, jy - ky)
        mx, my = 0.5 * (jx + kx), 0.5 * (jy + ky)
        rad = 0.5 * dist + max(1.5, 1.2 * (kd + h))
        allc = [s for t, s in enumerate(srcs) if t not in dropped]
        near, _vw, lx, ly, lv = _local_view(allc, x, y, v, geom, mx, my, rad)
        n_l = lx.size
        if n_l < 40:
            continue
        cur = [allc[i] for i in near]
        ik, ij = _index(cur, srcs[k]), _index(cur, srcs[j])
        w = 1.0 / _misfit_sigma(cur, lx, ly, lv, geom, noise, pos_sigma)
        without = [s for t, s in enumerate(cur) if t != ik]
        jj = ij if ij < ik else ij - 1
        try:
            without, _ = _refit_local(without, [jj], lx, ly, lv, geom, w=w)
            Gw = np.hstack((_design_srcs(lx, ly, without, geom),
                            _taper_design(lx, ly, without[jj], geom))) * w[:, None]
            r_taper = Gw @ _solve_linear(Gw, lv * w) - lv * w
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("fit._drop_body_lobes", exc)
            continue
        gain = (_chi2_drop(r_taper, _local_res(cur, lx, ly, lv, geom, w), np.ones(n_l), robust)
                # its own parameters (a point's 3 or a line's 6, and a moment)
                # against the taper's 3 moment components
                - len(srcs[k]) * math.log(n_l))
        if gain <= bic_gain:
            dropped.add(k)
            srcs[j] = without[jj]
    return [s for t, s in enumerate(srcs) if t not in dropped]


def _drop_subthreshold(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray,
                       v: np.ndarray, geom: SensorGeometry, thr: float) -> list[np.ndarray]:
    """Drop the sources whose own field nowhere in the window reaches ``thr``.

    A signal is what the detector would see: a source the joint fit placed
    to soak up a neighbour's misfit, a lane's level or drift, whose own
    field stays under the detection threshold on every sample, is not one
    (on total-field surveys those were a third of the false picks, and no
    matched object was under 1.1 x the threshold). The weakest goes first
    and the moments are solved again each time; the strongest source always
    stays, so a signal is never lost. So does a source of an aircraft bomb's
    moment: a deep bomb under the threshold that a neighbour's signal brought
    into a fit is worth its dig (e.g. 3.6 m, 9 A m^2, its
    peak 9 nT under an 11 nT threshold).
    """
    srcs = list(srcs)
    while len(srcs) > 1:
        G = _design_srcs(x, y, srcs, geom)
        lin = _solve_linear(G, v)
        peaks = [float(np.max(np.abs(G[:, 3 * i:3 * i + 3] @ lin[3 * i:3 * i + 3])))
                 if np.linalg.norm(lin[3 * i:3 * i + 3]) < BOMB_MOMENT else np.inf
                 for i in range(len(srcs))]
        j = int(np.argmin(peaks))
        if peaks[j] >= thr:
            break
        del srcs[j]
    return srcs


def _drop_tails(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                geom: SensorGeometry, noise: float, bic_gain: float, *,
                pos_sigma: float = POS_SIGMA_M, robust: bool = False, ratio: float = 0.5,
                reach_depths: float = 2.0, min_reach: float = 4.0, max_reach: float = 6.0,
                max_move: float = 0.3, min_dist: float = 1.5) -> list[np.ndarray]:
    """Drop weaker sources that only model a stronger neighbour's misfit.

    A real body is no point and no uniform line: around a strong one, the
    part of its anomaly the model misses (a broad tail, a lobe at the wrong
    strength) can be fitted by a second, weaker source a few metres away,
    deep and plausible. Each weaker source (moment under ``ratio`` of a
    neighbour's, within ``min_reach`` m or ``reach_depths`` × the neighbour's
    depth below the sensor, at most ``max_reach``) must pay its 6 parameters against the neighbour
    refitted, on data covering both, in the chi-square with the sigma the
    model still misfits (`_misfit_sigma`): sensor noise, position error on
    the slopes, and a few % of the model. The neighbour's refit minimises that
    same weighted misfit, so the strong near field, where the model is least
    right, does not decide where the tail goes. A neighbour that moves more
    than ``max_move`` to do without the weaker source was not explaining it:
    the weaker one stays. Closer than ``min_dist`` the rules of
    `fit_sources` and `_judge_weak` decide: there the slope of the strong
    field makes the sigma as large as a small object's whole anomaly.
    """
    if len(srcs) < 2:
        return srcs
    srcs = list(srcs)
    h = geom.sensor_height_m
    mag = _moment_sizes(srcs, x, y, v, geom)
    cen = [_centre_depth(s) for s in srcs]
    order = sorted(range(len(srcs)), key=lambda k: mag[k])
    dropped: set[int] = set()
    for k in order:
        kx, ky, _kd = cen[k]
        # Reach counts from the nearest point of a line: a long body's misfit
        # tails off from its ends, not from its middle.
        strong = [j for j in range(len(srcs)) if j != k and j not in dropped
                  and mag[k] < ratio * mag[j]
                  and math.hypot(cen[j][0] - kx, cen[j][1] - ky) >= min_dist
                  and _dist_to_src(srcs[j], kx, ky)
                  < max(min_reach, min(reach_depths * (cen[j][2] + h), max_reach))]
        if not strong:
            continue
        j = min(strong, key=lambda t: math.hypot(cen[t][0] - kx, cen[t][1] - ky))
        jx, jy, _jd = cen[j]
        dist = math.hypot(jx - kx, jy - ky)
        mx, my = 0.5 * (jx + kx), 0.5 * (jy + ky)
        rad = 0.5 * dist + max(1.5, 1.2 * (_kd + h))
        if int(np.count_nonzero(np.hypot(x - mx, y - my) < rad)) < 40:
            continue
        allc = [s for t, s in enumerate(srcs) if t not in dropped]
        near, _vw, lx, ly, lv = _local_view(allc, x, y, v, geom, mx, my, rad)
        n_l = lx.size
        cur = [allc[i] for i in near]
        ik, ij = _index(cur, srcs[k]), _index(cur, srcs[j])
        sig = _misfit_sigma(cur, lx, ly, lv, geom, noise, pos_sigma)
        w = 1.0 / sig
        without = [s for t, s in enumerate(cur) if t != ik]
        jj = ij if ij < ik else ij - 1
        try:
            with_k, _ = _refit_local(cur, [ij, ik], lx, ly, lv, geom, w=w)
            without, _ = _refit_local(without, [jj], lx, ly, lv, geom, w=w)
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("fit._drop_tails", exc)
            continue
        gain = (_chi2_drop(_local_res(without, lx, ly, lv, geom, w),
                           _local_res(with_k, lx, ly, lv, geom, w), np.ones(n_l), robust)
                - 6 * math.log(n_l))
        # The neighbour must stay where it is: moved onto the weaker source's
        # anomaly it would be explaining that instead of its own.
        nx, ny, _nd = _centre_depth(without[jj])
        if gain <= bic_gain and math.hypot(nx - jx, ny - jy) <= max_move:
            dropped.add(k)
            srcs[j] = without[jj]
            cen[j] = _centre_depth(srcs[j])
    return [s for t, s in enumerate(srcs) if t not in dropped]


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


def _local_scale(srcs: list[np.ndarray], res: np.ndarray, x: np.ndarray, y: np.ndarray,
                 geom: SensorGeometry, noise: float, npar: int) -> list[float]:
    """Per source, the residual's rms where its anomaly is (within 2 × its
    distance below the sensor, at least 1 m), never under the noise: in a
    wide window of quiet ground the window-wide rms is the noise, and a
    source's own misfit would not count."""
    h = geom.sensor_height_m
    out = []
    for s in srcs:
        cx, cy, d = _centre_depth(s)
        near = np.hypot(x - cx, y - cy) < max(1.0, 2.0 * (d + h))
        m = int(near.sum())
        if m <= npar:
            out.append(noise)
            continue
        r = res[near]
        out.append(max(noise, float(np.sqrt(r @ r / (m - npar)))))
    return out


def _finish(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
            geom: SensorGeometry, noise: float, converged: bool,
            edge_margin: float, survey_sigma: SurveySigma | None = None) -> list[FitResult]:
    ss = survey_sigma or SurveySigma()
    n = v.size
    G = _design_srcs(x, y, srcs, geom)
    lin = _solve_linear(G, v)
    res = G @ lin - v
    k = len(srcs)
    npar = sum(len(s) + 3 for s in srcs) + 1
    rms = float(np.sqrt(np.mean(res * res)))
    s = max(noise, rms * math.sqrt(n / max(n - npar, 1)))
    sig = _uncertainty(srcs, lin, x, y, geom, 1.0)
    scales = _local_scale(srcs, res, x, y, geom, s, 7)
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
        sx_, sy_, sd_fit = (scales[si] * t for t in sig[si])
        sx_ = math.hypot(sx_, ss.position_m)
        sy_ = math.hypot(sy_, ss.position_m)
        sd_ = math.sqrt(sd_fit * sd_fit + ss.height_m ** 2 + (ss.depth_rel * pd) ** 2)
        flags: list[str] = []
        if not converged:
            flags.append("no_converge")
        if _at_edge(x, y, px, py, edge_margin):
            flags.append("edge")
        q = max(0.0, min(1.0, r2))
        if sd_fit > 0.3 * pd + 0.1:  # the data themselves leave depth open
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


def _cheap_result(x: np.ndarray, y: np.ndarray, v: np.ndarray, geom: SensorGeometry,
                  cx: float, cy: float, cd: float, flags: tuple[str, ...]) -> FitResult:
    m = (0.0, 0.0, 0.0)
    if v.size >= 4:
        try:
            G = _design(x, y, np.array([cx, cy, cd]), geom)
            lin = _solve_linear(G, v)
            m = (float(lin[0]), float(lin[1]), float(lin[2]))
        except np.linalg.LinAlgError as exc:
            swallowed("fit._cheap_result", exc)
            pass
    fl = flags + (("edge",) if v.size and _at_edge(x, y, cx, cy, 0.4) else ())
    return FitResult(x=cx, y=cy, depth=cd, moment=m, quality=0.1, flags=fl,
                     method="cheap_estimate", n_samples=int(v.size),
                     sigma_x=0.5, sigma_y=0.5, sigma_depth=max(0.5 * cd, 0.2))


def euler_sources(x: np.ndarray, y: np.ndarray, v: np.ndarray,
                  geom: SensorGeometry) -> list[FitResult]:
    """Baseline locator: one Euler (SI 3) estimate per signal; cheap estimate if it fails."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    cx, cy, cd = cheap_estimate(x, y, v, geom)
    est = euler_locate(x, y, v, geom.sensor_height_m)
    if est is None:
        return [_cheap_result(x, y, v, geom, cx, cy, cd, ("no_converge", "cheap_estimate"))]
    ex, ey, ed = est
    G = _design(x, y, np.array([ex, ey, max(ed, 0.01)]), geom)
    lin = _solve_linear(G, v)
    return [FitResult(x=ex, y=ey, depth=ed, moment=(float(lin[0]), float(lin[1]), float(lin[2])),
                      quality=0.5, method="euler", n_samples=int(v.size))]
