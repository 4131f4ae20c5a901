"""Survey-wide signal clusters: joint refit, deep splits, lane-level phantoms.

On a total-field survey the broad anomalies of deep bombs chain every lane
into one signal, and one fit window holds the whole survey. Its first source,
fitted alone to everything, lands deep in the middle; two deep bombs a few
metres apart look like one source; and lane levels, taken from lanes a big
anomaly covers end to end, are off by nT that a deep weak source can soak up.
"""

from __future__ import annotations

import numpy as np
import pytest
from dsp_synth import induced, survey
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dsp_tails_clutter import _bench_survey, bench_processed, process_sim

from acquisition.dsp import acceptance, broadfit, fitcore
from acquisition.dsp.fitconfig import FitConfig
from acquisition.forward import SensorGeometry, forward
from acquisition.geomag import QUANG_TRI
from simulator.scoring import match

TOTAL = SensorGeometry.from_geometry(
    {"kind": "total", "sensor_height_m": 0.3, "sensor_separation_m": 0.65}, QUANG_TRI)
#: The synthetic surveys' extent (16 lanes x 30 m) with a metre around it.
FOOT = (-0.5, 16.5, -1.0, 31.0)


def _total_survey(sources, *, n_lanes=16, length=30.0, noise=0.3, seed=0, offsets=0.0):
    x, y, v, lane, _geo = survey(sources, kind="total", noise=noise, seed=seed,
                                 n_lanes=n_lanes, length=length, offsets=offsets)
    return x, y, v, lane


@settings(max_examples=60, deadline=None)
@given(n_lanes=st.integers(1, 6), n_cols=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_by_lane_fit_is_a_fit_with_a_free_offset_per_lane(n_lanes, n_cols, seed):
    rng = np.random.default_rng(seed)
    lanes = rng.integers(0, n_lanes, 80)
    lanes[:n_lanes] = np.arange(n_lanes)  # every lane present
    M = rng.normal(size=(80, n_cols))
    v = rng.normal(size=80)
    # Reference: ordinary least squares with one indicator column per lane.
    ind = (lanes[:, None] == np.arange(n_lanes)[None, :]).astype(float)
    full = np.hstack((M, ind))
    ref = v - full @ np.linalg.lstsq(full, v, rcond=None)[0]
    Mc = broadfit.by_lane(M, lanes)
    vc = broadfit.by_lane(v[:, None], lanes)[:, 0]
    got = vc - Mc @ np.linalg.lstsq(Mc, vc, rcond=None)[0]
    np.testing.assert_allclose(got, ref, atol=1e-9)
    # Per lane the centred columns sum to zero (the offsets are projected out).
    for k in range(n_lanes):
        np.testing.assert_allclose(Mc[lanes == k].sum(axis=0), 0.0, atol=1e-9)


def test_joint_refit_moves_a_source_fitted_to_everything_onto_an_object():
    # Three deep bombs; the greedy start: one source 9 m deep in the middle
    # (what a single dipole fitted to all three gives) plus two on objects.
    truth = [induced(4.5, 8.0, 4.0, 12.0), induced(11.0, 20.0, 4.5, 15.0),
             induced(5.0, 24.0, 3.5, 8.0)]
    x, y, v, lane = _total_survey(truth)
    p = np.array([8.0, 15.0, 9.0, 11.2, 19.5, 4.6, 5.2, 23.7, 3.6])
    q, v2 = broadfit.joint_refit(p, x, y, v, TOTAL, lane, 1.5, (0.7, 1.6, 0.35), FOOT)
    got = q.reshape(-1, 3)
    assert got.shape == (3, 3)
    for t in truth:
        d = np.hypot(got[:, 0] - t.x, got[:, 1] - t.y)
        k = int(np.argmin(d))
        assert d[k] < 0.3, (t, got)
        assert abs(got[k, 2] - t.depth) < 0.15 * t.depth, (t, got)
    # Levels were right: the data are handed back unchanged.
    assert v2 is v


def test_joint_refit_leaves_sources_already_right_in_place():
    truth = [induced(4.5, 10.0, 1.0, 2.0), induced(11.0, 20.0, 1.5, 3.0)]
    x, y, v, lane = _total_survey(truth, noise=0.3)
    p = np.array([4.5, 10.0, 1.0, 11.0, 20.0, 1.5])  # already right
    q, _ = broadfit.joint_refit(p, x, y, v, TOTAL, lane, 1.5, (0.7, 1.6, 0.35), FOOT)
    assert np.allclose(q.reshape(-1, 3), p.reshape(-1, 3), atol=0.05)


def test_joint_refit_re_levels_a_lane_a_broad_anomaly_biased():
    truth = [induced(6.5, 15.0, 3.0, 20.0), induced(12.0, 5.0, 2.0, 4.0)]
    x, y, v, lane = _total_survey(truth, noise=0.2)
    v = v.copy()
    v[lane == 6] -= 3.0  # the masked median of a lane the anomaly covered
    p = np.array([6.0, 14.0, 3.5, 12.2, 5.3, 2.2])
    _q, v2 = broadfit.joint_refit(p, x, y, v, TOTAL, lane, 1.5, (0.7, 1.6, 0.35), FOOT)
    assert v2 is not v
    np.testing.assert_allclose(np.median(v2[lane == 6] - v[lane == 6]), 3.0, atol=0.3)
    # Only the biased lane moved.
    assert np.array_equal(v2[lane != 6], v[lane != 6])


def test_two_deep_bombs_fitted_as_one_are_split():
    a, b = induced(6.0, 13.0, 5.0, 18.0), induced(10.5, 14.0, 4.9, 14.0)
    x, y, v, lane = _total_survey([a, b], noise=0.3, seed=3)
    one = fitcore.run_lm(np.array([8.0, 13.5, 5.5]), x, y, v, TOTAL)
    out = broadfit.split_deep([one.x], x, y, v, TOTAL, 0.3, FOOT, lanes=lane)
    assert len(out) == 2
    got = np.array(out)
    for t in (a, b):
        d = np.hypot(got[:, 0] - t.x, got[:, 1] - t.y)
        assert d.min() < 0.5, (t, got)


def test_one_deep_bomb_with_lane_level_errors_is_not_split():
    bomb = induced(8.0, 15.0, 4.3, 16.0)
    x, y, v, lane = _total_survey([bomb], noise=0.3, seed=5, offsets=1.0)
    one = fitcore.run_lm(np.array([8.0, 15.0, 4.3]), x, y, v, TOTAL)
    out = broadfit.split_deep([one.x], x, y, v, TOTAL, 0.3, FOOT, lanes=lane)
    assert len(out) == 1
    assert np.hypot(out[0][0] - bomb.x, out[0][1] - bomb.y) < 0.3


def test_a_deep_phantom_of_lane_offsets_is_dropped_and_a_real_deep_bomb_kept():
    bomb = induced(4.0, 10.0, 1.0, 3.0)
    deep = induced(11.0, 21.0, 4.5, 10.0)  # ~5 nT at the sensor
    x, y, v, lane = _total_survey([bomb, deep], noise=0.3, seed=7)
    v = v.copy()
    # Three lanes 3 nT low around x = 7, y all along: what a phantom 5 m deep
    # under them would soak up.
    v[(lane >= 6) & (lane <= 8)] -= 3.0
    srcs = [np.array([4.0, 10.0, 1.0]), np.array([11.0, 21.0, 4.5]), np.array([7.0, 15.0, 5.0])]
    out = broadfit.drop_level_explained(srcs, x, y, v, TOTAL, 0.3, lane)
    kept = [tuple(np.round(s[:2], 1)) for s in out]
    assert (4.0, 10.0) in kept and (11.0, 21.0) in kept
    assert (7.0, 15.0) not in kept


def test_phantom_test_keeps_a_shallow_source_whatever_the_lanes_do():
    # A sharp anomaly is not a lane offset: a free offset per lane cannot
    # explain it however the lanes are shifted.
    big = induced(3.0, 8.0, 1.0, 5.0)
    small = induced(9.0, 18.0, 0.3, 0.02)
    x, y, v, lane = _total_survey([big, small], noise=0.3, seed=2, offsets=1.5)
    peak = np.max(np.abs(forward(x, y, small.x, small.y, small.depth, small.moment, TOTAL)))
    assert peak > 10 * 0.3
    srcs = [np.array([3.0, 8.0, 1.0]), np.array([9.0, 18.0, 0.3])]
    out = broadfit.drop_level_explained(srcs, x, y, v, TOTAL, 0.3, lane)
    assert len(out) == 2


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_surface_phantom_of_a_lane_end_step_is_dropped_and_a_weak_nail_kept(seed):
    # Total-field seed 19: one lane's level 0.7 nT off near its end, and a
    # source at the surface there with 0.004 A m2 took it up (a false pick).
    # A free offset per lane explains such a step; it cannot explain a nail.
    big = induced(3.0, 8.0, 1.0, 5.0)
    x, y, v, lane = _total_survey([big], seed=seed)
    step = v.copy()
    step[(lane == 9) & (y < 3.0)] += 1.5  # lane 9 (x = 9.5), its first 3 m
    nail = induced(9.7, 1.2, 0.0, 0.0012)
    f_nail = forward(x, y, nail.x, nail.y, nail.depth, nail.moment, TOTAL)
    assert 2.0 < np.max(np.abs(f_nail)) < 2.5  # 7.5 x the noise
    srcs = [np.array([3.0, 8.0, 1.0]), np.array([9.7, 1.2, 0.0])]
    # With the lanes held, the phantom pays by far (BIC gain 120-210).
    sel = np.hypot(x - 9.7, y - 1.2) < 2.45
    held = (acceptance.chi2_drop(fitcore.local_res(srcs[:1], x[sel], y[sel], step[sel], TOTAL),
                               fitcore.local_res(srcs, x[sel], y[sel], step[sel], TOTAL),
                               0.09, False) - 6 * np.log(sel.sum()))
    assert held > 100
    out = broadfit.drop_level_explained(srcs, x, y, step, TOTAL, 0.3, lane)
    assert [tuple(s) for s in out] == [(3.0, 8.0, 1.0)]
    # Only deep sources judged (as before session 10): the phantom stays.
    out = broadfit.drop_level_explained(srcs, x, y, step, TOTAL, 0.3, lane,
                                         FitConfig(level_shallow_max=-1.0))
    assert len(out) == 2
    out = broadfit.drop_level_explained(srcs, x, y, v + f_nail, TOTAL, 0.3, lane)
    assert len(out) == 2


def _misplaced_bomb_survey(seed, deep_moment=None):
    """A 20 A m2 bomb 1.5 m deep, its fit 0.15 m off and 0.1 m shallow (as
    total-field seed 19's), lane offsets of 2 nT, and a source 4.3 m deep
    6.5 m from the bomb: a phantom, or (``deep_moment``) a real object."""
    truth = [induced(6.0, 10.0, 1.5, 20.0), induced(12.0, 24.0, 1.2, 2.0)]
    if deep_moment:
        truth.append(induced(8.5, 16.0, 4.3, deep_moment))
    x, y, v, lane = _total_survey(truth, seed=seed, offsets=2.0)
    srcs = [np.array([6.15, 10.0, 1.4]), np.array([12.0, 24.0, 1.2]), np.array([8.5, 16.0, 4.3])]
    return x, y, v, lane, srcs


@pytest.mark.parametrize("seed", [0, 1])
def test_a_deep_phantom_of_a_neighbours_misfit_is_dropped_once_the_neighbour_may_move(
        seed):
    x, y, v, lane, srcs = _misplaced_bomb_survey(seed)
    out = broadfit.drop_level_explained(srcs, x, y, v, TOTAL, 0.3, lane)
    assert len(out) == 2 and all(s[2] < 4.0 for s in out)
    # Judged with the bomb held (the test before session 10), it stays.
    out = broadfit.drop_level_explained(srcs, x, y, v, TOTAL, 0.3, lane,
                                        FitConfig(neighbours_refit_gain=False))
    assert len(out) == 3


@pytest.mark.parametrize("moment", [3.0, 8.0])
def test_a_real_deep_object_beside_a_misplaced_bomb_is_kept(moment):
    x, y, v, lane, srcs = _misplaced_bomb_survey(0, deep_moment=moment)  # 2.6 / 7.0 nT
    out = broadfit.drop_level_explained(srcs, x, y, v, TOTAL, 0.3, lane)
    assert len(out) == 3


def test_total_field_five_overlapping_aircraft_bombs_are_all_found():
    # Total-field seed 23 (a held-out seed of session 6): five aircraft bombs,
    # four 4.2-5 m deep, one signal over the whole survey. The first source,
    # fitted to everything, sat 10 m deep in the middle and four bombs were
    # missed; two of them, 4.7 m apart at 5 m, were then fitted as one.
    sc, sim = _bench_survey("total_field", 23)
    res = process_sim(sc, sim)
    bombs = [t for t in sim.truth if t.kind == "aircraft_bomb"]
    assert len(bombs) == 5
    for b in bombs:
        d = [np.hypot(t.x - b.x, t.y - b.y) for t in res.targets]
        k = int(np.argmin(d))
        assert d[k] < 0.6, (b, res.targets[k])
        # (The bomb 4.2 m deep is fitted as a steep 4 m line, centre 5.1 m:
        # 21 % deep; the old phantoms sat 5.7 and 10 m deep.)
        assert abs(res.targets[k].depth - b.depth) < 0.25 * b.depth, (b, res.targets[k])
    assert len(res.targets) <= 6


def test_total_field_lone_deep_bomb_beside_a_giant_is_not_split():
    # Total-field seed 8: a bomb 4.3 m deep, 19 m from a 3700 nT one whose
    # flanks leave 1-4 nT of lane-level error; the split test must not make
    # two sources of it.
    sc, sim = _bench_survey("total_field", 8)
    res = process_sim(sc, sim)
    bomb = next(t for t in sim.truth if t.kind == "aircraft_bomb" and abs(t.depth - 4.29) < 0.01)
    near = [t for t in res.targets if np.hypot(t.x - bomb.x, t.y - bomb.y) < 3.0]
    assert len(near) == 1, near
    assert np.hypot(near[0].x - bomb.x, near[0].y - bomb.y) < 0.6



def test_total_field_weak_deep_projectile_at_a_lane_end_is_found():
    # Total-field seed 6: a projectile 2.6 m deep, 2.4 nT, 2.5 m from the
    # survey's end, in the survey-wide cluster. A residual pick whose centre
    # sat within a metre of a source was skipped without being remembered, so
    # it came back every round and took a place of the round's budget; the
    # projectile's pick never had its turn.
    sc, sim = _bench_survey("total_field", 6)
    res = process_sim(sc, sim)
    proj = next(t for t in sim.truth if t.kind == "projectile" and abs(t.depth - 2.59) < 0.01)
    d = [np.hypot(t.x - proj.x, t.y - proj.y) for t in res.targets]
    t = res.targets[int(np.argmin(d))]
    assert min(d) < 0.3, t  # 0.09 m
    assert abs(t.depth - proj.depth) < 0.3 * proj.depth, t  # 2.05 m: -21 %


def _processed(seed: int):
    return bench_processed("total_field", seed)


def _fitted_false_picks(seed: int) -> list:
    """The fitted targets (not cheap estimates) matched to no object, one to
    one within 1 m (as the benchmark counts them)."""
    _sc, sim, res = _processed(seed)
    truth = np.array([[o.x, o.y, o.depth] for o in sim.truth])
    rep = np.array([[t.x, t.y, t.depth] for t in res.targets]).reshape(-1, 3)
    return [res.targets[j] for j in match(truth, rep, gate_m=1.0).false_picks
            if res.targets[j].method in ("dipole_fit", "line_fit")]


def _deep_projectile(seed: int, depth: float):
    _sc, sim, res = _processed(seed)
    proj = next(t for t in sim.truth if t.kind == "projectile" and abs(t.depth - depth) < 0.01)
    d = [np.hypot(t.x - proj.x, t.y - proj.y) for t in res.targets]
    return proj, res.targets[int(np.argmin(d))], min(d)


def test_deep_projectile_off_its_residual_peak_is_found_at_the_end():
    # Total-field seed 17: a projectile 2.6 m deep, 7.1 nT, 4.4 m from a
    # 604 nT bomb. Every greedy try fitted it right but 2.3 m from the
    # residual peak it was seeded on (a lobe), and refused it (1.5 m).
    # `broadfit.add_isolated` fits it with every other source held.
    proj, t, d = _deep_projectile(17, 2.57)
    assert d < 0.6, t  # 0.44 m
    assert abs(t.depth - proj.depth) < 0.15 * proj.depth, t  # 2.67 m


def test_without_the_lone_source_step_the_deep_projectile_is_missed():
    # `flank_search`, the other way to it, is off too: only the lone-source
    # step can find it.
    sc, sim = _bench_survey("total_field", 17)
    res = process_sim(sc, sim, FitConfig(add_isolated=False, flank_search=False))
    proj = next(t for t in sim.truth if t.kind == "projectile" and abs(t.depth - 2.57) < 0.01)
    assert min(np.hypot(t.x - proj.x, t.y - proj.y) for t in res.targets) > 1.0


@pytest.mark.parametrize("seed", [17, 19])
def test_no_fitted_false_pick_in_survey_wide_clusters(seed):
    # Session 9 left three such phantoms, each judged with its strong
    # neighbours held (`broadfit.neighbours_refit_gain`) or its lanes
    # fixed: seed 17, 0.17 m deep 0.7 m from a mortar fitted as a point;
    # seed 19, 4.3 m deep between two bombs 6 and 10 m away, and 0.004 A m2
    # at the surface on a lane end 0.7 nT off. Every object stays found.
    assert _fitted_false_picks(seed) == []
    _sc, sim, res = _processed(seed)
    for o in sim.truth:
        if o.detectable:
            assert min(np.hypot(t.x - o.x, t.y - o.y) for t in res.targets) < 1.0, o


def test_lone_source_step_adds_nothing_beside_a_lone_bomb_and_finds_a_weak_object():
    # A deep bomb alone (clean synthetic total field): its residual is its
    # own misfit; nothing is three metres clear of it and over the bar.
    x, y, v, lane = _total_survey([induced(8.0, 15.0, 2.5, 8.0)])
    srcs = [np.array([8.0, 15.0, 2.5])]
    out = broadfit.add_isolated(srcs, x, y, v, TOTAL, 0.3, 1.5, lane, FOOT)
    assert len(out) == 1
    # A weak second object 6 m away, under the sensor's lobe: found, placed.
    x, y, v, lane = _total_survey([induced(8.0, 15.0, 2.5, 8.0),
                                   induced(8.3, 21.0, 2.2, 1.0)], seed=3)
    out = broadfit.add_isolated(srcs, x, y, v, TOTAL, 0.3, 1.5, lane, FOOT)
    assert len(out) == 2
    assert np.hypot(out[1][0] - 8.3, out[1][1] - 21.0) < 0.1  # 0.04 m
    assert abs(out[1][2] - 2.2) < 0.2  # 2.13 m
