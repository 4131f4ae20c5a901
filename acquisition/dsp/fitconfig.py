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

from acquisition.dsp.fitcore import POS_SIGMA_M

__all__ = ["LINE_STAGES", "SWITCHES", "FitConfig", "config_from"]


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
    #: Horizontal position error (m, 1 sigma) a right model still misfits by.
    pos_sigma_m: float = POS_SIGMA_M

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

    # ---- named drop rules
    #: `drop_tails`: a weaker source under this share of a neighbour's moment.
    tails_ratio: float = 0.5
    #: `drop_body_lobes`: a source under this share of a line's moment.
    body_lobes_ratio: float = 0.1
    #: `drop_level_explained`: point sources this deep or deeper (m), and
    #: those at most `level_shallow_max` deep, are judged.
    level_min_depth: float = 4.0
    level_shallow_max: float = 0.3
    #: `split_deep`: point sources this deep or deeper (m) are tried as two.
    split_min_depth: float = 1.5

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
    #: widened by 0.6 x depth (2 m to `sparse_box_m`), at these depths (m;
    #: those at most the deep source's depth + 0.5 m), at most
    #: `sparse_max_grid` points (the spacing widens to fit).
    sparse_spacing_m: float = 0.75
    sparse_box_m: float = 4.0
    sparse_depths: tuple[float, ...] = (2.0, 3.0, 4.0, 5.0, 6.0)
    sparse_max_grid: int = 700
    #: Sources the selection may choose, and how far apart (m) they must be
    #: (farther than a bomb is long).
    sparse_max_sources: int = 6
    sparse_min_sep_m: float = 2.0

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
    recentre_isolated: bool = True
    polish_weak: bool = True
    robust_refine: bool = True
    elongate_sources: bool = True
    #: The re-judging of a new line's weak neighbours inside `elongate_sources`.
    judge_weak: bool = True
    replace_beside_lines: bool = True
    split_deep: bool = True
    sparse_deep: bool = True
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
        for name in _AT_LEAST_ONE:
            if not getattr(self, name) >= 1:  # NaN too
                raise ValueError(f"FitConfig.{name}: expected at least 1, got "
                                 f"{getattr(self, name)!r}")
        for name in _NOT_NEGATIVE:
            value = getattr(self, name)
            if not value >= 0:  # NaN too
                raise ValueError(f"FitConfig.{name}: expected a number >= 0, got {value!r}")
        for name in ("bic_gain", "ring_gain", "ring_weighted_gain_short",
                     "ring_weighted_gain_long"):
            if math.isnan(getattr(self, name)):
                raise ValueError(f"FitConfig.{name}: expected a number, got nan")


_AT_LEAST_ONE = ("max_sources", "min_samples")
#: Counts, distances and shares that make no sense below zero (a bar may be
#: anything but NaN: -inf takes every change).
_NOT_NEGATIVE = ("edge_margin", "rel_misfit", "pos_sigma_m", "min_sep_m", "close_m",
                 "pair_ratio", "max_refusals", "max_hints", "hint_clear_m",
                 "max_residual_rounds", "residual_budget", "ring_min_moment",
                 "ring_max_moment", "short_body_moment", "ring_max_depth_long", "ring_depth",
                 "tails_ratio", "body_lobes_ratio", "level_min_depth", "level_shallow_max",
                 "split_min_depth", "sparse_min_depth", "sparse_max_tries", "sparse_radius_m",
                 "sparse_group_min_depth", "sparse_group_m", "sparse_spacing_m", "sparse_box_m",
                 "sparse_max_grid", "sparse_max_sources", "sparse_min_sep_m")


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
