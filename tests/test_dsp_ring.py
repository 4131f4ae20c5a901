"""A bomblet about a metre from a mortar or a projectile is found (`fit_sources`
step 2b), and a lone mortar or projectile is never split into two (on a
gradiometer; on a total-field sensor one lone mortar in 16 is: a known
failure, marked so).

Survey data come from the simulator (`simulator.survey`: munition-case
bodies, position error, gait bob, lane offsets), not the DSP's forward model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from test_dsp_tails_clutter import _bench_survey, process_sim

from simulator.scenario import scenario_from_dict
from simulator.survey import simulate_survey


@pytest.mark.parametrize(("seed", "big", "cx", "cy", "tol"), [
    # Overlap seed 3: a mortar at 0.6 m and a bomblet at 0.25 m, 0.98 m apart.
    # The bomblet's residual under one dipole stayed below the threshold and
    # its lane peak merged with the mortar's: it was never tried.
    (3, "mortar", 11.5, 13.9, 0.25),
    # Overlap seed 9: a projectile at 1.2 m and a bomblet at 0.28 m, 1.1 m
    # apart; beside a projectile-sized body the ring neighbour must still pass
    # the long-body pair rule (weaker, at less than half its depth).
    (9, "projectile", 25.5, 14.2, 0.3),
])
def test_bomblet_a_metre_from_a_body_is_found(seed, big, cx, cy, tol):
    sc, sim = _bench_survey("overlap", seed)
    truth = {t.kind: t for t in sim.truth if abs(t.x - cx) < 1.0 and abs(t.y - cy) < 1.0}
    assert set(truth) == {big, "bomblet"}
    res = process_sim(sc, sim)
    near = [t for t in res.targets if abs(t.x - cx) < 1.5 and abs(t.y - cy) < 1.5]
    assert len(near) == 2, near
    for kind in (big, "bomblet"):
        tt = truth[kind]
        best = min(near, key=lambda t: np.hypot(t.x - tt.x, t.y - tt.y))
        assert np.hypot(best.x - tt.x, best.y - tt.y) < tol, (kind, best)
    bomblet = min(near, key=lambda t: np.hypot(t.x - truth["bomblet"].x,
                                               t.y - truth["bomblet"].y))
    assert bomblet.moment_abs < 0.5 * max(t.moment_abs for t in near)


@pytest.mark.parametrize(("kind", "depths", "sensor"), [
    ("mortar", (0.2, 1.0), "gradient"),
    ("projectile", (0.4, 2.0), "gradient"),
    # Total field: one of the 16 mortars (0.37 m deep) gets a phantom 0.9 m
    # away at the surface with a few per cent of its moment (docs/dsp.md,
    # "Limits"); strict, so a fix is noticed.
    pytest.param("mortar", (0.2, 1.0), "total", marks=pytest.mark.xfail(
        strict=True, reason="known: the ring step splits lone bodies on a total-field sensor")),
])
def test_lone_bodies_are_not_split(kind, depths, sensor):
    # Mortars or projectiles alone, every orientation and plunge: a body's
    # misfit must not become a "bomblet" beside it.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from accuracy_lanes import scenario

    rng = np.random.default_rng(3)
    targets = []
    for i, (cx, cy) in enumerate((cx, cy) for cx in (4.0, 11.0, 18.0, 25.0)
                                 for cy in (5.0, 14.0, 23.0, 32.0)):
        targets.append({"name": f"m{i}", "kind": kind, "x": cx, "y": cy,
                        "depth": float(rng.uniform(*depths)),
                        "azimuth_deg": float(rng.uniform(0, 360)),
                        "plunge_deg": float(rng.uniform(-60, 60))})
    extra = {"kind": "total", "white": 0.3} if sensor == "total" else {}
    sc = scenario_from_dict(scenario("mortars", 7, count=0, targets=targets, **extra))
    sim = simulate_survey(sc)
    res = process_sim(sc, sim)
    found = 0
    for tt in sim.truth:
        d = [np.hypot(t.x - tt.x, t.y - tt.y) for t in res.targets]
        if tt.detectable:
            found += min(d) < 0.3
        assert sum(di < 2.0 for di in d) <= 1, (tt, [t for t in res.targets
                                                    if np.hypot(t.x - tt.x, t.y - tt.y) < 2])
    assert found == sum(t.detectable for t in sim.truth) >= 12
    assert len(res.targets) == found
