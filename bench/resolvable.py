"""Which bodies the data can resolve at all: the recall bound of the lane fit's criterion.

Run: ``.venv/bin/python bench/resolvable.py [--seeds N] [--first-seed K]
[--held-out [N]] [--only NAME ...] [--markdown] [--jsonl FILE] [--soil-as-white]``;
``--summarise FILE ...`` prints the tables of records written earlier by ``--jsonl``

`depth_bound.py` asks how well any unbiased method could place a body's
depth; this asks whether any method that decides model order by the fit's
one criterion (`acquisition.dsp.acceptance`) could hold the body as a source
of its own. For every detectable body of `accuracy_lanes`' seeded surveys
(the same worlds, the same simulation, the pipeline's own run and matching),
an oracle that knows every body's true position tries the best case:

* data: the survey's samples (recorded positions, raw readings) within
  `window_radius` of the body, the radius the fit's deep-source stages judge
  on; the exact field of every body that is not modelled (farther than the
  window plus `FitConfig.far_margin_m`, or too weak to matter there) taken out;
* model: the body as a point dipole (3 position and 3 moment parameters,
  the moments solved linearly, as the fit does; a line source, 3 more,
  if it is long beside its distance from the sensor); every neighbour within
  `REACH_M` + the body's depth whose field varies over the window at least
  `FREE_SHARE` times as much as the body's own, and whose anomaly is at
  least `WIDTH_SHARE` as wide, free to move (it could take up the body's
  anomaly); the weaker or farther bodies whose field still
  reaches the window held at their true positions, moments free; a
  neighbour long beside its distance from the sensor as a line source (the
  fit's model of a bomb), else as a point; one free offset per lane, as
  levelling leaves;
* noise: the sensor's (the pipeline's own estimate), `FitConfig.shape_rel` of
  the neighbours' field (a munition case is no uniform line), and the walk's
  position error and gait bob through the field's slopes, correlated along
  each lane as the walk makes them (`depth_bound.walk_cov`); on magnetic
  ground, the soil's field as noise of known statistics and unknown
  realisation (`soilcov`: its covariance along and across the lanes from the
  grains' density, depths and moments; the white part is then the sensor's
  own noise, not the pipeline's background estimate, which holds the soil);
  fits and criterion are generalised least squares under that covariance.
  (With a weight per sample only, one more source beside a strong neighbour
  takes up its correlated misfit and pays where nothing is; with the soil
  taken as white noise at its variance, the grain clusters do.);
* fit A: the body and its free neighbours refined jointly by
  Levenberg-Marquardt from their true positions (`fitcore.refit_local`);
  fit B: the same without the body, the neighbours refined from the truth,
  and again with each free neighbour started between itself and the body
  (where a fit of one anomaly of two bodies puts one source); the best B.

The body is **resolvable** when the one criterion prefers A,
``pays(penalised(rss_drop(|r_B|^2, |r_A|^2, n), n, k), FitConfig.bic_gain)``
on the whitened residuals r (k = 6, or 9 for a line), and its position in A
(its centre) lies within the benchmark's match radius of the truth. The
criterion's unknown-scale form (`acceptance.rss_drop`, the greedy judge's):
the covariance's shape is known, its scale is not (the shape allowance is a
bound, the noise an estimate, the soil's signal no white noise), and with
the scale fixed a generous allowance made two strong bombs 3.5 m apart
one. A neighbour that B moves to within the match radius of the body and
out of its own (it took the body's place, so B is not "without the body")
is held at its truth and B refitted.

The oracle's false alarms are measured beside it: `PHANTOMS` places per
survey with no body, half of them beside a big body, judged the same way
("phantoms paid"; with a right noise model about none). ``--soil-as-white``
takes the soil as white noise at the pipeline's background level instead,
as this oracle first did: phantoms pay on laterite then, and its laterite
verdicts are an upper bound only. The oracle is still kinder than any real
method: it starts from the truth, and the fit must first find the
neighbours. So a body judged unresolvable here is beyond this criterion on
this data; one judged resolvable but missed by the pipeline is a search
failure.

Reported per scenario, for the big bodies (moment >= `BIG_MOMENT`) and for
all detectable ones (the recall target): how many, the share resolvable
("resolvable recall": the most any method deciding by this criterion could
reach), the share the pipeline found, and its misses split into resolvable
(search failures) and unresolvable (physics and criterion).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from scipy.linalg import cho_factor, solve_triangular

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy_lanes import (
    BIG_MOMENT,
    MATCH_GATE_M,
    SITES,
    add_world_arguments,
    base_config,
    chosen_worlds,
    random_world,
    score_run,
)
from depth_bound import walk_cov
from soilcov import SoilCovariance, soil_covariance

from acquisition.dsp.acceptance import pays, penalised, rss_drop
from acquisition.dsp.fitconfig import FitConfig
from acquisition.dsp.fitcore import (
    by_lane,
    centre_depth,
    design_srcs,
    refit_local,
    solve_linear,
)
from acquisition.dsp.sparsefit import SOURCE_PARAMS
from acquisition.forward import SensorGeometry, design_matrix, ends_from
from simulator import physics
from simulator.scenario import scenario_from_dict
from simulator.survey import SimulatedSurvey, simulate_survey, target_sources

#: Neighbours within this distance (m) plus the body's depth may move: a
#: body's anomaly is about its depth wide, and a source that far may take it up.
REACH_M = 3.0
#: ... if their field over the window (lane offsets taken out) varies at
#: least this share of the body's own; weaker ones cannot take it up by
#: moving and are held (the share `neighbours_refit_gain` frees by).
FREE_SHARE = 0.25
#: ... and if their anomaly is at least this share as wide as the body's
#: (depth + sensor height): a much shallower neighbour cannot take up a
#: broad anomaly by moving, only lose its own; it is held (moment free).
WIDTH_SHARE = 0.4
#: A body whose field stays under this share of the noise everywhere in the
#: window is not modelled (its exact field is subtracted instead).
HELD_MIN_NOISE = 0.1
#: The window: 1.5 x (depth + sensor height) + 2 m, at most this (m), the
#: circle the fit's deep-source stages judge a source on.
MAX_RADIUS_M = 9.0
#: A constant per lane is free (nT, 1 sigma, far above any level error):
#: the criterion, like the fits, takes one offset per lane as unknown.
LANE_FREE_NT = 100.0
#: A neighbour this long or longer, in units of its depth + sensor height, is
#: held as a line source (`acquisition.forward.line`), else as a point.
LINE_MIN_LENGTH = 0.5
#: Places with no body judged per survey (the oracle's false alarms), half
#: of them this far (m) from a big body, with this moment (A m^2, induced)
#: choosing their free neighbours.
PHANTOMS = 4
PHANTOM_BESIDE_M = (1.0, 1.6)
PHANTOM_MOMENT = 0.5
#: Fewer samples than this in the window: nothing can be judged.
MIN_SAMPLES = 12


def window_radius(depth: float, sensor_height: float) -> float:
    """Radius (m) of the samples a body at ``depth`` is judged on."""
    return min(1.5 * (depth + sensor_height) + 2.0, MAX_RADIUS_M)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the oracle found for one body."""

    index: int
    kind: str
    moment: float
    depth: float
    peak_nT: float
    #: BIC gain of A over B (NaN: not judged, too few samples)
    gain: float
    #: horizontal distance (m) of the body's position in A from the truth
    offset_m: float
    resolvable: bool
    samples: int
    free: int
    held: int
    #: neighbours B moved onto the body and that were held at their truth
    took_place: int


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    """Horizontal distance (m) between two sources' centres (points or lines)."""
    ca, cb = centre_depth(a), centre_depth(b)
    return math.hypot(ca[0] - cb[0], ca[1] - cb[1])


def geometry_of(sim: SimulatedSurvey) -> SensorGeometry:
    """The survey's sensor geometry, as the pipeline is given it."""
    sc = sim.scenario
    return SensorGeometry(kind=sim.kind, sensor_height_m=sc.sensor.height_m,
                          sensor_separation_m=sc.sensor.separation_m,
                          field_unit=tuple(float(c) for c in sc.field.unit_vector()))


def _lane_std(f: np.ndarray, lanes: np.ndarray) -> float:
    return float(np.std(by_lane(f[:, None], lanes)[:, 0]))


def field_slopes(sim: SimulatedSurvey, sel: np.ndarray | slice = slice(None)
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """d(reading)/dx, /dy, /dz (nT/m) of every body's true field at the
    true sensor positions of samples ``sel``: what a position error or a
    gait bob changes a reading by."""
    sc = sim.scenario
    srcs = [target_sources(t, sc) for t in sc.all_targets]
    pos = np.concatenate([p for p, _ in srcs]) if srcs else np.zeros((0, 3))
    mom = np.concatenate([m for _, m in srcs]) if srcs else np.zeros((0, 3))
    x, y, z = sim.x_true[sel], sim.y_true[sel], sim.z_sensor[sel]
    h = 1e-3

    def read(e: np.ndarray) -> np.ndarray:
        if not len(pos):
            return np.zeros(np.size(x))
        return physics.reading(sim.kind, x + e[0], y + e[1], z + e[2], pos, mom,
                               field=sc.field, separation_m=sc.sensor.separation_m)

    gx, gy, gz = ((read(e) - read(-e)) / (2 * h) for e in np.eye(3) * h)
    return gx, gy, gz


def noise_whitener(sim: SimulatedSurvey, sel: np.ndarray, lanes: np.ndarray,
                   slopes: tuple[np.ndarray, np.ndarray, np.ndarray], white: float,
                   shape_nT: np.ndarray, soil: SoilCovariance | None = None
                   ) -> Callable[[np.ndarray], np.ndarray]:
    """The whitening (L^-1 of the noise covariance C = L L^T) of samples
    ``sel`` (in lane order, each lane one slice), as a function of (n, k)
    columns: the sensor's ``white`` noise, the walk's position error and
    gait bob through the field's ``slopes`` (of ``sel``), ``shape_nT`` per
    sample, a free offset per lane, and ``soil``'s field if given.

    Without soil C is block diagonal, one block per lane: the walk's errors
    of two passes are independent (the position error decorrelates within a
    second, and no method knows the bob's phase from one pass to the next).
    A constant per lane costs nothing (`LANE_FREE_NT`), as levelling leaves
    it. The soil's field is correlated across lanes too (its grains are
    seen from the neighbouring lane): with it C is one block.
    """
    blocks: list[tuple[slice, np.ndarray]] = []
    for lane in np.unique(lanes):
        on = np.flatnonzero(lanes == lane)
        c = walk_cov(sim, sel[on], tuple(g[on] for g in slopes), white)
        c[np.diag_indices_from(c)] += shape_nT[on] ** 2
        blocks.append((slice(int(on[0]), int(on[-1]) + 1), c + LANE_FREE_NT**2))
    if soil is not None:
        c = soil.matrix(sim.x_rec[sel], sim.y_rec[sel])
        for part, b in blocks:
            c[part, part] += b
        blocks = [(slice(0, sel.size), c)]
    chols = [(part, np.tril(cho_factor(c, lower=True)[0])) for part, c in blocks]

    def whiten(m: np.ndarray) -> np.ndarray:
        out = np.empty(m.shape)
        for part, chol in chols:
            out[part] = solve_triangular(chol, m[part], lower=True, check_finite=False)
        return out

    return whiten


def judge_body(sim: SimulatedSurvey, i: int, noise: float, *,
               config: FitConfig | None = None, gate: float = MATCH_GATE_M,
               slopes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
               soil: SoilCovariance | None = None) -> Verdict:
    """Whether the data resolve body ``i`` of ``sim.truth`` (module docstring),
    with ``noise`` the survey's white noise sigma (nT); ``slopes``:
    `field_slopes` of the whole survey (computed here if None); ``soil``:
    the soil field's covariance (`soilcov`), noise beside the white."""
    t = sim.truth[i]
    return judge_at(sim, (t.x, t.y, t.depth), np.asarray(t.moment, float), noise, skip=i,
                    config=config, gate=gate, slopes=slopes, soil=soil,
                    label=(i, t.kind, t.moment_abs, t.peak_abs_nT),
                    shape=(t.length_m, t.azimuth_deg, t.plunge_deg))


def judge_at(sim: SimulatedSurvey, at: tuple[float, float, float], moment: np.ndarray,
             noise: float, *, skip: int | None = None,
             config: FitConfig | None = None, gate: float = MATCH_GATE_M,
             slopes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
             label: tuple[int, str, float, float] = (-1, "phantom", 0.0, 0.0),
             shape: tuple[float, float, float] = (0.0, 0.0, 0.0),
             soil: SoilCovariance | None = None) -> Verdict:
    """`judge_body` for a source at ``at`` = (x, y, depth) whose moment is
    taken as ``moment`` to choose the free neighbours (every body of
    ``sim.truth`` but ``skip`` is a neighbour) and whose length, azimuth
    and plunge are ``shape``: with no body there (a phantom), how often the
    oracle calls one resolvable is its false-alarm rate."""
    cfg = config or FitConfig()
    sc = sim.scenario
    geom = geometry_of(sim)
    bx, by, bd = at
    h = geom.sensor_height_m
    radius = window_radius(bd, h)
    sel = np.flatnonzero(np.hypot(sim.x_rec - bx, sim.y_rec - by) < radius)
    sel = sel[np.argsort(sim.lane[sel], kind="stable")]  # lane by lane, in time order
    base = dict(index=label[0], kind=label[1], moment=label[2], depth=bd, peak_nT=label[3],
                samples=int(sel.size))
    if sel.size < MIN_SAMPLES:
        return Verdict(**base, gain=math.nan, offset_m=math.nan, resolvable=False, free=0,
                       held=0, took_place=0)
    lx, ly, ll = sim.x_rec[sel], sim.y_rec[sel], sim.lane[sel]
    lv = np.array(sim.values[sel, 0], dtype=np.float64)
    xt, yt, zt = sim.x_true[sel], sim.y_true[sel], sim.z_sensor[sel]

    def true_point(j: int) -> np.ndarray:
        o = sim.truth[j]
        return np.array([o.x, o.y, o.depth])

    def as_fitted(centre: tuple[float, float, float], length: float, azimuth: float,
                  plunge: float) -> np.ndarray:
        """A body as the fit would hold it: a line source from its true ends
        if it is long beside its distance from the sensor (a point model of
        a shallow bomb misfits it by more than any noise, and one more point
        beside it would pay for that misfit), else a point."""
        if length >= LINE_MIN_LENGTH * (centre[2] + h):
            return ends_from(centre, length, azimuth, plunge)
        return np.array(centre, dtype=np.float64)

    def true_source(j: int) -> np.ndarray:
        o = sim.truth[j]
        return as_fitted((o.x, o.y, o.depth), o.length_m, o.azimuth_deg, o.plunge_deg)

    def point_field(j: int) -> np.ndarray:
        o = sim.truth[j]
        return design_matrix(lx, ly, o.x, o.y, o.depth, geom) @ np.asarray(o.moment, float)

    own = _lane_std(design_matrix(lx, ly, bx, by, bd, geom) @ moment, ll)
    free: list[int] = []
    strength: list[float] = []  # of each free neighbour, as ``own``
    held: list[int] = []
    for j, o in enumerate(sim.truth):
        if j == skip:
            continue
        dist = math.hypot(o.x - bx, o.y - by)
        f = point_field(j) if dist < radius + cfg.far_margin_m else None
        if (f is not None and dist <= REACH_M + bd and _lane_std(f, ll) >= FREE_SHARE * own
                and o.depth + h >= WIDTH_SHARE * (bd + h)):
            free.append(j)
            strength.append(_lane_std(f, ll))
        elif f is not None and float(np.max(np.abs(f))) >= HELD_MIN_NOISE * noise:
            held.append(j)
        else:
            # Not part of the question: the oracle takes its exact field out.
            pos, mom = target_sources(sc.all_targets[j], sc)
            lv -= physics.reading(sim.kind, xt, yt, zt, pos, mom, field=sc.field,
                                  separation_m=sc.sensor.separation_m)
    # Model order: held first (never moved), then the free neighbours, the body last.
    held_pts = [true_source(j) for j in held]
    free_pts = [true_source(j) for j in free]
    body = np.array(at, dtype=np.float64)
    body_src = as_fitted(at, *shape)
    # What the body costs under the criterion: a point's 6 parameters, a
    # line's 3 more (`acceptance`: a line against a point pays for 3).
    k_body = SOURCE_PARAMS + len(body_src) - 3
    nh = len(held_pts)
    # The noise any method faces here: the sensor's (as the pipeline
    # estimated it), what a point model still misfits of the munition cases
    # without the body (`shape_rel` of their field: the body's own steep
    # field would otherwise shrink the chi-square it is judged by), and the
    # walk's position error and gait bob through the field's slopes,
    # correlated along the lane as they are (`depth_bound.walk_cov`). Fits
    # and criterion are generalised least squares under it: with weights
    # per sample only, one more source takes up the walk's correlated
    # misfit of a strong neighbour and pays where nothing is.
    slopes = field_slopes(sim, sel) if slopes is None else tuple(g[sel] for g in slopes)
    others = [*held_pts, *free_pts]
    f_others = (design_srcs(lx, ly, others, geom)[:, :-1]
                @ solve_linear(design_srcs(lx, ly, others, geom), lv)[:-1]
                if others else np.zeros(lx.size))
    whiten = noise_whitener(sim, sel, ll, slopes, noise, cfg.shape_rel * f_others, soil)

    def whitened(model: list[np.ndarray]) -> np.ndarray:
        """The whitened residual of the model (moments and lane offsets
        solved in the same generalised least squares the fits use)."""
        G = whiten(by_lane(design_srcs(lx, ly, model, geom)[:, :-1], ll))
        b = whiten(by_lane(lv[:, None], ll))[:, 0]
        return G @ solve_linear(G, b) - b

    a_model = [*held_pts, *free_pts, body_src]
    a_fit, _ = refit_local(a_model, list(range(nh, len(a_model))), lx, ly, lv, geom, w=whiten,
                           lanes=ll)
    r_a = whitened(a_fit)

    def without(start: list[np.ndarray]) -> tuple[np.ndarray, int]:
        """B from ``start`` (the free neighbours' start positions): its
        whitened residual, and how many neighbours took the body's place
        and were held at their truth."""
        pts = list(start)
        pinned: list[int] = []
        while True:
            movable = [nh + k for k in range(len(pts)) if k not in pinned]
            b_fit = [*held_pts, *pts]
            if movable:
                b_fit = refit_local(b_fit, movable, lx, ly, lv, geom, w=whiten, lanes=ll)[0]
            took = [k for k in range(len(pts)) if k not in pinned
                    and _dist(b_fit[nh + k], body) <= gate
                    and _dist(b_fit[nh + k], free_pts[k]) > gate]
            if not took:
                return whitened(b_fit), len(pinned)
            pinned += took
            for k in took:
                pts[k] = free_pts[k]

    # B from the truth, and from each free neighbour started where it and the
    # body would be seen as one (between them, weighted by how strongly each
    # shows, as deep as the deeper): the fewer-source model a fit finds
    # when two bodies a depth apart give one anomaly. The best B is kept.
    starts = [free_pts]
    for k in range(len(free)):
        a, b = own, strength[k]
        c = np.array(centre_depth(free_pts[k]))
        mid = (a * body + b * c) / (a + b)
        mid[2] = max(body[2], c[2])
        moved = free_pts[k] + np.tile(mid - c, len(free_pts[k]) // 3)
        starts.append([*free_pts[:k], moved, *free_pts[k + 1:]])
    gain, took_place = math.inf, 0
    for start in starts:
        r_b, took = without(start)
        g = penalised(rss_drop(float(r_b @ r_b), float(r_a @ r_a), lx.size), lx.size, k_body)
        if g < gain:
            gain, took_place = g, took
    q = centre_depth(a_fit[-1])
    offset = math.hypot(q[0] - bx, q[1] - by)
    return Verdict(**base, gain=float(gain), offset_m=offset,
                   resolvable=bool(pays(gain, cfg.bic_gain) and offset <= gate),
                   free=len(free), held=len(held), took_place=took_place)


def phantom_sites(sim: SimulatedSurvey, rng: np.random.Generator, n: int = PHANTOMS
                  ) -> list[tuple[str, float, float, float]]:
    """(where, x, y, depth) of ``n`` places with no body: half of them
    `PHANTOM_BESIDE_M` from a big detectable body (where a strong
    neighbour's misfit could buy a source), half apart from every body;
    each at least the match radius from every body, 0.3-3 m deep."""
    area = sim.scenario.area
    pts = np.array([[t.x, t.y] for t in sim.truth]).reshape(-1, 2)
    big = [t for t in sim.truth if t.detectable and t.moment_abs >= BIG_MOMENT]
    out: list[tuple[str, float, float, float]] = []
    for k in range(n):
        beside = k % 2 == 0 and bool(big)
        for _try in range(200):
            if beside:
                b = big[int(rng.integers(len(big)))]
                r, a = float(rng.uniform(*PHANTOM_BESIDE_M)), float(rng.uniform(0, 2 * np.pi))
                x, y = b.x + r * math.cos(a), b.y + r * math.sin(a)
                gap = MATCH_GATE_M
            else:
                x = float(rng.uniform(area.x0 + 1.5, area.x0 + area.width - 1.5))
                y = float(rng.uniform(area.y0 + 1.5, area.y0 + area.length - 1.5))
                gap = 2.0
            inside = (area.x0 + 1.0 <= x <= area.x0 + area.width - 1.0
                      and area.y0 + 1.0 <= y <= area.y0 + area.length - 1.0)
            if inside and (not len(pts) or np.min(np.hypot(pts[:, 0] - x, pts[:, 1] - y)) >= gap):
                out.append(("beside" if beside else "apart", x, y, float(rng.uniform(0.3, 3.0))))
                break
    return out


def evaluate(sc_dict: dict, soil_model: bool = True) -> list[dict]:
    """Simulate one world, run and score the pipeline on it (`accuracy_lanes.score_run`)
    and judge every detectable body, and `PHANTOMS` places with none: one
    JSON-ready record each (``phantom`` true for the latter)."""
    sc = scenario_from_dict(sc_dict)
    sim = simulate_survey(sc)
    cfg = base_config(sc_dict)
    t0 = time.perf_counter()
    rec = score_run(sc_dict, sc, sim, cfg)
    soil = soil_covariance(sc) if soil_model else None
    if soil is not None:
        # The soil is modelled on its own; the white part is the sensor's
        # (the pipeline's background estimate holds the soil's share too).
        noise = sc.noise.white_nT
    else:
        noise = float(rec["noise_nT"])
        if not math.isfinite(noise) or noise <= 0:
            noise = sc.noise.white_nT
    found = set(rec["matched"])
    slopes = field_slopes(sim)
    head = {"scenario": sc_dict["name"], "seed": sc_dict["seed"], "sensor": sim.kind,
            "noise_nT": noise,
            "soil_nT": math.sqrt(soil.variance) if soil is not None else 0.0}
    out = []
    for i, t in enumerate(sim.truth):
        if not t.detectable:
            continue
        v = judge_body(sim, i, noise, config=cfg.fit, slopes=slopes, soil=soil)
        out.append({**head, **asdict(v), "phantom": False, "x": round(t.x, 2),
                    "y": round(t.y, 2), "big": bool(t.moment_abs >= BIG_MOMENT),
                    "found": i in found, "seconds": time.perf_counter() - t0})
    rng = np.random.default_rng([sc_dict["seed"], zlib.crc32(sc_dict["name"].encode()), 0x5048])
    nominal = PHANTOM_MOMENT * np.asarray(sc.field.unit_vector(), float)
    for where, x, y, d in phantom_sites(sim, rng):
        v = judge_at(sim, (x, y, d), nominal, noise, config=cfg.fit,
                     slopes=slopes, soil=soil, label=(-1, f"phantom_{where}", 0.0, 0.0))
        out.append({**head, **asdict(v), "phantom": True, "x": round(x, 2), "y": round(y, 2),
                    "big": False, "found": False, "seconds": time.perf_counter() - t0})
    return out


# ------------------------------------------------------------------ tables
@dataclass
class Count:
    """Bodies, resolvable, found, and the misses split by resolvability."""

    n: int = 0
    resolvable: int = 0
    found: int = 0
    missed_resolvable: int = 0
    missed_unresolvable: int = 0
    found_unresolvable: int = 0

    def add(self, r: dict) -> None:
        self.n += 1
        self.resolvable += r["resolvable"]
        self.found += r["found"]
        self.missed_resolvable += (not r["found"]) and r["resolvable"]
        self.missed_unresolvable += (not r["found"]) and not r["resolvable"]
        self.found_unresolvable += r["found"] and not r["resolvable"]

    def share(self, k: int) -> float:
        return k / self.n if self.n else math.nan


@dataclass
class SiteTally:
    """One scenario's tallies: big bodies, all detectable bodies, phantoms."""

    big: Count = field(default_factory=Count)
    every: Count = field(default_factory=Count)
    seeds: set[int] = field(default_factory=set)
    phantoms: int = 0
    phantoms_paid: int = 0


def tally(records: Iterable[dict]) -> dict[str, SiteTally]:
    """Per scenario: the counts of its records."""
    out: dict[str, SiteTally] = {}
    for r in records:
        sc = out.setdefault(r["scenario"], SiteTally())
        sc.seeds.add(r["seed"])
        if r.get("phantom"):
            sc.phantoms += 1
            sc.phantoms_paid += bool(r["resolvable"])
            continue
        sc.every.add(r)
        if r["big"]:
            sc.big.add(r)
    return out


def _order(names: Iterable[str]) -> list[str]:
    known = [n for n in SITES if n in names]
    return known + sorted(n for n in names if n not in SITES)


#: The table's columns: (Markdown header, text header, text width); a
#: group of columns ends where the next header starts with "|".
COLUMNS = (("scenario", "scenario", 14), ("surveys", "surv", 4),
           ("|big bodies", "big", 4), ("resolvable", "resolv", 6), ("found", "found", 6),
           ("missed, resolvable", "miss:res", 8), ("missed, unresolvable", "miss:unres", 10),
           ("found, unresolvable", "found:unres", 11),
           ("|all bodies", "all", 4), ("resolvable recall", "resolv", 6), ("recall", "recall", 6),
           ("missed, resolvable", "miss:res", 8), ("missed, unresolvable", "miss:unres", 10),
           ("|phantoms paid", "phantoms", 8))


def table_rows(records: list[dict]) -> list[list[str]]:
    """One row of formatted cells per scenario (`COLUMNS`), for both tables."""
    t = tally(records)
    rows = []
    for name in _order(t):
        s = t[name]
        big, every = s.big, s.every
        rows.append([name, str(len(s.seeds)),
                     str(big.n), f"{big.share(big.resolvable):.3f}", f"{big.share(big.found):.3f}",
                     str(big.missed_resolvable), str(big.missed_unresolvable),
                     str(big.found_unresolvable),
                     str(every.n), f"{every.share(every.resolvable):.3f}",
                     f"{every.share(every.found):.3f}", str(every.missed_resolvable),
                     str(every.missed_unresolvable),
                     f"{s.phantoms_paid} / {s.phantoms}"])
    return rows


def _text_line(cells: list[str]) -> str:
    parts = []
    for k, ((md, _txt, width), cell) in enumerate(zip(COLUMNS, cells, strict=True)):
        if md.startswith("|"):
            parts.append("|")
        parts.append(f"{cell:{width}s}" if k == 0 else f"{cell:>{width}s}")
    return " ".join(parts)


def text_table(records: list[dict]) -> str:
    """A plain table per scenario, then the big misses, each with its verdict
    (and beside its peak the soil's clutter sigma, where there is soil)."""
    lines = [_text_line([txt for _md, txt, _w in COLUMNS])]
    lines += [_text_line(cells) for cells in table_rows(records)]
    missed = [r for r in records if r["big"] and not r["found"] and not r.get("phantom")]
    if missed:
        lines.append("big bodies (>= 0.4 A m2) missed:")
        lines += [f"  {r['scenario']:13s} seed {r['seed']:5d} {r['sensor']:11s} {r['kind']:13s} "
                  f"x {r['x']:6.2f} y {r['y']:6.2f} depth {r['depth']:4.2f} m moment "
                  f"{r['moment']:6.2f} peak {r['peak_nT']:7.1f} nT"
                  + (f" (soil {r['soil_nT']:.1f})" if r.get("soil_nT") else "")
                  + f"  gain {r['gain']:8.1f} off {r['offset_m']:4.2f} m free {r['free']} "
                  f"held {r['held']}  {'RESOLVABLE' if r['resolvable'] else 'unresolvable'}"
                  for r in missed]
    return "\n".join(lines)


def markdown(records: list[dict]) -> str:
    """The per-scenario table in Markdown."""
    lines = ["| " + " | ".join(md.lstrip("|") for md, _t, _w in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(records)]
    return "\n".join(lines)


#: What a record needs to be tallied and listed (`evaluate` writes them all).
RECORD_KEYS = {"scenario": str, "seed": int, "big": bool, "found": bool, "resolvable": bool,
               "phantom": bool, "sensor": str, "kind": str, "x": float, "y": float,
               "depth": float, "moment": float, "peak_nT": float, "gain": float,
               "offset_m": float, "free": int, "held": int}


def _of_type(v: object, t: type) -> bool:
    """``v`` is a ``t`` as JSON gives it (an int for a float; no bool for a number)."""
    if t is bool or isinstance(v, bool):
        return isinstance(v, bool) and t is bool
    return isinstance(v, (int, float)) if t is float else isinstance(v, t)


def read_records(path: Path) -> list[dict]:
    """The records of a ``--jsonl`` file; ValueError naming the file, the
    line and what was expected at the first line that is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read: {e}") from None
    out = []
    for no, line in enumerate(text.split("\n"), 1):  # JSON Lines: only \n ends one
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except ValueError:
            r = None
        bad = "not a JSON object" if not isinstance(r, dict) else next(
            (f"{k!r} missing or not {t.__name__}" for k, t in RECORD_KEYS.items()
             if not _of_type(r.get(k), t)), None)
        if bad is not None:
            raise ValueError(f"{path}:{no}: expected a record of resolvable.py --jsonl: {bad}")
        out.append(r)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_world_arguments(ap)
    ap.add_argument("--jsonl", type=Path, default=None,
                    help="append one JSON record per detectable body to this file")
    ap.add_argument("--markdown", action="store_true", help="print the table in Markdown")
    ap.add_argument("--soil-as-white", action="store_true",
                    help="take magnetic soil as white noise at the pipeline's background "
                         "level (the oracle before it modelled the soil; an upper bound)")
    ap.add_argument("--summarise", type=Path, nargs="*", default=None,
                    help="print the table of the records in these --jsonl files and exit")
    args = ap.parse_args(argv)
    if args.summarise is not None:
        try:
            records = [r for p in args.summarise for r in read_records(p)]
        except ValueError as e:
            print(f"resolvable.py: {e}", file=sys.stderr)
            return 2
        print(markdown(records) if args.markdown else text_table(records))
        return 0
    seeds, names = chosen_worlds(ap, args)
    records: list[dict] = []
    for seed in seeds:
        for name in names:
            t0 = time.perf_counter()
            recs = evaluate(random_world(name, seed), soil_model=not args.soil_as_white)
            records += recs
            if args.jsonl is not None:
                with args.jsonl.open("a", encoding="utf-8") as f:
                    f.writelines(json.dumps(r) + "\n" for r in recs)
            bodies = [r for r in recs if not r["phantom"]]
            print(f"# {name} seed {seed}: {len(bodies)} bodies, "
                  f"{sum(r['resolvable'] for r in bodies)} resolvable, "
                  f"{sum(r['found'] for r in bodies)} found; phantoms paid "
                  f"{sum(r['resolvable'] for r in recs if r['phantom'])} of "
                  f"{len(recs) - len(bodies)}; {time.perf_counter() - t0:.1f} s", flush=True)
    print(markdown(records) if args.markdown else text_table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
