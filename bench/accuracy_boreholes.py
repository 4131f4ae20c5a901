"""Accuracy of borehole 3-D location on seeded simulator scenarios (second layer, 5-10 m).

Each scenario: a 10 x 8 m area of quincunx holes 2 m apart, logged from 10 m
up to 3.5 m; three bodies (105/155 mm projectiles, 1.5 m aircraft bombs)
between the holes at 5.5-9.5 m; holes deviating up to 1.5 deg from vertical,
depth counters with up to 1 % scale and 5 cm offset error, probe offset and
drift, white noise (all unknown to the processing). Bodies are munition
cases (``--profile shell``, default: moment per length following the steel of
a tail cone, cylinder and heavy nose), not the uniform line sources the
processing fits; ``--profile uniform`` gives the old, flattering world.

Scenario sets (``--set``):

* ``gradient`` (default): axial gradiometer probes, as above;
* ``vector``: the same with a north-referenced 3-axis probe (bx, by, bz);
* ``below``: bodies of the next layer, 0.2-0.8 m below the hole bottoms (10 m);
* ``above``: holes logged only from 5 m down, bodies 0.1-0.8 m above that.

In ``below`` and ``above`` every body lies beyond the log ends: each must be
reported, flagged ``log_end`` (its anomaly is cut off in every hole).

Scores (ISSUE targets in brackets):

* recall of bodies whose noise-free peak in some hole is >= 8x the noise (>= 95 %);
* 3-D position error of the matched bodies: median (<= 0.25 m), 90th percentile (<= 0.6 m);
* duplicates (a second target within 1 m of a body already matched) and
  ghosts (a target more than 1 m from every body): 0. Every reported target
  counts, whatever its flags (``single_hole``, ``no_converge``, ``log_end``):
  a flag does not excuse a target on no object. Anomalies the processing
  lists in ``result.unlocated`` (cut off by a log end and seen in one hole
  only, or unplaceable) are issues for the crew, not targets: they are
  counted separately (``unlocated``), not as ghosts.

Run: ``python bench/accuracy_boreholes.py --scenarios 20`` (prints a table and
a JSON summary), or through pytest: ``pytest bench/accuracy_boreholes.py``.
Run as a script it pins OpenBLAS to one thread (unless OPENBLAS_NUM_THREADS
is set): on a loaded 2-core machine a multi-threaded BLAS made the small
least-squares problems here 6-10x slower (measured: seed 2006, 5.4 s with
one thread, 32 s with two).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse
import json
import time
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from acquisition.borehole.batch import process_logs
from simulator.borehole_sim import make_scenario

MATCH_M = 1.0
SNR_ELIGIBLE = 8.0

#: Scenario sets: keyword arguments for `make_scenario`.
SETS: dict[str, dict[str, Any]] = {
    "gradient": {},
    "vector": {"kind": "vector"},
    "below": {"depth_range": (10.2, 10.8)},
    "above": {"log_top_m": 5.0, "depth_range": (4.2, 4.9)},
}


def score_scenario(seed: int, **kw: Any) -> dict[str, Any]:
    sc = make_scenario(seed, **kw)
    t0, c0 = time.perf_counter(), time.process_time()
    res = process_logs(sc.logs)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    truth = np.array([[b.x, b.y, b.depth] for b in sc.bodies]).reshape(-1, 3)
    est = np.array([[t.x, t.y, t.depth] for t in res.targets]).reshape(-1, 3)
    eligible = np.array([b.max_peak >= SNR_ELIGIBLE * sc.noise_nT for b in sc.bodies])
    matched_truth: dict[int, int] = {}
    if len(truth) and len(est):
        d = np.linalg.norm(truth[:, None, :] - est[None, :, :], axis=2)
        cost = np.where(d <= MATCH_M, d, 1e6)
        ri, ci = linear_sum_assignment(cost)
        for r, c in zip(ri, ci, strict=True):
            if d[r, c] <= MATCH_M:
                matched_truth[int(r)] = int(c)
    used = set(matched_truth.values())
    dups = ghosts = unflagged_ghosts = 0
    for j in range(len(est)):
        if j in used:
            continue
        near = len(truth) and np.min(np.linalg.norm(truth - est[j], axis=1)) <= MATCH_M
        if near:
            dups += 1
        else:
            ghosts += 1
            unflagged_ghosts += not res.targets[j].flags
    errors = [float(np.linalg.norm(truth[r] - est[c])) for r, c in matched_truth.items()]
    return {
        "seed": seed, "bodies": len(truth), "eligible": int(eligible.sum()),
        "found_eligible": int(sum(1 for r in matched_truth if eligible[r])),
        "errors": errors, "duplicates": dups, "ghosts": ghosts, "targets": len(est),
        "unflagged_ghosts": unflagged_ghosts,
        "matched_log_end": sum(1 for c in matched_truth.values()
                               if "log_end" in res.targets[c].flags),
        "unlocated": len(res.unlocated),
        "seconds": elapsed, "cpu_seconds": cpu,
        "kinds": [b.kind for b in sc.bodies],
        "missed": [(b.kind, round(b.max_peak / sc.noise_nT)) for i, b in enumerate(sc.bodies)
                   if i not in matched_truth],
    }


def run(n: int, first_seed: int = 1000, scenario_set: str = "gradient",
        profile: str = "shell") -> dict[str, Any]:
    kw = {**SETS[scenario_set], "body_profile": profile}
    rows = [score_scenario(first_seed + i, **kw) for i in range(n)]
    errs = np.array([e for r in rows for e in r["errors"]])
    elig = sum(r["eligible"] for r in rows)
    found = sum(r["found_eligible"] for r in rows)
    return {
        "set": scenario_set,
        "profile": profile,
        "scenarios": n,
        "first_seed": first_seed,
        "bodies": sum(r["bodies"] for r in rows),
        "eligible": elig,
        "recall": found / elig if elig else float("nan"),
        "median_error_m": float(np.median(errs)) if len(errs) else float("nan"),
        "p90_error_m": float(np.percentile(errs, 90)) if len(errs) else float("nan"),
        "max_error_m": float(np.max(errs)) if len(errs) else float("nan"),
        "duplicates": sum(r["duplicates"] for r in rows),
        "ghosts": sum(r["ghosts"] for r in rows),
        "unflagged_ghosts": sum(r["unflagged_ghosts"] for r in rows),
        "matched_log_end": sum(r["matched_log_end"] for r in rows),
        "unlocated": sum(r["unlocated"] for r in rows),
        "seconds_per_scenario": float(np.mean([r["seconds"] for r in rows])),
        "cpu_seconds_per_scenario": float(np.mean([r["cpu_seconds"] for r in rows])),
        "max_seconds": float(np.max([r["seconds"] for r in rows])),
        "rows": rows,
    }


def test_borehole_accuracy() -> None:
    """Small run of the benchmark with the ISSUE's acceptance targets."""
    s = run(4)
    assert s["recall"] >= 0.95
    assert s["median_error_m"] <= 0.25
    assert s["p90_error_m"] <= 0.6
    assert s["duplicates"] == 0
    assert s["ghosts"] == 0


def test_borehole_no_ghosts() -> None:
    """Seed 1010 once reported a ramp at a log top (see docs/borehole.md) as a target."""
    s = run(1, first_seed=1010)
    assert s["ghosts"] == 0 and s["duplicates"] == 0
    assert s["recall"] == 1.0


def test_bodies_beyond_the_log_ends_are_reported_flagged() -> None:
    """Next-layer bodies below the hole bottoms and bodies above the logged top.

    Every body is reported and flagged ``log_end``, and nothing else: seed
    1000 below once gave a weak ``log_end`` source on a mislocated bomb's
    residual (see bench/README.md).
    """
    for name in ("below", "above"):
        s = run(2, first_seed=1000, scenario_set=name)
        assert s["recall"] == 1.0, name
        assert s["duplicates"] == 0 and s["ghosts"] == 0, name
        assert s["matched_log_end"] == s["bodies"], name  # every one flagged log_end
        assert s["max_error_m"] <= 0.8, name


def test_three_axis_probe_accuracy() -> None:
    s = run(2, scenario_set="vector")
    assert s["recall"] == 1.0
    assert s["median_error_m"] <= 0.25
    assert s["ghosts"] == 0 and s["duplicates"] == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--set", choices=sorted(SETS), default="gradient")
    ap.add_argument("--profile", choices=("shell", "uniform"), default="shell")
    ap.add_argument("--seeds", type=str, default="",
                    help="comma-separated seeds instead of --scenarios/--first-seed")
    a = ap.parse_args()
    if a.seeds:
        rows = [run(1, int(x), a.set, a.profile) for x in a.seeds.split(",")]
        for r in rows:
            print(json.dumps({k: v for k, v in r["rows"][0].items()}))
        return
    s = run(a.scenarios, a.first_seed, a.set, a.profile)
    for r in s["rows"]:
        e = r["errors"]
        print(f"seed {r['seed']}: {r['bodies']} bodies ({', '.join(r['kinds'])}), "
              f"{r['targets']} targets, max err {max(e) if e else float('nan'):.2f} m, "
              f"dup {r['duplicates']} ghost {r['ghosts']} (unflagged {r['unflagged_ghosts']}) "
              f"missed {r['missed']} "
              f"log_end {r['matched_log_end']} unlocated {r['unlocated']} "
              f"{r['seconds']:.1f}s (cpu {r['cpu_seconds']:.1f}s)")
    summary = {k: v for k, v in s.items() if k != "rows"}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
