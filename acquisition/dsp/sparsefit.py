"""Overlapping deep anomalies fitted jointly as a sparse model (the `sparse_deep` stage).

Two to four bombs 4-5 m deep and 3-5 m apart give one anomaly about 10 m
wide. The greedy stages model it with fewer sources, deeper and bigger,
between the bombs: one source is the best single explanation, and each
further one is seeded on a residual that the misfit allowed for the first
one hides. Here such a source and its deep neighbours are re-modelled from
scratch: candidate point sources on a 3-D grid over the anomaly; for fixed
positions the reading is linear in the moments, so each candidate is one
block of 3 columns and the selection is group orthogonal matching pursuit
(`select_blocks`: the block that lowers the misfit most, given the sources
so far); each pick is moved jointly with the sources before it by the
nonlinear fit (`fitcore.refit_local`) and kept while one more source pays
by the one criterion (`acceptance.prefers`); a set of the same size that
fits better is tried in place of the refitted one (the swaps are done on
the refitted sources, not on the grid); and the new set replaces the old
one only if it is preferred under the same criterion and the pair rules
allow it. Every model is judged with one free offset
on the local samples (one per lane, on the chords of a circle as wide as
the anomaly, would take most of it up) and in the chi-square of what the
current model may misfit (`fitcore.misfit_sigma`), like `broadfit.split_deep`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from acquisition.dsp.acceptance import chi2_drop, pays, penalised, prefers
from acquisition.dsp.broadfit import lane_free_res, lane_view
from acquisition.dsp.fitconfig import FitConfig
from acquisition.dsp.fitcore import (
    MAX_DEPTH,
    design_srcs,
    inside,
    misfit_sigma,
    refit_local,
    solve_linear,
)
from acquisition.dsp.plausibility import pairs_plausible
from acquisition.forward import SensorGeometry, design_batch
from acquisition.numfail import swallowed

__all__ = ["SOURCE_PARAMS", "Remodel", "candidate_grid", "refused_by_held", "remodel_deep_groups",
           "select_blocks", "sparse_deep"]

#: Parameters one more point source costs under the criterion: 3 of
#: position (a grid point is a chosen position) and 3 of moment; the offset
#: (or the lane offsets) is shared.
SOURCE_PARAMS = 6
Dropped = list[tuple[np.ndarray, str]]


def _lane_project(M: np.ndarray, ll: np.ndarray | None) -> np.ndarray:
    """``M`` (..., n) less its mean over each lane ``ll`` (less its mean if None):
    fitting the projected columns is fitting them with a free offset per lane."""
    if ll is None:
        return M - M.mean(axis=-1, keepdims=True)
    _, inv = np.unique(ll, return_inverse=True)
    onehot = np.zeros((inv.size, int(inv.max()) + 1))
    onehot[np.arange(inv.size), inv] = 1.0
    means = (M @ onehot) / onehot.sum(axis=0)
    return M - means[..., inv]


def candidate_grid(box: tuple[float, float, float, float], depths: tuple[float, ...],
                   spacing: float, max_points: int) -> np.ndarray:
    """Points (c, 3) on a grid over ``box`` (x0, x1, y0, y1) at ``depths``,
    ``spacing`` apart, widened until there are at most ``max_points``."""
    x0, x1, y0, y1 = box
    step = spacing
    while True:
        gx = np.arange(x0, x1 + 1e-9, step)
        gy = np.arange(y0, y1 + 1e-9, step)
        if gx.size * gy.size * len(depths) <= max_points or step > 10 * spacing:
            break
        step *= 1.15
    X, Y, D = np.meshgrid(gx, gy, np.asarray(depths, dtype=np.float64), indexing="ij")
    return np.column_stack((X.ravel(), Y.ravel(), D.ravel()))


def _orth(M: np.ndarray) -> np.ndarray:
    if M.shape[1] == 0:
        return M
    q, r = np.linalg.qr(M)
    keep = np.abs(np.diag(r)) > 1e-10 * max(1.0, float(np.abs(np.diag(r)).max()))
    return q[:, keep]


def select_blocks(blocks: np.ndarray, b: np.ndarray, base: np.ndarray, pts: np.ndarray,
                  bar: float, max_sel: int, min_sep: float,
                  taken: np.ndarray | None = None,
                  allowed: np.ndarray | None = None) -> list[int]:
    """Group orthogonal matching pursuit over candidate blocks.

    ``blocks`` (c, n, 3): the columns of each candidate (weighted and
    lane-projected like ``b``, the data); ``base`` (n, m): columns every
    model holds. A block is added while the misfit drop it buys pays its
    `SOURCE_PARAMS` under the criterion (`acceptance.prefers` with ``bar``
    on n samples), greedily: a chosen block is never swapped here (the
    stage improves its set on the refitted sources, off the grid). Chosen
    points are at least ``min_sep`` apart horizontally, and
    from each of the points (x, y) in ``taken``; only candidates ``allowed``
    (a mask; all if None) are chosen.
    Returns the indices of the chosen candidates.
    """
    n = b.size
    c = blocks.shape[0]
    flat = np.moveaxis(blocks, 0, 1).reshape(n, 3 * c)  # column 3 j + k: block j's k-th
    btb = np.einsum("cnk,cnl->ckl", blocks, blocks)  # once; later only projections
    eye = np.eye(3)
    near = [] if taken is None else list(np.asarray(taken).reshape(-1, 2))
    chosen: list[int] = []

    def basis(sel: list[int]) -> np.ndarray:
        return _orth(np.hstack([base, *[blocks[j] for j in sel]]))

    def best_add(sel: list[int]) -> tuple[int, float]:
        """The candidate whose block lowers the misfit most given ``sel``, and by how much."""
        Q = basis(sel)
        r = b - Q @ (Q.T @ b)
        # With A = (I - Q Q^T) B: A^T A = B^T B - (Q^T B)^T (Q^T B), A^T r = B^T r.
        P = (Q.T @ flat).reshape(Q.shape[1], c, 3)
        gram = btb - np.einsum("mck,mcl->ckl", P, P)
        rhs = (r @ flat).reshape(c, 3)
        gram = gram + 1e-9 * np.trace(btb, axis1=1, axis2=2)[:, None, None] * eye
        try:
            sol = np.linalg.solve(gram, rhs[..., None])[..., 0]
        except np.linalg.LinAlgError as exc:
            swallowed("sparsefit.select_blocks", exc)
            return -1, 0.0
        gain = np.einsum("ck,ck->c", rhs, sol)
        if allowed is not None:
            gain[~allowed] = -np.inf
        for px, py in [*(pts[j, :2] for j in sel), *near]:
            gain[np.hypot(pts[:, 0] - px, pts[:, 1] - py) < min_sep] = -np.inf
        k = int(np.argmax(gain))
        return (k, float(gain[k])) if np.isfinite(gain[k]) else (-1, 0.0)

    while len(chosen) < max_sel:
        k, gain = best_add(chosen)
        if k < 0 or not prefers(gain, n, SOURCE_PARAMS, bar):
            break
        chosen.append(k)
    return chosen


def _close_pair(pts: list[np.ndarray], min_sep: float) -> int | None:
    """The later of the first two points under ``min_sep`` apart, or None."""
    for j in range(1, len(pts)):
        for i in range(j):
            if math.hypot(pts[i][0] - pts[j][0], pts[i][1] - pts[j][1]) < min_sep:
                return j
    return None


def refused_by_held(new: list[np.ndarray], held: list[np.ndarray], lx: np.ndarray, ly: np.ndarray,
             lv: np.ndarray, geom: SensorGeometry, cfg: FitConfig) -> set[int]:
    """Indices of the ``new`` sources the pair rules refuse beside a held point."""
    every = [*held, *new]
    lin = solve_linear(design_srcs(lx, ly, every, geom), lv)
    bad = set()
    for q, a in enumerate(new):
        ia = len(held) + q
        for i, t in enumerate(held):
            if len(t) == 3 and not pairs_plausible(
                    np.concatenate((a, t)),
                    np.concatenate((lin[3 * ia:3 * ia + 3], lin[3 * i:3 * i + 3])),
                    cfg.min_sep_m, cfg.close_m, cfg.pair_ratio):
                bad.add(q)
    return bad


#: Remodels one deep group: (the local view's sources, the group's indices
#: among them, the view's x, y, v and lanes, the depth of the source that
#: opened it) -> the sources that replace the group, or None.
Remodel = Callable[[list[np.ndarray], list[int], np.ndarray, np.ndarray, np.ndarray,
                    np.ndarray | None, float], list[np.ndarray] | None]


def remodel_deep_groups(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                        geom: SensorGeometry, cfg: FitConfig, lanes: np.ndarray | None,
                        dropped: Dropped | None, *, min_depth: float, max_tries: int,
                        group_reach_m: float | None, remodel: Remodel,
                        stage: str, label: str) -> list[np.ndarray]:
    """The loop the deep-cluster stages share: each point source
    ``min_depth`` deep or deeper (deepest first, at most ``max_tries``
    local views) opens a local view of 1.5 x (depth + sensor height) + 2 m
    (at most `FitConfig.sparse_radius_m`), its group is every deep point
    source (`sparse_group_min_depth`) within ``group_reach_m`` of it (None:
    the whole view), and ``remodel`` may replace the group. Replaced
    sources go to ``dropped`` under ``stage``; a numerical failure is
    counted under ``label`` and leaves the group as it was."""
    h = geom.sensor_height_m
    out = [np.array(s, dtype=np.float64) for s in srcs]
    new_ids: set[int] = set()
    tries = 0
    for s in sorted([t for t in out if len(t) == 3 and t[2] >= min_depth],
                    key=lambda t: -float(t[2])):
        if tries >= max_tries:
            break
        if not any(t is s for t in out) or id(s) in new_ids:
            continue  # already replaced, or a source this stage put there
        cx, cy, d = (float(t) for t in s)
        radius = min(1.5 * (d + h) + 2.0, cfg.sparse_radius_m)
        near, lx, ly, lv, lanes_l = lane_view(out, x, y, v, geom, cx, cy, radius, lanes,
                                              margin=cfg.far_margin_m)
        if lx.size < cfg.min_samples * 4:
            continue
        tries += 1
        sub = [out[i] for i in near]
        reach = radius if group_reach_m is None else group_reach_m
        group = [j for j, t in enumerate(sub) if len(t) == 3
                 and t[2] >= cfg.sparse_group_min_depth
                 and math.hypot(t[0] - cx, t[1] - cy) <= reach]
        try:
            new = remodel(sub, group, lx, ly, lv, lanes_l, d)
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed(label, exc)
            continue
        if new is None:
            continue
        gone = [sub[j] for j in group]
        if dropped is not None:
            dropped += [(g.copy(), stage) for g in gone]
        out = [t for t in out if not any(t is g for g in gone)] + new
        new_ids |= {id(t) for t in new}
    return out


def sparse_deep(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                geom: SensorGeometry, noise: float, cfg: FitConfig,
                footprint: tuple[float, float, float, float], lanes: np.ndarray | None,
                dropped: Dropped | None = None) -> list[np.ndarray]:
    """Each deep point source (`FitConfig.sparse_min_depth`, deepest first)
    and the deep point sources near it (`sparse_group_m`) re-modelled as a
    sparse set of point sources (module docstring; the loop is
    `remodel_deep_groups`). The new set replaces them when it is
    preferred over them (chi-square with the current model's misfit sigma,
    `SOURCE_PARAMS` per source more or fewer, `FitConfig.bic_gain`), lies
    inside the footprint and above the depth bound, its sources are
    `sparse_min_sep_m` apart, and the pair rules hold between them and
    every source kept. The replaced sources go to ``dropped``."""

    def remodel(sub: list[np.ndarray], group: list[int], lx: np.ndarray, ly: np.ndarray,
                lv: np.ndarray, lanes_l: np.ndarray | None, d: float) -> list[np.ndarray] | None:
        held = [t for j, t in enumerate(sub) if j not in group]
        # One offset for the local samples, not one per lane (ll=None): an
        # anomaly of bombs 4-5 m deep is as wide as the local circle, and a
        # free offset on each lane's chord of it takes up most of it (the
        # bombs then come out shallower, closer together and in wrong places).
        return _remodel(sub, group, held, lx, ly, lv, None, geom, noise, cfg, d, footprint,
                        lanes_l)

    return remodel_deep_groups(srcs, x, y, v, geom, cfg, lanes, dropped,
                               min_depth=cfg.sparse_min_depth, max_tries=cfg.sparse_max_tries,
                               group_reach_m=cfg.sparse_group_m, remodel=remodel,
                               stage="sparse_deep", label="sparsefit.sparse_deep")


def _remodel(sub: list[np.ndarray], group: list[int], held: list[np.ndarray], lx: np.ndarray,
             ly: np.ndarray, lv: np.ndarray, ll: np.ndarray | None, geom: SensorGeometry,
             noise: float, cfg: FitConfig, d: float,
             footprint: tuple[float, float, float, float],
             lanes_l: np.ndarray | None) -> list[np.ndarray] | None:
    """The sparse set that replaces ``sub[group]``, or None if it does not pay."""
    sig = misfit_sigma(sub, lx, ly, lv, geom, noise, cfg.pos_sigma_m, cfg.shape_rel)
    w = 1.0 / sig
    gx = [float(sub[j][0]) for j in group]
    gy = [float(sub[j][1]) for j in group]
    half = min(max(cfg.sparse_box_min_m, cfg.sparse_box_depths * d), cfg.sparse_box_m)
    x0, x1, y0, y1 = footprint
    box = (max(min(gx) - half, x0, float(lx.min())), min(max(gx) + half, x1, float(lx.max())),
           max(min(gy) - half, y0, float(ly.min())), min(max(gy) + half, y1, float(ly.max())))
    if box[0] > box[1] or box[2] > box[3]:
        return None
    depths = (tuple(z for z in cfg.sparse_depths if z <= d + cfg.sparse_depth_margin_m)
              or (cfg.sparse_depths[0],))
    pts = candidate_grid(box, depths, cfg.sparse_spacing_m, cfg.sparse_max_grid)
    G = design_batch(lx, ly, pts[:, 0], pts[:, 1], pts[:, 2], geom)  # (c, n, 3)
    blocks = _lane_project(np.moveaxis(G, 2, 1), ll)  # (c, 3, n)
    blocks = np.moveaxis(blocks * w, 1, 2)
    b = _lane_project(lv, ll) * w
    def columns(model: list[np.ndarray]) -> np.ndarray:
        if not model:
            return np.empty((lx.size, 0))
        cols = design_srcs(lx, ly, model, geom)[:, :-1]
        return (_lane_project(cols.T, ll) * w).T

    sig2 = sig * sig
    n = lx.size
    free0 = len(held)

    def refit(start: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray] | None:
        """``start`` moved jointly (the held sources kept), and its residual;
        None if it leaves the footprint or two of it meet."""
        model, _sse = refit_local([*held, *start], list(range(free0, free0 + len(start))),
                                  lx, ly, lv, geom, lanes=ll)
        trial = [np.asarray(t, dtype=np.float64) for t in model[free0:]]
        if not all(np.all(np.isfinite(t)) and inside(t, footprint)
                   and t[2] < MAX_DEPTH - 1e-3 for t in trial):
            return None
        return trial, lane_free_res([*held, *trial], lx, ly, lv, ll, geom)

    def better(r_old: np.ndarray, r_new: np.ndarray, k: int) -> bool:
        return prefers(chi2_drop(r_old, r_new, sig2, cfg.robust), n, k, cfg.bic_gain)

    def pick(model: list[np.ndarray], above: float = math.inf) -> np.ndarray | None:
        # Not beside a held source either: its field is modelled already.
        taken = np.array([t[:2] for t in [*model, *held] if len(t) == 3]).reshape(-1, 2)
        k = select_blocks(blocks, b, columns([*held, *model]), pts, cfg.bic_gain, 1,
                          cfg.sparse_min_sep_m, taken=taken,
                          allowed=pts[:, 2] < above)
        return pts[k[0]].copy() if k else None

    new: list[np.ndarray] = []
    r_cur = lane_free_res(held, lx, ly, lv, ll, geom)
    max_sel = min(cfg.sparse_max_sources, cfg.max_sources - len(held))
    for _move in range(2 * max_sel + 2):
        # One block chosen on the grid given the sources so far (moved off
        # the grid by the refit), then all of them refitted jointly: on the
        # grid alone, each bomb between grid points leaves a residual that
        # buys another block.
        seed = pick(new) if len(new) < max_sel else None
        got = None if seed is None else refit([*new, seed])
        if got is not None and _close_pair(got[0], cfg.sparse_min_sep_m) is None:
            if better(r_cur, got[1], SOURCE_PARAMS):
                new, r_cur = got
                continue
            got = None
        # No further source pays, or the refit pulled two onto one place: a
        # set of the same size may still fit better. Tried: without either
        # of the two that met, or without the deepest source (the one that
        # models several), with a fresh pick in its place.
        alts: list[list[np.ndarray]] = []
        if got is not None:
            j = _close_pair(got[0], cfg.sparse_min_sep_m)
            assert j is not None
            i = next(i for i in range(j) if math.hypot(got[0][i][0] - got[0][j][0],
                                                      got[0][i][1] - got[0][j][1])
                     < cfg.sparse_min_sep_m)
            alts += [[t for q, t in enumerate(got[0]) if q != i],
                     [t for q, t in enumerate(got[0]) if q != j]]
        if new:
            # The deepest source out, and two fresh picks shallower than it
            # in its place (overlapping bombs fit as one sit deeper than
            # each of them).
            deep = max(range(len(new)), key=lambda q: float(new[q][2]))
            rest = [t for q, t in enumerate(new) if q != deep]
            top = float(new[deep][2]) - 1.0
            one = pick(rest, top)
            if one is not None:
                alts.append([*rest, one])
                two = pick([*rest, one], top) if len(new) < max_sel else None
                if two is not None:
                    alts.append([*rest, one, two])
        best: tuple[float, list[np.ndarray], np.ndarray] | None = None
        for alt in alts:
            r = refit(alt)
            if r is None or _close_pair(r[0], cfg.sparse_min_sep_m) is not None:
                continue
            gain = penalised(chi2_drop(r_cur, r[1], sig2, cfg.robust), n,
                             SOURCE_PARAMS * (len(r[0]) - len(new)))
            if best is None or gain > best[0]:
                best = (gain, *r)
        if best is None or not pays(best[0], cfg.bic_gain):
            break
        new, r_cur = best[1], best[2]
    if not new:
        return None
    # Each new source must be allowed and pay on its own: the pair rules
    # between it and each held one (among the new ones only the separation:
    # comparable bombs closer than their depth are what carpet bombing
    # leaves, and what this stage is for); no deeper than the deepest source
    # it replaces (bombs fitted as one sit deeper than each, so a deeper one
    # models a broad misfit, not an object); and, the others kept, its own 6
    # parameters paid. Those that fail go and the rest are refitted once.
    top = max(float(sub[j][2]) for j in group)

    def failing(model: list[np.ndarray]) -> set[int]:
        bad = refused_by_held(model, held, lx, ly, lv, geom, cfg) if cfg.pairs_plausible else set()
        bad |= {q for q, t in enumerate(model) if t[2] > top}
        # Here with a free offset per lane (``lanes_l``): a weak deep source
        # that lane levels explain as well is a level error, not an object.
        r_all = lane_free_res([*held, *model], lx, ly, lv, lanes_l, geom)
        for q in range(len(model)):
            r_less = lane_free_res([*held, *model[:q], *model[q + 1:]], lx, ly, lv, lanes_l,
                                   geom)
            if not better(r_less, r_all, SOURCE_PARAMS):
                bad.add(q)
        return bad

    bad = failing(new)
    if bad:
        kept = [t for q, t in enumerate(new) if q not in bad]
        got = refit(kept) if kept else None
        if got is None or _close_pair(got[0], cfg.sparse_min_sep_m) is not None or \
                failing(got[0]):
            return None
        new = got[0]
    r_now = lane_free_res(sub, lx, ly, lv, ll, geom)
    r_new = lane_free_res([*held, *new], lx, ly, lv, ll, geom)
    k = SOURCE_PARAMS * (len(new) - len(group))
    if not prefers(chi2_drop(r_now, r_new, sig2, cfg.robust), lx.size, k, cfg.bic_gain):
        return None
    return new
