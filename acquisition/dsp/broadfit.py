"""Steps of the source fit for broad clusters (one window over many lanes).

On a total-field survey the broad anomalies of deep bombs chain every lane
into one signal, and one fit window holds the whole survey. The greedy steps
of `fit.fit_sources` move a new source and its near neighbours only, lane
levels come from lanes a big anomaly covers end to end, and two deep bombs a
few metres apart look like one source. Here: per-lane re-levelling on the
fit residual, a refit moving every source at once, re-centring of isolated
sources, the split of deep sources fitted as one, and the removal of deep
sources a free offset per lane explains as well (`docs/dsp.md`, "Broad
clusters").
"""

from __future__ import annotations

import math

import numpy as np

from acquisition.dsp.acceptance import chi2_drop, information_gain, pays, penalised
from acquisition.dsp.fitconfig import DEFAULT_FIT, FitConfig
from acquisition.dsp.fitcore import (
    best_line,
    by_lane,
    centre_depth,
    centre_point,
    design_points,
    design_srcs,
    dist_to_src,
    flatten_points,
    index_of,
    inside,
    local_res,
    local_sse,
    local_view,
    misfit_sigma,
    moment_sizes,
    refit_local,
    residual,
    run_lm,
    solve_linear,
)
from acquisition.dsp.plausibility import implausible_weaker
from acquisition.forward import SensorGeometry
from acquisition.numfail import swallowed

__all__ = ["add_isolated", "drop_level_explained", "joint_refit", "lane_free_res", "lane_view",
           "neighbours_refit_gain", "recentre_isolated", "relevel", "split_deep"]


def joint_refit(p: np.ndarray, x: np.ndarray, y: np.ndarray, v: np.ndarray,
                 geom: SensorGeometry, lanes: np.ndarray | None, thr: float,
                 pair_rules: tuple[float, float, float],
                 footprint: tuple[float, float, float, float], *,
                 plausible: bool = True, dropped: list[tuple[np.ndarray, str]] | None = None,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """All sources of a broad window moved together, on re-levelled lanes.

    The greedy passes move a new source and its near neighbours only, so the
    first source of a survey-wide cluster, fitted alone to five overlapping
    deep bombs, stays where it landed: 10 m deep in the middle, modelling them
    all. Moving every source at once lets it go to one
    of them and the others be found. Pairs the joint fit pulls too close (a
    body split in two) lose their weaker source and are refitted. Returns
    (positions, data): the data re-levelled per lane on the new residual, and
    the old positions if the joint fit does not pay by BIC on those data.
    ``plausible=False`` leaves the pair rules out; ``dropped`` gets each
    source the kept fit lost and the rule that lost it.
    """
    k0 = len(p) // 3
    if k0 < 2:
        return p, v
    r = run_lm(p, x, y, v, geom)
    q = r.x
    if lanes is not None:
        v = relevel(v, -residual(q, x, y, v, geom), lanes, thr)
    min_sep, close_m, ratio = pair_rules
    lost: list[tuple[np.ndarray, str]] = []
    for _ in range(k0):
        r = run_lm(q, x, y, v, geom)
        q = r.x
        lin = solve_linear(design_points(x, y, q, geom), v)
        k = len(q) // 3
        drop = implausible_weaker(q, lin, min_sep, close_m, ratio) if plausible else None
        out = [i for i in range(k) if not inside(q[3 * i:3 * i + 3], footprint)]
        if drop is None and not out:
            break
        gone = set(out) | ({drop} if drop is not None else set())
        if len(gone) >= k:
            return p, v
        lost += [(q[3 * i:3 * i + 3].copy(),
                  "pairs_plausible" if i == drop else "drop_outside_footprint")
                 for i in sorted(gone)]
        q = flatten_points([q[3 * i:3 * i + 3] for i in range(k) if i not in gone])
    n = v.size
    r_old = residual(p, x, y, v, geom)
    r_new = residual(q, x, y, v, geom)
    # BIC of each model (7 parameters a source): the joint fit must pay for
    # any source it keeps beyond what the greedy one had.
    gain = information_gain(float(r_old @ r_old), float(r_new @ r_new), n,
                     k=7 * (len(q) // 3 - k0))
    if not pays(gain, 0.0):
        return p, v
    if dropped is not None:
        dropped += lost
    return q, v




def relevel(v: np.ndarray, res: np.ndarray, lanes: np.ndarray, thr: float,
              min_samples: int = 40) -> np.ndarray:
    """Remove per-lane offsets seen in the fit residual (median per lane).

    Only offsets over half the threshold are removed and only on lanes with
    ``min_samples`` in the window, so an ordinary window (levels already
    right) is left exactly as it was.
    """
    out = v
    for lane in np.unique(lanes):
        sel = lanes == lane
        if int(sel.sum()) < min_samples:
            continue
        off = float(np.median(res[sel]))
        if abs(off) > 0.5 * thr:
            if out is v:
                out = v.copy()
            out[sel] -= off
    return out


def recentre_isolated(p: np.ndarray, x: np.ndarray, y: np.ndarray, v: np.ndarray,
                       geom: SensorGeometry, cfg: FitConfig = DEFAULT_FIT) -> np.ndarray:
    """Refit each source with no neighbour near it on a window centred on itself.

    A source added in a broad window was fitted on the 3 m around the lane
    peak that seeded it; a deep bomb near the survey's edge is seeded on the
    one lobe of its anomaly the lanes cover, and the fit there placed it
    2.3 m off and 2.4 m too deep. Refitted twice on the
    samples within its own reach (1.5 x (depth + sensor height) + 1 m, at
    least 2.5 m, at most 5 m) around where it sits, the far sources held, it
    moves onto its anomaly. Kept only if the misfit on the new window drops.
    """
    k = len(p) // 3
    q = np.array(p, dtype=np.float64)
    h = geom.sensor_height_m
    for i in range(k):
        for _ in range(2):
            cx, cy, d = (float(t) for t in q[3 * i:3 * i + 3])
            rad = min(max(2.5, 1.5 * (d + h) + 1.0), 5.0)
            pts = [q[3 * j:3 * j + 3] for j in range(k)]
            near, _vw, lx, ly, lv = local_view(pts, x, y, v, geom, cx, cy, rad,
                                               margin=cfg.far_margin_m)
            if near != [i] or lx.size < 30 or lx.size == x.size:
                break
            try:
                r = run_lm(q[3 * i:3 * i + 3], lx, ly, lv, geom)
            except (ValueError, np.linalg.LinAlgError) as exc:
                swallowed("broadfit.recentre_isolated", exc)
                break
            old = residual(q[3 * i:3 * i + 3], lx, ly, lv, geom)
            if not (np.isfinite(r.cost) and 2.0 * r.cost < float(old @ old)):
                break
            moved = math.hypot(r.x[0] - cx, r.x[1] - cy)
            q[3 * i:3 * i + 3] = r.x
            if moved < 0.05:
                break
    return q


def split_deep(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                geom: SensorGeometry, noise: float,
                footprint: tuple[float, float, float, float],
                lanes: np.ndarray | None = None,
                cfg: FitConfig = DEFAULT_FIT) -> list[np.ndarray]:
    """Two deep objects a few metres apart, fitted as one source, split in two.

    Two bombs 5 m deep and 4.7 m apart give one broad anomaly; the greedy
    search fits one source between them and their residual stays under what
    that source may misfit, so no second source is ever tried. The pair
    rules refuse such a pair on principle (comparable
    sources closer than their depth are usually one body's misfit split in
    two). Here each point source `FitConfig.split_min_depth` deep or deeper
    is tried as two, seeded on the `split_azimuths` at 0.6 and 1.0 × its
    depth apart. The pair replaces it only if it is a split (the old centre
    between the two, `split_centre`), they end up at least
    `split_min_sep_m` apart (farther than a body is long), neither deeper
    than the single source (up to `split_depth_tol`), inside the footprint, and it pays
    by BIC both against the single source and against the best line source
    (chi-square with the misfit sigma of `misfit_sigma`). With ``lanes``,
    every model is judged with a free offset per lane: the levels of lanes a
    big anomaly covers are off by nT. Run after the line sources, so that
    strong neighbours' point misfit is gone: before it, and without the depth
    rule, a lone bomb 4.3 m deep beside a 3700 nT one was split.
    """
    bic_gain, robust = cfg.bic_gain, cfg.robust
    h = geom.sensor_height_m
    out = [np.array(s, dtype=np.float64) for s in srcs]
    for s in sorted([t for t in out if len(t) == 3 and t[2] >= cfg.split_min_depth],
                    key=lambda t: -float(t[2])):
        cx, cy, d = (float(t) for t in s)
        near, lx, ly, lv, ll = lane_view(out, x, y, v, geom, cx, cy,
                                          min(1.5 * (d + h) + 2.0, 9.0), lanes,
                                          margin=cfg.far_margin_m)
        n_l = lx.size
        if n_l < 60:
            continue
        sub = [out[i] for i in near]
        i = index_of(sub, s)
        sig2 = misfit_sigma(sub, lx, ly, lv, geom, noise, cfg.pos_sigma_m, cfg.shape_rel) ** 2
        r_now = lane_free_res(sub, lx, ly, lv, ll, geom)
        rest = [t for j, t in enumerate(sub) if j != i]
        seeds = []
        for az in np.radians(cfg.split_azimuths):
            for sep in (0.6 * d, 1.0 * d):
                ux, uy = 0.5 * sep * math.sin(az), 0.5 * sep * math.cos(az)
                seeds.append([np.array([cx - ux, cy - uy, d]), np.array([cx + ux, cy + uy, d])])
        scored = sorted(range(len(seeds)),
                        key=lambda k: local_sse([*rest, *seeds[k]], lx, ly, lv, geom))
        best: tuple[float, list[np.ndarray]] | None = None
        for k in scored[:2]:
            try:
                cand, sse = refit_local([*rest, *seeds[k]], [len(rest), len(rest) + 1],
                                         lx, ly, lv, geom)
            except (ValueError, np.linalg.LinAlgError) as exc:
                swallowed("broadfit.split_deep", exc)
                continue
            a, b = cand[-2], cand[-1]
            ab = b[:2] - a[:2]
            sep = float(np.hypot(*ab))
            t = float(np.dot([cx - a[0], cy - a[1]], ab)) / max(sep * sep, 1e-9)
            # Two objects fitted as one sit between them, nearer the stronger
            # (two bombs of 22 and 14 A m^2 3.4 m apart: at 0.14 of the way),
            # and deeper than either, up to the depth's own error (their
            # joint anomaly is wider): a "pair" on one side of the single
            # source, or below it, explains some broad misfit, not two objects.
            if (sep < cfg.split_min_sep_m
                    or not cfg.split_centre <= t <= 1.0 - cfg.split_centre
                    or max(a[2], b[2]) > cfg.split_depth_tol * d
                    or not (inside(a, footprint) and inside(b, footprint))):
                continue
            if best is None or sse < best[0]:
                best = (sse, cand)
        if best is None:
            continue
        pair = best[1]
        r_pair = lane_free_res(pair, lx, ly, lv, ll, geom)
        if not pays(penalised(chi2_drop(r_now, r_pair, sig2, robust), n_l, 6), bic_gain):
            continue
        try:
            e = best_line(sub, i, d, lx, ly, lv, geom, cfg)
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("broadfit.split_deep", exc)
            e = None
        if e is not None:
            r_line = lane_free_res([*sub[:i], e, *sub[i + 1:]], lx, ly, lv, ll, geom)
            if not pays(penalised(chi2_drop(r_line, r_pair, sig2, robust), n_l, 3), bic_gain):
                continue
        out = [t for j, t in enumerate(out) if j not in near] + pair
    return out


def lane_view(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
               geom: SensorGeometry, cx: float, cy: float, radius: float,
               lanes: np.ndarray | None, *, margin: float
               ) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """`local_view` (near sources, local samples with the far fields out) and
    the lane of each local sample; None without ``lanes`` or when the view
    fell back to the whole window (too few samples near)."""
    near, _vw, lx, ly, lv = local_view(srcs, x, y, v, geom, cx, cy, radius, margin=margin)
    ll = None
    if lanes is not None:
        loc = np.hypot(x - cx, y - cy) < radius
        if int(loc.sum()) == lx.size:
            ll = np.asarray(lanes)[loc]
    return near, lx, ly, lv, ll


def lane_free_res(model: list[np.ndarray], lx: np.ndarray, ly: np.ndarray, lv: np.ndarray,
                   ll: np.ndarray | None, geom: SensorGeometry,
                   w: np.ndarray | None = None) -> np.ndarray:
    """Residual of the best moments with a free offset per lane ``ll`` (one
    offset for all if None; the data alone if ``model`` is empty), weighted
    by ``w`` = 1/sigma if given."""
    if ll is None:
        return local_res(model, lx, ly, lv, geom, w)
    b = by_lane(lv[:, None], ll)[:, 0]
    if w is not None:
        b = b * w
    if not model:
        return -b
    G = by_lane(design_srcs(lx, ly, model, geom)[:, :-1], ll)
    if w is not None:
        G = G * w[:, None]
    return G @ solve_linear(G, b) - b


def drop_level_explained(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray,
                          v: np.ndarray, geom: SensorGeometry, noise: float, lanes: np.ndarray,
                          cfg: FitConfig = DEFAULT_FIT, *,
                          dropped: list[tuple[np.ndarray, str]] | None = None,
                          ) -> list[np.ndarray]:
    """Drop the deep (and the surface) point sources a free offset per lane
    explains as well.

    In a survey-wide window the lane levels are only as good as the masked
    median of lanes a big anomaly covers end to end, and errors of 1-4 nT
    remain (e.g. a 3700 nT bomb's flanks). A deep source with
    a broad weak field soaks that up (e.g. four phantoms of 2-4 nT,
    4-7 m deep). Each point source `FitConfig.level_min_depth` or deeper, weakest first,
    is judged on its surroundings with the other sources held and every
    lane's offset free (`by_lane`): it stays only if it still pays its 6
    parameters by BIC (chi-square with `misfit_sigma`). One that still
    pays is judged once more with its strong neighbours free to move
    (`neighbours_refit_gain`): held, their far-field misfit is what it
    takes up. The strongest source always stays.

    Sources at most `level_shallow_max` deep are judged the same way: their
    anomaly is about a metre across, a few tenths of the lane stretch the
    window holds, so a free offset cannot explain a real nail, but it does
    explain a lane-end level step a surface source took up (e.g.
    0.004 A m2 at the surface on a lane 0.7 nT off); and the second judge
    finds the phantom a held body's near-field misfit makes beside it (e.g.
    0.17 m deep, 0.7 m from a mortar fitted as a point).
    Sources between are left alone: near the end of the lanes, where a
    window holds short stretches of them, free offsets also explain a real
    projectile's 2.4 nT at 2.6 m.

    `FitConfig.neighbours_refit_gain` off leaves `neighbours_refit_gain`
    out; ``dropped`` gets each source dropped.
    """
    bic_gain, robust = cfg.bic_gain, cfg.robust
    min_depth, shallow_max = cfg.level_min_depth, cfg.level_shallow_max
    h = geom.sensor_height_m
    out = list(srcs)
    mags = moment_sizes(out, x, y, v, geom)
    strongest = out[int(np.argmax(mags))]
    for _m, s in sorted(zip(mags, out, strict=True), key=lambda t: t[0]):
        if len(s) != 3 or s is strongest or shallow_max < s[2] < min_depth:
            continue
        cx, cy, d = (float(t) for t in s)
        near, lx, ly, lv, ll = lane_view(out, x, y, v, geom, cx, cy,
                                          min(1.5 * (d + h) + 2.0, 9.0), lanes,
                                          margin=cfg.far_margin_m)
        if ll is None or lx.size < 30:
            continue
        sub = [out[i] for i in near]
        without = [t for t in sub if t is not s]
        sig2 = misfit_sigma(sub, lx, ly, lv, geom, noise, cfg.pos_sigma_m, cfg.shape_rel) ** 2
        r_without = lane_free_res(without, lx, ly, lv, ll, geom)
        r_with = lane_free_res(sub, lx, ly, lv, ll, geom)
        gain = penalised(chi2_drop(r_without, r_with, sig2, robust), lx.size, 6)
        if pays(gain, bic_gain) and cfg.neighbours_refit_gain:
            gain = neighbours_refit_gain(out, s, x, y, v, geom, noise, lanes,
                                          min(1.5 * (d + h) + 2.0, 9.0), cfg)
        if not pays(gain, bic_gain):
            out = [t for t in out if t is not s]
            if dropped is not None:
                dropped.append((s.copy(), "drop_level_explained"))
    return out


def neighbours_refit_gain(srcs: list[np.ndarray], s: np.ndarray, x: np.ndarray, y: np.ndarray,
                           v: np.ndarray, geom: SensorGeometry, noise: float, lanes: np.ndarray,
                           radius: float, cfg: FitConfig = DEFAULT_FIT) -> float:
    """What source ``s`` pays once its strong neighbours may move too.

    Held where they are, the strong sources of a survey-wide window leave
    their misfit (a body is no uniform line; 10 m from a 320 nT bomb,
    0.4 nT rms) on top of lane levels that are off by several nT, and a
    weak source takes up both: deep and far off (e.g.
    4.3 m deep, 6 m from one bomb and 10 m from another), or shallow and
    close (e.g. 0.17 m deep, 0.7 m from a mortar). Here every source
    `FitConfig.level_strength` times stronger, shallower than
    `level_min_depth`, whose field over ``s``'s surroundings varies at least
    `level_vary_share` times as much as
    ``s``'s own (free offsets per lane taken out) is refitted with and
    without ``s`` (``s`` held where it is), on those surroundings and its
    own, with a free offset per lane, in the chi-square weighted by what
    the others may misfit (`misfit_sigma`). The BIC gain that leaves is
    returned; ``inf`` when no neighbour qualifies, or when one moves over
    `level_max_move_m` without ``s`` (then it was not explaining that anomaly,
    it would be serving it).
    """
    strength, reach, min_depth = cfg.level_strength, cfg.level_vary_share, cfg.level_min_depth
    h = geom.sensor_height_m
    k = index_of(srcs, s)
    cx, cy = float(s[0]), float(s[1])
    G = design_srcs(x, y, srcs, geom)
    lin = solve_linear(G, v)
    disc = np.hypot(x - cx, y - cy) < radius
    ld = lanes[disc]

    def varies(i: int) -> float:
        f = G[disc][:, 3 * i:3 * i + 3] @ lin[3 * i:3 * i + 3]
        return float(np.std(by_lane(f[:, None], ld)[:, 0]))

    mags = [float(np.linalg.norm(lin[3 * i:3 * i + 3])) for i in range(len(srcs))]
    own = varies(k)
    # Deep sources stay held: they are what this step judges, not the bodies
    # whose misfit a phantom takes up (freed, a 8 m deep one flew off to 22 m).
    free = [i for i in range(len(srcs)) if i != k and mags[i] >= strength * mags[k]
            and centre_depth(srcs[i])[2] < min_depth and varies(i) >= reach * own]
    if not free:
        return math.inf
    sel = disc.copy()
    reach_of = {k: radius}
    for i in free:
        jx, jy, jd = centre_depth(srcs[i])
        r_i = 1.2 * (jd + h) + 1.5
        sel |= np.hypot(x - jx, y - jy) < r_i
        reach_of[i] = r_i
    # Sources far from every part of the data keep their whole-window
    # moments (`FitConfig.far_margin_m`): re-solved locally they would soak
    # up any broad residual.
    near = [i for i in range(len(srcs)) if i in reach_of or any(
        dist_to_src(srcs[i], *centre_depth(srcs[j])[:2]) <= r + cfg.far_margin_m
        for j, r in reach_of.items())]
    far_cols = [c for i in range(len(srcs)) if i not in near for c in range(3 * i, 3 * i + 3)]
    vw = v - G[:, far_cols] @ lin[far_cols] if far_cols else v
    lx, ly, lv, ll = x[sel], y[sel], vw[sel], lanes[sel]
    cur = [srcs[i] for i in near]
    ki = near.index(k)
    without = [t for j, t in enumerate(cur) if j != ki]
    # The sigma of what the others may misfit: with ``s`` in it, a shallow
    # source's own steep field would halve the chi-square it is judged by.
    w = 1.0 / misfit_sigma(without, lx, ly, lv, geom, noise, cfg.pos_sigma_m, cfg.shape_rel)
    fi = [near.index(i) for i in free]
    # ``s`` stays where the greedy steps put it: set free, it moves on to
    # model something else entirely.
    with_s, _ = refit_local(cur, fi, lx, ly, lv, geom, w=w, lanes=ll)
    fw = [j if j < ki else j - 1 for j in fi]
    moved, _ = refit_local(without, fw, lx, ly, lv, geom, w=w, lanes=ll)
    r_with = lane_free_res(with_s, lx, ly, lv, ll, geom, w)
    r_without = lane_free_res(moved, lx, ly, lv, ll, geom, w)
    for j in fw:
        a, b = centre_depth(without[j]), centre_depth(moved[j])
        if math.hypot(a[0] - b[0], a[1] - b[1]) > cfg.level_max_move_m:
            return math.inf
    return penalised(chi2_drop(r_without, r_with, np.ones(lx.size), cfg.robust), lx.size, 6)


def add_isolated(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                  geom: SensorGeometry, noise: float, thr: float,
                  lanes: np.ndarray, footprint: tuple[float, float, float, float],
                  cfg: FitConfig = DEFAULT_FIT) -> list[np.ndarray]:
    """One more source for each strong residual peak far from every source.

    A deep object's residual peak lies on one of its lobes, up to 0.72 x its
    distance below the sensor to one side of it, and the greedy steps refuse
    a new source that settles more than 1.5 m from its seed (total-field
    e.g. projectiles 2.4-2.6 m deep, fitted right 1.9 and 2.3 m
    from their seeds, missed). Loosening that rule there let deep phantoms in
    elsewhere, because a source accepted mid-way changes every later step.
    Here, at the end, every other source is held: a peak over twice the
    threshold and three times what the fitted sources may misfit there, but
    under `FitConfig.isolated_max_peak` x the threshold (the greedy steps
    seat strong signals), `isolated_clear_m` from every source (at most
    `isolated_budget` of them), gets a point fit on the residual within
    `isolated_radius_m` (a grid of starts at the `lone_depths` and
    `lone_offsets`, then LM). It is kept if it pays by BIC, lies within
    0.75 x (depth + sensor height) + 0.5 m of the peak and
    `isolated_clear_m` - 0.5 m from every source, is at most
    `isolated_max_depth` deep, and still pays with a free offset per lane
    (not a lane-level phantom).
    """
    if not srcs:
        return srcs
    bic_gain, clear_m, radius = cfg.bic_gain, cfg.isolated_clear_m, cfg.isolated_radius_m
    out = list(srcs)
    G = design_srcs(x, y, out, geom)
    lin = solve_linear(G, v)
    res = v - G @ lin
    sig = misfit_sigma(out, x, y, v, geom, noise, cfg.pos_sigma_m, cfg.shape_rel)
    h = geom.sensor_height_m
    cen = [(float(c[0]), float(c[1])) for c in map(centre_point, out)]
    far = np.ones(x.size, dtype=bool)
    for cx, cy in cen:
        far &= np.hypot(x - cx, y - cy) >= clear_m
    a = np.abs(res)
    over = a >= np.maximum(2.0 * thr, 3.0 * sig)
    # Weak signals only: a strong residual three metres from a source is
    # that source's misfit (a bomb 0.12 m deep fitted as a point: 115 nT
    # three metres from its centre).
    score = np.where(far & over & (a <= cfg.isolated_max_peak * thr), a, -np.inf)
    tried = 0
    while tried < cfg.isolated_budget:
        j = int(np.argmax(score))
        if not np.isfinite(score[j]):
            break
        px, py = float(x[j]), float(y[j])
        d_j = np.hypot(x - px, y - py)
        score[d_j < radius] = -np.inf
        if int(np.count_nonzero(over & (d_j < 0.35))) < 2:
            continue  # a lone spike is not a signal
        tried += 1
        loc = d_j < radius
        lx, ly, lr, ll = x[loc], y[loc], res[loc], lanes[loc]
        if lx.size < 30:
            continue
        starts = [np.array([px + dx, py + dy, dd]) for dd in cfg.lone_depths
                  for dx in cfg.lone_offsets for dy in cfg.lone_offsets]
        costs = []
        for s in starts:
            Gs = design_srcs(lx, ly, [s], geom)
            r = Gs @ solve_linear(Gs, lr) - lr
            costs.append(float(r @ r))
        best = None
        for k in np.argsort(costs)[:2]:
            r = run_lm(starts[k], lx, ly, lr, geom)
            if np.isfinite(r.cost) and (best is None or r.cost < best.cost):
                best = r
        if best is None:
            continue
        q = best.x
        qx, qy, qd = float(q[0]), float(q[1]), float(q[2])
        if (qd > cfg.isolated_max_depth or not inside(q, footprint)
                or math.hypot(qx - px, qy - py) > 0.75 * (qd + h) + 0.5
                or any(math.hypot(qx - cx, qy - cy) < clear_m - 0.5 for cx, cy in cen)):
            continue
        r_none = lr - float(np.mean(lr))
        r_one = local_res([q], lx, ly, lr, geom)
        if not pays(information_gain(float(r_none @ r_none), float(r_one @ r_one), lx.size),
                    bic_gain):
            continue
        sig2 = noise * noise
        drop = chi2_drop(lane_free_res([], lx, ly, lr, ll, geom),
                          lane_free_res([q], lx, ly, lr, ll, geom), sig2, False)
        if not pays(penalised(drop, lx.size, 6), bic_gain):
            continue
        out.append(q)
        cen.append((qx, qy))
        far &= np.hypot(x - qx, y - qy) >= clear_m
        score[~far] = -np.inf
    return out
