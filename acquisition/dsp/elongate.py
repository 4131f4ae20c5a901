"""Strong point sources refitted as line sources (munition cases) where the data ask.

A point dipole is a fine model of a bomb at 3 m, a poor one of the same bomb
half a metre down, and the greedy fit (`fit.fit_sources`) of a long body in
its near field leaves a strong point plus weak "neighbours" that take up its
misfit, or, just under the surface, a cluster of points and lines none of
which is the bomb. `elongate_sources` tries a line (`acquisition.forward.line`) in their place and
keeps it where it pays by BIC; `judge_weak` then re-judges the weak
neighbours against the line, and `replace_beside_lines` re-places the
sources a joint fit had pulled toward the body's misfit (`docs/dsp.md`,
"Elongated bodies").
"""

from __future__ import annotations

import math

import numpy as np

from acquisition.dsp.acceptance import chi2_drop, pays, penalised
from acquisition.dsp.fitconfig import DEFAULT_FIT, FitConfig
from acquisition.dsp.fitcore import (
    best_line,
    centre_depth,
    design_srcs,
    dist_to_src,
    fit_line_local,
    index_of,
    local_res,
    local_view,
    misfit_sigma,
    put_back,
    refit_local,
    solve_linear,
)
from acquisition.forward import SensorGeometry, describe
from acquisition.numfail import swallowed

__all__ = ["elongate_sources", "judge_weak", "replace_beside_lines", "signal_centre"]


def signal_centre(group: list[np.ndarray], srcs: list[np.ndarray], x: np.ndarray,
                   y: np.ndarray, v: np.ndarray, geom: SensorGeometry) -> tuple[float, float]:
    """Centre of the ``group`` of ``srcs``, each weighted by the peak of the
    field it predicts on the samples (the anomaly it explains).

    Not by moment: a greedy fit of a body just under the surface can hold a
    pair of deep sources with large, nearly opposite moments (25 Am2 each
    where the bomb has 15) whose fields cancel; weighted by moment they drag
    the centre a metre off the anomaly.
    """
    G = design_srcs(x, y, srcs, geom)
    lin = solve_linear(G, v)
    w, cx, cy = 0.0, 0.0, 0.0
    for t in group:
        k = index_of(srcs, t)
        m = float(np.max(np.abs(G[:, 3 * k:3 * k + 3] @ lin[3 * k:3 * k + 3])))
        px, py, _d = centre_depth(t)
        w, cx, cy = w + m, cx + m * px, cy + m * py
    return (cx / w, cy / w) if w > 0 else (float(group[0][0]), float(group[0][1]))


def elongate_sources(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
              geom: SensorGeometry, noise: float, thr: float,
              cfg: FitConfig = DEFAULT_FIT,
              dropped: list[tuple[np.ndarray, str]] | None = None) -> list[np.ndarray]:
    """Refit strong point sources as line sources where the data ask for it.

    A strong source (predicted peak over `FitConfig.line_min_peak_snr` ×
    noise, and a moment of at least `line_min_moment`: a body a metre long is
    a mortar or bigger, a bomblet's field is a point's) is refitted as a line
    (`acquisition.forward.line`) on its own surroundings, the other sources held, two ways:
    with its weak neighbours (under `line_weak_ratio` of its moment, within
    `line_reach_m`) kept, and without them — a point fit of a long body often
    grew a weak "neighbour" to take its misfit, and with that neighbour held
    the line gains nothing. A point in the near field (< `near_field_m`
    deep) has a third try: the line replaces every source within `line_reach_m`,
    whatever its size. The best by BIC replaces the point if it pays, the
    line is `line_min_length_m`-`line_max_length_m` long and its centre stays within
    0.75 m of the point (of the replaced sources' signal-weighted centre, for
    the third try). Then every weak neighbour is judged against the line:
    kept (or put back) only if it still pays its 6 parameters.

    All gains are chi-square drops with the sigma a right model still
    misfits (`misfit_sigma`: noise, and a few cm of position error on the
    slopes), Huber-capped on magnetic ground (`FitConfig.robust`).
    `FitConfig.judge_weak` off leaves `judge_weak` out (the best model is
    taken as it is); ``dropped`` gets each source a line replaced or judged away.
    """
    bic_gain, pos_sigma, robust, rejudge = cfg.bic_gain, cfg.pos_sigma_m, cfg.robust, cfg.judge_weak
    ratio, reach_m = cfg.line_weak_ratio, cfg.line_reach_m
    srcs = [np.array(s, dtype=np.float64) for s in srcs]
    h = geom.sensor_height_m
    G = design_srcs(x, y, srcs, geom)
    lin = solve_linear(G, v)
    mag = {id(s): float(np.linalg.norm(lin[3 * k:3 * k + 3])) for k, s in enumerate(srcs)}
    peak = {id(s): float(np.max(np.abs(G[:, 3 * k:3 * k + 3] @ lin[3 * k:3 * k + 3])))
            for k, s in enumerate(srcs)}
    tried: set[int] = set()
    while True:
        todo = [s for s in srcs if len(s) == 3 and id(s) not in tried
                and peak[id(s)] >= cfg.line_min_peak_snr * noise
                and mag[id(s)] >= cfg.line_min_moment]
        if not todo:
            break
        s = max(todo, key=lambda t: mag[id(t)])
        tried.add(id(s))
        cx, cy, d = (float(t) for t in s)
        radius = min(max(2.0, 1.5 * (d + h) + 1.0), 4.0)
        near, _vw, lx, ly, lv = local_view(srcs, x, y, v, geom, cx, cy, radius,
                                           margin=cfg.far_margin_m)
        n_l = lx.size
        if n_l < 40:
            continue
        far = [t for i, t in enumerate(srcs) if i not in near]
        sub = [srcs[i] for i in near]
        weak = [t for t in sub if t is not s and len(t) == 3
                and mag[id(t)] < ratio * mag[id(s)] and math.hypot(t[0] - cx, t[1] - cy) < reach_m]
        sig2 = misfit_sigma(sub, lx, ly, lv, geom, noise, pos_sigma, cfg.shape_rel) ** 2
        r_now = local_res(sub, lx, ly, lv, geom)
        best: tuple[float, list[np.ndarray], np.ndarray] | None = None
        # A big body just under the surface, along the lanes, can leave the
        # greedy pass as a cluster of strong points and lines around it, none
        # of them the body: one more try replaces them all by one line,
        # anchored at their signal-weighted centre (0.2 m deep, five points).
        near_field = d < cfg.near_field_m
        cluster = [t for t in sub if t is not s and dist_to_src(t, cx, cy) < reach_m]
        drops = [[], *([weak] if weak else [])]
        if near_field and len(cluster) > len(weak):
            drops.append(cluster)
        for drop in drops:
            cand = [t for t in sub if not any(t is w for w in drop)]
            i = index_of(cand, s)
            whole = drop is cluster
            e = best_line(cand, i, d, lx, ly, lv, geom, cfg, shallow=near_field)
            if e is None:
                continue
            info = describe(e)
            ax, ay = signal_centre([s, *drop], sub, lx, ly, lv, geom) if whole else (cx, cy)
            if (not (cfg.line_min_length_m <= info["length_m"] <= cfg.line_max_length_m)
                    or math.hypot(info["x"] - ax, info["y"] - ay) > 0.75):
                continue
            cand[i] = e
            gain = penalised(chi2_drop(r_now, local_res(cand, lx, ly, lv, geom), sig2, robust),
                             n_l, 3 - 6 * len(drop))
            if pays(gain, bic_gain) and (best is None or gain > best[0]):
                best = (gain, cand, e)
        if best is None:
            continue
        _gain, best_sub, line = best
        mag[id(line)], peak[id(line)] = mag[id(s)], peak[id(s)]
        kept = (judge_weak(best_sub, line, weak, lx, ly, lv, geom, noise, cfg)
                if rejudge else best_sub)
        if dropped is not None:
            dropped += [(t.copy(), "judge_weak" if any(t is w for w in weak) and rejudge
                         else "elongate_sources")
                        for t in sub if t is not s and not any(t is u for u in kept)]
        srcs = [*far, *kept]
    return srcs


def judge_weak(srcs: list[np.ndarray], line: np.ndarray, weak: list[np.ndarray],
                lx: np.ndarray, ly: np.ndarray, lv: np.ndarray, geom: SensorGeometry,
                noise: float, cfg: FitConfig) -> list[np.ndarray]:
    """Keep (or put back) each weak neighbour of a new line only if it pays."""
    for w in weak:
        present = any(t is w for t in srcs)
        with_w = srcs if present else [*srcs, w]
        without = [t for t in srcs if t is not w]
        i = index_of(without, _line_in(without, line))
        try:
            refit = fit_line_local(without, i, without[i], lx, ly, lv, geom)[0]
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("elongate.judge_weak", exc)
            continue
        without = [*without[:i], refit, *without[i + 1:]]
        sig2 = misfit_sigma(with_w, lx, ly, lv, geom, noise, cfg.pos_sigma_m, cfg.shape_rel) ** 2
        g_w = penalised(chi2_drop(local_res(without, lx, ly, lv, geom),
                                  local_res(with_w, lx, ly, lv, geom), sig2, cfg.robust),
                        lx.size, 6)
        if pays(g_w, cfg.bic_gain):
            srcs = with_w
        else:
            srcs, line = without, refit
    return srcs


def _line_in(srcs: list[np.ndarray], line: np.ndarray) -> np.ndarray:
    """The list's line source that is (or replaced) ``line``: the nearest line."""
    lines = [t for t in srcs if len(t) == 6]
    return min(lines, key=lambda t: float(np.sum((t - line) ** 2)))


def replace_beside_lines(srcs: list[np.ndarray], before: list[np.ndarray], x: np.ndarray,
                          y: np.ndarray, v: np.ndarray, geom: SensorGeometry, noise: float,
                          cfg: FitConfig = DEFAULT_FIT) -> list[np.ndarray]:
    """Re-place the point sources near each new line (one in ``srcs`` that
    was not in ``before``) on their own data, the line and the rest held.

    A joint refit of a broad window (`broadfit.joint_refit`) moves every
    source at once while a big body is still a point, and the point's
    near-field misfit reaches metres: a mortar 3.5 m from a 930 nT bomb
    went 0.7 m toward it and grew from 0.2 to 0.5 A m² to take that misfit
    up. With the body a line, each point within
    `FitConfig.beside_lines_reach_m` of it is refitted on the 2 m around it,
    together with the points within `beside_lines_group_m` of it (a
    neighbour pulled along with it), and kept where the misfit there drops
    by more than the BIC bar.
    """
    reach_m, group_m = cfg.beside_lines_reach_m, cfg.beside_lines_group_m
    lines = [t for t in srcs if len(t) == 6 and not any(t is b for b in before)]
    if not lines:
        return srcs

    def beside(t: np.ndarray) -> bool:
        # Within reach of a new line and shallower than it: a deeper point
        # there is the kind of phantom that a held body's misfit pays for
        # (`broadfit.neighbours_refit_gain`), and moving it lets it pay again.
        ln = min(lines, key=lambda u: dist_to_src(u, float(t[0]), float(t[1])))
        return (dist_to_src(ln, float(t[0]), float(t[1])) < reach_m
                and float(t[2]) < centre_depth(ln)[2])

    todo = [t for t in srcs if len(t) == 3 and beside(t)]
    n2 = noise * noise
    for t in todo:
        if not any(t is u for u in srcs):  # already moved with a neighbour
            continue
        cx, cy = float(t[0]), float(t[1])
        near, _vw, lx, ly, lv = local_view(srcs, x, y, v, geom, cx, cy, 2.0,
                                           margin=cfg.far_margin_m)
        if lx.size < 20:
            continue
        sub = [srcs[i] for i in near]
        free = [k for k, u in enumerate(sub)
                if len(u) == 3 and math.hypot(float(u[0]) - cx, float(u[1]) - cy) < group_m]
        sse0 = float(np.sum(local_res(sub, lx, ly, lv, geom) ** 2))
        try:
            new, sse1 = refit_local(sub, free, lx, ly, lv, geom)
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("elongate.beside", exc)
            continue
        # The same sources, moved: no parameter added, the drop must pay the bar.
        if pays((sse0 - sse1) / n2, cfg.bic_gain) and all(
                np.all(np.isfinite(new[k])) for k in free):
            srcs = put_back(srcs, near, new)
    return srcs
