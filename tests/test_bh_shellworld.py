"""Munition-case bodies in the borehole simulator, and what they asked of the processing.

The simulator's bodies are steel cases (`simulator.physics.shell_weights`),
not the uniform lines the processing fits. Below the hole bottoms that
difference left extra targets; these tests hold the fixes to their cases
(seeds of the benchmark's ``below`` set, bench/accuracy_boreholes.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from acquisition.borehole.batch import process_logs
from acquisition.borehole.logs import condition
from simulator.borehole_sim import make_scenario
from simulator.physics import line_of_dipoles

BELOW = {"depth_range": (10.2, 10.8)}


def _nearest(t, bodies) -> float:
    return min(float(np.linalg.norm([t.x - b.x, t.y - b.y, t.depth - b.depth])) for b in bodies)


def test_bodies_are_munition_cases_by_default_and_seeds_stay_reproducible() -> None:
    a = make_scenario(1000, n_targets=2)
    b = make_scenario(1000, n_targets=2)
    u = make_scenario(1000, n_targets=2, body_profile="uniform")
    assert all(x.profile == "shell" for x in a.bodies)
    for la, lb in zip(a.logs, b.logs, strict=True):
        assert np.array_equal(la.values, lb.values)
    # The profile draws no random numbers: same bodies, holes and noise...
    for x, y in zip(a.bodies, u.bodies, strict=True):
        assert (x.x, x.y, x.depth, x.length_m) == (y.x, y.y, y.depth, y.length_m)
        assert np.array_equal(x.moment, y.moment)
    assert [h.tilt_deg for h in a.holes] == [h.tilt_deg for h in u.holes]
    # ... but the readings near an elongated body differ.
    bomb = max(a.bodies, key=lambda x: x.length_m)
    hole = max(bomb.peak_by_hole, key=bomb.peak_by_hole.get)
    ub = next(x for x in u.bodies if x.target_id == bomb.target_id)
    assert bomb.peak_by_hole[hole] != pytest.approx(ub.peak_by_hole[hole], rel=1e-3)


def test_shell_sources_put_more_moment_toward_the_nose() -> None:
    pos, mom = line_of_dipoles(np.array([0.0, 0.0, -10.0]), np.array([0.0, 0.0, 10.0]), 1.5,
                               azimuth_deg=0.0, plunge_deg=90.0, profile="shell")
    share = mom[:, 2] / 10.0
    assert share.sum() == pytest.approx(1.0)
    # Nose (deeper end, plunge down) heavier than the tail cone: the moment's
    # centre lies 2-3 % of the length below the geometric centre.
    centre_z = float(share @ pos[:, 2])
    assert -10.0 - 0.03 * 1.5 < centre_z < -10.0 - 0.02 * 1.5


def test_unknown_body_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="body_profile"):
        make_scenario(1, n_targets=1, body_profile="cigar")


@pytest.mark.slow
def test_weak_log_end_source_on_a_bombs_residual_is_not_reported() -> None:
    # Seed 1000 below: a 0.25 A m^2 source fitted on the residual of a bomb
    # (fitted as a point 0.84 m off) 2.3 m from any body, once reported
    # flagged log_end. The nested test now asks log_end sources for the BIC
    # penalty of their parameters; without it the bomb is refitted as a line.
    sc = make_scenario(1000, **BELOW)
    res = process_logs(sc.logs)
    assert len(res.targets) == 3
    assert all("log_end" in t.flags for t in res.targets)
    assert max(_nearest(t, sc.bodies) for t in res.targets) < 0.5


@pytest.mark.slow
def test_tail_of_a_located_bombs_misfit_is_not_a_target() -> None:
    # Seed 1009 below: a 0.9 nT bump at 6 m in hole R01C02, the tail of a
    # 43 nT residual the bomb's expected misfit covers at 9.4 m, was
    # reported as a no_converge target at the hole.
    sc = make_scenario(1009, **BELOW)
    res = process_logs(sc.logs)
    assert len(res.targets) == 3
    assert not any("no_converge" in t.flags for t in res.targets)
    assert max(_nearest(t, sc.bodies) for t in res.targets) < 0.8
    assert any("R01C02: residual at 5.98 m left by a located target" in i for i in res.issues)


@pytest.mark.slow
def test_steep_bomb_split_beyond_the_hole_bottom_is_merged_into_one_line_source() -> None:
    # Seed 1003: a bomb plunging 54 degrees at 9.4 m was a point dipole plus
    # a second source 1.8 m away below the hole bottoms (flagged log_end);
    # one line source explains the pair by BIC.
    sc = make_scenario(1003)
    res = process_logs(sc.logs)
    assert any(i.startswith("merged two sources beyond the log ends") for i in res.issues)
    assert len(res.targets) == 3
    assert not any("log_end" in t.flags for t in res.targets)
    bomb = next(b for b in sc.bodies if b.kind == "aircraft_bomb")
    t = min(res.targets, key=lambda t: _nearest(t, [bomb]))
    assert _nearest(t, [bomb]) < 0.15
    assert 1.2 < res.details[t.target_id]["length_m"] < 1.9


def test_steep_bomb_below_the_hole_bottoms_keeps_its_line_and_its_neighbour() -> None:
    # Seed 1017 below: a bomb plunging 49 degrees, mostly under the 10 m hole
    # bottoms, whose line fits ran 2.46 m long (past the 2.4 m cap), and a
    # 155 mm projectile 2.8 m from it. Refused as a line, the bomb was a point
    # whose misfit hid the projectile; a weak candidate on its residual took
    # its data in the joint refit and both bodies became one 27.9 A m^2
    # source at 11.66 m, 1.6 m from each. Held at the cap, the bomb's line is
    # refitted with the projectile to 1.6 m, and all three bodies are found.
    sc = make_scenario(1017, **BELOW)
    res = process_logs(sc.logs)
    assert len(res.targets) == 3
    assert all("log_end" in t.flags for t in res.targets)
    for b in sc.bodies:
        t = min(res.targets, key=lambda t: _nearest(t, [b]))
        assert _nearest(t, [b]) < 0.4, b.kind
    bomb = sc.bodies[0]
    assert bomb.kind == "aircraft_bomb"
    t = min(res.targets, key=lambda t: _nearest(t, [bomb]))
    assert 1.2 < res.details[t.target_id]["length_m"] < 2.0
    assert max(t.depth for t in res.targets) < 11.0


def test_line_fit_with_capped_length_stays_under_the_cap() -> None:
    # The capped parameterisation of `locate.fit`: a line started longer than
    # the cap, on data from a body longer than the cap, ends at most at the cap.
    from acquisition.borehole.locate import build_obs, fit, predict

    sc = make_scenario(1017, **BELOW)
    plogs = [condition(lg) for lg in sc.logs]
    centre = (4.7, 2.7, 10.0)
    obs = build_obs(plogs, [centre], 3.5, 2.5)
    long_line = np.array([*centre, 0.0, 2.0, -1.0])  # 4.5 m long start
    r = fit(obs, [long_line], max_half_length=1.2, capped=True)
    assert 2.0 * np.linalg.norm(r.params[0][3:]) < 2.4
    # Uncapped, the same start keeps each component within its box bound only.
    u = fit(obs, [np.clip(long_line, -1.2, None)], max_half_length=1.2)
    assert np.all(np.abs(u.params[0][3:]) <= 1.2 + 1e-9)
    # The capped fit is a fit: it explains most of the data.
    pred = predict(obs, r.params, r.moments)
    assert np.corrcoef(pred, obs.value)[0, 1] > 0.8
