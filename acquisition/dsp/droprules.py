"""Named drop rules of the lane fit: sources that are not objects of their own.

Each rule removes a source that models something else (a neighbour's
misfit, a line source's uneven steel, a field under the detection
threshold) and says so in the fit's trace (`acquisition.dsp.fitstages`).
Where a rule weighs a model with the source against one without, it asks
the one criterion (`acquisition.dsp.acceptance`).
"""

from __future__ import annotations

import math

import numpy as np

from acquisition.dsp.acceptance import chi2_drop, pays, penalised
from acquisition.dsp.fitconfig import DEFAULT_FIT, FitConfig
from acquisition.dsp.fitcore import (
    centre_depth,
    design_srcs,
    dist_to_src,
    index_of,
    local_res,
    local_view,
    misfit_sigma,
    moment_sizes,
    refit_local,
    solve_linear,
)
from acquisition.events import SIZE_CLASSES
from acquisition.forward import (
    LINE_POINTS,
    SensorGeometry,
    design_batch,
    line_points,
)
from acquisition.numfail import swallowed

__all__ = ["BOMB_MOMENT", "Dropped", "drop_body_lobes", "drop_subthreshold", "drop_tails",
           "taper_design"]

#: Where a rule notes each source it drops: (the source's parameters, the rule's name).
Dropped = list[tuple[np.ndarray, str]]

#: Moment (A m^2) from which a source is an aircraft bomb (`events.SIZE_CLASSES`).
BOMB_MOMENT = next(lo for name, lo, _hi in SIZE_CLASSES if name == "aircraft_bomb")


def taper_design(x: np.ndarray, y: np.ndarray, ends: np.ndarray, geom: SensorGeometry,
                  k: int = LINE_POINTS) -> np.ndarray:
    """Readings per unit of a moment that grows linearly along a line (from
    -1/2 at the first end to +1/2 at the second): with `line_design` it
    models a body whose steel is not evenly spread (a heavy nose)."""
    pts = line_points(ends, k)
    t = (np.arange(k) + 0.5) / k - 0.5
    g = design_batch(x, y, pts[:, 0], pts[:, 1], pts[:, 2], geom)
    return np.tensordot(t, g, axes=(0, 0)) / k


def drop_body_lobes(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                     geom: SensorGeometry, noise: float, cfg: FitConfig = DEFAULT_FIT, *,
                     dropped: Dropped | None = None) -> list[np.ndarray]:
    """Drop weak sources that a line source's uneven steel explains.

    A munition's steel is not spread evenly along it (a thick nose, a thin
    tail cone); a uniform line misfits the heavy end, and beside a shallow
    bomb that misfit is a sharp lobe a weak shallow source fits. Each source
    (point or line) under `FitConfig.body_lobes_ratio` of a line source's
    moment within `body_lobes_reach_m` of the line must pay its own
    parameters (position and moment) against the line alone with a moment
    growing linearly along it (3 more), in the misfit-sigma-weighted
    chi-square of `drop_tails`.
    """
    if len(srcs) < 2 or not any(len(s) == 6 for s in srcs):
        return srcs
    ratio, reach = cfg.body_lobes_ratio, cfg.body_lobes_reach_m
    srcs = list(srcs)
    h = geom.sensor_height_m
    mag = moment_sizes(srcs, x, y, v, geom)
    gone: set[int] = set()
    for k in sorted(range(len(srcs)), key=lambda t: mag[t]):
        kx, ky, kd = centre_depth(srcs[k])
        lines = [j for j in range(len(srcs)) if len(srcs[j]) == 6 and j not in gone
                 and j != k and mag[k] < ratio * mag[j] and dist_to_src(srcs[j], kx, ky) < reach]
        if not lines:
            continue
        j = min(lines, key=lambda t: dist_to_src(srcs[t], kx, ky))
        jx, jy, _jd = centre_depth(srcs[j])
        dist = math.hypot(jx - kx, jy - ky)
        mx, my = 0.5 * (jx + kx), 0.5 * (jy + ky)
        rad = 0.5 * dist + max(1.5, 1.2 * (kd + h))
        allc = [s for t, s in enumerate(srcs) if t not in gone]
        near, _vw, lx, ly, lv = local_view(allc, x, y, v, geom, mx, my, rad,
                                           margin=cfg.far_margin_m)
        n_l = lx.size
        if n_l < 40:
            continue
        cur = [allc[i] for i in near]
        ik, ij = index_of(cur, srcs[k]), index_of(cur, srcs[j])
        w = 1.0 / misfit_sigma(cur, lx, ly, lv, geom, noise, cfg.pos_sigma_m, cfg.shape_rel)
        without = [s for t, s in enumerate(cur) if t != ik]
        jj = ij if ij < ik else ij - 1
        try:
            without, _ = refit_local(without, [jj], lx, ly, lv, geom, w=w)
            Gw = np.hstack((design_srcs(lx, ly, without, geom),
                            taper_design(lx, ly, without[jj], geom))) * w[:, None]
            r_taper = Gw @ solve_linear(Gw, lv * w) - lv * w
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("droprules.drop_body_lobes", exc)
            continue
        # its own parameters (a point's 3 or a line's 6, and a moment)
        # against the taper's 3 moment components
        gain = penalised(chi2_drop(r_taper, local_res(cur, lx, ly, lv, geom, w), np.ones(n_l),
                                   cfg.robust), n_l, len(srcs[k]))
        if not pays(gain, cfg.bic_gain):
            gone.add(k)
            if dropped is not None:
                dropped.append((srcs[k].copy(), "drop_body_lobes"))
            srcs[j] = without[jj]
    return [s for t, s in enumerate(srcs) if t not in gone]


def drop_subthreshold(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray,
                       v: np.ndarray, geom: SensorGeometry, thr: float,
                       dropped: Dropped | None = None) -> list[np.ndarray]:
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
        G = design_srcs(x, y, srcs, geom)
        lin = solve_linear(G, v)
        peaks = [float(np.max(np.abs(G[:, 3 * i:3 * i + 3] @ lin[3 * i:3 * i + 3])))
                 if np.linalg.norm(lin[3 * i:3 * i + 3]) < BOMB_MOMENT else np.inf
                 for i in range(len(srcs))]
        j = int(np.argmin(peaks))
        if peaks[j] >= thr:
            break
        if dropped is not None:
            dropped.append((srcs[j].copy(), "drop_subthreshold"))
        del srcs[j]
    return srcs


def drop_tails(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                geom: SensorGeometry, noise: float, cfg: FitConfig = DEFAULT_FIT, *,
                dropped: Dropped | None = None) -> list[np.ndarray]:
    """Drop weaker sources that only model a stronger neighbour's misfit.

    A real body is no point and no uniform line: around a strong one, the
    part of its anomaly the model misses (a broad tail, a lobe at the wrong
    strength) can be fitted by a second, weaker source a few metres away,
    deep and plausible. Each weaker source (moment under
    `FitConfig.tails_ratio` of a neighbour's, within `tails_min_reach_m` or
    `tails_reach_depths` × the neighbour's depth below the sensor, at most
    `tails_max_reach_m`) must pay its 6 parameters against the neighbour
    refitted, on data covering both, in the chi-square with the sigma the
    model still misfits (`misfit_sigma`): sensor noise, position error on
    the slopes, and a few % of the model. The neighbour's refit minimises that
    same weighted misfit, so the strong near field, where the model is least
    right, does not decide where the tail goes. A neighbour that moves more
    than `tails_max_move_m` to do without the weaker source was not
    explaining it: the weaker one stays. Closer than `tails_min_dist_m` the rules of
    `fit_sources` and `judge_weak` decide: there the slope of the strong
    field makes the sigma as large as a small object's whole anomaly.
    """
    if len(srcs) < 2:
        return srcs
    ratio, min_dist = cfg.tails_ratio, cfg.tails_min_dist_m
    reach_depths, min_reach, max_reach = (cfg.tails_reach_depths, cfg.tails_min_reach_m,
                                          cfg.tails_max_reach_m)
    srcs = list(srcs)
    h = geom.sensor_height_m
    mag = moment_sizes(srcs, x, y, v, geom)
    cen = [centre_depth(s) for s in srcs]
    order = sorted(range(len(srcs)), key=lambda k: mag[k])
    gone: set[int] = set()
    for k in order:
        kx, ky, _kd = cen[k]
        # Reach counts from the nearest point of a line: a long body's misfit
        # tails off from its ends, not from its middle.
        strong = [j for j in range(len(srcs)) if j != k and j not in gone
                  and mag[k] < ratio * mag[j]
                  and math.hypot(cen[j][0] - kx, cen[j][1] - ky) >= min_dist
                  and dist_to_src(srcs[j], kx, ky)
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
        allc = [s for t, s in enumerate(srcs) if t not in gone]
        near, _vw, lx, ly, lv = local_view(allc, x, y, v, geom, mx, my, rad,
                                           margin=cfg.far_margin_m)
        n_l = lx.size
        cur = [allc[i] for i in near]
        ik, ij = index_of(cur, srcs[k]), index_of(cur, srcs[j])
        sig = misfit_sigma(cur, lx, ly, lv, geom, noise, cfg.pos_sigma_m, cfg.shape_rel)
        w = 1.0 / sig
        without = [s for t, s in enumerate(cur) if t != ik]
        jj = ij if ij < ik else ij - 1
        try:
            with_k, _ = refit_local(cur, [ij, ik], lx, ly, lv, geom, w=w)
            without, _ = refit_local(without, [jj], lx, ly, lv, geom, w=w)
        except (ValueError, np.linalg.LinAlgError) as exc:
            swallowed("droprules.drop_tails", exc)
            continue
        gain = penalised(chi2_drop(local_res(without, lx, ly, lv, geom, w),
                                   local_res(with_k, lx, ly, lv, geom, w), np.ones(n_l),
                                   cfg.robust),
                         n_l, 6)
        # The neighbour must stay where it is: moved onto the weaker source's
        # anomaly it would be explaining that instead of its own.
        nx, ny, _nd = centre_depth(without[jj])
        if not pays(gain, cfg.bic_gain) and math.hypot(nx - jx, ny - jy) <= cfg.tails_max_move_m:
            gone.add(k)
            if dropped is not None:
                dropped.append((srcs[k].copy(), "drop_tails"))
            srcs[j] = without[jj]
            cen[j] = centre_depth(srcs[j])
    return [s for t, s in enumerate(srcs) if t not in gone]
