"""Stages of the lane fit that add sources (`acquisition.dsp.fitstages`).

The residual of the sources found so far is searched for signals they do
not explain: the largest unexplained residual (greedy), the lane peaks the
detector reported (hints), a ring of shallow starts beside a small body, the
residual's local maxima in broad clusters, and weak shallow objects beside
strong ones once those are line sources. Each new source is seeded on a
small grid (`grid_seed`), fitted with its near neighbours, and kept only if
it pays by the one criterion (`acquisition.dsp.acceptance`) and passes the
pair rules (`acquisition.dsp.plausibility`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from acquisition.dsp.acceptance import chi2_drop, information_gain, pays, penalised
from acquisition.dsp.fitconfig import DEFAULT_FIT, FitConfig
from acquisition.dsp.fitcore import (
    LMRun,
    centre_depth,
    centre_point,
    design_points,
    design_reusing,
    design_srcs,
    dist_to_src,
    flatten_points,
    inside,
    local_res,
    local_view,
    misfit_sigma,
    put_back,
    refit_local,
    residual,
    run_lm_local,
    sigma_of,
    solve_linear,
)
from acquisition.dsp.levelling import running_median
from acquisition.dsp.plausibility import last_pairs_plausible, pairs_plausible
from acquisition.forward import (
    SensorGeometry,
    describe,
    design_batch,
    design_matrix,
)
from acquisition.numfail import swallowed

if TYPE_CHECKING:
    from acquisition.dsp.fitstate import FitState

#: How far (m) from its seed a new source may end (`judge`): farther, its
#: fit went off to explain something else ("off_seed").
SEED_REACH_M = 1.5

#: How far (m) refining a new source with its neighbours free may move it
#: from where its own fit put it: farther, the refinement is taken to have
#: dragged it off the signal it was seeded on, and is not kept.
JOINT_MOVE_M = 0.5

__all__ = ["JOINT_MOVE_M", "SEED_REACH_M", "as_sources", "flank_peaks", "flank_sigma",
           "greedy_maxima", "grid_seed", "judge", "misfit_level", "model", "new_source_seed",
           "pays_weighted",
           "residual_peaks", "search_near_strong", "sharp_residual", "solved_points",
           "try_add", "try_add_srcs", "try_ring", "try_sharp", "verdict_of"]

def grid_seed(x: np.ndarray, y: np.ndarray, v: np.ndarray, geom: SensorGeometry,
               fixed: np.ndarray | list[np.ndarray], sx: float, sy: float, keep: int = 2,
               sides: bool = False, cfg: FitConfig = DEFAULT_FIT) -> list[np.ndarray]:
    """Best few (x, y, depth) for one more source on a small grid around (sx, sy)
    (`FitConfig.grid_depths`, `grid_dx`, `grid_dy`).

    Existing sources stay where they are; only the moments are re-solved for
    each candidate. All candidates are solved at once (batched normal
    equations), so the grid costs about as much as two or three LM steps and
    removes the local minima a single LM start can fall into (mostly in depth).
    ``fixed``: points packed flat, or a list of sources (points or lines).
    """
    B = design_srcs(x, y, as_sources(fixed), geom)
    D, OX, OY = np.meshgrid(cfg.grid_depths, cfg.grid_dx, cfg.grid_dy, indexing="ij")
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
        swallowed("addsources.grid_seed", exc)
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
        for dx in cfg.grid_dx:
            if round(dx, 6) in have:
                continue
            on = np.flatnonzero(np.isclose(cx - sx, dx))
            i = int(on[np.argmin(cost[on])])
            out.append(np.array([cx[i], cy[i], float(cd[i])]))
    return out


def new_source_seed(x: np.ndarray, y: np.ndarray, res: np.ndarray, level: np.ndarray,
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



def residual_peaks(x: np.ndarray, y: np.ndarray, res: np.ndarray, level: np.ndarray,
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
    for j in greedy_maxima(score, x, y, excess > 0, radius, budget):
        near = (np.hypot(x - x[j], y - y[j]) < 1.0) & (a >= 0.3 * a[j])
        w = a[near] ** 2
        out.append((float(np.sum(w * x[near]) / np.sum(w)),
                    float(np.sum(w * y[near]) / np.sum(w))))
    return out


#: Samples this close (m) to a fitted source are left out of a narrow-peak
#: source's fit (`try_sharp`); the residual search's picks are as far.
SHARP_CLEAR_M = 1.0


def sharp_residual(x: np.ndarray, y: np.ndarray, res: np.ndarray, lanes: np.ndarray,
                   width_m: float) -> np.ndarray:
    """``res`` less its running median over ``width_m`` along each lane.

    A body's anomaly along a lane is about as wide as the sensor's distance
    to it: a shallow piece of scrap or a bomblet stands out of the median,
    while the misfit a deep body's fit leaves (as wide as its depth) is
    mostly taken out with it. Lanes are put in along-track order by their
    own direction; a lane of fewer than 3 samples keeps its residual, and
    samples on no lane (``lanes`` < 0: turns) get 0, having no track.

    >>> s = np.arange(0.0, 10.0, 0.1)
    >>> bump = 5.0 / (1 + ((s - 3) / 3.0) ** 2) + 4.0 / (1 + ((s - 7) / 0.3) ** 2)
    >>> hp = sharp_residual(np.zeros_like(s), s, bump, np.zeros(s.size, int), 2.0)
    >>> round(float(hp[30]), 1), round(float(hp[70]), 1)  # the broad bump, the narrow one
    (0.1, 2.8)
    """
    out = res.copy()
    for lane in np.unique(lanes):
        idx = np.flatnonzero(lanes == lane)
        if lane < 0:
            out[idx] = 0.0
            continue
        if idx.size < 3:
            continue
        ux, uy = x[idx[-1]] - x[idx[0]], y[idx[-1]] - y[idx[0]]
        s = x[idx] * ux + y[idx] * uy
        idx = idx[np.argsort(s, kind="stable")]
        along = np.hypot(np.diff(x[idx]), np.diff(y[idx]))
        step = float(np.median(along))
        size = int(width_m / step) | 1 if step > 0 else 3
        out[idx] = res[idx] - running_median(res[idx], max(size, 3))
    return out


def try_sharp(st: FitState, srcs: list[np.ndarray], G: np.ndarray, hp: np.ndarray,
              sig: np.ndarray, sx: float, sy: float,
              radius: float) -> tuple[list[np.ndarray], np.ndarray] | None:
    """One more point source at a narrow residual peak (the stage
    `sharp_search`): ``srcs`` (points or lines) with the new point appended,
    and their design on the window, if it pays; else None.

    ``G``: the design of ``srcs`` on the window; ``hp``: the narrow residual
    (`sharp_residual`) of their fit. The source is fitted alone to ``hp``
    within ``radius`` of (sx, sy), from the grid's starts down to half the
    median's length. Fitted to the residual as it is, a shallow object on a
    deep body's flank is pulled deep and off its peak by the broad misfit
    around it, and judged there that misfit drowns its gain; in the narrow
    band only its own anomaly, the noise and the walk's misfit are left. So
    the criterion is asked there, on the same samples, each weighted by
    ``sig``, what ``srcs`` may misfit it (`flank_sigma`: beside a strong
    source the walk's position error leaves narrow misfit too); the pair
    rules between it and each other source, with every moment solved again
    on the window.
    """
    cfg = st.config
    loc = np.flatnonzero(np.hypot(st.x - sx, st.y - sy) < radius)
    # Within a metre of a fitted source the narrow residual is as much that
    # source's own misfit (the walk's position error on its steep slopes)
    # as anything else: the new source is fitted and judged beyond it.
    for s in srcs:
        loc = loc[_dist_to(s, st.x[loc], st.y[loc]) >= SHARP_CLEAR_M]
    n = int(loc.size)
    if n < 12:
        return None
    lx, ly, lv = st.x[loc], st.y[loc], hp[loc]
    depths = tuple(d for d in cfg.grid_depths if d <= 0.5 * cfg.sharp_width_m)
    # Seen on one lane, it fits nearly as well mirrored across it: starts on
    # every side (`grid_seed`'s ``sides``), the cheapest fit kept.
    starts = grid_seed(lx, ly, lv, st.geom, [], sx, sy, keep=2, sides=True,
                       cfg=replace(cfg, grid_depths=depths or cfg.grid_depths[:1]))
    best: LMRun | None = None
    for g in starts:
        r = run_lm_local(g, [0], lx, ly, lv, st.geom, (sx, sy), radius)
        if np.isfinite(r.cost) and (best is None or r.cost < best.cost):
            best = r
    if best is None or math.hypot(best.x[0] - sx, best.x[1] - sy) > SEED_REACH_M:
        return None
    r0 = lv - float(np.mean(lv))
    r1 = residual(best.x, lx, ly, lv, st.geom)
    if not pays(penalised(chi2_drop(r0, r1, sig[loc] ** 2, False), n, 6), cfg.bic_gain):
        return None
    qs = [*srcs, best.x]
    Gq = np.hstack((G[:, :-1], design_points(st.x, st.y, best.x, st.geom)))
    lin_q = solve_linear(Gq, st.v)
    q = flatten_points([centre_point(s) for s in qs])
    if cfg.pairs_plausible and not last_pairs_plausible(q, lin_q, cfg.min_sep_m, cfg.close_m,
                                                        cfg.pair_ratio):
        return None
    return qs, Gq


def greedy_maxima(score: np.ndarray, x: np.ndarray, y: np.ndarray, over: np.ndarray,
                  radius: float, budget: int) -> list[int]:
    """Indices of the largest finite values of ``score``, best first, taken
    greedily: each suppresses the samples within ``radius`` m of it, and is
    kept only with a second sample of ``over`` within 0.35 m (a lone spike
    is not a signal, as in the detector). ``score`` is consumed."""
    out: list[int] = []
    while len(out) < budget:
        j = int(np.argmax(score))
        if not np.isfinite(score[j]):
            break
        d = np.hypot(x - x[j], y - y[j])
        score[d < radius] = -np.inf
        if int(np.count_nonzero(over & (d < 0.35))) >= 2:
            out.append(j)
    return out



def search_near_strong(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                        geom: SensorGeometry, noise: float, thr: float,
                        cfg: FitConfig = DEFAULT_FIT) -> list[np.ndarray]:
    """Weak, shallow objects within 2 m of a strong one (scrap beside a bomb).

    The greedy search in `fit_sources` must not take a point dipole's misfit
    of an elongated body for an object, so near a strong source it asks for a
    residual over 15 % of that source's field: a bomblet a metre from a
    projectile stays hidden under that bar. Once strong sources have their
    best model (a line where it paid), the misfit left is smaller and has
    known causes: a few cm of position error on a steep anomaly
    (`FitConfig.pos_sigma_m` × slope), sensor noise and the body's shape
    beyond a line (`near_shape_rel` of its field). A residual standing
    `near_pick_sigmas` above that on two samples is tried as a point source
    (at the `near_depths`); it is kept if it pays (chi-square with those
    sigmas, `bic_gain`), lies shallower than half the strong source's depth
    and has at most `near_ratio` of its moment. Strong: `near_min_moment`,
    at least `near_min_strong_depth` deep.
    """
    if not srcs:
        return srcs
    bic_gain, pos_sigma, shape_rel, robust = (cfg.bic_gain, cfg.pos_sigma_m, cfg.near_shape_rel,
                                              cfg.robust)
    min_moment, min_strong_depth = cfg.near_min_moment, cfg.near_min_strong_depth
    G = design_srcs(x, y, srcs, geom)
    lin = solve_linear(G, v)
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
    sig = misfit_sigma(srcs, x, y, v, geom, noise, pos_sigma, shape_rel)
    allow = np.maximum(thr, cfg.near_pick_sigmas * sig)
    a = np.abs(res)
    over = a > allow
    alive = over & near_strong
    for cx, cy in centre:
        alive &= np.hypot(x - cx, y - cy) >= 0.5
    score = np.where(alive, a / allow, -np.inf)
    picks = [(float(x[j]), float(y[j]))
             for j in greedy_maxima(score, x, y, over, 1.0, cfg.near_budget)]
    for sx, sy in picks:
        k_s = min(strong, key=lambda i: math.hypot(centre[i][0] - sx, centre[i][1] - sy))
        s_strong = srcs[k_s]
        d_strong = float(s_strong[2]) if len(s_strong) == 3 else float(describe(s_strong)["depth"])
        near, _vw, lx, ly, lv = local_view(srcs, x, y, v, geom, sx, sy, 2.5,
                                           margin=cfg.far_margin_m)
        if lx.size < 30 or k_s not in near:
            continue
        sub = [srcs[i] for i in near]
        ks = near.index(k_s)
        base = design_srcs(lx, ly, sub, geom)
        best = None
        for dd in cfg.near_depths:
            if dd >= 0.5 * d_strong:
                break
            for ox in (-0.2, 0.0, 0.2):
                for oy in (-0.2, 0.0, 0.2):
                    Gc = np.hstack((base, design_matrix(lx, ly, sx + ox, sy + oy, dd, geom)))
                    r = Gc @ solve_linear(Gc, lv) - lv
                    c = float(r @ r)
                    if best is None or c < best[0]:
                        best = (c, np.array([sx + ox, sy + oy, dd]))
        if best is None:
            continue
        trial = [*sub, best[1]]
        new = len(sub)
        try:
            trial, _ = refit_local(trial, [new], lx, ly, lv, geom)
            joint, _ = refit_local(trial, [new, ks], lx, ly, lv, geom)
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("addsources.search_near_strong", exc)
            continue
        if math.hypot(joint[new][0] - trial[new][0], joint[new][1] - trial[new][1]) <= 0.3:
            trial = joint
        q = trial[new]
        Gt = design_srcs(lx, ly, trial, geom)
        lt = solve_linear(Gt, lv)
        m_new = float(np.linalg.norm(lt[3 * new:3 * new + 3]))
        m_str = float(np.linalg.norm(lt[3 * ks:3 * ks + 3]))
        d_str = float(trial[ks][2]) if len(trial[ks]) == 3 else describe(trial[ks])["depth"]
        if (math.hypot(q[0] - sx, q[1] - sy) > 0.6 or q[2] >= 0.5 * d_str
                or m_new > cfg.near_ratio * m_str
                or min(math.hypot(q[0] - cx, q[1] - cy) for cx, cy in centre) < 0.5):
            continue
        sig2 = misfit_sigma(sub, lx, ly, lv, geom, noise, pos_sigma, shape_rel) ** 2
        r_old = local_res(sub, lx, ly, lv, geom)
        r_new = Gt @ lt - lv
        gain = penalised(chi2_drop(r_old, r_new, sig2, robust), lx.size, 6)
        if pays(gain, bic_gain):
            srcs = put_back(srcs, near, trial)
            centre.append((float(q[0]), float(q[1])))
    return srcs


def flank_peaks(x: np.ndarray, y: np.ndarray, res: np.ndarray, sig: np.ndarray,
                thr: float, srcs: list[np.ndarray], geom: SensorGeometry,
                cfg: FitConfig = DEFAULT_FIT,
                tried: list[tuple[float, float]] | None = None) -> list[tuple[float, float]]:
    """Residual maxima that hold a dipole's anomaly, best first (the stage
    `flank_search`).

    Candidates are the residual's distinct maxima over ``thr`` (with a
    second sample over it within 0.35 m, as in the detector) at least
    `FitConfig.flank_clear_m` from every source of ``srcs`` (points, or
    lines anywhere along them); not gated by the
    fitted sources' misfit level, which beside a strong source swamps a
    weak deep body's residual. Each is scored instead by what one dipole
    explains of the residual within `flank_radius_m` (grid of
    `grid_depths` and offsets up to a metre), in the chi-square weighted
    by ``sig``, what the fitted sources may misfit each sample (noise,
    position error times slope, shape): a weak body's broad anomaly pays
    there, a strong neighbour's walk misfit, large only where its slope is,
    is weighted down. Kept: those whose score pays `bic_gain`, at most
    `flank_budget`, each at its best grid place; none within a metre of a
    place ``tried`` before.
    """
    a = np.abs(res)
    over = a > thr
    alive = over.copy()
    for s in srcs:
        alive &= _dist_to(s, x, y) >= cfg.flank_clear_m
    for tx, ty in tried or ():
        alive &= np.hypot(x - tx, y - ty) >= 1.0
    score = np.where(alive, a, -np.inf)
    cands = greedy_maxima(score, x, y, over, 1.5, cfg.flank_candidates)
    w = 1.0 / np.maximum(sig, 1e-9)
    scored: list[tuple[float, float, float]] = []
    for j in cands:
        # The scoring disc follows the best dipole (a few steps): a maximum
        # on a broad anomaly's edge is scored on the anomaly, not its edge.
        cx, cy, best = float(x[j]), float(y[j]), None
        for _step in range(3):
            best = _dipole_score(x, y, res, w, cx, cy, geom, cfg)
            if best is None:
                break
            moved = math.hypot(best[1] - cx, best[2] - cy)
            cx, cy = best[1], best[2]
            if moved < 0.25:
                break
        if best is not None and pays(best[0], cfg.bic_gain):
            scored.append(best)
    scored.sort(key=lambda t: -t[0])
    out: list[tuple[float, float]] = []
    for _g, sx, sy in scored:
        # Candidates on one anomaly converge to one place: it is tried once.
        if len(out) < cfg.flank_budget and all(math.hypot(sx - ox, sy - oy) >= 1.0
                                               for ox, oy in [*out, *(tried or ())]):
            out.append((sx, sy))
    return out


def _dipole_score(x: np.ndarray, y: np.ndarray, res: np.ndarray, w: np.ndarray, cx: float,
                  cy: float, geom: SensorGeometry, cfg: FitConfig
                  ) -> tuple[float, float, float] | None:
    """BIC gain of the best dipole (and offset) over an offset alone on the
    residual within `flank_radius_m` of (cx, cy), samples weighted by ``w``;
    the dipole on a grid of `grid_depths` and offsets up to a metre; with
    its place. None if too few samples."""
    loc = np.hypot(x - cx, y - cy) < cfg.flank_radius_m
    n = int(loc.sum())
    if n <= 12:
        return None
    lx, ly, lw = x[loc], y[loc], w[loc]
    lr = res[loc] * lw
    off = (-1.0, -0.5, 0.0, 0.5, 1.0)
    D, OX, OY = np.meshgrid(cfg.grid_depths, off, off, indexing="ij")
    gx, gy = cx + OX.ravel(), cy + OY.ravel()
    Gc = design_batch(lx, ly, gx, gy, D.ravel(), geom)  # (c, n, 3)
    G = np.concatenate((Gc, np.ones((*Gc.shape[:2], 1))), axis=2) * lw[None, :, None]
    Gt = G.transpose(0, 2, 1)
    A = Gt @ G + 1e-12 * np.eye(4)[None]
    try:
        sol = np.linalg.solve(A, (Gt @ lr)[..., None])[..., 0]
    except np.linalg.LinAlgError as exc:
        swallowed("addsources._dipole_score", exc)
        return None
    left = lr[None, :] - (G @ sol[..., None])[..., 0]
    # Against an offset alone: the window's level is not a body.
    r0 = lr - float(np.sum(lr * lw) / np.sum(lw * lw)) * lw
    drop = float(r0 @ r0) - np.einsum("cn,cn->c", left, left)
    b = int(np.argmax(drop))
    return penalised(float(drop[b]), n, 6), float(gx[b]), float(gy[b])


def flank_sigma(st: FitState, srcs: list[np.ndarray]) -> np.ndarray:
    """Per-sample sigma of what the sources ``srcs`` may misfit, for the flank
    search: sensor noise, `FitConfig.pos_sigma_m` of position error times
    the model's slope, and `shape_rel` of the misfit level (`misfit_level`).
    The shape term falls off like a body's higher multipoles, one power of
    distance faster than its field (`fitcore.misfit_sigma` takes a share of
    the field itself, which a metre or more beside a strong bomb is larger
    than a deep body's whole anomaly)."""
    x, y, geom = st.x, st.y, st.geom
    lin = solve_linear(design_srcs(x, y, srcs, geom), st.v)
    d = 0.02
    fx = (design_srcs(x + d, y, srcs, geom) - design_srcs(x - d, y, srcs, geom)) @ lin
    fy = (design_srcs(x, y + d, srcs, geom) - design_srcs(x, y - d, srcs, geom)) @ lin
    slope2 = (fx * fx + fy * fy) / (4 * d * d)
    return sigma_of(misfit_level(st, srcs), slope2, st.noise, st.config.pos_sigma_m,
                    st.config.shape_rel)


def pays_weighted(st: FitState, p: list[np.ndarray], q: list[np.ndarray],
                  sig: np.ndarray) -> bool:
    """Whether the new (last) source of ``q`` pays over ``p`` (source lists)
    by the criterion with each sample weighted by ``sig``, what the sources
    of ``p`` may misfit it (`flank_sigma`), on the samples within 2 m of it:
    beside a strong source its walk misfit is expected there and buys nothing."""
    x, y, v, geom = st.x, st.y, st.v, st.geom
    loc = np.hypot(x - q[-1][0], y - q[-1][1]) < 2.0
    n_l = int(loc.sum())
    if n_l <= 7:
        return False
    lx, ly, lv = x[loc], y[loc], v[loc]
    r_old = lv - model_at(lx, ly, lv, p, geom, x, y, v)
    r_new = lv - model_at(lx, ly, lv, q, geom, x, y, v)
    gain = penalised(chi2_drop(r_old, r_new, sig[loc] ** 2, st.config.robust), n_l, 6)
    return pays(gain, st.config.bic_gain)


def model_at(lx: np.ndarray, ly: np.ndarray, lv: np.ndarray, p: list[np.ndarray],
             geom: SensorGeometry, x: np.ndarray, y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The field at (lx, ly) of the sources ``p`` at their whole-window moments
    (solved on ``x, y, v``)."""
    lin = solve_linear(design_srcs(x, y, p, geom), v)
    return design_srcs(lx, ly, p, geom) @ lin


# ---------------------------------------------------------------- one more source
def solved_points(st: FitState, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The design of the points ``p`` on the window and their best moments."""
    G = design_points(st.x, st.y, p, st.geom)
    return G, solve_linear(G, st.v)


def model(st: FitState, p: np.ndarray,
          solved: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The field of the points ``p`` at their best moments on the window
    (``solved``: `solved_points` of ``p``, when the caller has it)."""
    G, lin = solved if solved is not None else solved_points(st, p)
    return G @ lin


def misfit_level(st: FitState, p: np.ndarray | list[np.ndarray], falloff: bool = True,
                 solved: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """How much a single dipole may misfit each sample: |field of each source|
    × (depth + h) / distance, summed. An elongated body's misfit is a
    higher multipole and falls off one power of distance faster than its
    field, so far from a strong source a weak signal still counts.
    ``p``: points packed flat, or a list of sources (a line's distance is
    to its nearest point, at its centre's depth). ``solved``: the design and
    moments of ``p`` on the window (`solved_points`), when the caller has them."""
    x, y = st.x, st.y
    srcs = as_sources(p)
    if solved is not None:
        G, lin = solved
    else:
        G = design_srcs(x, y, srcs, st.geom)
        lin = solve_linear(G, st.v)
    out = np.zeros(st.n)
    zs = st.geom.sensor_height_m
    for i, s in enumerate(srcs):
        f = np.abs(G[:, 3 * i:3 * i + 3] @ lin[3 * i:3 * i + 3])
        if not falloff:
            out += f
            continue
        z = centre_depth(s)[2] + zs
        h = _dist_to(s, x, y)
        out += f * (z / np.sqrt(h * h + z * z))
    return out


def _dist_to(s: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`fitcore.dist_to_src` at every sample."""
    if len(s) == 3:
        return np.hypot(x - s[0], y - s[1])
    ax, ay, dx, dy = float(s[0]), float(s[1]), float(s[3] - s[0]), float(s[4] - s[1])
    L2 = dx * dx + dy * dy
    t = np.zeros_like(x) if L2 == 0 else np.clip(((x - ax) * dx + (y - ay) * dy) / L2, 0.0, 1.0)
    return np.hypot(ax + t * dx - x, ay + t * dy - y)


def as_sources(p: np.ndarray | list[np.ndarray]) -> list[np.ndarray]:
    """Sources as a list (points packed flat are split into triples)."""
    if isinstance(p, list):
        return p
    return [p[3 * i:3 * i + 3] for i in range(len(p) // 3)]


def try_add(st: FitState, p: np.ndarray, pred: np.ndarray, sx: float,
            sy: float, solved: tuple[np.ndarray, np.ndarray] | None = None) -> LMRun | None:
    """One more point source seeded at (sx, sy) among the points ``p``
    (``pred``: their field; ``solved``: `solved_points` of ``p``, when the
    caller has it), fitted with its near neighbours; the new positions if it
    pays (`judge`), else None."""
    x, y, v, geom = st.x, st.y, st.v, st.geom
    try:
        pts = [p[3 * i:3 * i + 3] for i in range(len(p) // 3)]
        near, vn, lx, ly, lv = local_view(pts, x, y, v, geom, sx, sy, 3.0,
                                          margin=st.config.far_margin_m, solved=solved)
        pn = flatten_points([pts[i] for i in near])
        seeds = grid_seed(lx, ly, lv, geom, pn, sx, sy, keep=2, sides=True, cfg=st.config)
        cand = _expand(pts, near, _best_start(st, pn, seeds[:2], sx, sy, vn, lx, ly, lv))
        verdict = judge(st, p, pred, cand, sx, sy, solved)
        if verdict == "too_close" and len(seeds) > 2:
            # Beside a strong source a weak signal seen on one lane has a
            # mirror image across that lane, and LM started on the wrong
            # side never crosses it: the mirror lands too close to the
            # neighbour and is refused. Start once more from the other
            # sides of the lane.
            cand = _expand(pts, near, _best_start(st, pn, seeds[2:], sx, sy, vn, lx, ly, lv))
            verdict = judge(st, p, pred, cand, sx, sy, solved)
    except (ValueError, np.linalg.LinAlgError) as exc:
        swallowed("fit.try_add", exc)
        return None
    return cand if verdict == "ok" else None


def try_add_srcs(st: FitState, srcs: list[np.ndarray], sx: float,
                 sy: float) -> list[np.ndarray] | None:
    """`try_add` among sources that may hold lines (after the line stage):
    the new point source, last, and its near neighbours refitted as they are
    (a line stays a line); the new sources if it pays (`judge`), else None.
    Only points: `try_add` itself."""
    if all(len(s) == 3 for s in srcs):
        p = flatten_points(srcs)
        cand = try_add(st, p, model(st, p), sx, sy)
        return None if cand is None else as_sources(cand.x)
    x, y, v, geom = st.x, st.y, st.v, st.geom
    G = design_srcs(x, y, srcs, geom)
    pred = G @ solve_linear(G, v)
    try:
        near, _vw, lx, ly, lv = local_view(srcs, x, y, v, geom, sx, sy, 3.0,
                                           margin=st.config.far_margin_m)
        sub = [srcs[i] for i in near]
        seeds = grid_seed(lx, ly, lv, geom, sub, sx, sy, keep=2, sides=True, cfg=st.config)
        for starts in (seeds[:2], seeds[2:]):
            best = _best_start_srcs(sub, starts, lx, ly, lv, geom)
            if best is None:
                verdict = "no_fit"
                break
            qs = put_back(srcs, near, best)
            verdict = verdict_of(st, pred, qs, sx, sy)
            # As in `try_add`: the mirror across a lane, once more from the other sides.
            if verdict != "too_close":
                break
    except (ValueError, np.linalg.LinAlgError) as exc:
        swallowed("addsources.try_add_srcs", exc)
        return None
    return qs if verdict == "ok" else None


def _best_start_srcs(sub: list[np.ndarray], starts: list[np.ndarray], lx: np.ndarray,
                     ly: np.ndarray, lv: np.ndarray,
                     geom: SensorGeometry) -> list[np.ndarray] | None:
    """`_best_start` on the local data ``lx, ly, lv`` among sources that may
    hold lines: the new point (last) fitted alone, then with the sources
    within 2.5 m of it free too unless that drags it more than 0.5 m."""
    best: tuple[float, list[np.ndarray]] | None = None
    k = len(sub)
    for g in starts:
        trial, sse = refit_local([*sub, g], [k], lx, ly, lv, geom)
        nx, ny = float(trial[k][0]), float(trial[k][1])
        nb = [i for i in range(k) if dist_to_src(sub[i], nx, ny) < 2.5]
        if nb:
            joint, sse_j = refit_local(trial, [*nb, k], lx, ly, lv, geom)
            if (np.all(np.isfinite(joint[k]))
                    and math.hypot(joint[k][0] - nx, joint[k][1] - ny) <= 0.5):
                trial, sse = joint, sse_j
        if np.isfinite(sse) and (best is None or sse < best[0]):
            best = (sse, trial)
    return None if best is None else best[1]


def _expand(pts: list[np.ndarray], near: list[int], cand: LMRun | None) -> LMRun | None:
    """A candidate fitted among the near sources, back among all of them."""
    if cand is None:
        return None
    sub = [cand.x[3 * j:3 * j + 3] for j in range(len(cand.x) // 3)]
    return LMRun(flatten_points(put_back(pts, near, sub)), cand.cost, cand.status)


def _best_start(st: FitState, p: np.ndarray, seeds: list[np.ndarray], sx: float, sy: float,
                vw: np.ndarray, lx: np.ndarray, ly: np.ndarray, lv: np.ndarray,
                refine_off_seed: bool = False) -> LMRun | None:
    """The cheapest local fit of one more source over the given starts
    (``vw``: the window's data, ``lx, ly, lv``: the part judged).
    ``refine_off_seed``: refine even when every start ended off the seed
    (the same verdict, for tests of the shortcut)."""
    x, y, geom = st.x, st.y, st.geom
    cand = None
    k = len(p) // 3
    parts = []
    for g in seeds:
        part = run_lm_local(np.concatenate((p, g)), [k], x, y, vw, geom, (sx, sy), 3.0)
        if np.isfinite(part.cost):
            parts.append(part)
    # The refinement below keeps a move of at most `JOINT_MOVE_M`: a source
    # every start left farther than `SEED_REACH_M` + that from the
    # seed ends off it whatever the refinement does (`judge`: "off_seed"), so
    # the refinements are not run and the nearest such source is judged.
    off = [math.hypot(part.x[-3] - sx, part.x[-2] - sy) for part in parts]
    if not refine_off_seed and parts and min(off) > SEED_REACH_M + JOINT_MOVE_M + 1e-9:
        return parts[int(np.argmin(off))]
    for part in parts:
        # Refine with the neighbours free too, unless that drags the new
        # source off the signal it was seeded on.
        nx, ny = part.x[-3], part.x[-2]
        nb = [i for i in range(k) if math.hypot(p[3 * i] - nx, p[3 * i + 1] - ny) < 2.5]
        r = part
        if nb:
            joint = run_lm_local(part.x, [*nb, k], x, y, vw, geom, (nx, ny), 3.5)
            if (np.isfinite(joint.cost)
                    and math.hypot(joint.x[-3] - nx, joint.x[-2] - ny) <= JOINT_MOVE_M):
                r = joint
        res_r = residual(r.x, lx, ly, lv, geom)
        r = LMRun(r.x, 0.5 * float(res_r @ res_r), r.status)
        if cand is None or r.cost < cand.cost:
            cand = r
    return cand


def judge(st: FitState, p: np.ndarray, pred: np.ndarray, cand: LMRun | None, sx: float,
          sy: float, solved: tuple[np.ndarray, np.ndarray] | None = None) -> str:
    """"ok" if the new (last) source of ``cand`` pays its way, else why not
    (``solved``: `solved_points` of ``p``: the columns of the sources the
    try left where they were are taken from it)."""
    if cand is None:
        return "no_fit"
    Gq = (None if solved is None
          else design_reusing(st.x, st.y, cand.x, p, solved[0], st.geom))
    return verdict_of(st, pred, as_sources(cand.x), sx, sy, Gq)


def verdict_of(st: FitState, pred: np.ndarray, qs: list[np.ndarray], sx: float,
               sy: float, Gq: np.ndarray | None = None) -> str:
    """`judge` of the sources ``qs`` (points or lines; the new one, a point,
    last) against the field ``pred`` of those before (``Gq``: their design
    on the window, when the caller has it)."""
    cfg = st.config
    x, y, v, geom = st.x, st.y, st.v, st.geom
    q = flatten_points([centre_point(s) for s in qs])
    if math.hypot(q[-3] - sx, q[-2] - sy) > SEED_REACH_M or not inside(q, st.footprint):
        return "off_seed"
    if Gq is None:
        Gq = design_srcs(x, y, qs, geom)
    # Judge the new source where it acts (2 m around it): elsewhere in a
    # wide window the misfit of a strong neighbour would drown its gain.
    loc = np.hypot(x - q[-3], y - q[-2]) < 2.0
    n_l = int(loc.sum())
    if n_l <= 7:
        return "few_samples"
    lin_q = solve_linear(Gq, v)
    r_old = (v - pred)[loc]
    r_new = (v - Gq @ lin_q)[loc]
    gain = information_gain(float(r_old @ r_old), float(r_new @ r_new), n_l)
    if not pays(gain, cfg.bic_gain) and cfg.joint and cfg.judge_alone:
        # A source with no other within reach, judged as the local fits
        # are: on its own samples, every other source held at its
        # whole-window moments. In a survey-wide cluster the moments
        # solved over the whole window serve the strongest source's
        # misfit, and a bomb 10 m from a 6600 nT one bought "no gain".
        # Only when isolated: beside a strong source its re-solved moment
        # takes up its misfit, and phantoms paid.
        pts = qs
        near, _vw, lx, ly, lv = local_view(pts, x, y, v, geom, q[-3], q[-2], 2.0,
                                           margin=cfg.far_margin_m)
        if near == [len(pts) - 1] and lx.size > 7:
            r_alone = local_res(pts[-1:], lx, ly, lv, geom)
            r_none = lv - float(np.mean(lv))
            gain = information_gain(float(r_none @ r_none), float(r_alone @ r_alone), lx.size)
    if not pays(gain, cfg.bic_gain):
        return "no_gain"
    if cfg.pairs_plausible and not pairs_plausible(q, lin_q, cfg.min_sep_m, cfg.close_m,
                                                   cfg.pair_ratio):
        return "too_close"
    return "ok"


def try_ring(st: FitState, p: np.ndarray, i: int, G: np.ndarray,
             lin: np.ndarray) -> LMRun | None:
    """One more source beside source ``i`` if it is mortar- or projectile-sized
    (the stage `ring_search`); ``G``, ``lin``: the window's design and
    moments for ``p``."""
    cfg = st.config
    x, y, v, geom, noise, robust = st.x, st.y, st.v, st.geom, st.noise, cfg.robust
    k = len(p) // 3
    m_i = float(np.linalg.norm(lin[3 * i:3 * i + 3]))
    if not cfg.ring_min_moment <= m_i < cfg.ring_max_moment:
        return None
    keep_i = m_i >= cfg.short_body_moment  # a long body: its own pair rule holds
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
    if not pays(information_gain(float(r_a @ r_a), 0.8 * n_a * noise * noise, n_a),
                cfg.ring_gain):
        return None
    pts = [p[3 * j:3 * j + 3] for j in range(k)]
    try:
        near, vn, lx, ly, lv = local_view(pts, x, y, v, geom, cx, cy, 2.5,
                                          margin=cfg.far_margin_m)
        pn = flatten_points([pts[j] for j in near])
        base = design_points(lx, ly, pn, geom)
        starts = [np.array([cx + r * math.cos(a), cy + r * math.sin(a), cfg.ring_depth])
                  for r in cfg.ring_radii for a in np.radians(np.arange(0.0, 360.0, 45.0))]
        costs = []
        for g in starts:
            Gc = np.hstack((base, design_matrix(lx, ly, g[0], g[1], g[2], geom)))
            r = Gc @ solve_linear(Gc, lv) - lv
            costs.append(float(r @ r))
        ii = near.index(i)
        best: LMRun | None = None
        # The body and the new source together, from the three best starts:
        # split off the weak one, the body moves back onto its own centre.
        for j in np.argsort(costs)[:3]:
            part = run_lm_local(np.concatenate((pn, starts[j])), [len(pn) // 3], x, y, vn,
                                geom, (cx, cy), 2.5)
            joint = run_lm_local(part.x, [ii, len(pn) // 3], x, y, vn, geom, (cx, cy), 2.5)
            if np.isfinite(joint.cost) and (best is None or joint.cost < best.cost):
                best = joint
        cand = _expand(pts, near, best)
    except (ValueError, np.linalg.LinAlgError) as exc:
        swallowed("fit.try_ring", exc)
        return None
    if cand is None or not np.isfinite(cand.cost):
        return None
    q = cand.x
    if not inside(q, st.footprint):
        return None
    Gq = design_points(x, y, q, geom)
    lq = solve_linear(Gq, v)
    loc = np.hypot(x - q[-3], y - q[-2]) < 2.0
    n_l = int(loc.sum())
    if n_l <= 7:
        return None
    r_old = (v - G @ lin)[loc]
    r_new = (v - Gq @ lq)[loc]
    gain = information_gain(float(r_old @ r_old), float(r_new @ r_new), n_l)
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
    if (not pays(gain, cfg.ring_gain) or sep < cfg.min_sep_m or m_new >= m_old
            or q[-1] >= q[3 * i + 2]
            # beside a projectile, only near-surface scrap: deeper, a
            # second source is the body's own misfit split off
            or (keep_i and q[-1] > cfg.ring_max_depth_long)
            or ((k > 1 or keep_i) and cfg.pairs_plausible
                and not pairs_plausible(others, lo, cfg.min_sep_m, cfg.close_m,
                                        cfg.pair_ratio))):
        return None
    sig2 = misfit_sigma(pts, x, y, v, geom, noise, cfg.pos_sigma_m, cfg.shape_rel)[loc] ** 2
    w_gain = penalised(chi2_drop(r_old, r_new, sig2, robust), n_l, 6)
    if not pays(w_gain, cfg.ring_weighted_gain_long if keep_i else cfg.ring_weighted_gain_short):
        return None
    return cand
