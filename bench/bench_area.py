"""Cost of `process_survey` against the surveyed area, at one dense-scene density.

    .venv/bin/pytest bench/bench_area.py --benchmark-only
    .venv/bin/python bench/bench_area.py                  # 0.12, 0.5, 1, 4 ha
    .venv/bin/python bench/bench_area.py --ha 0.12 0.5 --profile 0.5
    .venv/bin/python bench/bench_area.py --ha 0.12 0.5 1 4 --jsonl area.jsonl
    .venv/bin/python bench/bench_area.py --ha --jsonl area.jsonl --plot bench/area_time.png
    .venv/bin/python bench/bench_area.py --ha 0.12 0.5 --score    # and the accuracy

Every survey has the density of the issue's dense scene (22 bodies and 30
pieces of scrap per 24 x 50 m, total field): bodies of every kind from
bomblet to aircraft bomb at 0.1-4 m, 2.5 m apart at least, remanence and
elongation as the simulator draws them, scrap at 0.05-0.5 m anywhere. The
layout is drawn from the seed, so every area is a different random world of
the same density. The figure is CPU time of this process
(`time.process_time`), which a shared, loaded machine disturbs much less than
wall time; the ratio of two areas' times is what the issue bounds
(4x the area <= 4.5x the time). ``--score`` also scores each survey as
`accuracy_lanes.py` does (recall of the detectable bodies, big bodies
missed, depth within max(15 %, 0.10 m), false picks per 1000 m^2): the
larger surveys are where signals are fitted in cells, which no world of the
accuracy benchmark is large enough to reach.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import pstats
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from acquisition.dsp.batch import SurveyResult, process_survey
from acquisition.dsp.pipeline import LaneConfig
from simulator.scenario import scenario_from_dict
from simulator.survey import SimulatedSurvey, simulate_survey

#: The issue's dense scene: bodies and scrap per 24 x 50 m.
DENSE_AREA_M2 = 24.0 * 50.0
BODIES_PER_DENSE = 22
SCRAP_PER_DENSE = 30
BODY_KINDS = ("bomblet", "grenade", "mortar", "projectile", "aircraft_bomb")

#: Survey sizes (width east x length north, m) for the areas in hectares.
SIZES: dict[float, tuple[float, float]] = {
    0.12: (24.0, 50.0), 0.5: (50.0, 100.0), 1.0: (100.0, 100.0), 4.0: (200.0, 200.0)}

WALK = {
    "lane_spacing_m": 1.0, "speed_m_s": 1.0, "rate_hz": 10.0, "turn_time_s": 2.0,
    "speed_variation": 0.1, "lateral_wander_m": 0.08, "wander_wavelength_m": 6.0,
    "position_error_m": 0.03, "position_error_tau_s": 1.0, "gait_bob_m": 0.02,
    "step_length_m": 0.6,
}


def dense_targets(width: float, length: float, seed: int) -> list[dict]:
    """Bodies (>= 2.5 m apart) and scrap at the dense-scene density, drawn from `seed`."""
    rng = np.random.default_rng([seed, 0xA2EA])
    scale = width * length / DENSE_AREA_M2
    n_body = round(BODIES_PER_DENSE * scale)
    n_scrap = round(SCRAP_PER_DENSE * scale)
    out: list[dict] = []
    placed: list[tuple[float, float]] = []
    tries = 0
    while len(placed) < n_body and tries < 1000 * n_body:
        tries += 1
        x, y = rng.uniform(1.5, width - 1.5), rng.uniform(1.5, length - 1.5)
        if any(math.hypot(x - px, y - py) < 2.5 for px, py in placed):
            continue
        placed.append((x, y))
        kind = str(BODY_KINDS[int(rng.integers(len(BODY_KINDS)))])
        out.append({"name": f"b{len(placed)}", "kind": kind, "x": float(x), "y": float(y),
                    "depth": float(rng.uniform(0.1, 4.0)),
                    "azimuth_deg": float(rng.uniform(0, 360)),
                    "plunge_deg": float(rng.uniform(0, 45))})
    for k in range(n_scrap):
        out.append({"name": f"s{k}", "kind": "scrap", "x": float(rng.uniform(1.0, width - 1.0)),
                    "y": float(rng.uniform(1.0, length - 1.0)),
                    "depth": float(rng.uniform(0.05, 0.5))})
    return out


def dense_scenario(ha: float, seed: int, kind: str = "total") -> dict:
    width, length = SIZES[ha]
    return {
        "name": f"dense-{ha:g}ha", "seed": seed,
        "area": {"x0": 0.0, "y0": 0.0, "width": width, "length": length},
        "survey": dict(WALK),
        "sensor": {"kind": kind, "height_m": 0.3, "separation_m": 0.65},
        "noise": {"white_nT": 0.3, "drift_nT_per_min": 0.3, "drift_walk_nT": 0.1,
                  "lane_offset_nT": 1.0, "heading_offset_nT": 0.5},
        "targets": dense_targets(width, length, seed),
    }


def simulate(ha: float, seed: int, kind: str = "total") -> tuple[SimulatedSurvey, dict]:
    sc = scenario_from_dict(dense_scenario(ha, seed, kind))
    sim = simulate_survey(sc)
    geo = {"kind": sim.kind, "sensor_height_m": sc.sensor.height_m,
           "sensor_separation_m": sc.sensor.separation_m}
    return sim, {"geometry": geo, "field": sc.field}


def run(sim: SimulatedSurvey, kw: dict) -> SurveyResult:
    return process_survey(sim.x_rec, sim.y_rec, sim.values, t=sim.t_s, **kw)


def cpu_seconds(sim: SimulatedSurvey, kw: dict) -> tuple[float, SurveyResult]:
    t0 = time.process_time()
    res = run(sim, kw)
    return time.process_time() - t0, res


def scored(ha: float, seed: int, kind: str = "total") -> tuple[SimulatedSurvey, float, int, dict]:
    """One area's survey processed and scored by `accuracy_lanes.score_run`:
    the survey, CPU seconds, targets reported, and the scores (`Tally.row`)."""
    from accuracy_lanes import Tally, score_run

    d = dense_scenario(ha, seed, kind)
    sc = scenario_from_dict(d)
    sim = simulate_survey(sc)
    t0 = time.process_time()
    rec = score_run(d, sc, sim, LaneConfig())
    sec = time.process_time() - t0
    tally = Tally()
    tally.add(rec)
    return sim, sec, rec["reported"], tally.row()


# pytest-benchmark entry: the dense 24 x 50 m scene (the larger areas take
# minutes each: run them with the script).
def test_dense_012ha(benchmark):
    sim, kw = simulate(0.12, 1)
    res = benchmark.pedantic(run, args=(sim, kw), rounds=1, iterations=1)
    assert res.targets


def plot(records: list[dict], png: Path) -> None:
    """CPU time against area (log-log), with the line of cost proportional to
    area through the smallest survey, and the issue's bound (4x the area in
    4.5x the time) from there."""
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = min(r["seed"] for r in records)
    recs = sorted((r for r in records if r["seed"] == first), key=lambda r: r["ha"])
    ha = np.array([r["ha"] for r in recs])
    sec = np.array([r["cpu_s"] for r in recs])
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    ax.loglog(ha, sec, "o-", color="C0", label=f"dense total field, seed {first} (measured)")
    # Areas measured on several worlds: each world, and their mean.
    by_ha: dict[float, list[float]] = {}
    for r in records:
        by_ha.setdefault(r["ha"], []).append(r["cpu_s"])
    many = sorted(a for a, ts in by_ha.items() if len(ts) > 1)
    if many:
        for a in many:
            ax.loglog([a] * len(by_ha[a]), by_ha[a], ".", color="C1", alpha=0.6)
        ax.loglog(many, [float(np.mean(by_ha[a])) for a in many], "D", color="C1",
                  label="mean over the seeds measured (dots: each seed)")
    for a, t in zip(ha, sec, strict=True):
        ax.annotate(f"{t:.0f} s", (a, t), textcoords="offset points", xytext=(6, -10),
                    fontsize=8)
    span = np.array([ha.min(), ha.max()])
    ax.loglog(span, sec[0] * span / ha[0], "--", color="0.4",
              label=f"proportional to area, from {ha[0]:g} ha")
    ax.loglog(span, sec[0] * (span / ha[0]) ** (np.log(4.5) / np.log(4.0)), ":",
              color="C3", label=f"issue bound (4x area in 4.5x time), from {ha[0]:g} ha")
    if len(ha) >= 3:  # where the signals are fitted locally (the larger surveys)
        span1 = np.array([ha[1], ha.max()])
        ax.loglog(span1, sec[1] * span1 / ha[1], "--", color="C2",
                  label=f"proportional to area, from {ha[1]:g} ha")
    ax.set_xticks(ha, [f"{a:g}" for a in ha])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("surveyed area (ha)")
    ax.set_ylabel("CPU time of process_survey (s)")
    ax.set_title("Lane pipeline: cost against area (bench/bench_area.py)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ha", type=float, nargs="*", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=1,
                    help="worlds per area: seeds --seed .. --seed + N - 1 (a 0.12 ha "
                         "world holds a quarter of the bodies of a 0.5 ha one, so its "
                         "cost varies more from world to world)")
    ap.add_argument("--kind", default="total", choices=("gradient", "total", "tf_gradient"))
    ap.add_argument("--profile", type=float, default=None, choices=list(SIZES),
                    help="profile this area (cProfile, 30 costliest by cumulative time)")
    ap.add_argument("--jsonl", type=Path, default=None,
                    help="append one JSON record per area to this file (and plot from it)")
    ap.add_argument("--plot", type=Path, default=None,
                    help="write a PNG of time against area from --jsonl's records "
                         "(the latest per area and seed)")
    ap.add_argument("--score", action="store_true",
                    help="also score each survey (recall, big missed, depth within, "
                         "false picks), as accuracy_lanes.py does")
    args = ap.parse_args(argv)
    print(f"{'ha':>5s} {'seed':>4s} {'samples':>8s} {'bodies':>6s} {'targets':>7s} {'cpu s':>8s} "
          f"{'s/ha':>8s}" + ("  recall big_miss depth_ok false/1000m2" if args.score else ""))
    for ha, seed in ((a, s) for a in args.ha for s in range(args.seed, args.seed + args.seeds)):
        row = None
        if args.score:
            sim, sec, n_targets, row = scored(ha, seed, args.kind)
        else:
            sim, kw = simulate(ha, seed, args.kind)
            if args.profile == ha:
                prof = cProfile.Profile()
                prof.enable()
            sec, res = cpu_seconds(sim, kw)
            n_targets = len(res.targets)
            if args.profile == ha:
                prof.disable()
                pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
                pstats.Stats(prof).sort_stats("tottime").print_stats(20)
        line = (f"{ha:5g} {seed:4d} {len(sim.x_rec):8d} {len(sim.truth):6d} {n_targets:7d} "
                f"{sec:8.1f} {sec / ha:8.1f}")
        if row is not None:
            line += (f"  {row['recall']:6.3f} {row['big_missed']:8d} {row['depth_ok']:8.3f} "
                     f"{row['false_per_1000m2']:12.2f}")
        print(line, flush=True)
        if args.jsonl is not None:
            out = {"ha": ha, "seed": seed, "kind": args.kind, "samples": len(sim.x_rec),
                   "bodies": len(sim.truth), "targets": n_targets, "cpu_s": sec,
                   "utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
            if row is not None:
                out.update({k: row[k] for k in ("n", "recall", "big_missed", "depth_ok",
                                                "dh_med", "false_per_1000m2")})
            with args.jsonl.open("a") as fh:
                fh.write(json.dumps(out) + "\n")
    if args.plot is not None:
        if args.jsonl is None:
            ap.error("--plot needs --jsonl (the records to plot)")
        latest: dict[tuple[float, int], dict] = {}
        for line in args.jsonl.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                latest[r["ha"], r["seed"]] = r
        plot(list(latest.values()), args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
