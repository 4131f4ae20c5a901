"""A shallow bomb is one target; a source whose own field is under the threshold is none.

Surveys come from the simulator (munition cases with a heavy nose and a tail
cone, walk errors), not from the DSP's forward model; the unit tests of the
two rules use the DSP's own design (`droprules.taper_design` against a plain loop
over the line's points).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from dsp_synth import lanes_xy
from test_dsp_tails_clutter import process_sim

from acquisition.dsp import droprules, elongate, fitcore
from acquisition.dsp.fitconfig import FitConfig
from acquisition.forward import LINE_POINTS, SensorGeometry, design_matrix, line_design, line_points
from acquisition.geomag import QUANG_TRI
from simulator.scenario import scenario_from_dict
from simulator.scoring import match
from simulator.survey import simulate_survey

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from accuracy_lanes import scenario

GRAD = SensorGeometry.from_geometry({"kind": "gradient", "sensor_height_m": 0.3,
                                     "sensor_separation_m": 0.65}, QUANG_TRI)
BOMB = (8.0, 12.0)


def _bomb_survey(depth: float, az: float, plunge: float, seed: int, extra=None,
                 fit: FitConfig | None = None):
    targets = [{"name": "bomb", "kind": "aircraft_bomb", "x": BOMB[0], "y": BOMB[1],
                "depth": depth, "azimuth_deg": az, "plunge_deg": plunge}]
    if extra:
        targets.append(extra)
    sc = scenario_from_dict(scenario("one-bomb", seed, width=16.0, length=24.0, count=0,
                                     targets=targets))
    sim = simulate_survey(sc)
    return sim, process_sim(sc, sim, fit)


# Shallow 250 kg bombs (15 A m^2, 1.8 m) whose uniform-line fit left a lobe
# at the heavy end that a weak shallow source 0.8-1.3 m away soaked up
# (found by a sweep of depths 0.6-1.3 m, azimuths, plunges 0-60 degrees).
LOBE_CASES = [(0.6, 50.0, 0.0, 56), (0.8, 0.0, 0.0, 8), (0.8, 150.0, 60.0, 218),
              (1.3, 50.0, 0.0, 63)]


@pytest.mark.parametrize(("depth", "az", "plunge", "seed"), LOBE_CASES)
def test_shallow_bomb_is_one_target(depth, az, plunge, seed):
    _sim, res = _bomb_survey(depth, az, plunge, seed)
    near = [t for t in res.targets if math.hypot(t.x - BOMB[0], t.y - BOMB[1]) < 3.0]
    assert len(near) == 1, [(t.x, t.y, t.depth, t.method) for t in near]
    assert math.hypot(near[0].x - BOMB[0], near[0].y - BOMB[1]) < 0.2
    assert abs(near[0].depth - depth) < 0.25 * depth


def _near_bomb(case, fit: FitConfig | None = None) -> list:
    _sim, res = _bomb_survey(*case, fit=fit)
    return [t for t in res.targets if math.hypot(t.x - BOMB[0], t.y - BOMB[1]) < 3.0]


def test_without_the_taper_test_the_lobe_is_a_second_target():
    # The cases above are real ones: with the step switched off the lobe is
    # back. (Not in the second case any more: since session 8 a line that
    # replaces the whole cluster of sources around the bomb takes it.)
    # Since session 10 the first case's lobe, at the surface, is also caught
    # by the lane-phantom test of broad clusters, which refits the bomb
    # without it (`broadfit.neighbours_refit_gain`): both must be off.
    assert len(_near_bomb(LOBE_CASES[0], FitConfig(drop_body_lobes=False))) == 1
    off = FitConfig(drop_body_lobes=False, neighbours_refit_gain=False)
    assert len(_near_bomb(LOBE_CASES[0], off)) >= 2


@pytest.mark.parametrize(("dx", "dy", "depth", "az", "seed"),
                         [(-1.2, 0.3, 0.8, 0.0, 8), (-1.2, 0.3, 2.5, 40.0, 7),
                          (-0.4, 1.1, 2.5, 40.0, 7)])
def test_bomblet_beside_a_bomb_is_still_found(dx, dy, depth, az, seed):
    # What the overlap benchmark asks: a real small object a metre from the
    # bomb is not the bomb's lobe, the taper cannot make its sharp anomaly.
    extra = {"name": "near", "kind": "bomblet", "x": BOMB[0] + dx, "y": BOMB[1] + dy,
             "depth": 0.2}
    sim, res = _bomb_survey(depth, az, 0.0, seed, extra=extra)
    truth = np.array([[t.x, t.y, t.depth] for t in sim.truth])
    rep = np.array([[t.x, t.y, t.depth] for t in res.targets]).reshape(-1, 3)
    m = match(truth, rep, gate_m=1.0)
    assert sorted(p.truth_index for p in m.pairs) == [0, 1]
    small = next(p for p in m.pairs if p.truth_index == 1)
    assert small.horizontal_error_m < 0.3


def test_taper_design_is_the_moment_growing_along_the_line():
    x, y, _ = lanes_xy(6, 8.0)
    ends = np.array([2.0, 3.0, 0.6, 3.2, 4.5, 1.1])
    m0 = np.array([0.5, -1.0, 2.0])
    m1 = np.array([1.5, 0.5, -1.0])
    pts = line_points(ends)
    t = (np.arange(LINE_POINTS) + 0.5) / LINE_POINTS - 0.5
    ref = sum(design_matrix(x, y, *p, GRAD) @ ((m0 + ti * m1) / LINE_POINTS)
              for p, ti in zip(pts, t, strict=True))
    got = line_design(x, y, ends, GRAD) @ m0 + droprules.taper_design(x, y, ends, GRAD) @ m1
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def _two_sources(weak_moment: float):
    x, y, _ = lanes_xy(8, 12.0)
    strong = np.array([3.0, 6.0, 1.0])
    weak = np.array([6.0, 8.0, 0.8])
    v = (design_matrix(x, y, *strong, GRAD) @ np.array([0.0, 2.0, -8.0])
         + design_matrix(x, y, *weak, GRAD) @ np.array([0.0, 0.0, -weak_moment]))
    v = v + np.random.default_rng(3).normal(0.0, 0.3, x.size)
    peak_weak = float(np.max(np.abs(design_matrix(x, y, *weak, GRAD)
                                    @ np.array([0.0, 0.0, -weak_moment]))))
    return x, y, v, [strong, weak], peak_weak


@pytest.mark.parametrize(("weak_moment", "kept"), [(0.01, 1), (0.2, 2)])
def test_a_source_whose_own_field_stays_under_the_threshold_is_dropped(weak_moment, kept):
    x, y, v, srcs, peak_weak = _two_sources(weak_moment)
    thr = 1.5
    assert (peak_weak < thr) == (kept == 1)
    out = droprules.drop_subthreshold(srcs, x, y, v, GRAD, thr)
    assert len(out) == kept
    assert out[0] is srcs[0]


def test_the_strongest_source_stays_even_under_the_threshold():
    x, y, v, srcs, _ = _two_sources(0.01)
    out = droprules.drop_subthreshold(srcs, x, y, v, GRAD, 1e6)
    assert len(out) == 1 and out[0] is srcs[0]


def test_a_deep_bomb_under_the_threshold_stays():
    # Missing a bomb costs more than a dig: a source of an aircraft bomb's
    # moment stays though its field (4 m down) is under the threshold.
    x, y, _ = lanes_xy(8, 12.0)
    grain = np.array([3.0, 6.0, 0.05])
    bomb = np.array([6.0, 7.0, 4.0])
    m_bomb = np.array([0.0, 4.0, -9.0])
    v = (design_matrix(x, y, *grain, GRAD) @ np.array([0.0, 0.0, -0.2])
         + design_matrix(x, y, *bomb, GRAD) @ m_bomb)
    v = v + np.random.default_rng(4).normal(0.0, 0.3, x.size)
    peak_bomb = float(np.max(np.abs(design_matrix(x, y, *bomb, GRAD) @ m_bomb)))
    thr = 1.5 * peak_bomb
    assert len(droprules.drop_subthreshold([grain, bomb], x, y, v, GRAD, thr)) == 2
    # The same field from a mortar-sized moment would go.
    small = np.array([6.0, 7.0, 0.9])
    v2 = (design_matrix(x, y, *grain, GRAD) @ np.array([0.0, 0.0, -0.2])
          + design_matrix(x, y, *small, GRAD) @ np.array([0.0, 0.0, -0.05]))
    peak_small = float(np.max(np.abs(design_matrix(x, y, *small, GRAD)
                                     @ np.array([0.0, 0.0, -0.05]))))
    out = droprules.drop_subthreshold([grain, small], x, y, v2, GRAD, 1.5 * peak_small)
    assert len(out) == 1


# A 250 kg bomb lying flat a hand's width under the surface (laterite seed 15
# of the benchmark: 0.20 m). Its point fit reads it a few cm deep, and lines
# seeded there stalled as a short line at the surface, its axis 25 degrees
# off; seeds at `FitConfig.line_seed_min_depth_m` find the body.
SURFACE_CASES = [(0.08, 112.0, 1), (0.12, 112.0, 1),
                 # Along the lanes, the greedy pass left 3-5 points around
                 # these; one line now replaces the whole cluster.
                 (0.2, 0.0, 1), (0.2, 0.0, 2), (0.06, 20.0, 1),
                 # Here the greedy pass also left two deep sources of 25 Am2
                 # with opposite moments (`elongate.signal_centre`).
                 (0.12, 0.0, 1)]


@pytest.mark.parametrize(("depth", "az", "seed"), SURFACE_CASES)
def test_bomb_just_under_the_surface_is_a_line_of_its_length(depth, az, seed):
    _sim, res = _bomb_survey(depth, az, 1.0, seed)
    near = [t for t in res.targets if math.hypot(t.x - BOMB[0], t.y - BOMB[1]) < 3.0]
    assert len(near) == 1, [(t.x, t.y, t.depth, t.method) for t in near]
    t = near[0]
    assert t.method == "line_fit"
    assert abs(t.depth - depth) < 0.04
    assert abs(t.length_m - 1.8) < 0.2
    assert abs((t.azimuth_deg - az + 90.0) % 180.0 - 90.0) < 8.0


def test_seeded_only_where_the_point_sat_the_line_stalls_at_the_surface():
    _sim, res = _bomb_survey(0.12, 112.0, 1.0, 1, fit=FitConfig(line_seed_min_depth_m=0.0))
    t = min(res.targets, key=lambda t: math.hypot(t.x - BOMB[0], t.y - BOMB[1]))
    assert t.depth < 0.05 and t.length_m < 1.0


def test_anchored_by_moment_the_cluster_line_misses_a_cancelling_pair(monkeypatch):
    # The anchor weighted by fitted moment, as in session 8: the two deep
    # sources' 25 Am2 each pull it 1.3 m off the anomaly and the line is
    # refused; four targets remain, one of them 2.3 m deep.
    def by_moment(group, srcs, x, y, v, geom):
        lin = fitcore.solve_linear(fitcore.design_srcs(x, y, srcs, geom), v)
        w = [float(np.linalg.norm(lin[3 * fitcore.index_of(srcs, t):][:3])) for t in group]
        c = [fitcore.centre_depth(t)[:2] for t in group]
        return tuple(float(np.average([p[k] for p in c], weights=w)) for k in (0, 1))

    monkeypatch.setattr(elongate, "signal_centre", by_moment)
    _sim, res = _bomb_survey(0.12, 0.0, 1.0, 1)
    near = [t for t in res.targets if math.hypot(t.x - BOMB[0], t.y - BOMB[1]) < 3.0]
    assert len(near) >= 3
    assert max(t.depth for t in near) > 1.0


def test_without_the_cluster_line_a_bomb_along_the_lanes_is_several_targets(monkeypatch):
    # The cluster candidate's anchor moved out of reach: it is never taken.
    monkeypatch.setattr(elongate, "signal_centre", lambda *a, **k: (1e9, 1e9))
    _sim, res = _bomb_survey(0.2, 0.0, 1.0, 2)
    near = [t for t in res.targets if math.hypot(t.x - BOMB[0], t.y - BOMB[1]) < 3.0]
    assert len(near) >= 3
