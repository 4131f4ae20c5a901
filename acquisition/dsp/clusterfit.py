"""Deep clusters refitted from one start per bomb-sized anomaly (the `restart_deep` stage).

Two to four bombs 4-5 m deep and 3-5 m apart give one anomaly about 10 m
wide, and the greedy stages model it with fewer sources, deeper and bigger,
between or beside the bombs. A joint refit started from that merged model
falls back into it: every local fit of a start near the merged source lands
on it again (`broadfit.split_deep` seeds its pair there), and a merged
source can sit metres to one side of the bombs it models. Here the starts
come from the data over the whole local view instead: with the sources
outside the cluster held, group matching pursuit (`sparsefit.select_blocks`)
picks one point source after another on a grid, each where it lowers the
misfit most given the picks before it, `FitConfig.split_min_sep_m` apart,
at a depth shallower than the merged source's (bombs fitted as one sit
deeper than each, and a shallower source's narrower field resolves each
bomb's share). The K = 2..`restart_max_sources` first picks are refitted
jointly, the held sources kept, and the best set replaces the cluster only
if the one criterion (`acceptance`) prefers it over the merged model and
every source of it is allowed and pays on its own (as in `sparsefit`:
inside the footprint, the pair rules against every held source, no deeper
than the deepest source it replaces by more than the depth accuracy the fit
is held to, and, the others kept, its own parameters paid with a free
offset per lane). No new acceptance rule: a restart the criterion does not
prefer over the merged model is not kept.
"""

from __future__ import annotations

import math

import numpy as np

from acquisition.dsp.acceptance import chi2_drop, penalised, prefers
from acquisition.dsp.broadfit import lane_free_res
from acquisition.dsp.fitconfig import FitConfig
from acquisition.dsp.fitcore import (
    MAX_DEPTH,
    design_srcs,
    inside,
    local_res,
    misfit_sigma,
    refit_local,
)
from acquisition.dsp.sparsefit import (
    SOURCE_PARAMS,
    candidate_grid,
    refused_by_held,
    remodel_deep_groups,
    select_blocks,
)
from acquisition.forward import SensorGeometry, design_batch

__all__ = ["restart_deep"]

Dropped = list[tuple[np.ndarray, str]]


def _apart(pts: list[np.ndarray], min_sep: float) -> bool:
    return all(math.hypot(pts[i][0] - pts[j][0], pts[i][1] - pts[j][1]) >= min_sep
               for j in range(1, len(pts)) for i in range(j))


def restart_deep(srcs: list[np.ndarray], x: np.ndarray, y: np.ndarray, v: np.ndarray,
                 geom: SensorGeometry, noise: float, cfg: FitConfig,
                 footprint: tuple[float, float, float, float], lanes: np.ndarray | None,
                 dropped: Dropped | None = None) -> list[np.ndarray]:
    """Each deep point source (`FitConfig.restart_min_depth`, deepest first,
    at most `restart_max_tries` per window) and the deep point sources near
    it (every one `sparse_group_min_depth` deep or deeper within its local
    view) refitted from starts the data give (module docstring; the loop is
    `sparsefit.remodel_deep_groups`). The replaced sources go to ``dropped``."""

    def remodel(sub: list[np.ndarray], group: list[int], lx: np.ndarray, ly: np.ndarray,
                lv: np.ndarray, lanes_l: np.ndarray | None, d: float) -> list[np.ndarray] | None:
        return _restart(sub, group, lx, ly, lv, lanes_l, geom, noise, cfg, d, footprint)

    # The group is every deep point of the local view (group_reach_m=None):
    # a merged source can sit metres to one side of the bombs it models,
    # and the source of one of them too far from it to be its neighbour.
    return remodel_deep_groups(srcs, x, y, v, geom, cfg, lanes, dropped,
                               min_depth=cfg.restart_min_depth,
                               max_tries=cfg.restart_max_tries, group_reach_m=None,
                               remodel=remodel, stage="restart_deep",
                               label="clusterfit.restart_deep")


def _restart(sub: list[np.ndarray], group: list[int], lx: np.ndarray, ly: np.ndarray,
             lv: np.ndarray, lanes_l: np.ndarray | None, geom: SensorGeometry, noise: float,
             cfg: FitConfig, d: float,
             footprint: tuple[float, float, float, float]) -> list[np.ndarray] | None:
    """The set restarted from the pursuit's picks that replaces ``sub[group]``,
    or None if none is preferred over it."""
    held = [t for j, t in enumerate(sub) if j not in group]
    sig = misfit_sigma(sub, lx, ly, lv, geom, noise, cfg.pos_sigma_m, cfg.shape_rel)
    sig2 = sig * sig
    w = 1.0 / sig
    n = lx.size
    top = max(float(sub[j][2]) for j in group)
    # The whole local view, not a box around the group: the merged source
    # can sit metres to one side of the bombs it models.
    x0, x1, y0, y1 = footprint
    box = (max(x0, float(lx.min())), min(x1, float(lx.max())),
           max(y0, float(ly.min())), min(y1, float(ly.max())))
    k_lo = max(2, len(group))
    # The window's budget as the residual search has it: in a joint window
    # the criterion, not a budget guessed from the segment count, decides.
    budget = cfg.max_sources + (cfg.residual_extra_sources
                                if cfg.joint and cfg.residual_over_budget else 0)
    k_hi = min(cfg.restart_max_sources, max(budget - len(held), len(group)))
    if k_hi < k_lo:
        return None
    b = (lv - lv.mean()) * w
    base = design_srcs(lx, ly, held, geom)[:, :-1]
    base = (base - base.mean(axis=0)) * w[:, None]
    # Per K, the start set (over the map depths) whose misfit is least.
    starts: dict[int, tuple[float, list[np.ndarray]]] = {}
    for share in cfg.restart_depth_shares:
        z = max(share * d, 0.3)
        pts = candidate_grid(box, (z,), cfg.restart_spacing_m, cfg.restart_max_grid)
        blocks = design_batch(lx, ly, pts[:, 0], pts[:, 1], pts[:, 2], geom)  # (c, n, 3)
        blocks = (blocks - blocks.mean(axis=1, keepdims=True)) * w[None, :, None]
        # Not on the grid's edge: a maximum there is the slope of something
        # outside the view.
        edge = ((pts[:, 0] <= pts[:, 0].min() + 1e-9) | (pts[:, 0] >= pts[:, 0].max() - 1e-9)
                | (pts[:, 1] <= pts[:, 1].min() + 1e-9) | (pts[:, 1] >= pts[:, 1].max() - 1e-9))
        chosen = select_blocks(blocks, b, base, pts, cfg.bic_gain, k_hi, cfg.split_min_sep_m,
                               allowed=~edge)
        for k in range(k_lo, len(chosen) + 1):
            seeds = [pts[j].copy() for j in chosen[:k]]
            r = local_res([*held, *seeds], lx, ly, lv, geom, w)
            sse = float(r @ r)
            if k not in starts or sse < starts[k][0]:
                starts[k] = (sse, seeds)
    if not starts:
        return None
    r_now = local_res(sub, lx, ly, lv, geom)
    free0 = len(held)
    cands: list[tuple[float, list[np.ndarray]]] = []
    for k, (_sse, seeds) in starts.items():
        model, _ = refit_local([*held, *seeds], list(range(free0, free0 + k)), lx, ly, lv, geom)
        trial = [np.asarray(t, dtype=np.float64) for t in model[free0:]]
        if not all(np.all(np.isfinite(t)) and inside(t, footprint) and t[2] < MAX_DEPTH - 1e-3
                   and t[2] <= cfg.restart_depth_tol * top for t in trial):
            continue
        if not _apart(trial, cfg.split_min_sep_m):
            continue
        r_new = local_res([*held, *trial], lx, ly, lv, geom)
        gain = penalised(chi2_drop(r_now, r_new, sig2, cfg.robust), n,
                         SOURCE_PARAMS * (k - len(group)))
        cands.append((gain, trial))
    for gain, trial in sorted(cands, key=lambda c: -c[0]):
        if gain <= cfg.bic_gain:
            break
        if _each_pays(trial, held, lx, ly, lv, lanes_l, geom, sig2, cfg):
            return trial
    return None


def _each_pays(model: list[np.ndarray], held: list[np.ndarray], lx: np.ndarray,
               ly: np.ndarray, lv: np.ndarray, lanes_l: np.ndarray | None,
               geom: SensorGeometry, sig2: np.ndarray, cfg: FitConfig) -> bool:
    """The pair rules between each new source and each held one hold, and
    each new source, the others kept, pays its own parameters with a free
    offset per lane (a deep source lane levels explain as well is a level
    error, not an object)."""
    if cfg.pairs_plausible and refused_by_held(model, held, lx, ly, lv, geom, cfg):
        return False
    r_all = lane_free_res([*held, *model], lx, ly, lv, lanes_l, geom)
    for q in range(len(model)):
        r_less = lane_free_res([*held, *model[:q], *model[q + 1:]], lx, ly, lv, lanes_l, geom)
        if not prefers(chi2_drop(r_less, r_all, sig2, cfg.robust), lx.size, SOURCE_PARAMS,
                       cfg.bic_gain):
            return False
    return True
