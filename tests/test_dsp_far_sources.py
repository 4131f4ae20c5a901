"""Local fits in a wide window hold the far sources at their whole-window moments.

A signal cluster can span a survey (a big shallow bomb's broad anomaly chains
segments together), and the local fits that place, elongate or judge one
source see a few metres of data. Re-solved there, a far source's tiny smooth
field is a free broad basis function: it took up residual structure with an
absurd moment, pulled a weak new source deep and sideways, and inflated the
misfit sigma that judges a line against a point.
"""

from __future__ import annotations

import numpy as np
from dsp_synth import lanes_xy
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dsp_tails_clutter import _bench_survey, bench_processed, process_sim

from acquisition.dsp import fitcore, pipeline
from acquisition.dsp.fitconfig import DEFAULT_FIT
from acquisition.forward import SensorGeometry
from acquisition.geomag import QUANG_TRI

GRAD = SensorGeometry.from_geometry(
    {"kind": "gradient", "sensor_height_m": 0.3, "sensor_separation_m": 0.65}, QUANG_TRI)


def test_weak_projectile_far_from_a_big_bomb_in_the_same_window_is_placed():
    # Clean seed 3: one window holds a 2246 nT aircraft bomb at 0.43 m and, 11 m
    # north, a 105 mm projectile at 2.5 m whose peak is 4.0 nT (8 x the noise).
    # With the far sources' moments free in its local fit, the projectile was
    # put 1.45 m off at 4.4 m (a miss and a false pick), and the bomb stayed a
    # point whose misfit later grew a false "tail" beside it.
    sc, sim = _bench_survey("clean", 3)
    res = process_sim(sc, sim)
    proj = next(t for t in sim.truth if t.kind == "projectile" and abs(t.y - 20.9) < 0.5)
    bomb = next(t for t in sim.truth if t.kind == "aircraft_bomb" and abs(t.y - 9.1) < 0.5)
    assert abs(proj.depth - 2.5) < 0.01 and bomb.depth < 0.5
    hit = min(res.targets, key=lambda t: np.hypot(t.x - proj.x, t.y - proj.y))
    assert np.hypot(hit.x - proj.x, hit.y - proj.y) < 0.3, hit
    assert abs(hit.depth - proj.depth) < 0.4, hit
    near_bomb = [t for t in res.targets if np.hypot(t.x - bomb.x, t.y - bomb.y) < 2.0]
    assert len(near_bomb) == 1, near_bomb
    assert np.hypot(near_bomb[0].x - bomb.x, near_bomb[0].y - bomb.y) < 0.2
    assert abs(near_bomb[0].depth - bomb.depth) < 0.15
    assert near_bomb[0].method == "line_fit"


@settings(max_examples=40, deadline=None)
@given(cx=st.floats(1.0, 7.0), cy=st.floats(2.0, 18.0), radius=st.floats(1.0, 4.0),
       seed=st.integers(0, 2**16), n_src=st.integers(1, 6), line=st.booleans())
def test_local_view_removes_exactly_the_far_fields(cx, cy, radius, seed, n_src, line):
    # Noise-free data made by the sources themselves: the whole-window moments
    # are the true ones, so what is left after taking the far fields out is
    # fitted exactly by the near sources alone (and nothing near is dropped).
    rng = np.random.default_rng(seed)
    x, y, _ = lanes_xy(8, 20.0)
    srcs = [np.array([rng.uniform(0, 8), rng.uniform(0, 20), rng.uniform(0.2, 3.0)])
            for _ in range(n_src)]
    if line:
        a = srcs[0]
        srcs[0] = np.array([a[0], a[1], a[2], a[0] + 0.3, a[1] + 1.0, a[2] + 0.4])
    G = fitcore.design_srcs(x, y, srcs, GRAD)
    lin = np.concatenate([rng.normal(0, 2.0, 3 * n_src), [rng.normal(0, 5.0)]])
    v = G @ lin
    margin = DEFAULT_FIT.far_margin_m
    near, vw, lx, ly, lv = fitcore.local_view(srcs, x, y, v, GRAD, cx, cy, radius,
                                              margin=margin)
    reach = radius + margin
    for i, s in enumerate(srcs):
        ends = [(s[0], s[1])] if len(s) == 3 else [(s[0], s[1]), (s[3], s[4])]
        d = min(np.hypot(px - cx, py - cy) for px, py in ends)
        if d <= reach:
            assert i in near
        if i not in near:
            assert d > reach
    far_cols = [c for i in range(n_src) if i not in near for c in range(3 * i, 3 * i + 3)]
    np.testing.assert_allclose(vw, v - G[:, far_cols] @ lin[far_cols],
                               atol=1e-6 * max(1.0, float(np.abs(v).max())))
    inside = np.hypot(x - cx, y - cy) < radius
    if inside.sum() >= 12:
        assert lx.size == int(inside.sum())
        r = fitcore.local_res([srcs[i] for i in near], lx, ly, lv, GRAD)
        assert float(np.abs(r).max()) < 1e-6 * max(1.0, float(np.abs(v).max()))


def test_put_back_keeps_far_sources_in_place_and_appends_new_ones():
    srcs = [np.array([float(i), 0.0, 1.0]) for i in range(5)]
    near = [1, 3]
    sub = [np.array([1.1, 0.0, 1.0]), np.array([3.2, 0.0, 1.0]), np.array([9.0, 9.0, 0.5])]
    out = fitcore.put_back(srcs, near, sub)
    assert [float(s[0]) for s in out] == [0.0, 1.1, 2.0, 3.2, 4.0, 9.0]
    assert out[0] is srcs[0] and out[4] is srcs[4]


def test_a_new_source_far_from_the_strongest_is_judged_on_its_own_data():
    # Total-field seed 22: one signal spans the survey, held together by a
    # 6600 nT aircraft bomb 0.14 m deep; 10 m away a second bomb, 3.1 m deep,
    # peaks at 14.6 nT (45 x the noise). Its moment solved over the whole
    # window (for the giant's misfit) bought no gain where it acts, and the
    # bomb was refused (a strict xfail in session 6). With no other source
    # within reach it is now also judged as the local fits are (far sources
    # held) and pays.
    _sc, sim, res = bench_processed("total_field", 22)
    bomb = next(t for t in sim.truth if t.kind == "aircraft_bomb"
                and abs(t.x - 17.60) < 0.05 and abs(t.y - 33.62) < 0.05)
    near = [t for t in res.targets if np.hypot(t.x - bomb.x, t.y - bomb.y) < 1.0]
    assert len(near) == 1
    assert np.hypot(near[0].x - bomb.x, near[0].y - bomb.y) < 0.3
    assert abs(near[0].depth - bomb.depth) < 0.15 * bomb.depth


def _projectile_on_a_ramp(res, sim) -> float:
    proj = next(t for t in sim.truth if t.kind == "projectile" and abs(t.depth - 3.01) < 0.01)
    return min(np.hypot(t.x - proj.x, t.y - proj.y) for t in res.targets)


def test_weak_projectile_on_a_far_bombs_ramp_is_placed(monkeypatch):
    # Total-field seed 22: a projectile 3.0 m deep, 2.8 nT, at the west edge;
    # 10 m north a 99 nT bomb 2 m deep ramps by 4.2 nT over its window,
    # cancels the projectile's negative lobe, and its fit sat on the positive
    # one 2.0 m off (a miss and a false pick). The bomb was fitted, but 4 m
    # was as far as fitted fields were taken out of a window.
    _sc, sim, res = bench_processed("total_field", 22)
    assert _projectile_on_a_ramp(res, sim) < 0.7  # 0.52 m
    monkeypatch.setattr(pipeline, "FAR_SUBTRACT_M", 4.0)
    sc, sim = _bench_survey("total_field", 22)
    assert _projectile_on_a_ramp(process_sim(sc, sim), sim) > 1.5
