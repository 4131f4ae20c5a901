"""Settings of the staged lane fit (`acquisition.dsp.fit.fit_sources`).

One frozen `FitConfig` holds the constants of every stage (thresholds, radii,
round counts, the BIC bars) and one switch per optional stage or rule,
named after the function that implements it, so that a rule can be switched
off (an ablation) without patching a module. The stages and what each
switch does are listed in `docs/dsp.md`, "Stages of the fit".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["DEFAULT_FIT", "LINE_STAGES", "SWITCHES", "FitConfig", "config_from"]


@dataclass(frozen=True, slots=True)
class FitConfig:
    """Constants and switches of the lane fit's stages (defaults: the product)."""

    # ---- the window
    #: Most sources one window may hold.
    max_sources: int = 10
    #: Samples needed per source (fewer: the cheap estimate only).
    min_samples: int = 12
    #: A source closer than this (m) to the window's data edge is flagged "edge".
    edge_margin: float = 0.4
    #: The window spans a broad cluster (many lanes): the stages marked
    #: "joint" in `docs/dsp.md` run. The caller's call, per window.
    joint: bool = False
    #: Magnetic ground: Huber-capped chi-square drops and the robust refit.
    #: The caller's call, per window.
    robust: bool = False

    # ---- the model-order criterion (`acquisition.dsp.acceptance`)
    #: BIC gain a further source must exceed.
    bic_gain: float = 10.0
    #: Share of what the fitted sources may misfit a residual must also exceed
    #: to seed a source (a single dipole's misfit of an elongated body
    #: scales with its field).
    rel_misfit: float = 0.15
    #: Horizontal position error (m, 1 sigma) a right model still misfits by:
    #: the rope/GNSS error and wander of a walked lane, a few centimetres.
    pos_sigma_m: float = 0.05
    #: Share of a fitted source's field a right model may still misfit
    #: (munition cases are not uniform lines: heavy noses, tail cones).
    shape_rel: float = 0.05

    # ---- local fits (`fitcore.local_view`)
    #: A source farther than this (m) beyond the local data's edge keeps the
    #: moment the whole window gives it: re-solved on local data, the tiny
    #: smooth field of a far source is a free broad basis function that takes
    #: up any broad residual with an absurd moment.
    far_margin_m: float = 2.5

    # ---- the grid of starts for one more point source (`addsources.grid_seed`)
    #: Depths (m) and offsets across (x) and along (y) the lanes (m) from the seed.
    grid_depths: tuple[float, ...] = (0.05, 0.2, 0.4, 0.7, 1.1, 1.6, 2.3, 3.2, 4.5, 6.0)
    grid_dx: tuple[float, ...] = (-0.5, 0.0, 0.5)
    grid_dy: tuple[float, ...] = (-0.8, -0.4, 0.0, 0.4, 0.8)

    # ---- pair rules (`acquisition.dsp.plausibility`)
    min_sep_m: float = 0.7
    close_m: float = 1.6
    pair_ratio: float = 0.35

    # ---- adding sources
    #: Refused seeds after which the greedy search stops.
    max_refusals: int = 6
    #: Lane peaks (hints) tried at most.
    max_hints: int = 12
    #: A hint this close (m) to a source is that source's.
    hint_clear_m: float = 1.5
    #: Rounds and picks per round of the search on the fit residual.
    max_residual_rounds: int = 3
    residual_budget: int = 8
    #: Sources the residual search of a joint window may add beyond
    #: `max_sources` (`residual_over_budget`): there the budget, a guess from
    #: the segment count, caps the greedy search, not the detected signals
    #: the residual still holds.
    residual_extra_sources: int = 8
    #: The search for narrow residual peaks (`sharp_search`): the length (m)
    #: of the running median taken off the residual along each lane. A body
    #: whose sensor-to-body distance is under about half of it leaves most
    #: of its peak; a deep body's misfit, as wide as its depth, leaves little.
    sharp_width_m: float = 2.0

    # ---- the search on a neighbour's flank (`flank_search`)
    #: Residual maxima over the threshold taken as candidates, at most, and
    #: how far (m) they must be from every fitted source.
    flank_candidates: int = 24
    flank_clear_m: float = 1.0
    #: Radius (m) of the residual a candidate's dipole is scored on.
    flank_radius_m: float = 2.5
    #: Candidates tried (with their neighbours refitted) per window, at most,
    #: and how many sources the stage may add beyond `max_sources`.
    flank_budget: int = 6
    flank_extra_sources: int = 4
    #: A new source is refused if the joint refit moves a neighbour farther (m).
    flank_max_move_m: float = 0.3

    # ---- the ring search beside a small body (`ring_search`)
    #: Sources of this moment (A m^2; mortar and projectile classes) get a try.
    ring_min_moment: float = 0.05
    ring_max_moment: float = 3.0
    #: Under this moment a body is short: the long-body pair rule does not
    #: apply between it and its ring neighbour.
    short_body_moment: float = 0.3
    #: Beside a longer body a ring neighbour must be this shallow (m).
    ring_max_depth_long: float = 0.6
    ring_radii: tuple[float, ...] = (0.8, 1.1, 1.4)
    ring_depth: float = 0.25
    #: It must pay more than the usual bar: it was not seen on its own.
    ring_gain: float = 30.0
    #: ... and in the chi-square weighted by what the body alone may misfit:
    #: beside a mortar-sized body `ring_gain` again, beside a projectile-sized
    #: one (steeper slopes, the pair rules hold) a positive gain.
    ring_weighted_gain_short: float = 30.0
    ring_weighted_gain_long: float = 0.0

    # ---- line sources (`elongate_sources`, `fitcore.best_line`)
    #: Points whose predicted peak is this many times the noise, of at least
    #: `line_min_moment` (A m^2), are tried as lines `line_min_length_m` to
    #: `line_max_length_m` long.
    line_min_peak_snr: float = 40.0
    line_min_moment: float = 0.2
    line_min_length_m: float = 0.3
    line_max_length_m: float = 4.0
    #: Weaker points (under this share of the line's moment) within
    #: `line_reach_m` of it are judged with it (`judge_weak`).
    line_weak_ratio: float = 0.35
    line_reach_m: float = 2.5
    #: Line seeds: axis azimuths (degrees) and lengths (m) tried around a point.
    line_seed_azimuths: tuple[float, ...] = (0.0, 45.0, 90.0, 135.0)
    line_seed_lengths: tuple[float, ...] = (0.8, 1.6)
    #: A point fit of a big body lying at the surface reads it a few cm deep,
    #: and lines seeded that shallow under the sensor stall in a wrong
    #: minimum: such points also get seeds this deep (m), the better fit kept.
    line_seed_min_depth_m: float = 0.15
    #: Points shallower than `near_field_m` (m) get seed centres shifted this
    #: far (m) along each axis: the point fit of a case with a heavy nose
    #: sits toward the nose, and that close to the sensor the line's fit
    #: does not find its way back to the body's centre.
    line_seed_shifts_m: tuple[float, ...] = (-0.5, 0.0, 0.5)
    near_field_m: float = 1.0
    #: `replace_beside_lines`: points within this (m) of a new line, and
    #: refitted with those within `beside_lines_group_m` (m) of them.
    beside_lines_reach_m: float = 5.0
    beside_lines_group_m: float = 1.5

    # ---- weak shallow objects beside strong ones (`search_near_strong`)
    #: Strong: at least this moment (A m^2) and depth (m).
    near_min_moment: float = 0.2
    near_min_strong_depth: float = 0.4
    #: What a line model may still misfit there (share of its field; more than
    #: `shape_rel`: a point's or line's misfit of a strong body's field).
    near_shape_rel: float = 0.10
    #: Residual picks tried (at most), each this many misfit sigmas high.
    near_budget: int = 4
    near_pick_sigmas: float = 2.0
    #: Depths (m) tried (those under half the strong source's), and the most
    #: (share of the strong source's moment) a kept one may have.
    near_depths: tuple[float, ...] = (0.05, 0.15, 0.3, 0.5, 0.8, 1.2)
    near_ratio: float = 0.35

    # ---- named drop rules
    #: `drop_tails`: a weaker source under this share of a neighbour's moment,
    #: within max(`tails_min_reach_m`, min(`tails_reach_depths` x the
    #: neighbour's depth below the sensor, `tails_max_reach_m`)) of it.
    tails_ratio: float = 0.5
    tails_reach_depths: float = 2.0
    tails_min_reach_m: float = 4.0
    tails_max_reach_m: float = 6.0
    #: ... and at least `tails_min_dist_m` (m) from it (closer, the adding
    #: stages' rules decide); the neighbour may move at most
    #: `tails_max_move_m` (m) to do without it.
    tails_min_dist_m: float = 1.5
    tails_max_move_m: float = 0.3
    #: `drop_body_lobes`: a source under this share of a line's moment,
    #: within this (m) of it.
    body_lobes_ratio: float = 0.1
    body_lobes_reach_m: float = 2.0
    #: `drop_level_explained`: point sources this deep or deeper (m), and
    #: those at most `level_shallow_max` deep, are judged (negative: no
    #: surface source is).
    level_min_depth: float = 4.0
    level_shallow_max: float = 0.3
    #: ... and, if it pays, judged once more with each neighbour
    #: `level_strength` times stronger, shallower than `level_min_depth`,
    #: whose field over its surroundings varies at least `level_vary_share`
    #: times as much as its own, free to move (`neighbours_refit_gain`); a
    #: neighbour that moves over `level_max_move_m` (m) without it was not
    #: explaining it.
    level_strength: float = 2.0
    level_vary_share: float = 0.25
    level_max_move_m: float = 0.3
    #: `split_deep`: point sources this deep or deeper (m) are tried as two,
    #: seeded on the `split_azimuths` (degrees).
    split_min_depth: float = 1.5
    split_azimuths: tuple[float, ...] = (0.0, 45.0, 90.0, 135.0)
    #: A pair at least this far apart (m) is two objects, not one body's
    #: misfit split in two: the longest munitions are about 3 m long.
    split_min_sep_m: float = 2.5
    #: The single source must lie at least this share of the way from either
    #: of the pair (a split, not a neighbour added beside a source that stays).
    split_centre: float = 0.1
    #: Neither of the pair deeper than this x the single source: a few per
    #: cent is what a depth fitted on one anomaly is good to.
    split_depth_tol: float = 1.05

    # ---- one more source per strong residual peak far from every source (`add_isolated`)
    #: Peaks this far (m) from every source, under `isolated_max_peak` x the
    #: threshold, at most `isolated_budget` tried, each fitted on the
    #: residual within `isolated_radius_m` (m) and kept at most
    #: `isolated_max_depth` (m) deep.
    isolated_clear_m: float = 3.0
    isolated_max_peak: float = 10.0
    isolated_budget: int = 4
    isolated_radius_m: float = 3.0
    isolated_max_depth: float = 4.0
    #: The grid of starts: depths (m) and offsets (m, each way) from the peak.
    lone_depths: tuple[float, ...] = (0.3, 0.8, 1.5, 2.5, 3.5)
    lone_offsets: tuple[float, ...] = (-1.5, -0.75, 0.0, 0.75, 1.5)

    # ---- the sparse re-model of deep sources (`sparse_deep`, `sparsefit.py`)
    #: Point sources this deep or deeper (m) are re-modelled, deepest first,
    #: at most `sparse_max_tries` per window, on the samples within
    #: 1.5 x (depth + sensor height) + 2 m, at most `sparse_radius_m`.
    sparse_min_depth: float = 3.0
    sparse_max_tries: int = 4
    sparse_radius_m: float = 9.0
    #: With them, the point sources this deep or deeper (m) within
    #: `sparse_group_m` of them.
    sparse_group_min_depth: float = 1.5
    sparse_group_m: float = 5.0
    #: Candidates: a grid `sparse_spacing_m` apart over the group's box
    #: widened by `sparse_box_depths` x depth (`sparse_box_min_m` to
    #: `sparse_box_m`), at these depths (m; those at most the deep source's
    #: depth + `sparse_depth_margin_m`), at most `sparse_max_grid` points
    #: (the spacing widens to fit).
    sparse_spacing_m: float = 0.75
    sparse_box_depths: float = 0.6
    sparse_box_min_m: float = 2.0
    sparse_box_m: float = 4.0
    sparse_depths: tuple[float, ...] = (2.0, 3.0, 4.0, 5.0, 6.0)
    sparse_depth_margin_m: float = 0.5
    sparse_max_grid: int = 700
    #: Sources the selection may choose, and how far apart (m) they must be
    #: (farther than a bomb is long).
    sparse_max_sources: int = 6
    sparse_min_sep_m: float = 2.0

    # ---- deep clusters refitted from starts the data give (`restart_deep`, `clusterfit.py`)
    #: Point sources this deep or deeper (m), with the deep point sources
    #: (`sparse_group_min_depth`) of their local view, at most
    #: `restart_max_tries` per window, are refitted from K = 2 ..
    #: `restart_max_sources` starts picked one by one (matching pursuit) on a
    #: grid over the local view, `restart_spacing_m` (m) apart
    #: (widened to at most `restart_max_grid` points), at these shares of
    #: the merged source's depth.
    restart_min_depth: float = 3.0
    restart_max_tries: int = 3
    restart_max_sources: int = 4
    restart_spacing_m: float = 0.5
    restart_max_grid: int = 600
    restart_depth_shares: tuple[float, ...] = (0.55, 0.7, 0.85)
    #: No restarted source deeper than this x the deepest source it
    #: replaces: bombs fitted as one sit deeper than each, so a much deeper
    #: one models a broad misfit; the margin is the depth accuracy the fit
    #: is held to (15 %), as the group may have been split shallower already.
    restart_depth_tol: float = 1.15

    # ---- switches: one per optional stage or rule (True: on)
    add_sources: bool = True
    #: The isolated source's second judge inside `add_sources` (joint windows).
    judge_alone: bool = True
    #: The pair rules wherever a source is added or a joint refit holds a pair.
    pairs_plausible: bool = True
    joint_refit: bool = True
    hint_sources: bool = True
    ring_search: bool = True
    relevel: bool = True
    residual_search: bool = True
    #: The residual search of a joint window may exceed the source budget
    #: (`residual_extra_sources`).
    residual_over_budget: bool = True
    #: The search for weak bodies on a strong neighbour's flank; it skips
    #: windows on magnetic ground (`robust`), where the residual's maxima
    #: are the soil's.
    flank_search: bool = True
    #: The search for narrow residual peaks in joint windows.
    sharp_search: bool = True
    recentre_isolated: bool = True
    polish_weak: bool = True
    robust_refine: bool = True
    elongate_sources: bool = True
    #: The re-judging of a new line's weak neighbours inside `elongate_sources`.
    judge_weak: bool = True
    replace_beside_lines: bool = True
    split_deep: bool = True
    sparse_deep: bool = True
    restart_deep: bool = True
    search_near_strong: bool = True
    drop_tails: bool = True
    drop_body_lobes: bool = True
    drop_outside_footprint: bool = True
    drop_level_explained: bool = True
    #: The second judge inside `drop_level_explained` (strong neighbours free).
    neighbours_refit_gain: bool = True
    add_isolated: bool = True
    drop_subthreshold: bool = True

    def __post_init__(self) -> None:
        for name, lo in _TUPLES.items():
            value = getattr(self, name)
            try:
                items = tuple(float(t) for t in value)
            except (TypeError, ValueError):
                raise ValueError(f"FitConfig.{name}: expected a sequence of numbers, got "
                                 f"{value!r}") from None
            if not items or not all(math.isfinite(t) and t >= lo for t in items):
                what = "finite numbers" if lo == -math.inf else f"numbers >= {lo:g}"
                raise ValueError(f"FitConfig.{name}: expected one or more {what}, got "
                                 f"{value!r}")
            # Frozen means hashable too: a list given becomes a tuple.
            object.__setattr__(self, name, items)
        for name in _AT_LEAST_ONE:
            if not getattr(self, name) >= 1:  # NaN too
                raise ValueError(f"FitConfig.{name}: expected at least 1, got "
                                 f"{getattr(self, name)!r}")
        for name in _NOT_NEGATIVE:
            value = getattr(self, name)
            if not value >= 0:  # NaN too
                raise ValueError(f"FitConfig.{name}: expected a number >= 0, got {value!r}")
        for name in ("bic_gain", "ring_gain", "ring_weighted_gain_short",
                     "ring_weighted_gain_long", "level_shallow_max"):
            if math.isnan(getattr(self, name)):
                raise ValueError(f"FitConfig.{name}: expected a number, got nan")
        if not self.restart_spacing_m > 0:  # a grid step; NaN too
            raise ValueError("FitConfig.restart_spacing_m: expected a number > 0, got "
                             f"{self.restart_spacing_m!r}")


_AT_LEAST_ONE = ("max_sources", "min_samples")
#: The tuples, and the least each of their items may be (offsets and
#: azimuths any finite number, depths and lengths more than zero).
_TUPLES: dict[str, float] = {
    "grid_depths": 0.0, "grid_dx": -math.inf, "grid_dy": -math.inf, "ring_radii": 0.0,
    "line_seed_azimuths": -math.inf, "line_seed_lengths": 1e-3,
    "line_seed_shifts_m": -math.inf, "near_depths": 0.0, "split_azimuths": -math.inf,
    "lone_depths": 0.0, "lone_offsets": -math.inf, "sparse_depths": 0.0,
    "restart_depth_shares": 1e-3}
#: Counts, distances and shares that make no sense below zero (a bar may be
#: anything but NaN: -inf takes every change).
_NOT_NEGATIVE = ("edge_margin", "rel_misfit", "pos_sigma_m", "min_sep_m", "close_m",
                 "pair_ratio", "max_refusals", "max_hints", "hint_clear_m",
                 "max_residual_rounds", "residual_budget", "ring_min_moment",
                 "ring_max_moment", "short_body_moment", "ring_max_depth_long", "ring_depth",
                 "tails_ratio", "body_lobes_ratio", "level_min_depth",
                 "split_min_depth", "sparse_min_depth", "sparse_max_tries", "sparse_radius_m",
                 "sparse_group_min_depth", "sparse_group_m", "sparse_spacing_m", "sparse_box_m",
                 "sparse_max_grid", "sparse_max_sources", "sparse_min_sep_m",
                 "shape_rel", "far_margin_m", "line_min_peak_snr", "line_min_moment",
                 "line_min_length_m", "line_max_length_m", "line_weak_ratio", "line_reach_m",
                 "line_seed_min_depth_m", "near_field_m", "beside_lines_reach_m",
                 "beside_lines_group_m", "near_min_moment", "near_min_strong_depth",
                 "near_shape_rel", "near_budget", "near_pick_sigmas", "near_ratio",
                 "tails_reach_depths", "tails_min_reach_m", "tails_max_reach_m",
                 "tails_min_dist_m", "tails_max_move_m", "level_strength",
                 "level_vary_share", "level_max_move_m",
                 "body_lobes_reach_m", "split_min_sep_m", "split_centre", "split_depth_tol",
                 "isolated_clear_m", "isolated_max_peak", "isolated_budget",
                 "isolated_radius_m", "isolated_max_depth", "sparse_box_depths",
                 "residual_extra_sources", "sharp_width_m", "flank_candidates", "flank_clear_m",
                 "flank_radius_m", "flank_budget", "flank_extra_sources",
                 "flank_max_move_m",
                 "sparse_box_min_m", "sparse_depth_margin_m",
                 "restart_min_depth", "restart_max_tries", "restart_max_sources",
                 "restart_max_grid", "restart_depth_tol")


#: The defaults (the product): what the stage functions use when called
#: without a config (tests, tools).
DEFAULT_FIT = FitConfig()

#: The switches of `FitConfig`, in stage order.
SWITCHES: tuple[str, ...] = tuple(
    f.name for f in fields(FitConfig) if f.type in ("bool", bool)
    and f.name not in ("joint", "robust"))
#: The stages the keyword ``elongate=False`` of `fit_sources` switches off:
#: the line sources and the steps that judge against them.
LINE_STAGES = ("elongate_sources", "replace_beside_lines", "split_deep", "search_near_strong",
               "drop_tails", "drop_body_lobes")


def config_from(config: FitConfig | None, **kw: Any) -> FitConfig:
    """``config`` (the defaults if None) with the keyword arguments of
    `fit_sources` given (not None) laid over it: ``polish`` is
    `FitConfig.polish_weak`; ``elongate=False`` switches `LINE_STAGES` off
    (True leaves them as ``config`` has them); the others are fields."""
    cfg = config if config is not None else FitConfig()
    over = {k: v for k, v in kw.items() if v is not None}
    polish = over.pop("polish", None)
    if polish is not None:
        over["polish_weak"] = polish
    if over.pop("elongate", True) is False:
        over.update(dict.fromkeys(LINE_STAGES, False))
    return replace(cfg, **over) if over else cfg
