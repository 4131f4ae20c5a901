"""How far a low-passed lane lifts deep bodies over magnetic soil's clutter.

Run: ``.venv/bin/python bench/soil_lowpass.py [--seeds N] [--first-seed K]
[--only NAME ...] [--records FILE ...]``

The soil's field is short-wave (its covariance, `soilcov`, falls to zero
within 0.3-0.4 m along a lane and turns negative); a body a few metres deep
gives an anomaly metres wide. So a running mean along the lane takes out
most of the soil and little of a deep body. For each laterite world
(`accuracy_lanes.random_world`, tuning seeds only) this measures, with and
without running means of `WINDOWS_M`:

* the soil's clutter: the soil's field plus the sensor's white noise
  (a fixed draw), levelled per lane (median), its sigma and its largest
  value over the whole survey (what a threshold passing about one soil
  peak per survey must exceed);
* for every detectable body of projectile size or more
  (`accuracy_lanes.BIG_MOMENT`): its own noise-free field, levelled and
  low-passed the same way, its largest value on any lane, and that over
  the soil's largest.

With ``--records`` (the ``--jsonl`` files of `resolvable.py` for the same
worlds), each body also shows whether the pipeline found it and whether the
oracle judged it resolvable. The drift and lane offsets are left out (the
levelling takes them); neighbours' fields too (each body alone).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accuracy_lanes import BIG_MOMENT, SITES, TUNING_SEEDS, random_world

from simulator import physics
from simulator.scenario import scenario_from_dict
from simulator.survey import SimulatedSurvey, simulate_survey, target_sources

#: Running-mean lengths (m) along the lane; 0: the levelled lane itself.
WINDOWS_M = (0.0, 1.0, 2.0)


def lane_lowpass(v: np.ndarray, sim: SimulatedSurvey, window_m: float) -> np.ndarray:
    """``v`` levelled per lane (its median taken out) and run through a
    running mean of about ``window_m`` along each lane (the survey's mean
    sample spacing sets the count)."""
    out = np.empty(v.size)
    step = sim.scenario.survey.speed_m_s / sim.scenario.survey.rate_hz
    n = max(1, round(window_m / step) | 1)  # odd: centred
    for lane in np.unique(sim.lane):
        on = sim.lane == lane
        x = v[on] - np.median(v[on])
        out[on] = np.convolve(x, np.ones(n) / n, mode="same") if n > 1 else x
    return out


def survey_rows(name: str, seed: int, records: dict) -> list[str]:
    """The survey's soil line and one line per big detectable body."""
    sc = scenario_from_dict(random_world(name, seed))
    sim = simulate_survey(sc)
    rng = np.random.default_rng([seed, 0x50])
    noise = sim.soil_signal + sc.noise.white_nT * rng.standard_normal(sim.soil_signal.size)
    soil = [lane_lowpass(noise, sim, w) for w in WINDOWS_M]
    worst = [float(np.max(np.abs(s))) for s in soil]
    lines = [f"{name} seed {seed} {sim.kind}: soil sigma / largest (nT) "
             + "  ".join(f"{w:.0f} m: {float(np.std(s)):.2f} / {m:.2f}"
                         for w, s, m in zip(WINDOWS_M, soil, worst, strict=True))]
    for i, t in enumerate(sim.truth):
        if not t.detectable or t.moment_abs < BIG_MOMENT:
            continue
        pos, mom = target_sources(sc.all_targets[i], sc)
        own = physics.reading(sim.kind, sim.x_true, sim.y_true, sim.z_sensor, pos, mom,
                              field=sc.field, separation_m=sc.sensor.separation_m)
        peaks = [float(np.max(np.abs(lane_lowpass(own, sim, w)))) for w in WINDOWS_M]
        r = records.get((name, seed, i))
        tag = "" if r is None else (f" {'found' if r['found'] else 'MISSED'} "
                                    f"{'resolvable' if r['resolvable'] else 'unresolvable'}")
        lines.append(f"  {t.kind:13s} depth {t.depth:4.2f} m moment {t.moment_abs:6.2f}  "
                     + "  ".join(f"{w:.0f} m: {p:6.1f} nT ({p / m:5.2f} x)"
                                 for w, p, m in zip(WINDOWS_M, peaks, worst, strict=True))
                     + tag)
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=TUNING_SEEDS[0])
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--records", type=Path, nargs="*", default=(),
                    help="resolvable.py --jsonl files of the same worlds")
    args = ap.parse_args(argv)
    names = args.only or [n for n, s in SITES.items() if s.soil]
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    if any(s not in TUNING_SEEDS for s in seeds):
        ap.error("tuning seeds only (1-50): the held-out seeds are never looked at here")
    records = {(r["scenario"], r["seed"], r["index"]): r for p in args.records
               for line in p.read_text(encoding="utf-8").splitlines() if line.strip()
               for r in [json.loads(line)] if not r.get("phantom")}
    for seed in seeds:
        for name in names:
            print("\n".join(survey_rows(name, seed, records)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
