"""Shortcuts in the search for more sources give the answers of the long way.

`fitcore.solve_linear_many` solves a stack of designs with the BLAS and
LAPACK calls `solve_linear` makes for each, `_lm_blocks`' ``many`` builds
several point sources' columns in one pass of the forward model, and
`addsources._best_start` skips refining a new source that every start left
off its seed (the verdict is "off_seed" whatever the refinement does). Each
is checked against the long way to the bit: positions, depths and costs.
"""

from __future__ import annotations

import numpy as np
import pytest
from dsp_synth import NEAR_AND_FAR, induced, near_and_far_case, survey
from hypothesis import given, settings
from hypothesis import strategies as st

import acquisition.dsp.addsources as addsources
import acquisition.dsp.fitcore as fitcore
from acquisition.dsp.fit import fit_sources
from acquisition.forward import SensorGeometry
from acquisition.geomag import QUANG_TRI


@settings(max_examples=40, deadline=None)
@given(st.integers(12, 2500), st.integers(4, 30), st.integers(1, 6), st.integers(0, 2**31 - 1),
       st.floats(0.0, 3.0))
def test_solve_linear_many_is_solve_linear_per_design(n, k, m, seed, log_spread):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, k)) * 10.0 ** rng.uniform(-log_spread, log_spread, k)
    G = np.repeat(base[None], m, axis=0)
    for j in range(m):  # each design differs from the base in three columns, as in a Jacobian
        c = int(rng.integers(0, k - 2))
        G[j, :, c:c + 3] = rng.normal(size=(n, 3))
    v = rng.normal(size=n) * 5.0
    many = fitcore.solve_linear_many(G, v)
    for j in range(m):
        np.testing.assert_array_equal(many[j], fitcore.solve_linear(G[j].copy(), v))


def test_jacobian_falls_back_to_one_design_at_a_time(monkeypatch):
    # A stack `solve_linear_many` refuses (LinAlgError: one design singular)
    # is solved design by design, as before: the same fit.
    x, y, v, _lane, geometry = survey(NEAR_AND_FAR, kind="total", noise=0.3, seed=2)
    geom = SensorGeometry.from_geometry(geometry, QUANG_TRI)
    p0 = np.array([3.0, 5.5, 1.0, 4.4, 7.2, 0.6])
    fast = fitcore.run_lm(p0, x, y, v, geom)
    refused = []

    def refuse(G, v):
        refused.append(len(G))
        raise np.linalg.LinAlgError("singular")

    monkeypatch.setattr(fitcore, "solve_linear_many", refuse)
    slow = fitcore.run_lm(p0, x, y, v, geom)
    assert refused
    np.testing.assert_array_equal(fast.x, slow.x)
    assert np.hypot(fast.x[0] - 3.2, fast.x[1] - 6.0) < 0.3


@pytest.mark.parametrize("kind", ["gradient", "total", "tf_gradient"])
def test_point_fits_same_with_and_without_many(kind, monkeypatch):
    x, y, v, lane, geom, srcs, _w = near_and_far_case(kind, 4)
    p0 = np.concatenate(srcs)

    def fits():
        a = fitcore.run_lm(p0, x, y, v, geom)
        b = fitcore.run_lm_local(p0, [0, 1], x, y, v, geom, (3.6, 6.4), 3.0)
        c, sse = fitcore.refit_local(srcs, [0, 1], x, y, v, geom, lanes=lane)
        return a, b, c, sse

    # small enough that the stacked path is the one taken (whole window, 3 points)
    assert x.size * 10 <= fitcore._STACK_MAX
    fast = fits()
    orig = fitcore._lm_blocks
    used = []

    def without_many(*a, many=None, **kw):
        used.append(many is not None)
        return orig(*a, **kw)

    monkeypatch.setattr(fitcore, "_lm_blocks", without_many)
    slow = fits()
    assert all(used) and len(used) == 3
    np.testing.assert_array_equal(fast[0].x, slow[0].x)
    assert fast[0].cost == slow[0].cost
    np.testing.assert_array_equal(fast[1].x, slow[1].x)
    for a, b in zip(fast[2], slow[2], strict=True):
        np.testing.assert_array_equal(a, b)
    assert fast[3] == slow[3]
    # and they are fits: the far body within 0.15 m
    assert np.hypot(fast[0].x[6] - 4.6, fast[0].x[7] - 15.0) < 0.15


# A cluster: a bomb with objects 1.5-3 m around it and scrap, where the
# search for more sources tries places a neighbour's misfit makes.
CLUSTER = [induced(4.0, 10.0, 1.2, 8.0), induced(5.6, 11.2, 0.5, 0.3),
           induced(2.3, 8.6, 0.9, 0.6), induced(4.4, 13.0, 0.3, 0.05),
           induced(6.2, 7.4, 2.0, 3.0), induced(1.5, 12.5, 0.15, 0.01)]


@pytest.mark.slow  # a joint window fitted twice
def test_off_seed_shortcut_same_sources(monkeypatch):
    x, y, v, lane, geometry = survey(CLUSTER, kind="total", noise=0.3, seed=6, offsets=0.5,
                                     n_lanes=9)
    geom = SensorGeometry.from_geometry(geometry, QUANG_TRI)
    taken = []
    orig = addsources._best_start

    def spy(*a, **kw):
        cand = orig(*a, **kw)
        if cand is not None and not kw.get("refine_off_seed"):
            sx, sy = a[3], a[4]
            taken.append(np.hypot(cand.x[-3] - sx, cand.x[-2] - sy)
                         > addsources.SEED_REACH_M + addsources.JOINT_MOVE_M)
        return cand

    def fits():
        return [(f.x, f.y, f.depth, f.method) for f in
                fit_sources(x, y, v, geom, 0.3, lanes=lane, joint=True, max_residual_rounds=3)]

    monkeypatch.setattr(addsources, "_best_start", spy)
    fast = fits()
    assert any(taken), "the scene must make at least one try end off its seed"
    monkeypatch.setattr(addsources, "_best_start",
                        lambda *a, **kw: orig(*a, **{**kw, "refine_off_seed": True}))
    slow = fits()
    assert len(fast) == len(slow) >= 3
    for a, b in zip(fast, slow, strict=True):
        assert a == b
    # the bomb is found where it is
    assert min(np.hypot(f[0] - 4.0, f[1] - 10.0) for f in fast) < 0.2


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**31 - 1), st.lists(st.booleans(), min_size=6,
                                                              max_size=6), st.integers(0, 2))
def test_design_reusing_is_design_points(k, seed, moved, new):
    # Points of ``p`` moved or not, and new points after them: the design
    # built from ``p``'s columns equals the one built from scratch, to the bit.
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 10, 400), rng.uniform(0, 10, 400)
    geom = SensorGeometry(kind="total", field_unit=(0.0, 0.7, -0.7141428))
    p = np.column_stack((rng.uniform(0, 10, k), rng.uniform(0, 10, k),
                         rng.uniform(0.05, 4, k))).ravel()
    q = p.copy()
    for i in range(k):
        if moved[i]:
            q[3 * i:3 * i + 3] += rng.normal(0, 0.3, 3)
    q = np.concatenate((q, rng.uniform(0.1, 3, 3 * new)))
    G = fitcore.design_points(x, y, p, geom)
    np.testing.assert_array_equal(fitcore.design_reusing(x, y, q, p, G, geom),
                                  fitcore.design_points(x, y, q, geom))
