"""The lane fit as an ordered list of named stages, and the driver that runs them.

`fit.fit_sources` builds a `FitState` and hands it to `run_stages` with
`STAGES`. Each stage is one function of the state; each optional stage has a
switch in `FitConfig` of the same name, so that switching it off leaves every
stage before it as it was. The driver records what each stage had and left
(`FitTrace`). Whether one more (or one fewer) source pays is asked of one
criterion (`acquisition.dsp.acceptance`); the drop rules are named, and
every source one drops is in the trace with the rule's name. The stages and
their switches: `docs/dsp.md`, "Stages of the fit".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from acquisition.dsp.addsources import (
    flank_peaks,
    flank_sigma,
    grid_seed,
    misfit_level,
    model,
    new_source_seed,
    pays_weighted,
    residual_peaks,
    search_near_strong,
    sharp_residual,
    solved_points,
    try_add,
    try_add_srcs,
    try_ring,
    try_sharp,
)
from acquisition.dsp.broadfit import (
    add_isolated,
    drop_level_explained,
    joint_refit,
    recentre_isolated,
    relevel,
    split_deep,
)
from acquisition.dsp.clusterfit import restart_deep
from acquisition.dsp.droprules import drop_body_lobes, drop_subthreshold, drop_tails
from acquisition.dsp.elongate import elongate_sources, replace_beside_lines
from acquisition.dsp.fitcore import (
    centre_point,
    design_points,
    design_srcs,
    dist_to_src,
    flatten_points,
    inside,
    run_lm,
    solve_linear,
)
from acquisition.dsp.fitresult import cheap_result, report_sources
from acquisition.dsp.fitstate import FitState, FitTrace
from acquisition.dsp.refine import polish_weak, robust_refine
from acquisition.dsp.sparsefit import sparse_deep
from acquisition.numfail import swallowed

__all__ = ["STAGES", "Stage", "run_stages"]


@dataclass(frozen=True, slots=True)
class Stage:
    """A named step of the fit; ``switch``: its `FitConfig` field, None if it
    always runs."""

    name: str
    run: Callable[[FitState], None]
    switch: str | None = None


def _cheap(st: FitState, flags: tuple[str, ...]) -> None:
    cx, cy, cd = st.cheap
    st.result = [cheap_result(st.x, st.y, st.v, st.geom, cx, cy, cd, flags)]


def single_fit(st: FitState) -> None:
    """One point source from the best of a few grid starts; the cheap
    estimate (and the end) if the window is too small or the fit fails or
    leaves the footprint."""
    x, y, v, geom = st.x, st.y, st.v, st.geom
    cx, cy, _cd = st.cheap
    if st.n < st.config.min_samples:
        _cheap(st, ("few_samples", "cheap_estimate"))
        return
    best = None
    try:
        seeds = grid_seed(x, y, v, geom, np.empty(0), cx, cy, keep=2, cfg=st.config)
        for sd in seeds:
            r = run_lm(sd, x, y, v, geom)
            if np.isfinite(r.cost) and (best is None or r.cost < best.cost):
                best = r
    except (ValueError, np.linalg.LinAlgError) as exc:
        swallowed("fit.fit_sources", exc)
        best = None
    if best is None or not inside(best.x, st.footprint):
        _cheap(st, ("no_converge", "cheap_estimate"))
        return
    st.set_points(best.x)
    st.converged = bool(best.status > 0)


def add_sources(st: FitState) -> None:
    """Greedy on the residual's largest unexplained signal: seed one more
    source there, refit it with its neighbours, keep it if it pays."""
    x, y = st.x, st.y
    p = st.points()
    blocked = np.zeros(st.n, dtype=bool)
    refusals = 0
    while st.room(p) and refusals < st.config.max_refusals:
        solved = solved_points(st, p)
        pred = model(st, p, solved)
        seed = new_source_seed(x, y, st.v - pred, misfit_level(st, p, solved=solved), st.thr,
                               st.config.rel_misfit, blocked)
        if seed is None:
            break
        sx, sy, jx, jy = seed
        cand = try_add(st, p, pred, sx, sy, solved)
        if cand is None:
            # Misfit or a neighbour's field there: look elsewhere, a few times.
            blocked |= (np.hypot(x - sx, y - sy) < 1.5) | (np.hypot(x - jx, y - jy) < 1.5)
            refusals += 1
            continue
        p, st.converged = cand.x, st.converged and bool(cand.status > 0)
        refusals = 0
    st.set_points(p)


def joint_refit_stage(st: FitState) -> None:
    """Joint windows: every source moved at once on re-levelled lanes
    (`broadfit.joint_refit`)."""
    cfg = st.config
    if not cfg.joint:
        return
    assert st.footprint is not None  # a fit that got here is inside one
    p, st.v = joint_refit(st.points(), st.x, st.y, st.v, st.geom, st.lanes, st.thr,
                          (cfg.min_sep_m, cfg.close_m, cfg.pair_ratio), st.footprint,
                          plausible=cfg.pairs_plausible, dropped=st.dropped)
    st.set_points(p)


def hint_sources(st: FitState) -> None:
    """Every detected lane peak no source accounts for yet gets its try: in a
    wide cluster the greedy pass can run out of tries near a strong,
    elongated source before it reaches a weak signal at the far end."""
    cfg = st.config
    x, y = st.x, st.y
    p = st.points()
    tries = 0
    for hx, hy in st.hints:
        if not st.room(p) or tries >= cfg.max_hints:
            break
        k = len(p) // 3
        if min(math.hypot(hx - p[3 * i], hy - p[3 * i + 1])
               for i in range(k)) < cfg.hint_clear_m:
            continue
        solved = solved_points(st, p)
        pred = model(st, p, solved)
        near = np.hypot(x - hx, y - hy) < 1.0
        if not near.any():
            continue
        peak_res = float(np.max(np.abs((st.v - pred)[near])))
        level = misfit_level(st, p, solved=solved)
        if peak_res < max(st.thr, cfg.rel_misfit * float(np.max(level[near]))):
            continue
        a = np.abs((st.v - pred)[near])
        w = a * a
        sx = float(np.sum(w * x[near]) / np.sum(w))
        sy = float(np.sum(w * y[near]) / np.sum(w))
        tries += 1
        cand = try_add(st, p, pred, sx, sy, solved)
        if cand is not None:
            p, st.converged = cand.x, st.converged and bool(cand.status > 0)
    st.set_points(p)


def ring_search(st: FitState) -> None:
    """A weak object about a metre from a small body (a bomblet beside a
    mortar or projectile) hides in the body's single-dipole fit: the residual
    stays under the threshold and its lane peak merges with the body's.
    Beside each such source one more source is tried from a ring of shallow
    starts (`addsources.try_ring`)."""
    p = st.points()
    G_p = lin_p = None
    for i in range(len(p) // 3):
        if not st.room(p):
            break
        if G_p is None or lin_p is None:  # once per model, not once per source tried
            G_p = design_points(st.x, st.y, p, st.geom)
            lin_p = solve_linear(G_p, st.v)
        cand = try_ring(st, p, i, G_p, lin_p)
        if cand is not None:
            p, st.converged = cand.x, st.converged and bool(cand.status > 0)
            G_p = lin_p = None
    st.set_points(p)


def relevel_stage(st: FitState) -> None:
    """A broad anomaly covering most of a lane biases that lane's level
    (total field, big shallow bombs): each lane of the window is re-levelled
    on the residual of the sources found so far, before the search for
    weak signals whose size is that of the bias."""
    p = st.points()
    if st.lanes is not None and len(p) > 3:
        st.v = relevel(st.v, st.v - model(st, p), np.asarray(st.lanes), st.thr)


def residual_search(st: FitState) -> None:
    """Detection on the residual: with the fitted sources subtracted, every
    remaining local maximum over the threshold (and over the misfit level)
    is a signal the detector would have found on its own, had a big
    neighbour's anomaly not swallowed it into one wide segment. Rounds
    repeat while there are untried maxima (`FitConfig.max_residual_rounds`;
    the pipeline asks for them only in broad clusters)."""
    cfg = st.config
    x, y = st.x, st.y
    p = st.points()
    tried: list[tuple[float, float]] = []
    # A joint window's source budget is a guess from its segment count and
    # caps the greedy search, which seeds on any misfit; a residual maximum
    # here is a signal the detector would have seeded on its own, and the
    # criterion judges it: a window whose budget the greedy pass spent still
    # gets its detected signals tried. A fit of one signal keeps its cap.
    extra = cfg.residual_extra_sources if cfg.residual_over_budget and cfg.joint else 0
    for _round in range(cfg.max_residual_rounds):
        if not st.room(p, extra):
            break
        # One design and moment solve for the model of ``p``, until a try
        # changes ``p``: the same numbers as solving it again for each use.
        solved = solved_points(st, p)
        pred = model(st, p, solved)
        picks = residual_peaks(x, y, st.v - pred, misfit_level(st, p, solved=solved), st.thr,
                               cfg.rel_misfit, p, budget=cfg.residual_budget, tried=tried,
                               field=misfit_level(st, p, falloff=False, solved=solved))
        for sx, sy in picks:
            if not st.room(p, extra):
                break
            k = len(p) // 3
            # Skipped or tried, it is not picked again: a pick's weighted
            # centre can sit closer to a source than its peak sample, and,
            # skipped every round, it came back every round and took a place
            # of the round's budget.
            tried.append((sx, sy))
            if min(math.hypot(sx - p[3 * i], sy - p[3 * i + 1]) for i in range(k)) < 1.0:
                continue
            cand = try_add(st, p, pred, sx, sy, solved)
            if cand is not None:
                p, st.converged = cand.x, st.converged and bool(cand.status > 0)
                solved = solved_points(st, p)
                pred = model(st, p, solved)
        if not picks:
            break
    st.set_points(p)


def recentre_isolated_stage(st: FitState) -> None:
    """Joint windows: each source with no neighbour refitted on a window
    centred on itself (`broadfit.recentre_isolated`)."""
    p = st.points()
    if st.config.joint and len(p) > 3:
        st.set_points(recentre_isolated(p, st.x, st.y, st.v, st.geom, st.config))


def polish_weak_stage(st: FitState) -> None:
    """Weak sources beside stronger ones re-placed on their own near data
    (`refine.polish_weak`)."""
    p = st.points()
    if len(p) > 3:
        st.set_points(polish_weak(p, st.x, st.y, st.v, st.geom, st.config))


def robust_refine_stage(st: FitState) -> None:
    """Magnetic ground: a Huber-reweighted refit (`refine.robust_refine`)."""
    if st.config.robust:
        st.set_points(robust_refine(st.points(), st.x, st.y, st.v, st.geom, st.noise))


def _before_lines(st: FitState) -> None:
    if st.before_lines is None:
        st.before_lines = st.srcs


def elongate_stage(st: FitState) -> None:
    """Strong points refitted as line sources where that pays
    (`elongate.elongate_sources`, with `judge_weak`)."""
    _before_lines(st)
    st.srcs = elongate_sources(st.srcs, st.x, st.y, st.v, st.geom, st.noise, st.thr,
                               st.config, dropped=st.dropped)


def replace_beside_lines_stage(st: FitState) -> None:
    """Joint windows: points a new line's misfit had pulled, re-placed."""
    _before_lines(st)
    if st.config.joint:
        assert st.before_lines is not None
        st.srcs = replace_beside_lines(st.srcs, st.before_lines, st.x, st.y, st.v, st.geom,
                                       st.noise, st.config)


def split_deep_stage(st: FitState) -> None:
    """Deep sources fitted as one, split in two where that pays. Every window,
    not only survey-wide ones: two bombs about their depth apart give one
    anomaly on any sensor, and the greedy pair rules refuse the second source."""
    assert st.footprint is not None
    st.srcs = split_deep(st.srcs, st.x, st.y, st.v, st.geom, st.noise, st.footprint,
                         lanes=st.lanes, cfg=st.config)


def sparse_deep_stage(st: FitState) -> None:
    """Deep sources (`sparse_min_depth`) and their deep neighbours re-modelled
    as a sparse set of point sources (`sparsefit.sparse_deep`): overlapping
    deep bombs the greedy stages fitted as fewer, deeper, bigger sources."""
    assert st.footprint is not None
    st.srcs = sparse_deep(st.srcs, st.x, st.y, st.v, st.geom, st.noise, st.config,
                          st.footprint, st.lanes, dropped=st.dropped)


def restart_deep_stage(st: FitState) -> None:
    """Deep sources (`restart_min_depth`) and the deep sources of their
    local view refitted from starts picked on the data, one per bomb-sized
    share of the anomaly (`clusterfit.restart_deep`): a refit started from
    the merged model of a deep cluster falls back into it."""
    assert st.footprint is not None
    st.srcs = restart_deep(st.srcs, st.x, st.y, st.v, st.geom, st.noise, st.config,
                           st.footprint, st.lanes, dropped=st.dropped)


def flank_search(st: FitState) -> None:
    """A weak, deep body on a strong neighbour's flank: its anomaly is
    inside the neighbour's wide segment with no lane peak of its own, so no
    hint seeds it, and the searches before gate the residual by the misfit
    level of the fitted sources, which a strong neighbour's field makes
    larger than the weak body's whole anomaly. Here the residual's maxima
    are candidates whatever the level, ranked by how much of the residual
    around them one dipole explains, each sample weighted by what the
    fitted sources may misfit it (`addsources.flank_peaks`); each is fitted
    with its near neighbours refitted (`addsources.try_add_srcs`, the
    criterion on the samples around it) and kept only if it also pays in
    that weighted chi-square (`addsources.pays_weighted`): a strong
    neighbour's misfit from position error, steep where its slope is, buys
    nothing there. It runs after the deep-cluster stages, on their final
    sources (points and lines): they re-model a deep cluster from the
    points they are given, and one more point before them is one more
    start, not one more body. Every window; it adds at most
    `flank_extra_sources`, in a joint window beyond the source budget if
    need be (there a guess from the segment count, as for
    `residual_over_budget`; elsewhere the caller's cap holds)."""
    cfg = st.config
    srcs = list(st.srcs)
    # On magnetic ground the residual's maxima are the soil grains' own
    # peaks, as strong as a deep body's flank anomaly: a candidate there is
    # a soil phantom, or a start that pulls a real body's fit onto one.
    if not srcs or cfg.robust:
        return
    k0 = len(srcs)
    extra = max(0, k0 + cfg.flank_extra_sources - cfg.max_sources) if cfg.joint else 0

    def room() -> bool:
        k = len(srcs)
        return (k < cfg.max_sources + extra and k < k0 + cfg.flank_extra_sources
                and st.n >= (k + 1) * cfg.min_samples)

    tried: list[tuple[float, float]] = []
    picks: list[tuple[float, float]] = []
    sig = np.empty(0)
    fresh = True
    while len(tried) < cfg.flank_budget and room():
        if fresh:
            # Scored again after each source kept: two signals side by
            # side (a bomblet on a projectile's flank) first give one
            # candidate between them, then each its own.
            G = design_srcs(st.x, st.y, srcs, st.geom)
            res = st.v - G @ solve_linear(G, st.v)
            sig = flank_sigma(st, srcs)
            picks = flank_peaks(st.x, st.y, res, sig, st.thr, srcs, st.geom, cfg, tried)
            fresh = False
        if not picks:
            break
        sx, sy = picks.pop(0)
        tried.append((sx, sy))
        cand = try_add_srcs(st, srcs, sx, sy)
        # A body on a neighbour's flank leaves the neighbour where it was:
        # if the joint refit moves a neighbour, that neighbour was fitting a
        # blend of several bodies (a deep cluster fitted with too few
        # sources), and the residual is that blend's misfit, not a body.
        if (cand is not None and _moved(srcs, cand) <= cfg.flank_max_move_m
                and pays_weighted(st, srcs, cand, sig)):
            srcs = cand
            fresh = True
    st.srcs = srcs


#: Radius (m) of the narrow residual a `sharp_search` source is fitted on:
#: a shallow object's anomaly and the lanes on either side of the one it is
#: seen on (lanes 1 m apart), which tell on which side of it it lies.
SHARP_RADIUS_M = 1.5


def sharp_search(st: FitState) -> None:
    """Joint windows, not on magnetic ground: the residual's narrow peaks.

    A window of broad total-field anomalies holds more residual maxima than
    `residual_search`'s rounds try, and the broad misfit of deep bodies
    ranks first there, so small shallow objects (scrap, bomblets) on the
    flanks of those anomalies are never reached. With the broad part taken
    off along the lanes (`addsources.sharp_residual`), a peak still over
    the threshold is a shallow object's anomaly; each gets one try, judged
    by the criterion (`addsources.try_sharp`), up to one per detected lane
    peak. It runs after the stages that re-model sources with their
    neighbours (a deep bomb with a piece of scrap beside it is no longer
    "isolated", and the deep-cluster stages would hold it in every
    restart): a shallow object's narrow anomaly hardly touches their fits,
    and added last it is a body of its own, not one more start. On magnetic
    ground (`robust`) the narrow peaks are the soil's grains, and it does
    not run.
    """
    cfg = st.config
    srcs = list(st.srcs)
    if not cfg.joint or cfg.robust or st.lanes is None or not srcs:
        return
    G = design_srcs(st.x, st.y, srcs, st.geom)
    lin = solve_linear(G, st.v)
    hp = sharp_residual(st.x, st.y, st.v - G @ lin, st.lanes, cfg.sharp_width_m)
    sig = flank_sigma(st, srcs)
    centres = flatten_points([centre_point(s) for s in srcs])
    picks = residual_peaks(st.x, st.y, hp, misfit_level(st, srcs), st.thr, cfg.rel_misfit,
                           centres, budget=max(cfg.residual_budget, len(st.hints)),
                           field=misfit_level(st, srcs, falloff=False))
    for sx, sy in picks:
        if st.n < (len(srcs) + 1) * cfg.min_samples:
            break
        if min(dist_to_src(s, sx, sy) for s in srcs) < 1.0:
            continue
        got = try_sharp(st, srcs, G, hp, sig, sx, sy, SHARP_RADIUS_M)
        if got is not None:
            srcs, G = got
            sig = flank_sigma(st, srcs)
    st.srcs = srcs


def _moved(srcs: list[np.ndarray], new: list[np.ndarray]) -> float:
    """How far (m, in 3-D; a line by its centre) the sources ``srcs`` moved
    in ``new`` (which holds them first)."""
    return max((float(np.linalg.norm(centre_point(b) - centre_point(a)))
                for a, b in zip(srcs, new, strict=False)), default=0.0)


def search_near_strong_stage(st: FitState) -> None:
    """Weak shallow objects within 2 m of strong ones (`addsources.search_near_strong`)."""
    if len(st.srcs) < st.config.max_sources:
        st.srcs = search_near_strong(st.srcs, st.x, st.y, st.v, st.geom, st.noise, st.thr,
                                     st.config)


def drop_tails_stage(st: FitState) -> None:
    st.srcs = drop_tails(st.srcs, st.x, st.y, st.v, st.geom, st.noise, st.config,
                         dropped=st.dropped)


def drop_body_lobes_stage(st: FitState) -> None:
    st.srcs = drop_body_lobes(st.srcs, st.x, st.y, st.v, st.geom, st.noise, st.config,
                              dropped=st.dropped)


def drop_outside_footprint(st: FitState) -> None:
    """A joint refit of a survey-wide window can walk a source out of the
    signal's footprint or down to the depth bound, where it models a regional
    level, not an object: it is no target. None left: the cheap estimate."""
    kept = [s for s in st.srcs if inside(centre_point(s), st.footprint)]
    st.dropped += [(s.copy(), "drop_outside_footprint") for s in st.srcs
                   if not any(s is t for t in kept)]
    st.srcs = kept
    if not kept:
        _cheap(st, ("no_converge", "cheap_estimate"))


def drop_level_explained_stage(st: FitState) -> None:
    cfg = st.config
    if cfg.joint and st.lanes is not None and len(st.srcs) > 1:
        st.srcs = drop_level_explained(st.srcs, st.x, st.y, st.v, st.geom, st.noise, st.lanes,
                                       cfg, dropped=st.dropped)


def add_isolated_stage(st: FitState) -> None:
    cfg = st.config
    if cfg.joint and st.lanes is not None:
        assert st.footprint is not None
        st.srcs = add_isolated(st.srcs, st.x, st.y, st.v, st.geom, st.noise, st.thr,
                               np.asarray(st.lanes), st.footprint, cfg)


def drop_subthreshold_stage(st: FitState) -> None:
    st.srcs = drop_subthreshold(st.srcs, st.x, st.y, st.v, st.geom, st.thr, dropped=st.dropped)


def finish(st: FitState) -> None:
    """Moments, 1-sigma uncertainties and quality of the sources (`fitresult`)."""
    st.result = report_sources(st.srcs, st.x, st.y, st.v, st.geom, st.noise, st.converged,
                               st.config.edge_margin, st.survey_sigma, st.lanes)


#: The fit, in order. Names are the trace's; switches the `FitConfig` fields.
STAGES: tuple[Stage, ...] = (
    Stage("single_fit", single_fit),
    Stage("add_sources", add_sources, "add_sources"),
    Stage("joint_refit", joint_refit_stage, "joint_refit"),
    Stage("hint_sources", hint_sources, "hint_sources"),
    Stage("ring_search", ring_search, "ring_search"),
    Stage("relevel", relevel_stage, "relevel"),
    Stage("residual_search", residual_search, "residual_search"),
    Stage("recentre_isolated", recentre_isolated_stage, "recentre_isolated"),
    Stage("polish_weak", polish_weak_stage, "polish_weak"),
    Stage("robust_refine", robust_refine_stage, "robust_refine"),
    Stage("elongate_sources", elongate_stage, "elongate_sources"),
    Stage("replace_beside_lines", replace_beside_lines_stage, "replace_beside_lines"),
    Stage("split_deep", split_deep_stage, "split_deep"),
    Stage("sparse_deep", sparse_deep_stage, "sparse_deep"),
    Stage("restart_deep", restart_deep_stage, "restart_deep"),
    Stage("flank_search", flank_search, "flank_search"),
    Stage("sharp_search", sharp_search, "sharp_search"),
    Stage("search_near_strong", search_near_strong_stage, "search_near_strong"),
    Stage("drop_tails", drop_tails_stage, "drop_tails"),
    Stage("drop_body_lobes", drop_body_lobes_stage, "drop_body_lobes"),
    Stage("drop_outside_footprint", drop_outside_footprint, "drop_outside_footprint"),
    Stage("drop_level_explained", drop_level_explained_stage, "drop_level_explained"),
    Stage("add_isolated", add_isolated_stage, "add_isolated"),
    Stage("drop_subthreshold", drop_subthreshold_stage, "drop_subthreshold"),
    Stage("finish", finish),
)


def run_stages(st: FitState, stages: tuple[Stage, ...] = STAGES,
               trace: FitTrace | None = None) -> None:
    """Run ``stages`` in order on ``st`` until one sets the result; a stage
    whose switch is off is recorded as not run, its sources passed on."""
    for stage in stages:
        before = list(st.srcs)
        on = stage.switch is None or bool(getattr(st.config, stage.switch))
        st.dropped = []
        if on:
            stage.run(st)
        if trace is not None:
            trace.record(stage.name, on, before, st)
        if st.result is not None:
            return
