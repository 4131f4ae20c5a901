"""Why a detectable big body was missed: where on its way through the lane DSP it was lost.

Run: ``.venv/bin/python bench/why_missed.py [--only NAME ...] [--seeds N]
[--first-seed K] [--all]``. Simulates the benchmark's worlds
(`accuracy_lanes.random_world`, tuning seeds only) and processes each with
the production pipeline, recording on the way (by wrapping, not changing, its
steps): the lane segments the detector found, the signals judged already
explained by earlier fits, the sources each fit stage dropped, and the final
reports. For every detectable body of projectile size or more
(`accuracy_lanes.BIG_MOMENT`) that has no report matched to it (``--all``:
every detectable body missed) it prints one line naming the first place it
was lost:

- ``no_segment``: no lane segment within `NEAR_M` of it (with the largest
  levelled reading on its nearest lane against the threshold: detection or
  levelling lost it);
- ``wide_segment/<cause>``: no segment peak near it, but a segment of a
  neighbour's spans it (one wide anomaly); then the cause below;
- ``explained``: its signal was detected, but the group was judged the tail
  of earlier fits (`LanePipeline._explained`) or all its fits only paid for
  earlier fits' misfit (`LanePipeline._pay_beside_fitted`);
- ``dropped:<stage>``: a fit stage had a source at it and the named stage
  removed it (read from the fit's `FitTrace`: ``drop_tails``, ``drop_body_lobes``, ...);
- ``never_placed``: its signal went into a fit that never put a source at it
  (the greedy search and its judges refused one, or the window's joint fit
  moved it off);
- ``flagged:<flag>``: reported, but set aside as under the final threshold
  or explained at the end of the survey;
- ``taken``: a report within 1 m was matched to another body (merged with
  a neighbour); ``off:<d>``: the nearest report is 1-2 m away (placed off).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy_lanes import BIG_MOMENT, SITES, TUNING_SEEDS, base_config, random_world

from acquisition.dsp import pipeline as pipeline_module
from acquisition.dsp.batch import process_survey
from acquisition.dsp.fit import FitTrace
from acquisition.dsp.fitcore import centre_point
from simulator.scenario import scenario_from_dict
from simulator.scoring import match
from simulator.survey import simulate_survey

#: A segment peak or a source this close (m) to a body is "at" it.
NEAR_M = 1.5
#: A fit-stage source this close (m) to a body is the body's source.
SOURCE_M = 1.0

@dataclass
class Trace:
    """What the pipeline did on one survey, as far as a missed body is concerned."""

    #: (lane, peak x, peak y, amplitude, lane x, y0, y1) of every segment
    segments: list[tuple[int, float, float, float, float, float, float]] = field(
        default_factory=list)
    #: per lane: (x, y, levelled values, threshold) as the detector saw them
    lanes: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = field(default_factory=list)
    explained: list[list[tuple[float, float]]] = field(default_factory=list)
    paid_dropped: list[tuple[float, float]] = field(default_factory=list)
    windows: list[tuple[float, float, float, float]] = field(default_factory=list)
    #: (stage, x, y) of every source a stage had in and did not give back
    dropped: list[tuple[str, float, float]] = field(default_factory=list)
    fitted: list[tuple[float, float]] = field(default_factory=list)


def _centres(srcs: list[np.ndarray]) -> list[tuple[float, float]]:
    return [(float(c[0]), float(c[1])) for c in (centre_point(s) for s in srcs)]


def _patches(tr: Trace) -> list[tuple[object, str, object]]:
    """Wrappers that record into ``tr`` and otherwise do what the step does."""
    find0 = pipeline_module.find_segments

    def find_segments(lev, thr, x, y, lane, **kw):
        segs = find0(lev, thr, x, y, lane, **kw)
        tr.lanes.append((np.array(x), np.array(y), np.array(lev), float(thr)))
        tr.segments += [(s.lane, s.x, s.y, s.amplitude, s.x_mean, s.y0, s.y1) for s in segs]
        return segs

    explained0 = pipeline_module.LanePipeline._explained

    def explained(self, segs, x, y, v, ln):
        out = explained0(self, segs, x, y, v, ln)
        if out:
            tr.explained.append([(s.x, s.y) for s in segs])
        return out

    pay0 = pipeline_module.LanePipeline._pay_beside_fitted

    def pay(self, fits, x, y, v):
        out = pay0(self, fits, x, y, v)
        kept = {id(f) for f in out}
        tr.paid_dropped += [(f.x, f.y) for f in fits if id(f) not in kept]
        return out

    fs0 = pipeline_module.fit_sources

    def fit_sources(x, y, v, geom, noise, **kw):
        ft = FitTrace()
        out = fs0(x, y, v, geom, noise, trace=ft, **kw)
        for rec in ft.stages:
            after = _centres([np.asarray(q) for q in rec.sources_out])
            for cx, cy in _centres([np.asarray(q) for q in rec.sources_in]):
                if all(math.hypot(cx - ax, cy - ay) > 0.5 for ax, ay in after):
                    tr.dropped.append((rec.name, cx, cy))
        if x.size:
            tr.windows.append((float(x.min()), float(x.max()), float(y.min()), float(y.max())))
        tr.fitted += [(f.x, f.y) for f in out if f.method in pipeline_module.FITTED]
        return out

    patches: list[tuple[object, str, object]] = [
        (pipeline_module, "find_segments", find_segments),
        (pipeline_module.LanePipeline, "_explained", explained),
        (pipeline_module.LanePipeline, "_pay_beside_fitted", pay),
        (pipeline_module, "fit_sources", fit_sources),
    ]
    return patches


def _lane_peak(tr: Trace, bx: float, by: float) -> tuple[float, float]:
    """Largest |levelled| reading within 1 m of (bx, by) on any lane, and the
    threshold that lane was searched with."""
    best = (0.0, math.nan)
    for x, y, lev, thr in tr.lanes:
        near = np.hypot(x - bx, y - by) < 1.0
        if near.any():
            a = float(np.max(np.abs(lev[near])))
            if a > best[0]:
                best = (a, thr)
    return best


def diagnose(name: str, seed: int, everything: bool = False) -> list[dict]:
    """One row per missed detectable body (big ones, or all with ``everything``)."""
    d = random_world(name, seed)
    sc = scenario_from_dict(d)
    sim = simulate_survey(sc)
    geo = {"kind": sim.kind, "sensor_height_m": sc.sensor.height_m,
           "sensor_separation_m": sc.sensor.separation_m}
    tr = Trace()
    with ExitStack() as stack:
        for obj, attr, value in _patches(tr):
            stack.enter_context(mock.patch.object(obj, attr, value))
        res = process_survey(sim.x_rec, sim.y_rec, sim.values, t=sim.t_s, geometry=geo,
                             field=sc.field, config=base_config(d))
    truth = np.array([[t.x, t.y, t.depth] for t in sim.truth]).reshape(-1, 3)
    rep = np.array([[t.x, t.y, t.depth] for t in res.targets]).reshape(-1, 3)
    m = match(truth, rep, gate_m=1.0)
    matched = {p.truth_index for p in m.pairs}
    flagged = [(t, fl) for fl, ts in (("under_threshold", res.under_threshold),
                                      ("explained", res.explained)) for t in ts]
    rows = []
    for i, t in enumerate(sim.truth):
        if i in matched or not t.detectable or (t.moment_abs < BIG_MOMENT and not everything):
            continue
        bx, by = t.x, t.y

        def near(pts, r=NEAR_M, bx=bx, by=by):
            return [p for p in pts if math.hypot(p[0] - bx, p[1] - by) < r]

        seg = [s for s in tr.segments if math.hypot(s[1] - bx, s[2] - by) < NEAR_M]
        # Inside a wide segment whose peak is a neighbour's: detected, not apart.
        inside = [s for s in tr.segments
                  if abs(s[4] - bx) < 0.75 and s[5] - 0.5 <= by <= s[6] + 0.5]
        lane_pk, thr = _lane_peak(tr, bx, by)
        drops = [s for s in tr.dropped if math.hypot(s[1] - bx, s[2] - by) < SOURCE_M]
        dist = [math.hypot(r[0] - bx, r[1] - by) for r in rep]
        dmin = min(dist) if dist else math.inf
        fl = [f for tt, f in flagged if math.hypot(tt.x - bx, tt.y - by) < SOURCE_M]
        if not seg and not inside:
            cause = "no_segment"
        elif fl:
            cause = f"flagged:{fl[0]}"
        elif dmin < 1.0:
            cause = "taken"
        elif any(near(g) for g in tr.explained) or near(tr.paid_dropped, SOURCE_M):
            cause = "explained"
        elif drops:
            # the last stage that dropped it (earlier drops may have been re-added)
            cause = f"dropped:{drops[-1][0]}"
        elif dmin < 2.0:
            cause = f"off:{dmin:.2f}"
        else:
            cause = "never_placed"
        if not seg and inside and cause != "no_segment":
            cause = "wide_segment/" + cause
        rows.append({"scenario": name, "seed": seed, "sensor": sim.kind, "kind": t.kind,
                     "x": t.x, "y": t.y, "depth": t.depth, "moment": t.moment_abs,
                     "peak": t.peak_abs_nT, "lane_peak": lane_pk, "thr": thr,
                     "noise": res.noise_nT, "segments": len(seg),
                     "inside": len(inside), "cause": cause,
                     "nearest_report": dmin,
                     "drops": ",".join(sorted({s[0] for s in drops}))})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=TUNING_SEEDS[0])
    ap.add_argument("--all", action="store_true", help="every detectable body missed")
    args = ap.parse_args(argv)
    names = args.only or list(SITES)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    if any(s not in TUNING_SEEDS for s in seeds):
        ap.error("tuning seeds only (1-50): the held-out seeds are never looked at here")
    causes: Counter[str] = Counter()
    for seed in seeds:
        for name in names:
            for r in diagnose(name, seed, args.all):
                causes[r["cause"].split(":")[0]] += 1
                print(f"{r['scenario']:13s} seed {r['seed']:3d} {r['sensor']:11s} "
                      f"{r['kind']:13s} x {r['x']:6.2f} y {r['y']:6.2f} z {r['depth']:4.2f} "
                      f"m {r['moment']:6.2f} peak {r['peak']:6.1f} lane {r['lane_peak']:6.1f} "
                      f"thr {r['thr']:5.2f} segs {r['segments']:2d} "
                      f"in {r['inside']:2d} near {r['nearest_report']:5.2f}  "
                      f"{r['cause']:28s} {r['drops']}",
                      flush=True)
    print("causes:", dict(causes.most_common()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
