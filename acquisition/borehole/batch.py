"""Whole-layer processing: conditioned logs -> per-hole anomalies -> located targets.

Targets are found one at a time by a subtract-and-repeat loop (as in radio
astronomy's CLEAN), so a strong object's field in a neighbour's log is never
fitted as a second object:

1. detect anomalies in every hole's residual log (data minus the fields of
   the targets found so far) and take the strongest;
2. estimate its distance from its own hole (single-hole fit), seed dipoles on
   the circle of that radius, and fit the residual logs of all holes within
   reach; neighbours that saw nothing are data too (they say where it is not);
3. accept the new source only if it explains a significant part of the data
   (chi-square drop) and is not within ``merge_m`` of a known target (then the
   residual is that target's misfit: an elongated body is not a point);
4. refit the new source together with every known source near it on the
   original logs, update the residuals, repeat.

Finally each source must still earn its place (chi-square drop with it
removed, and a predicted signal above threshold in some hole); sources closer
than ``merge_m`` are merged, and a nested test removes sources that their
refitted neighbours explain. A source beyond the logged depths is kept and
flagged ``log_end`` when several holes see it. A detected anomaly that no fit
explains is still reported, as a flagged single-hole target at its hole, or,
when a log end cuts it off (one hole cannot place that), as an issue in
``unlocated``: nothing is dropped silently.

``process_logs(..., prior=, around=)`` is the incremental form used live
after each hole: only the neighbourhood of the new hole is solved again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from acquisition.borehole.detect import (
    DetectConfig,
    HoleAnomaly,
    channel,
    detect,
    fit_distance,
    smooth,
)
from acquisition.borehole.geometry import distance_to_edges, inside
from acquisition.borehole.locate import Obs, _Projector, build_obs, chi2_at, fit, predict
from acquisition.borehole.logs import HoleLog, LogConfig, ProcessedLog, condition
from acquisition.errors import SettingError
from acquisition.events import Target
from acquisition.geomag import QUANG_TRI, EarthField
from acquisition.numfail import thread_count
from acquisition.validate import Range, check, non_negative, positive

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BoreholeConfig:
    log: LogConfig = field(default_factory=LogConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    #: Holes within this horizontal distance of a source give data to its fit.
    reach_m: float = 3.5
    #: Depth half-window of data around a source.
    window_m: float = 2.5
    #: Sources closer than this (3-D) are one body.
    merge_m: float = 0.9
    #: Sources of at least this moment (A m^2, bomb-sized) may be bodies up to
    #: ~2 m long: residuals within ``merge_m + long_body_extra_m`` are theirs.
    long_body_moment: float = 4.0
    long_body_extra_m: float = 0.6
    #: Single-hole fits further than this above or below their log are not
    #: trusted (nonsense fits of noise or baseline).
    depth_margin_m: float = 0.5
    #: Sources may be fitted up to this far beyond the logged depths: an
    #: object of the next layer (just below the hole bottoms) or of the one
    #: above reaches the log ends with a truncated anomaly. It is modelled (so
    #: its field is not fitted as objects inside the layer), and reported
    #: flagged ``log_end`` when at least ``log_end_min_holes`` holes see it;
    #: seen by one hole only it cannot be told from a log-end artefact (probe
    #: transient, baseline) and is listed in ``unlocated`` instead.
    end_reach_m: float = 1.5
    log_end_min_holes: int = 2
    #: A source weaker than ``shadow_ratio`` times a known one within ``shadow_m``
    #: is taken for that one's residual.
    shadow_ratio: float = 0.2
    shadow_m: float = 1.6
    #: An anomaly peaking this close to a log end is truncated: it cannot be
    #: located from its own hole (only reported as an issue when no joint fit
    #: explains it), and a source with no hole logging this far past it on
    #: both sides is flagged ``log_end``.
    end_margin_m: float = 0.3
    #: Sources further than this outside the logged holes' hull are not
    #: reported: seen from one side only, they cannot be told from the misfit
    #: of the objects inside.
    outside_margin_m: float = 0.3
    #: Sources this close (horizontally) are fitted together.
    group_m: float = 3.0
    #: At most this many known sources are refitted with a new one.
    max_group: int = 3
    #: Chi-square drop a source must bring (about a 7-sigma detection).
    min_delta_chi2: float = 50.0
    #: Nested test for a source with neighbours: the chi-square its neighbours
    #: (refitted, bombs re-seeded as lines) cannot recover without it, with
    #: their expected misfit as noise and scaled by the joint fit's reduced
    #: chi-square when above 1, must reach this (measured on simulated layers:
    #: ghosts 38-139, real bodies >= 950).
    min_nested_gain: float = 400.0
    #: The nested test is skipped for a source whose signal energy in its data
    #: is at least this many times the neighbours' field energy there (and
    #: ``nested_skip_energy`` times ``min_nested_gain``): see `_clearly_own`.
    nested_skip_ratio: float = 5.0
    nested_skip_energy: float = 10.0
    #: Beyond the log ends (``log_end`` sources) the nested test asks less: a
    #: body seen only by its truncated tails is kept when its signal energy is
    #: at least ``nested_skip_ratio`` times its neighbours' field there, or
    #: when, with the neighbours refitted without it, it still lowers the
    #: chi-square by more than the BIC penalty of its six parameters
    #: (``6 ln n``, n the rows fitted) times this factor. Measured on the
    #: ``below`` sets (1000-1019, both worlds): ghosts 2, 7, 33, 65; real
    #: bodies not clearly their own >= 61.
    log_end_bic_factor: float = 1.0
    #: Incremental updates (live, after each hole): prior sources within this
    #: horizontal distance of the new hole are found afresh, the others held.
    #: A source's data come from holes within ``reach_m``; it is refitted with
    #: neighbours within ``group_m``: beyond reach + group a new hole cannot move it.
    update_radius_m: float = 6.5
    max_sources: int = 200
    #: Chi-square gain above which a line source (elongated body) is tried,
    #: and the improvement it must bring to be kept.
    line_min_gain: float = 400.0
    line_min_delta_chi2: float = 25.0
    #: ... and only when the point dipole leaves more than this reduced chi-square.
    line_min_rchi2: float = 1.5
    #: Line-source starts fitted for a new source (the best by chi-square of
    #: the five axes tried).
    line_fits: int = 2
    #: Longest body a line source may describe (an M117 is about 2.3 m).
    max_body_length_m: float = 2.4
    #: A bomb-sized line fitted up to this many times that long is held at
    #: that length (refitted with its length capped) rather than refused and
    #: refitted as a point; see `_hold_at_cap`.
    cap_tolerance: float = 1.1
    #: Relative model error of a point dipole near a body (weights the fit).
    rel_error: float = 0.1
    #: Share of a located target's field its residual may keep without being
    #: taken for another object (point-dipole misfit of elongated bodies).
    misfit_fraction: float = 0.1
    #: Depth-counter errors the processing cannot see (scale share, offset m).
    depth_error_frac: float = 0.01
    depth_error_m: float = 0.05
    #: Unknown hole deviation from vertical (degrees); widens the stated
    #: horizontal uncertainty by depth * tan(tilt) / 2.
    tilt_max_deg: float = 1.5
    stream_id: str = "borehole"

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> BoreholeConfig:
        """Flat ``key=value`` options (CLI ``--opt``, service) onto the nested config.

        An unknown key, a value of the wrong kind or out of its range is a
        `SettingError` naming it (and, for an unknown key, the known ones):
        a typo must not be ignored, nor a negative reach taken.
        """
        cfg = cls()
        known = cfg.option_names()
        for k, v in (options or {}).items():
            obj = next((o for o in (cfg, cfg.log, cfg.detect) if k in _settable(o)), None)
            if obj is None:
                raise SettingError(f"unknown borehole option {k!r} (known: "
                                   + ", ".join(sorted(known)) + ")")
            current = getattr(obj, k)
            if isinstance(current, bool):
                if not isinstance(v, bool):
                    raise SettingError(f"{k} = {v!r} is not a boolean (allowed: true, false)")
                setattr(obj, k, v)
                continue
            num = check(k, v, _option_range(k, current))
            setattr(obj, k, int(num) if isinstance(current, int) else num)
        return cfg

    def option_names(self) -> set[str]:
        """The keys `from_options` takes."""
        return set().union(*(_settable(o) for o in (self, self.log, self.detect)))

    def validate(self) -> BoreholeConfig:
        """Refuse numeric settings out of range (for configs built or changed in code)."""
        for obj in (self, self.log, self.detect):
            for k in _settable(obj):
                current = getattr(obj, k)
                if not isinstance(current, bool):
                    check(k, current, _option_range(k, current))
        return self


#: Settings that may be any finite number within these bounds; every other
#: length (``*_m``), ratio and count must be >= 0, the ones in `_POSITIVE` > 0.
_OPTION_BOUNDS: dict[str, Range] = {
    "depth_offset_m": Range(-100.0, 100.0),
    "depth_scale": positive(10.0),
    "tilt_max_deg": non_negative(45.0),
    "drift_degree": Range(0, 5, integer=True),
    # a detection threshold of 50 sigma is a typo that finds nothing: bounded
    "k": Range(1.0, 30.0),
    "k_low": positive(30.0),
}
_POSITIVE = frozenset({
    "reach_m", "window_m", "merge_m", "group_m", "update_radius_m", "max_body_length_m",
    "bin_m", "gap_m", "max_sample_spacing_m", "k", "k_low", "smooth_m", "fit_margin_m",
    "max_distance_m", "max_sources", "max_group", "line_fits", "log_end_min_holes",
    "cap_tolerance"})


def _settable(obj: object) -> set[str]:
    """Numeric and boolean fields of a config dataclass (not nested configs or dicts)."""
    return {k for k in getattr(type(obj), "__dataclass_fields__", {})
            if isinstance(getattr(obj, k), (int, float))}


def _option_range(key: str, current: Any) -> Range:
    if key in _OPTION_BOUNDS:
        return _OPTION_BOUNDS[key]
    integer = isinstance(current, int)
    return Range(0, None, lo_incl=key not in _POSITIVE, integer=integer)


@dataclass(slots=True)
class Source:
    x: float
    y: float
    depth: float
    moment: np.ndarray
    sigmas: np.ndarray = field(default_factory=lambda: np.full(3, math.nan))
    quality: float = 0.0
    seed_hole: str = ""
    seed_distance_m: float = math.nan
    #: Half the body axis (ENU, m) when fitted as a line source; zeros: a point.
    half_axis: np.ndarray = field(default_factory=lambda: np.zeros(3))
    #: The anomaly that seeded it (reported as unlocated if the source goes).
    anomaly: HoleAnomaly | None = None

    @property
    def pos(self) -> np.ndarray:
        return np.array([self.x, self.y, self.depth])

    @property
    def params(self) -> np.ndarray:
        if np.any(self.half_axis):
            return np.concatenate([self.pos, self.half_axis])
        return self.pos

    def update(self, params: np.ndarray) -> None:
        self.x, self.y, self.depth = (float(v) for v in params[:3])
        self.half_axis = np.asarray(params[3:6], float) if len(params) == 6 else np.zeros(3)


@dataclass(slots=True)
class BoreholeResult:
    targets: list[Target]
    anomalies: list[HoleAnomaly]
    logs: list[ProcessedLog]
    issues: list[str]
    #: Anomalies no fit could place, reported as issues (not targets).
    unlocated: list[HoleAnomaly] = field(default_factory=list)
    #: Extra per-target facts for reports, keyed by target_id.
    details: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: The solution's sources and the anomalies no fit explained: what an
    #: incremental update (``process_logs(..., prior=, around=)``) starts from.
    sources: list[Source] = field(default_factory=list)
    unexplained: list[HoleAnomaly] = field(default_factory=list)
    #: Numerical failures the fits took as "no fit" (`acquisition.numfail`).
    fit_failures: int = 0


def _prepare(logs: Sequence[HoleLog | ProcessedLog], cfg: BoreholeConfig,
             issues: list[str]) -> list[ProcessedLog]:
    out: list[ProcessedLog] = []
    seen: dict[str, int] = {}
    for lg in logs:
        pl = lg if isinstance(lg, ProcessedLog) else condition(lg, cfg.log)
        if pl.hole in seen:
            seen[pl.hole] += 1
            new = f"{pl.hole}#{seen[pl.hole]}"
            while new in seen:
                seen[pl.hole] += 1
                new = f"{pl.hole}#{seen[pl.hole]}"
            seen[new] = 1
            issues.append(f"hole id {pl.hole!r} appears more than once; this log kept as {new!r}")
            pl.hole = new
            pl.flags.add("duplicate_id")
        else:
            seen[pl.hole] = 1
        issues.extend(pl.issues)
        out.append(pl)
    return out


class _Model:
    """The logs, the current sources and the residuals they leave."""

    def __init__(self, plogs: list[ProcessedLog], cfg: BoreholeConfig) -> None:
        self.plogs = plogs
        self.cfg = cfg
        self.by_hole = {p.hole: p for p in plogs}
        self.sources: list[Source] = []
        #: Sources held as they are (incremental updates: far from the new
        #: hole). They are subtracted like any other, never refitted or dropped.
        self.fixed: set[int] = set()

    def free(self, sources: Sequence[Source]) -> list[Source]:
        return [s for s in sources if id(s) not in self.fixed]

    def model_values(self, pl: ProcessedLog, sources: Sequence[Source]) -> np.ndarray:
        if not sources or len(pl.depth) == 0:
            return np.zeros_like(pl.values)
        obs = build_obs([pl], [(s.x, s.y, s.depth) for s in sources], 1e9, 1e9)
        v = np.zeros_like(pl.values, dtype=float)
        if obs.n == 0:
            return v
        pred = predict(obs, [s.params for s in sources], np.array([s.moment for s in sources]))
        idx = obs.rows[0]
        if pl.kind == "gradient":
            v[idx] = pred
        else:
            v[idx] = pred.reshape(-1, len(idx)).T
        return v

    def misfit(self, pl: ProcessedLog, sources: Sequence[Source]) -> np.ndarray:
        """Expected misfit (nT, per bin) of located sources in this hole.

        The processing assumes vertical holes and exact depths; a hole that
        deviates puts the probe up to ``delta`` metres from where the model
        thinks it is, which changes a dipole field by about 3 delta / r of
        itself at distance r. Plus a fixed share for body shape.
        """
        out = np.zeros_like(pl.values, dtype=float)
        if not sources or len(pl.depth) == 0:
            return out
        cfg = self.cfg
        tilt = math.tan(math.radians(cfg.tilt_max_deg))
        delta = np.sqrt((pl.depth * tilt) ** 2 + (cfg.depth_error_frac * pl.depth) ** 2
                        + cfg.depth_error_m ** 2)
        for s in sources:
            v = np.abs(self.model_values(pl, [s]))
            r = np.sqrt((pl.x - s.x) ** 2 + (pl.y - s.y) ** 2 + (pl.depth - s.depth) ** 2)
            r = np.maximum(r - float(np.linalg.norm(s.half_axis)), 0.1)
            f = np.minimum(1.0, 3.0 * delta / r + cfg.misfit_fraction)
            out += v * (f if v.ndim == 1 else f[:, None])
        return out

    def residuals(self, exclude: Sequence[Source] = ()) -> dict[str, np.ndarray]:
        keep = [s for s in self.sources if all(s is not e for e in exclude)]
        return {p.hole: p.values - self.model_values(p, keep) for p in self.plogs}

    def obs_for(self, sources: Sequence[Source], values: dict[str, np.ndarray]) -> Obs:
        return build_obs(self.plogs, [(s.x, s.y, s.depth) for s in sources],
                         self.cfg.reach_m, self.cfg.window_m, values, self.cfg.rel_error)


def _merge_radius(cfg: BoreholeConfig, s: Source) -> float:
    """How close another source must be to be part of ``s``: wider for bomb-sized moments."""
    big = float(np.linalg.norm(s.moment)) >= cfg.long_body_moment
    return cfg.merge_m + (cfg.long_body_extra_m if big else 0.0)


def _outside_array(model: _Model, s: Source) -> float:
    """How far (m) a source lies outside the convex hull of the logged holes (0 inside)."""
    xy = np.array([[p.x, p.y] for p in model.plogs if len(p.depth)])
    if len(xy) < 3:
        return 0.0
    try:
        hull = ConvexHull(xy)
    except QhullError:  # collinear holes: no area to be outside of
        return 0.0
    poly = xy[hull.vertices]
    pt = np.array([[s.x, s.y]])
    if inside(pt, poly)[0]:
        return 0.0
    return float(distance_to_edges(pt, poly)[0])


def _is_part_of(cfg: BoreholeConfig, new: Source, old: Source) -> bool:
    """Whether a new source is better read as the misfit of a known one.

    Within the merge radius it is the same body; a much weaker source close
    beside a strong one is its residual (a point dipole cannot follow a real
    body's near field, and the procedure could not resolve the two anyway).
    """
    d = float(np.linalg.norm(new.pos - old.pos))
    if d < _merge_radius(cfg, old):
        return True
    weak = np.linalg.norm(new.moment) < cfg.shadow_ratio * np.linalg.norm(old.moment)
    return bool(weak and d < cfg.shadow_m)


def _rebase(pl: ProcessedLog, r: np.ndarray, misfit: np.ndarray | None = None,
            iters: int = 10) -> np.ndarray:
    """Residual minus a robust straight line in depth (what is left of offset and drift).

    Each bin is weighted by its expected error: the noise plus the expected
    misfit of the located targets (``misfit``, per bin). Without that weight
    the misfit near a strong body (which can fill half a log) tilts the line,
    and the tilted line, extrapolated to the far end of the log, leaves a
    ramp there that looks like an anomaly truncated by the log end (the
    ghost: +4 nT at a log top where the data are flat).
    """
    out = r.copy()
    r2 = out.reshape(len(pl.depth), -1)
    m2 = None if misfit is None else np.asarray(misfit, float).reshape(len(pl.depth), -1)
    base = pl.sigma if pl.sigma > 0 else 1.0
    for c in range(r2.shape[1]):
        ok = np.isfinite(r2[:, c])
        if np.count_nonzero(ok) <= 3:
            continue
        x, y = pl.depth[ok], r2[ok, c]
        s = np.full(len(y), base) if m2 is None else np.hypot(base, m2[ok, c])
        xs = (x - x.mean()) / (np.ptp(x) or 1.0)
        w0 = 1.0 / s
        coef = np.polyfit(xs, y, 1, w=w0)
        for _ in range(iters):
            z = (y - np.polyval(coef, xs)) / s
            scale = max(1.4826 * float(np.median(np.abs(z - np.median(z)))), 1.0)
            u = z / (4.685 * scale)
            bw = np.where(np.abs(u) < 1, (1 - u * u) ** 2, 0.0)
            if np.count_nonzero(bw) <= 3:
                break
            coef = np.polyfit(xs, y, 1, w=w0 * np.sqrt(bw))
        r2[ok, c] -= np.polyval(coef, xs)
    return out


def _detect_threshold_sigma(pl: ProcessedLog, cfg: DetectConfig) -> float:
    bin_m = float(np.median(np.diff(pl.depth))) if len(pl.depth) > 1 else 0.05
    w = max(1, round(cfg.smooth_m / max(bin_m, 1e-6)))
    return pl.sigma / math.sqrt(w)


def _seeds(pl: ProcessedLog, a: HoleAnomaly) -> list[tuple[float, float, float]]:
    rho = a.distance_m if math.isfinite(a.distance_m) else 1.0
    z = a.depth_fit if math.isfinite(a.depth_fit) else a.depth_peak - pl.separation / 2
    if rho < 0.15:
        return [(pl.x, pl.y, z)]
    return [(pl.x + rho * math.cos(t), pl.y + rho * math.sin(t), z)
            for t in np.radians(np.arange(0, 360, 30))]


#: Initial half-axes (m) of line sources: along E, N, up and the two diagonals.
_LINE_SEEDS = ((0.4, 0, 0), (0, 0.4, 0), (0, 0, 0.4), (0.3, 0.3, 0), (0.3, -0.3, 0))


def _fit_new(model: _Model, pl: ProcessedLog, a: HoleAnomaly,
             resid: dict[str, np.ndarray], misfit: dict[str, np.ndarray] | None = None
             ) -> tuple[Source, float, Obs] | None:
    """Fit one new source to the residual logs around anomaly ``a``; None if no data."""
    cfg = model.cfg
    seeds = _seeds(pl, a)
    obs = build_obs(model.plogs, [(pl.x, pl.y, seeds[0][2])], cfg.reach_m + 1.0, cfg.window_m,
                    resid, cfg.rel_error, misfit)
    if obs.n < 8:
        return None
    costs = [chi2_at(obs, [s]) for s in seeds]
    best: Any = None
    for i in np.argsort(costs)[:3]:
        r = fit(obs, [seeds[int(i)]])
        if best is None or r.chi2 < best.chi2:
            best = r
    if best.chi2_null - best.chi2 > cfg.line_min_gain and best.reduced_chi2 > cfg.line_min_rchi2:
        # Strong signal: try an elongated body (a bomb 1.5 m long is no point
        # dipole at 1 m from a hole); keep it only if it fits clearly better.
        p0 = best.params[0][:3]
        inits = [np.concatenate([p0, h]) for h in _LINE_SEEDS]
        # Only the most promising axes are fitted (at fixed geometry the
        # moments are solved exactly, so the ranking is cheap).
        order = np.argsort([chi2_at(obs, [q]) for q in inits])[:cfg.line_fits]
        for i in order:
            r = fit(obs, [inits[int(i)]])
            length = 2.0 * float(np.linalg.norm(r.params[0][3:]))
            if _hold_at_cap(cfg, length, r.moments[0]):
                # A bomb whose line runs a little past the longest body (its
                # tails cut off by the log ends, a case that is no uniform
                # line): fit the line held at that length rather than fall
                # back to a point, whose misfit hides its neighbours (see
                # `_hold_at_cap`).
                log.debug("  line %.2f m long, |m| %.2f: refitted held at %.2f m", length,
                          float(np.linalg.norm(r.moments[0])), cfg.max_body_length_m)
                r = fit(obs, [r.params[0]], max_half_length=cfg.max_body_length_m / 2.0,
                        capped=True)
                length = 2.0 * float(np.linalg.norm(r.params[0][3:]))
            if r.chi2 < best.chi2 - cfg.line_min_delta_chi2 and length <= cfg.max_body_length_m:
                best = r
    m = best.moments[0]
    src = Source(0.0, 0.0, 0.0, m, best.sigmas[0], seed_hole=pl.hole,
                 seed_distance_m=a.distance_m)
    src.update(best.params[0])
    return src, best.chi2_null - best.chi2, obs


def _refit_group(model: _Model, group: list[Source]) -> None:
    """Refit ``group`` together on the original logs minus every other source."""
    group = model.free(group)
    if not group:
        return
    resid = model.residuals(exclude=group)
    obs = model.obs_for(group, resid)
    if obs.n < 8:
        return
    r = fit(obs, [s.params for s in group])
    cfg = model.cfg
    too_long = [i for i, p in enumerate(r.params)
                if len(p) == 6 and 2.0 * np.linalg.norm(p[3:]) > cfg.max_body_length_m]
    if too_long:
        # No ordnance is longer: a line far past that, or of a projectile's
        # moment, is bridging two objects; refit it as a point. A bomb-sized
        # line a little past it is held at the longest body's length.
        small = [i for i in too_long if not _hold_at_cap(
            cfg, 2.0 * float(np.linalg.norm(r.params[i][3:])), r.moments[i])]
        r = fit(obs, [s.pos if i in small else s.params for i, s in enumerate(group)],
                max_half_length=cfg.max_body_length_m / 2.0, capped=len(small) < len(too_long))
    for s, p, m, sg in zip(group, r.params, r.moments, r.sigmas, strict=True):
        s.update(p)
        s.moment, s.sigmas = m, sg
    q = 0.0 if r.chi2_null <= 0 else max(0.0, min(1.0, 1.0 - r.chi2 / r.chi2_null))
    for s in group:
        s.quality = q


def _hold_at_cap(cfg: BoreholeConfig, length: float, moment: np.ndarray) -> bool:
    """Whether a line fitted ``length`` m long is a bomb to hold at the longest body's length.

    Lines longer than ``max_body_length_m`` used to be refused outright (the
    source stayed a point). That lost a steep bomb just below the hole
    bottoms (e.g. its line fits ran to 2.46 m,
    2.5 % past the cap): as a point it kept half its moment and left a
    misfit that hid a 155 mm projectile 2.8 m away and let a weak
    candidate on its residual, placed 1.4 m below the hole bottoms, take
    its data in the joint refit (one 27.9 A m^2 source 1.6 m from both).
    Held at the cap, it is refitted with that projectile to a 1.63 m line
    0.06 m from the truth. Only a bomb-sized moment (``long_body_moment``)
    can be metres long: a projectile's line past the cap (e.g. 2.42 m,
    0.89 A m^2) is still a point; and a fit further past the cap (more than
    ``cap_tolerance`` times it) is bridging two objects (e.g. 2.78 m,
    5.4 A m^2 across two projectiles 2 m apart; e.g.
    3.67 m, 7.2 A m^2 across a projectile and a bomb 2.6 m apart). The
    margins are thin (2.46 / 2.64 / 2.78 m; 4.2 against 4 A m^2).
    """
    return cfg.max_body_length_m < length <= cfg.cap_tolerance * cfg.max_body_length_m \
        and float(np.linalg.norm(moment)) >= cfg.long_body_moment


def _neighbours(model: _Model, src: Source, within: float) -> list[Source]:
    """``src`` and the nearest known sources whose fields overlap its data."""
    near = [s for s in model.sources
            if s is not src and math.hypot(s.x - src.x, s.y - src.y) <= within
            and abs(s.depth - src.depth) <= 2 * model.cfg.window_m]
    near.sort(key=lambda s: float(np.linalg.norm(s.pos - src.pos)))
    return [src, *near[: model.cfg.max_group]]


def _delta_chi2(model: _Model, src: Source) -> float:
    """Chi-square the data lose when ``src`` is removed (others held fixed)."""
    others = [s for s in model.sources if s is not src]
    resid, mis = {}, {}
    for p in model.plogs:
        mv = model.model_values(p, others)
        resid[p.hole] = p.values - mv
        mis[p.hole] = model.misfit(p, others)
    obs = build_obs(model.plogs, [(src.x, src.y, src.depth)], model.cfg.reach_m,
                    model.cfg.window_m, resid, model.cfg.rel_error, mis)
    if obs.n == 0:
        return 0.0
    proj = _Projector(obs)
    a = proj.project(predict(obs, [src.params], src.moment[None, :])[:, None])
    c, *_ = np.linalg.lstsq(a, proj.y, rcond=None)
    r1 = proj.y - a @ c
    return float(proj.y @ proj.y - r1 @ r1)


def _holes_seeing(model: _Model, src: Source) -> list[tuple[str, float]]:
    """Holes where the source's predicted signal clears the detection threshold."""
    out = []
    for pl in model.plogs:
        if len(pl.depth) == 0 or math.hypot(pl.x - src.x, pl.y - src.y) > 3 * model.cfg.reach_m:
            continue
        v = channel(pl, model.model_values(pl, [src]))
        peak = float(np.nanmax(np.abs(v))) if np.any(np.isfinite(v)) else 0.0
        thr = model.cfg.detect.k * _detect_threshold_sigma(pl, model.cfg.detect)
        if peak >= thr:
            out.append((pl.hole, peak / max(thr, 1e-12)))
    return out


def _clearly_own(model: _Model, src: Source, nb: Sequence[Source],
                 resid: dict[str, np.ndarray], mis: dict[str, np.ndarray]) -> bool:
    """Whether ``src``'s data are so much its own that no neighbour refit can matter.

    Over the rows that constrain ``src`` (weighted as in the nested test), its
    own signal energy is compared with the energy of the neighbours' whole
    modelled field there. A ghost lives inside a neighbour's field (it is
    that field's misfit, 10-30 % of it): on simulated layers the ghosts
    had ratios 0.09 and 1.5, real bodies 0.9 to 300. Above
    ``nested_skip_ratio`` (with energy well above ``min_nested_gain``) the
    nested test, the costliest step, cannot reject the source and is skipped.
    """
    cfg = model.cfg
    e_own, e_nb = _energies(model, src, nb, resid, mis)
    return e_own >= cfg.nested_skip_energy * cfg.min_nested_gain and \
        e_own >= cfg.nested_skip_ratio * e_nb


def _energies(model: _Model, src: Source, nb: Sequence[Source],
              resid: dict[str, np.ndarray], mis: dict[str, np.ndarray]) -> tuple[float, float]:
    """Weighted energy of ``src``'s modelled field and of its neighbours' over its data."""
    cfg = model.cfg
    obs = build_obs(model.plogs, [(src.x, src.y, src.depth)], cfg.reach_m, cfg.window_m,
                    resid, cfg.rel_error, mis)
    if obs.n == 0:
        return 0.0, 0.0
    own = predict(obs, [src.params], src.moment[None, :]) / obs.sigma
    theirs = predict(obs, [g.params for g in nb], np.array([g.moment for g in nb])) / obs.sigma
    return float(own @ own), float(theirs @ theirs)


def _nested_significant(model: _Model, src: Source) -> bool:
    """Whether ``src`` is needed once its neighbours may refit without it.

    A ghost is a weak source fitted to what a neighbouring body's model leaves
    (a bomb fitted too short, a deviated hole): removing it and letting the
    neighbours refit recovers most of its chi-square. When it is not needed it
    is removed and the neighbours keep their refit.
    """
    cfg = model.cfg
    nb = [g for g in model.free(model.sources) if g is not src
          and math.hypot(g.x - src.x, g.y - src.y) <= cfg.reach_m + 1.0
          and abs(g.depth - src.depth) <= 3 * cfg.window_m]
    if not nb:
        return True
    grp = [*nb, src]
    # The neighbours' expected misfit (deviated holes, depth errors, body
    # shape) is noise here: a ghost lives in exactly that misfit.
    mis = {p.hole: model.misfit(p, nb) for p in model.plogs}
    resid = model.residuals(exclude=grp)
    end = _log_end(model, src)
    if end:
        # Beyond the log ends a body is seen only by its truncated near-field
        # tails, and refitted neighbours (bombs re-seeded as lines) absorb
        # part of a real next-layer body's: the full test (``min_nested_gain``)
        # removed real bodies (benchmark set ``below``). A source whose field
        # dominates its data is its own; otherwise it must beat the BIC
        # penalty of its parameters once its neighbours refit without it.
        e_own, e_nb = _energies(model, src, nb, resid, mis)
        if e_own >= cfg.nested_skip_ratio * e_nb:
            return True
    elif _clearly_own(model, src, nb, resid, mis):
        return True
    obs = build_obs(model.plogs, [(g.x, g.y, g.depth) for g in grp], cfg.reach_m,
                    cfg.window_m, resid, cfg.rel_error, mis)
    if obs.n < 8:
        return True
    with_src = fit(obs, [g.params for g in grp])
    best = fit(obs, [g.params for g in nb])
    for k, g in enumerate(nb):
        if float(np.linalg.norm(g.moment)) < cfg.long_body_moment:
            continue
        for h in _LINE_SEEDS:
            init = [q.params for q in nb]
            init[k] = np.concatenate([g.pos, h])
            r = fit(obs, init)
            length = 2.0 * float(np.linalg.norm(r.params[k][3:])) if len(r.params[k]) == 6 else 0
            if r.chi2 < best.chi2 and length <= cfg.max_body_length_m:
                best = r
    scale = max(with_src.chi2 / max(with_src.dof, 1), 1.0)
    gain = (best.chi2 - with_src.chi2) / scale
    need = cfg.log_end_bic_factor * 6.0 * math.log(obs.n) if end else cfg.min_nested_gain
    log.debug("nested test (%.2f, %.2f, %.2f)%s: chi2 gain %.0f / %.2f = %.0f (need %.0f)",
              src.x, src.y, src.depth, " log_end" if end else "", best.chi2 - with_src.chi2,
              scale, gain, need)
    if gain >= need:
        return True
    model.sources.remove(src)
    for g, p, m, sg in zip(nb, best.params, best.moments, best.sigmas, strict=True):
        g.update(p)
        g.moment, g.sigmas = m, sg
    return False


def process_logs(logs: Sequence[HoleLog | ProcessedLog], field: EarthField = QUANG_TRI,
                 config: BoreholeConfig | None = None, t_ns: int = 0, *,
                 prior: BoreholeResult | None = None,
                 around: tuple[float, float] | None = None,
                 on_progress: Callable[[int, int], None] | None = None) -> BoreholeResult:
    """Locate targets in a layer's logs (raw `HoleLog`s are conditioned first).

    ``on_progress(done, total)`` counts holes searched, then one step for the
    joint location of the whole layer (a progress bar; no effect on the answer).

    ``field`` is recorded for provenance: the moments are fitted free (remanence
    can point anywhere), so locating does not depend on it.

    Incremental update (the live pipeline, after each hole): with ``prior``
    (the result for the logs so far, whose `ProcessedLog`s are passed again)
    and ``around`` (the new hole's collar), only the neighbourhood the new
    hole can change is solved again: the prior's sources within
    ``update_radius_m`` of it are found afresh, with every other source held
    fixed; only holes within ``reach_m`` of the new hole or of those sources
    are searched. Anomalies and conditioning of the other holes are reused.
    """
    cfg = (config or BoreholeConfig()).validate()
    failed0 = thread_count()
    issues: list[str] = []
    plogs = _prepare(logs, cfg, issues)
    model = _Model(plogs, cfg)
    incremental = prior is not None and around is not None
    known = {id(p) for p in prior.logs} if prior is not None else set()
    # Per-hole anomalies on the conditioned logs, with their single-hole distance.
    anomalies: list[HoleAnomaly] = []
    if prior is not None:
        anomalies += [a for a in prior.anomalies if a.hole in model.by_hole
                      and id(model.by_hole[a.hole]) in known]
    steps = len(plogs) + 1
    for i, pl in enumerate(plogs, start=1):
        if on_progress is not None:
            on_progress(i, steps)
        if id(pl) in known:
            continue
        for a in detect(pl, config=cfg.detect):
            anomalies.append(fit_distance(pl, a, config=cfg.detect))
    masked: list[tuple[str, float, float]] = []
    unexplained: list[HoleAnomaly] = []
    active = {p.hole for p in plogs}
    if incremental:
        assert prior is not None and around is not None
        ax, ay = around
        redo = [s for s in prior.sources
                if math.hypot(s.x - ax, s.y - ay) <= cfg.update_radius_m]
        for s in prior.sources:
            if not any(s is r for r in redo):
                c = _copy_source(s)
                model.sources.append(c)
                model.fixed.add(id(c))
        centres = [(ax, ay)] + [(s.x, s.y) for s in redo]
        active = {p.hole for p in plogs
                  if any(math.hypot(p.x - cx, p.y - cy) <= cfg.reach_m for cx, cy in centres)}
        # Outside the searched holes nothing changes: what was unexplained stays so.
        unexplained = [a for a in prior.unexplained if a.hole not in active]
        masked = [(a.hole, a.depth_top, a.depth_bottom) for a in unexplained]
    _clean(model, active, masked, unexplained, issues)
    end_only = _prune(model, issues)
    for s in sorted(model.free(model.sources), key=lambda s: float(np.linalg.norm(s.moment))):
        if len(model.sources) > 1 and not _nested_significant(model, s):
            issues.append(f"dropped a source at ({s.x:.2f}, {s.y:.2f}, {s.depth:.2f} m): its "
                          "neighbours, refitted, explain its data (their model misfit)")
    result = BoreholeResult([], anomalies, plogs, issues)
    result.unlocated.extend(end_only)
    result.sources = [_copy_source(s) for s in model.sources]
    result.unexplained = list(unexplained)
    _make_targets(model, result, unexplained, t_ns)
    result.fit_failures = thread_count() - failed0
    if on_progress is not None:
        on_progress(steps, steps)
    if result.fit_failures:
        log.warning("%d numerical fit failure(s) taken as no fit", result.fit_failures)
        issues.append(f"{result.fit_failures} numerical fit failure(s) taken as no fit "
                      "(singular or failed solves; see the log)")
    return result


def _copy_source(s: Source) -> Source:
    return Source(s.x, s.y, s.depth, s.moment.copy(), s.sigmas.copy(), s.quality, s.seed_hole,
                  s.seed_distance_m, s.half_axis.copy(), s.anomaly)


def _clean(model: _Model, active: set[str], masked: list[tuple[str, float, float]],
           unexplained: list[HoleAnomaly], issues: list[str]) -> None:
    """Subtract-and-repeat over the residual logs of the ``active`` holes."""
    cfg, plogs = model.cfg, model.plogs
    state: tuple | None = None
    found: list[tuple[ProcessedLog, HoleAnomaly, dict[str, np.ndarray]]] = []
    for _ in range(cfg.max_sources * 3):
        if len(model.sources) >= cfg.max_sources:
            issues.append(f"stopped at {cfg.max_sources} sources")
            break
        resid = model.residuals()
        misfit = {p.hole: model.misfit(p, model.sources) for p in plogs}
        # A rejected candidate leaves the model as it was: the residual logs,
        # and so the anomalies found in them, are the same (only the masked
        # list grew), so they are not searched again.
        now = _model_state(model)
        if now != state:
            state, found = now, []
            for pl in plogs:
                if len(pl.depth) == 0 or pl.hole not in active:
                    continue
                rr = _rebase(pl, resid[pl.hole], misfit[pl.hole])
                for a in detect(pl, rr, cfg.detect, extra_sigma=channel(pl, misfit[pl.hole])):
                    found.append((pl, a, {**resid, pl.hole: rr}))
        cands = [c for c in found
                 if not any(h == c[0].hole and d0 - 0.1 <= c[1].depth_peak <= d1 + 0.1
                            for h, d0, d1 in masked)]
        if not cands:
            break
        pl, a, rvals = max(cands, key=lambda c: c[1].snr)
        fit_distance(pl, a, rvals[pl.hole], cfg.detect)
        masked.append((pl.hole, a.depth_top, a.depth_bottom))
        got = _fit_new(model, pl, a, rvals, misfit)
        if got is None:
            unexplained.append(a)
            continue
        src, gain, _ = got
        log.debug("candidate %s@%.2f snr=%.0f rho=%.2f -> (%.2f, %.2f, %.2f) |m|=%.2f gain=%.0f",
                  a.hole, a.depth_peak, a.snr, a.distance_m, src.x, src.y, src.depth,
                  float(np.linalg.norm(src.moment)), gain)
        if gain < cfg.min_delta_chi2:
            unexplained.append(a)
            continue
        src.anomaly = a
        tops = [p.top for p in plogs if len(p.depth)]
        bottoms = [p.bottom for p in plogs if len(p.depth)]
        if not (min(tops) - cfg.end_reach_m <= src.depth <= max(bottoms) + cfg.end_reach_m):
            log.debug("  rejected: too far outside the logged depths")
            unexplained.append(a)
            continue
        if _outside_array(model, src) > cfg.outside_margin_m:
            # Seen from one side only: not told from a neighbour's misfit (it
            # would be pruned at the end anyway; meanwhile its field, often
            # huge, would fill the other holes' residuals with false anomalies).
            log.debug("  rejected: outside the logged holes")
            unexplained.append(a)
            continue
        near = [s for s in model.sources if _is_part_of(cfg, src, s)]
        if near:
            # The residual of a known body (an elongated body is not a point):
            # refit that body rather than inventing a second one beside it.
            _refit_group(model, _neighbours(model, near[0], cfg.group_m))
            continue
        model.sources.append(src)
        masked.pop()  # explained: let its hole be searched again for overlaps
        _refit_group(model, _neighbours(model, src, cfg.group_m))


def _model_state(model: _Model) -> tuple:
    """Everything the residual logs depend on: each source's identity and parameters."""
    return tuple((id(q), *q.params.tolist(), *q.moment.tolist()) for q in model.sources)


def _prune(model: _Model, issues: list[str]) -> list[HoleAnomaly]:
    """Every (free) source must earn its place; near-coincident sources are one body.

    Returns the seed anomalies of sources dropped as one-hole log-end views.
    """
    cfg = model.cfg
    end_only: list[HoleAnomaly] = []
    tried: set[tuple] = set()
    changed = True
    while changed and model.sources:
        changed = False
        if _merge_log_end_pairs(model, issues, tried):
            changed = True
            continue
        for s in sorted(model.free(model.sources), key=lambda s: float(np.linalg.norm(s.moment))):
            if _outside_array(model, s) > cfg.outside_margin_m:
                issues.append(f"source at ({s.x:.2f}, {s.y:.2f}, {s.depth:.2f} m) lies outside "
                              "the logged holes; not reported (log holes beyond to resolve it)")
                model.sources.remove(s)
                changed = True
                break
            if _log_end(model, s) and len(_holes_seeing(model, s)) < cfg.log_end_min_holes:
                where = f"hole {s.anomaly.hole}: anomaly at {s.anomaly.depth_peak:.2f} m, " \
                    if s.anomaly is not None else ""
                issues.append(f"{where}fitted at ({s.x:.2f}, {s.y:.2f}, {s.depth:.2f} m), is seen "
                              "only at a log end of one hole: not located (an object beyond the "
                              "logged depths, or a log-end artefact; log further to resolve)")
                model.sources.remove(s)
                if s.anomaly is not None:
                    end_only.append(s.anomaly)
                changed = True
                break
            shadowed = any(g is not s and np.linalg.norm(g.moment) > np.linalg.norm(s.moment)
                           and _is_part_of(cfg, s, g) for g in model.sources)
            if shadowed or _delta_chi2(model, s) < cfg.min_delta_chi2 \
                    or not _holes_seeing(model, s):
                issues.append(f"dropped a weak source at ({s.x:.2f}, {s.y:.2f}, {s.depth:.2f} m)"
                              " that explained too little of the data")
                model.sources.remove(s)
                for g in model.sources:
                    if np.linalg.norm(g.pos - s.pos) < cfg.group_m:
                        _refit_group(model, _neighbours(model, g, cfg.group_m))
                        break
                changed = True
                break
        for i, s in enumerate(model.sources):
            close = [g for g in model.sources[i + 1:]
                     if np.linalg.norm(g.pos - s.pos) < max(_merge_radius(cfg, s),
                                                            _merge_radius(cfg, g))]
            if close and (id(s) not in model.fixed or id(close[0]) not in model.fixed):
                g = close[0]
                keep, drop = (s, g) if np.linalg.norm(s.moment) >= np.linalg.norm(g.moment) \
                    else (g, s)
                if id(drop) in model.fixed:  # never drop a held source: drop the free one
                    keep, drop = drop, keep
                model.sources.remove(drop)
                _refit_group(model, _neighbours(model, keep, cfg.group_m))
                changed = True
                break
    return end_only


def _merge_log_end_pairs(model: _Model, issues: list[str], tried: set[tuple]) -> bool:
    """Merge a ``log_end`` source and a near one that one line source explains (BIC).

    Returns True if it merged a pair. Beyond the log ends a bomb is seen only
    by one side of its field, which two point dipoles can fit as well as a
    line: a steep bomb (plunge 54 degrees) at 9.4 m was fitted as a point
    plus a second source 1.8 m away beyond the hole bottoms (munition-case
    bodies; merged: a 1.54 m line 0.05 m from it, was 0.24 m),
    and a bomb of the next layer as two sources 1.7 m apart (merged: 0.33 m
    from it, was 0.47 m). For each pair
    of free sources, one of them ``log_end``, farther apart than the merge
    radius and no farther than the longest body, a single line source
    (started along the pair and, from the stronger one, along the usual
    axes) is fitted with the pair's neighbours; it replaces the pair when
    the Bayesian information criterion prefers it: its chi-square rise,
    scaled by the pair fit's reduced chi-square when above 1, is under the
    parameters it saves times ln n. Pairs within the merge radius are left
    to the ordinary merge (the stronger source kept): as a line, a 155 mm
    projectile above the logged top and its misfit 0.5 m away became a
    1.6 m body 0.6 m off. ``tried`` keeps pairs
    already refused (at the same parameters).
    """
    cfg = model.cfg
    free = model.free(model.sources)
    ends = [i for i, s in enumerate(free) if _log_end(model, s)]
    pairs = sorted({(float(np.linalg.norm(free[i].pos - free[j].pos)), min(i, j), max(i, j))
                    for i in ends for j in range(len(free)) if j != i},
                   key=lambda t: t[0])
    for d, i, j in pairs:
        if d > cfg.max_body_length_m:
            break
        a, b = free[i], free[j]
        if d < max(_merge_radius(cfg, a), _merge_radius(cfg, b)):
            continue  # one body anyway: merged below, keeping the stronger source
        if np.linalg.norm(a.moment) < np.linalg.norm(b.moment):
            a, b = b, a
        key = (id(a), id(b), *np.round(a.params, 3), *np.round(b.params, 3))
        if key in tried:
            continue
        tried.add(key)
        others = [g for g in free if g is not a and g is not b
                  and math.hypot(g.x - a.x, g.y - a.y) <= cfg.group_m][: cfg.max_group - 1]
        grp = [a, b, *others]
        resid = model.residuals(exclude=grp)
        obs = model.obs_for(grp, resid)
        if obs.n < 8:
            continue
        pair = fit(obs, [g.params for g in grp])
        mid = (a.pos + b.pos) / 2.0
        along = (a.pos - b.pos) / 2.0 * np.array([1.0, 1.0, -1.0])  # depth -> ENU up
        inits = [np.concatenate([mid, along])]
        inits += [np.concatenate([a.pos, h]) for h in _LINE_SEEDS]
        order = np.argsort([chi2_at(obs, [q, *[g.params for g in others]]) for q in inits])
        line: Any = None
        for k in order[:cfg.line_fits]:
            r = fit(obs, [inits[int(k)], *[g.params for g in others]])
            if len(r.params[0]) == 6 and \
                    2.0 * float(np.linalg.norm(r.params[0][3:])) > cfg.max_body_length_m:
                continue
            if line is None or r.chi2 < line.chi2:
                line = r
        if line is None:
            log.debug("line merge: no line fit for (%.2f, %.2f, %.2f) + (%.2f, %.2f, %.2f)",
                      a.x, a.y, a.depth, b.x, b.y, b.depth)
            continue
        saved = len(a.params) + len(b.params) + 6 - 9  # positions (+ axes) and moments
        scale = max(pair.chi2 / max(pair.dof, 1), 1.0)
        rise = (line.chi2 - pair.chi2) / scale
        log.debug("line merge (%.2f, %.2f, %.2f) + (%.2f, %.2f, %.2f): chi2 rise %.0f, "
                  "BIC allows %.0f", a.x, a.y, a.depth, b.x, b.y, b.depth, rise,
                  saved * math.log(obs.n))
        if rise >= saved * math.log(obs.n):
            continue
        model.sources.remove(b)
        for g, p, m, sg in zip([a, *others], line.params, line.moments, line.sigmas,
                               strict=True):
            g.update(p)
            g.moment, g.sigmas = m, sg
        issues.append(f"merged two sources beyond the log ends, ({b.x:.2f}, {b.y:.2f}, "
                      f"{b.depth:.2f} m) into ({a.x:.2f}, {a.y:.2f}, {a.depth:.2f} m): one "
                      "elongated body explains both")
        return True
    return False


def _truncated(pl: ProcessedLog, depth: float, margin: float) -> bool:
    """Whether ``depth`` is not logged at least ``margin`` past on both sides in ``pl``."""
    return not (pl.top + margin <= depth <= pl.bottom - margin)


def _log_end(model: _Model, src: Source) -> bool:
    """Whether no hole that sees ``src`` logged past its depth on both sides.

    Its anomaly is then cut off by the log ends in every hole: the object
    lies at or beyond the end of the logged depths (e.g. in the next layer,
    below the hole bottoms), and its depth is extrapolated.
    """
    seeing = [model.by_hole[h] for h, _ in _holes_seeing(model, src)]
    if not seeing:
        return True
    return all(_truncated(p, src.depth, model.cfg.end_margin_m) for p in seeing)


def _misfit_tail(model: _Model, pl: ProcessedLog, a: HoleAnomaly) -> bool:
    """Whether ``a`` is a weak bump on the tail of a located target's far stronger misfit.

    Detection calls a bump under ``shadow_ratio`` (10 %) of a stronger
    anomaly within ``shadow_m`` (4 m) of it in the same hole its tail. On the
    residual logs that stronger anomaly may not be detected itself, because
    it lies within the expected misfit of a located target (a body below the
    hole bottoms, fitted from its truncated tails, can leave tens of nT in
    one hole); its tail, minus the straight line that levels the residual,
    still leaves a bump metres above (e.g. 0.9 nT
    at 6 m under a 43 nT residual at 9.4 m, reported as a ``no_converge``
    target). The same rule applies: the bump is that residual's tail.
    """
    dcfg = model.cfg.detect
    if len(pl.depth) == 0:
        return False
    r = channel(pl, pl.values - model.model_values(pl, model.sources))
    mis = channel(pl, model.misfit(pl, model.sources))
    bin_m = float(np.median(np.diff(pl.depth))) if len(pl.depth) > 1 else 0.05
    w = max(1, round(dcfg.smooth_m / max(bin_m, 1e-6)))
    r, mis = smooth(r, w), smooth(mis, w)
    near = (np.abs(pl.depth - a.depth_peak) < dcfg.shadow_m) & np.isfinite(r)
    # Only residual a located target's expected misfit accounts for (within
    # k times it): anything stronger is an anomaly of its own.
    strong = near & (np.abs(r) * dcfg.shadow_ratio > abs(a.amplitude_nT)) \
        & (np.abs(r) <= dcfg.k * np.hypot(mis, _detect_threshold_sigma(pl, dcfg)))
    return bool(np.any(strong))


def _make_targets(model: _Model, result: BoreholeResult, unexplained: list[HoleAnomaly],
                  t_ns: int) -> None:
    cfg = model.cfg
    tilt = math.tan(math.radians(cfg.tilt_max_deg))
    tid = 0
    for s in sorted(model.sources, key=lambda s: (s.depth, s.x, s.y)):
        seeing = _holes_seeing(model, s)
        holes = tuple(h for h, _ in sorted(seeing, key=lambda t: -t[1]))
        logged_near = [p for p in model.plogs
                       if math.hypot(p.x - s.x, p.y - s.y) <= cfg.reach_m and len(p.depth)]
        flags: list[str] = []
        details: dict[str, Any] = {}
        floor_h = s.depth * tilt / 2.0
        sx = math.hypot(float(s.sigmas[0]), floor_h)
        sy = math.hypot(float(s.sigmas[1]), floor_h)
        sd = math.hypot(float(s.sigmas[2]), cfg.depth_error_frac * s.depth + cfg.depth_error_m)
        x, y = s.x, s.y
        method = "dipole_fit_multi_hole"
        if len(holes) <= 1:
            flags.append("single_hole")
        if _log_end(model, s):
            flags.append("log_end")
        if len(logged_near) <= 1:
            # One hole and no neighbours: distance, not direction.
            pl = model.by_hole.get(s.seed_hole) or logged_near[0] if logged_near else None
            if pl is not None:
                rho = math.hypot(s.x - pl.x, s.y - pl.y)
                x, y = pl.x, pl.y
                sx = sy = max(rho, 0.1)
                details["distance_m"] = rho
                flags.append("no_neighbours")
                method = "single_hole_distance"
        if any(f in p.flags for p in logged_near for f in ("gap", "depth_reversal", "too_fast")):
            flags.append("log_issue")
        amp = max((v for _, v in seeing), default=0.0)
        tid += 1
        thr_amp = 0.0
        if holes:
            pl0 = model.by_hole[holes[0]]
            thr_amp = float(np.nanmax(np.abs(channel(pl0, model.model_values(pl0, [s])))))
        result.targets.append(Target(
            stream_id=cfg.stream_id, target_id=tid, x=float(x), y=float(y),
            depth=float(s.depth),
            moment=(float(s.moment[0]), float(s.moment[1]), float(s.moment[2])),
            quality=float(s.quality), sigma_x=sx, sigma_y=sy, sigma_depth=sd,
            amplitude_nT=thr_amp, holes=holes, flags=tuple(flags), method=method, t_ns=t_ns))
        details["snr_over_threshold"] = amp
        if np.any(s.half_axis):
            details["length_m"] = 2.0 * float(np.linalg.norm(s.half_axis))
        result.details[tid] = details
    for a in unexplained:
        pl = model.by_hole[a.hole]
        near_model = model.model_values(pl, model.sources)
        ch = channel(pl, near_model)
        j = int(np.argmin(np.abs(pl.depth - a.depth_peak))) if len(pl.depth) else 0
        lo = max(0, j - 10)
        explained = float(np.nanmax(np.abs(ch[lo:j + 10]))) if len(ch) else 0.0
        if explained >= 0.3 * abs(a.amplitude_nT) or _misfit_tail(model, pl, a):
            result.issues.append(f"hole {a.hole}: residual at {a.depth_peak:.2f} m left by a "
                                 "located target (model misfit), not a new target")
            continue
        bad_fit = not (a.fit_ok and a.distance_m < cfg.detect.max_distance_m - 0.05
                       and pl.top - cfg.depth_margin_m <= a.depth <= pl.bottom
                       + cfg.depth_margin_m)
        if min(a.depth_peak - pl.top, pl.bottom - a.depth_peak) < cfg.end_margin_m:
            # Cut off by the log end: one hole cannot place it, and no joint
            # fit did. An object beyond the logged depths, or a log-end
            # artefact: an issue to resolve by logging further, not a target.
            result.issues.append(f"hole {a.hole}: anomaly at {a.depth_peak:.2f} m (snr "
                                 f"{a.snr:.0f}) is cut off by the log end and no joint fit "
                                 "explains it; not located (log further to resolve)")
            result.unlocated.append(a)
            continue
        if bad_fit:
            result.issues.append(f"hole {a.hole}: anomaly at {a.depth_peak:.2f} m (snr "
                                 f"{a.snr:.0f}) could not be located, not even from its own "
                                 "hole; check the log there (drift, noise)")
            result.unlocated.append(a)
            continue
        tid += 1
        rho = a.distance_m if math.isfinite(a.distance_m) else math.nan
        result.targets.append(Target(
            stream_id=cfg.stream_id, target_id=tid, x=pl.x, y=pl.y, depth=a.depth,
            moment=(math.nan, math.nan, math.nan), quality=0.0, sigma_x=rho, sigma_y=rho,
            sigma_depth=a.sigma_depth_m, amplitude_nT=abs(a.amplitude_nT), holes=(a.hole,),
            flags=("single_hole", "no_converge"), method="single_hole_distance", t_ns=t_ns))
        result.details[tid] = {"distance_m": rho}
        result.issues.append(f"hole {a.hole}: anomaly at {a.depth_peak:.2f} m could not be "
                             f"located jointly; reported at the hole, {rho:.2f} m away")
