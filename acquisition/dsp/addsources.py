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
from typing import TYPE_CHECKING

import numpy as np

from acquisition.dsp.acceptance import chi2_drop, information_gain, pays, penalised
from acquisition.dsp.fitconfig import DEFAULT_FIT, FitConfig
from acquisition.dsp.fitcore import (
    LMRun,
    design_points,
    design_reusing,
    design_srcs,
    flatten_points,
    inside,
    local_res,
    local_view,
    misfit_sigma,
    put_back,
    refit_local,
    residual,
    run_lm_local,
    solve_linear,
)
from acquisition.dsp.plausibility import pairs_plausible
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

__all__ = ["JOINT_MOVE_M", "SEED_REACH_M", "grid_seed", "judge", "misfit_level", "model",
           "new_source_seed", "residual_peaks", "search_near_strong", "solved_points", "try_add",
           "try_ring"]

def grid_seed(x: np.ndarray, y: np.ndarray, v: np.ndarray, geom: SensorGeometry,
               fixed: np.ndarray, sx: float, sy: float, keep: int = 2,
               sides: bool = False, cfg: FitConfig = DEFAULT_FIT) -> list[np.ndarray]:
    """Best few (x, y, depth) for one more source on a small grid around (sx, sy)
    (`FitConfig.grid_depths`, `grid_dx`, `grid_dy`).

    Existing sources stay where they are; only the moments are re-solved for
    each candidate. All candidates are solved at once (batched normal
    equations), so the grid costs about as much as two or three LM steps and
    removes the local minima a single LM start can fall into (mostly in depth).
    """
    base = [design_matrix(x, y, fixed[3 * k], fixed[3 * k + 1], fixed[3 * k + 2], geom)
            for k in range(len(fixed) // 3)]
    base.append(np.ones((len(x), 1)))
    B = np.hstack(base)
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
    picks: list[tuple[float, float]] = []
    while len(picks) < cfg.near_budget:
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


def misfit_level(st: FitState, p: np.ndarray, falloff: bool = True,
                 solved: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """How much a single dipole may misfit each sample: |field of each source|
    × (depth + h) / distance, summed. An elongated body's misfit is a
    higher multipole and falls off one power of distance faster than its
    field, so far from a strong source a weak signal still counts.
    ``solved``: the design and moments of ``p`` on the window
    (`solved_points`), when the caller has them."""
    x, y = st.x, st.y
    G, lin = solved if solved is not None else solved_points(st, p)
    out = np.zeros(st.n)
    zs = st.geom.sensor_height_m
    for i in range(len(p) // 3):
        f = np.abs(G[:, 3 * i:3 * i + 3] @ lin[3 * i:3 * i + 3])
        z = p[3 * i + 2] + zs
        r = np.sqrt((x - p[3 * i]) ** 2 + (y - p[3 * i + 1]) ** 2 + z * z)
        out += f * (z / r) if falloff else f
    return out


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
    cfg = st.config
    x, y, v, geom = st.x, st.y, st.v, st.geom
    if cand is None:
        return "no_fit"
    q = cand.x
    if math.hypot(q[-3] - sx, q[-2] - sy) > SEED_REACH_M or not inside(q, st.footprint):
        return "off_seed"
    Gq = (design_points(x, y, q, geom) if solved is None
          else design_reusing(x, y, q, p, solved[0], geom))
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
        pts = [q[3 * j:3 * j + 3] for j in range(len(q) // 3)]
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
